//! The one write path. Every change to the key space goes through here:
//! a put, a delete or a metadata write is a one-element call to
//! [`Inner::apply`], a transaction is one call with all its writes, the
//! hint-digest record appended at close is one call that changes no key,
//! and keys whose TTL has passed leave through [`Inner::expire`].
//!
//! `apply`, under the writer mutex held by the caller (see the lock order on
//! [`Inner`]), in this order:
//! 0. lets the observer veto the writes (a unique index refusing a
//!    duplicate), before anything is written;
//! 1. reads the old values an observer wants (before anything is written,
//!    so an unreadable old record fails the call with nothing written);
//! 2. encodes the writes (one record, or one batch record for several) into
//!    the writer's reusable buffer and seals it when the log is encrypted;
//! 3. appends it at the end of the log (nothing is published if that fails);
//! 4. publishes every write in the key directory, so the keydir order is the
//!    log order, and asks for a background compaction if the log is due;
//! 5. counts the sets and deletes and tells the observer, in log order;
//! 6. takes a group-commit ticket, which the caller makes durable after
//!    releasing the mutex (so concurrent writers share one sync).
//!
//! A single write allocates nothing here once the writer's buffers are warm.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{
    batch_record_offset, encode_record, BatchEncoder, RecordKind, HINT_DIGEST_KEY, HINT_DIGEST_LEN,
};
use crate::storage::{Log, Tail};

use super::db::{Database, Inner, ValueBuf, Writer};
use super::keydir::Loc;
use super::observer::{ChangeObserver, PendingChange};
use super::stats::Counters;

/// What one write does to the key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// A user key now holds the value.
    Put,
    /// A user key is removed (callers only delete live keys).
    Delete,
    /// A metadata entry (an index definition) holds the value; an empty
    /// value removes it.
    Meta,
    /// The hint-digest record (see `crate::format` hint docs): in the log
    /// only, never in the key directory (replay skips it too).
    HintDigest,
}

/// One write of a call to [`Inner::apply`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Write<'a> {
    op: Op,
    key: &'a str,
    value: &'a [u8],
    /// Unix milliseconds; 0 = never.
    expires_at: u64,
}

impl<'a> Write<'a> {
    /// Store JSON `value` under `key`, expiring at `expires_at` (0: never).
    pub fn put(key: &'a str, value: &'a [u8], expires_at: u64) -> Self {
        Write {
            op: Op::Put,
            key,
            value,
            expires_at,
        }
    }

    /// Remove the live `key`.
    pub fn delete(key: &'a str) -> Self {
        Write {
            op: Op::Delete,
            key,
            value: b"",
            expires_at: 0,
        }
    }

    /// Store metadata entry `key` (an empty `value` removes it).
    pub fn meta(key: &'a str, value: &'a [u8]) -> Self {
        Write {
            op: Op::Meta,
            key,
            value,
            expires_at: 0,
        }
    }

    /// Vouch for a hint file by its digest.
    pub fn hint_digest(digest: &'a [u8; HINT_DIGEST_LEN]) -> Self {
        Write {
            op: Op::HintDigest,
            key: HINT_DIGEST_KEY,
            value: digest,
            expires_at: 0,
        }
    }

    fn kind(&self) -> RecordKind {
        match self.op {
            Op::Put => RecordKind::Put,
            Op::Delete => RecordKind::Delete,
            Op::Meta | Op::HintDigest => RecordKind::Meta,
        }
    }

    /// The change as an observer's check sees it (user keys only).
    fn pending(&self) -> Option<PendingChange<'a>> {
        match self.op {
            Op::Put => Some(PendingChange::Put {
                key: self.key,
                value: self.value,
            }),
            Op::Delete => Some(PendingChange::Delete { key: self.key }),
            Op::Meta | Op::HintDigest => None,
        }
    }

    /// Whether observers hear of it (changes to user keys only).
    fn observed(&self) -> bool {
        matches!(self.op, Op::Put | Op::Delete)
    }
}

impl Database {
    /// Whether the observer vetoes writes (a unique index exists): then a
    /// caller writing many records that must stand or fall together (JSON
    /// Lines import) commits them as one batch, which is checked as a whole.
    pub fn checks_writes(&self) -> bool {
        self.inner.observer.get().is_some_and(|o| o.wants_check())
    }
}

impl Inner {
    /// Append `writes` to the log as one record (a batch when there are
    /// several), then publish, count and observe them (see the module doc).
    /// The caller holds the writer mutex as `w`, has checked the handle's
    /// health under it, and gives each key at most once. Returns the
    /// group-commit ticket to make durable (0, already durable, for no
    /// writes).
    ///
    /// # Errors
    /// Reading an old value an observer wants, sealing or appending: then
    /// nothing is published and nothing observed.
    pub(super) fn apply(&self, w: &mut Writer, writes: &[Write<'_>]) -> Result<u64> {
        let deferred = w.deferred.take();
        if writes.is_empty() {
            return Ok(0);
        }
        let observer = match self.observer.get() {
            // A deferred write is observed when it is taken in, in log order.
            Some(o)
                if deferred.is_none()
                    && writes.iter().any(Write::observed)
                    && o.wants_changes() =>
            {
                Some(&**o)
            }
            _ => None,
        };
        if let Some(o) = observer.filter(|o| o.wants_check()) {
            let changes: Vec<PendingChange<'_>> =
                writes.iter().filter_map(Write::pending).collect();
            self.check_with(o, &changes)?;
        }
        w.old.clear();
        if observer.is_some_and(|o| o.wants_old_values()) {
            let st = self.state.read();
            for write in writes {
                let loc = write
                    .observed()
                    .then(|| st.ks.keydir.get(write.key).copied())
                    .flatten();
                let old = self.old_value(&w.log, write.key, loc)?;
                w.old.push(old);
            }
        }

        w.buf.clear();
        w.offsets.clear();
        let (seq, at) = deferred.map_or((w.seq, w.end), |tail| (tail.next_seq, tail.end));
        if let [one] = writes {
            encode_record(
                &mut w.buf,
                one.kind(),
                seq,
                one.expires_at,
                one.key,
                one.value,
            );
            w.offsets.push(0);
        } else {
            let enc = BatchEncoder::begin(&mut w.buf, seq);
            for write in writes {
                let at = enc.push(
                    &mut w.buf,
                    write.kind(),
                    write.expires_at,
                    write.key,
                    write.value,
                );
                w.offsets.push(at);
            }
            enc.finish(&mut w.buf);
        }
        // An encrypted log seals the whole record (a batch too) as one
        // envelope; the key directory then points each of its keys at it.
        let sealed = w.log.seal.is_some();
        w.log.seal_record(self.name(), &mut w.buf, at)?;
        let with_meta = writes.iter().any(|write| write.op == Op::Meta);
        let base = self.append(w, deferred, with_meta)?;

        // A deferred write reaches the key directory when it is taken in.
        if deferred.is_none() && writes.iter().any(|write| write.op != Op::HintDigest) {
            let live_bytes = {
                let mut st = self.state.write();
                for (write, &at) in writes.iter().zip(&w.offsets) {
                    let loc = Loc {
                        offset: batch_record_offset(base, at, sealed),
                        value_len: write.value.len() as u32,
                        expires_at: write.expires_at,
                    };
                    match write.op {
                        Op::Put => {
                            st.ks.put(write.key, loc);
                        }
                        Op::Delete => {
                            st.ks.remove(write.key);
                        }
                        Op::Meta if write.value.is_empty() => st.ks.remove_meta(write.key),
                        Op::Meta => st.ks.put_meta(write.key, loc),
                        Op::HintDigest => {}
                    }
                }
                st.live_total()
            };
            self.compact_if_due(w.end, live_bytes);
        }

        let counters = &self.counters;
        if deferred.is_some() {
            Counters::bump(&counters.deferred);
        }
        for write in writes {
            match write.op {
                Op::Put => Counters::bump(&counters.sets),
                Op::Delete => Counters::bump(&counters.deletes),
                Op::Meta | Op::HintDigest => {}
            }
        }
        if let Some(observer) = observer {
            for (i, write) in writes.iter().enumerate().filter(|(_, w)| w.observed()) {
                let new = (write.op == Op::Put).then_some(write.value);
                notify(observer, write.key, w.old.get(i), new);
            }
        }
        // Old values are not kept past the call (one may be 256 MiB).
        w.old.clear();
        Ok(self.sync.note_write())
    }

    /// Write the record(s) encoded in `w.buf` at the end of the log (growing
    /// the mapping if needed), advance the end and the sequence number, and
    /// publish them to the other processes. Returns the offset they start
    /// at. A `deferred` record goes at the log's end as the page told,
    /// beyond what this handle took in, which stays where it was (the
    /// record is taken in with the others' before the next read).
    fn append(&self, w: &mut Writer, deferred: Option<Tail>, with_meta: bool) -> Result<u64> {
        let offset = deferred.map_or(w.end, |tail| tail.end);
        let needed = offset + w.buf.len() as u64;
        if w.log.capacity().is_some_and(|cap| needed > cap) {
            let grown = Arc::new(w.log.grow(needed).map_err(|e| Error::io(self.name(), e))?);
            self.state.write().log = grown.clone();
            w.log = grown;
        }
        w.log
            .write_all_at(&w.buf, offset)
            .map_err(|e| Error::io(self.name(), e))?;
        let end = needed;
        self.note_appended(w.file_id, end);
        match deferred {
            None => {
                w.end = end;
                w.last_record = Some(offset);
                w.seq += 1;
                self.publish_end(end, w.seq, with_meta);
            }
            Some(tail) => {
                w.deferred_end = end;
                self.publish_deferred(end, tail.next_seq + 1);
            }
        }
        Ok(offset)
    }

    /// Drop the keys whose TTL has passed by `now` from the key directory,
    /// telling the observer of each, in order with the writes (the caller
    /// holds the writer mutex as `w`). Nothing is written: replay skips
    /// expired records, and compaction drops them.
    pub(super) fn expire(&self, w: &mut Writer, now: u64) {
        let observer = self.observer.get().filter(|o| o.wants_changes());
        let expired = self.state.read().ks.expired(now);
        // A damaged record cannot be un-indexed precisely (its old value is
        // then `None`); the query layer re-checks every document it returns.
        w.old.clear();
        if observer.is_some_and(|o| o.wants_old_values()) {
            for (key, loc) in &expired {
                let old = self.old_value(&w.log, key, Some(*loc)).ok().flatten();
                w.old.push(old);
            }
        }
        self.state.write().ks.purge_expired(now);
        if let Some(observer) = observer {
            for (i, (key, _)) in expired.iter().enumerate() {
                notify(&**observer, key, w.old.get(i), None);
            }
        }
        w.old.clear();
    }

    /// The value `key` held at `loc`, for an observer that wants old values.
    /// Step 0 of `apply`: show the observer the user-key changes of this
    /// call, with a view of which keys are live now. The caller holds the
    /// writer mutex.
    fn check_with(
        &self,
        observer: &dyn ChangeObserver,
        changes: &[PendingChange<'_>],
    ) -> Result<()> {
        let now = self.clock.now_ms();
        let is_live = |key: &str| {
            self.state
                .read()
                .ks
                .keydir
                .get(key)
                .is_some_and(|loc| loc.is_live(now))
        };
        observer.check(changes, &is_live)
    }

    fn old_value(&self, log: &Log, key: &str, loc: Option<Loc>) -> Result<Option<ValueBuf>> {
        loc.map(|loc| self.read_value(log, key, loc)).transpose()
    }
}

/// Tell `observer` that `key` now holds `new` (`None`: removed); it held
/// `old`, when read.
pub(super) fn notify(
    observer: &dyn ChangeObserver,
    key: &str,
    old: Option<&Option<ValueBuf>>,
    new: Option<&[u8]>,
) {
    let old = old.and_then(Option::as_ref).map(ValueBuf::as_bytes);
    match new {
        Some(value) => observer.on_put(key, old, value),
        None => observer.on_remove(key, old),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use parking_lot::Mutex;

    use crate::engine::{ChangeObserver, Database, WriteBatch};
    use crate::Clock;
    use crate::Config;

    type Change = (String, Option<Vec<u8>>, Option<Vec<u8>>);

    /// Every change an observer hears, as (key, old, new).
    #[derive(Default)]
    struct Heard(Mutex<Vec<Change>>);

    impl ChangeObserver for Heard {
        fn on_put(&self, key: &str, old: Option<&[u8]>, new: &[u8]) {
            let change = (key.into(), old.map(<[u8]>::to_vec), Some(new.to_vec()));
            self.0.lock().push(change);
        }

        fn on_remove(&self, key: &str, old: Option<&[u8]>) {
            self.0
                .lock()
                .push((key.into(), old.map(<[u8]>::to_vec), None));
        }
    }

    /// What a database shows of its writes: every key with its value,
    /// expiry and length as the key directory holds them, the live bytes,
    /// and the set and delete counters.
    type Published = (Vec<(String, Vec<u8>, u64, u32)>, u64, u64, u64);

    fn published(db: &Database) -> Published {
        let (keys, live) = {
            let st = db.inner.state.read();
            let keys: Vec<_> = st
                .ks
                .keydir
                .iter()
                .map(|(k, loc)| (k.to_string(), *loc))
                .collect();
            (keys, st.live_total())
        };
        let keys = keys
            .into_iter()
            .map(|(k, loc)| {
                let value = db.get_raw(&k).expect("read").expect("live");
                (k, value.as_bytes().to_vec(), loc.expires_at, loc.value_len)
            })
            .collect();
        let stats = db.stats().expect("stats");
        (keys, live, stats.sets, stats.deletes)
    }

    /// The same writes, once as one transaction and once as single writes,
    /// then an expiry: the key directory, the counters and the observer
    /// must come out identical (plain and encrypted, where a batch is one
    /// sealed envelope).
    #[test]
    fn a_batch_publishes_and_is_observed_like_the_same_single_writes() {
        for encrypted in [false, true] {
            let outcomes: Vec<(Published, Vec<Change>)> = [true, false]
                .into_iter()
                .map(|batched| {
                    let mut config = Config::new().in_memory().with_clock(Clock::manual(1_000));
                    if encrypted {
                        config = config.with_encryption([5u8; 32]);
                    }
                    let db = Database::open(&config).expect("open");
                    let heard = Arc::new(Heard::default());
                    assert!(db.set_observer(heard.clone()));
                    db.put_raw("a", b"1").expect("put");
                    db.put_raw("b", b"[2]").expect("put");
                    db.put_raw("c", br#"{"c":3}"#).expect("put");
                    let ttl = Duration::from_millis(500);
                    if batched {
                        let mut batch = WriteBatch::new();
                        batch.put_with_ttl("a", b"10".to_vec(), ttl).expect("a");
                        batch.delete("b").expect("b");
                        batch.put("d", br#""four""#.to_vec()).expect("d");
                        db.commit(&batch, []).expect("commit");
                    } else {
                        db.put_raw_with_ttl("a", b"10", ttl).expect("a");
                        assert!(db.delete("b").expect("b"));
                        db.put_raw("d", br#""four""#).expect("d");
                    }
                    let before_expiry = published(&db);
                    db.clock().advance_ms(500);
                    assert_eq!(db.len(), 2, "a has expired");
                    let changes = std::mem::take(&mut *heard.0.lock());
                    (before_expiry, changes)
                })
                .collect();
            assert_eq!(outcomes[0], outcomes[1], "encrypted: {encrypted}");
            let (published, changes) = &outcomes[0];
            assert_eq!(published.0.len(), 3);
            assert_eq!((published.2, published.3), (5, 1));
            let last: Vec<&Change> = changes.iter().skip(3).collect();
            let some = |v: &[u8]| Some(v.to_vec());
            assert_eq!(
                last,
                [
                    &("a".into(), some(b"1"), some(b"10")),
                    &("b".into(), some(b"[2]"), None),
                    &("d".into(), None, some(br#""four""#)),
                    &("a".into(), some(b"10"), None),
                ]
            );
        }
    }
}
