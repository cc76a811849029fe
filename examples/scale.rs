//! Scale evidence for hint files (issue 6): build a large database through the
//! Rust API, then measure reopen (open + first get) with and without its hint
//! file, the memory the open database holds, and compaction throughput.
//!
//! Each measuring command is meant to run in a fresh process (so RSS figures
//! belong to that one open), release build:
//!
//! ```text
//! cargo run --release --example scale -- build   DB N [VALUE_BYTES]   # N keys "k:{i:014}" (16 bytes)
//! cargo run --release --example scale -- reopen  DB [--no-hint] [--read-only] [--verify N]
//! cargo run --release --example scale -- compact DB
//! ```
//!
//! `--no-hint` deletes `DB.hint` first, so the open replays the whole log.
//! Memory is read from `/proc/self/status` (Linux): `RssAnon` is the
//! process's own heap (the key directory); file-backed pages of the mapped
//! log are page cache and are reported apart as `RssFile`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use ferrumdb::{Config, Database, FsyncPolicy};

/// The key of record `i`: 16 bytes.
fn key(i: u64) -> String {
    format!("k:{i:014}")
}

/// A small JSON value of `len` bytes (at least 12) that names its key.
fn value(i: u64, len: usize) -> Vec<u8> {
    let head = format!("[{i},\"");
    let pad = len.saturating_sub(head.len() + 2);
    let mut v = head.into_bytes();
    v.extend(std::iter::repeat_n(b'x', pad));
    v.extend_from_slice(b"\"]");
    v
}

/// `(RssAnon, RssFile, VmHWM)` in bytes, from `/proc/self/status`.
fn memory() -> (u64, u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("RssAnon:"), field("RssFile:"), field("VmHWM:"))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn config(path: &Path, read_only: bool) -> Config {
    Config::new()
        .with_path(path)
        .with_fsync_policy(FsyncPolicy::Never)
        .with_read_only(read_only)
        .with_auto_compact(None)
}

fn hint_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".hint");
    PathBuf::from(s)
}

fn build(path: &Path, n: u64, value_len: usize) -> Result<(), String> {
    let start = Instant::now();
    let db = Database::open(&config(path, false)).map_err(|e| e.to_string())?;
    for i in 0..n {
        db.put_raw(&key(i), &value(i, value_len))
            .map_err(|e| e.to_string())?;
    }
    let written = start.elapsed();
    db.close().map_err(|e| e.to_string())?;
    let file = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    println!(
        "build keys={n} value_bytes={value_len} write_s={:.2} total_s={:.2} file_mb={:.1} hint={}",
        written.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        mb(file),
        hint_of(path).exists()
    );
    Ok(())
}

fn reopen(path: &Path, no_hint: bool, read_only: bool, verify: u64) -> Result<(), String> {
    if no_hint {
        match std::fs::remove_file(hint_of(path)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let (anon0, _, _) = memory();
    let start = Instant::now();
    let db = Database::open(&config(path, read_only)).map_err(|e| e.to_string())?;
    let opened = start.elapsed();
    let first = db.get_raw(&key(0)).map_err(|e| e.to_string())?;
    let total = start.elapsed();
    if !first.is_some_and(|v| v.as_bytes().starts_with(b"[0,")) {
        return Err("first key missing or wrong".into());
    }
    let (anon1, file1, hwm) = memory();
    let n = db.len() as u64;
    // Gets work: a spread of keys across the whole range, checked.
    let verify = verify.min(n);
    let check_start = Instant::now();
    for j in 0..verify {
        let i = j * (n / verify.max(1));
        let got = db.get_raw(&key(i)).map_err(|e| e.to_string())?;
        let ok = got.is_some_and(|v| v.as_bytes().starts_with(format!("[{i},").as_bytes()));
        if !ok {
            return Err(format!("key {} missing or wrong", key(i)));
        }
    }
    let checked = check_start.elapsed();
    println!(
        "reopen keys={n} hinted={} read_only={read_only} open_ms={:.1} open_plus_first_get_ms={:.1} \
         rss_anon_delta_mb={:.1} rss_anon_mb={:.1} rss_file_mb={:.1} vm_hwm_mb={:.1} verified={verify} verify_us_per_get={:.2}",
        db.opened_with_hint(),
        opened.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        mb(anon1.saturating_sub(anon0)),
        mb(anon1),
        mb(file1),
        mb(hwm),
        if verify == 0 { 0.0 } else { checked.as_secs_f64() * 1e6 / verify as f64 },
    );
    db.close().map_err(|e| e.to_string())
}

fn compact(path: &Path) -> Result<(), String> {
    let db = Database::open(&config(path, false)).map_err(|e| e.to_string())?;
    let before = db.stats().map_err(|e| e.to_string())?;
    let start = Instant::now();
    db.compact().map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    let after = db.stats().map_err(|e| e.to_string())?;
    println!(
        "compact keys={} file_mb_before={:.1} file_mb_after={:.1} s={secs:.2} \
         read_mb_per_s={:.0} written_mb_per_s={:.0} records_per_s={:.0}",
        after.keys,
        mb(before.file_bytes),
        mb(after.file_bytes),
        mb(before.file_bytes) / secs,
        mb(after.file_bytes) / secs,
        after.keys as f64 / secs
    );
    db.close().map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: scale build DB N [VALUE_BYTES] | reopen DB [--no-hint] [--read-only] [--verify N] | compact DB";
    let cmd = args.first().ok_or(usage)?;
    let path = PathBuf::from(args.get(1).ok_or(usage)?);
    let flag = |f: &str| args.iter().any(|a| a == f);
    let num = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|_| format!("not a number: {s}"))
        })
    };
    match cmd.as_str() {
        "build" => build(&path, num(2, 0)?, num(3, 16)? as usize),
        "reopen" => {
            let verify = match args.iter().position(|a| a == "--verify") {
                Some(p) => num(p + 1, 0)?,
                None => 1000,
            };
            reopen(&path, flag("--no-hint"), flag("--read-only"), verify)
        }
        "compact" => compact(&path),
        _ => Err(usage.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scale: {e}");
            ExitCode::FAILURE
        }
    }
}
