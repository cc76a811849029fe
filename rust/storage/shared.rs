//! The shared page: a small file beside the database (`app.db.shm`, see
//! [`super::paths::shm_path`]) that every process with the database open
//! maps, so that one process learns in one memory load whether another has
//! appended to the log or switched it to a compacted file. It plays the part
//! of SQLite's WAL index header: the file size or mtime cannot tell (the log
//! is preallocated, and a rename does not touch the old file), and a
//! syscall per call would cost more than a read.
//!
//! The writer publishes which file is the database (its device and inode,
//! and the generation in its header) and where its committed records end,
//! after every append and at every compaction switch. A reader compares one
//! counter with the one it last took in; only when it moved does it read the
//! rest and catch up by replaying the log from where it stopped (see
//! `engine::follow`).
//!
//! ```text
//! 0  magic       8  b"FDBSHM01"
//! 8  version     u64  even when stable; odd while the writer updates (a seqlock)
//! 16 file_dev    u64  the database file the fields below describe
//! 24 file_ino    u64
//! 32 generation  u64  its header generation
//! 40 end         u64  offset just past its last committed record
//! 48 ..4096      zero (reserved)
//! ```
//!
//! The page is untrusted input like every sidecar: its numbers are only
//! hints about where to look. A reader checks the published file against
//! the path and the file's own header, and reads the log through the frame
//! reader with its usual checks, so a crafted or stale page can at worst
//! make a reader look for news that is not there.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use memmap2::MmapRaw;

/// Size of the page file.
pub const SHARED_LEN: u64 = 4096;

const MAGIC: &[u8; 8] = b"FDBSHM01";
const VERSION: usize = 8;
const FILE_DEV: usize = 16;
const FILE_INO: usize = 24;
const GENERATION: usize = 32;
const END: usize = 40;

/// How often a reader retries a read that raced an update before it gives up
/// for this call (a writer killed mid-update leaves the counter odd until
/// the next writer opens).
const READ_ATTEMPTS: u32 = 1000;

/// What the writer last published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The counter value these fields were read at.
    pub version: u64,
    /// Device and inode of the database file.
    pub file_id: (u64, u64),
    /// Its header generation.
    pub generation: u64,
    /// Offset just past its last committed record.
    pub end: u64,
}

/// The mapped shared page of one database.
#[derive(Debug)]
pub struct SharedPage {
    map: MmapRaw,
    _file: File,
}

impl SharedPage {
    /// Map the page of the database at `db` (resolved), creating it if it is
    /// missing. A writer maps it read-write; a reader (`writable` false)
    /// maps it read-only and still creates a missing one (an empty page, for
    /// a writer to publish into later), so it can follow a writer that opens
    /// after it. A symlink at the name is refused (`ELOOP`), as is anything
    /// but a regular file; a page shorter than [`SHARED_LEN`] is extended by
    /// a writer and refused by a reader.
    ///
    /// # Errors
    /// I/O errors, e.g. a read-only directory.
    pub fn open(db: &Path, writable: bool) -> io::Result<SharedPage> {
        let path = super::paths::shm_path(db);
        super::fault::check_path(super::fault::Op::Create, &path)?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
            options.mode(0o644);
        }
        let file = match options.open(&path) {
            // A reader on a file it may not write: follow an existing page.
            Err(e) if !writable && e.kind() == io::ErrorKind::PermissionDenied => {
                super::paths::open_sidecar(&path)?
            }
            other => other?,
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the shared page is not a regular file",
            ));
        }
        if meta.len() < SHARED_LEN {
            // Only ever grown, never shrunk: another process may map it.
            if !writable && meta.len() > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the shared page is too short",
                ));
            }
            file.set_len(SHARED_LEN)?;
        }
        let map = if writable {
            memmap2::MmapOptions::new()
                .len(SHARED_LEN as usize)
                .map_raw(&file)?
        } else {
            memmap2::MmapOptions::new()
                .len(SHARED_LEN as usize)
                .map_raw_read_only(&file)?
        };
        Ok(SharedPage { map, _file: file })
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= SHARED_LEN as usize);
        // SAFETY: the mapping is SHARED_LEN bytes long and page-aligned, so
        // `offset` (a multiple of 8 below SHARED_LEN - 8) is in bounds and
        // aligned for a u64; it lives as long as `self`; every access to
        // the page, here and in other processes, is atomic.
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u64>()) }
    }

    /// The update counter: a reader that last took in `version` has nothing
    /// new to read while this returns the same. One memory load.
    pub fn version(&self) -> u64 {
        self.word(VERSION).load(Ordering::Acquire)
    }

    /// What the writer last published, or `None` if the page was never
    /// written (no magic) or an update is under way (try again later).
    pub fn read(&self) -> Option<Published> {
        for _ in 0..READ_ATTEMPTS {
            let version = self.word(VERSION).load(Ordering::Acquire);
            if version % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let magic = self.word(0).load(Ordering::Relaxed).to_le_bytes();
            let published = Published {
                version,
                file_id: (
                    self.word(FILE_DEV).load(Ordering::Relaxed),
                    self.word(FILE_INO).load(Ordering::Relaxed),
                ),
                generation: self.word(GENERATION).load(Ordering::Relaxed),
                end: self.word(END).load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if self.word(VERSION).load(Ordering::Relaxed) == version {
                return (&magic == MAGIC).then_some(published);
            }
        }
        None
    }

    /// Publish that `file_id` (generation `generation`) is the database and
    /// its committed records end at `end`. Called by the one writer, under
    /// its writer mutex, so updates never overlap.
    pub fn publish(&self, file_id: (u64, u64), generation: u64, end: u64) {
        let version = self.word(VERSION).load(Ordering::Relaxed);
        // Odd: a writer died mid-update; start from the next even value.
        let stable = version.wrapping_add(version % 2);
        self.word(VERSION)
            .store(stable.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.word(0)
            .store(u64::from_le_bytes(*MAGIC), Ordering::Relaxed);
        self.word(FILE_DEV).store(file_id.0, Ordering::Relaxed);
        self.word(FILE_INO).store(file_id.1, Ordering::Relaxed);
        self.word(GENERATION).store(generation, Ordering::Relaxed);
        self.word(END).store(end, Ordering::Relaxed);
        self.word(VERSION)
            .store(stable.wrapping_add(2), Ordering::Release);
    }

    /// Publish a new end of the same file (after an append).
    pub fn publish_end(&self, end: u64) {
        let version = self.word(VERSION).load(Ordering::Relaxed);
        let stable = version.wrapping_add(version % 2);
        self.word(VERSION)
            .store(stable.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.word(END).store(end, Ordering::Relaxed);
        self.word(VERSION)
            .store(stable.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_what_the_writer_publishes() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        // The reader first: it creates an empty page and sees nothing yet.
        let reader = SharedPage::open(&db, false).expect("reader");
        assert_eq!(reader.read(), None);
        let v0 = reader.version();
        let writer = SharedPage::open(&db, true).expect("writer");
        writer.publish((1, 2), 3, 64);
        assert_ne!(reader.version(), v0);
        let seen = reader.read().expect("published");
        assert_eq!((seen.file_id, seen.generation, seen.end), ((1, 2), 3, 64));
        assert_eq!(seen.version, reader.version());
        writer.publish_end(100);
        let again = reader.read().expect("published");
        assert_eq!((again.generation, again.end), (3, 100));
        assert!(again.version > seen.version);
    }

    #[test]
    fn a_torn_update_is_not_read_and_the_next_writer_repairs_it() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        let writer = SharedPage::open(&db, true).expect("writer");
        writer.publish((1, 2), 3, 64);
        // A writer killed between its two counter stores.
        writer.word(VERSION).fetch_add(1, Ordering::Relaxed);
        let reader = SharedPage::open(&db, false).expect("reader");
        assert_eq!(reader.read(), None);
        writer.publish_end(80);
        assert_eq!(reader.read().map(|p| p.end), Some(80));
    }

    #[test]
    fn links_short_pages_and_garbage_are_refused_or_harmless() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        let target = dir.path().join("victim");
        std::fs::write(&target, b"keep").expect("victim");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&target, super::super::paths::shm_path(&db)).expect("link");
            assert!(SharedPage::open(&db, true).is_err());
            assert_eq!(std::fs::read(&target).expect("victim"), b"keep");
            std::fs::remove_file(super::super::paths::shm_path(&db)).expect("unlink");
        }
        std::fs::write(super::super::paths::shm_path(&db), b"short").expect("short");
        assert!(SharedPage::open(&db, false).is_err(), "a reader refuses");
        let writer = SharedPage::open(&db, true).expect("a writer extends it");
        assert_eq!(writer.read(), None, "no magic: nothing published");
        std::fs::write(super::super::paths::shm_path(&db), vec![0xA5; 4096]).expect("garbage");
        let reader = SharedPage::open(&db, false).expect("reader");
        assert_eq!(reader.read(), None, "garbage has no magic");
    }
}
