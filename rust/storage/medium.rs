//! The byte store behind one log: a file appended through a shared memory
//! map, a plain file (read-only handles, compaction output), or a growable
//! buffer for `:memory:` databases. An enum rather than a trait object keeps
//! the read path free of dynamic dispatch.
//!
//! Why a map for appends: a write into a `MAP_SHARED` mapping lands in the OS
//! page cache, which is exactly the guarantee a `write(2)` gives (it survives
//! the process being killed) without a syscall per record. The mapped region is
//! preallocated (`posix_fallocate`), so filling it can never fault on a full
//! disk; the zero-filled slack past the last record is cut on close, and treated
//! as a torn tail if a crash leaves it behind.

use std::fs::File;
use std::io;
use std::sync::Arc;

use memmap2::{MmapOptions, MmapRaw};
use parking_lot::RwLock;

use super::fault::{self, Op};

/// Mapped logs grow in steps of at least this much…
const MIN_GROWTH: u64 = 1 << 20;
/// …and at most this much (doubling in between).
const MAX_GROWTH: u64 = 64 << 20;

/// A file plus a writable shared mapping of its first `capacity` bytes.
#[derive(Debug)]
pub struct MappedLog {
    file: Arc<File>,
    map: MmapRaw,
}

/// Where a log's bytes live.
#[derive(Debug)]
pub enum Medium {
    /// A file read and written with positional I/O.
    Disk(File),
    /// A file whose appends and reads go through a shared mapping.
    Mapped(MappedLog),
    /// Bytes in memory: `:memory:` databases.
    Memory(RwLock<Vec<u8>>),
}

impl Medium {
    /// Turn a file whose valid data ends at `end` into a mapped log with room
    /// to append.
    ///
    /// # Errors
    /// Allocation or mapping failures.
    pub fn map_for_append(file: File, end: u64) -> io::Result<Medium> {
        MappedLog::new(Arc::new(file), growth_target(end, 0)).map(Medium::Mapped)
    }

    /// Bytes that can be written without growing, when the medium is mapped.
    pub fn capacity(&self) -> Option<u64> {
        match self {
            Medium::Mapped(m) => Some(m.map.len() as u64),
            _ => None,
        }
    }

    /// A mapped medium with room for at least `needed` bytes (same file, new
    /// mapping). Readers still holding the old medium keep a valid mapping:
    /// the file only grows.
    ///
    /// # Errors
    /// Allocation or mapping failures; `Unsupported` for unmapped media.
    pub fn grow(&self, needed: u64) -> io::Result<Medium> {
        match self {
            Medium::Mapped(m) => {
                MappedLog::new(m.file.clone(), growth_target(needed, m.map.len() as u64))
                    .map(Medium::Mapped)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "only mapped logs grow",
            )),
        }
    }

    /// Fill `buf` from `offset`. A short file is an `UnexpectedEof` error.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Medium::Disk(f) => read_exact_at(f, buf, offset),
            Medium::Mapped(m) => {
                if offset.saturating_add(buf.len() as u64) <= m.map.len() as u64 {
                    // SAFETY: in bounds of the live mapping; the range holds
                    // published records that no writer touches again.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            m.map.as_ptr().add(offset as usize),
                            buf.as_mut_ptr(),
                            buf.len(),
                        );
                    }
                    Ok(())
                } else {
                    read_exact_at(&m.file, buf, offset)
                }
            }
            Medium::Memory(v) => {
                let v = v.read();
                let start = usize::try_from(offset).map_err(|_| eof())?;
                let src = v.get(start..start + buf.len()).ok_or_else(eof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Write all of `bytes` at `offset` (the caller tracks the end of the log
    /// and, for mapped logs, grows the medium first).
    pub fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        match self {
            Medium::Disk(f) => {
                fault::check(Op::Write, f)?;
                write_all_at(f, bytes, offset)
            }
            Medium::Mapped(m) => {
                fault::check(Op::Write, &m.file)?;
                if offset.saturating_add(bytes.len() as u64) > m.map.len() as u64 {
                    return Err(io::Error::other(
                        "append past the mapped region; grow first",
                    ));
                }
                // SAFETY: in bounds; only the single writer (under the writer
                // mutex) writes, and only past the last published record.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        m.map.as_mut_ptr().add(offset as usize),
                        bytes.len(),
                    );
                }
                Ok(())
            }
            Medium::Memory(v) => {
                let mut v = v.write();
                let start = usize::try_from(offset).map_err(|_| eof())?;
                v.truncate(start);
                v.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Zero whatever lies past `from` (up to the last non-zero byte of the
    /// file): what a writer killed mid-append left beyond the committed end,
    /// cleared by the next holder of the write lock. Written through the
    /// file (the page cache is the mapping's), so the mapping need not
    /// cover it.
    ///
    /// # Errors
    /// I/O errors.
    pub fn zero_tail(&self, from: u64) -> io::Result<()> {
        let file = match self {
            Medium::Disk(f) => f,
            Medium::Mapped(m) => &*m.file,
            Medium::Memory(_) => return Ok(()),
        };
        let Some(last) = super::replay::last_nonzero(self, from, self.len()?)? else {
            return Ok(());
        };
        let zeros = vec![0u8; 1 << 16];
        let mut at = from;
        while at <= last {
            let n = (last + 1 - at).min(zeros.len() as u64) as usize;
            fault::check(Op::Write, file)?;
            write_all_at(file, zeros.get(..n).unwrap_or_default(), at)?;
            at += n as u64;
        }
        Ok(())
    }

    /// Force written bytes to stable storage (`fdatasync` / `msync`).
    pub fn sync_data(&self) -> io::Result<()> {
        match self {
            Medium::Disk(f) => fault::sync(f, || f.sync_data()),
            Medium::Mapped(m) => fault::sync(&m.file, || m.map.flush()),
            Medium::Memory(_) => Ok(()),
        }
    }

    /// Current length of the underlying file (for mapped logs: including slack).
    #[allow(clippy::len_without_is_empty)] // a log is never empty: it has a header
    pub fn len(&self) -> io::Result<u64> {
        match self {
            Medium::Disk(f) => Ok(f.metadata()?.len()),
            Medium::Mapped(m) => Ok(m.file.metadata()?.len()),
            Medium::Memory(v) => Ok(v.read().len() as u64),
        }
    }

    /// Cut the log to `len` bytes (torn-tail recovery, trimming slack on close).
    pub fn truncate(&self, len: u64) -> io::Result<()> {
        match self {
            Medium::Disk(f) => {
                fault::check(Op::Truncate, f)?;
                f.set_len(len)?;
                fault::sync(f, || f.sync_all())
            }
            Medium::Mapped(m) => {
                fault::sync(&m.file, || m.map.flush())?;
                fault::check(Op::Truncate, &m.file)?;
                m.file.set_len(len)?;
                fault::sync(&m.file, || m.file.sync_all())
            }
            Medium::Memory(v) => {
                v.write().truncate(usize::try_from(len).map_err(|_| eof())?);
                Ok(())
            }
        }
    }
}

impl MappedLog {
    fn new(file: Arc<File>, capacity: u64) -> io::Result<Self> {
        if file.metadata()?.len() < capacity {
            allocate(&file, capacity)?;
        }
        let len = usize::try_from(capacity)
            .map_err(|_| io::Error::other("log larger than the address space"))?;
        let map = MmapOptions::new().len(len).map_raw(&*file)?;
        Ok(MappedLog { file, map })
    }
}

/// Capacity for a log that must hold `needed` bytes, growing from `current`.
fn growth_target(needed: u64, current: u64) -> u64 {
    let step = current.clamp(MIN_GROWTH, MAX_GROWTH);
    let target = needed.max(current + step);
    target.div_ceil(MIN_GROWTH) * MIN_GROWTH
}

/// Extend `file` to `len` bytes backed by real blocks.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    fault::check(Op::Allocate, file)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let off_len = libc::off_t::try_from(len).map_err(|_| io::Error::other("file too large"))?;
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, off_len) };
        match rc {
            0 => return Ok(()),
            // Filesystems without fallocate (e.g. some network mounts): fall back.
            libc::EOPNOTSUPP | libc::EINVAL => {}
            err => return Err(io::Error::from_raw_os_error(err)),
        }
    }
    file.set_len(len)
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the log")
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(unix)]
fn write_all_at(f: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, bytes, offset)
}

#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, offset) {
            Ok(0) => return Err(eof()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_all_at(f: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        match f.seek_write(bytes, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write log record",
                ))
            }
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_bounded_and_aligned() {
        assert_eq!(growth_target(10, 0), MIN_GROWTH);
        assert_eq!(growth_target(MIN_GROWTH + 1, MIN_GROWTH), 2 * MIN_GROWTH);
        let big = 10 * MAX_GROWTH;
        assert_eq!(growth_target(big + 1, big), big + MAX_GROWTH);
        assert_eq!(growth_target(5 * MIN_GROWTH + 3, 0), 6 * MIN_GROWTH);
    }

    #[test]
    fn mapped_append_and_grow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("m"))
            .expect("open");
        let m = Medium::map_for_append(file, 0).expect("map");
        let cap = m.capacity().expect("mapped");
        m.write_all_at(b"hello", 0).expect("write");
        assert!(m.write_all_at(b"x", cap).is_err());
        let g = m.grow(cap + 1).expect("grow");
        g.write_all_at(b"world", cap).expect("write after grow");
        let mut a = [0u8; 5];
        m.read_exact_at(&mut a, 0).expect("old map still valid");
        assert_eq!(&a, b"hello");
        g.read_exact_at(&mut a, cap).expect("read");
        assert_eq!(&a, b"world");
    }
}
