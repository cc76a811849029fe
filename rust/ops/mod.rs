//! Operations on a whole database, above the engine and the indexes: batch
//! work that Python (`db.export_jsonl`), the command line (`ferrumdb export`)
//! and Rust users share, so there is one implementation of each.
//!
//! - [`jsonl`]: JSON Lines export and import, streaming, TTLs kept.
//! - [`progress`]: the progress bar both bindings show for long work.

pub mod jsonl;
pub mod progress;

pub use jsonl::{
    export_jsonl, import_jsonl, import_jsonl_with_indexes, ImportReport, IndexDefinition, Stage,
};
