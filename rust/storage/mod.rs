//! Files only: where log bytes live, how they are appended, read back, synced,
//! recovered after a crash, and who may write them.
//!
//! Nothing here knows about keys being live or dead; the engine decides that.

mod check;
pub mod fault;
mod frame;
mod hint;
mod lock;
mod log;
mod medium;
pub mod paths;
mod peek;
mod replay;
mod seal;
mod shared;
mod sync;

pub use check::{check_log, scan_log, CheckReport, Damage};
pub use frame::{read_plain_record, read_record, walk_frames, Frame, FrameError, FrameWrite};
pub use hint::{load_hint, remove_hint, HintWriter, LoadedHint, PendingHint};
pub use lock::{Joined, LockMode, WriterLock};
pub use log::{
    create_log, memory_log, new_header, new_seal, open_log, open_log_file, open_log_sealed,
    open_sibling, Log, OpenedLog,
};
pub use medium::Medium;
pub use paths::{compact_path, hint_path, index_path, resolve, shm_path, temp_index_path};
pub use peek::{peek_header, PeekedHeader};
pub use replay::{replay, replay_from, replay_until, ReplayItem, Replayed};
pub use seal::Seal;
pub use shared::{
    CompactionLock, Published, SharedPage, Slot, SyncRound, Tail, WriteLock, MAX_SLOTS, SHARED_LEN,
};
pub use sync::GroupSync;

use std::fs::File;
use std::path::Path;

/// fsync the directory holding `path`, so a create or rename in it is durable.
/// A no-op where directories cannot be opened (Windows).
pub fn sync_parent_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fault::sync_dir(dir, || File::open(dir)?.sync_all())?;
    }
    #[cfg(not(unix))]
    {
        let _ = (path, File::open::<&Path>);
    }
    Ok(())
}
