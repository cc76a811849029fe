//! Fault injection for storage I/O, in the manner of SQLite's crash VFS and
//! redb's crash backend: every write, sync, allocation, truncation, rename,
//! directory sync and file creation of data files, hint files and compaction
//! or backup outputs goes through one of the functions here.
//!
//! Without the `fault-injection` cargo feature (every production build) they
//! are the bare operation, inlined: nothing is added to any path. With it (the
//! Rust test suite turns it on through a dev-dependency on this crate), each
//! call first loads one relaxed atomic (are any plans armed?) and, only if
//! one is, finds the [`FaultPlan`] whose directory holds the file. Plans are
//! keyed by directory, so tests running in parallel in one binary, each in
//! its own temporary directory, never see each other's faults.
//!
//! A plan counts calls per [`Op`] and can:
//! - fail the Nth call of one kind with a chosen errno (the call does not
//!   happen; later calls go through, just as Linux reports success for the
//!   sync after a failed one: exactly what the engine must not trust);
//! - end the process (abort, as `kill -9` would, no destructor running)
//!   at the Nth call of one kind, before it happens: a crash at an exact
//!   point, for tests whose other processes must carry on;
//! - cut the power at the Nth durability barrier (file sync or directory
//!   sync): that call and every later one fails with EIO, and
//!   [`FaultPlan::restore_power_cut`] then rewrites the directory as a disk
//!   would hold it after the power loss.
//!
//! The power-loss model is deliberately simple: a file's content on disk is
//! what it held at its last successful sync (or when the plan was armed), and
//! the directory's names are what they were at its last successful directory
//! sync (or at arming): a create or rename not followed by a successful
//! directory sync is undone, unsynced bytes are dropped. Real disks may keep
//! more; they never keep less, so a database that recovers from this image
//! recovers from a real power loss at the same point.

use std::fs::File;
use std::io;
use std::path::Path;

/// The kinds of storage I/O a plan counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A write of bytes (pwrite, a buffered write, or an append into a mapping).
    Write,
    /// fdatasync / fsync / msync of a file.
    Sync,
    /// posix_fallocate (growing a mapped log).
    Allocate,
    /// ftruncate / set_len.
    Truncate,
    /// rename(2).
    Rename,
    /// fsync of a directory (making a create or rename durable).
    DirSync,
    /// Creating a file.
    Create,
}

/// Sync `file` with `sync` (fdatasync, fsync or msync of its mapping).
///
/// # Errors
/// The sync's error, or an injected one.
#[inline(always)]
pub fn sync(file: &File, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(plan) = imp::plan_for_file(file) {
        plan.before(Op::Sync)?;
        sync()?;
        plan.after_sync(file);
        return Ok(());
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = file;
    sync()
}

/// Check an operation of kind `op` on the open `file` before doing it.
///
/// # Errors
/// An injected error.
#[inline(always)]
pub fn check(op: Op, file: &File) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(plan) = imp::plan_for_file(file) {
        return plan.before(op);
    }
    let _ = (op, file);
    Ok(())
}

/// Check an operation of kind `op` on `path` (a create) before doing it.
///
/// # Errors
/// An injected error.
#[inline(always)]
pub fn check_path(op: Op, path: &Path) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(plan) = imp::plan_for_path(path) {
        return plan.before(op);
    }
    let _ = (op, path);
    Ok(())
}

/// Note that `file` was just created (a new inode under its name).
#[inline(always)]
pub fn created(file: &File) {
    #[cfg(feature = "fault-injection")]
    if let Some(plan) = imp::plan_for_file(file) {
        plan.created(file);
    }
    let _ = file;
}

/// rename(2) `from` to `to`.
///
/// # Errors
/// The rename's error, or an injected one.
#[inline(always)]
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    check_path(Op::Rename, to)?;
    std::fs::rename(from, to)
}

/// fsync the directory `dir` with `sync`.
///
/// # Errors
/// The sync's error, or an injected one.
#[inline(always)]
pub fn sync_dir(dir: &Path, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(plan) = imp::plan_for_path(&dir.join("x")) {
        plan.before(Op::DirSync)?;
        sync()?;
        plan.after_dir_sync();
        return Ok(());
    }
    let _ = dir;
    sync()
}

/// A `Write` over a file whose every write is checked (hint files, which
/// are written through a buffer).
#[derive(Debug)]
pub struct Checked(pub File);

impl io::Write for Checked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        check(Op::Write, &self.0)?;
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl io::Seek for Checked {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

#[cfg(feature = "fault-injection")]
pub use imp::FaultPlan;

#[cfg(feature = "fault-injection")]
mod imp {
    use std::collections::HashMap;
    use std::fs::{self, File};
    use std::io;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Weak};

    use parking_lot::Mutex;

    use super::Op;

    /// How many plans are armed: the only thing a disarmed call looks at.
    static ARMED: AtomicUsize = AtomicUsize::new(0);
    static PLANS: Mutex<Vec<Weak<Plan>>> = Mutex::new(Vec::new());

    /// One file's bytes as a power loss leaves them: its last synced content
    /// (trailing zeros trimmed, `len` kept).
    #[derive(Debug, Clone, Default)]
    struct Image {
        bytes: Vec<u8>,
        len: u64,
    }

    /// An inode, told apart from a later file that reuses its number.
    type Inode = (u64, u64);

    #[derive(Debug, Default)]
    struct State {
        counts: HashMap<Op, u64>,
        barriers: u64,
        fail: Option<(Op, u64, i32)>,
        die_at: Option<(Op, u64)>,
        power_cut_at: Option<u64>,
        cut: bool,
        injected: u64,
        /// Inode number -> how many times a file with it was created.
        epochs: HashMap<u64, u64>,
        durable_content: HashMap<Inode, Image>,
        /// Name -> inode, as of the last successful directory sync.
        durable_names: HashMap<PathBuf, Inode>,
    }

    #[derive(Debug)]
    pub(super) struct Plan {
        dir: PathBuf,
        state: Mutex<State>,
    }

    /// Faults for the files of one directory; disarmed when dropped.
    #[derive(Debug)]
    pub struct FaultPlan {
        plan: Arc<Plan>,
    }

    impl FaultPlan {
        /// Start counting (and, once configured, failing) the storage I/O
        /// of files in `dir`. The directory's files as they are now count as
        /// durable.
        ///
        /// # Panics
        /// If `dir` cannot be read (a test setup error).
        pub fn arm(dir: &Path) -> FaultPlan {
            let dir = fs::canonicalize(dir).expect("fault plan directory");
            let plan = Arc::new(Plan {
                dir,
                state: Mutex::new(State::default()),
            });
            {
                let mut st = plan.state.lock();
                plan.snapshot_names(&mut st);
                let names: Vec<(PathBuf, Inode)> = st
                    .durable_names
                    .iter()
                    .map(|(n, i)| (n.clone(), *i))
                    .collect();
                for (name, inode) in names {
                    if let Ok(bytes) = fs::read(plan.dir.join(&name)) {
                        st.durable_content.insert(inode, image(bytes));
                    }
                }
            }
            let mut plans = PLANS.lock();
            plans.retain(|p| p.strong_count() > 0);
            plans.push(Arc::downgrade(&plan));
            ARMED.fetch_add(1, Ordering::AcqRel);
            FaultPlan { plan }
        }

        /// Make the `n`th (1-based) call of kind `op` fail with `errno`.
        #[must_use]
        pub fn fail_nth(self, op: Op, n: u64, errno: i32) -> Self {
            self.plan.state.lock().fail = Some((op, n, errno));
            self
        }

        /// End this process at the `n`th (1-based) call of kind `op`, before
        /// the call: `abort()`, so nothing else of the process runs (no
        /// destructor, no unlock), as under `kill -9` at that instant.
        #[must_use]
        pub fn die_at(self, op: Op, n: u64) -> Self {
            self.plan.state.lock().die_at = Some((op, n));
            self
        }

        /// Cut the power at the `n`th (1-based) durability barrier (a file
        /// sync or a directory sync): it and every later call fail with EIO.
        #[must_use]
        pub fn power_cut_at(self, n: u64) -> Self {
            self.plan.state.lock().power_cut_at = Some(n);
            self
        }

        /// Calls of kind `op` so far (including failed ones).
        pub fn count(&self, op: Op) -> u64 {
            self.plan.state.lock().counts.get(&op).copied().unwrap_or(0)
        }

        /// Durability barriers (file and directory syncs) so far.
        pub fn barriers(&self) -> u64 {
            self.plan.state.lock().barriers
        }

        /// Whether an injected fault (or the power cut) has fired.
        pub fn fired(&self) -> bool {
            let st = self.plan.state.lock();
            st.injected > 0 || st.cut
        }

        /// After a power cut (and after every handle on the files is gone):
        /// replace the directory's files by what a disk would hold. Also
        /// stops the plan.
        ///
        /// # Errors
        /// I/O errors rewriting the directory.
        pub fn restore_power_cut(self) -> io::Result<()> {
            let (names, content) = {
                let st = self.plan.state.lock();
                (st.durable_names.clone(), st.durable_content.clone())
            };
            let dir = self.plan.dir.clone();
            drop(self);
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                if entry.metadata()?.is_file() {
                    fs::remove_file(entry.path())?;
                }
            }
            for (name, inode) in &names {
                let image = content.get(inode).cloned().unwrap_or_default();
                let path = dir.join(name);
                fs::write(&path, &image.bytes)?;
                File::options()
                    .write(true)
                    .open(&path)?
                    .set_len(image.len)?;
            }
            Ok(())
        }
    }

    impl Drop for FaultPlan {
        fn drop(&mut self) {
            ARMED.fetch_sub(1, Ordering::AcqRel);
            PLANS
                .lock()
                .retain(|p| p.strong_count() > 0 && !std::ptr::eq(p.as_ptr(), &*self.plan));
        }
    }

    fn image(mut bytes: Vec<u8>) -> Image {
        let len = bytes.len() as u64;
        let keep = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        bytes.truncate(keep);
        Image { bytes, len }
    }

    fn fd_path(file: &File) -> Option<PathBuf> {
        use std::os::unix::io::AsRawFd;
        let link = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
        let text = link.to_string_lossy();
        Some(PathBuf::from(
            text.strip_suffix(" (deleted)").unwrap_or(&text).to_string(),
        ))
    }

    pub(super) fn plan_for_file(file: &File) -> Option<Arc<Plan>> {
        if ARMED.load(Ordering::Relaxed) == 0 {
            return None;
        }
        plan_for_path(&fd_path(file)?)
    }

    pub(super) fn plan_for_path(path: &Path) -> Option<Arc<Plan>> {
        if ARMED.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let dir = path.parent()?;
        let dir = fs::canonicalize(dir).ok()?;
        PLANS
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .find(|p| p.dir == dir)
    }

    impl Plan {
        pub(super) fn before(&self, op: Op) -> io::Result<()> {
            let mut st = self.state.lock();
            let n = {
                let c = st.counts.entry(op).or_insert(0);
                *c += 1;
                *c
            };
            if st.die_at == Some((op, n)) {
                std::process::abort();
            }
            if st.cut {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            if matches!(op, Op::Sync | Op::DirSync) {
                st.barriers += 1;
                if st.power_cut_at == Some(st.barriers) {
                    st.cut = true;
                    return Err(io::Error::from_raw_os_error(libc::EIO));
                }
            }
            if let Some((fop, fn_, errno)) = st.fail {
                if fop == op && fn_ == n {
                    st.injected += 1;
                    return Err(io::Error::from_raw_os_error(errno));
                }
            }
            Ok(())
        }

        fn inode(st: &mut State, ino: u64) -> Inode {
            (ino, st.epochs.get(&ino).copied().unwrap_or(0))
        }

        pub(super) fn created(&self, file: &File) {
            if let Ok(meta) = file.metadata() {
                let mut st = self.state.lock();
                let epoch = st.epochs.entry(meta.ino()).or_insert(0);
                *epoch += 1;
                let inode = (meta.ino(), *epoch);
                // Never synced: empty on disk.
                st.durable_content.insert(inode, Image::default());
            }
        }

        pub(super) fn after_sync(&self, file: &File) {
            let Some(path) = fd_path(file) else { return };
            let (Ok(meta), Ok(bytes)) = (file.metadata(), fs::read(&path)) else {
                return;
            };
            let mut st = self.state.lock();
            let inode = Self::inode(&mut st, meta.ino());
            st.durable_content.insert(inode, image(bytes));
        }

        pub(super) fn after_dir_sync(&self) {
            let mut st = self.state.lock();
            self.snapshot_names(&mut st);
        }

        fn snapshot_names(&self, st: &mut State) {
            let mut names = HashMap::new();
            if let Ok(entries) = fs::read_dir(&self.dir) {
                for entry in entries.flatten() {
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_file() {
                        let inode = Self::inode(st, meta.ino());
                        names.insert(PathBuf::from(entry.file_name()), inode);
                    }
                }
            }
            st.durable_names = names;
        }
    }
}
