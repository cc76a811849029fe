//! The database proper: a key directory over a storage log.
//!
//! `Database` owns the write path (one `apply` for every change: append,
//! then publish in the keydir, see `write`), the read path (keydir lookup,
//! then a positional read verified by checksum), durability (group commit
//! and a periodic flusher), compaction and counters.

mod background;
mod backup;
mod compact;
mod db;
mod follow;
mod health;
mod keydir;
mod observer;
mod salvage;
mod stats;
mod txn;
mod write;

pub use db::validate_key;
pub use db::{Database, ValueBuf};
pub use follow::{without_waiting, Follower};
pub use keydir::{key_order, Loc};
pub use observer::{ChangeObserver, PendingChange, SIDECAR_DIGEST_META};
pub use salvage::SalvageReport;
pub use stats::Stats;
pub use txn::{BatchOp, ReadStamp, WriteBatch};
