//! Command line: the REPL and batch subcommands (placeholder until the CLI lands).

/// Temporary entry point until the CLI lands.
pub fn main_with_args(_args: Vec<String>) -> i32 {
    2
}
