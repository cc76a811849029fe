//! How a database is opened: path, durability policy and access mode.
//!
//! `Config` is a small builder so new options (encryption, compaction ratio)
//! slot in without breaking callers. `FsyncPolicy` parses the same strings the
//! Python API and the `FERRUMDB_FSYNC` environment variable use.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::clock::Clock;
use crate::crypto::EncryptionKey;
use crate::error::{Error, Result};

/// Name of the database file used by [`crate::FerrumDB::open_default`].
pub const DEFAULT_PATH: &str = "ferrum.db";

/// Environment variable read by `open_from_env` for the fsync policy.
pub const FSYNC_ENV: &str = "FERRUMDB_FSYNC";

/// When appended records are forced to stable storage.
///
/// Under every policy a write has been handed to the operating system
/// (`write(2)`) before the call returns, so killing the process never loses an
/// acknowledged write. The policy only decides what survives *power loss*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fdatasync` before every write returns; concurrent writers share one
    /// sync (group commit). Survives power loss.
    Always,
    /// A background thread syncs at this interval when there is unsynced data,
    /// bounding the power-loss window.
    Periodic(Duration),
    /// Leave syncing to the OS (and to `flush`/`close`).
    Never,
}

impl Default for FsyncPolicy {
    fn default() -> Self {
        FsyncPolicy::Periodic(Duration::from_millis(100))
    }
}

impl FromStr for FsyncPolicy {
    type Err = Error;

    /// Parses `always`, `never` or `periodic:MS` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "always" => return Ok(FsyncPolicy::Always),
            "never" => return Ok(FsyncPolicy::Never),
            _ => {}
        }
        if let Some(ms) = lower.strip_prefix("periodic:") {
            if let Ok(ms) = ms.parse::<u64>() {
                if ms > 0 {
                    return Ok(FsyncPolicy::Periodic(Duration::from_millis(ms)));
                }
            }
        }
        Err(Error::InvalidConfig(format!(
            "fsync policy {s:?} is not one of \"always\", \"never\", \"periodic:MS\" (MS a positive whole number of milliseconds)"
        )))
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => write!(f, "always"),
            FsyncPolicy::Never => write!(f, "never"),
            FsyncPolicy::Periodic(d) => write!(f, "periodic:{}", d.as_millis()),
        }
    }
}

/// When a database compacts itself in the background: once the bytes of
/// dead records exceed both `min_garbage_bytes` and `ratio` of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoCompact {
    /// Fraction of the file that must be garbage, in `(0, 1)`.
    pub ratio: f64,
    /// Garbage below this many bytes never triggers a compaction.
    pub min_garbage_bytes: u64,
}

impl Default for AutoCompact {
    /// Half the file is garbage, and at least 16 MiB of it.
    fn default() -> Self {
        AutoCompact {
            ratio: 0.5,
            min_garbage_bytes: 16 << 20,
        }
    }
}

impl AutoCompact {
    /// Compact when `ratio` of the file is garbage (and at least 16 MiB).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] unless `0 < ratio < 1`.
    pub fn with_ratio(ratio: f64) -> Result<Self> {
        if !(ratio > 0.0 && ratio < 1.0) {
            return Err(Error::InvalidConfig(format!(
                "auto_compact must be a garbage ratio between 0 and 1 (exclusive), such as 0.5, not {ratio}"
            )));
        }
        Ok(AutoCompact {
            ratio,
            ..AutoCompact::default()
        })
    }

    /// Whether a file of `file_bytes` holding `live_bytes` of live data
    /// should be compacted.
    pub fn is_due(&self, file_bytes: u64, live_bytes: u64) -> bool {
        let garbage = file_bytes.saturating_sub(live_bytes);
        garbage >= self.min_garbage_bytes && garbage as f64 > self.ratio * file_bytes as f64
    }
}

/// Options for opening a database.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Database file; `None` keeps everything in memory.
    pub path: Option<PathBuf>,
    /// Durability policy.
    pub fsync: FsyncPolicy,
    /// Open without the writer lock; writes fail with [`Error::ReadOnly`].
    pub read_only: bool,
    /// Be the only writer: other writer opens (and this process's second
    /// handle) get [`Error::Locked`]. By default any number of processes
    /// write at once.
    pub exclusive: bool,
    /// Time source for expiring keys (a manual clock in tests).
    pub clock: Clock,
    /// Background compaction; `None` compacts only when asked.
    pub auto_compact: Option<AutoCompact>,
    /// Encrypt the database at rest under this key (a new file is created
    /// encrypted; an existing one must have been encrypted under it).
    pub encryption: Option<EncryptionKey>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: Some(PathBuf::from(DEFAULT_PATH)),
            fsync: FsyncPolicy::default(),
            read_only: false,
            exclusive: false,
            clock: Clock::System,
            auto_compact: Some(AutoCompact::default()),
            encryption: None,
        }
    }
}

impl Config {
    /// The default configuration: `ferrum.db` in the current directory, `periodic:100`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this database file. The path `":memory:"` means no file at all.
    #[must_use]
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.path = if path.as_os_str() == ":memory:" {
            None
        } else {
            Some(path)
        };
        self
    }

    /// Keep everything in memory; nothing touches the disk.
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.path = None;
        self
    }

    /// Choose the durability policy.
    #[must_use]
    pub fn with_fsync_policy(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Open read-only (no writer lock, writes rejected).
    #[must_use]
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Be the only writer process (see [`Config::exclusive`]).
    #[must_use]
    pub fn with_exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Use this clock for TTL decisions instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Compact in the background by this rule (`None`: only on `compact()`).
    #[must_use]
    pub fn with_auto_compact(mut self, rule: Option<AutoCompact>) -> Self {
        self.auto_compact = rule;
        self
    }

    /// Encrypt at rest with AES-256-GCM under `key`: 32 raw bytes (`[u8; 32]`)
    /// or a passphrase (`&str`/`String`, stretched with Argon2id).
    #[must_use]
    pub fn with_encryption(mut self, key: impl Into<EncryptionKey>) -> Self {
        self.encryption = Some(key.into());
        self
    }

    /// Apply `FERRUMDB_FSYNC` from the environment, when set.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the variable holds an unknown policy.
    pub fn with_env(mut self) -> Result<Self> {
        if let Ok(value) = std::env::var(FSYNC_ENV) {
            self.fsync = value.parse().map_err(|_| {
                Error::InvalidConfig(format!(
                    "{FSYNC_ENV}={value:?} is not one of \"always\", \"never\", \"periodic:MS\""
                ))
            })?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        assert_eq!(
            "always".parse::<FsyncPolicy>().ok(),
            Some(FsyncPolicy::Always)
        );
        assert_eq!(
            "NEVER".parse::<FsyncPolicy>().ok(),
            Some(FsyncPolicy::Never)
        );
        assert_eq!(
            "periodic:250".parse::<FsyncPolicy>().ok(),
            Some(FsyncPolicy::Periodic(Duration::from_millis(250)))
        );
        for bad in [
            "",
            "sometimes",
            "periodic:",
            "periodic:0",
            "periodic:-5",
            "periodic:x",
        ] {
            assert!(bad.parse::<FsyncPolicy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_path() {
        assert_eq!(Config::new().with_path(":memory:").path, None);
        assert_eq!(
            FsyncPolicy::Periodic(Duration::from_millis(7)).to_string(),
            "periodic:7"
        );
    }
}
