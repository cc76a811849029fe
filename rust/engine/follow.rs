//! Following another process's writes: how a read-only handle sees what a
//! writer in another process appends after it opened.
//!
//! The writer publishes every append (and every compaction switch) in the
//! shared page (`storage::shared`). Every call on a read-only handle starts
//! with [`Inner::follow`]: one memory load, compared with the page counter
//! it last took in. When the counter moved, the handle takes in the records
//! appended since it last looked, through the same frame reader and the
//! same key-space rule as replay at open ([`Keyspace::take_in`]), and tells
//! its observer (indexes, change feeds) of each change in log order, as the
//! writer's own [`Inner::apply`] does for its writes. When the writer
//! switched to a compacted file, the handle first takes in the old file's
//! last records, then moves to the new file (whose documents are the same,
//! so observers hear nothing of the move).
//!
//! A record the writer is still copying lies beyond the published end, so
//! a follower never reads one half-written; the published numbers are only
//! hints where to look (a crafted page cannot make it read beyond the file
//! or serve anything the frame reader rejects).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::error::Result;
use crate::format::RecordKind;
use crate::storage::{self, Published, SharedPage};

use super::db::{load_keyspace, Inner, Loaded, ValueBuf, Writer};
use super::keydir::Loc;
use super::write::notify;

/// The shared page of an open database and how far this handle took it in.
pub(crate) struct Shared {
    pub page: SharedPage,
    /// The page counter as last taken in (read-only handles).
    seen: AtomicU64,
}

impl Shared {
    pub fn new(page: SharedPage) -> Self {
        let seen = AtomicU64::new(page.version());
        Shared { page, seen }
    }
}

thread_local! {
    /// Whether this thread holds the writer mutex for
    /// `Database::with_writes_paused` (an index build pages through the
    /// documents that way): a follow from inside it would wait on itself,
    /// and it needs none (nothing it reads may move meanwhile).
    static PAUSED_HERE: Cell<bool> = const { Cell::new(false) };
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
    key: String,
    loc: Loc,
    /// The new value, when an observer is told of it.
    value: Option<Vec<u8>>,
}

impl Inner {
    /// Whether this handle sees other processes' writes as they happen: a
    /// read-only handle with a shared page, or a writer (which is alone).
    pub(super) fn is_live(&self) -> bool {
        !self.read_only || self.shared.is_some()
    }

    /// Take in whatever a writer in another process appended since this
    /// read-only handle last looked. One memory load when nothing changed.
    ///
    /// # Errors
    /// Corruption or I/O errors met reading the new records.
    #[inline]
    pub(super) fn follow(&self) -> Result<()> {
        match &self.shared {
            Some(shared)
                if self.read_only
                    && shared.page.version() != shared.seen.load(Ordering::Relaxed) =>
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
        // An update under way (or a page never written): look again next call.
        let Some(news) = shared.page.read() else {
            return Ok(());
        };
        if news.version == shared.seen.load(Ordering::Relaxed) {
            return Ok(()); // another thread took it in meanwhile
        }
        if Some(news.file_id) == w.file_id && news.generation == w.generation {
            if news.end > w.end {
                self.take_in(&mut w, Some(news.end))?;
            }
        } else {
            self.switch_file(&mut w, &news)?;
        }
        shared.seen.store(news.version, Ordering::Relaxed);
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
        let visit = |item: storage::ReplayItem<'_>| {
            max_seq = max_seq.max(item.header.seq);
            let tell = observer.is_some() && item.header.kind == RecordKind::Put;
            changes.push(Change {
                kind: item.header.kind,
                key: item.key.to_owned(),
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
        let wants_old = observer.is_some_and(|o| o.wants_old_values());
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

    /// The writer moved the database to another file (a compaction): take
    /// in the old file's last records, then read the new one.
    fn switch_file(&self, w: &mut Writer, news: &Published) -> Result<()> {
        let Some(path) = self.file.as_deref() else {
            return Ok(());
        };
        // Only a file the path names now: a stale or crafted page names
        // another (or one already replaced again).
        if storage::paths::path_id(path).ok() != Some(news.file_id) {
            return Ok(());
        }
        self.take_in(w, None)?;
        let opened = storage::open_sibling(path, w.log.seal.as_deref())?;
        let log = opened.medium;
        let id = match &log.medium {
            storage::Medium::Disk(f) => storage::paths::file_id(f).ok(),
            _ => None,
        };
        if id != Some(news.file_id) {
            return Ok(()); // replaced again since: the next news says by what
        }
        let until = (opened.header.generation == news.generation).then_some(news.end);
        let now = self.clock.now_ms();
        let Loaded {
            mut ks,
            end,
            last_record,
            hint_end,
            max_seq,
            ..
        } = load_keyspace(
            Some(path),
            &log,
            &opened.header,
            self.name(),
            now,
            (false, until),
        )?;
        let log = Arc::new(log);
        {
            let mut st = self.state.write();
            // Every location moved: transactions stamped before must see it.
            ks.relocations = st.ks.relocations + 1;
            st.ks = ks;
            st.log = log.clone();
        }
        w.log = log;
        w.end = end;
        w.last_record = last_record;
        w.hint_end = hint_end;
        w.seq = max_seq + 1;
        w.generation = opened.header.generation;
        w.file_id = id;
        Ok(())
    }

    /// Publish this writer's new end for the processes following it.
    #[inline]
    pub(super) fn publish_end(&self, end: u64) {
        if let (Some(shared), false) = (&self.shared, self.read_only) {
            shared.page.publish_end(end);
        }
    }

    /// Publish that the database is now `w`'s file (after a compaction).
    pub(super) fn publish_file(&self, w: &Writer) {
        if let (Some(shared), false, Some(id)) = (&self.shared, self.read_only, w.file_id) {
            shared.page.publish(id, w.generation, w.end);
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
