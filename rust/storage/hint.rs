//! Hint files on disk: written next to a data file (by compaction and by a
//! close that leaves much unhinted data), checked against it and read at open.
//!
//! A hint is an accelerator, never a source of truth: any doubt (missing,
//! damaged, describing another generation or another file) makes the open
//! ignore it and replay the whole log. It is written under a temporary name
//! and renamed, so a crash leaves either the old hint or the new one.

use std::fs;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::format::{
    encode_hint_entry, HintEntry, HintHeader, RecordHeader, HINT_HEADER_LEN, RECORD_HEADER_LEN,
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
    body_crc: u32,
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
            body_crc: 0,
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
        self.body_crc = crc32c::crc32c_append(self.body_crc, &self.entry);
        self.entries += 1;
        self.out.write_all(&self.entry)
    }

    /// Write the header for a data file of `generation` whose records before
    /// `data_end` the entries describe, the last of them starting at
    /// `anchor_offset` with checksum `anchor_crc`. The hint is complete but
    /// not yet in place.
    ///
    /// # Errors
    /// I/O errors.
    pub fn finish(
        mut self,
        generation: u64,
        data_end: u64,
        anchor_offset: u64,
        anchor_crc: u32,
    ) -> io::Result<PendingHint> {
        let header = HintHeader {
            generation,
            data_end,
            anchor_offset,
            anchor_crc,
            entries: self.entries,
            body_crc: self.body_crc,
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
    /// The entry bytes (checksum verified).
    pub body: HintBody,
    /// Sequence number of the anchor record (the highest before `data_end`).
    pub anchor_seq: u64,
}

/// Read the hint of `db` if it describes exactly this data file (`medium`,
/// of `generation` and `file_len` bytes); `None` on any doubt.
pub fn load_hint(db: &Path, medium: &Medium, generation: u64, file_len: u64) -> Option<LoadedHint> {
    let file = paths::open_sidecar(&hint_path(db)).ok()?;
    // SAFETY: a hint file is never modified in place: writers build a new
    // one under a temporary name and rename it over (or unlink) the old, so
    // this inode keeps its bytes while mapped. Only an outside process
    // truncating the file could fault a read, as for any mapped file; the
    // mapping lives only for the duration of the open.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let header = HintHeader::decode(map.get(..HINT_HEADER_LEN)?).ok()?;
    if header.generation != generation || header.data_end > file_len {
        return None;
    }
    // The data file's record at the anchor must be the one the hint saw.
    let mut anchor = [0u8; RECORD_HEADER_LEN];
    medium
        .read_exact_at(&mut anchor, header.anchor_offset)
        .ok()?;
    let record = RecordHeader::parse(&anchor).ok()?;
    if record.crc != header.anchor_crc
        || header.anchor_offset + record.record_len() as u64 != header.data_end
    {
        return None;
    }
    // Read once front to back (checksum, then decode): tell the kernel.
    let _ = map.advise(memmap2::Advice::Sequential);
    let body = HintBody { map };
    if crc32c::crc32c(&body) != header.body_crc {
        return None;
    }
    Some(LoadedHint {
        header,
        body,
        anchor_seq: record.seq,
    })
}
