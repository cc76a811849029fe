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
//! 64 lock        u64  the cross-process write lock: 0 free, else its holder's token
//! 72 waiters     u32  processes waiting for the lock
//! 76 wake        u32  bumped by every unlock that has waiters (a futex word)
//! 128 slots      256 x u64  the nonce of the handle that claimed each slot
//! 2176 tail_end  u64  the `end` the next two fields were published with
//! 2184 next_seq  u64  the sequence number of the next record
//! 2192 meta_end  u64  offset just past the last metadata (index definition) record
//! 2200 sync_ver  u64  even when stable; odd while the syncer updates the next three
//! 2208 sync_dev  u64  the file the last shared sync covered
//! 2216 sync_ino  u64
//! 2224 synced    u64  offset up to which that sync made the file durable
//! 2232 syncer    u64  the handle syncing for everyone: 0 none, else its token
//! 2240 sync_wake u32  bumped when a shared sync ends (a futex word)
//! 2244 sync_wait u32  processes waiting for it
//! ..4096         zero (reserved)
//! ```
//!
//! The tail fields let a writer append a plain put without first taking in
//! what the others appended (see `engine::follow`): the lock holder reads
//! where the next record goes and which sequence number it carries. They
//! count only while `tail_end` equals `end`: a writer that does not know
//! them (an older release) leaves them stale, and the next one takes in
//! everything and publishes them afresh.
//!
//! The sync fields make group commit work across processes: under
//! `fsync="always"`, one process at a time syncs the file for everyone
//! ([`SharedPage::lock_sync`]), and says how far that made it durable, so a
//! writer in another process whose record lies below finds it durable
//! without a sync of its own, and one whose record came later waits for the
//! sync in flight to end and then runs the next for all who wait.
//!
//! The write lock costs two atomic operations when nobody else wants it, so
//! a process alone on its database pays no syscall for it (one costs more
//! than a whole write here). A holder killed with the lock cannot release
//! it, so liveness is proven by the kernel instead: every handle that may
//! write claims a slot by holding an OFD lock on one byte of the page file
//! (released by the kernel when the process dies), and a waiter that finds
//! the holder's slot unlocked, or claimed since by another nonce, takes the
//! lock over ([`WriteLock::stolen`] tells the new holder to clean up after
//! the dead one).
//!
//! The page is untrusted input like every sidecar: its numbers are only
//! hints about where to look. A reader checks the published file against
//! the path and the file's own header, and reads the log through the frame
//! reader with its usual checks, so a crafted or stale page can at worst
//! make a reader look for news that is not there. A writer appends only
//! where the log holds nothing (`engine::follow`), so an end short of the
//! records overwrites none of them. Two things are taken on the page's word,
//! as from any process that may write the database: the write lock (a
//! crafted holder makes writers wait until it is found dead) and, under
//! `fsync="always"`, how far a shared sync reached (a crafted one would let
//! a write skip its own sync). Whoever can write the page can write the log
//! itself.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use memmap2::MmapRaw;

/// Size of the page file.
pub const SHARED_LEN: u64 = 4096;

const MAGIC: &[u8; 8] = b"FDBSHM01";
const VERSION: usize = 8;
const FILE_DEV: usize = 16;
const FILE_INO: usize = 24;
const GENERATION: usize = 32;
const END: usize = 40;
const LOCK: usize = 64;
const WAITERS: usize = 72;
const SLOTS: usize = 128;
/// Handles that may hold the write lock at once (one slot each).
pub const MAX_SLOTS: usize = 256;
const TAIL_END: usize = SLOTS + 8 * MAX_SLOTS;
const NEXT_SEQ: usize = TAIL_END + 8;
const META_END: usize = TAIL_END + 16;
const SYNC_VERSION: usize = TAIL_END + 24;
const SYNC_DEV: usize = TAIL_END + 32;
const SYNC_INO: usize = TAIL_END + 40;
const SYNCED: usize = TAIL_END + 48;
const SYNCER: usize = TAIL_END + 56;
const SYNC_WAKE: usize = TAIL_END + 64;
const SYNC_WAITERS: usize = TAIL_END + 68;
/// The OFD lock proving slot `i` alive covers byte `SLOT_LOCKS + i` of the
/// page file (past its end: a lock needs no bytes).
const SLOT_LOCKS: i64 = SHARED_LEN as i64;
/// Held (an OFD lock on this byte) by an `exclusive` writer for its life, so
/// a sharing opener refused by the file lock knows to give up at once.
const EXCLUSIVE_BYTE: i64 = SLOT_LOCKS + MAX_SLOTS as i64;
/// Held by the one process compacting the database.
const COMPACTION_BYTE: i64 = EXCLUSIVE_BYTE + 1;
/// Spins a waiter for the write lock makes before it sleeps on the futex
/// (about 22 µs of PAUSE on the 2-core machine we measure): a holder keeps
/// the lock for a microsecond or two, while a futex sleep and wake-up took
/// tens of microseconds there. 64 spins slept on about one set in six with
/// two writer processes; 2,000 took 2 processes from ~460k to ~615k sets/s
/// and 4 from ~305k to ~495k (500: ~590k / ~475k; 8,000: ~600k / ~445k).
const SPINS: u32 = 2000;
/// How long a waiter sleeps before it checks that the holder still lives.
const LIVENESS_CHECK: std::time::Duration = std::time::Duration::from_millis(5);

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

/// Where the log's next record goes, as the last holder of the write lock
/// left it ([`SharedPage::tail_held`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// Offset just past the last committed record: the next one goes here.
    pub end: u64,
    /// The sequence number the next record carries.
    pub next_seq: u64,
    /// Offset just past the last metadata record (or a later offset): a
    /// handle that took in less than this has index definitions to follow.
    pub meta_end: u64,
}

/// The mapped shared page of one database.
#[derive(Debug)]
pub struct SharedPage {
    map: MmapRaw,
    file: File,
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
        Ok(SharedPage { map, file })
    }

    fn word32(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset.is_multiple_of(4) && offset + 4 <= SHARED_LEN as usize);
        // SAFETY: as for `word`, for a u32.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u32>()) }
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

    /// What the page holds, read by the holder of the write lock: nobody
    /// updates it meanwhile, so a torn update (odd counter) is a dead
    /// writer's, and its fields are read as they are (each is whole; the
    /// holder checks them against the files). `None` without the magic.
    pub fn read_held(&self) -> Option<Published> {
        let magic = self.word(0).load(Ordering::SeqCst).to_le_bytes();
        (&magic == MAGIC).then(|| Published {
            version: self.word(VERSION).load(Ordering::SeqCst),
            file_id: (
                self.word(FILE_DEV).load(Ordering::SeqCst),
                self.word(FILE_INO).load(Ordering::SeqCst),
            ),
            generation: self.word(GENERATION).load(Ordering::SeqCst),
            end: self.word(END).load(Ordering::SeqCst),
        })
    }

    /// Publish that `file_id` (generation `generation`) is the database and
    /// its committed records end at `end`, the next one carrying sequence
    /// number `next_seq`. Called by the holder of the write lock (or a
    /// writer alone on the database), so updates never overlap. Returns the
    /// new counter value.
    pub fn publish(&self, file_id: (u64, u64), generation: u64, end: u64, next_seq: u64) -> u64 {
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
        // Where the definitions stand in a file just opened or switched to
        // is unknown here: as if one were written last.
        self.store_tail(end, next_seq, end);
        // Nothing of it is known durable through the page yet.
        self.store_synced((0, 0), 0);
        self.word(VERSION)
            .store(stable.wrapping_add(2), Ordering::Release);
        stable.wrapping_add(2)
    }

    /// Publish a new end of the same file (after an append), the next record
    /// carrying sequence number `next_seq`; `with_meta` when the append held
    /// a metadata record. Returns the new counter value.
    pub fn publish_end(&self, end: u64, next_seq: u64, with_meta: bool) -> u64 {
        let version = self.word(VERSION).load(Ordering::Relaxed);
        let stable = version.wrapping_add(version % 2);
        let tail_known =
            self.word(TAIL_END).load(Ordering::Relaxed) == self.word(END).load(Ordering::Relaxed);
        let meta_end = if with_meta || !tail_known {
            end
        } else {
            self.word(META_END).load(Ordering::Relaxed)
        };
        self.word(VERSION)
            .store(stable.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.word(END).store(end, Ordering::Relaxed);
        self.store_tail(end, next_seq, meta_end);
        self.word(VERSION)
            .store(stable.wrapping_add(2), Ordering::Release);
        stable.wrapping_add(2)
    }

    fn store_tail(&self, end: u64, next_seq: u64, meta_end: u64) {
        self.word(NEXT_SEQ).store(next_seq, Ordering::Relaxed);
        self.word(META_END).store(meta_end, Ordering::Relaxed);
        self.word(TAIL_END).store(end, Ordering::Relaxed);
    }

    /// Where the next record goes, read by the holder of the write lock:
    /// `None` when the page was never written, a writer died updating it,
    /// or the last writer did not publish the tail (all settled by taking
    /// in the log). Like every field of the page, only a hint: the caller
    /// checks the file and generation it names with [`SharedPage::read_held`].
    pub fn tail_held(&self) -> Option<Tail> {
        let magic = self.word(0).load(Ordering::SeqCst).to_le_bytes();
        let end = self.word(END).load(Ordering::SeqCst);
        let stable = self.word(VERSION).load(Ordering::SeqCst).is_multiple_of(2);
        (&magic == MAGIC && stable && self.word(TAIL_END).load(Ordering::SeqCst) == end).then(
            || Tail {
                end,
                next_seq: self.word(NEXT_SEQ).load(Ordering::SeqCst),
                meta_end: self.word(META_END).load(Ordering::SeqCst),
            },
        )
    }

    /// Forget the write lock's state (a holder and waiters): called by a
    /// writer that is alone on the database (see `storage::lock`), so any
    /// holder or waiter it names is a dead process's.
    pub fn reset_lock(&self) {
        self.word(LOCK).store(0, Ordering::SeqCst);
        self.word32(WAITERS).store(0, Ordering::SeqCst);
    }

    /// Mark this handle as the database's exclusive writer, for as long as
    /// the page stays open (the kernel drops the mark when the process dies).
    ///
    /// # Errors
    /// I/O errors from the lock.
    pub fn mark_exclusive(&self) -> io::Result<()> {
        ofd::try_lock(&self.file, EXCLUSIVE_BYTE).map(drop)
    }

    /// Whether an exclusive writer (another handle) has the database open.
    pub fn exclusive_held(&self) -> bool {
        ofd::is_locked(&self.file, EXCLUSIVE_BYTE).unwrap_or(false)
    }

    /// Be the one process compacting the database: `None` if another is
    /// (with `wait`, wait for it instead). Held until the guard is dropped
    /// or the process dies.
    ///
    /// # Errors
    /// I/O errors from the lock.
    pub fn lock_compaction(&self, wait: bool) -> io::Result<Option<CompactionLock<'_>>> {
        let taken = if wait {
            ofd::lock_wait(&self.file, COMPACTION_BYTE).map(|()| true)?
        } else {
            ofd::try_lock(&self.file, COMPACTION_BYTE)?
        };
        Ok(taken.then_some(CompactionLock { page: self }))
    }
}

/// The compaction lock of one page, held until dropped.
#[derive(Debug)]
pub struct CompactionLock<'p> {
    page: &'p SharedPage,
}

impl Drop for CompactionLock<'_> {
    fn drop(&mut self) {
        let _ = ofd::unlock(&self.page.file, COMPACTION_BYTE);
    }
}

/// This handle's claim on a slot of the page (see the module doc): held
/// until released, or the process dies.
#[derive(Debug)]
pub struct Slot {
    index: usize,
    nonce: u64,
}

/// The cross-process write lock, held until dropped.
#[derive(Debug)]
pub struct WriteLock<'p> {
    page: &'p SharedPage,
    /// The previous holder died holding it: what it was writing past the
    /// published end is garbage for the new holder to clear.
    pub stolen: bool,
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        self.page.word(LOCK).store(0, Ordering::SeqCst);
        if self.page.word32(WAITERS).load(Ordering::SeqCst) > 0 {
            // One waiter, not all: the others would only find it taken again
            // and sleep (a thundering herd of context switches on every
            // write). Whoever takes it wakes the next at its own release.
            self.page.word32(WAITERS + 4).fetch_add(1, Ordering::SeqCst);
            futex::wake_one(self.page.word32(WAITERS + 4));
        }
    }
}

impl SharedPage {
    /// Claim a free slot for this handle: the first whose byte lock nobody
    /// holds. Its nonce (random) tells its owner apart from a later one.
    ///
    /// # Errors
    /// `WouldBlock` when every slot is taken (more than [`MAX_SLOTS`]
    /// writing handles at once); I/O errors.
    pub fn claim_slot(&self) -> io::Result<Slot> {
        for index in 0..MAX_SLOTS {
            if ofd::try_lock(&self.file, SLOT_LOCKS + index as i64)? {
                let mut nonce = [0u8; 8];
                crate::crypto::random_bytes(&mut nonce)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                // Never 0 (a free lock) and never a value with no slot bits.
                let nonce = u64::from_le_bytes(nonce) >> 16 | 1;
                self.word(SLOTS + 8 * index).store(nonce, Ordering::SeqCst);
                return Ok(Slot { index, nonce });
            }
        }
        Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("more than {MAX_SLOTS} handles are writing this database"),
        ))
    }

    /// Give up `slot` (close): its byte lock is released.
    pub fn release_slot(&self, slot: &Slot) {
        self.word(SLOTS + 8 * slot.index).store(0, Ordering::SeqCst);
        let _ = ofd::unlock(&self.file, SLOT_LOCKS + slot.index as i64);
    }

    fn token(slot: &Slot) -> u64 {
        slot.nonce << 16 | (slot.index as u64 + 1)
    }

    /// Whether the holder of `token` is alive: its slot is still locked by
    /// someone, and by the handle that took the lock (same nonce). Asked of
    /// another handle's page: a page's own slot lock never conflicts with
    /// itself (a handle never waits on itself: its writer mutex comes first).
    fn holder_alive(&self, token: u64) -> bool {
        let index = (token & 0xFFFF) as usize;
        if index == 0 || index > MAX_SLOTS {
            return false; // not a token this code writes
        }
        let index = index - 1;
        self.word(SLOTS + 8 * index).load(Ordering::SeqCst) == token >> 16
            && ofd::is_locked(&self.file, SLOT_LOCKS + index as i64).unwrap_or(true)
    }

    /// The write lock as the handle holding `slot`, if it is free now (or
    /// comes free within a short spin); `None` rather than wait for a
    /// holder, live or dead ([`SharedPage::lock_writes`] waits, and takes
    /// it over from a dead one).
    pub fn try_lock_writes(&self, slot: &Slot) -> Option<WriteLock<'_>> {
        let me = Self::token(slot);
        let lock = self.word(LOCK);
        for _ in 0..64 {
            if lock
                .compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return Some(WriteLock {
                    page: self,
                    stolen: false,
                });
            }
            std::hint::spin_loop();
        }
        None
    }

    /// Take the write lock as the handle holding `slot`, waiting while a
    /// live holder has it, and taking it over from a dead one.
    pub fn lock_writes(&self, slot: &Slot) -> WriteLock<'_> {
        let me = Self::token(slot);
        let lock = self.word(LOCK);
        let mut spins = 0u32;
        loop {
            let held = match lock.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    return WriteLock {
                        page: self,
                        stolen: false,
                    }
                }
                Err(held) => held,
            };
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let waiters = self.word32(WAITERS);
            let wake = self.word32(WAITERS + 4);
            waiters.fetch_add(1, Ordering::SeqCst);
            let seen = wake.load(Ordering::SeqCst);
            let woken =
                lock.load(Ordering::SeqCst) != held || futex::wait(wake, seen, LIVENESS_CHECK);
            waiters.fetch_sub(1, Ordering::SeqCst);
            if !woken
                && lock.load(Ordering::SeqCst) == held
                && !self.holder_alive(held)
                && lock
                    .compare_exchange(held, me, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return WriteLock {
                    page: self,
                    stolen: true,
                };
            }
        }
    }
}

/// The right to sync the database file for every process, held until
/// [`SyncRound::finish`] or drop (a sync that failed publishes nothing).
#[derive(Debug)]
pub struct SyncRound<'p> {
    page: &'p SharedPage,
}

impl SyncRound<'_> {
    /// The sync made `file_id` durable up to `end`: say so to everyone.
    pub fn finish(self, file_id: (u64, u64), end: u64) {
        let page = self.page;
        let (file, synced) = page.synced();
        let synced = if file == Some(file_id) { synced } else { 0 };
        page.store_synced(file_id, synced.max(end));
    }
}

impl Drop for SyncRound<'_> {
    fn drop(&mut self) {
        self.page.word(SYNCER).store(0, Ordering::SeqCst);
        let wake = self.page.word32(SYNC_WAKE);
        wake.fetch_add(1, Ordering::SeqCst);
        if self.page.word32(SYNC_WAITERS).load(Ordering::SeqCst) > 0 {
            futex::wake_all(wake);
        }
    }
}

impl SharedPage {
    fn store_synced(&self, file_id: (u64, u64), end: u64) {
        let version = self.word(SYNC_VERSION).load(Ordering::Relaxed);
        let stable = version.wrapping_add(version % 2);
        self.word(SYNC_VERSION)
            .store(stable.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.word(SYNC_DEV).store(file_id.0, Ordering::Relaxed);
        self.word(SYNC_INO).store(file_id.1, Ordering::Relaxed);
        self.word(SYNCED).store(end, Ordering::Relaxed);
        self.word(SYNC_VERSION)
            .store(stable.wrapping_add(2), Ordering::Release);
    }

    /// The file the last shared sync covered and how far (`None`, 0 while
    /// it is being updated or was never written).
    fn synced(&self) -> (Option<(u64, u64)>, u64) {
        let version = self.word(SYNC_VERSION).load(Ordering::Acquire);
        let file = (
            self.word(SYNC_DEV).load(Ordering::Relaxed),
            self.word(SYNC_INO).load(Ordering::Relaxed),
        );
        let end = self.word(SYNCED).load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if version % 2 == 1 || self.word(SYNC_VERSION).load(Ordering::Relaxed) != version {
            return (None, 0);
        }
        (Some(file), end)
    }

    /// How far a shared sync made `file_id` durable (0: not known).
    pub fn synced_end(&self, file_id: (u64, u64)) -> u64 {
        match self.synced() {
            (Some(file), end) if file == file_id => end,
            _ => 0,
        }
    }

    /// Become the process that syncs for everyone, as the handle holding
    /// `slot`: `None` while another live handle is syncing (then
    /// [`SharedPage::wait_sync`]); a dead syncer's round is taken over.
    pub fn lock_sync(&self, slot: &Slot) -> Option<SyncRound<'_>> {
        let me = Self::token(slot);
        let syncer = self.word(SYNCER);
        match syncer.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => Some(SyncRound { page: self }),
            Err(held)
                if !self.holder_alive(held)
                    && syncer
                        .compare_exchange(held, me, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok() =>
            {
                Some(SyncRound { page: self })
            }
            Err(_) => None,
        }
    }

    /// Wait (briefly: at most [`LIVENESS_CHECK`]) for the shared sync in
    /// flight to end; the caller then looks again.
    pub fn wait_sync(&self) {
        let wake = self.word32(SYNC_WAKE);
        let waiters = self.word32(SYNC_WAITERS);
        waiters.fetch_add(1, Ordering::SeqCst);
        let seen = wake.load(Ordering::SeqCst);
        if self.word(SYNCER).load(Ordering::SeqCst) != 0 {
            futex::wait(wake, seen, LIVENESS_CHECK);
        }
        waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Byte-range OFD locks (open file description locks: owned by the open
/// file, not the process, so two handles of one process are told apart,
/// and released by the kernel when the last descriptor closes, e.g. when
/// the process dies).
mod ofd {
    use std::fs::File;
    use std::io;

    #[cfg(target_os = "linux")]
    fn lock_op(
        file: &File,
        cmd: libc::c_int,
        kind: libc::c_short,
        at: i64,
    ) -> io::Result<libc::flock> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: a zeroed flock is a valid value of this plain C struct.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = kind;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = at;
        fl.l_len = 1;
        // SAFETY: fcntl with an OFD lock command reads and writes `fl`,
        // which lives for the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(fl)
    }

    /// Lock byte `at` if nobody holds it: whether it was taken.
    #[cfg(target_os = "linux")]
    pub fn try_lock(file: &File, at: i64) -> io::Result<bool> {
        match lock_op(file, libc::F_OFD_SETLK, libc::F_WRLCK as libc::c_short, at) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lock byte `at`, waiting while another open file holds it.
    #[cfg(target_os = "linux")]
    pub fn lock_wait(file: &File, at: i64) -> io::Result<()> {
        loop {
            match lock_op(file, libc::F_OFD_SETLKW, libc::F_WRLCK as libc::c_short, at) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other.map(drop),
            }
        }
    }

    #[cfg(target_os = "linux")]
    pub fn unlock(file: &File, at: i64) -> io::Result<()> {
        lock_op(file, libc::F_OFD_SETLK, libc::F_UNLCK as libc::c_short, at).map(drop)
    }

    /// Whether another open file holds byte `at`.
    #[cfg(target_os = "linux")]
    pub fn is_locked(file: &File, at: i64) -> io::Result<bool> {
        let fl = lock_op(file, libc::F_OFD_GETLK, libc::F_WRLCK as libc::c_short, at)?;
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    }

    // Elsewhere (untested here): no slot is ever proven dead, so a holder
    // killed with the lock blocks writers until every process reopens.
    #[cfg(not(target_os = "linux"))]
    pub fn try_lock(_: &File, _: i64) -> io::Result<bool> {
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    pub fn lock_wait(_: &File, _: i64) -> io::Result<()> {
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    pub fn unlock(_: &File, _: i64) -> io::Result<()> {
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    pub fn is_locked(_: &File, _: i64) -> io::Result<bool> {
        Ok(true)
    }
}

/// Waiting on a word of the shared page across processes (a non-private
/// futex: the kernel keys it by the file page, so every process mapping
/// the page meets the same queue).
mod futex {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// Sleep while `word` holds `seen`, at most `timeout`: whether it was
    /// woken (or the word had already moved) rather than timed out.
    #[cfg(target_os = "linux")]
    pub fn wait(word: &AtomicU32, seen: u32, timeout: Duration) -> bool {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT reads the u32 at `word` (valid, aligned, in a
        // shared mapping that outlives the call) and the timespec.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                seen,
                &ts as *const libc::timespec,
                std::ptr::null::<u32>(),
                0u32,
            )
        };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
    }

    #[cfg(target_os = "linux")]
    pub fn wake_one(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE only uses the address as the queue's key.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn wait(_: &AtomicU32, _: u32, timeout: Duration) -> bool {
        std::thread::sleep(timeout.min(Duration::from_micros(200)));
        false
    }
    #[cfg(target_os = "linux")]
    pub fn wake_all(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE only uses the address as the queue's key.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn wake_one(_: &AtomicU32) {}
    #[cfg(not(target_os = "linux"))]
    pub fn wake_all(_: &AtomicU32) {}
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
        writer.publish((1, 2), 3, 64, 1);
        assert_ne!(reader.version(), v0);
        let seen = reader.read().expect("published");
        assert_eq!((seen.file_id, seen.generation, seen.end), ((1, 2), 3, 64));
        assert_eq!(seen.version, reader.version());
        writer.publish_end(100, 2, false);
        let again = reader.read().expect("published");
        assert_eq!((again.generation, again.end), (3, 100));
        assert!(again.version > seen.version);
    }

    #[test]
    fn a_torn_update_is_not_read_and_the_next_writer_repairs_it() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        let writer = SharedPage::open(&db, true).expect("writer");
        writer.publish((1, 2), 3, 64, 1);
        // A writer killed between its two counter stores.
        writer.word(VERSION).fetch_add(1, Ordering::Relaxed);
        let reader = SharedPage::open(&db, false).expect("reader");
        assert_eq!(reader.read(), None);
        writer.publish_end(80, 2, false);
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

    #[test]
    fn the_write_lock_serializes_handles_across_threads() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        const COUNTER: usize = 3000;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let db = &db;
                scope.spawn(move || {
                    // A handle of its own: its own page mapping and slot.
                    let page = SharedPage::open(db, true).expect("page");
                    let slot = page.claim_slot().expect("slot");
                    for _ in 0..2000 {
                        let _held = page.lock_writes(&slot);
                        // A read then a write, not one atomic add: only the
                        // lock keeps increments from being lost.
                        let n = page.word(COUNTER).load(Ordering::Relaxed);
                        std::hint::spin_loop();
                        page.word(COUNTER).store(n + 1, Ordering::Relaxed);
                    }
                    page.release_slot(&slot);
                });
            }
        });
        let page = SharedPage::open(&db, true).expect("page");
        assert_eq!(page.word(COUNTER).load(Ordering::Relaxed), 8000);
    }

    #[test]
    fn slots_are_exclusive_and_freed_on_release() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        let a = SharedPage::open(&db, true).expect("page");
        let b = SharedPage::open(&db, true).expect("page");
        let first = a.claim_slot().expect("slot");
        let second = b.claim_slot().expect("slot");
        assert_ne!(first.index, second.index);
        // (Asked through another open file: its own locks never conflict.)
        assert!(b.holder_alive(SharedPage::token(&first)));
        assert!(a.holder_alive(SharedPage::token(&second)));
        let index = first.index;
        let token = SharedPage::token(&first);
        a.release_slot(&first);
        assert!(!b.holder_alive(token), "a released slot proves nothing");
        assert_eq!(b.claim_slot().expect("slot").index, index, "and is reused");
    }

    #[test]
    fn a_lock_left_by_a_dead_or_made_up_holder_is_taken_over() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        let page = SharedPage::open(&db, true).expect("page");
        let slot = page.claim_slot().expect("slot");
        for garbage in [0x1234_5678_0005u64, u64::MAX, 7 << 16] {
            page.word(LOCK).store(garbage, Ordering::SeqCst);
            let held = page.lock_writes(&slot);
            assert!(held.stolen, "{garbage:#x}");
            drop(held);
            assert_eq!(page.word(LOCK).load(Ordering::SeqCst), 0);
        }
        let held = page.lock_writes(&slot);
        assert!(!held.stolen);
    }

    #[test]
    fn a_live_holder_is_waited_for_not_robbed() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("app.db");
        let holder = SharedPage::open(&db, true).expect("page");
        let holder_slot = holder.claim_slot().expect("slot");
        let held = holder.lock_writes(&holder_slot);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let db = &db;
            scope.spawn(move || {
                let page = SharedPage::open(db, true).expect("page");
                let slot = page.claim_slot().expect("slot");
                tx.send("waiting").expect("send");
                let got = page.lock_writes(&slot);
                tx.send(if got.stolen { "stolen" } else { "handed over" })
                    .expect("send");
            });
            assert_eq!(rx.recv().expect("recv"), "waiting");
            // Several liveness checks pass while the holder lives.
            assert!(rx.recv_timeout(LIVENESS_CHECK * 20).is_err());
            drop(held);
            assert_eq!(rx.recv().expect("recv"), "handed over");
        });
    }
}
