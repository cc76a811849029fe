//! Command line: the REPL and batch subcommands (placeholder until the CLI lands).
