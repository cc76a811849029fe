//! Compaction: rewrite only the live records into a fresh file and swap it in.
//!
//! Crash safety comes from the rename: the new file is written and fsynced
//! under a temporary name (`<db>.compact`) and atomically renamed over the
//! database, then the directory is fsynced. A crash before the rename leaves
//! the old file (the leftover is deleted at the next open); after it, the new
//! one. Readers and writers keep going while live records are copied; writers
//! pause only for the final step, which copies the records appended during the
//! copy, syncs, renames and remaps the keydir.
//!
//! The same rewrite re-encrypts: every record of an encrypted database is
//! opened and sealed again for its new offset in the new file (new file id,
//! new subkey), and [`Database::rekey`] seals them under another key, or
//! encrypts a plain database. Interrupted before the rename, the old file is
//! intact under the old key.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::crypto::EncryptionKey;
use crate::error::{Error, Result};
use crate::format::{Record, RecordKind};
use crate::storage::{self, Log, Medium, Seal};

use super::db::Database;
use super::keydir::Loc;

/// Where each copied record went: by old offset, and for the keys that share
/// one old offset (the records of an encrypted transaction, sealed as one
/// envelope, each copied on its own) by offset and key.
#[derive(Default)]
struct Remap {
    by_offset: HashMap<u64, u64>,
    shared: HashMap<u64, HashMap<String, u64>>,
}

impl Remap {
    fn insert(&mut self, old: u64, key: &str, new: u64) {
        match self.by_offset.entry(old) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(new);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.shared
                    .entry(old)
                    .or_default()
                    .insert(key.to_string(), new);
            }
        }
    }

    fn get(&self, old: u64, key: &str) -> Option<u64> {
        self.shared
            .get(&old)
            .and_then(|keys| keys.get(key))
            .or_else(|| self.by_offset.get(&old))
            .copied()
    }
}

/// Test hook: where a simulated crash stops a compaction. After a simulated
/// crash the handle is closed, as if the process had died there.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactCrashPoint {
    /// Run to completion.
    None,
    /// After the live records are written, before anything is synced.
    AfterCopy,
    /// After the new file is synced, before the rename.
    BeforeRename,
    /// After the rename, before the handle switches to the new file.
    AfterRename,
}

/// Flush the copy buffer to the new file at this size.
const COPY_CHUNK: usize = 1 << 20;

impl Database {
    /// Rewrite the log with live records only, reclaiming the space of
    /// overwritten and deleted ones.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::ReadOnly`], corruption found while copying
    /// (the database is left untouched), I/O errors.
    pub fn compact(&self) -> Result<()> {
        self.compact_until(CompactCrashPoint::None)
    }

    /// Re-encrypt the database under `new_key` (encrypting it, if it was
    /// plain), by a compaction into a new file sealed under the new key. A
    /// passphrase gets a fresh salt. Interrupted before the final rename, the
    /// database is unchanged and opens with the old key; after it, with the new.
    ///
    /// # Errors
    /// As [`Database::compact`]; [`Error::Encryption`] if the key is unusable.
    pub fn rekey(&self, new_key: &EncryptionKey) -> Result<()> {
        self.rekey_until(new_key, CompactCrashPoint::None)
    }

    #[doc(hidden)]
    pub fn rekey_until(&self, new_key: &EncryptionKey, crash: CompactCrashPoint) -> Result<()> {
        self.check_rewritable()?;
        let seal = storage::new_seal(self.name(), new_key)?;
        self.rewrite(Some(seal), crash, false)
    }

    #[doc(hidden)]
    pub fn compact_until(&self, crash: CompactCrashPoint) -> Result<()> {
        self.compact_as(crash, false)
    }

    /// The compaction a background thread runs: like [`Database::compact`],
    /// but it gives up once no user handle is left.
    pub(super) fn compact_in_background(&self) -> Result<()> {
        self.compact_as(CompactCrashPoint::None, true)
    }

    fn compact_as(&self, crash: CompactCrashPoint, background: bool) -> Result<()> {
        self.check_rewritable()?;
        let seal = match &self.inner.current_medium().seal {
            Some(old) => Some(
                old.rotate()
                    .map_err(|e| Error::encryption(self.name(), None, e.to_string()))?,
            ),
            None => None,
        };
        self.rewrite(seal, crash, background)
    }

    fn check_rewritable(&self) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        if self.is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Copy the live records into a new file sealed by `seal` (plain if none).
    fn rewrite(
        &self,
        seal: Option<Seal>,
        crash: CompactCrashPoint,
        background: bool,
    ) -> Result<()> {
        let inner = &self.inner;
        let _one_at_a_time = inner.compacting.lock();
        let name = self.name();

        // 1. Snapshot: the log end and every live location before it.
        let (copy_end, generation, old) = {
            let w = inner.writer.lock();
            (w.end, w.generation, w.medium.clone())
        };
        // Expired keys are not copied: they survive neither compaction nor
        // reopen. Purging them first (through the observer) keeps indexes exact.
        let now = inner.clock.now_ms();
        self.purge_expired_at(now, true);
        let mut snapshot: Vec<(String, Loc, RecordKind)> = {
            let st = inner.state.read();
            let live_keys = st.ks.keydir.iter().filter(|(_, loc)| loc.is_live(now));
            let user = live_keys.map(|e| (e, RecordKind::Put));
            user.chain(st.ks.meta.iter().map(|e| (e, RecordKind::Meta)))
                .filter(|((_, loc), _)| loc.offset < copy_end)
                .map(|((k, loc), kind)| (String::from(&**k), *loc, kind))
                .collect()
        };
        // Copy in log order, not key order: the format promises seq strictly
        // increasing within a file (and the old file is then read sequentially).
        snapshot.sort_unstable_by_key(|(_, loc, _)| loc.offset);

        // 2. Copy live records (verified, and re-sealed for their new place
        // when encrypted) into the new file.
        let target = self.path().map(storage::compact_path);
        let target_name = target.clone().unwrap_or_else(|| name.to_path_buf());
        let header = storage::new_header(&target_name, generation + 1, seal.as_ref())?;
        let new = match &target {
            Some(p) => Medium::Disk(storage::create_log(p, &header)?),
            None => Medium::Memory(RwLock::new(header.encode())),
        };
        let new = Log::new(new, &header, seal.map(Arc::new));
        let io_err = |e| Error::io(&target_name, e);
        let mut remap = Remap::default();
        let mut out = Vec::with_capacity(COPY_CHUNK + 4096);
        let mut out_at = new.data_start();
        let mut record = Vec::new();
        let mut sealed = Vec::new();
        let mut anchor = None;
        for (key, loc, _) in &snapshot {
            if self.compaction_abandoned(background) {
                drop(new);
                return self.abandon_compaction(target.as_deref());
            }
            let plain = storage::read_plain_record(
                &old,
                name,
                loc.offset,
                key,
                loc.value_len,
                &mut record,
            )?;
            let plain = record.get(plain).unwrap_or_default();
            let at = out_at + out.len() as u64;
            remap.insert(loc.offset, key, at);
            anchor = Some(at);
            append_record(&new, &target_name, &mut out, &mut sealed, plain, at)?;
            if out.len() >= COPY_CHUNK {
                new.write_all_at(&out, out_at).map_err(io_err)?;
                out_at += out.len() as u64;
                out.clear();
            }
        }
        drop(snapshot);
        let last_copied = anchor;
        if crash == CompactCrashPoint::AfterCopy {
            return self.simulate_crash();
        }

        // 3. Writers pause: append what they wrote meanwhile, sync, rename.
        let mut w = inner.writer.lock();
        if self.is_closed() {
            // close() set the flag under this mutex: it must not find the
            // file swapped behind it.
            drop((w, new));
            return self.abandon_compaction(target.as_deref());
        }
        let tail_len = usize::try_from(w.end - copy_end)
            .map_err(|_| Error::corruption(name, copy_end, "log tail too large"))?;
        let tail_base = out_at + out.len() as u64;
        let mut tail = vec![0u8; tail_len];
        old.read_exact_at(&mut tail, copy_end)
            .map_err(|e| Error::io(name, e))?;
        // Plain to plain, the tail moves as it is (offsets shift by a constant);
        // sealed records are bound to their offset and file, so each is re-sealed.
        let raw_tail = old.seal.is_none() && new.seal.is_none();
        let mut tail_last = None;
        if raw_tail {
            out.extend_from_slice(&tail);
        } else {
            let plain_old = old.seal.is_none();
            storage::walk_records(&old, name, copy_end, &mut tail, |offset, plain| {
                let at = out_at + out.len() as u64;
                remap.insert(offset, "", at);
                if plain_old {
                    // Keys of a plain transaction point at its inner records;
                    // sealed, the whole batch is one envelope at `at`.
                    if let Ok(rec) = Record::decode(plain) {
                        for (inner_at, _) in crate::format::BatchRecords::new(rec).flatten() {
                            remap.insert(offset + inner_at as u64, "", at);
                        }
                    }
                }
                tail_last = Some(at);
                append_record(&new, &target_name, &mut out, &mut sealed, plain, at)
            })?;
        }
        drop(tail);
        new.write_all_at(&out, out_at).map_err(io_err)?;
        let new_end = out_at + out.len() as u64;
        drop(out);
        new.sync_data().map_err(io_err)?;
        if crash == CompactCrashPoint::BeforeRename {
            drop(w);
            return self.simulate_crash();
        }
        if let (Some(from), Some(to)) = (&target, self.path()) {
            std::fs::rename(from, to).map_err(|e| Error::io(to, e))?;
            storage::sync_parent_dir(to).map_err(|e| Error::io(to, e))?;
        }
        // The old hint names the old generation, so it would never be applied
        // to the new file; remove it. The new file's hint is written at close
        // (it is vouched for by a digest record appended to the log then, see
        // storage::hint), so the compacted file holds exactly its live records.
        if let Some(path) = self.path() {
            storage::remove_hint(path);
        }
        let hint_end = new.data_start();
        if crash == CompactCrashPoint::AfterRename {
            drop(w);
            return self.simulate_crash();
        }

        // 4. Point every key at its record in the new file, and switch.
        let new = Arc::new(new.map_for_append(new_end).map_err(io_err)?);
        {
            let mut st = inner.state.write();
            // Keys not copied because they had expired leave the keydir now.
            st.ks.purge_expired(now);
            let ks = &mut st.ks;
            for (key, loc) in ks.keydir.iter_mut().chain(ks.meta.iter_mut()) {
                if raw_tail && loc.offset >= copy_end {
                    loc.offset = loc.offset - copy_end + tail_base;
                } else if let Some(moved) = remap.get(loc.offset, key) {
                    loc.offset = moved;
                } else {
                    return Err(Error::corruption(
                        name,
                        loc.offset,
                        format!("compaction lost track of key {key:?}"),
                    ));
                }
            }
            st.medium = new.clone();
            st.ks.relocations += 1;
        }
        // The old file's seal (and, after a rekey, the old key) is wiped when
        // the last reader still holding the old log lets go of it.
        w.medium = new;
        w.end = new_end;
        w.hint_end = hint_end;
        // The last record is the last one appended during the copy, if any,
        // else the last one copied.
        w.last_record = match (w.last_record, tail_last) {
            (_, Some(at)) => Some(at),
            (Some(old), None) if raw_tail && old >= copy_end => Some(old - copy_end + tail_base),
            _ => last_copied,
        };
        w.generation = generation + 1;
        inner.sync.mark_all_durable();
        inner.background.completed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a compaction under way should stop: the database was closed,
    /// or (for a background one) only the compaction itself still holds it:
    /// every user handle is gone, and finishing would only delay releasing
    /// the writer lock.
    fn compaction_abandoned(&self, background: bool) -> bool {
        self.is_closed() || (background && Arc::strong_count(&self.inner) == 1)
    }

    /// Give up a compaction: the old file stays as it is; the partial new
    /// one is deleted.
    fn abandon_compaction(&self, target: Option<&std::path::Path>) -> Result<()> {
        if let Some(target) = target {
            let _ = std::fs::remove_file(target);
        }
        Err(Error::Closed)
    }

    /// End this handle as if the process had died mid-compaction (test hook).
    fn simulate_crash(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        drop(self.inner.stop_flusher.lock().take());
        drop(self.inner.lock.lock().take());
        Ok(())
    }
}

/// Append one plain record to the copy buffer `out`, sealed into an envelope
/// for offset `at` when `log` is encrypted (`scratch` is reused between calls).
fn append_record(
    log: &Log,
    name: &std::path::Path,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    plain: &[u8],
    at: u64,
) -> Result<()> {
    if log.seal.is_none() {
        out.extend_from_slice(plain);
        return Ok(());
    }
    scratch.clear();
    scratch.extend_from_slice(plain);
    log.seal_record(name, scratch, at)?;
    out.extend_from_slice(scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::crypto::EncryptionKey;
    use crate::{Config, Database};

    #[test]
    fn rekey_switches_the_seal_and_close_wipes_it_under_live_clones() {
        let db =
            Database::open(&Config::new().in_memory().with_encryption([1u8; 32])).expect("open");
        let clone = db.clone();
        db.put_raw("k", b"1").expect("put");
        let before = db.inner.current_medium().seal.clone().expect("encrypted");
        db.rekey(&EncryptionKey::from([2u8; 32])).expect("rekey");
        let after = db.inner.current_medium().seal.clone().expect("encrypted");
        assert!(
            !std::sync::Arc::ptr_eq(&before, &after),
            "a new seal after rekey"
        );
        let mut buf = b"record".to_vec();
        assert!(after.seal_record(&mut buf, 0).is_ok());
        db.close().expect("close");
        // Another handle (and this test) still hold the seal: its key is gone anyway.
        let mut buf = b"record".to_vec();
        assert!(
            after.seal_record(&mut buf, 0).is_err(),
            "key material survived close"
        );
        drop(clone);
    }
}
