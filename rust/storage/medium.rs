//! The byte store behind one log: a real file, or a growable buffer for
//! `:memory:` databases. An enum rather than a trait object keeps the read path
//! free of dynamic dispatch.

use std::fs::File;
use std::io;

use parking_lot::RwLock;

/// Where a log's bytes live.
#[derive(Debug)]
pub enum Medium {
    /// A file on disk, read with positional reads (no shared cursor, so readers
    /// never contend on a seek position).
    Disk(File),
    /// Bytes in memory: `:memory:` databases.
    Memory(RwLock<Vec<u8>>),
}

impl Medium {
    /// Fill `buf` from `offset`. A short file is an `UnexpectedEof` error.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Medium::Disk(f) => read_exact_at(f, buf, offset),
            Medium::Memory(v) => {
                let v = v.read();
                let start = usize::try_from(offset).map_err(|_| eof())?;
                let src = v.get(start..start + buf.len()).ok_or_else(eof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Write all of `bytes` at `offset` (the caller tracks the end of the log).
    pub fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        match self {
            Medium::Disk(f) => write_all_at(f, bytes, offset),
            Medium::Memory(v) => {
                let mut v = v.write();
                let start = usize::try_from(offset).map_err(|_| eof())?;
                v.truncate(start);
                v.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Force written bytes to stable storage (`fdatasync`).
    pub fn sync_data(&self) -> io::Result<()> {
        match self {
            Medium::Disk(f) => f.sync_data(),
            Medium::Memory(_) => Ok(()),
        }
    }

    /// Current length in bytes.
    pub fn len(&self) -> io::Result<u64> {
        match self {
            Medium::Disk(f) => Ok(f.metadata()?.len()),
            Medium::Memory(v) => Ok(v.read().len() as u64),
        }
    }

    /// Cut the log to `len` bytes (torn-tail recovery).
    pub fn truncate(&self, len: u64) -> io::Result<()> {
        match self {
            Medium::Disk(f) => {
                f.set_len(len)?;
                f.sync_all()
            }
            Medium::Memory(v) => {
                v.write().truncate(usize::try_from(len).map_err(|_| eof())?);
                Ok(())
            }
        }
    }
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
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "failed to write log record")),
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
