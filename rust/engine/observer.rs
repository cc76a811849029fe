//! The one hook through which layers above the engine (secondary indexes,
//! later change feeds) learn about every change to a key.
//!
//! The engine calls it under the writer mutex, in log order, with the old and
//! new JSON bytes, for puts, deletes and expirations alike, so an observer
//! needs no locking of its own against writers to stay exact. It is not called
//! during replay at open: observers rebuild from a scan instead.

use std::sync::Arc;

use super::db::Database;

/// One change about to be written, shown to [`ChangeObserver::check`].
#[derive(Debug, Clone, Copy)]
pub enum PendingChange<'a> {
    /// `key` is about to hold these JSON bytes.
    Put {
        /// The key.
        key: &'a str,
        /// The new JSON bytes.
        value: &'a [u8],
    },
    /// `key` is about to be deleted.
    Delete {
        /// The key.
        key: &'a str,
    },
}

/// The metadata entry holding the SHA-256 of the sidecar the last clean
/// close left (see [`ChangeObserver::persist_at_close`]).
pub const SIDECAR_DIGEST_META: &str = "sidecar:sha256";

/// Receives every change to a user key.
pub trait ChangeObserver: Send + Sync {
    /// Whether [`ChangeObserver::check`] must see each write first (a
    /// unique index exists). When false the engine skips it entirely.
    fn wants_check(&self) -> bool {
        false
    }

    /// Veto a write before anything of it is written: called under the
    /// writer mutex with all the changes of one record (a transaction's
    /// together), so nothing can change between the check and the write.
    /// `is_live(key)` says whether a key is live now (the observer's own
    /// state may still hold keys that expired but are not purged yet).
    ///
    /// # Errors
    /// The refusal (a unique index's [`crate::Error::DuplicateKey`]); the
    /// engine then writes nothing and returns it.
    fn check(
        &self,
        changes: &[PendingChange<'_>],
        is_live: &dyn Fn(&str) -> bool,
    ) -> crate::error::Result<()> {
        let _ = (changes, is_live);
        Ok(())
    }

    /// Whether the observer currently needs changes at all. When false, the
    /// engine skips reading the old value (a write then costs nothing extra).
    fn wants_changes(&self) -> bool {
        true
    }

    /// Whether the observer needs the old value of a changed key (indexes
    /// do, to remove its entries; change feeds do not). When false the engine
    /// skips reading it and passes `None` as `old`.
    fn wants_old_values(&self) -> bool {
        true
    }

    /// Approximate memory the observer holds (index entries), in bytes, for
    /// [`crate::engine::Stats::index_bytes`].
    fn memory_bytes(&self) -> u64 {
        0
    }

    /// Another process changed the metadata the observer keeps definitions
    /// in (it created or dropped an index): bring them up to date before
    /// this handle writes, so that every write is checked against every
    /// index, whichever process created it. Called with no lock held, by
    /// the write that first meets the change; an error fails that write and
    /// the next one tries again.
    ///
    /// # Errors
    /// Whatever reading the definitions or building an index meets.
    fn follow_definitions(self: Arc<Self>, db: &Database) -> crate::error::Result<()> {
        let _ = db;
        Ok(())
    }

    /// At a clean close of the last writer, under the writer lock (no
    /// write can come between, in this process or another): leave a
    /// sidecar beside the database at `file` describing the observer's
    /// state (the index file), built on the hint `basis` (see
    /// [`crate::engine::Database::hint_basis`]), with `live` giving every
    /// live key's location in key order. The key directory is read-locked
    /// meanwhile: the observer must not call back into the database. Best effort: a sidecar is a cache,
    /// so a failure only costs the next open a rebuild.
    ///
    /// Returns the SHA-256 of the sidecar written (`None`: none was), which
    /// the engine then appends to the log as the metadata entry
    /// [`SIDECAR_DIGEST_META`]: an open trusts a sidecar only if it hashes
    /// to that, so no other file (one crafted to pass the sidecar's own
    /// checks, or left by another database of the same shape) can stand in
    /// for it without a write to the log itself.
    fn persist_at_close(
        &self,
        file: &std::path::Path,
        basis: &crate::format::HintHeader,
        live: &mut dyn Iterator<Item = (&str, super::Loc)>,
    ) -> Option<[u8; 32]> {
        let _ = (file, basis, live);
        None
    }

    /// `key` now holds `new`; it held `old` (if anything, and if asked for) before.
    fn on_put(&self, key: &str, old: Option<&[u8]>, new: &[u8]);
    /// `key` was deleted or expired; it held `old` (`None` if not asked for,
    /// or if that record could not be read).
    fn on_remove(&self, key: &str, old: Option<&[u8]>);
}
