//! Following other processes' writes: how a handle sees what writers in
//! other processes append after it opened, and how a writer catches up
//! before it appends.
//!
//! Every writer publishes every append (and every compaction switch) in the
//! shared page (`storage::shared`). Every call on a handle that shares the
//! database (a read-only handle, or a writer that is not `exclusive`) starts
//! with [`Inner::follow`]: one memory load, compared with the page counter
//! it last took in. When the counter moved, the handle takes in the records
//! appended since it last looked, through the same frame reader and the
//! same key-space rule as replay at open ([`Keyspace::take_in`]), and tells
//! its observer (indexes, change feeds) of each change in log order, as the
//! writer's own [`Inner::apply`] does for its writes. When a compaction
//! switched the database to a new file, the handle first takes in the old
//! file's last records, then moves to the new file (whose documents are the
//! same, so observers hear nothing of the move).
//!
//! A writer appends only while it holds the page's write lock, and takes
//! in everything published before it appends ([`Inner::lock_writer`]), so
//! the log is one sequence whatever process wrote each record, and every
//! check made before a write (a transaction's conflicts, a unique index,
//! whether a key to delete is live) sees every other process's writes.
//! A plain put that checks nothing (no index or change feed in its process)
//! may instead append where the page says the log ends, with the sequence
//! number the page gives, and leave the take-in to the handle's next read
//! ([`Inner::may_defer`]): a process that only writes then pays nothing for
//! the others' records, which would cost it a key-directory insert each.
//!
//! A record a writer is still copying lies beyond the published end, so
//! a follower never reads one half-written; the published numbers are only
//! hints where to look (a crafted page cannot make it read beyond the file
//! or serve anything the frame reader rejects). A writer holding the lock
//! knows nobody is updating the page, so a page it finds torn (its last
//! writer died publishing) or naming another file is settled from the files
//! themselves, and published afresh.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use compact_str::CompactString;
use parking_lot::MutexGuard;

use crate::error::{Error, Result};
use crate::format::RecordKind;
use crate::storage::{self, LockMode, Published, SharedPage, Slot, WriteLock, WriterLock};

use super::db::{load_keyspace, Database, Inner, Loaded, ValueBuf, Writer};
use super::keydir::Loc;
use super::write::notify;

/// The shared page of an open database and how far this handle took it in.
pub(crate) struct Shared {
    pub page: SharedPage,
    /// The page counter as last taken in.
    seen: AtomicU64,
    /// The slot of a writer that shares the database (see
    /// `storage::shared`): `None` for a read-only or exclusive handle,
    /// which never takes the write lock.
    pub slot: Option<Slot>,
    /// Under `fsync="always"`: the file this handle last appended to and
    /// where its record ended, for a sync shared with the other processes
    /// ([`Inner::sync_log`]).
    appended: parking_lot::Mutex<Option<((u64, u64), u64)>>,
}

impl Shared {
    /// `page` as taken in at counter value `seen`.
    pub fn new(page: SharedPage, seen: u64, slot: Option<Slot>) -> Self {
        Shared {
            page,
            seen: AtomicU64::new(seen),
            slot,
            appended: parking_lot::Mutex::new(None),
        }
    }

    /// Let go of the slot (close): the handle writes no more.
    pub fn release(&self) {
        if let Some(slot) = &self.slot {
            self.page.release_slot(slot);
        }
    }
}

/// How far a deferring writer may fall behind the log before it takes in
/// (see [`Inner::may_defer`]), in bytes. The first read after a long run
/// of deferred writes takes in at most this much at once: 64 MiB is some
/// 250k records of 270 bytes, about 0.1 s on the machine we measure, the
/// time reopening a database of that size takes.
const DEFER_LIMIT: u64 = 64 << 20;

/// The writer mutex, and for a writer sharing the database with other
/// processes, the page's write lock (released first).
pub(super) struct WriterGuard<'a> {
    _across: Option<WriteLock<'a>>,
    w: MutexGuard<'a, Writer>,
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        &self.w
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        &mut self.w
    }
}

thread_local! {
    /// Whether this thread holds the writer mutex for
    /// `Database::with_writes_paused` (an index build pages through the
    /// documents that way): a follow from inside it would wait on itself,
    /// and it needs none (nothing it reads may move meanwhile).
    static PAUSED_HERE: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// Whether writes on this thread must not wait (see [`without_waiting`]).
    static NO_WAITING: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` with every write it makes refusing to wait: a write that would
/// wait for the writer mutex (another thread writing, or building an
/// index), for the cross-process write lock, or for an index another
/// process created to be built here fails with [`Error::WouldWait`] and
/// writes nothing. For a caller with a better place to wait: `ferrumdb.aio`
/// makes writes inline on the event loop this way, and hands a write that
/// would wait to its thread pool.
pub fn without_waiting<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_WAITING.with(|n| n.set(self.0));
        }
    }
    let _restore = Restore(NO_WAITING.with(|n| n.replace(true)));
    f()
}

fn may_wait() -> bool {
    !NO_WAITING.with(Cell::get)
}

/// Marks the writer mutex as held by this thread while alive.
pub(super) struct PausedHere;

impl PausedHere {
    pub fn mark() -> Self {
        PAUSED_HERE.with(|p| p.set(true));
        PausedHere
    }
}

impl Drop for PausedHere {
    fn drop(&mut self) {
        PAUSED_HERE.with(|p| p.set(false));
    }
}

/// One record another process appended, as a follower takes it in.
struct Change {
    kind: RecordKind,
    /// Inline up to 24 bytes: no allocation per record for most keys.
    key: CompactString,
    loc: Loc,
    /// The new value, when an observer is told of it.
    value: Option<Vec<u8>>,
}

impl Database {
    /// The writer lock for a user write ([`Inner::lock_writer`]), with the
    /// observer's definitions following everything taken in: when another
    /// process created or dropped an index since this handle last wrote,
    /// the lock is let go, the observer builds or drops it, and the lock is
    /// taken again, so no write is checked against stale indexes (a unique
    /// index another process created refuses a duplicate here too). A bool
    /// test under the held mutex when nothing of the kind happened.
    ///
    /// # Errors
    /// As [`Inner::lock_writer`]; the observer's errors following the
    /// definitions (the next write tries again).
    pub(super) fn lock_writer(&self, defer: bool) -> Result<WriterGuard<'_>> {
        loop {
            let mut w = self.inner.lock_writer(defer)?;
            if !w.definitions_moved {
                return Ok(w);
            }
            if !may_wait() {
                return Err(Error::WouldWait); // building an index takes a while
            }
            w.definitions_moved = false;
            let Some(observer) = self.inner.observer.get().cloned() else {
                return Ok(w);
            };
            drop(w);
            if let Err(e) = observer.follow_definitions(self) {
                self.inner.writer.lock().definitions_moved = true;
                return Err(e);
            }
        }
    }
}

impl Inner {
    /// Whether this handle sees other processes' writes as they happen: a
    /// writer (an exclusive one is the only writer), or a read-only handle
    /// with a shared page.
    pub(super) fn is_live(&self) -> bool {
        !self.read_only || self.shared.is_some()
    }

    /// Whether this handle takes in other processes' writes: a read-only
    /// handle, or a writer sharing the database.
    fn follows(&self, shared: &Shared) -> bool {
        self.read_only || shared.slot.is_some()
    }

    /// Take in whatever other processes appended since this handle last
    /// looked. One memory load when nothing changed.
    ///
    /// # Errors
    /// Corruption or I/O errors met reading the new records.
    #[inline]
    pub(super) fn follow(&self) -> Result<()> {
        match &self.shared {
            Some(shared)
                if shared.page.version() != shared.seen.load(Ordering::Relaxed)
                    && self.follows(shared) =>
            {
                self.take_in_news(shared)
            }
            _ => Ok(()),
        }
    }

    #[cold]
    fn take_in_news(&self, shared: &Shared) -> Result<()> {
        if PAUSED_HERE.with(Cell::get) {
            return Ok(());
        }
        let mut w = self.writer.lock();
        self.catch_up(&mut w, shared, false)
    }

    /// The writer mutex, taken for a change: fails if the handle was closed
    /// (close() flips the flag under this mutex) or poisoned meanwhile. A
    /// writer sharing the database also takes the page's write lock and
    /// takes in everything other processes appended, so what it checks and
    /// appends follows every write before it.
    ///
    /// # Errors
    /// As [`super::health::Health::check`]; errors taking in other
    /// processes' records.
    pub(super) fn lock_writer(&self, defer: bool) -> Result<WriterGuard<'_>> {
        let mut w = if may_wait() {
            self.writer.lock()
        } else {
            self.writer.try_lock().ok_or(Error::WouldWait)?
        };
        self.health.check()?;
        let across = self.lock_across_processes(&mut w, defer)?;
        Ok(WriterGuard { _across: across, w })
    }

    /// For a writer sharing the database, under the writer mutex `w`: the
    /// page's write lock, with everything published before it taken in, or
    /// with `defer` and when it may, with nothing taken in and `w.deferred`
    /// saying where the next record goes (see [`Inner::may_defer`]).
    ///
    /// # Errors
    /// Errors taking in other processes' records (the lock is released).
    pub(super) fn lock_across_processes(
        &self,
        w: &mut Writer,
        defer: bool,
    ) -> Result<Option<WriteLock<'_>>> {
        w.deferred = None;
        let Some((shared, slot)) = self
            .shared
            .as_ref()
            .and_then(|s| s.slot.as_ref().map(|slot| (s, slot)))
        else {
            return Ok(None);
        };
        // Nothing appended since this handle last took in: an ordinary write
        // costs nothing more, and keeps its reads from taking it in again.
        let defer = defer
            && shared.page.version() != shared.seen.load(Ordering::Relaxed)
            && self.may_defer(w);
        // Take in what the others appended before queueing for the lock, as
        // a follower does: the lock serialises every writer, so whatever is
        // taken in while holding it is time all of them wait. Under the lock
        // only the few records appended meanwhile remain. A deferring writer
        // does so only when its backlog nears the limit, or the database
        // moved to another file (moving loads it: never under the lock).
        let keeps_deferring = |news: Published| {
            Some(news.file_id) == w.file_id
                && news.generation == w.generation
                && news.end.saturating_sub(w.end) <= DEFER_LIMIT / 2
        };
        if shared.page.version() != shared.seen.load(Ordering::Relaxed)
            && !(defer && shared.page.read().is_some_and(keeps_deferring))
        {
            self.catch_up(w, shared, false)?;
        }
        let held = if may_wait() {
            shared.page.lock_writes(slot)
        } else {
            shared.page.try_lock_writes(slot).ok_or(Error::WouldWait)?
        };
        if defer && !held.stolen {
            if let Some(tail) = self.deferrable_tail(w, shared) {
                w.deferred = Some(tail);
                return Ok(Some(held));
            }
        }
        self.catch_up(w, shared, true)?;
        if held.stolen {
            // Its holder died holding it: whatever it wrote past the
            // published end was never acknowledged. Clear it, so no reader
            // of the file's tail ever takes it for a record.
            w.log
                .zero_tail(w.end)
                .map_err(|e| Error::io(self.name(), e))?;
        } else if !nothing_at(&w.log, w.end) {
            // Records lie past the end the page gave (a crafted or damaged
            // page): appending there would overwrite them. The files say
            // where they end.
            self.take_in(w, None)?;
            self.publish_file(w);
        }
        Ok(Some(held))
    }

    /// Whether a write may be appended without first taking in what the
    /// other processes appended: nothing in this handle needs the write in
    /// order with them (no index to maintain or check, no change feed), and
    /// no definition taken in waits to be followed. A process that only
    /// writes then never pays for the others' records (each would cost it a
    /// key directory insert, on every process for every record); its next
    /// read takes them in, its own deferred records among them, in log
    /// order through the same path as any other process's.
    fn may_defer(&self, w: &Writer) -> bool {
        !w.definitions_moved && self.observer.get().is_none_or(|o| !o.wants_changes())
    }

    /// Under the write lock: where a deferred record goes, when the page
    /// names this handle's file and generation with a known tail, no
    /// definition lies beyond what this handle took in, and the backlog it
    /// would leave stays under [`DEFER_LIMIT`]. `None` sends the write the
    /// usual way (take everything in first).
    fn deferrable_tail(&self, w: &Writer, shared: &Shared) -> Option<storage::Tail> {
        let news = shared.page.read_held()?;
        let tail = shared.page.tail_held()?;
        let ours = Some(news.file_id) == w.file_id && news.generation == w.generation;
        (ours
            && tail.end >= w.end
            && tail.end - w.end <= DEFER_LIMIT
            && tail.meta_end <= w.end
            && nothing_at(&w.log, tail.end))
        .then_some(tail)
    }

    /// Take in what the page says other processes published since this
    /// handle last looked (under the writer mutex `w`). With `held` (this
    /// handle holds the write lock, so nobody updates the page), a page that
    /// is torn or names a file that is not the database is settled from the
    /// files, and published afresh.
    fn catch_up(&self, w: &mut Writer, shared: &Shared, held: bool) -> Result<()> {
        let seen = shared.seen.load(Ordering::Relaxed);
        if shared.page.version() == seen {
            return Ok(()); // nothing new (or another thread took it in)
        }
        // An update under way (or a page never written): a follower looks
        // again next call.
        let news = if held {
            shared.page.read_held()
        } else {
            shared.page.read()
        };
        let path_id = || {
            self.file
                .as_deref()
                .and_then(|p| storage::paths::path_id(p).ok())
        };
        match news {
            Some(news) if Some(news.file_id) == w.file_id && news.generation == w.generation => {
                if news.end > w.end {
                    self.take_in(w, Some(news.end))?;
                }
            }
            Some(news) if path_id() == Some(news.file_id) => {
                if !self.switch_file(w, Some(&news))? {
                    return self.not_switched(held);
                }
            }
            _ if !held => {
                // Unreadable now (a writer died updating it, say): this
                // handle's own deferred records are taken in all the same,
                // so it reads its writes.
                if w.deferred_end > w.end {
                    self.take_in(w, Some(w.deferred_end))?;
                }
                return Ok(());
            }
            _ => {
                // Torn, damaged or crafted: the files say what is true.
                if path_id() != w.file_id {
                    if !self.switch_file(w, None)? {
                        return self.not_switched(held);
                    }
                } else {
                    self.take_in(w, None)?;
                }
                self.publish_file(w);
                return Ok(());
            }
        }
        if let Some(news) = news {
            shared.seen.store(news.version, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Take in the records of the current log from where this handle
    /// stopped to `until` (to its end, when `None`).
    fn take_in(&self, w: &mut Writer, until: Option<u64>) -> Result<()> {
        let log = w.log.clone();
        let name = self.name();
        let now = self.clock.now_ms();
        let observer = self.observer.get().filter(|o| o.wants_changes());
        let mut changes = Vec::new();
        let mut max_seq = w.seq.saturating_sub(1);
        let start_seq = (w.seq > 1).then_some(w.seq - 1);
        let mut definitions_moved = false;
        let visit = |item: storage::ReplayItem<'_>| {
            max_seq = max_seq.max(item.header.seq);
            definitions_moved |= item.header.kind == RecordKind::Meta;
            let tell = observer.is_some() && item.header.kind == RecordKind::Put;
            changes.push(Change {
                kind: item.header.kind,
                key: CompactString::from(item.key),
                loc: Loc {
                    offset: item.offset,
                    value_len: item.header.value_len,
                    expires_at: item.header.expires_at,
                },
                value: tell.then(|| item.value.to_vec()),
            });
        };
        let replayed = match until {
            Some(until) => storage::replay_until(&log, name, w.end, until, start_seq, visit)?,
            None => storage::replay_from(&log, name, w.end, start_seq, false, visit)?,
        };
        w.definitions_moved |= definitions_moved;
        let wants_old = observer.is_some_and(|o| o.wants_old_values());
        if observer.is_none() {
            // Nobody to tell: the whole batch under one lock.
            let mut st = self.state.write();
            for change in &changes {
                st.ks.take_in(change.kind, &change.key, change.loc, now);
            }
            drop(st);
            changes.clear();
        }
        for change in &changes {
            let user = matches!(change.kind, RecordKind::Put | RecordKind::Delete);
            // The old value first, as apply reads it: before the keydir moves.
            let old: Option<ValueBuf> = if wants_old && user {
                let before = self
                    .state
                    .read()
                    .ks
                    .keydir
                    .get(change.key.as_str())
                    .copied();
                before.and_then(|loc| self.read_value(&log, &change.key, loc).ok())
            } else {
                None
            };
            let (before, holds) =
                self.state
                    .write()
                    .ks
                    .take_in(change.kind, &change.key, change.loc, now);
            if let (Some(observer), true) = (observer, user) {
                let new = change.value.as_deref().filter(|_| holds);
                if new.is_some() || before.is_some() {
                    notify(&**observer, &change.key, Some(&old), new);
                }
            }
        }
        w.end = replayed.end;
        w.seq = max_seq + 1;
        if replayed.last_record.is_some() {
            w.last_record = replayed.last_record;
        }
        Ok(())
    }

    /// The database file was replaced again while this handle moved to it:
    /// a follower looks again next call; a writer about to append must not
    /// append to a file that is no longer the database.
    fn not_switched(&self, held: bool) -> Result<()> {
        if !held {
            return Ok(());
        }
        Err(Error::io(
            self.name(),
            std::io::Error::other(
                "the database file was replaced while this write was made; try again",
            ),
        ))
    }

    /// A compaction moved the database to another file (`news` says which,
    /// when the page is trusted): take in the old file's last records, then
    /// read the new one (a writer maps it for appends and takes its lock).
    /// Returns false, changing nothing, when the path names yet another
    /// file by the time it is opened.
    fn switch_file(&self, w: &mut Writer, news: Option<&Published>) -> Result<bool> {
        let Some(path) = self.file.as_deref() else {
            return Ok(false);
        };
        self.take_in(w, None)?;
        // A writer shares the new file's lock before it reads it, so no
        // opener finds it alone (and cuts it) while this handle maps it.
        let lock = if self.read_only {
            None
        } else {
            let exclusive = || {
                self.shared
                    .as_ref()
                    .is_some_and(|s| s.page.exclusive_held())
            };
            let joined = WriterLock::join(path, LockMode::Shared, &exclusive)?;
            if joined.alone {
                joined.lock.share().map_err(|e| Error::io(path, e))?;
            }
            Some(joined.lock)
        };
        let opened = storage::open_sibling(path, w.log.seal.as_deref(), !self.read_only)?;
        let log = opened.medium;
        let id = match &log.medium {
            storage::Medium::Disk(f) => storage::paths::file_id(f).ok(),
            _ => None,
        };
        let replaced_again = id.is_none()
            || news.is_some_and(|n| Some(n.file_id) != id)
            || lock.as_ref().is_some_and(|l| Some(l.file_id()) != id);
        if replaced_again {
            return Ok(false); // the next news says by what
        }
        let until = news
            .filter(|n| opened.header.generation == n.generation)
            .map(|n| n.end);
        let now = self.clock.now_ms();
        let Loaded {
            mut ks,
            end,
            last_record,
            hint_end,
            max_seq,
            from_hint,
            ..
        } = load_keyspace(
            Some(path),
            &log,
            &opened.header,
            self.name(),
            now,
            (false, until),
        )?;
        let log = if self.read_only {
            log
        } else {
            log.map_for_append(end).map_err(|e| Error::io(path, e))?
        };
        let log = Arc::new(log);
        {
            let mut st = self.state.write();
            // Every location moved: transactions stamped before must see it.
            ks.relocations = st.ks.relocations + 1;
            // And the definitions may have: a reader compares this counter.
            ks.meta_writes = st.ks.meta_writes + 1;
            st.ks = ks;
            st.log = log.clone();
            st.basis = from_hint;
        }
        if let Some(lock) = lock {
            *self.lock.lock() = Some(lock);
        }
        w.log = log;
        w.end = end;
        w.last_record = last_record;
        w.hint_end = hint_end;
        w.seq = max_seq + 1;
        w.generation = opened.header.generation;
        w.file_id = id;
        // Its deferred records were taken in before the move (an offset
        // in the old file means nothing in the new one).
        w.deferred_end = 0;
        w.definitions_moved = true;
        Ok(true)
    }

    /// Publish this writer's new end for the processes following it (the
    /// caller holds the write lock, so nothing came between its catch-up
    /// and this: the new counter is taken in).
    #[inline]
    pub(super) fn publish_end(&self, end: u64, next_seq: u64, with_meta: bool) {
        if let (Some(shared), false) = (&self.shared, self.read_only) {
            let version = shared.page.publish_end(end, next_seq, with_meta);
            shared.seen.store(version, Ordering::Relaxed);
        }
    }

    /// Publish a deferred append's end (the caller holds the write lock).
    /// The counter this handle took in stays behind, so its next read takes
    /// in everything up to here, this record too.
    pub(super) fn publish_deferred(&self, end: u64, next_seq: u64) {
        if let Some(shared) = &self.shared {
            shared.page.publish_end(end, next_seq, false);
        }
    }

    /// Publish that the database is `w`'s file, ending at `w.end` (at open,
    /// after a compaction, after settling a torn page).
    pub(super) fn publish_file(&self, w: &Writer) {
        if let (Some(shared), false, Some(id)) = (&self.shared, self.read_only, w.file_id) {
            let version = shared.page.publish(id, w.generation, w.end, w.seq);
            shared.seen.store(version, Ordering::Relaxed);
        }
    }
}

/// Whether the log holds nothing at `at`, where the next record is to go:
/// past the last record lies zeroed slack (preallocated, or cleared after a
/// dead writer) or the end of the file. The one check that the end a shared
/// page gave, only a hint, is not short of the records: the first 8 bytes
/// of a record are never all zero (a plain record holds its kind there, an
/// encrypted one its length).
fn nothing_at(log: &storage::Log, at: u64) -> bool {
    let mut word = [0u8; 8];
    log.read_exact_at(&mut word, at).is_err() || word == [0; 8]
}

impl Inner {
    /// Under `fsync="always"`, for a writer sharing the database: note that
    /// this handle appended to `file_id` up to `end` (see [`Inner::sync_log`]).
    #[inline]
    pub(super) fn note_appended(&self, file_id: Option<(u64, u64)>, end: u64) {
        if self.fsync != crate::config::FsyncPolicy::Always {
            return;
        }
        if let (Some(shared), Some(file)) = (&self.shared, file_id) {
            if shared.slot.is_some() {
                *shared.appended.lock() = Some((file, end));
            }
        }
    }

    /// Make everything this handle appended durable: one sync of the file,
    /// or, for a writer sharing it under `fsync="always"`, group commit
    /// across processes. A record a sync in another process already covered
    /// needs none; otherwise one process at a time syncs for everyone (so
    /// four writing processes share one sync per round, as the threads of
    /// one do through `GroupSync` above this), and the others wait for it
    /// and look again. Each sync is this process's own call, so a failure
    /// is reported to it as ever; a syncer that fails or dies publishes
    /// nothing, and the next one syncs again.
    ///
    /// # Errors
    /// The sync's I/O error.
    pub(super) fn sync_log(&self) -> std::io::Result<()> {
        let log = self.current_log();
        let shared = self
            .shared
            .as_ref()
            .and_then(|s| s.slot.as_ref().map(|slot| (s, slot)));
        let (Some((shared, slot)), crate::config::FsyncPolicy::Always) = (shared, self.fsync)
        else {
            return log.sync_data();
        };
        let Some((file, need)) = *shared.appended.lock() else {
            return log.sync_data();
        };
        // Should the log have moved to a compacted file since, whatever is
        // said of the old one holds: every record in it was copied into
        // the new one, which was synced before it replaced it.
        loop {
            if shared.page.synced_end(file) >= need {
                return Ok(());
            }
            if let Some(round) = shared.page.lock_sync(slot) {
                if shared.page.synced_end(file) >= need {
                    return Ok(());
                }
                // Everything published is written; what this mapping covers
                // is what its sync makes durable.
                let published = shared
                    .page
                    .read()
                    .filter(|n| n.file_id == file)
                    .map_or(need, |n| n.end.max(need));
                let covered = log
                    .capacity()
                    .map_or(published, |cap| published.min(cap))
                    .max(need);
                log.sync_data()?;
                round.finish(file, covered);
                return Ok(());
            }
            shared.page.wait_sync();
        }
    }
}

/// A weak handle on a read-only database that follows a writer, for a
/// waiter that must look for news while no call is made on the handle (a
/// change feed waiting for the next change).
#[derive(Clone)]
pub struct Follower(Weak<Inner>);

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Follower")
    }
}

impl Follower {
    pub(super) fn new(inner: &Arc<Inner>) -> Self {
        Follower(Arc::downgrade(inner))
    }

    /// Take in what the writer appended since the handle last looked.
    /// Returns false once the database is closed or dropped (errors are
    /// left for the next call on the handle to meet).
    pub fn catch_up(&self) -> bool {
        match self.0.upgrade() {
            Some(inner) if !inner.health.is_closed() => {
                let _ = inner.follow();
                true
            }
            _ => false,
        }
    }
}
