//! The engine's hot path for an instruction count: N gets, then N puts, of
//! one ~100-byte document over 1000 keys (`fsync="never"`). Run it under
//! `valgrind --tool=callgrind` with N = 0 and N = 100000 and divide the
//! difference by N: instructions per get + put, repeatable to the
//! instruction whatever else the machine does (criterion's times are not,
//! on a shared 2-core machine).
//!
//!     cargo build --release --example hot_path
//!     valgrind --tool=callgrind target/release/examples/hot_path 100000

use ferrumdb::{Config, Database, FsyncPolicy};
fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(
        &Config::new()
            .with_path(dir.path().join("g.db"))
            .with_fsync_policy(FsyncPolicy::Never),
    )
    .unwrap();
    let v = br#"{"name":"user","age":31,"email":"user@example.com","tags":["a","b"],"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    for k in &keys {
        db.put_raw(k, v).unwrap();
    }
    let mut total = 0usize;
    for i in 0..n {
        total += db
            .get_raw(&keys[i % 1000])
            .unwrap()
            .unwrap()
            .as_bytes()
            .len();
    }
    for i in 0..n {
        db.put_raw(&keys[i % 1000], v).unwrap();
    }
    println!("{total}");
}
