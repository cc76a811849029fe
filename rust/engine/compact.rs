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
use crate::storage::{self, Log, Medium, Seal};

use super::db::Database;
use super::keydir::Loc;

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
        self.rewrite(Some(seal), crash)
    }

    #[doc(hidden)]
    pub fn compact_until(&self, crash: CompactCrashPoint) -> Result<()> {
        self.check_rewritable()?;
        let seal = match &self.inner.current_medium().seal {
            Some(old) => Some(
                old.rotate()
                    .map_err(|e| Error::encryption(self.name(), None, e.to_string()))?,
            ),
            None => None,
        };
        self.rewrite(seal, crash)
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
    fn rewrite(&self, seal: Option<Seal>, crash: CompactCrashPoint) -> Result<()> {
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
        let mut snapshot: Vec<(String, Loc)> = {
            let st = inner.state.read();
            let live_keys = st.ks.keydir.iter().filter(|(_, loc)| loc.is_live(now));
            live_keys
                .chain(st.ks.meta.iter())
                .filter(|(_, loc)| loc.offset < copy_end)
                .map(|(k, loc)| (String::from(&**k), *loc))
                .collect()
        };
        // Copy in log order, not key order: the format promises seq strictly
        // increasing within a file (and the old file is then read sequentially).
        snapshot.sort_unstable_by_key(|(_, loc)| loc.offset);

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
        let mut remap: HashMap<u64, u64> = HashMap::with_capacity(snapshot.len());
        let mut out = Vec::with_capacity(COPY_CHUNK + 4096);
        let mut out_at = new.data_start();
        let mut record = Vec::new();
        let mut sealed = Vec::new();
        for (key, loc) in &snapshot {
            let plain = storage::read_plain_record(
                &old,
                name,
                loc.offset,
                key,
                loc.value_len,
                &mut record,
            )?;
            let at = out_at + out.len() as u64;
            remap.insert(loc.offset, at);
            append_record(
                &new,
                &target_name,
                &mut out,
                &mut sealed,
                record.get(plain).unwrap_or_default(),
                at,
            )?;
            if out.len() >= COPY_CHUNK {
                new.write_all_at(&out, out_at).map_err(io_err)?;
                out_at += out.len() as u64;
                out.clear();
            }
        }
        drop(snapshot);
        if crash == CompactCrashPoint::AfterCopy {
            return self.simulate_crash();
        }

        // 3. Writers pause: append what they wrote meanwhile, sync, rename.
        let mut w = inner.writer.lock();
        let tail_len = usize::try_from(w.end - copy_end)
            .map_err(|_| Error::corruption(name, copy_end, "log tail too large"))?;
        let tail_base = out_at + out.len() as u64;
        let mut tail = vec![0u8; tail_len];
        old.read_exact_at(&mut tail, copy_end)
            .map_err(|e| Error::io(name, e))?;
        // Plain to plain, the tail moves as it is (offsets shift by a constant);
        // sealed records are bound to their offset and file, so each is re-sealed.
        let raw_tail = old.seal.is_none() && new.seal.is_none();
        if raw_tail {
            out.extend_from_slice(&tail);
        } else {
            storage::walk_records(&old, name, copy_end, &mut tail, |offset, plain| {
                let at = out_at + out.len() as u64;
                remap.insert(offset, at);
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
                } else if let Some(&moved) = remap.get(&loc.offset) {
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
        }
        // The old file's seal (and, after a rekey, the old key) is wiped when
        // the last reader still holding the old log lets go of it.
        w.medium = new;
        w.end = new_end;
        w.generation = generation + 1;
        inner.sync.mark_all_durable();
        Ok(())
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
