//! `Database`: open/recover, get/set/delete, ordered scans, flush and close.
//!
//! Write path: every change goes through `Inner::apply` (engine/write.rs),
//! under the writer mutex; syncing happens after the mutex is released so
//! concurrent writers can share one fsync (group commit). Read path: look up
//! the location under a read lock, clone the log handle, drop the lock, then
//! read and verify the record.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::config::{Config, FsyncPolicy};
use crate::error::{Error, Result};
use crate::format::{
    FileHeader, HintEntry, HintHeader, RecordKind, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
use crate::storage::{self, GroupSync, Joined, LockMode, Log, Medium, SharedPage, WriterLock};

use super::background::Background;
use super::follow::Shared;
use super::health::Health;
use super::keydir::{Keyspace, Loc};
use super::observer::{ChangeObserver, SIDECAR_DIGEST_META};
use super::stats::{Counters, Stats};
use super::write::Write;
use crate::clock::Clock;

/// A value read from the log: the record buffer and where the JSON sits in it
/// (so the read path copies the bytes once, from the OS into this buffer).
#[derive(Debug, Clone)]
pub struct ValueBuf {
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
}

impl From<Vec<u8>> for ValueBuf {
    /// Bytes held elsewhere (another backend's answer), as a value.
    fn from(buf: Vec<u8>) -> Self {
        let range = 0..buf.len();
        ValueBuf { buf, range }
    }
}

impl ValueBuf {
    /// The JSON bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.range.clone()).unwrap_or_default()
    }
}

pub(super) struct State {
    pub ks: Keyspace,
    pub log: Arc<Log>,
    /// The hint on disk that vouches for the current file's prefix: the one
    /// this handle loaded, or wrote at close (`None` without one, e.g.
    /// after a compaction until the next close writes one). Sidecars built
    /// from this state (the index file) name it as their basis.
    pub basis: Option<HintHeader>,
}

impl State {
    /// Bytes the header and the live records take in the file (with the
    /// envelope of each record, in an encrypted one).
    pub fn live_total(&self) -> u64 {
        let records = (self.ks.keydir.len() + self.ks.meta.len()) as u64;
        self.ks.live_bytes + records * self.log.record_overhead() + self.log.data_start()
    }
}

pub(super) struct Writer {
    /// Offset where the next record goes.
    pub end: u64,
    /// Offset of the last record (a hint anchors on it).
    pub last_record: Option<u64>,
    /// Records before this offset are described by the current hint file.
    pub hint_end: u64,
    pub seq: u64,
    pub log: Arc<Log>,
    pub generation: u64,
    /// Device and inode of the log's file (`None` in memory).
    pub file_id: Option<(u64, u64)>,
    /// Reused by every write (see engine::write), so a write allocates
    /// nothing once they are warm: the encoded record(s),
    pub buf: Vec<u8>,
    /// where each write's record starts in `buf`,
    pub offsets: Vec<usize>,
    /// and the old value of each write, for an observer that wants them
    /// (emptied after each call).
    pub old: Vec<Option<ValueBuf>>,
    /// Another process's metadata (an index definition) was taken in since
    /// the observer last followed it (see [`Database::lock_writer`]).
    pub definitions_moved: bool,
    /// Set by a deferring lock (see `engine::follow`) for the next `apply`:
    /// append there, without taking in what lies before it.
    pub deferred: Option<storage::Tail>,
    /// Offset just past this handle's last deferred append: its own reads
    /// take in at least this far, even when the page cannot be read.
    pub deferred_end: u64,
}

/// The shared state of every handle on one open database.
///
/// # Lock order
///
/// A thread holding more than one of these locks took them in this order
/// (it may skip any), never the other way round:
///
/// 1. `compacting`: one compaction or backup at a time (close waits on it);
/// 2. `writer`: every change to the key space is made under it (see
///    engine::write), which orders the keydir like the log. `state` is
///    written only under it, so its holder sees a key space that nobody
///    else changes;
/// 3. `state`: the key directory and the current log; held briefly, never
///    across a call to the observer or a sync;
/// 4. `lock`: the writer-lock slot (compaction moves the lock to the new
///    file under `writer`);
/// 5. the mutexes inside `sync` (never held across the sync itself) and
///    `health`;
/// 6. `background`'s run state (a write asks for a compaction under
///    `writer`);
/// 7. the observer's own locks (indexes, watchers): it is called under
///    `writer` only, never under `state`, so it may read the database.
///
/// `stop_flusher` is only ever taken alone.
pub(super) struct Inner {
    /// This `Inner` itself, for the background threads it starts (which
    /// hold it only weakly, see engine::background).
    pub me: Weak<Inner>,
    /// The path as given (shown to the user).
    pub path: Option<PathBuf>,
    /// The file it resolved to at open (symlinks followed, absolute): every
    /// file operation (rename, sidecars, backup) uses this one, so work done
    /// through a symlinked path changes the real file.
    pub file: Option<PathBuf>,
    pub fsync: FsyncPolicy,
    pub read_only: bool,
    // `state`, `sync` and `health` are shared with the periodic flusher thread
    // by `Arc` (not through a `Weak<Inner>` it would upgrade): a flusher that
    // held the whole `Inner`, even briefly, could outlive the last handle and
    // keep the writer lock after the user dropped the database.
    pub state: Arc<RwLock<State>>,
    /// Whether the open read a hint file instead of the whole log.
    pub hinted: bool,
    /// The shared page (see storage::shared): a writer publishes every
    /// append into it, a read-only handle follows it (engine::follow).
    pub shared: Option<Shared>,
    pub writer: Mutex<Writer>,
    pub sync: Arc<GroupSync>,
    pub counters: Counters,
    pub clock: Clock,
    pub observer: OnceLock<Arc<dyn ChangeObserver>>,
    /// Closed, poisoned by a failed sync, or holding a background error.
    pub health: Arc<Health>,
    pub compacting: Mutex<()>,
    pub background: Arc<Background>,
    pub lock: Mutex<Option<WriterLock>>,
    pub stop_flusher: Mutex<Option<mpsc::Sender<()>>>,
}

/// An open database. Cheap to clone (a shared handle); safe to use from many
/// threads at once.
#[derive(Clone)]
pub struct Database {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.path)
            .field("keys", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A close writes a hint file when at least this much of the log is not
/// described by one (below it, replaying the log at open is quick anyway).
const HINT_AT_CLOSE_BYTES: u64 = 8 << 20;

/// Name used in error messages for a database without a file.
const MEMORY_NAME: &str = ":memory:";

impl Database {
    /// Open (creating if missing) the database described by `config`.
    ///
    /// Takes the single-writer lock unless read-only, then replays the log to
    /// rebuild the key directory, cutting off a torn tail left by a crash.
    ///
    /// # Errors
    /// [`Error::Locked`] if another process writes it, [`Error::Corruption`] /
    /// [`Error::UnsupportedVersion`] for a damaged or foreign file, I/O errors.
    pub fn open(config: &Config) -> Result<Self> {
        Self::open_with_lock(config, None)
    }

    /// [`Database::open`], with the writer lock on the file already held
    /// (`lock`, which salvage hands over); `None` takes it here.
    pub(super) fn open_with_lock(config: &Config, lock: Option<WriterLock>) -> Result<Self> {
        let file = config
            .path
            .as_deref()
            .map(|p| storage::resolve(p).map_err(|e| Error::io(p, e)))
            .transpose()?;
        let name = config
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(MEMORY_NAME));
        let now = config.clock.now_ms();
        let Opened {
            log,
            header,
            loaded,
            lock,
            shared,
            file_id,
        } = match &file {
            None => {
                let log = storage::memory_log(Path::new(MEMORY_NAME), config.encryption.as_ref())?;
                let loaded =
                    load_keyspace(None, &log.medium, &log.header, &name, now, (false, None))?;
                Opened {
                    log: log.medium,
                    header: log.header,
                    loaded,
                    lock: None,
                    shared: None,
                    file_id: None,
                }
            }
            Some(path) if config.read_only => open_reader(path, config, &name, now)?,
            Some(path) => open_writer(path, config, lock, &name, now)?,
        };
        let Loaded {
            ks,
            end,
            last_record,
            hint_end: start,
            max_seq,
            hinted,
            from_hint,
        } = loaded;
        let log = Arc::new(log);
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            path: config.path.clone(),
            file,
            fsync: config.fsync,
            read_only: config.read_only,
            state: Arc::new(RwLock::new(State {
                ks,
                log: log.clone(),
                basis: from_hint,
            })),
            hinted,
            shared,
            writer: Mutex::new(Writer {
                end,
                last_record,
                hint_end: start,
                seq: max_seq + 1,
                log,
                generation: header.generation,
                file_id,
                buf: Vec::with_capacity(4096),
                offsets: Vec::new(),
                old: Vec::new(),
                definitions_moved: false,
                deferred: None,
                deferred_end: 0,
            }),
            sync: Arc::new(GroupSync::default()),
            counters: Counters::new(),
            clock: config.clock.clone(),
            observer: OnceLock::new(),
            health: Arc::new(Health::new(name.clone())),
            compacting: Mutex::new(()),
            background: Arc::new(Background::new(if config.read_only {
                None
            } else {
                config.auto_compact
            })),
            lock: Mutex::new(lock),
            stop_flusher: Mutex::new(None),
        });
        if let (FsyncPolicy::Periodic(every), Some(_), false) =
            (config.fsync, &config.path, config.read_only)
        {
            *inner.stop_flusher.lock() = Some(spawn_flusher(&inner, every));
        }
        Ok(Database { inner })
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The file the database is (its path resolved at open: symlinks
    /// followed, absolute), or `None` for an in-memory database.
    pub fn file_path(&self) -> Option<&Path> {
        self.inner.file.as_deref()
    }

    /// The durability policy in force.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.inner.fsync
    }

    /// Whether writes are refused.
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// Whether reads are served from memory (a shared mapping or an in-memory
    /// database) rather than by read syscalls. Bindings use this to decide
    /// whether releasing the interpreter lock around a read is worth its cost.
    pub fn reads_from_memory(&self) -> bool {
        // Writer handles map their log at open and keep it mapped (compaction
        // maps the new file); read-only handles use positional reads.
        !self.inner.read_only || self.inner.path.is_none()
    }

    /// Whether this handle sees writes made after it opened by other
    /// processes: always for a writer (no other process writes beside it),
    /// and for a read-only handle that follows the writer through the
    /// shared page (`false` only when the page could not be opened, e.g.
    /// in a read-only directory: the handle is then a snapshot).
    pub fn is_live(&self) -> bool {
        self.inner.is_live()
    }

    /// For a read-only handle that follows a writer: a weak handle with
    /// which a waiter (a change feed) looks for news itself.
    pub fn follower(&self) -> Option<super::Follower> {
        (self.inner.read_only && self.inner.shared.is_some())
            .then(|| super::Follower::new(&self.inner))
    }

    /// Take in other processes' writes now. Every call on the handle does
    /// this first; layers above the engine call it before reading state of
    /// their own (indexes).
    ///
    /// # Errors
    /// As any read: closed, poisoned, or an error reading the new records.
    pub fn refresh(&self) -> Result<()> {
        self.check_open()
    }

    /// Whether [`Database::close`] has run.
    pub fn is_closed(&self) -> bool {
        self.inner.health.is_closed()
    }

    /// Whether a failed sync has poisoned this handle: every call but
    /// [`Database::close`] then fails with [`Error::Poisoned`]; reopen the
    /// database to recover from what is on disk.
    pub fn is_poisoned(&self) -> bool {
        self.inner.health.is_poisoned()
    }

    /// Whether this open read a hint file for most of the key directory
    /// instead of replaying the whole log.
    pub fn opened_with_hint(&self) -> bool {
        self.inner.hinted
    }

    /// The file name used in error messages (`:memory:` without a file).
    /// Borrowed: the read path passes it for every record it verifies.
    pub(super) fn name(&self) -> &Path {
        self.inner.name()
    }

    /// Every call on the handle starts here (see [`Health`]): closed,
    /// poisoned by a failed sync, or a background error to raise.
    pub(super) fn check_open(&self) -> Result<()> {
        self.inner.health.check()?;
        self.inner.follow()
    }

    /// The handle is open and may write. Unlike a read it takes in nothing
    /// yet: the write lock does that ([`Database::lock_writer`]), or defers it.
    pub(super) fn check_writable(&self) -> Result<()> {
        self.inner.health.check()?;
        if self.inner.read_only {
            return Err(Error::ReadOnly);
        }
        Ok(())
    }

    /// Number of live keys. O(1), plus the purge of keys that expired since
    /// the last call.
    pub fn len(&self) -> usize {
        // Infallible: an error taking in another process's writes is met
        // by the next call that can raise it.
        let _ = self.inner.follow();
        self.purge_expired();
        self.inner.state.read().ks.keydir.len()
    }

    /// Drop the keys whose TTL has passed now (telling the observer, so
    /// indexes drop them too): afterwards every key in the key directory and
    /// in the indexes is live. O(1) when none has expired.
    pub fn purge_expired_now(&self) {
        self.purge_expired();
    }

    /// Drop keys whose TTL has passed from memory, so counts and iteration
    /// agree with point reads (which check expiry themselves).
    fn purge_expired(&self) {
        self.purge_expired_at(self.inner.clock.now_ms(), true);
    }

    /// Purge if the writer mutex is free right now; otherwise leave it for
    /// later. For paths that may run with writers paused by this thread
    /// (index builds page through documents that way); they filter expired
    /// keys themselves, so skipping the purge changes nothing they return.
    fn try_purge_expired(&self) {
        self.purge_expired_at(self.inner.clock.now_ms(), false);
    }

    pub(super) fn purge_expired_at(&self, now: u64, wait: bool) {
        if !self.inner.state.read().ks.has_expired(now) {
            return;
        }
        // Under the writer mutex, like every other change, so an observer sees
        // expirations in order with puts and deletes of the same keys.
        let mut w = if wait {
            self.inner.writer.lock()
        } else {
            match self.inner.writer.try_lock() {
                Some(w) => w,
                None => return,
            }
        };
        self.inner.expire(&mut w, now);
    }

    /// The hint file that vouches for this file's prefix, as its header:
    /// the one the open loaded (or a close wrote since), `None` when there
    /// is none (no hint, an encrypted or in-memory database, or just after
    /// a compaction). A sidecar built at close names it (see
    /// [`ChangeObserver::persist_at_close`]); an open trusts the sidecar
    /// only when it names the same hint (and hashes to the digest the close
    /// recorded, [`SIDECAR_DIGEST_META`]).
    pub fn hint_basis(&self) -> Option<HintHeader> {
        self.inner.state.read().basis
    }

    /// Run `visit` over every live key and its location, in key order,
    /// under one read lock of the key directory (hold writers paused around
    /// it for a view that agrees with the observer's).
    pub fn with_live_locations<T>(
        &self,
        visit: impl FnOnce(&mut dyn Iterator<Item = (&str, Loc)>) -> T,
    ) -> T {
        let now = self.inner.clock.now_ms();
        let st = self.inner.state.read();
        let mut live = st.ks.keydir.live(now);
        visit(&mut live)
    }

    /// Register the observer of every change (see [`ChangeObserver`]). Only one
    /// can be registered; returns false if one already was.
    pub fn set_observer(&self, observer: Arc<dyn ChangeObserver>) -> bool {
        self.inner.observer.set(observer).is_ok()
    }

    /// Whether no write is under way in this process: nobody holds the
    /// writer mutex, which every change to the key directory (this
    /// process's writes, other processes' taken in, expirations) is made
    /// under, with the observer told before it is released. If a reader saw
    /// a change's effect, that change's writer either holds the mutex still,
    /// or its release, and all the observer saw before it, is visible after
    /// this returns true: so an observer's counter read after this and equal
    /// to one read before shows that nothing changed in between (how a query
    /// answered exactly by an index skips re-checking its documents).
    pub fn writes_idle(&self) -> bool {
        let idle = !self.inner.writer.is_locked();
        // Pairs with the unlock (a release) whose result the load saw.
        std::sync::atomic::fence(Ordering::Acquire);
        idle
    }

    /// Run `f` with writers paused (holding the writer mutex), e.g. to build
    /// an index from a consistent view of the data.
    pub fn with_writes_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let _w = self.inner.writer.lock();
        let _paused = super::follow::PausedHere::mark();
        f()
    }

    /// Store a metadata entry (an index definition) in its own namespace.
    ///
    /// # Errors
    /// As [`Database::put_raw`].
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<()> {
        validate_key(key)?;
        if value.is_empty() {
            return Err(Error::InvalidValue {
                path: "$".into(),
                reason: "metadata values cannot be empty".into(),
            });
        }
        self.check_writable()?;
        let ticket = {
            let mut w = self.inner.lock_writer(false)?;
            self.inner.apply(&mut w, &[Write::meta(key, value)])?
        };
        self.make_durable(ticket)
    }

    /// Remove a metadata entry; returns whether it existed.
    ///
    /// # Errors
    /// As [`Database::delete`].
    pub fn delete_meta(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        self.check_writable()?;
        let ticket = {
            let mut w = self.inner.lock_writer(false)?;
            if !self.inner.state.read().ks.meta.contains_key(key) {
                return Ok(false);
            }
            self.inner.apply(&mut w, &[Write::meta(key, b"")])?
        };
        self.make_durable(ticket)?;
        Ok(true)
    }

    /// A number that changes whenever a metadata entry is written or removed,
    /// by this handle or (once taken in) another process: a layer above
    /// re-reads its definitions when it moved.
    pub fn meta_writes(&self) -> u64 {
        self.inner.state.read().ks.meta_writes
    }

    /// Every metadata entry whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// [`Error::Closed`], corruption or I/O errors.
    pub fn meta_entries(&self, prefix: &str) -> Result<Vec<(String, ValueBuf)>> {
        self.check_open()?;
        let (locs, log) = {
            let st = self.inner.state.read();
            let locs: Vec<(String, Loc)> = st
                .ks
                .meta
                .range_from(prefix, None)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, l)| (String::from(&**k), *l))
                .collect();
            (locs, st.log.clone())
        };
        locs.into_iter()
            .map(|(k, loc)| Ok((k.clone(), self.read_value(&log, &k, loc)?)))
            .collect()
    }

    /// The clock used for expiry (a manual one in tests).
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Seconds until `key` expires: `None` if it is missing, `Some(None)` if it
    /// never expires.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn ttl(&self, key: &str) -> Result<Option<Option<f64>>> {
        self.check_open()?;
        let now = self.inner.clock.now_ms();
        let st = self.inner.state.read();
        Ok(match st.ks.keydir.get(key) {
            Some(loc) if loc.is_live(now) => {
                Some((loc.expires_at != 0).then(|| (loc.expires_at - now) as f64 / 1000.0))
            }
            _ => None,
        })
    }

    /// Whether there are no live keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is live (no disk read).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn contains(&self, key: &str) -> Result<bool> {
        self.check_open()?;
        let st = self.inner.state.read();
        Ok(match st.ks.keydir.get(key) {
            Some(loc) => loc.is_live_by(&self.inner.clock),
            None => false,
        })
    }

    /// The JSON bytes stored under `key`, verified against their checksum.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Corruption`] if the record is damaged, I/O errors.
    pub fn get_raw(&self, key: &str) -> Result<Option<ValueBuf>> {
        self.check_open()?;
        Counters::bump(&self.inner.counters.gets);
        let (loc, log) = {
            let st = self.inner.state.read();
            match st.ks.keydir.get(key) {
                Some(loc) if loc.is_live_by(&self.inner.clock) => (*loc, st.log.clone()),
                _ => return Ok(None),
            }
        };
        self.read_value(&log, key, loc).map(Some)
    }

    pub(super) fn read_value(&self, log: &Log, key: &str, loc: Loc) -> Result<ValueBuf> {
        self.inner.read_value(log, key, loc)
    }

    /// Store JSON bytes under `key`. The caller guarantees `value` is one valid
    /// JSON document (the Python layer and [`crate::FerrumDB`] produce it).
    ///
    /// Returns once the record is in the OS (and, under `FsyncPolicy::Always`,
    /// on stable storage).
    ///
    /// # Errors
    /// [`Error::InvalidKey`], [`Error::InvalidValue`] (too large), [`Error::Closed`],
    /// [`Error::ReadOnly`], I/O errors (nothing is published when the write
    /// itself fails). A failed sync under `FsyncPolicy::Always` raises the
    /// sync's error and poisons the handle ([`Error::Poisoned`] from then
    /// on), so the value is never served; after a reopen it may or may not
    /// be there, as after a crash during the call.
    pub fn put_raw(&self, key: &str, value: &[u8]) -> Result<()> {
        self.put_raw_expiring(key, value, 0)
    }

    /// Like [`Database::put_raw`], with the key expiring `ttl` from now.
    ///
    /// # Errors
    /// As [`Database::put_raw`]; [`Error::InvalidValue`] for a zero TTL.
    pub fn put_raw_with_ttl(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        self.put_raw_expiring(key, value, self.expiry_after(ttl)?)
    }

    pub(super) fn put_raw_expiring(&self, key: &str, value: &[u8], expires_at: u64) -> Result<()> {
        let ticket = self.put_raw_unsynced(key, value, expires_at)?;
        self.make_durable(ticket)
    }

    /// [`Database::put_raw`] (expiring at `expires_at`, a clock time in ms,
    /// or never for 0) up to the sync the fsync policy asks for, which is
    /// left to the caller: it returns the ticket to give
    /// [`Database::make_durable`]. The write is visible at once; it is
    /// acknowledged as durable only once that returns. For a caller that
    /// lets many writes in flight share one sync (asyncio's group commit).
    ///
    /// # Errors
    /// As [`Database::put_raw`], less the sync's.
    pub fn put_raw_unsynced(&self, key: &str, value: &[u8], expires_at: u64) -> Result<u64> {
        validate_key(key)?;
        validate_value(value)?;
        self.check_writable()?;
        let mut w = self.lock_writer(true)?;
        self.inner
            .apply(&mut w, &[Write::put(key, value, expires_at)])
    }

    /// The clock time in ms at which a key written now with `ttl` expires
    /// (for [`Database::put_raw_unsynced`]).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for a zero TTL.
    pub fn expiry_after(&self, ttl: Duration) -> Result<u64> {
        Ok(self.inner.clock.now_ms().saturating_add(ttl_millis(ttl)?))
    }

    /// Remove `key`. Returns whether it was live. Writes nothing if it was not.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::ReadOnly`], I/O errors.
    pub fn delete(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        self.check_writable()?;
        let ticket = {
            let mut w = self.lock_writer(false)?;
            let now = self.inner.clock.now_ms();
            let live = self
                .inner
                .state
                .read()
                .ks
                .keydir
                .get(key)
                .is_some_and(|loc| loc.is_live(now));
            if !live {
                return Ok(false);
            }
            self.inner.apply(&mut w, &[Write::delete(key)])?
        };
        self.make_durable(ticket)?;
        Ok(true)
    }

    /// Wait until the write that returned `ticket` is as durable as the
    /// fsync policy promises (on stable storage under
    /// `FsyncPolicy::Always`, sharing one sync with every write in flight;
    /// nothing to wait for otherwise).
    ///
    /// # Errors
    /// The sync's error, which poisons the handle (see [`Database::put_raw`]).
    pub fn make_durable(&self, ticket: u64) -> Result<()> {
        if self.inner.fsync == FsyncPolicy::Always {
            self.inner.sync_until(ticket)?;
        }
        Ok(())
    }

    /// Up to `limit` keys starting with `prefix`, in key order, strictly after
    /// `after` when given (a paging cursor).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn keys_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.check_open()?;
        self.try_purge_expired();
        let now = self.inner.clock.now_ms();
        let st = self.inner.state.read();
        Ok(st
            .ks
            .keydir
            .range_from(prefix, after)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, loc)| loc.is_live(now))
            .take(limit)
            .map(|(k, _)| String::from(&**k))
            .collect())
    }

    /// Up to `limit` `(key, value)` pairs starting with `prefix`, in key order,
    /// strictly after `after` when given. Locations are taken under one read
    /// lock and values read after it is released.
    ///
    /// # Errors
    /// [`Error::Closed`], corruption or I/O errors while reading values.
    pub fn items_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ValueBuf)>> {
        let page = self.entries_page(prefix, after, limit)?;
        Ok(page.into_iter().map(|(k, v, _)| (k, v)).collect())
    }

    /// Like [`Database::items_page`], with each entry's expiry: `(key, value,
    /// expires_at)` where `expires_at` is Unix milliseconds, 0 for none (what
    /// JSON Lines export needs to keep TTLs).
    ///
    /// # Errors
    /// [`Error::Closed`], corruption or I/O errors while reading values.
    pub fn entries_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ValueBuf, u64)>> {
        self.check_open()?;
        self.try_purge_expired();
        let now = self.inner.clock.now_ms();
        let (locs, log) = {
            let st = self.inner.state.read();
            let locs: Vec<(String, Loc)> = st
                .ks
                .keydir
                .range_from(prefix, after)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(_, loc)| loc.is_live(now))
                .take(limit)
                .map(|(k, l)| (String::from(&**k), *l))
                .collect();
            (locs, st.log.clone())
        };
        locs.into_iter()
            .map(|(k, loc)| {
                let v = self.read_value(&log, &k, loc)?;
                Ok((k, v, loc.expires_at))
            })
            .collect()
    }

    /// Like [`Database::put_raw`], expiring at `expires_at_ms` (Unix
    /// milliseconds, as stored on disk; 0 for never), for restoring exported
    /// TTLs. A time already past stores a key that is immediately invisible.
    ///
    /// # Errors
    /// As [`Database::put_raw`].
    pub fn put_raw_expiring_at(&self, key: &str, value: &[u8], expires_at_ms: u64) -> Result<()> {
        self.put_raw_expiring(key, value, expires_at_ms)
    }

    /// Force everything written so far to stable storage.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::Poisoned`], I/O errors; a failed sync
    /// poisons the handle.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.inner.flush()
    }

    /// Writes this handle appended without first taking in what other
    /// processes appended (see `engine::follow`), since open. For tests and
    /// diagnostics.
    #[doc(hidden)]
    pub fn deferred_writes(&self) -> u64 {
        self.inner
            .counters
            .deferred
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counters and sizes.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        let c = &self.inner.counters;
        let keys = self.len() as u64;
        let file_bytes = self.inner.writer.lock().end;
        Ok(Stats {
            keys,
            gets: c.gets.load(Ordering::Relaxed),
            sets: c.sets.load(Ordering::Relaxed),
            deletes: c.deletes.load(Ordering::Relaxed),
            ops_per_sec: c.rate(),
            uptime_s: c.started.elapsed().as_secs_f64(),
            file_bytes,
            live_bytes: self.inner.state.read().live_total(),
            index_bytes: self.inner.observer.get().map_or(0, |o| o.memory_bytes()),
            compactions: self.compactions(),
        })
    }

    /// Flush, stop the background flusher and release the writer lock.
    /// Idempotent; every later call fails with [`Error::Closed`].
    ///
    /// # Errors
    /// The final flush's I/O error (the handle is closed regardless).
    ///
    /// A handle poisoned by a failed sync is released without syncing,
    /// trimming or writing a hint (nothing more is trusted to the file), and
    /// raises the poison error if no call has raised it yet; a background
    /// error nobody has seen yet is raised here too.
    pub fn close(&self) -> Result<()> {
        let inner = &self.inner;
        {
            let _w = inner.writer.lock();
            if inner.health.set_closed() {
                return Ok(());
            }
        }
        drop(inner.stop_flusher.lock().take());
        // A compaction (or backup) under way sees the flag and gives up;
        // wait for it, so nothing of it outlives the writer lock.
        drop(inner.compacting.lock());
        let healthy = !inner.read_only && !inner.health.is_poisoned();
        let (result, hint) = if healthy {
            inner.finish_file()
        } else {
            (Ok(()), Ok(()))
        };
        if let Some(shared) = &inner.shared {
            shared.release();
        }
        drop(inner.lock.lock().take());
        // Wipe the encryption key now, not when the last handle is dropped,
        // and let go of the file and its mapping (a read already under way
        // holds its own reference until it is done).
        inner.current_log().wipe_key();
        {
            let released = Arc::new(Log::released());
            let mut w = inner.writer.lock();
            inner.state.write().log = released.clone();
            w.log = released;
        }
        result?;
        match inner.health.take_unreported() {
            Some(e) => Err(e),
            None => hint,
        }
    }
}

/// A database file opened, its key space loaded, and how this handle holds it.
struct Opened {
    /// The log (mapped for appends, for a writer).
    log: Log,
    header: FileHeader,
    loaded: Loaded,
    lock: Option<WriterLock>,
    shared: Option<Shared>,
    file_id: Option<(u64, u64)>,
}

/// Times a sharing writer's open starts again when a compaction in another
/// process replaced the file while it was opening it.
const OPEN_ATTEMPTS: usize = 100;

/// Open `path` read-only: no lock, no repair. The shared page (when it can
/// be opened: not in a read-only directory, say) lets the handle follow the
/// writers; its counter is read before the records, so nothing published
/// while they are read is missed.
fn open_reader(path: &Path, config: &Config, name: &Path, now: u64) -> Result<Opened> {
    let log = storage::open_log(path, true, config.encryption.as_ref())?;
    let page = SharedPage::open(path, false).ok();
    let seen = page.as_ref().map(SharedPage::version);
    let loaded = load_keyspace(
        Some(path),
        &log.medium,
        &log.header,
        name,
        now,
        (false, None),
    )?;
    let file_id = match &log.medium.medium {
        Medium::Disk(f) => storage::paths::file_id(f).ok(),
        _ => None,
    };
    Ok(Opened {
        log: log.medium,
        header: log.header,
        loaded,
        lock: None,
        shared: page.map(|page| Shared::new(page, seen.unwrap_or_default(), None)),
        file_id,
    })
}

/// Open `path` for writing (see `storage::lock` and `engine::follow`).
///
/// An opener alone on the file (every writer, the first time; an
/// `exclusive` one always) repairs it as a single writer does: removes a
/// dead compaction's or close's leftovers, cuts a torn tail, and publishes
/// the file afresh in the shared page. An opener joining other writers
/// takes the page's write lock and reads the log up to the end they
/// published, cutting nothing. `lock` is the exclusive lock already held
/// (salvage hands it over).
fn open_writer(
    path: &Path,
    config: &Config,
    lock: Option<WriterLock>,
    name: &Path,
    now: u64,
) -> Result<Opened> {
    // Refuse a FIFO, device or directory before making its page.
    drop(storage::paths::open_data_file(
        path,
        storage::paths::Access::Write,
    )?);
    // Without a page (a planted link at its name, say) the handle writes
    // alone, as an exclusive writer does.
    let mut page = SharedPage::open(path, true).ok();
    let mode = if config.exclusive || page.is_none() || lock.is_some() {
        LockMode::Exclusive
    } else {
        LockMode::Shared
    };
    let key = config.encryption.as_ref();
    for _ in 0..OPEN_ATTEMPTS {
        let Joined { lock, alone } = match &lock {
            Some(lock) => Joined {
                lock: lock.clone(),
                alone: true,
            },
            None => {
                let exclusive = || page.as_ref().is_some_and(SharedPage::exclusive_held);
                WriterLock::join(path, mode, &exclusive)?
            }
        };
        if alone {
            // A compaction that died before its rename, or a close that died
            // while writing its hint or index file, leaves these behind; the live file is
            // still the old one, so the leftovers are garbage. (remove_file
            // takes away a planted symlink itself, never its target.)
            for leftover in [
                storage::compact_path(path),
                storage::paths::temp_hint_path(path),
                storage::paths::temp_index_path(path),
            ] {
                match std::fs::remove_file(&leftover) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::io(&leftover, e))
                    }
                    _ => {}
                }
            }
        }
        let data = storage::paths::open_data_file(path, storage::paths::Access::Write)?;
        // The file the lock guards, not one renamed into place since.
        let file_id = lock.file_id();
        if storage::paths::file_id(&data).ok() != Some(file_id) {
            if !alone {
                continue; // compacted meanwhile: open the new file
            }
            return Err(Error::io(
                path,
                std::io::Error::other(
                    "the database file was replaced while it was being opened; open it again",
                ),
            ));
        }
        let opened = storage::open_log_file(data, path, false, key)?;
        let header = opened.header;
        if alone || page.is_none() {
            let loaded =
                load_keyspace(Some(path), &opened.medium, &header, name, now, (true, None))?;
            let log = opened
                .medium
                .map_for_append(loaded.end)
                .map_err(|e| Error::io(name, e))?;
            let io_err = |e| Error::io(path, e);
            let shared = match page.take() {
                Some(page) => {
                    // Alone: a lock holder or waiter it names is dead.
                    page.reset_lock();
                    let slot = match mode {
                        LockMode::Shared => Some(page.claim_slot().map_err(io_err)?),
                        LockMode::Exclusive => {
                            page.mark_exclusive().map_err(io_err)?;
                            None
                        }
                    };
                    let seen =
                        page.publish(file_id, header.generation, loaded.end, loaded.max_seq + 1);
                    Some(Shared::new(page, seen, slot))
                }
                None => None,
            };
            // Repaired and published: let the other writers in.
            lock.share().map_err(io_err)?;
            return Ok(Opened {
                log,
                header,
                loaded,
                lock: Some(lock),
                shared,
                file_id: Some(file_id),
            });
        }
        let Some(joined) = page.as_ref() else {
            continue;
        };
        let slot = joined.claim_slot().map_err(|e| Error::io(path, e))?;
        let held = joined.lock_writes(&slot);
        let news = joined
            .read_held()
            .filter(|n| n.file_id == file_id && n.generation == header.generation);
        let Some(news) = news else {
            drop(held);
            joined.release_slot(&slot);
            if storage::paths::path_id(path).ok() != Some(file_id) {
                continue; // compacted meanwhile: open the new file
            }
            return Err(Error::io(
                path,
                std::io::Error::other(format!(
                    "the database is open for writing through another name (a hard link?), or {} was removed while it was open; open it by one name",
                    storage::shm_path(path).display()
                )),
            ));
        };
        let loaded = load_keyspace(
            Some(path),
            &opened.medium,
            &header,
            name,
            now,
            (false, Some(news.end)),
        )?;
        let log = opened
            .medium
            .map_for_append(loaded.end)
            .map_err(|e| Error::io(name, e))?;
        if held.stolen {
            log.zero_tail(loaded.end).map_err(|e| Error::io(name, e))?;
        }
        drop(held);
        let Some(page) = page.take() else {
            continue;
        };
        return Ok(Opened {
            log,
            header,
            loaded,
            lock: Some(lock),
            shared: Some(Shared::new(page, news.version, Some(slot))),
            file_id: Some(file_id),
        });
    }
    Err(Error::io(
        path,
        std::io::Error::other("the database file kept being replaced while it was being opened"),
    ))
}

/// A key space read from a log (see [`load_keyspace`]).
pub(super) struct Loaded {
    pub ks: Keyspace,
    /// Offset just past the last record taken in.
    pub end: u64,
    /// Offset of the last record (a hint anchors on it).
    pub last_record: Option<u64>,
    /// Records before this offset were described by a hint file.
    pub hint_end: u64,
    pub max_seq: u64,
    /// Whether a hint file gave most of it.
    pub hinted: bool,
    /// The header of that hint (see [`State::basis`]).
    pub from_hint: Option<HintHeader>,
}

/// Build the key space of `log` (the file `file`, whose header is
/// `header`): from its hint file where one matches, and by replaying the
/// records after it, up to `until` if given. With `repair` a torn tail is
/// cut off the file (only a writer, at open, does that).
///
/// # Errors
/// As [`storage::replay_from`].
pub(super) fn load_keyspace(
    file: Option<&Path>,
    log: &Log,
    header: &FileHeader,
    name: &Path,
    now: u64,
    (repair, until): (bool, Option<u64>),
) -> Result<Loaded> {
    // A hint that matches this file gives the key directory of its prefix
    // without reading those records; the rest is replayed.
    // (Encrypted files have none: a hint would hold their keys in the clear.)
    let hinted = match (file, &log.medium, &log.seal) {
        (Some(path), Medium::Disk(_), None) => {
            let file_len = log.len().map_err(|e| Error::io(name, e))?;
            let start = log.data_start();
            storage::load_hint(path, &log.medium, header.generation, start, file_len).and_then(
                |h| {
                    Keyspace::from_hint(h.entries(), h.header.entries, h.body.len(), now)
                        .map(|ks| (ks, h.header))
                },
            )
        }
        _ => None,
    };
    if let (None, Some(path), true) = (&hinted, file, repair) {
        // Stale or damaged: it would only be read and rejected again.
        storage::remove_hint(path);
    }
    let from_hint = hinted.as_ref().map(|(_, h)| *h);
    let (mut ks, start, start_seq, anchor) = match hinted {
        Some((ks, h)) => (ks, h.data_end, Some(h.last_seq), Some(h.digest_offset)),
        None => (Keyspace::default(), log.data_start(), None, None),
    };
    let mut max_seq = start_seq.unwrap_or(0);
    let visit = |item: storage::ReplayItem<'_>| {
        max_seq = max_seq.max(item.header.seq);
        let loc = Loc {
            offset: item.offset,
            value_len: item.header.value_len,
            expires_at: item.header.expires_at,
        };
        ks.take_in(item.header.kind, item.key, loc, now);
    };
    let replayed = match until {
        Some(until) => storage::replay_until(log, name, start, until, start_seq, visit)?,
        None => storage::replay_from(log, name, start, start_seq, repair, visit)?,
    };
    Ok(Loaded {
        ks,
        end: replayed.end,
        last_record: replayed.last_record.or(anchor),
        hint_end: start,
        max_seq,
        hinted: start_seq.is_some(),
        from_hint,
    })
}

impl Inner {
    pub(super) fn name(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(MEMORY_NAME))
    }

    /// Read the value of `key` at `loc` in `log`, verified against its
    /// checksum (and opened, in an encrypted log).
    pub(super) fn read_value(&self, log: &Log, key: &str, loc: Loc) -> Result<ValueBuf> {
        let mut buf = Vec::new();
        let range =
            storage::read_record(log, self.name(), loc.offset, key, loc.value_len, &mut buf)?;
        Ok(ValueBuf { buf, range })
    }

    pub(super) fn current_log(&self) -> Arc<Log> {
        self.state.read().log.clone()
    }

    fn sync_until(&self, ticket: u64) -> Result<()> {
        self.sync
            .sync_until(ticket, || self.sync_log())
            .map_err(|e| self.sync_failed(e, true))
    }

    fn flush(&self) -> Result<()> {
        self.sync
            .sync_all(|| self.sync_log())
            .map_err(|e| self.sync_failed(e, true))
    }

    /// A sync of the database file failed: the handle is poisoned (see
    /// [`Health`]); the error to raise now. `raised` is false when no
    /// caller will raise it (background work).
    pub(super) fn sync_failed(&self, e: std::io::Error, raised: bool) -> Error {
        self.health.poison(&e, raised);
        Error::io(self.name(), e)
    }

    /// At close (or drop) of a healthy writer: sync everything. A writer
    /// alone on the file (no other writer has it open, see
    /// `storage::lock`) first takes in what the others wrote before they
    /// left, then leaves a hint and trims the preallocated slack: only then,
    /// as no other process maps the file. Returns the sync's result, and the
    /// hint's.
    fn finish_file(&self) -> (Result<()>, Result<()>) {
        let alone = self.lock.lock().as_ref().is_none_or(WriterLock::try_alone);
        if !alone {
            return (self.flush(), Ok(()));
        }
        let mut w = self.writer.lock();
        let held = match self.lock_across_processes(&mut w, false) {
            Ok(held) => held,
            Err(e) => return (self.flush().and(Err(e)), Ok(())),
        };
        // The hint first: its digest record is appended to the log, then
        // synced and the slack trimmed with everything else.
        let hint = self.write_hint_at_close(&mut w);
        // Then the observer's sidecar (the index file), built on that hint
        // (or the one still on disk); no writer can come between, here or
        // in another process. Its digest goes into the log, as a metadata
        // entry, for the next open to check the file against (best effort,
        // as the sidecar itself: without it the next open rebuilds).
        let sidecar = match (self.observer.get(), &self.file) {
            (Some(observer), Some(path)) => {
                let now = self.clock.now_ms();
                let st = self.state.read();
                st.basis.and_then(|basis| {
                    observer.persist_at_close(path, &basis, &mut st.ks.keydir.live(now))
                })
            }
            _ => None,
        };
        if let Some(digest) = sidecar {
            let _ = self.apply(&mut w, &[Write::meta(SIDECAR_DIGEST_META, &digest)]);
        }
        let result = self.flush().and_then(|()| self.trim(&w));
        drop(held);
        (result, hint)
    }

    /// Leave a hint file for the next open if much of the log is not covered
    /// by the current one. The data is safe either way (without a hint the
    /// next open replays the log); a failure is still reported, as
    /// [`Error::HintNotWritten`], and leaves no hint or temporary file.
    /// The hint's digest goes into the log itself (a hint-digest record
    /// appended here, see `crate::format` hint docs), so the next open
    /// trusts exactly this hint. Encrypted logs get none (a hint would hold
    /// their keys in the clear).
    fn write_hint_at_close(&self, w: &mut Writer) -> Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        if w.last_record.is_none()
            || w.log.seal.is_some()
            || w.end - w.hint_end < HINT_AT_CLOSE_BYTES
        {
            return Ok(());
        }
        let data_end = w.end;
        let mut written_header = None;
        let written = (|| -> Result<()> {
            let io_err = |e| Error::io(path, e);
            let hint = {
                let st = self.state.read();
                let mut hint = storage::HintWriter::create(path).map_err(io_err)?;
                let user = st.ks.keydir.iter().map(|e| (RecordKind::Put, e));
                for (kind, (key, loc)) in
                    user.chain(st.ks.meta.iter().map(|e| (RecordKind::Meta, e)))
                {
                    hint.push(&HintEntry {
                        kind,
                        key,
                        offset: loc.offset,
                        value_len: loc.value_len,
                        expires_at: loc.expires_at,
                    })
                    .map_err(io_err)?;
                }
                hint
            };
            let header = hint.header(w.generation, data_end, w.seq - 1);
            let digest = hint.digest(&header);
            // Not `lock_writer`: the handle is closed by now. The record
            // gets a ticket like any append, so the close's sync covers it.
            let at = w.end;
            self.apply(w, &[Write::hint_digest(&digest)])?;
            // As `finish` writes it, with the digest record's place.
            written_header = Some(HintHeader {
                digest_offset: at,
                ..header
            });
            hint.finish(header, at)
                .and_then(storage::PendingHint::publish)
                .map_err(io_err)
        })();
        match written {
            Ok(()) => {
                w.hint_end = data_end;
                self.state.write().basis = written_header;
                Ok(())
            }
            Err(e) => {
                storage::remove_hint(path);
                Err(match e {
                    Error::Io { source, .. } => Error::HintNotWritten {
                        path: path.clone(),
                        source,
                    },
                    other => other,
                })
            }
        }
    }

    /// Cut the preallocated slack off a mapped log, so a closed database file
    /// holds exactly its records.
    fn trim(&self, w: &Writer) -> Result<()> {
        // Windows cannot shrink a file while it is mapped; the zero slack is
        // then cut at the next open (it reads as a torn tail of zeros).
        if w.log.capacity().is_some() && !cfg!(windows) {
            w.log
                .truncate(w.end)
                .map_err(|e| Error::io(self.name(), e))?;
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.health.is_closed() && !self.read_only && !self.health.is_poisoned() {
            let _ = self.finish_file();
        }
        if let Some(shared) = &self.shared {
            shared.release();
        }
    }
}

/// Background thread for `FsyncPolicy::Periodic`: syncs when dirty, every
/// interval. It shares only the sync state and the current log with the
/// database, never `Inner` itself, so dropping the last handle releases the
/// writer lock at once; it stops when the sender is dropped (close, or the
/// database is gone).
fn spawn_flusher(inner: &Inner, every: Duration) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let (state, sync, health) = (
        inner.state.clone(),
        inner.sync.clone(),
        inner.health.clone(),
    );
    let spawned = std::thread::Builder::new()
        .name("ferrumdb-flush".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                if sync.is_dirty() && !health.is_closed() {
                    let synced = sync.sync_all(|| {
                        let log = state.read().log.clone();
                        log.sync_data()
                    });
                    // Poisoned: the next call on the handle raises it.
                    if let Err(e) = synced {
                        health.poison(&e, false);
                        break;
                    }
                }
            }
        });
    // If no thread can be spawned, data still reaches the OS on every write and
    // flush/close still sync; only the power-loss window widens.
    drop(spawned);
    tx
}

/// A TTL in whole milliseconds (at least one).
///
/// # Errors
/// [`Error::InvalidValue`] for a TTL under one millisecond.
pub(super) fn ttl_millis(ttl: Duration) -> Result<u64> {
    match u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX) {
        0 => Err(Error::InvalidValue {
            path: "ttl".into(),
            reason: "a TTL must be at least one millisecond; delete the key instead".into(),
        }),
        ms => Ok(ms),
    }
}

/// Values are at most [`MAX_VALUE_BYTES`] of JSON.
///
/// # Errors
/// [`Error::InvalidValue`] saying the size and the limit.
pub(super) fn validate_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::InvalidValue {
            path: "$".into(),
            reason: format!(
                "value is {} bytes of JSON; the limit is {} bytes (256 MiB): store large blobs in files and keep their paths here",
                value.len(),
                MAX_VALUE_BYTES
            ),
        });
    }
    Ok(())
}

/// Keys are non-empty and at most [`MAX_KEY_BYTES`] of UTF-8.
///
/// # Errors
/// [`Error::InvalidKey`] saying which rule was broken.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey {
            reason: "keys must be non-empty strings".into(),
        });
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey {
            reason: format!(
                "key is {} bytes of UTF-8; the limit is {MAX_KEY_BYTES} bytes (64 KiB)",
                key.len()
            ),
        });
    }
    Ok(())
}
