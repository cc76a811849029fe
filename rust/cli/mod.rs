//! Command line entry point (`ferrumdb`, `python -m ferrumdb`): parses the
//! arguments (`args`, the one clap parser), then runs a subcommand (`batch`,
//! `check`, `studio`, shell completions) or opens the database (with its key,
//! see `key`, when encrypted; or a `postgresql://` URL, see `url`) and runs the
//! interactive REPL when stdin is a terminal or script mode when it is not.
//! Exit status: 0 success, 1 a command or the database failed, 2 bad arguments.

mod args;
mod batch;
mod check;
mod commands;
mod complete;
mod key;
mod render;
mod repl;
mod script;
mod secret;
mod studio;
mod url;

use std::io::{self, IsTerminal};
use std::sync::Arc;

use crate::backend::SharedBackend;
use crate::documents::Documents;
use crate::engine::Database;

pub use url::UrlOpener;

use args::{Command, ReplArgs};
use render::Mode;

/// Run the command line with `args` (the arguments after the program name, as
/// in `sys.argv[1:]`) and return the process exit status.
pub fn main_with_args(args: Vec<String>) -> i32 {
    main_with_opener(args, None)
}

/// [`main_with_args`], opening a `postgresql://` PATH of the REPL or `studio`
/// with `opener` (the Python extension passes one; see `url`).
pub fn main_with_opener(args: Vec<String>, opener: Option<UrlOpener<'_>>) -> i32 {
    let cli = match args::parse(args) {
        Ok(cli) => cli,
        // Bad arguments (status 2), or the text of --help / --version (status 0).
        Err(e) => {
            // Nothing useful is left to do if the terminal is gone.
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        None => run_repl(&cli.repl, opener),
        Some(Command::Export(a)) => file_only("export", &a.db).unwrap_or_else(|| batch::export(&a)),
        Some(Command::Import(a)) => file_only("import", &a.db).unwrap_or_else(|| batch::import(&a)),
        Some(Command::Check(a)) => file_only("check", &a.db).unwrap_or_else(|| check::run(&a)),
        Some(Command::Studio(a)) => studio::run(&a, opener),
        Some(Command::Completions(a)) => {
            args::print_completions(a.shell);
            0
        }
    }
}

/// `Some(2)`, after saying so, when `path` is a PostgreSQL URL: the subcommand
/// `name` works on files only.
fn file_only(name: &str, path: &std::path::Path) -> Option<i32> {
    let url = url::url_of(path)?;
    let hint = match name {
        "check" => "PostgreSQL checks its own pages; `ferrumdb pull URL FILE` copies the data into a file you can check",
        _ => "copy between a file and PostgreSQL with `ferrumdb push FILE URL` / `ferrumdb pull URL FILE`, or use db.export_jsonl()/db.import_jsonl() on the URL in Python",
    };
    let shown = url::redacted(url);
    eprintln!("error: `ferrumdb {name}` works on a FerrumDB file, not on the PostgreSQL database {shown}; {hint}");
    Some(2)
}

/// `ferrumdb [PATH] [options]`: the REPL at a terminal, script mode otherwise.
fn run_repl(opts: &ReplArgs, opener: Option<UrlOpener<'_>>) -> i32 {
    let (docs, encrypted) = match url::url_of(&opts.path) {
        Some(u) => {
            let file_only = [
                ("--fsync", opts.fsync.is_some()),
                ("--key-file", opts.key.file.is_some()),
            ];
            match url::open(u, opts.read_only, opener, &file_only) {
                Ok(backend) => (backend, false),
                Err(status) => return status,
            }
        }
        None => match open_file(opts) {
            Ok(opened) => opened,
            Err(status) => return status,
        },
    };
    run_session(opts, &docs, encrypted)
}

/// Open the REPL's database file with its key and indexes: the handle and
/// whether it is encrypted, or the exit status after saying why not.
fn open_file(opts: &ReplArgs) -> Result<(SharedBackend, bool), i32> {
    let config = match opts.config() {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Err(2);
        }
    };
    let (config, encrypted) = match key::resolve_or_report(&opts.path, opts.key.file.as_deref()) {
        Ok(Some(key)) => (config.with_encryption(key), true),
        Ok(None) => (config, false),
        Err(status) => return Err(status),
    };
    // With its indexes: INDEX, FIND and QUERY use them, and every write here
    // keeps them exact for the next program that opens the database.
    match Database::open(&config).and_then(Documents::open) {
        Ok(docs) => Ok((Arc::new(docs), encrypted)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(1)
        }
    }
}

/// The REPL at a terminal, script mode otherwise, on `docs`; then close it.
fn run_session(opts: &ReplArgs, docs: &SharedBackend, encrypted: bool) -> i32 {
    // A person at a terminal reads indented, coloured output; a program
    // reading a pipe gets one line of JSON per result.
    let mode = if io::stdout().is_terminal() {
        Mode::Human {
            color: console::colors_enabled(),
        }
    } else {
        Mode::Json
    };
    let code = if io::stdin().is_terminal() {
        let _studio = (!opts.no_studio).then(|| start_studio(docs, opts.port, Announce::Stdout));
        // What is typed at the prompt of an encrypted database stays off the disk.
        repl::run_repl(docs, mode, !encrypted)
    } else {
        // A script starts Studio only when asked with --port: by default no one
        // looks at it, and parallel scripts would fight over the port. Its URL
        // goes to stderr, since stdout holds one JSON line per command.
        let asked = opts.port.is_some() && !opts.no_studio;
        let _studio = asked.then(|| start_studio(docs, opts.port, Announce::Stderr));
        script::run_script(
            docs.as_ref(),
            io::stdin().lock(),
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
            mode,
        )
    };
    match docs.close() {
        Ok(()) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Where the REPL and script mode print Studio's URL.
#[derive(Clone, Copy)]
enum Announce {
    Stdout,
    Stderr,
}

/// Start Ferrum Studio on 127.0.0.1 for the REPL's database and print its
/// URL; on failure (port busy) warn and go on without it.
fn start_studio(
    docs: &SharedBackend,
    port: Option<u16>,
    announce: Announce,
) -> Option<crate::server::Studio> {
    let options = crate::server::StudioOptions {
        port: port.unwrap_or(crate::server::DEFAULT_PORT),
        // A read-only handle's Studio refuses edits up front.
        read_only: docs.is_read_only(),
        ..Default::default()
    };
    match crate::server::Studio::start_backend(docs.clone(), options) {
        Ok(studio) => {
            match announce {
                Announce::Stdout => println!("Ferrum Studio: {}", studio.url()),
                Announce::Stderr => eprintln!("Ferrum Studio: {}", studio.url()),
            }
            Some(studio)
        }
        Err(e) => {
            eprintln!("warning: {e}; continuing without Studio (--port N to pick another)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn exit_status_of_help_version_and_bad_arguments() {
        assert_eq!(main_with_args(args(&["--help"])), 0);
        assert_eq!(main_with_args(args(&["-V"])), 0);
        assert_eq!(main_with_args(args(&["check", "--help"])), 0);
        assert_eq!(main_with_args(args(&["--frob"])), 2);
        assert_eq!(main_with_args(args(&["--fsync=bogus"])), 2);
        assert_eq!(main_with_args(args(&["export"])), 2);
        assert_eq!(main_with_args(args(&["check"])), 2);
        assert_eq!(main_with_args(args(&["completions", "bash"])), 0);
    }

    #[test]
    fn check_is_a_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        Database::open(&Config::new().with_path(&path))
            .unwrap()
            .close()
            .unwrap();
        assert_eq!(main_with_args(args(&["check", path.to_str().unwrap()])), 0);
    }

    #[test]
    fn read_only_opens_beside_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let writer = Database::open(&Config::new().with_path(&path)).unwrap();
        let config = args::parse(args(&["--read-only", path.to_str().unwrap()]))
            .unwrap()
            .repl
            .config()
            .unwrap();
        let reader = Database::open(&config).unwrap();
        assert!(reader.is_read_only());
        reader.close().unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn open_errors_exit_1() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locked.db");
        let holder = Database::open(&Config::new().with_path(&path).with_exclusive(true)).unwrap();
        let path_arg = path.to_str().unwrap().to_owned();
        assert_eq!(
            main_with_args(vec![path_arg.clone(), "--no-studio".into()]),
            1
        );
        holder.close().unwrap();
        // A path whose parent does not exist cannot be created.
        let missing = dir.path().join("no/such/dir/x.db");
        assert_eq!(
            main_with_args(vec![missing.to_str().unwrap().to_owned()]),
            1
        );
    }
}
