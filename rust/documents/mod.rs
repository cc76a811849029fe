//! The document layer: secondary indexes and the operations built on them: `find`,
//! `query`, `count`, `distinct`, `explain`; updates by operator and
//! `delete_many`; and change feeds (`watch`).
//!
//! Sits above the engine: indexes learn about every change through the
//! engine's [`crate::engine::ChangeObserver`] hook (one place, called in log
//! order under the writer mutex), and definitions persist as engine metadata.
//! The planning and matching logic is the pure [`crate::query`] module.

mod docs;
mod field;
mod persist;
mod set;
mod update;
mod watch;

pub(crate) use docs::parse_stored;
pub use docs::{stored_indexes, Documents, QueryOptions, RawRow, Row};
pub use field::FieldIndex;
pub use update::UpdateTarget;
pub use watch::{Change, ChangeOp, Recv, Watch, DEFAULT_WATCH_BYTES, DEFAULT_WATCH_EVENTS};
