//! Where a database's files are, and how they are opened: the one place that
//! resolves a database path, names its sidecars and creates them.
//!
//! A database is its file, whatever path reaches it, so the path is resolved
//! once at open (symlinks followed, made absolute) and every later step
//! (compaction's rename, sidecars, backup, salvage) uses the resolved path.
//! Sidecar and temporary files are never opened through a symlink: a leftover
//! is unlinked (which removes a link itself, not its target) and the file is
//! created with `O_CREAT|O_EXCL`. Data files are opened without blocking and
//! refused unless they are regular files (a FIFO would hang `open(2)`).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Symlinks followed while resolving a path before giving up (as `ELOOP`).
const MAX_LINKS: usize = 40;

/// The absolute path of the file `path` names, symlinks followed: the file
/// itself if it exists; else (a new database) its canonical directory joined
/// with its name. A dangling symlink resolves to its target, which an open
/// then creates, as `open(2)` with `O_CREAT` would, so the link stays a link.
///
/// # Errors
/// The directory does not exist or cannot be searched, a symlink loop, or a
/// path without a file name (`/`, `..`).
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut path = std::path::absolute(path)?;
    for _ in 0..MAX_LINKS {
        match fs::canonicalize(&path) {
            Ok(found) => return Ok(found),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (Some(dir), Some(Component::Normal(name))) =
            (path.parent(), path.components().next_back())
        else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a database path must end in a file name",
            ));
        };
        let joined = fs::canonicalize(dir)?.join(name);
        match fs::symlink_metadata(&joined) {
            // A dangling link: follow it to where the file is to be created.
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&joined)?;
                path = joined.parent().unwrap_or(Path::new("/")).join(target);
            }
            _ => return Ok(joined),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `app.db` -> `app.db.compact`, the file a compaction writes before renaming it into place.
pub fn compact_path(db: &Path) -> PathBuf {
    with_suffix(db, ".compact")
}

/// `app.db` -> `app.db.hint`.
pub fn hint_path(db: &Path) -> PathBuf {
    with_suffix(db, ".hint")
}

/// `app.db` -> `app.db.hint.tmp`, where a hint is written before its rename.
pub fn temp_hint_path(db: &Path) -> PathBuf {
    with_suffix(db, ".hint.tmp")
}

/// `app.db` -> `app.db.index`, the secondary indexes as of a close, so
/// the next open loads them instead of parsing every document (written and
/// validated by the document layer, see `documents::persist`).
pub fn index_path(db: &Path) -> PathBuf {
    with_suffix(db, ".index")
}

/// `app.db` -> `app.db.index.tmp`, where an index file is written before its rename.
pub fn temp_index_path(db: &Path) -> PathBuf {
    with_suffix(db, ".index.tmp")
}

/// `app.db` -> `app.db.shm`, the page every process with the database
/// open maps to learn of each other's writes (see `storage::shared`).
pub fn shm_path(db: &Path) -> PathBuf {
    with_suffix(db, ".shm")
}

/// `backup.db` -> `backup.db.tmp-backup`, where a backup is copied before its rename.
pub fn backup_temp_path(dest: &Path) -> PathBuf {
    with_suffix(dest, ".tmp-backup")
}

/// `app.db` -> `app.db.salvage` (or `.salvage.1`, ...: the first name not
/// taken), where salvage rebuilds a damaged database.
pub fn salvage_path(db: &Path) -> PathBuf {
    free_name(&with_suffix(db, ".salvage"))
}

/// `app.db` -> `app.db.damaged` (or `.damaged.1`, ...: the first name not
/// taken), where salvage keeps the damaged original.
pub fn damaged_path(db: &Path) -> PathBuf {
    free_name(&with_suffix(db, ".damaged"))
}

fn free_name(base: &Path) -> PathBuf {
    let mut name = base.to_path_buf();
    let mut n = 0u32;
    // symlink_metadata: a dangling link is a name taken too.
    while fs::symlink_metadata(&name).is_ok() {
        n += 1;
        name = with_suffix(base, &format!(".{n}"));
    }
    name
}

/// Create a new, empty sidecar or temporary file at `path` for reading and
/// writing, never through a symlink: a leftover of any kind (a stale file, a
/// planted link) is unlinked first, then the file is created exclusively, so
/// no other file is ever truncated or written.
///
/// # Errors
/// I/O errors; `AlreadyExists` if something reappears at `path` between the
/// unlink and the create (another process racing on the same name).
pub fn create_sidecar(path: &Path) -> io::Result<File> {
    super::fault::check_path(super::fault::Op::Create, path)?;
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    super::fault::created(&file);
    Ok(file)
}

/// Open an existing sidecar (a hint) for reading, refusing a symlink
/// (`ELOOP`) and anything but a regular file.
///
/// # Errors
/// I/O errors; `NotFound` if there is none.
pub fn open_sidecar(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// How a data file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only; the file must exist.
    Read,
    /// Read and write; created (empty) if missing.
    Write,
}

/// Open the data file at `path` (already resolved). The open never blocks
/// (`O_NONBLOCK`, cleared afterwards), and anything but a regular file (a
/// FIFO, a device, a directory, a socket) is refused, so opening one fails
/// at once and creates nothing.
///
/// # Errors
/// [`Error::NotAFile`] for a FIFO, device or socket; `EISDIR` (an I/O
/// error) for a directory; other I/O errors, with the path.
pub fn open_data_file(path: &Path, access: Access) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    if access == Access::Write {
        options.write(true).create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    regular_only(&file, path)?;
    #[cfg(unix)]
    clear_nonblocking(&file).map_err(|e| Error::io(path, e))?;
    Ok(file)
}

fn regular_only(file: &File, path: &Path) -> Result<()> {
    let kind = file.metadata().map_err(|e| Error::io(path, e))?.file_type();
    if kind.is_file() {
        return Ok(());
    }
    if kind.is_dir() {
        return Err(Error::io(path, io::Error::from_raw_os_error(libc::EISDIR)));
    }
    Err(Error::NotAFile {
        path: path.to_path_buf(),
        kind: describe(kind),
    })
}

fn describe(kind: fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    let _ = kind;
    "not a regular file"
}

#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; F_GETFL and
    // F_SETFL take and return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The identity of an open file: (device, inode) on Unix.
///
/// # Errors
/// I/O errors from `fstat`.
pub fn file_id(file: &File) -> io::Result<(u64, u64)> {
    id_of(&file.metadata()?)
}

/// The identity of the file `path` names now (symlinks followed).
///
/// # Errors
/// I/O errors from `stat`.
pub fn path_id(path: &Path) -> io::Result<(u64, u64)> {
    id_of(&fs::metadata(path)?)
}

#[cfg(unix)]
#[allow(clippy::unnecessary_wraps)]
fn id_of(meta: &fs::Metadata) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Ok((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn id_of(_meta: &fs::Metadata) -> io::Result<(u64, u64)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "file identity needs Unix",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links_and_dangling_links() {
        let dir = tempfile::tempdir().expect("dir");
        let real = dir.path().join("real.db");
        std::fs::write(&real, b"x").expect("write");
        let canon = std::fs::canonicalize(&real).expect("canon");
        #[cfg(unix)]
        {
            let link = dir.path().join("link.db");
            std::os::unix::fs::symlink(&real, &link).expect("link");
            assert_eq!(resolve(&link).expect("resolve"), canon);
            // Dangling, relative target: resolves to the target's place.
            let dangling = dir.path().join("dangling.db");
            std::os::unix::fs::symlink("sub/../new.db", &dangling).expect("link");
            std::fs::create_dir(dir.path().join("sub")).expect("sub");
            assert_eq!(
                resolve(&dangling).expect("resolve"),
                canon.with_file_name("new.db")
            );
            let a = dir.path().join("a");
            let b = dir.path().join("b");
            std::os::unix::fs::symlink(&b, &a).expect("link");
            std::os::unix::fs::symlink(&a, &b).expect("link");
            assert!(resolve(&a).is_err(), "a symlink loop");
        }
        assert!(resolve(&dir.path().join("missing/x.db")).is_err());
    }

    #[test]
    fn create_sidecar_never_writes_through_a_link() {
        let dir = tempfile::tempdir().expect("dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").expect("write");
        let side = dir.path().join("db.compact");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, &side).expect("link");
        let mut f = create_sidecar(&side).expect("create");
        std::io::Write::write_all(&mut f, b"new").expect("write");
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
        assert!(!std::fs::symlink_metadata(&side)
            .expect("meta")
            .file_type()
            .is_symlink());
    }
}
