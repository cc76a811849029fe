//! The command line's one argument parser (clap derive): the REPL's PATH and options when no
//! subcommand is given, and each subcommand (`export`, `import`, `check`, `completions`) as a
//! variant of [`Command`] with its own arguments. Help, usage errors (exit status 2) and shell
//! completion scripts are all generated from these types, so they cannot drift apart.
//!
//! A subcommand is recognised only as the first argument: `ferrumdb --no-studio check` opens a
//! database file named `check` (`args_conflicts_with_subcommands`), as does `ferrumdb -- check`.

use std::io;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;

use crate::config::{Config, FsyncPolicy, DEFAULT_PATH, FSYNC_ENV};

use super::commands::COMMANDS;
use super::key::PASSPHRASE_ENV;

/// Every form of the command line, one per line (clap prints it as the usage line of the
/// top-level help and of its errors).
const USAGE: &str =
    "ferrumdb [PATH] [--fsync=always|never|periodic:MS] [--read-only] [--no-studio] \
                     [--port N] [--key-file FILE]\n       \
                     ferrumdb export PATH OUT.jsonl [--prefix P] [--key-file FILE]\n       \
                     ferrumdb import PATH IN.jsonl [--key-file FILE]\n       \
                     ferrumdb check PATH [--salvage OUT] [--key-file FILE]\n       \
                     ferrumdb studio PATH [--port N] [--host H --token T] [--read-only] \
                     [--key-file FILE]\n       \
                     ferrumdb completions SHELL";

/// `ferrumdb [PATH] [options]`, or `ferrumdb SUBCOMMAND ...`.
#[derive(Debug, Parser)]
#[command(
    name = "ferrumdb",
    version,
    about = "FerrumDB: an embedded JSON document database.",
    override_usage = USAGE,
    subcommand_help_heading = "Subcommands",
    subcommand_value_name = "SUBCOMMAND",
    args_conflicts_with_subcommands = true,
    // `ferrumdb help` opens a database named `help`, as it always has.
    disable_help_subcommand = true,
    // A repeated option: the last one wins, as it did before clap.
    args_override_self = true
)]
pub struct Cli {
    /// The subcommand; `None` opens the REPL (or script mode) on `repl.path`.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// PATH and the options of the REPL and script mode.
    #[command(flatten)]
    pub repl: ReplArgs,
}

/// What to run besides the REPL. Each later subcommand (`push`, `pull`) is one more variant
/// here and one `match` arm in `main_with_args`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the keys as JSON Lines (TTLs kept)
    Export(ExportArgs),
    /// Read JSON Lines back into a database
    Import(ImportArgs),
    /// Verify every record; copy the intact ones into a new OUT
    Check(CheckArgs),
    /// Serve Ferrum Studio for a database until Ctrl-C
    Studio(StudioArgs),
    /// Print a shell completion script for ferrumdb
    Completions(CompletionsArgs),
}

/// The REPL's PATH and options.
#[derive(Debug, PartialEq, Args)]
pub struct ReplArgs {
    /// Database file, created if missing (":memory:": never written to disk), or a
    /// postgresql:// URL (pip install ferrumdb[postgres])
    #[arg(value_name = "PATH", default_value = DEFAULT_PATH)]
    pub path: PathBuf,
    /// always | never | periodic:MS (default: $FERRUMDB_FSYNC, else periodic:100)
    #[arg(long, value_name = "POLICY", value_parser = parse_fsync)]
    pub fsync: Option<FsyncPolicy>,
    /// Open beside a running writer, without the writer lock; writes then fail
    #[arg(long)]
    pub read_only: bool,
    /// Do not start Ferrum Studio (only started at a terminal)
    #[arg(long)]
    pub no_studio: bool,
    /// Ferrum Studio port on 127.0.0.1 (default: 7474; 0 picks a free one). In script mode
    /// (stdin not a terminal) Studio starts only when --port is given
    #[arg(long, value_name = "N", value_parser = parse_port)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub key: KeyArg,
}

impl ReplArgs {
    /// The open configuration: `--fsync` wins over `FERRUMDB_FSYNC`.
    ///
    /// # Errors
    /// A bad `FERRUMDB_FSYNC`, in words.
    pub fn config(&self) -> Result<Config, String> {
        let config = Config::new()
            .with_path(&self.path)
            .with_read_only(self.read_only);
        match self.fsync {
            Some(policy) => Ok(config.with_fsync_policy(policy)),
            None => config.with_env().map_err(|e| e.to_string()),
        }
    }
}

/// `--key-file FILE`, which every form takes (see `key`).
#[derive(Debug, PartialEq, Args)]
pub struct KeyArg {
    /// Key of an encrypted database (32 bytes: a raw key; else a passphrase line)
    #[arg(
        id = "key_file",
        long = "key-file",
        value_name = "FILE",
        allow_hyphen_values = true
    )]
    pub file: Option<PathBuf>,
}

/// `ferrumdb export PATH OUT.jsonl [--prefix P]`.
#[derive(Debug, PartialEq, Args)]
#[command(
    override_usage = "ferrumdb export PATH OUT.jsonl [--prefix P] [--key-file FILE]",
    after_help = "Write every key of the database at PATH (or only those starting with P) to\n\
                  OUT.jsonl, one {\"key\": ..., \"value\": ...} object per line, with \"expires_at\"\n\
                  (Unix seconds) for keys with a TTL. OUT.jsonl is written under a temporary name\n\
                  and renamed when complete. Opens the database read-only, so it works beside a\n\
                  running writer. An encrypted database needs its key: --key-file FILE (exactly\n\
                  32 bytes = raw key, else a passphrase on the first line), or FERRUMDB_PASSPHRASE,\n\
                  or, at a terminal, the passphrase prompt.\n\
                  \n\
                  The summary is a sentence at a terminal, one JSON line ({\"exported\": N}) when\n\
                  piped. Exit status: 0 success, 1 failure, 2 bad arguments."
)]
pub struct ExportArgs {
    /// Database to export from (must exist)
    #[arg(value_name = "PATH")]
    pub db: PathBuf,
    /// JSON Lines file to write
    #[arg(value_name = "OUT.jsonl")]
    pub file: PathBuf,
    /// Export only the keys starting with P
    #[arg(long, value_name = "P", default_value = "", hide_default_value = true)]
    #[arg(allow_hyphen_values = true)]
    pub prefix: String,
    #[command(flatten)]
    pub key: KeyArg,
}

/// `ferrumdb import PATH IN.jsonl`.
#[derive(Debug, PartialEq, Args)]
#[command(
    override_usage = "ferrumdb import PATH IN.jsonl [--no-indexes] [--key-file FILE]",
    after_help = "Store every line of IN.jsonl (as written by `ferrumdb export`) in the database at\n\
                  PATH, created if missing. Every line is checked first: a bad line is reported\n\
                  with its number and nothing is written. Entries whose expires_at has passed are\n\
                  skipped; when a key appears twice, the later line wins. The indexes the export\n\
                  recorded are created first (--no-indexes skips them). An encrypted database\n\
                  needs its key (--key-file FILE or FERRUMDB_PASSPHRASE, as for export); a key\n\
                  given for a new PATH creates it encrypted.\n\
                  \n\
                  The summary is a sentence at a terminal, one JSON line ({\"imported\": N,\n\
                  \"expired\": M, \"indexes_created\": [...]}) when piped. Exit status: 0 success,\n\
                  1 failure, 2 bad arguments."
)]
pub struct ImportArgs {
    /// Database to import into (created if missing)
    #[arg(value_name = "PATH")]
    pub db: PathBuf,
    /// JSON Lines file to read
    #[arg(value_name = "IN.jsonl")]
    pub file: PathBuf,
    /// Do not create the indexes the export recorded
    #[arg(long)]
    pub no_indexes: bool,
    #[command(flatten)]
    pub key: KeyArg,
}

/// `ferrumdb studio PATH [--port N] [--host H --token T] [--read-only]`.
#[derive(Debug, PartialEq, Args)]
#[command(
    override_usage = "ferrumdb studio PATH [--port N] [--host H --token T] [--read-only] \
                      [--key-file FILE]",
    after_help = "Serve Ferrum Studio for the database at PATH (created if missing) until Ctrl-C\n\
                  or SIGTERM, which stop it cleanly (exit status 0). The URL is printed on stdout\n\
                  as soon as Studio listens; --port 0 picks a free port. If another process has\n\
                  PATH open for writing, Studio opens it read-only and follows that process's\n\
                  writes (it says so on stderr); --read-only does so always. A --host other than\n\
                  127.0.0.1/localhost is reachable from other machines and needs --token T; the\n\
                  browser then gets the token from the printed URL. PATH may be a postgresql://\n\
                  URL: Studio then serves that table (beside the applications using it).\n\
                  Exit status: 0 stopped by a signal, 1 the database or the port could not be\n\
                  used, 2 bad arguments."
)]
pub struct StudioArgs {
    /// Database file, created if missing, or a postgresql:// URL
    #[arg(value_name = "PATH")]
    pub db: PathBuf,
    /// Port to listen on (default: 7474; 0 picks a free one)
    #[arg(long, value_name = "N", value_parser = parse_port)]
    pub port: Option<u16>,
    /// Address to bind (default: 127.0.0.1); others need --token
    #[arg(long, value_name = "H", default_value = "127.0.0.1")]
    pub host: String,
    /// Token every API request must carry (Authorization: Bearer T)
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Open the database read-only and refuse every edit
    #[arg(long)]
    pub read_only: bool,
    /// always | never | periodic:MS (default: $FERRUMDB_FSYNC, else periodic:100)
    #[arg(long, value_name = "POLICY", value_parser = parse_fsync)]
    pub fsync: Option<FsyncPolicy>,
    #[command(flatten)]
    pub key: KeyArg,
}

impl StudioArgs {
    /// The open configuration (before the key): `--fsync` wins over `FERRUMDB_FSYNC`.
    ///
    /// # Errors
    /// A bad `FERRUMDB_FSYNC`, in words.
    pub fn config(&self) -> Result<Config, String> {
        let config = Config::new()
            .with_path(&self.db)
            .with_read_only(self.read_only);
        match self.fsync {
            Some(policy) => Ok(config.with_fsync_policy(policy)),
            None => config.with_env().map_err(|e| e.to_string()),
        }
    }
}

/// `ferrumdb check PATH [--salvage OUT]`.
#[derive(Debug, PartialEq, Args)]
#[command(
    override_usage = "ferrumdb check PATH [--salvage OUT] [--key-file FILE]",
    after_help = "Read every record of the database file at PATH and verify its checksum (and,\n\
                  for an encrypted file, its authentication tag). Reports the file size, the\n\
                  intact records and transactions, every damaged region (offset, length, reason)\n\
                  and a torn tail, if any. A torn tail is the unfinished last write of a crash\n\
                  (or damage to the very last record: the two look alike); it is not counted as\n\
                  damage, and the next open cuts it off. PATH is only read, never changed, and\n\
                  may be open in another process. Without --key-file, an encrypted file's\n\
                  passphrase comes from FERRUMDB_PASSPHRASE, else (at a terminal) a prompt.\n\
                  \n\
                  --salvage OUT copies every intact record into the new database OUT (which must\n\
                  not exist; encrypted under the same key) and reports what was recovered and\n\
                  what was lost.\n\
                  \n\
                  At a terminal the report is a few lines; piped, it is one JSON object with\n\
                  file, file_bytes, status (clean | torn_tail | damaged), ok, records, writes,\n\
                  transactions, damage [{offset, length, reason}], damaged_bytes, torn_tail\n\
                  (null or {offset, length, reason}) and, with --salvage, salvage {out, keys,\n\
                  lost_bytes}.\n\
                  \n\
                  Exit status: 0 no damage (a torn tail alone is not damage), 1 damage found\n\
                  (also when --salvage recovered the rest: PATH itself is still damaged) or the\n\
                  check failed (missing file, not a database, wrong key), 2 bad arguments."
)]
pub struct CheckArgs {
    /// Database file to check (only read)
    #[arg(value_name = "PATH")]
    pub db: PathBuf,
    /// Also copy every intact record into the new database OUT (see below)
    #[arg(long, value_name = "OUT", allow_hyphen_values = true)]
    pub salvage: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArg,
}

/// `ferrumdb completions SHELL`.
#[derive(Debug, PartialEq, Args)]
#[command(after_help = "For example, for bash: ferrumdb completions bash > \
                        ~/.local/share/bash-completion/completions/ferrumdb")]
pub struct CompletionsArgs {
    /// The shell to write the script for
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// The parser with the help text that is built at run time (the REPL's command list).
pub fn command() -> clap::Command {
    Cli::command().after_help(after_help())
}

/// Parse `args` (the arguments after the program name).
///
/// # Errors
/// clap's error for bad arguments, and for `--help` / `--version` (whose "error" is the text
/// to print; [`clap::Error::exit_code`] is then 0).
pub fn parse(args: Vec<String>) -> Result<Cli, clap::Error> {
    let mut cmd = command();
    // A subcommand is only ever the first argument.
    let sub = args.first().cloned();
    let argv = std::iter::once("ferrumdb".to_owned()).chain(args);
    match cmd.try_get_matches_from_mut(argv) {
        Ok(matches) => Cli::from_arg_matches(&matches),
        Err(mut e) => {
            // clap leaves the usage line out of a few errors (a missing option value, say);
            // every usage error here shows it, as the command line always has.
            if e.use_stderr() && e.get(ContextKind::Usage).is_none() {
                let usage = match sub.and_then(|name| cmd.find_subcommand_mut(name)) {
                    Some(sub) => sub.render_usage(),
                    None => cmd.render_usage(),
                };
                e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
            }
            Err(e)
        }
    }
}

/// Write the completion script for `shell` to stdout.
pub fn print_completions(shell: Shell) {
    clap_complete::generate(shell, &mut command(), "ferrumdb", &mut io::stdout());
}

fn after_help() -> String {
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    format!(
        "At a terminal, ferrumdb is interactive: Tab completes commands and keys, and\n\
         history is kept in $HOME/.ferrumdb_history; output is indented and coloured\n\
         (unless NO_COLOR is set). Otherwise it reads one command per line from stdin\n\
         (blank lines and lines starting with # are skipped), keeps going after an error,\n\
         and exits with status 1 if any command failed. With stdout not a terminal, each\n\
         command that succeeds prints exactly one line of JSON.\n\
         \n\
         REPL commands:\n\
         {}.\n\
         Type HELP at the ferrumdb prompt for details; `ferrumdb SUBCOMMAND --help` for a\n\
         subcommand. A database file named like a subcommand is opened with\n\
         `ferrumdb -- NAME` (or ./NAME).\n\
         \n\
         Encryption: every form above takes --key-file FILE; without it the passphrase\n\
         comes from ${PASSPHRASE_ENV}, and failing that, for an encrypted database with\n\
         a person at the terminal, from a prompt (no echo). A key given for a new database\n\
         encrypts it. Secrets are never taken as arguments. The REPL keeps no history\n\
         file for an encrypted database. ${FSYNC_ENV} sets the default --fsync.\n\
         \n\
         Exit status: 0 success, 1 a command or the database failed, 2 bad arguments.",
        wrapped_names(&names),
    )
}

/// The command names, comma-separated, in lines indented by two spaces that
/// fit 80 columns.
fn wrapped_names(names: &[&str]) -> String {
    let mut out = String::new();
    let mut line = String::from(" ");
    for (i, name) in names.iter().enumerate() {
        let word = if i + 1 < names.len() {
            format!("{name},")
        } else {
            (*name).to_owned()
        };
        if line.len() + 1 + word.len() > 79 {
            out.push_str(&line);
            out.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(&word);
    }
    out.push_str(&line);
    out
}

/// `--fsync`'s value, by the rules of `FERRUMDB_FSYNC` (case-insensitive).
fn parse_fsync(value: &str) -> Result<FsyncPolicy, String> {
    value.parse().map_err(|e| match e {
        // Without "invalid configuration: ", which clap's "invalid value" already says.
        crate::Error::InvalidConfig(why) => why,
        other => other.to_string(),
    })
}

/// `--port`'s value: 0 (any free port) to 65535.
fn parse_port(value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .map_err(|_| "not a port number (0-65535; 0 picks a free one)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use std::time::Duration;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn ok(list: &[&str]) -> Cli {
        parse(args(list)).unwrap_or_else(|e| panic!("{list:?}: {e}"))
    }

    fn repl(list: &[&str]) -> ReplArgs {
        let cli = ok(list);
        assert!(cli.command.is_none(), "{list:?}: {cli:?}");
        cli.repl
    }

    /// The rendered error for bad arguments `list` (and that it is one: exit status 2).
    fn bad(list: &[&str]) -> String {
        match parse(args(list)) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2, "{list:?}: {e}");
                e.render().to_string()
            }
            Ok(cli) => panic!("{list:?}: expected a usage error, got {cli:?}"),
        }
    }

    #[test]
    fn the_parser_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn repl_defaults() {
        assert_eq!(
            repl(&[]),
            ReplArgs {
                path: PathBuf::from("ferrum.db"),
                fsync: None,
                read_only: false,
                no_studio: false,
                port: None,
                key: KeyArg { file: None },
            }
        );
    }

    #[test]
    fn repl_path_and_options() {
        let opts = repl(&[
            "data/app.db",
            "--fsync=always",
            "--no-studio",
            "--port",
            "8080",
        ]);
        assert_eq!(opts.path, PathBuf::from("data/app.db"));
        assert_eq!(opts.fsync, Some(FsyncPolicy::Always));
        assert!(opts.no_studio);
        assert_eq!(opts.port, Some(8080));
        let opts = repl(&["--fsync", "periodic:250", "--port=9000", "x.db"]);
        assert_eq!(
            opts.fsync,
            Some(FsyncPolicy::Periodic(Duration::from_millis(250)))
        );
        assert_eq!(opts.port, Some(9000));
        assert_eq!(opts.path, PathBuf::from("x.db"));
        assert_eq!(repl(&["--fsync=NEVER"]).fsync, Some(FsyncPolicy::Never));
        // The last of a repeated option wins.
        assert_eq!(repl(&["--port=1", "--port=2"]).port, Some(2));
        assert_eq!(repl(&["--port=0"]).port, Some(0));
        assert_eq!(
            repl(&["--", "--odd-name.db"]).path,
            PathBuf::from("--odd-name.db")
        );
        assert_eq!(repl(&[":memory:"]).config().unwrap().path, None);
        assert!(repl(&["--read-only", "x.db"]).read_only);
        assert_eq!(
            repl(&["--key-file", "k", "x.db"]).key.file,
            Some(PathBuf::from("k"))
        );
    }

    #[test]
    fn subcommands_only_as_the_first_argument() {
        assert!(matches!(
            ok(&["check", "a.db"]).command,
            Some(Command::Check(_))
        ));
        // After an option or `--`, `check` is the database file.
        assert_eq!(repl(&["--no-studio", "check"]).path, PathBuf::from("check"));
        assert_eq!(repl(&["--", "check"]).path, PathBuf::from("check"));
        // `help` is not a subcommand: it has always been a file name.
        assert_eq!(repl(&["help"]).path, PathBuf::from("help"));
        assert_eq!(repl(&["check.db"]).path, PathBuf::from("check.db"));
    }

    #[test]
    fn repl_bad_arguments_exit_2_naming_them() {
        for (list, needle) in [
            (&["--frob"][..], "'--frob'"),
            (&["-x"], "'-x'"),
            (&["a.db", "b.db"], "'b.db'"),
            (&["--fsync"], "'--fsync <POLICY>'"),
            (&["--fsync="], "fsync policy \"\""),
            (&["--fsync=sometimes"], "fsync policy \"sometimes\""),
            (&["--fsync=periodic:0"], "periodic:MS"),
            (&["--port"], "'--port <N>'"),
            (&["--port", "http"], "not a port number"),
            (&["--port=70000"], "not a port number"),
            (&["--no-studio=yes"], "'--no-studio'"),
            (&["--read-only=1"], "'--read-only'"),
            (&["--key-file"], "'--key-file <FILE>'"),
            (&["--key-file="], "'--key-file <FILE>'"),
        ] {
            let err = bad(list);
            assert!(err.contains(needle), "{list:?}: {err}");
            assert!(err.contains("Usage: ferrumdb [PATH]"), "{list:?}: {err}");
        }
    }

    #[test]
    fn help_and_version_are_not_failures() {
        for list in [&["--help"][..], &["x.db", "-h"]] {
            let err = parse(args(list)).unwrap_err();
            assert_eq!((err.kind(), err.exit_code()), (ErrorKind::DisplayHelp, 0));
        }
        let err = parse(args(&["-V"])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DisplayVersion);
        assert_eq!(
            err.render().to_string(),
            format!("ferrumdb {}\n", env!("CARGO_PKG_VERSION"))
        );
        let help = command().render_help().to_string();
        for needle in [
            "ferrumdb [PATH] [--fsync=always|never|periodic:MS]",
            "ferrumdb check PATH [--salvage OUT]",
            "ferrumdb import PATH IN.jsonl",
            "--key-file <FILE>",
            "REPL commands:\n  SET, GET, DELETE",
            PASSPHRASE_ENV,
            "export",
            "completions",
        ] {
            assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
        }
    }

    #[test]
    fn export_and_import() {
        match ok(&["export", "a.db", "out.jsonl", "--prefix", "user:"]).command {
            Some(Command::Export(a)) => assert_eq!(
                a,
                ExportArgs {
                    db: "a.db".into(),
                    file: "out.jsonl".into(),
                    prefix: "user:".into(),
                    key: KeyArg { file: None },
                }
            ),
            other => panic!("{other:?}"),
        }
        let prefix = |list: &[&str]| match ok(list).command {
            Some(Command::Export(a)) => a.prefix,
            other => panic!("{other:?}"),
        };
        assert_eq!(prefix(&["export", "--prefix=u", "a.db", "o"]), "u");
        assert_eq!(prefix(&["export", "a.db", "o", "--prefix="]), "");
        assert_eq!(prefix(&["export", "a.db", "o", "--prefix", "-tmp"]), "-tmp");
        for list in [
            &["import", "a.db", "in", "--key-file", "k"][..],
            &["import", "--key-file=k", "a.db", "in"],
        ] {
            match ok(list).command {
                Some(Command::Import(a)) => assert_eq!(a.key.file, Some(PathBuf::from("k"))),
                other => panic!("{other:?}"),
            }
        }
        match ok(&["import", "--", "--odd.db", "in"]).command {
            Some(Command::Import(a)) => assert_eq!(a.db, PathBuf::from("--odd.db")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn check_and_completions() {
        match ok(&["check", "--salvage", "new.db", "a.db", "--key-file=k"]).command {
            Some(Command::Check(a)) => assert_eq!(
                a,
                CheckArgs {
                    db: "a.db".into(),
                    salvage: Some("new.db".into()),
                    key: KeyArg {
                        file: Some("k".into())
                    },
                }
            ),
            other => panic!("{other:?}"),
        }
        match ok(&["completions", "zsh"]).command {
            Some(Command::Completions(a)) => assert_eq!(a.shell, Shell::Zsh),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn studio_subcommand() {
        match ok(&["studio", "a.db"]).command {
            Some(Command::Studio(a)) => assert_eq!(
                a,
                StudioArgs {
                    db: "a.db".into(),
                    port: None,
                    host: "127.0.0.1".into(),
                    token: None,
                    read_only: false,
                    fsync: None,
                    key: KeyArg { file: None },
                }
            ),
            other => panic!("{other:?}"),
        }
        let list = [
            "studio",
            "--port",
            "0",
            "a.db",
            "--host",
            "0.0.0.0",
            "--token=s3",
            "--read-only",
        ];
        match ok(&list).command {
            Some(Command::Studio(a)) => {
                assert_eq!(a.port, Some(0));
                assert_eq!(
                    (a.host.as_str(), a.token.as_deref()),
                    ("0.0.0.0", Some("s3"))
                );
                assert!(a.read_only);
                assert!(a.config().unwrap().read_only);
            }
            other => panic!("{other:?}"),
        }
        let err = bad(&["studio"]);
        assert!(
            err.contains("<PATH>") && err.contains("Usage: ferrumdb studio PATH"),
            "{err}"
        );
        assert!(bad(&["studio", "a.db", "--port", "x"]).contains("not a port number"));
        assert!(bad(&["studio", "a.db", "--port", "65536"]).contains("not a port number"));
        let help = parse(args(&["studio", "--help"]))
            .unwrap_err()
            .render()
            .to_string();
        assert!(help.contains("--port 0 picks a free port"), "{help}");
        assert!(command()
            .render_help()
            .to_string()
            .contains("ferrumdb studio PATH"));
    }

    /// A bad flag on each subcommand is a usage error naming the flag and the subcommand's
    /// own usage line.
    #[test]
    fn subcommand_bad_arguments_exit_2_naming_them() {
        for (list, needles) in [
            (
                &["export", "a.db"][..],
                &["<OUT.jsonl>", "Usage: ferrumdb export PATH OUT.jsonl"][..],
            ),
            (&["export", "a", "b", "--prefix"], &["'--prefix <P>'"]),
            (&["export", "a", "b", "--bogus"], &["'--bogus'"]),
            (&["import"], &["<PATH>", "<IN.jsonl>"]),
            (&["import", "a", "b", "c"], &["'c'"]),
            (
                &["import", "a", "b", "--prefix=x"],
                &["'--prefix'", "Usage: ferrumdb import PATH IN.jsonl"],
            ),
            (
                &["import", "a", "b", "--key-file="],
                &["'--key-file <FILE>'"],
            ),
            (&["check"], &["<PATH>", "Usage: ferrumdb check PATH"]),
            (&["check", "a.db", "b.db"], &["'b.db'"]),
            (
                &["check", "a.db", "--salvage"],
                &["'--salvage <OUT>'", "Usage: ferrumdb check PATH"],
            ),
            (&["check", "a.db", "--salvage="], &["'--salvage <OUT>'"]),
            (&["check", "a.db", "--bogus"], &["'--bogus'"]),
            (&["check", "a.db", "--help=1"], &["'--help'"]),
            (&["completions"], &["<SHELL>"]),
            (&["completions", "cmd.exe"], &["'cmd.exe'", "bash"]),
            (&["completions", "bash", "--bogus"], &["'--bogus'"]),
        ] {
            let err = bad(list);
            for needle in needles {
                assert!(err.contains(needle), "{list:?}: {needle:?} not in {err}");
            }
        }
    }

    #[test]
    fn each_subcommand_has_help() {
        for (sub, needles) in [
            (
                "export",
                &["Usage: ferrumdb export PATH OUT.jsonl", "--prefix <P>"][..],
            ),
            (
                "import",
                &["Usage: ferrumdb import PATH IN.jsonl", "later line wins"],
            ),
            (
                "check",
                &["Usage: ferrumdb check PATH [--salvage OUT]", "torn tail"],
            ),
            ("completions", &["<SHELL>", "bash"]),
        ] {
            let err = parse(args(&[sub, "--help"])).unwrap_err();
            assert_eq!(err.exit_code(), 0);
            let help = err.render().to_string();
            for needle in needles {
                assert!(help.contains(needle), "{sub}: {needle:?} not in {help}");
            }
        }
    }

    #[test]
    fn bash_completions_name_the_subcommands_and_options() {
        let mut script = Vec::new();
        clap_complete::generate(Shell::Bash, &mut command(), "ferrumdb", &mut script);
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("complete -F _ferrumdb"), "{script}");
        for word in [
            "export",
            "import",
            "check",
            "completions",
            "--salvage",
            "--no-studio",
        ] {
            assert!(script.contains(word), "{word} missing from the bash script");
        }
    }
}
