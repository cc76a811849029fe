//! Fault sweeps: for each workload (single writes under each fsync policy, a
//! transaction, compaction, rekey, backup, hint writing at close), count its
//! storage calls in a clean run, then for EVERY call N of every kind inject
//! EIO and ENOSPC at N, and separately cut the power at every durability
//! barrier N (rust/storage/fault.rs). After each run the database is
//! reopened and checked against a model of what was acknowledged:
//! - no acknowledged write is lost (after a power cut: none acknowledged
//!   under fsync="always" or followed by a successful flush, close or
//!   compaction);
//! - nothing is served that was never written (an unacknowledged write may
//!   or may not be there, as after a crash during the call);
//! - no temporary file is left behind by a failed step;
//! - the handle either still works (and its later writes survive reopen)
//!   or refuses every call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrumdb::engine::ReadStamp;
use ferrumdb::storage::fault::{FaultPlan, Op};
use ferrumdb::{Config, Database, EncryptionKey, Error, FsyncPolicy, WriteBatch};

use crate::contents;

const OPS: [Op; 7] = [
    Op::Write,
    Op::Sync,
    Op::Allocate,
    Op::Truncate,
    Op::Rename,
    Op::DirSync,
    Op::Create,
];

const KEY_A: [u8; 32] = [7; 32];
const KEY_B: [u8; 32] = [9; 32];

#[derive(Debug, Clone, Copy)]
enum Mode {
    Count,
    Fail(Op, u64, i32),
    PowerCut(u64),
}

/// One attempted change of one key: its value (`None`: deleted) and
/// whether the call returned success.
struct Attempt {
    key: String,
    value: Option<String>,
    acked: bool,
}

/// A backup that reported success: its path, its key, and the
/// acknowledged state it must hold.
type Backup = (PathBuf, Option<[u8; 32]>, BTreeMap<String, String>);

/// What the workload did, as the checks need it.
struct Recorder {
    fsync: FsyncPolicy,
    power_cut: bool,
    initial: BTreeMap<String, String>,
    attempts: Vec<Attempt>,
    /// Acknowledged attempts before this index are durable.
    durable_upto: usize,
    /// Keys the database may be encrypted under at reopen.
    keys: Vec<Option<[u8; 32]>>,
    /// Backups that reported success, with the acknowledged state they hold.
    backups: Vec<Backup>,
    /// Paths of backups attempted (checked for temporaries).
    backup_paths: Vec<PathBuf>,
}

impl Recorder {
    /// A durability point succeeded: with power cuts, only what was
    /// acknowledged before one must survive; without, every acknowledgement
    /// counts.
    fn barrier(&mut self) {
        self.durable_upto = self.attempts.len();
    }

    fn acked(&mut self, always: bool) {
        if !self.power_cut || (always && self.fsync == FsyncPolicy::Always) {
            self.barrier();
        }
    }

    fn put(&mut self, db: &Database, key: &str, value: &str) {
        let ok = db.put_raw(key, value.as_bytes()).is_ok();
        self.attempts.push(Attempt {
            key: key.into(),
            value: Some(value.into()),
            acked: ok,
        });
        if ok {
            self.acked(true);
        }
    }

    fn delete(&mut self, db: &Database, key: &str) {
        let ok = db.delete(key).is_ok();
        self.attempts.push(Attempt {
            key: key.into(),
            value: None,
            acked: ok,
        });
        if ok {
            self.acked(true);
        }
    }

    fn commit(&mut self, db: &Database, ops: &[(&str, Option<&str>)]) {
        let mut batch = WriteBatch::new();
        for (k, v) in ops {
            match v {
                Some(v) => batch.put(k, v.as_bytes().to_vec()).expect("batch put"),
                None => batch.delete(k).expect("batch delete"),
            }
        }
        let ok = db
            .commit(&batch, std::iter::empty::<(&str, &ReadStamp)>())
            .is_ok();
        for (k, v) in ops {
            self.attempts.push(Attempt {
                key: (*k).into(),
                value: v.map(String::from),
                acked: ok,
            });
        }
        if ok {
            self.acked(true);
        }
    }

    /// A call that syncs everything when it succeeds (flush, compaction,
    /// rekey, close). A compaction that completed but could not write its
    /// hint has still made everything durable.
    fn durable_call(&mut self, result: ferrumdb::Result<()>) -> bool {
        let ok = matches!(result, Ok(()) | Err(Error::HintNotWritten { .. }));
        if ok {
            self.barrier();
        }
        ok
    }

    fn backup(&mut self, db: &Database, dest: &Path) {
        self.backup_paths.push(dest.to_path_buf());
        if db.backup(dest).is_ok() {
            let key = *self.keys.last().expect("a key candidate");
            self.backups
                .push((dest.to_path_buf(), key, self.acknowledged()));
        }
    }

    /// The state every acknowledged write describes.
    fn acknowledged(&self) -> BTreeMap<String, String> {
        let mut state = self.initial.clone();
        for a in self.attempts.iter().filter(|a| a.acked) {
            match &a.value {
                Some(v) => state.insert(a.key.clone(), v.clone()),
                None => state.remove(&a.key),
            };
        }
        state
    }

    /// Check the reopened contents: each key holds its last durable value,
    /// or a value attempted after it; no other key or value appears.
    fn check(&self, got: &BTreeMap<String, String>, what: &str) {
        let mut keys: BTreeSet<&String> = self.initial.keys().collect();
        keys.extend(self.attempts.iter().map(|a| &a.key));
        keys.extend(got.keys());
        for key in keys {
            let mut allowed: Vec<Option<&String>> = vec![self.initial.get(key)];
            for (i, a) in self.attempts.iter().enumerate() {
                if &a.key != key {
                    continue;
                }
                if a.acked && i < self.durable_upto {
                    allowed.clear();
                }
                allowed.push(a.value.as_ref());
            }
            assert!(
                allowed.contains(&got.get(key)),
                "{what}: key {key:?} holds {:?}, allowed {allowed:?}",
                got.get(key)
            );
        }
    }
}

/// A workload: how its database is opened, what it holds before the faults
/// are armed, and what it does under them.
struct Workload {
    name: &'static str,
    fsync: FsyncPolicy,
    key: Option<[u8; 32]>,
    /// Keys written before arming, with values of this many bytes.
    initial: usize,
    value_bytes: usize,
    run: fn(&Database, &mut Recorder, &Path),
}

fn open(path: &Path, fsync: FsyncPolicy, key: Option<[u8; 32]>) -> ferrumdb::Result<Database> {
    let mut config = Config::new().with_path(path).with_fsync_policy(fsync);
    if let Some(key) = key {
        config = config.with_encryption(key);
    }
    Database::open(&config)
}

/// Reopen after the run with whichever candidate key the file takes.
fn reopen(path: &Path, keys: &[Option<[u8; 32]>], what: &str) -> Database {
    let mut errors = Vec::new();
    for key in keys.iter().rev() {
        match open(path, FsyncPolicy::Never, *key) {
            Ok(db) => return db,
            Err(e) => errors.push(e.to_string()),
        }
    }
    panic!("{what}: reopen failed: {errors:?}");
}

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".compact") || n.ends_with(".tmp") || n.ends_with(".tmp-backup"))
        .collect()
}

/// Run `w` once under `mode`; returns the plan's counts (for `Count`).
fn run_once(w: &Workload, mode: Mode) -> (BTreeMap<String, u64>, u64) {
    let what = format!("{} {mode:?}", w.name);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("test.db");
    // Written without syncs (they would only slow the sweep down), then
    // reopened under the workload's policy.
    let db = open(&path, FsyncPolicy::Never, w.key).expect("open");
    let mut initial = BTreeMap::new();
    for i in 0..w.initial {
        let (k, v) = (
            format!("key:{i:05}"),
            format!("\"{i}-{}\"", "x".repeat(w.value_bytes)),
        );
        db.put_raw(&k, v.as_bytes()).expect("initial put");
        initial.insert(k, v);
    }
    // Overwritten and deleted keys, so compaction has garbage to drop.
    for i in 0..w.initial / 2 {
        let k = format!("key:{i:05}");
        if i % 2 == 0 {
            db.delete(&k).expect("initial delete");
            initial.remove(&k);
        } else {
            let v = format!("\"again-{i}\"");
            db.put_raw(&k, v.as_bytes()).expect("initial overwrite");
            initial.insert(k, v);
        }
    }
    let db = if w.fsync == FsyncPolicy::Never {
        db
    } else {
        db.close().expect("close");
        open(&path, w.fsync, w.key).expect("reopen")
    };
    let power_cut = matches!(mode, Mode::PowerCut(_));
    let plan = FaultPlan::arm(dir.path());
    let plan = match mode {
        Mode::Count => plan,
        Mode::Fail(op, n, errno) => plan.fail_nth(op, n, errno),
        Mode::PowerCut(n) => plan.power_cut_at(n),
    };
    let mut rec = Recorder {
        fsync: w.fsync,
        power_cut,
        initial,
        attempts: Vec::new(),
        durable_upto: 0,
        keys: vec![w.key],
        backups: Vec::new(),
        backup_paths: Vec::new(),
    };
    (w.run)(&db, &mut rec, dir.path());
    if matches!(mode, Mode::Count) {
        assert!(!db.is_poisoned(), "{what}: a clean run poisoned the handle");
    }
    let counts: BTreeMap<String, u64> = OPS
        .iter()
        .map(|op| (format!("{op:?}"), plan.count(*op)))
        .collect();
    let barriers = plan.barriers();

    if power_cut {
        // The machine is off: nothing of this process survives but the disk.
        drop(db);
        plan.restore_power_cut().expect("restore the disk image");
    } else {
        // The handle either still works, or refuses every call.
        probe(&db, &mut rec, &what);
        drop(plan);
        let closed = db.close();
        rec.durable_call(closed);
        assert_eq!(temporaries(dir.path()), Vec::<String>::new(), "{what}");
    }

    let db = reopen(&path, &rec.keys, &what);
    rec.check(&contents(&db), &what);
    db.close().expect("close after reopen");
    assert_eq!(temporaries(dir.path()), Vec::<String>::new(), "{what}");
    for (dest, key, state) in &rec.backups {
        let backup = reopen(dest, &[*key], &what);
        assert_eq!(&contents(&backup), state, "{what}: backup");
    }
    (counts, barriers)
}

/// After the workload: a handle that reports no poison must accept a write
/// (a background or pending error is raised once, then it works); a
/// poisoned one must refuse reads and writes alike.
fn probe(db: &Database, rec: &mut Recorder, what: &str) {
    for _ in 0..2 {
        if db.is_closed() {
            return;
        }
        if db.is_poisoned() {
            let w = db
                .put_raw("probe", b"1")
                .expect_err("poisoned: write refused");
            let r = db.get_raw("key:00001").expect_err("poisoned: read refused");
            for e in [w, r] {
                assert!(matches!(e, Error::Poisoned { .. }), "{what}: {e}");
            }
            return;
        }
        let before = rec.attempts.len();
        rec.put(db, "probe", "\"probe\"");
        if rec.attempts.get(before).is_some_and(|a| a.acked) {
            return;
        }
    }
    panic!("{what}: a healthy handle refused two writes in a row");
}

fn sweep(w: &Workload) {
    let (counts, barriers) = run_once(w, Mode::Count);
    let mut runs = 0;
    for op in OPS {
        for n in 1..=counts[&format!("{op:?}")] {
            for errno in [libc::EIO, libc::ENOSPC] {
                run_once(w, Mode::Fail(op, n, errno));
                runs += 1;
            }
        }
    }
    for n in 1..=barriers {
        run_once(w, Mode::PowerCut(n));
        runs += 1;
    }
    assert!(runs > 0, "{}: nothing to sweep", w.name);
    eprintln!(
        "{}: {runs} runs, calls {counts:?}, {barriers} barriers",
        w.name
    );
}

fn writes(db: &Database, rec: &mut Recorder, _dir: &Path) {
    rec.put(db, "a", "1");
    rec.put(db, "b", "2");
    rec.delete(db, "a");
    rec.put(db, "key:00003", "\"new\"");
    let flushed = db.flush();
    rec.durable_call(flushed);
    rec.put(db, "c", "3");
}

#[test]
fn sweep_writes_under_always() {
    sweep(&Workload {
        name: "writes/always",
        fsync: FsyncPolicy::Always,
        key: None,
        initial: 10,
        value_bytes: 20,
        run: writes,
    });
}

#[test]
fn sweep_writes_under_never_with_flush() {
    sweep(&Workload {
        name: "writes/never",
        fsync: FsyncPolicy::Never,
        key: None,
        initial: 10,
        value_bytes: 20,
        run: writes,
    });
}

#[test]
fn sweep_writes_under_periodic_with_flush() {
    // An hour: the flusher never runs during the test, so the calls are
    // the same in every run (the flusher has its own test in faults.rs).
    sweep(&Workload {
        name: "writes/periodic",
        fsync: FsyncPolicy::Periodic(Duration::from_secs(3600)),
        key: None,
        initial: 10,
        value_bytes: 20,
        run: writes,
    });
}

#[test]
fn sweep_writes_that_grow_the_mapping() {
    // 1 MiB of values: the mapped log grows (fallocate) during the run.
    sweep(&Workload {
        name: "writes/grow",
        fsync: FsyncPolicy::Never,
        key: None,
        initial: 0,
        value_bytes: 0,
        run: |db, rec, _| {
            let big = format!("\"{}\"", "g".repeat(300 << 10));
            for i in 0..4 {
                rec.put(db, &format!("big{i}"), &big);
            }
            let flushed = db.flush();
            rec.durable_call(flushed);
        },
    });
}

#[test]
fn sweep_a_transaction() {
    sweep(&Workload {
        name: "transaction",
        fsync: FsyncPolicy::Always,
        key: None,
        initial: 10,
        value_bytes: 20,
        run: |db, rec, _| {
            rec.commit(
                db,
                &[("x", Some("1")), ("y", Some("2")), ("key:00001", None)],
            );
            rec.put(db, "after", "3");
        },
    });
}

fn compaction(db: &Database, rec: &mut Recorder, _dir: &Path) {
    rec.put(db, "before", "1");
    let compacted = db.compact();
    rec.durable_call(compacted);
    rec.put(db, "after", "2");
    // A sync after the compaction: power cuts then also hit a completed one.
    let flushed = db.flush();
    rec.durable_call(flushed);
}

#[test]
fn sweep_compaction() {
    sweep(&Workload {
        name: "compaction",
        fsync: FsyncPolicy::Never,
        key: None,
        initial: 40,
        value_bytes: 100,
        run: compaction,
    });
}

#[test]
fn sweep_compaction_of_an_encrypted_database() {
    sweep(&Workload {
        name: "compaction/encrypted",
        fsync: FsyncPolicy::Always,
        key: Some(KEY_A),
        initial: 20,
        value_bytes: 50,
        run: compaction,
    });
}

fn rekey_to_b(db: &Database, rec: &mut Recorder, _dir: &Path) {
    rec.put(db, "before", "1");
    // Until it returns, the file may be under either key (a power cut
    // around the rename decides which).
    rec.keys.push(Some(KEY_B));
    let rekeyed = db.rekey(&EncryptionKey::from(KEY_B));
    if rekeyed.is_err() && !db.is_poisoned() {
        // Failed before its rename: the old key is the only one.
        rec.keys.pop();
    }
    rec.durable_call(rekeyed);
    rec.put(db, "after", "2");
}

#[test]
fn sweep_rekey_plain_to_encrypted() {
    sweep(&Workload {
        name: "rekey/plain",
        fsync: FsyncPolicy::Always,
        key: None,
        initial: 20,
        value_bytes: 50,
        run: rekey_to_b,
    });
}

#[test]
fn sweep_rekey_encrypted() {
    sweep(&Workload {
        name: "rekey/encrypted",
        fsync: FsyncPolicy::Always,
        key: Some(KEY_A),
        initial: 20,
        value_bytes: 50,
        run: rekey_to_b,
    });
}

#[test]
fn sweep_backup() {
    sweep(&Workload {
        name: "backup",
        fsync: FsyncPolicy::Always,
        key: None,
        initial: 20,
        value_bytes: 50,
        run: |db, rec, dir| {
            rec.put(db, "before", "1");
            rec.backup(db, &dir.join("copy.db"));
            rec.put(db, "after", "2");
        },
    });
}

#[test]
fn sweep_hint_writing_at_close() {
    // A close writes a hint once 8 MiB of the log is not covered by one.
    sweep(&Workload {
        name: "hint at close",
        fsync: FsyncPolicy::Never,
        key: None,
        initial: 90,
        value_bytes: 100 << 10,
        run: |db, rec, _| {
            rec.put(db, "last", "1");
            let closed = db.close();
            rec.durable_call(closed);
        },
    });
}
