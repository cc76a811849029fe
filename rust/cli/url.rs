//! Databases named by URL instead of a file path: `ferrumdb postgresql://…` and
//! `ferrumdb studio postgresql://…`. The Rust command line does not speak to
//! PostgreSQL itself: the Python extension passes in a [`UrlOpener`] that
//! opens the URL with the Python `PostgresDB` handle and wraps it as a
//! [`Backend`](crate::backend::Backend), so the REPL and Studio run
//! unchanged on it. Without an opener (a Rust-only build) a URL is a clear error.

use std::path::Path;

use crate::backend::SharedBackend;

/// Opens `url` (read-only when asked) as a backend, or says why not in words.
pub type UrlOpener<'a> = &'a dyn Fn(&str, bool) -> Result<SharedBackend, String>;

/// The URL `path` spells, when it names a PostgreSQL database.
pub fn url_of(path: &Path) -> Option<&str> {
    path.to_str()
        .filter(|s| s.starts_with("postgresql://") || s.starts_with("postgres://"))
}

/// Open `url` for the REPL or Studio; on failure print why and return the exit
/// status: 2 for a file-only option given with a URL (`file_only` lists each
/// option and whether it was given), 1 when the database cannot be opened.
pub fn open(
    url: &str,
    read_only: bool,
    opener: Option<UrlOpener<'_>>,
    file_only: &[(&str, bool)],
) -> Result<SharedBackend, i32> {
    if let Some((option, _)) = file_only.iter().find(|(_, given)| *given) {
        eprintln!(
            "error: {option} applies to a FerrumDB file, not to a PostgreSQL database \
             (its durability and encryption at rest are the server's)"
        );
        return Err(2);
    }
    let Some(opener) = opener else {
        eprintln!(
            "error: a postgresql:// URL is opened through the Python package: run the \
             `ferrumdb` command installed by pip install ferrumdb[postgres] (or python -m ferrumdb)"
        );
        return Err(1);
    };
    opener(url, read_only).map_err(|msg| {
        eprintln!("error: {msg}");
        1
    })
}

/// `url` with its password replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &authority[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_redacted() {
        assert!(url_of(Path::new("postgresql://u@h/db?table=t")).is_some());
        assert!(url_of(Path::new("postgres://h/db")).is_some());
        assert!(url_of(Path::new("app.db")).is_none());
        assert!(url_of(Path::new("postgresql.db")).is_none());
        assert_eq!(
            redacted("postgresql://u:secret@h:5432/db?table=t"),
            "postgresql://u:***@h:5432/db?table=t"
        );
        assert_eq!(redacted("postgresql://u@h/db"), "postgresql://u@h/db");
        assert_eq!(
            redacted("postgresql://h/db?x=a@b"),
            "postgresql://h/db?x=a@b"
        );
    }

    #[test]
    fn a_url_needs_an_opener_and_no_file_options() {
        let url = "postgresql://u@h/db";
        // Without Python there is no opener: exit status 1.
        assert_eq!(open(url, false, None, &[]).err(), Some(1));
        // A file-only option is a usage error (2), before any connection.
        let never: UrlOpener<'_> = &|_, _| panic!("must not be called");
        assert_eq!(
            open(url, false, Some(never), &[("--fsync", true)]).err(),
            Some(2)
        );
        // The opener's refusal is exit status 1; read_only reaches it.
        let refuse: UrlOpener<'_> = &|_, read_only| {
            assert!(read_only);
            Err("refused".to_owned())
        };
        assert_eq!(
            open(url, true, Some(refuse), &[("--fsync", false)]).err(),
            Some(1)
        );
    }
}
