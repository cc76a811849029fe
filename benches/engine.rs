//! Engine benchmarks: set, get, get of a missing key and delete at 1k and 100k
//! keys with ~200-byte JSON values, plus reopening a 100k-key database, and
//! the same set/get/reopen on an encrypted database beside a plain one.
//!
//! Grouped by operation, throughput in operations. `fsync = never` measures the
//! engine itself; `set/always` adds one `fdatasync` (shared by group commit)
//! per write, so it measures the disk. Writes that would grow the log without
//! bound are compacted away between timed chunks, outside the measurement.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ferrumdb::{Config, Database, FsyncPolicy};

const SIZES: [(usize, &str); 2] = [(1_000, "1k"), (100_000, "100k")];

/// Timed chunk length for the `iter_custom` loops.
const CHUNK: u64 = 1_000;

/// Compact (untimed) once the log is this much larger than its live data.
const MAX_GARBAGE: u64 = 64 << 20;

fn key(i: usize) -> String {
    format!("user:{i:08}")
}

/// A JSON document of about 200 bytes.
fn value(i: usize) -> Vec<u8> {
    let v = format!(
        r#"{{"id":{i},"name":"User Number {i}","email":"user{i}@example.com","active":{},"score":{}.5,"tags":["alpha","beta","gamma"],"address":{{"city":"Springfield","zip":"{:05}"}},"bio":"{}"}}"#,
        i.is_multiple_of(2),
        i % 1000,
        i % 100_000,
        "lorem ipsum ".repeat(3)
    );
    debug_assert!((180..=240).contains(&v.len()), "{}", v.len());
    v.into_bytes()
}

/// A small xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A database with `n` keys in a fresh temporary directory.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    db: Database,
    keys: Vec<String>,
}

fn fixture(n: usize, fsync: FsyncPolicy) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let keys: Vec<String> = (0..n).map(key).collect();
    {
        let db = open(&path, FsyncPolicy::Never);
        for (i, k) in keys.iter().enumerate() {
            db.put_raw(k, &value(i)).expect("populate");
        }
        db.close().expect("close");
    }
    let db = open(&path, fsync);
    Fixture {
        _dir: dir,
        path,
        db,
        keys,
    }
}

fn open(path: &Path, fsync: FsyncPolicy) -> Database {
    Database::open(&Config::new().with_path(path).with_fsync_policy(fsync)).expect("open")
}

/// Keep the log from growing without bound; called between timed chunks.
fn collect_garbage(db: &Database) {
    let s = db.stats().expect("stats");
    if s.file_bytes - s.live_bytes > MAX_GARBAGE {
        db.compact().expect("compact");
    }
}

/// Time `iters` sets of random keys of `keys`, in chunks of [`CHUNK`] with
/// garbage collected (untimed) between chunks.
fn time_random_sets(
    db: &Database,
    keys: &[String],
    values: &[Vec<u8>],
    rng: &mut Rng,
    iters: u64,
) -> Duration {
    let mut timed = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let chunk = CHUNK.min(iters - done);
        let start = Instant::now();
        for j in 0..chunk {
            let k = &keys[rng.below(keys.len())];
            db.put_raw(k, &values[j as usize % values.len()])
                .expect("set");
        }
        timed += start.elapsed();
        done += chunk;
        collect_garbage(db);
    }
    timed
}

/// Time `iters` opens of `cfg`, each checked to hold `keys` keys; closing
/// (sync, trim of the preallocated slack) is not timed.
fn time_reopens(cfg: &Config, keys: usize, iters: u64) -> Duration {
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let db = Database::open(cfg).expect("reopen");
        timed += start.elapsed();
        assert_eq!(db.len(), keys);
        db.close().expect("close");
    }
    timed
}

fn bench_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("set");
    group.throughput(Throughput::Elements(1));
    for (n, label) in SIZES {
        let f = fixture(n, FsyncPolicy::Never);
        let values: Vec<Vec<u8>> = (0..256).map(|i| value(i * 7)).collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        group.bench_function(BenchmarkId::new("never", label), |b| {
            b.iter_custom(|iters| time_random_sets(&f.db, &f.keys, &values, &mut rng, iters));
        });
        f.db.close().expect("close");
    }
    // One fdatasync per write: this measures the disk, so few samples.
    group.sample_size(10);
    let f = fixture(1_000, FsyncPolicy::Always);
    let v = value(1);
    let mut rng = Rng(7);
    group.bench_function(BenchmarkId::new("always", "1k"), |b| {
        b.iter(|| {
            f.db.put_raw(&f.keys[rng.below(f.keys.len())], &v)
                .expect("set")
        });
    });
    f.db.close().expect("close");
    group.finish();
}

fn bench_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    for (n, label) in SIZES {
        let f = fixture(n, FsyncPolicy::Never);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        group.bench_function(BenchmarkId::new("never", label), |b| {
            b.iter(|| {
                let k = &f.keys[rng.below(n)];
                black_box(f.db.get_raw(k).expect("get").expect("present"))
            });
        });
        f.db.close().expect("close");
    }
    group.finish();
}

fn bench_get_missing(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_missing");
    group.throughput(Throughput::Elements(1));
    for (n, label) in SIZES {
        let f = fixture(n, FsyncPolicy::Never);
        // Keys that sort between existing ones, so the lookup walks the tree.
        let missing: Vec<String> = (0..1024).map(|i| format!("{}~", key(i * 97 % n))).collect();
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("never", label), |b| {
            b.iter(|| {
                i = (i + 1) % missing.len();
                black_box(f.db.get_raw(&missing[i]).expect("get"))
            });
        });
        f.db.close().expect("close");
    }
    group.finish();
}

fn bench_delete(c: &mut Criterion) {
    let mut group = c.benchmark_group("delete");
    group.throughput(Throughput::Elements(1));
    for (n, label) in SIZES {
        let f = fixture(n, FsyncPolicy::Never);
        let v = value(3);
        // Delete up to half the keys per timed chunk, then put them back untimed,
        // so every timed delete removes a live key from a database of n/2..n keys.
        let chunk = CHUNK.min(n as u64 / 2) as usize;
        let mut next = 0usize;
        group.bench_function(BenchmarkId::new("never", label), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let m = chunk.min((iters - done) as usize);
                    let batch: Vec<&String> = (0..m).map(|j| &f.keys[(next + j) % n]).collect();
                    next = (next + m) % n;
                    let start = Instant::now();
                    for k in &batch {
                        assert!(f.db.delete(k).expect("delete"));
                    }
                    timed += start.elapsed();
                    for k in &batch {
                        f.db.put_raw(k, &v).expect("restore");
                    }
                    done += m as u64;
                    collect_garbage(&f.db);
                }
                timed
            });
        });
        f.db.close().expect("close");
    }
    group.finish();
}

fn bench_reopen(c: &mut Criterion) {
    let mut group = c.benchmark_group("reopen");
    // ~100 ms per open: few, equally sized samples fit the time budget.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let f = fixture(100_000, FsyncPolicy::Never);
    f.db.close().expect("close");
    let path = f.path.clone();
    // Throughput in keys recovered per second.
    group.throughput(Throughput::Elements(f.keys.len() as u64));
    for (label, read_only) in [("writer", false), ("read_only", true)] {
        let cfg = Config::new()
            .with_path(&path)
            .with_fsync_policy(FsyncPolicy::Never)
            .with_read_only(read_only);
        group.bench_function(BenchmarkId::new(label, "100k"), |b| {
            b.iter_custom(|iters| time_reopens(&cfg, 100_000, iters));
        });
    }
    group.finish();
}

/// Encryption at rest: the same set/get at 100k keys, plain and encrypted
/// (raw 32-byte key: no KDF), and reopening (which authenticates every record).
fn bench_encryption(c: &mut Criterion) {
    let mut group = c.benchmark_group("encryption");
    group.throughput(Throughput::Elements(1));
    let n = 100_000;
    for (label, enc) in [("plain", None), ("aes256gcm", Some([7u8; 32]))] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bench.db");
        let cfg = |fsync| {
            let c = Config::new().with_path(&path).with_fsync_policy(fsync);
            match enc {
                Some(k) => c.with_encryption(k),
                None => c,
            }
        };
        let keys: Vec<String> = (0..n).map(key).collect();
        let db = Database::open(&cfg(FsyncPolicy::Never)).expect("open");
        for (i, k) in keys.iter().enumerate() {
            db.put_raw(k, &value(i)).expect("populate");
        }
        let values: Vec<Vec<u8>> = (0..256).map(|i| value(i * 7)).collect();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        group.bench_function(BenchmarkId::new("set", label), |b| {
            b.iter_custom(|iters| time_random_sets(&db, &keys, &values, &mut rng, iters));
        });
        group.bench_function(BenchmarkId::new("get", label), |b| {
            b.iter(|| {
                let k = &keys[rng.below(n)];
                black_box(db.get_raw(k).expect("get").expect("present"))
            });
        });
        // Reopen the same live data in both cases: drop the set bench's garbage.
        db.compact().expect("compact");
        db.close().expect("close");
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
        group.bench_function(BenchmarkId::new("reopen_100k", label), |b| {
            b.iter_custom(|iters| time_reopens(&cfg(FsyncPolicy::Never), n, iters));
        });
        group.sample_size(100).sampling_mode(SamplingMode::Auto);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench_set, bench_get, bench_get_missing, bench_delete, bench_reopen, bench_encryption
}
criterion_main!(benches);
