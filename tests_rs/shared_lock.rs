//! The cross-process write lock in the shared page (storage::shared) with
//! real processes: a holder killed with SIGKILL while it holds the lock
//! blocks nobody for long, and the next holder learns it took the lock over
//! from a dead one. The child is this test binary, run with
//! `--ignored --exact shared_lock::child_holds_the_write_lock`; it says
//! "locked" over its stdout pipe once it holds the lock (no sleeps).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ferrumdb::storage::SharedPage;

use crate::temp_db;

const CHILD_DB: &str = "FERRUMDB_TEST_LOCK_CHILD_DB";

/// Not a test: the child process of the test below.
#[test]
#[ignore = "entry point of a child process (see the module doc)"]
fn child_holds_the_write_lock() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let page = SharedPage::open(std::path::Path::new(&db), true).expect("page");
    let slot = page.claim_slot().expect("slot");
    let _held = page.lock_writes(&slot);
    println!("locked");
    // Hold it until killed: wait on stdin, which the parent never closes first.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn a_holder_killed_with_the_lock_is_taken_over() {
    let (_dir, path) = temp_db();
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "shared_lock::child_holds_the_write_lock",
            "--nocapture",
        ])
        .env(CHILD_DB, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(
            out.read_line(&mut line).expect("read"),
            0,
            "child ended early"
        );
        if line.trim() == "locked" {
            break;
        }
    }
    let page = SharedPage::open(&path, true).expect("page");
    let slot = page.claim_slot().expect("slot");
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let held = page.lock_writes(&slot);
    assert!(held.stolen, "the dead holder's lock was taken over");
    drop(held);
    assert!(
        !page.lock_writes(&slot).stolen,
        "then it is an ordinary lock"
    );
}
