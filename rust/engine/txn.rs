//! Transactions: several writes committed as one batch record, with
//! optimistic conflict detection on the keys the transaction read.
//!
//! A transaction buffers its writes in a [`WriteBatch`] (nothing touches the
//! log until commit) and remembers what it saw for every key it read, as a
//! [`ReadStamp`]. [`Database::commit`] then, under the writer mutex, checks
//! every stamp against the key directory and either writes the whole batch as
//! one record and publishes it, or writes nothing and fails with
//! [`Error::TransactionConflict`].
//!
//! Isolation, precisely: a committed transaction is *serializable* with
//! respect to the keys it read and wrote — it behaves as if it ran alone at
//! its commit instant, because every key it read still held, at that instant,
//! exactly what it read (checked under the same mutex that orders all
//! writes). Reads inside a transaction see the latest committed value (plus
//! the transaction's own writes) at the time of each read, so two reads of
//! different keys may come from different moments; a transaction that saw
//! such a mix cannot commit, because one of its stamps no longer matches.
//! Keys it never read are not checked (blind writes simply win, last writer
//! last). There are no range reads inside a transaction, hence no phantoms.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::{MAX_BATCH_BYTES, RECORD_HEADER_LEN};

use super::db::{validate_key, validate_value, Database, ValueBuf};
use super::keydir::Loc;
use super::stats::Counters;
use super::write::Write;

/// One buffered write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Store these JSON bytes; `ttl_ms` (0 = none) counts from the commit,
    /// unless `expires_at` sets the expiry outright.
    Put {
        /// One JSON document.
        value: Vec<u8>,
        /// Milliseconds the key lives after the commit; 0 for no expiry.
        ttl_ms: u64,
        /// Unix milliseconds at which the key expires, overriding `ttl_ms`
        /// when not 0: an update keeps the deadline the key already had.
        expires_at: u64,
    },
    /// Remove the key (nothing is written for it if it is not live at commit).
    Delete,
}

/// Writes waiting to be committed together. The last write to a key wins.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    ops: BTreeMap<String, BatchOp>,
    /// Encoded size of the batch record if committed now.
    bytes: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Buffer a put of JSON bytes (the caller guarantees one valid JSON
    /// document, as for [`Database::put_raw`]).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] / [`Error::InvalidValue`] at once, leaving the
    /// batch as it was.
    pub fn put(&mut self, key: &str, value: Vec<u8>) -> Result<()> {
        self.insert(
            key,
            BatchOp::Put {
                value,
                ttl_ms: 0,
                expires_at: 0,
            },
        )
    }

    /// Buffer a put that expires at `expires_at_ms` (Unix milliseconds; 0
    /// for never), whenever the commit happens: how an update keeps a key's
    /// TTL (see [`ReadStamp::expires_at_ms`]).
    ///
    /// # Errors
    /// As [`WriteBatch::put`].
    pub fn put_expiring_at(&mut self, key: &str, value: Vec<u8>, expires_at_ms: u64) -> Result<()> {
        self.insert(
            key,
            BatchOp::Put {
                value,
                ttl_ms: 0,
                expires_at: expires_at_ms,
            },
        )
    }

    /// Buffer a put that expires `ttl` after the commit.
    ///
    /// # Errors
    /// As [`WriteBatch::put`]; a TTL under one millisecond is invalid.
    pub fn put_with_ttl(&mut self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let ttl_ms = super::db::ttl_millis(ttl)?;
        self.insert(
            key,
            BatchOp::Put {
                value,
                ttl_ms,
                expires_at: 0,
            },
        )
    }

    /// Buffer a delete.
    ///
    /// # Errors
    /// [`Error::InvalidKey`].
    pub fn delete(&mut self, key: &str) -> Result<()> {
        self.insert(key, BatchOp::Delete)
    }

    /// The buffered write for `key`, if any (so reads inside a transaction
    /// see its own writes).
    pub fn get(&self, key: &str) -> Option<&BatchOp> {
        self.ops.get(key)
    }

    /// Number of keys written.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The buffered writes, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &BatchOp)> {
        self.ops.iter().map(|(k, op)| (k.as_str(), op))
    }

    fn insert(&mut self, key: &str, op: BatchOp) -> Result<()> {
        validate_key(key)?;
        if let BatchOp::Put { value, .. } = &op {
            validate_value(value)?;
        }
        let size = |key: &str, op: &BatchOp| {
            RECORD_HEADER_LEN
                + key.len()
                + match op {
                    BatchOp::Put { value, .. } => value.len(),
                    BatchOp::Delete => 0,
                }
        };
        let replaced = self.ops.get(key).map_or(0, |old| size(key, old));
        let bytes = self.bytes - replaced + size(key, &op);
        if bytes + RECORD_HEADER_LEN > MAX_BATCH_BYTES {
            return Err(Error::InvalidValue {
                path: "transaction".into(),
                reason: format!(
                    "the transaction would hold {bytes} bytes; the limit is {MAX_BATCH_BYTES} bytes (1 GiB): commit it in smaller parts"
                ),
            });
        }
        self.bytes = bytes;
        self.ops.insert(key.to_string(), op);
        Ok(())
    }
}

/// What a transaction saw when it read a key: enough to tell at commit
/// whether the key has changed since.
#[derive(Debug, Clone)]
pub struct ReadStamp {
    relocations: u64,
    loc: Option<Loc>,
    value: Option<ValueBuf>,
}

impl ReadStamp {
    /// The JSON bytes read, or `None` if the key was missing (or expired).
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_ref().map(ValueBuf::as_bytes)
    }

    /// When the key read expires, in Unix milliseconds: 0 for never (or
    /// when it was missing).
    pub fn expires_at_ms(&self) -> u64 {
        self.loc.map_or(0, |l| l.expires_at)
    }
}

/// The live location of `key` at `now`, if any.
fn live_loc(db: &Database, key: &str, now: u64) -> Option<Loc> {
    let st = db.inner.state.read();
    st.ks.keydir.get(key).copied().filter(|l| l.is_live(now))
}

impl Database {
    /// Read `key` on behalf of a transaction: the value (if live) and a stamp
    /// that [`Database::commit`] checks.
    ///
    /// # Errors
    /// [`Error::Closed`], corruption or I/O errors.
    pub fn read_stamped(&self, key: &str) -> Result<ReadStamp> {
        self.check_open()?;
        Counters::bump(&self.inner.counters.gets);
        let now = self.inner.clock.now_ms();
        let (relocations, loc, log) = {
            let st = self.inner.state.read();
            let loc = st.ks.keydir.get(key).copied().filter(|l| l.is_live(now));
            (st.ks.relocations, loc, st.log.clone())
        };
        let value = match loc {
            Some(loc) => Some(self.read_value(&log, key, loc)?),
            None => None,
        };
        Ok(ReadStamp {
            relocations,
            loc,
            value,
        })
    }

    /// Apply `batch` atomically, provided every key in `reads` still holds
    /// what its stamp saw. The writes become one record in the log (a batch;
    /// a single write is an ordinary record), so after a crash they are all
    /// there or none is; indexes, watchers and TTLs follow each write.
    /// Deletes of keys that are not live at commit write nothing.
    ///
    /// # Errors
    /// [`Error::TransactionConflict`] (nothing written), [`Error::Closed`],
    /// [`Error::ReadOnly`], I/O errors.
    pub fn commit<'a>(
        &self,
        batch: &WriteBatch,
        reads: impl IntoIterator<Item = (&'a str, &'a ReadStamp)>,
    ) -> Result<()> {
        self.check_writable()?;
        let ticket = {
            let mut w = self.lock_writer(false)?;
            let now = self.inner.clock.now_ms();
            for (key, stamp) in reads {
                if !self.unchanged_since(key, stamp, now)? {
                    return Err(Error::TransactionConflict {
                        key: key.to_string(),
                    });
                }
            }
            // TTLs count from the commit; deletes of keys not live now write nothing.
            let writes: Vec<Write<'_>> = batch
                .iter()
                .filter_map(|(key, op)| match op {
                    BatchOp::Put {
                        value,
                        ttl_ms,
                        expires_at,
                    } => {
                        let expires_at = match (expires_at, ttl_ms) {
                            (0, 0) => 0,
                            (0, ms) => now.saturating_add(*ms),
                            (at, _) => *at,
                        };
                        Some(Write::put(key, value, expires_at))
                    }
                    BatchOp::Delete => live_loc(self, key, now).map(|_| Write::delete(key)),
                })
                .collect();
            if writes.is_empty() {
                return Ok(());
            }
            self.inner.apply(&mut w, &writes)?
        };
        self.make_durable(ticket)
    }

    /// Whether `key` still holds what `stamp` saw. Called under the writer
    /// mutex, so nothing can change it between this check and the commit.
    fn unchanged_since(&self, key: &str, stamp: &ReadStamp, now: u64) -> Result<bool> {
        let (relocations, current, log) = {
            let st = self.inner.state.read();
            let loc = st.ks.keydir.get(key).copied().filter(|l| l.is_live(now));
            (st.ks.relocations, loc, st.log.clone())
        };
        if relocations == stamp.relocations {
            // Records never move between compactions, so the same offset is
            // the same record: same value, same expiry.
            return Ok(current.map(|l| l.offset) == stamp.loc.map(|l| l.offset));
        }
        // A compaction moved records since the read: compare what is there.
        Ok(match (current, stamp.loc, &stamp.value) {
            (None, None, _) => true,
            (Some(cur), Some(seen), Some(value)) => {
                cur.expires_at == seen.expires_at
                    && self.read_value(&log, key, cur)?.as_bytes() == value.as_bytes()
            }
            _ => false,
        })
    }
}
