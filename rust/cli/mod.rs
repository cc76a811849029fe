//! Command line entry point (`ferrumdb`, `python -m ferrumdb`): parses the
//! arguments, opens the database (with its key, see `key`, when encrypted),
//! then runs the interactive REPL when stdin is a terminal or script mode when
//! it is not. Exit status: 0 success, 1 a command or the database failed, 2
//! bad arguments.

mod batch;
mod check;
mod commands;
mod complete;
mod key;
mod render;
mod repl;
mod script;
mod secret;

use std::io::{self, IsTerminal};
use std::path::PathBuf;

use crate::config::{Config, FsyncPolicy, DEFAULT_PATH, FSYNC_ENV};
use crate::documents::Documents;
use crate::engine::Database;

use render::Mode;

/// Run the command line with `args` (the arguments after the program name, as
/// in `sys.argv[1:]`) and return the process exit status.
pub fn main_with_args(args: Vec<String>) -> i32 {
    if let Some(code) = batch::run(&args).or_else(|| check::run(&args)) {
        return code;
    }
    let opts = match parse_args(&args) {
        Ok(Parsed::Run(opts)) => opts,
        Ok(Parsed::Help) => {
            print!("{}", usage());
            return 0;
        }
        Ok(Parsed::Version) => {
            println!("ferrumdb {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Err(ArgError::Usage(msg)) => {
            eprintln!("error: {msg}\n{SYNOPSIS}\nRun `ferrumdb --help` for details.");
            return 2;
        }
    };
    let config = match opts.config() {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("error: {msg}");
            return 2;
        }
    };
    let (config, encrypted) =
        match key::resolve(&opts.path, opts.key_file.as_deref(), key::can_prompt()) {
            Ok(Some(key)) => (config.with_encryption(key), true),
            Ok(None) => (config, false),
            Err(msg) => {
                eprintln!("error: {msg}");
                return 1;
            }
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
        // Studio only with a person at the prompt: a script has no one to look
        // at it, and parallel scripts would fight over the port.
        let _studio = opts.studio.then(|| start_studio(&docs, opts.port));
        // What is typed at the prompt of an encrypted database stays off the disk.
        repl::run_repl(&docs, mode, !encrypted)
    } else {
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

/// Start Ferrum Studio on 127.0.0.1 for the REPL's database and print its
/// URL; on failure (port busy) warn and go on without it.
fn start_studio(docs: &Documents, port: Option<u16>) -> Option<crate::server::Studio> {
    let options = crate::server::StudioOptions {
        port: port.unwrap_or(crate::server::DEFAULT_PORT),
        ..Default::default()
    };
    match crate::server::Studio::start(docs.clone(), options) {
        Ok(studio) => {
            println!("Ferrum Studio: {}", studio.url());
            Some(studio)
        }
        Err(e) => {
            eprintln!("warning: {e}; continuing without Studio (--port N to pick another)");
            None
        }
    }
}

const SYNOPSIS: &str =
    "Usage: ferrumdb [PATH] [--fsync=always|never|periodic:MS] [--read-only] [--no-studio] [--port N]\n\
    \x20      [--key-file FILE]";

fn usage() -> String {
    let names: Vec<&str> = commands::COMMANDS.iter().map(|c| c.name).collect();
    format!(
        "FerrumDB: an embedded JSON document database.\n\
         \n\
         {SYNOPSIS}\n\
         \n\
         Arguments:\n\
         \x20 PATH               database file, created if missing (default: {DEFAULT_PATH});\n\
         \x20                    \":memory:\" for a database that is never written to disk\n\
         \n\
         Options:\n\
         \x20 --fsync=POLICY     always | never | periodic:MS (default: ${FSYNC_ENV}, else periodic:100)\n\
         \x20 --read-only        open without the writer lock (beside a running writer);\n\
         \x20                    write commands then fail\n\
         \x20 --no-studio        do not start Ferrum Studio (only started at a terminal)\n\
         \x20 --port N           Ferrum Studio port on 127.0.0.1 (default: 7474)\n\
         \x20 --key-file FILE    key of an encrypted database: a file of exactly 32 bytes is\n\
         \x20                    a raw key, anything else a passphrase on its first line\n\
         \x20                    (see Encryption below)\n\
         \x20 -h, --help         print this help\n\
         \x20 -V, --version      print the version\n\
         \n\
         At a terminal, ferrumdb is interactive: Tab completes commands and keys, and\n\
         history is kept in $HOME/.ferrumdb_history; output is indented and coloured\n\
         (unless NO_COLOR is set). Otherwise it reads one command per line from stdin\n\
         (blank lines and lines starting with # are skipped), keeps going after an error,\n\
         and exits with status 1 if any command failed. With stdout not a terminal, each\n\
         command that succeeds prints exactly one line of JSON.\n\
         \n\
         Commands: {}.\n\
         Type HELP at the ferrumdb prompt for details.\n\
         \n\
         Batch work (`ferrumdb export --help` for details):\n\
         \x20 ferrumdb export PATH OUT.jsonl [--prefix P]   write the keys as JSON Lines\n\
         \x20 ferrumdb import PATH IN.jsonl                 read them back (TTLs kept)\n\
         \x20 ferrumdb check PATH [--salvage OUT]           verify every record; copy the\n\
         \x20                                               intact ones into a new OUT\n\
         \n\
         Encryption: every command above takes --key-file FILE; without it the passphrase\n\
         comes from ${}, and failing that, for an encrypted database with\n\
         a person at the terminal, from a prompt (no echo). A key given for a new database\n\
         encrypts it. Secrets are never taken as arguments. The REPL keeps no history\n\
         file for an encrypted database.\n\
         \n\
         Exit status: 0 success, 1 a command or the database failed, 2 bad arguments.\n",
        names.join(", "),
        key::PASSPHRASE_ENV
    )
}

/// What the arguments ask for.
#[derive(Debug, PartialEq)]
enum Parsed {
    Run(Options),
    Help,
    Version,
}

#[derive(Debug, PartialEq)]
enum ArgError {
    /// Something wrong, with the message to show.
    Usage(String),
}

#[derive(Debug, PartialEq)]
struct Options {
    path: PathBuf,
    /// `None`: from the environment, else the default.
    fsync: Option<FsyncPolicy>,
    /// `--read-only`: no writer lock, so it opens beside a running writer.
    read_only: bool,
    studio: bool,
    port: Option<u16>,
    /// `--key-file`: the key of an encrypted database (see `key`).
    key_file: Option<PathBuf>,
}

impl Options {
    /// The open configuration: `--fsync` wins over `FERRUMDB_FSYNC`.
    fn config(&self) -> Result<Config, String> {
        let config = Config::new()
            .with_path(&self.path)
            .with_read_only(self.read_only);
        match self.fsync {
            Some(policy) => Ok(config.with_fsync_policy(policy)),
            None => config.with_env().map_err(|e| e.to_string()),
        }
    }
}

fn parse_args(args: &[String]) -> Result<Parsed, ArgError> {
    let mut opts = Options {
        path: PathBuf::from(DEFAULT_PATH),
        fsync: None,
        read_only: false,
        studio: true,
        port: None,
        key_file: None,
    };
    let mut path_given = false;
    let mut options_done = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if options_done || !arg.starts_with('-') || arg == "-" {
            if path_given {
                return Err(ArgError::Usage(format!(
                    "unexpected argument {arg:?}: ferrumdb opens one database PATH"
                )));
            }
            opts.path = PathBuf::from(arg);
            path_given = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (arg.as_str(), None),
        };
        let no_value = || match inline {
            Some(_) => Err(ArgError::Usage(format!("{name} does not take a value"))),
            None => Ok(()),
        };
        match name {
            "--" => {
                no_value()?;
                options_done = true;
            }
            "-h" | "--help" => {
                no_value()?;
                return Ok(Parsed::Help);
            }
            "-V" | "--version" => {
                no_value()?;
                return Ok(Parsed::Version);
            }
            "--read-only" => {
                no_value()?;
                opts.read_only = true;
            }
            "--no-studio" => {
                no_value()?;
                opts.studio = false;
            }
            "--fsync" => {
                let value = option_value(name, inline, &mut iter, "always, never or periodic:MS")?;
                let policy = value
                    .parse::<FsyncPolicy>()
                    .map_err(|e| ArgError::Usage(e.to_string()))?;
                opts.fsync = Some(policy);
            }
            "--port" => {
                let value = option_value(name, inline, &mut iter, "a port number")?;
                let port = value
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| {
                        ArgError::Usage(format!("--port {value:?} is not a port number (1-65535)"))
                    })?;
                opts.port = Some(port);
            }
            "--key-file" => {
                let value = option_value(name, inline, &mut iter, "a file holding the key")?;
                opts.key_file = Some(PathBuf::from(value));
            }
            _ => return Err(ArgError::Usage(format!("unknown option {arg}"))),
        }
    }
    Ok(Parsed::Run(opts))
}

/// The value of `--name=value` or `--name value`.
fn option_value<'a>(
    name: &str,
    inline: Option<&'a str>,
    rest: &mut std::slice::Iter<'a, String>,
    what: &str,
) -> Result<&'a str, ArgError> {
    match inline.or_else(|| rest.next().map(String::as_str)) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ArgError::Usage(format!("{name} needs a value: {what}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run_opts(list: &[&str]) -> Options {
        match parse_args(&args(list)) {
            Ok(Parsed::Run(opts)) => opts,
            other => panic!("{list:?}: {other:?}"),
        }
    }

    fn usage_err(list: &[&str]) -> String {
        match parse_args(&args(list)) {
            Err(ArgError::Usage(msg)) => msg,
            other => panic!("{list:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(
            run_opts(&[]),
            Options {
                path: PathBuf::from("ferrum.db"),
                fsync: None,
                read_only: false,
                studio: true,
                port: None,
                key_file: None,
            }
        );
    }

    #[test]
    fn path_and_options() {
        let opts = run_opts(&[
            "data/app.db",
            "--fsync=always",
            "--no-studio",
            "--port",
            "8080",
        ]);
        assert_eq!(opts.path, PathBuf::from("data/app.db"));
        assert_eq!(opts.fsync, Some(FsyncPolicy::Always));
        assert!(!opts.studio);
        assert_eq!(opts.port, Some(8080));
        let opts = run_opts(&["--fsync", "periodic:250", "--port=9000", "x.db"]);
        assert_eq!(
            opts.fsync,
            Some(FsyncPolicy::Periodic(Duration::from_millis(250)))
        );
        assert_eq!(opts.port, Some(9000));
        assert_eq!(opts.path, PathBuf::from("x.db"));
        assert_eq!(run_opts(&["--fsync=NEVER"]).fsync, Some(FsyncPolicy::Never));
        assert_eq!(
            run_opts(&["--", "--odd-name.db"]).path,
            PathBuf::from("--odd-name.db")
        );
        assert_eq!(run_opts(&[":memory:"]).config().unwrap().path, None);
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_args(&args(&["--help"])), Ok(Parsed::Help));
        assert_eq!(parse_args(&args(&["x.db", "-h"])), Ok(Parsed::Help));
        assert_eq!(parse_args(&args(&["-V"])), Ok(Parsed::Version));
        let text = usage();
        assert!(text.contains(SYNOPSIS));
        assert!(text.contains("SET, GET, DELETE"));
        assert_eq!(main_with_args(args(&["--help"])), 0);
    }

    #[test]
    fn bad_arguments() {
        assert!(usage_err(&["--frob"]).contains("unknown option --frob"));
        assert!(usage_err(&["-x"]).contains("unknown option -x"));
        assert!(usage_err(&["a.db", "b.db"]).contains("unexpected argument \"b.db\""));
        assert!(usage_err(&["--fsync"]).contains("--fsync needs a value"));
        assert!(usage_err(&["--fsync="]).contains("--fsync needs a value"));
        assert!(usage_err(&["--fsync=sometimes"]).contains("fsync policy \"sometimes\""));
        assert!(usage_err(&["--fsync=periodic:0"]).contains("periodic:MS"));
        assert!(usage_err(&["--port"]).contains("--port needs a value"));
        assert!(usage_err(&["--port", "http"]).contains("not a port number"));
        assert!(usage_err(&["--port=0"]).contains("not a port number"));
        assert!(usage_err(&["--port=70000"]).contains("not a port number"));
        assert!(usage_err(&["--no-studio=yes"]).contains("--no-studio does not take a value"));
        assert!(usage_err(&["--read-only=1"]).contains("--read-only does not take a value"));
        assert_eq!(main_with_args(args(&["--frob"])), 2);
        assert_eq!(main_with_args(args(&["--fsync=bogus"])), 2);
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
        assert_eq!(main_with_args(args(&["check"])), 2);
        // Only as the first argument.
        assert_eq!(
            run_opts(&["--no-studio", "check"]).path,
            PathBuf::from("check")
        );
        assert_eq!(
            run_opts(&["--key-file", "k", "x.db"]).key_file,
            Some(PathBuf::from("k"))
        );
        assert!(usage_err(&["--key-file"]).contains("--key-file needs a value"));
    }

    #[test]
    fn read_only_opens_beside_a_writer() {
        assert!(run_opts(&["--read-only", "x.db"]).read_only);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let writer = Database::open(&Config::new().with_path(&path)).unwrap();
        let config = run_opts(&["--read-only", path.to_str().unwrap()])
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
        let holder = Database::open(&Config::new().with_path(&path)).unwrap();
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
