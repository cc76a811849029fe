//! Index maintenance cost per write: the same overwrite workload on a
//! database with no index, one index, and three indexes (one on an array
//! field), so the difference is what keeping indexes exact costs a set.
//! Plus an indexed equality `find` and a range `query` over 100k documents.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrumdb::documents::Documents;
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

fn fixture(fields: &[&str]) -> (tempfile::TempDir, Documents) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::new()
        .with_path(dir.path().join("bench.db"))
        .with_fsync_policy(FsyncPolicy::Never);
    let docs = Documents::open(Database::open(&config).expect("open")).expect("docs");
    for i in 0..N {
        docs.database()
            .put_raw(&format!("user:{i:08}"), &doc(i))
            .expect("put");
    }
    for f in fields {
        docs.create_index(f).expect("index");
    }
    (dir, docs)
}

fn bench_set_with_indexes(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_maintenance");
    group.throughput(Throughput::Elements(1));
    for (label, fields) in [
        ("none", &[][..]),
        ("one", &["group"][..]),
        ("three", &["group", "age", "tags"][..]),
    ] {
        let (_dir, docs) = fixture(fields);
        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("set", label), |b| {
            b.iter(|| {
                i = (i + 7919) % N;
                docs.database()
                    .put_raw(&format!("user:{i:08}"), &doc(i + 1))
                    .expect("set");
            });
        });
        docs.database().close().expect("close");
    }
    group.finish();
}

fn bench_queries(c: &mut Criterion) {
    let mut group = c.benchmark_group("query_100k");
    group.sample_size(20);
    let (_dir, docs) = fixture(&["group", "age"]);
    group.bench_function("find_indexed_10pct", |b| {
        b.iter(|| black_box(docs.find("group", &json!("g3")).expect("find")))
    });
    let range = json!({"age": {"$gte": 30, "$lt": 40}});
    group.bench_function("range_indexed_20pct", |b| {
        b.iter(|| black_box(docs.query(&range, None, None, 0).expect("query")))
    });
    let scan = json!({"name": "user number 5"});
    group.bench_function("scan_unindexed", |b| {
        b.iter(|| black_box(docs.query(&scan, None, None, 0).expect("query")))
    });
    docs.database().close().expect("close");
    group.finish();
}

criterion_group!(benches, bench_set_with_indexes, bench_queries);
criterion_main!(benches);
