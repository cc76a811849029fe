//! Hint files on disk: written next to a data file (by compaction and by a
//! close that leaves much unhinted data), checked against it and read at open.
//!
//! A hint is an accelerator, never a source of truth, and untrusted input:
//! any doubt (missing, damaged, describing another generation or another
//! file, or not vouched for by the hint-digest record its data file carries;
//! see `crate::format` hint docs for the threat model) makes the open ignore
//! it and replay the whole log. Every entry is bounds-checked against the
//! data file before it is used. It is written under a temporary name and
//! renamed, so a crash leaves either the old hint or the new one.

use std::fs;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::format::{
    encode_hint_entry, hint_digest_of, DecodeError, HintDigest, HintEntries, HintEntry, HintHeader,
    Record, HINT_DIGEST_LEN, HINT_DIGEST_RECORD_LEN, HINT_HEADER_LEN, RECORD_HEADER_LEN,
};

use super::fault::{self, Checked};
use super::paths::{self, hint_path, temp_hint_path};
use super::Medium;

/// Writes a hint file entry by entry; [`HintWriter::finish`] seals it under
/// a temporary name and [`HintWriter::publish`] (or `finish_and_publish`)
/// moves it into place.
#[derive(Debug)]
pub struct HintWriter {
    /// Cleared once the file is handed on; a writer dropped before that
    /// removes its temporary file.
    temp: Option<PathBuf>,
    db: PathBuf,
    out: BufWriter<Checked>,
    entry: Vec<u8>,
    digest: HintDigest,
    entries: u64,
}

impl HintWriter {
    /// Start the hint of the database at `db`.
    ///
    /// # Errors
    /// I/O errors creating the temporary file.
    pub fn create(db: &Path) -> io::Result<Self> {
        // Never through a symlink planted at the temporary name.
        let file = paths::create_sidecar(&temp_hint_path(db))?;
        let mut out = BufWriter::with_capacity(1 << 20, Checked(file));
        out.write_all(&[0u8; HINT_HEADER_LEN])?;
        Ok(HintWriter {
            temp: Some(temp_hint_path(db)),
            db: db.to_path_buf(),
            out,
            entry: Vec::with_capacity(64),
            digest: HintDigest::default(),
            entries: 0,
        })
    }

    /// Add one entry.
    ///
    /// # Errors
    /// I/O errors.
    pub fn push(&mut self, entry: &HintEntry<'_>) -> io::Result<()> {
        self.entry.clear();
        encode_hint_entry(&mut self.entry, entry);
        self.digest.update(&self.entry);
        self.entries += 1;
        self.out.write_all(&self.entry)
    }

    /// The header for a data file of `generation` whose records before
    /// `data_end` the entries describe, the last of them with sequence
    /// number `last_seq`; `digest_offset` is filled in by [`Self::finish`].
    pub fn header(&self, generation: u64, data_end: u64, last_seq: u64) -> HintHeader {
        HintHeader {
            generation,
            data_end,
            digest_offset: 0,
            last_seq,
            entries: self.entries,
        }
    }

    /// The digest the data file's hint-digest record must carry for this
    /// hint under `header` (see [`Self::header`]).
    pub fn digest(&self, header: &HintHeader) -> [u8; HINT_DIGEST_LEN] {
        self.digest.clone().finish(header)
    }

    /// Write `header`, naming `digest_offset` as where the data file's
    /// hint-digest record (carrying [`Self::digest`]) starts. The hint is
    /// complete but not yet in place.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(mut self, header: HintHeader, digest_offset: u64) -> io::Result<PendingHint> {
        let header = HintHeader {
            digest_offset,
            ..header
        };
        self.out.flush()?;
        let file = self.out.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header.encode())?;
        // Synced before it is published: a renamed hint is whole.
        let file = &file.0;
        fault::sync(file, || file.sync_data())?;
        self.temp = None;
        Ok(PendingHint {
            db: self.db.clone(),
            published: false,
        })
    }
}

impl Drop for HintWriter {
    fn drop(&mut self) {
        if let Some(temp) = &self.temp {
            let _ = fs::remove_file(temp);
        }
    }
}

/// A complete hint under its temporary name.
#[derive(Debug)]
pub struct PendingHint {
    db: PathBuf,
    published: bool,
}

impl PendingHint {
    /// Move the hint into place (atomically replacing an older one).
    ///
    /// # Errors
    /// I/O errors.
    pub fn publish(mut self) -> io::Result<()> {
        self.published = true;
        fault::rename(&temp_hint_path(&self.db), &hint_path(&self.db))
    }
}

impl Drop for PendingHint {
    /// A hint never published (its compaction gave up) is removed.
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(temp_hint_path(&self.db));
        }
    }
}

/// Remove the hint of `db` and any temporary leftover (absent is fine).
pub fn remove_hint(db: &Path) {
    let _ = fs::remove_file(hint_path(db));
    let _ = fs::remove_file(temp_hint_path(db));
}

/// The entry bytes of a loaded hint: the hint file mapped read-only, so
/// they are page cache (shared, reclaimable) rather than a heap copy as
/// large as the file; the key directory built from them is the only
/// private memory the load needs.
#[derive(Debug)]
pub struct HintBody {
    map: memmap2::Mmap,
}

impl std::ops::Deref for HintBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.map.get(HINT_HEADER_LEN..).unwrap_or_default()
    }
}

/// A hint that matches its data file.
#[derive(Debug)]
pub struct LoadedHint {
    /// Its header.
    pub header: HintHeader,
    /// The entry bytes (digest verified).
    pub body: HintBody,
    /// Offset of the first record in the data file.
    data_start: u64,
}

impl LoadedHint {
    /// The entries, each checked against the data file before it is
    /// yielded: its record lies between the first record and `data_end`,
    /// and its lengths are within the format's limits. An entry that fails
    /// is an error: the caller then drops the whole hint.
    pub fn entries(&self) -> impl Iterator<Item = Result<HintEntry<'_>, DecodeError>> + '_ {
        let (start, end) = (self.data_start, self.header.data_end);
        HintEntries::new(&self.body).map(move |e| {
            let e = e?;
            let len = (RECORD_HEADER_LEN + e.key.len()) as u64 + u64::from(e.value_len);
            if e.offset < start || e.offset.saturating_add(len) > end {
                return Err(DecodeError::Malformed(
                    "hint entry outside the described log",
                ));
            }
            Ok(e)
        })
    }
}

/// Read the hint of `db` if the data file (`medium`, of `generation`,
/// `file_len` bytes, records from `data_start`) vouches for it: its
/// hint-digest record at the hint's `digest_offset` carries the SHA-256 of
/// this hint's content. `None` on any doubt.
pub fn load_hint(
    db: &Path,
    medium: &Medium,
    generation: u64,
    data_start: u64,
    file_len: u64,
) -> Option<LoadedHint> {
    let file = paths::open_sidecar(&hint_path(db)).ok()?;
    // SAFETY: a hint file is never modified in place: writers build a new
    // one under a temporary name and rename it over (or unlink) the old, so
    // this inode keeps its bytes while mapped. Only an outside process
    // truncating the file could fault a read, as for any mapped file; the
    // mapping lives only for the duration of the open.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let header = HintHeader::decode(map.get(..HINT_HEADER_LEN)?).ok()?;
    let digest_end = header
        .digest_offset
        .checked_add(HINT_DIGEST_RECORD_LEN as u64)?;
    if header.generation != generation
        || header.data_end < data_start
        || header.data_end > header.digest_offset
        || digest_end > file_len
    {
        return None;
    }
    // The data file's record at digest_offset must vouch for this content.
    let mut record = [0u8; HINT_DIGEST_RECORD_LEN];
    medium
        .read_exact_at(&mut record, header.digest_offset)
        .ok()?;
    let rec = Record::decode(&record).ok()?;
    let expected = hint_digest_of(&rec)?;
    // Read once front to back: tell the kernel.
    let _ = map.advise(memmap2::Advice::Sequential);
    let body = HintBody { map };
    let mut digest = HintDigest::default();
    digest.update(&body);
    if digest.finish(&header) != expected {
        return None;
    }
    Some(LoadedHint {
        header,
        body,
        data_start,
    })
}
