//! Reopen with and without a hint file (issue 6), and compaction throughput.
//!
//! Reopen is timed as open + first get, at 100k and 1M keys of ~100-byte JSON
//! values: "hint" opens a database whose hint file matches (written by the
//! close after the compaction in the setup), "no_hint" deletes the hint
//! before each open (untimed) so the whole log is replayed. Compaction
//! rewrites 100k live records after every key was overwritten once (the
//! overwrite is untimed); throughput is in bytes of the log before compaction.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ferrumdb::{Config, Database, FsyncPolicy};

fn key(i: usize) -> String {
    format!("user:{i:08}")
}

/// A JSON document of about 100 bytes.
fn value(i: usize, round: usize) -> Vec<u8> {
    format!(
        r#"{{"id":{i},"round":{round},"name":"User Number {i}","email":"user{i}@example.com","active":true}}"#
    )
    .into_bytes()
}

fn config(path: &Path) -> Config {
    Config::new()
        .with_path(path)
        .with_fsync_policy(FsyncPolicy::Never)
        .with_auto_compact(None)
}

fn hint_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".hint");
    PathBuf::from(s)
}

/// A closed database of `n` keys, compacted, whose close left a hint file.
fn build(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("reopen-{n}.db"));
    let db = Database::open(&config(&path)).expect("open");
    for i in 0..n {
        db.put_raw(&key(i), &value(i, 0)).expect("populate");
    }
    db.compact().expect("compact");
    db.close().expect("close");
    assert!(hint_of(&path).exists(), "the close wrote no hint");
    path
}

fn bench_reopen(c: &mut Criterion) {
    let mut group = c.benchmark_group("reopen");
    // 0.1-1 s per open: few, equally sized samples fit the time budget.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let dir = tempfile::tempdir().expect("temp dir");
    for (n, label) in [(100_000, "100k"), (1_000_000, "1M")] {
        let path = build(dir.path(), n);
        let cfg = config(&path);
        group.throughput(Throughput::Elements(n as u64));
        for with_hint in [true, false] {
            let name = if with_hint { "hint" } else { "no_hint" };
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        if !with_hint {
                            std::fs::remove_file(hint_of(&path)).ok();
                        }
                        let start = Instant::now();
                        let db = Database::open(&cfg).expect("reopen");
                        black_box(db.get_raw(&key(0)).expect("get"));
                        timed += start.elapsed();
                        assert_eq!(db.opened_with_hint(), with_hint);
                        assert_eq!(db.len(), n);
                        // Closing (and the hint a close may write) is not timed.
                        db.close().expect("close");
                    }
                    timed
                });
            });
        }
    }
    group.finish();
}

fn bench_compact(c: &mut Criterion) {
    let mut group = c.benchmark_group("compact");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let dir = tempfile::tempdir().expect("temp dir");
    let n = 100_000;
    let path = build(dir.path(), n);
    let db = Database::open(&config(&path)).expect("open");
    let mut round = 0;
    let mut overwrite = |db: &Database| {
        round += 1;
        for i in 0..n {
            db.put_raw(&key(i), &value(i, round)).expect("overwrite");
        }
    };
    overwrite(&db);
    let log_bytes = db.stats().expect("stats").file_bytes;
    group.throughput(Throughput::Bytes(log_bytes));
    group.bench_function(BenchmarkId::new("overwritten_once", "100k"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                db.compact().expect("compact");
                timed += start.elapsed();
                overwrite(&db);
            }
            timed
        });
    });
    db.close().expect("close");
    group.finish();
}

criterion_group!(benches, bench_reopen, bench_compact);
criterion_main!(benches);
