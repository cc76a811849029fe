//! JSON Lines throughput (`ferrumdb::ops`): export of 100k documents of about
//! 110 bytes to a file, and import of that file into an empty database (both
//! passes: check every line, then write). Reported as records per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrumdb::ops::{export_jsonl, import_jsonl};
use ferrumdb::{Config, Database, FsyncPolicy};
use serde_json::json;

const N: usize = 100_000;

fn doc(i: usize) -> Vec<u8> {
    json!({
        "id": i,
        "group": format!("g{}", i % 10),
        "age": 20 + i % 50,
        "tags": ["alpha", format!("t{}", i % 7)],
        "name": format!("user number {i}"),
    })
    .to_string()
    .into_bytes()
}

fn open(path: &std::path::Path) -> Database {
    Database::open(
        &Config::new()
            .with_path(path)
            .with_fsync_policy(FsyncPolicy::Never),
    )
    .expect("open")
}

fn bench_jsonl(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = open(&dir.path().join("src.db"));
    for i in 0..N {
        src.put_raw(&format!("user:{i:08}"), &doc(i)).expect("put");
    }
    let out = dir.path().join("out.jsonl");
    let mut group = c.benchmark_group("jsonl");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("export_100k", |b| {
        b.iter(|| {
            let n = export_jsonl(&src, &out, "", &mut |_, _, _| {}).expect("export");
            assert_eq!(n, N as u64);
        });
    });
    let mut round = 0;
    group.bench_function("import_100k", |b| {
        b.iter(|| {
            round += 1;
            let path = dir.path().join(format!("dst{round}.db"));
            let dst = open(&path);
            let report = import_jsonl(&dst, &out, &mut |_, _, _| {}).expect("import");
            assert_eq!(report.imported, N as u64);
            dst.close().expect("close");
            std::fs::remove_file(&path).expect("remove");
        });
    });
    group.finish();
}

criterion_group!(benches, bench_jsonl);
criterion_main!(benches);
