//! `ferrumdb studio PATH [--port N] [--host H --token T] [--read-only]`: Ferrum Studio alone,
//! in the foreground, until Ctrl-C (SIGINT) or SIGTERM, which end it cleanly (exit status 0).
//! The URL is the first line on stdout, printed as soon as the socket is bound, so a program
//! that starts Studio with `--port 0` reads the port from the pipe without polling.
//!
//! Beside an application that has the database open in another process, Studio opens it for
//! writing too (writers share a database) and shows the application's writes as they happen.
//! Beside an `exclusive` writer it opens it read-only and says so in one line on stderr: the
//! read-only handle follows that writer (`Database::is_live`).
//!
//! A `postgresql://` URL is opened through the Python handle (see `url`), after the signals
//! are blocked, so the driver's threads inherit the mask and Ctrl-C still stops Studio cleanly.

use std::io::Write;
use std::sync::Arc;

use crate::backend::SharedBackend;
use crate::documents::Documents;
use crate::engine::Database;
use crate::error::Error;
use crate::server::{Studio, StudioOptions, DEFAULT_PORT};

use super::args::StudioArgs;
use super::key;
use super::url::{self, UrlOpener};

/// Serve Studio for `args.db` until SIGINT or SIGTERM; the exit status.
pub fn run(args: &StudioArgs, opener: Option<UrlOpener<'_>>) -> i32 {
    if let Some(u) = url::url_of(&args.db) {
        let signals = shutdown::Signals::block();
        let file_only = [
            ("--fsync", args.fsync.is_some()),
            ("--key-file", args.key.file.is_some()),
        ];
        let code = match url::open(u, args.read_only, opener, &file_only) {
            Ok(backend) => serve(args, backend, &signals),
            Err(status) => status,
        };
        signals.restore();
        return code;
    }
    // The key first: a passphrase prompt must still be interruptible by Ctrl-C.
    let config = match args.config() {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("error: {msg}");
            return 2;
        }
    };
    let config = match key::resolve_or_report(&args.db, args.key.file.as_deref()) {
        Ok(Some(key)) => config.with_encryption(key),
        Ok(None) => config,
        Err(status) => return status,
    };
    // From here on SIGINT and SIGTERM wait for `wait` below instead of ending the process
    // in the middle of a write. Blocked before Studio's threads start, so they inherit it.
    let signals = shutdown::Signals::block();
    let code = match open(args, &config) {
        Ok(docs) => serve(args, Arc::new(docs), &signals),
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    signals.restore();
    code
}

fn serve(args: &StudioArgs, docs: SharedBackend, signals: &shutdown::Signals) -> i32 {
    let options = StudioOptions {
        host: args.host.clone(),
        port: args.port.unwrap_or(DEFAULT_PORT),
        token: args.token.clone(),
        // A read-only handle cannot write: its Studio says so up front (403) rather
        // than failing each edit.
        read_only: args.read_only || docs.is_read_only(),
    };
    let studio = match Studio::start_backend(docs.clone(), options) {
        Ok(studio) => studio,
        Err(e) => {
            eprintln!("error: {e}");
            let _ = docs.close();
            return 1;
        }
    };
    println!("Ferrum Studio: {}", studio.url());
    // Whoever reads the pipe gets the URL now, not when the buffer fills.
    let _ = std::io::stdout().flush();
    eprintln!("Serving {}; press Ctrl-C to stop.", describe(docs.as_ref()));
    signals.wait();
    studio.stop();
    match docs.close() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Open the database with its indexes: for writing unless `--read-only`; read-only, with a
/// note on stderr, when an exclusive writer in another process holds it.
fn open(args: &StudioArgs, config: &crate::config::Config) -> crate::Result<Documents> {
    match Database::open(config) {
        Err(Error::Locked {
            pid,
            this_process: false,
            ..
        }) if !args.read_only => {
            let db = Database::open(&config.clone().with_read_only(true))?;
            let holder =
                pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}"));
            let view = if db.is_live() {
                "following its writes as they happen"
            } else {
                "as a snapshot: later writes there are not shown"
            };
            eprintln!(
                "note: {} is open for writing in {holder}; Studio serves it read-only, {view}",
                args.db.display()
            );
            Documents::open(db)
        }
        opened => Documents::open(opened?),
    }
}

/// `app.db (read-only, 12 keys)` for the startup line.
fn describe(docs: &dyn crate::backend::Backend) -> String {
    let mode = if docs.is_read_only() {
        "read-only, "
    } else {
        ""
    };
    let keys = docs
        .len()
        .map_or_else(|e| format!("? keys: {e}"), |n| format!("{n} keys"));
    format!("{} ({mode}{keys})", docs.location())
}

/// Waiting for SIGINT or SIGTERM without a handler: both are blocked in this thread (and so
/// in every thread it starts), then taken with `sigwait`. No global handler state, and the
/// mask is put back afterwards, which matters when the command line runs inside a Python
/// process (`python -m ferrumdb`).
#[cfg(unix)]
mod shutdown {
    use std::mem::MaybeUninit;

    pub struct Signals {
        set: libc::sigset_t,
        previous: libc::sigset_t,
    }

    impl Signals {
        pub fn block() -> Signals {
            // SAFETY: sigemptyset/sigaddset initialise the sets they are given, and
            // pthread_sigmask only reads `set` and writes `previous`.
            unsafe {
                let mut set = MaybeUninit::<libc::sigset_t>::uninit();
                libc::sigemptyset(set.as_mut_ptr());
                libc::sigaddset(set.as_mut_ptr(), libc::SIGINT);
                libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
                let set = set.assume_init();
                let mut previous = MaybeUninit::<libc::sigset_t>::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, previous.as_mut_ptr());
                Signals {
                    set,
                    previous: previous.assume_init(),
                }
            }
        }

        /// Block until SIGINT or SIGTERM arrives (at once if one came while it was blocked).
        pub fn wait(&self) {
            let mut signal = 0;
            // SAFETY: `set` was initialised in `block`; sigwait writes the signal number.
            // It fails only for an invalid set, which this is not; retry anyway rather than
            // return early and stop Studio for nothing.
            while unsafe { libc::sigwait(&self.set, &mut signal) } != 0 {}
        }

        /// Put the signal mask back as it was before [`Signals::block`].
        pub fn restore(&self) {
            // SAFETY: `previous` holds the mask pthread_sigmask reported.
            unsafe {
                libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut());
            }
        }
    }
}

/// Elsewhere Ctrl-C ends the process the default way; every acknowledged write is safe.
#[cfg(not(unix))]
mod shutdown {
    pub struct Signals;

    impl Signals {
        pub fn block() -> Signals {
            Signals
        }

        pub fn wait(&self) {
            loop {
                std::thread::park();
            }
        }

        pub fn restore(&self) {}
    }
}
