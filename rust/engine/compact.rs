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
//! Everything that can fail happens before the rename: copying, syncing,
//! mapping the new file for appends (the `fallocate` that meets a full disk),
//! working out every key's new place, writing and syncing the hint. A failure
//! there removes `<db>.compact` and the hint's temporary file, and the handle
//! carries on with the old file. After the rename the switch cannot fail;
//! only the directory fsync can, and then the handle is on the new file and
//! poisoned (see `engine::health`): it never acknowledges a write into a file
//! that is no longer the database. A hint that cannot be written is reported
//! ([`Error::HintNotWritten`]) once the data swap has completed. Crashes and
//! power loss at every step are tested with the power cuts of
//! `storage::fault`.
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
use crate::format::RecordKind;
use crate::storage::{self, LockMode, Log, Medium, Seal, WriterLock};

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

/// The new file of a compaction until it is renamed into place: removed if
/// the compaction stops before that, whatever the reason.
struct PartialFile(Option<std::path::PathBuf>);

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Flush the copy buffer to the new file at this size.
const COPY_CHUNK: usize = 1 << 20;

impl Database {
    /// Rewrite the log with live records only, reclaiming the space of
    /// overwritten and deleted ones.
    ///
    /// # Errors
    /// [`Error::Closed`], [`Error::ReadOnly`], [`Error::Poisoned`],
    /// corruption found while copying, I/O errors: before the rename the
    /// database and the handle are left as they were (and the partial new
    /// file removed); a failed directory sync after it leaves the handle on
    /// the new file, poisoned. [`Error::HintNotWritten`]: the compaction
    /// completed, only its hint file is missing.
    pub fn compact(&self) -> Result<()> {
        self.compact_as(false, &mut |_, _| {})
    }

    /// [`Database::compact`], calling `progress(copied, total)` as the live
    /// records of its snapshot are copied: after each chunk written to the
    /// new file (about 1 MiB) and once at the end, with `copied == total`.
    /// Records written during the copy are moved in the final step and not
    /// counted.
    ///
    /// # Errors
    /// As [`Database::compact`].
    pub fn compact_with_progress(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        self.compact_as(false, progress)
    }

    /// Re-encrypt the database under `new_key` (encrypting it, if it was
    /// plain), by a compaction into a new file sealed under the new key. A
    /// passphrase gets a fresh salt. Interrupted before the final rename, the
    /// database is unchanged and opens with the old key; after it, with the new.
    ///
    /// # Errors
    /// As [`Database::compact`]; [`Error::Encryption`] if the key is unusable.
    pub fn rekey(&self, new_key: &EncryptionKey) -> Result<()> {
        self.check_rewritable(false)?;
        let seal = storage::new_seal(self.name(), new_key)?;
        self.rewrite(Some(seal), false, &mut |_, _| {})
    }

    /// The compaction a background thread runs: like [`Database::compact`],
    /// but it gives up once no user handle is left.
    pub(super) fn compact_in_background(&self) -> Result<()> {
        self.compact_as(true, &mut |_, _| {})
    }

    fn compact_as(&self, background: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        self.check_rewritable(background)?;
        let seal = match &self.inner.current_log().seal {
            Some(old) => Some(
                old.rotate()
                    .map_err(|e| Error::encryption(self.name(), None, e.to_string()))?,
            ),
            None => None,
        };
        self.rewrite(seal, background, progress)
    }

    /// A user's call checks the handle's health like any other (raising a
    /// poison or a pending background error); a background run only stops
    /// on a closed or poisoned handle (it has nobody to raise to).
    fn check_rewritable(&self, background: bool) -> Result<()> {
        if self.is_read_only() {
            return Err(Error::ReadOnly);
        }
        if !background {
            return self.check_open();
        }
        if self.is_closed() || self.inner.health.is_poisoned() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Copy the live records into a new file sealed by `seal` (plain if none),
    /// reporting `(records copied, records in the snapshot)` to `progress`.
    fn rewrite(
        &self,
        seal: Option<Seal>,
        background: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let inner = &self.inner;
        let _one_at_a_time = inner.compacting.lock();
        // A close between the check before this lock and the lock itself
        // has already waited on `compacting` and gone on releasing the file:
        // nothing of this run may start after it.
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let name = self.name();
        // One process compacts at a time: a background compaction leaves it
        // to the one under way; a user's call waits for it, then compacts
        // the file it left.
        let sharing = inner.shared.as_ref().filter(|s| s.slot.is_some());
        let _one_process = match sharing {
            Some(shared) => {
                match shared
                    .page
                    .lock_compaction(!background)
                    .map_err(|e| Error::io(name, e))?
                {
                    Some(lock) => Some(lock),
                    None => return Ok(()),
                }
            }
            None => None,
        };
        // The snapshot starts from every process's writes.
        inner.follow()?;

        // 1. Snapshot: the log end and every live location before it.
        let (copy_end, generation, old) = {
            let w = inner.writer.lock();
            (w.end, w.generation, w.log.clone())
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
        let total = snapshot.len() as u64;
        progress(0, total);

        // 2. Copy live records (verified, and re-sealed for their new place
        // when encrypted) into the new file. Until the rename, any failure
        // removes it (and the hint's temporary file) and leaves the old file
        // and the handle as they were.
        let target = self.file_path().map(storage::compact_path);
        let target_name = target.clone().unwrap_or_else(|| name.to_path_buf());
        let header = storage::new_header(&target_name, generation + 1, seal.as_ref())?;
        let mut partial = PartialFile(target.clone());
        let new = match &target {
            Some(p) => Medium::Disk(storage::create_log(p, &header)?),
            None => Medium::Memory(RwLock::new(header.encode())),
        };
        let new_file_id = match &new {
            Medium::Disk(f) => storage::paths::file_id(f).ok(),
            _ => None,
        };
        let new = Log::new(new, &header, seal.map(Arc::new));
        let io_err = |e| Error::io(&target_name, e);
        let mut remap = Remap::default();
        let mut out = Vec::with_capacity(COPY_CHUNK + 4096);
        let mut out_at = new.data_start();
        let mut record = Vec::new();
        let mut sealed = Vec::new();
        let mut anchor = None;
        for (copied, (key, loc, _)) in (1u64..).zip(&snapshot) {
            if self.compaction_abandoned(background) {
                return Err(Error::Closed);
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
                // Reported per chunk, not per record, so a compaction
                // without a bar costs no more than before.
                progress(copied, total);
            }
        }
        drop(snapshot);
        progress(total, total);
        let last_copied = anchor;

        // 3. Writers pause: append what they wrote meanwhile, sync, map the
        // new file for appends and work out every key's new place: all that
        // can fail happens before the rename.
        let mut w = inner.writer.lock();
        if self.is_closed() {
            // close() set the flag under this mutex: it must not find the
            // file swapped behind it.
            return Err(Error::Closed);
        }
        if inner.health.is_poisoned() {
            // A sync failed meanwhile: the handle does no more work.
            drop(w);
            return self.check_rewritable(background);
        }
        // Other processes pause too: take in what they wrote during the
        // copy (it is moved with the tail), and hold their appends off until
        // the new file is published.
        let _across = inner.lock_across_processes(&mut w, false)?;
        if w.generation != generation {
            return Ok(()); // another process compacted the file meanwhile
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
            storage::walk_frames(&old, name, copy_end, &tail, |frame| {
                let at = out_at + out.len() as u64;
                remap.insert(frame.offset, "", at);
                // Each of its keys now finds the frame at `at`; in a plain
                // log a transaction's keys pointed at its inner records.
                for write in frame.writes().flatten() {
                    if write.offset != frame.offset {
                        remap.insert(write.offset, "", at);
                    }
                }
                tail_last = Some(at);
                append_record(&new, &target_name, &mut out, &mut sealed, frame.plain, at)
            })?;
        }
        drop(tail);
        new.write_all_at(&out, out_at).map_err(io_err)?;
        let new_end = out_at + out.len() as u64;
        drop(out);
        new.sync_data().map_err(io_err)?;
        // The fallocate that can hit ENOSPC, before the new file is the database.
        let new = Arc::new(new.map_for_append(new_end).map_err(io_err)?);
        let moved = {
            let relocate = |key: &str, loc: &Loc| {
                if raw_tail && loc.offset >= copy_end {
                    Some(loc.offset - copy_end + tail_base)
                } else {
                    remap.get(loc.offset, key)
                }
            };
            let st = inner.state.read();
            let ks = &st.ks;
            let mut moved = Vec::with_capacity(ks.keydir.len() + ks.meta.len());
            for (key, loc) in ks.keydir.iter().chain(ks.meta.iter()) {
                match relocate(key, loc) {
                    Some(at) => moved.push(at),
                    // Expired, not copied: it leaves the keydir at the switch.
                    None if !loc.is_live(now) => moved.push(loc.offset),
                    None => {
                        return Err(Error::corruption(
                            name,
                            loc.offset,
                            format!("compaction lost track of key {key:?}"),
                        ))
                    }
                }
            }
            moved
        };
        if let (Some(from), Some(to)) = (&target, self.file_path()) {
            // The writer lock follows the file: lock the new one before it
            // becomes the database, so no opener ever finds it unlocked, and
            // hand this handle over to that lock once it is in place (a
            // sharing writer then lets the others in; they take the new
            // file's lock when they move to it).
            let mode = inner
                .lock
                .lock()
                .as_ref()
                .map_or(LockMode::Exclusive, WriterLock::mode);
            let new_lock = WriterLock::join(from, mode, &|| false)?.lock;
            storage::fault::rename(from, to).map_err(|e| Error::io(to, e))?;
            // Cannot fail for a lock this handle holds alone (a conversion).
            let _ = new_lock.share();
            *inner.lock.lock() = Some(new_lock);
        }
        partial.0 = None;

        // 4. The new file is the database: from here on nothing fails but
        // the directory sync, and the handle switches to the new file
        // whatever happens. The old hint names the old generation, so it
        // would never be applied to the new file; remove it. The new file's
        // hint is written at close (vouched for by a digest record appended
        // to the log then, see storage::hint), so the compacted file holds
        // exactly its live records.
        if let Some(path) = self.file_path() {
            storage::remove_hint(path);
            // Built on the old file: it would never be trusted again.
            let _ = std::fs::remove_file(storage::index_path(path));
        }
        let hint_end = new.data_start();
        {
            let mut st = inner.state.write();
            let ks = &mut st.ks;
            let locs = ks.keydir.iter_mut().chain(ks.meta.iter_mut());
            for ((_, loc), at) in locs.zip(moved) {
                loc.offset = at;
            }
            // Keys not copied because they had expired leave the keydir now.
            st.ks.purge_expired(now);
            st.log = new.clone();
            st.basis = None;
            st.ks.relocations += 1;
        }
        // The old file's seal (and, after a rekey, the old key) is wiped when
        // the last reader still holding the old log lets go of it.
        w.log = new;
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
        w.file_id = new_file_id;
        // Its deferred records were taken in before the move (an offset
        // in the old file means nothing in the new one).
        w.deferred_end = 0;
        inner.publish_file(&w);
        inner.sync.mark_all_durable();
        inner.background.completed.fetch_add(1, Ordering::Relaxed);
        // The rename is durable only once the directory is synced; writers
        // wait for it (under fsync="always" they would otherwise acknowledge
        // writes into a file that a power loss could still take back). If
        // it fails, whether the old or the new file survives a power loss
        // is unknown: the handle is poisoned (see engine::health).
        if let Some(to) = self.file_path() {
            storage::sync_parent_dir(to).map_err(|e| inner.sync_failed(e, !background))?;
        }
        drop(w);
        Ok(())
    }

    /// Whether a compaction under way should stop: the database was closed,
    /// or (for a background one) only the compaction itself still holds it:
    /// every user handle is gone, and finishing would only delay releasing
    /// the writer lock.
    fn compaction_abandoned(&self, background: bool) -> bool {
        self.is_closed() || (background && Arc::strong_count(&self.inner) == 1)
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
        let before = db.inner.current_log().seal.clone().expect("encrypted");
        db.rekey(&EncryptionKey::from([2u8; 32])).expect("rekey");
        let after = db.inner.current_log().seal.clone().expect("encrypted");
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
