//! Command line entry point (`ferrumdb`, `python -m ferrumdb`): parses the
//! arguments (`args`, the one clap parser), then runs a subcommand (`batch`,
//! `check`, `studio`, shell completions) or opens the database (with its key,
//! see `key`, when encrypted) and runs the interactive REPL when stdin is a
//! terminal or script mode when it is not. Exit status: 0 success, 1 a
//! command or the database failed, 2 bad arguments.

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

use std::io::{self, IsTerminal};

use crate::documents::Documents;
use crate::engine::Database;

use args::{Command, ReplArgs};
use render::Mode;

/// Run the command line with `args` (the arguments after the program name, as
/// in `sys.argv[1:]`) and return the process exit status.
pub fn main_with_args(args: Vec<String>) -> i32 {
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
        None => run_repl(&cli.repl),
        Some(Command::Export(a)) => batch::export(&a),
        Some(Command::Import(a)) => batch::import(&a),
        Some(Command::Check(a)) => check::run(&a),
        Some(Command::Studio(a)) => studio::run(&a),
        Some(Command::Completions(a)) => {
            args::print_completions(a.shell);
            0
        }
    }
}

/// `ferrumdb [PATH] [options]`: the REPL at a terminal, script mode otherwise.
fn run_repl(opts: &ReplArgs) -> i32 {
    let config = match opts.config() {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("error: {msg}");
            return 2;
        }
    };
    let (config, encrypted) = match key::resolve_or_report(&opts.path, opts.key.file.as_deref()) {
        Ok(Some(key)) => (config.with_encryption(key), true),
        Ok(None) => (config, false),
        Err(status) => return status,
    };
    // With its indexes: INDEX, FIND and QUERY use them, and every write here
    // keeps them exact for the next program that opens the database.
    let docs = match Database::open(&config).and_then(Documents::open) {
        Ok(docs) => docs,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
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
        let _studio = (!opts.no_studio).then(|| start_studio(&docs, opts.port, Announce::Stdout));
        // What is typed at the prompt of an encrypted database stays off the disk.
        repl::run_repl(&docs, mode, !encrypted)
    } else {
        // A script starts Studio only when asked with --port: by default no one
        // looks at it, and parallel scripts would fight over the port. Its URL
        // goes to stderr, since stdout holds one JSON line per command.
        let asked = opts.port.is_some() && !opts.no_studio;
        let _studio = asked.then(|| start_studio(&docs, opts.port, Announce::Stderr));
        script::run_script(
            &docs,
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
    docs: &Documents,
    port: Option<u16>,
    announce: Announce,
) -> Option<crate::server::Studio> {
    let options = crate::server::StudioOptions {
        port: port.unwrap_or(crate::server::DEFAULT_PORT),
        // A read-only handle's Studio refuses edits up front.
        read_only: docs.database().is_read_only(),
        ..Default::default()
    };
    match crate::server::Studio::start(docs.clone(), options) {
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
