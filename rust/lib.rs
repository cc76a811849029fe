//! FerrumDB: a zero-setup embedded document database with a Bitcask-style core.
//!
//! Documents are JSON values stored in an append-only log; an in-memory key
//! directory maps each key to its latest record on disk, so values never need
//! to fit in memory. Every record is checksummed, a torn tail from a crash is
//! cut off on open, and compaction rewrites live data crash-safely.
//!
//! One process writes at a time: the writer holds an exclusive OS lock on the
//! data file's inode (`storage::lock`), so every path to the file meets it.
//! Read-only handles open beside the writer without a lock and see the data
//! as of their open.
//!
//! Layers call only downward: [`format`] (bytes) → [`storage`] (files, locks,
//! sync) → [`engine`] (keydir + log = database) → [`documents`] / [`query`]
//! (secondary indexes, change feeds, filters) → bindings (`python`; `cli` and `server`,
//! Ferrum Studio, behind the Cargo features `cli` and `studio`, off by
//! default and switched on by maturin; both call a database through
//! `backend::Backend`, a file or, from Python, a PostgreSQL table). `config` and the expiry `Clock` sit at the top, used by all.
//!
//! ```
//! # fn main() -> ferrumdb::Result<()> {
//! let db = ferrumdb::FerrumDB::open(ferrumdb::Config::new().in_memory())?;
//! # futures_lite_block_on(async {
//! db.set("user:1", &serde_json::json!({"name": "alice"})).await?;
//! assert_eq!(db.get("user:1").await?, Some(serde_json::json!({"name": "alice"})));
//! # Ok::<(), ferrumdb::Error>(())
//! # })?;
//! # Ok(())
//! # }
//! # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output { ferrumdb::block_on(f) }
//! ```
//!
//! Non-goals of this core: a query language beyond JSON filters, several
//! writer processes on one file at once, network replication.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

#[cfg(feature = "studio")]
pub mod backend;
#[cfg(feature = "cli")]
pub mod cli;
mod clock;
mod config;
pub mod crypto;
pub mod documents;
pub mod engine;
mod error;
pub mod format;
mod json;
pub mod ops;
#[cfg(feature = "python")]
mod python;
pub mod query;
#[cfg(feature = "studio")]
pub mod server;
pub mod storage;

pub use clock::Clock;
pub use config::{AutoCompact, Config, FsyncPolicy, DEFAULT_PATH, FSYNC_ENV};
pub use crypto::EncryptionKey;
pub use documents::{Documents, QueryOptions};
pub use engine::{Database, Stats, WriteBatch};
pub use error::{BackendErrorKind, Error, Result};
pub use format::{MAX_BATCH_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES};

use serde_json::Value;

/// Serialize a document for storage.
fn to_json(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::InvalidValue {
        path: "$".into(),
        reason: e.to_string(),
    })
}

/// Writes to commit together with [`FerrumDB::commit`]: all of them or none,
/// also across a crash.
///
/// ```
/// # fn main() -> ferrumdb::Result<()> {
/// # let db = ferrumdb::FerrumDB::open(ferrumdb::Config::new().in_memory())?;
/// # ferrumdb::block_on(async {
/// let tx = ferrumdb::Transaction::new()
///     .set("account:a", &serde_json::json!(50))
///     .set("account:b", &serde_json::json!(150))
///     .delete("pending:1");
/// db.commit(tx).await?;
/// # Ok::<(), ferrumdb::Error>(())
/// # })?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Transaction {
    batch: WriteBatch,
    /// The first invalid write (reported by `commit`, so the builder chains).
    invalid: Option<Error>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store `value` under `key` when committed.
    #[must_use]
    pub fn set(mut self, key: &str, value: &Value) -> Self {
        let result = to_json(value).and_then(|bytes| self.batch.put(key, bytes));
        self.keep_first_error(result);
        self
    }

    /// Remove `key` when committed.
    #[must_use]
    pub fn delete(mut self, key: &str) -> Self {
        let result = self.batch.delete(key);
        self.keep_first_error(result);
        self
    }

    fn keep_first_error(&mut self, result: Result<()>) {
        if let (Err(e), None) = (result, &self.invalid) {
            self.invalid = Some(e);
        }
    }
}

/// The Rust face of FerrumDB: `serde_json::Value` documents and async methods.
///
/// The async methods do their (short, positional) file I/O inline rather than
/// on a thread pool, so they work under any executor without a runtime
/// dependency; under `FsyncPolicy::Always` a set waits for `fdatasync`, so call
/// it from a blocking-friendly context. [`FerrumDB::database`] gives the
/// synchronous engine.
#[derive(Debug, Clone)]
pub struct FerrumDB {
    docs: Documents,
    db: Database,
}

impl FerrumDB {
    /// Open the database described by `config`, with its secondary indexes.
    ///
    /// # Errors
    /// See [`Database::open`] and [`Documents::open`].
    pub fn open(config: Config) -> Result<Self> {
        let docs = Documents::open(Database::open(&config)?)?;
        Ok(FerrumDB {
            db: docs.database().clone(),
            docs,
        })
    }

    /// Open `ferrum.db` in the current directory with default settings.
    ///
    /// # Errors
    /// See [`Database::open`].
    pub fn open_default() -> Result<Self> {
        Self::open(Config::new())
    }

    /// Open `ferrum.db` with the fsync policy taken from `FERRUMDB_FSYNC`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown policy; see [`Database::open`].
    pub fn open_from_env() -> Result<Self> {
        Self::open(Config::new().with_env()?)
    }

    /// The synchronous engine underneath.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The database with its indexes (`find`, `query`, `explain`, `watch`).
    pub fn documents(&self) -> &Documents {
        &self.docs
    }

    /// Store `value` under `key`.
    ///
    /// # Errors
    /// See [`Database::put_raw`].
    pub async fn set(&self, key: &str, value: &Value) -> Result<()> {
        self.db.put_raw(key, &to_json(value)?)
    }

    /// Apply every write of `tx` atomically (see [`Transaction`]).
    ///
    /// # Errors
    /// The first invalid write of `tx` (nothing is written), or as
    /// [`Database::commit`].
    pub async fn commit(&self, tx: Transaction) -> Result<()> {
        if let Some(e) = tx.invalid {
            return Err(e);
        }
        self.db.commit(&tx.batch, [])
    }

    /// Keys whose document has `field == value` (dotted paths reach into
    /// nested objects); uses an index when one exists.
    ///
    /// # Errors
    /// See [`Documents::find`].
    pub async fn find(&self, field: &str, value: &Value) -> Result<Vec<String>> {
        self.docs.find(field, value)
    }

    /// Create a secondary index on `field`; returns false if it existed.
    ///
    /// # Errors
    /// See [`Documents::create_index`].
    pub async fn create_index(&self, field: &str) -> Result<bool> {
        self.docs.create_index(field)
    }

    /// The value under `key`, if any.
    ///
    /// # Errors
    /// [`Error::Corruption`] if the stored record is damaged; see [`Database::get_raw`].
    /// [`Error::InvalidValue`] if the stored value is not JSON (stored through
    /// [`Database::put_raw`] by a caller that broke its promise), as for every
    /// read that needs the document.
    pub async fn get(&self, key: &str) -> Result<Option<Value>> {
        match self.db.get_raw(key)? {
            None => Ok(None),
            Some(buf) => crate::documents::parse_stored(key, &buf).map(Some),
        }
    }

    /// Remove `key`; returns whether it existed.
    ///
    /// # Errors
    /// See [`Database::delete`].
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.db.delete(key)
    }

    /// Rewrite the log with live data only.
    ///
    /// # Errors
    /// See [`Database::compact`].
    pub async fn compact(&self) -> Result<()> {
        self.db.compact()
    }

    /// Re-encrypt the database under `key` (or encrypt a plain one).
    ///
    /// # Errors
    /// See [`Database::rekey`].
    pub async fn rekey(&self, key: impl Into<EncryptionKey>) -> Result<()> {
        self.db.rekey(&key.into())
    }

    /// Force all writes to stable storage.
    ///
    /// # Errors
    /// See [`Database::flush`].
    pub async fn flush(&self) -> Result<()> {
        self.db.flush()
    }

    /// Flush and release the database.
    ///
    /// # Errors
    /// See [`Database::close`].
    pub async fn close(&self) -> Result<()> {
        self.db.close()
    }
}

/// Drive a future to completion on the current thread. FerrumDB's futures
/// never wait on wakeups, so this is all a synchronous caller needs.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
    fn noop_raw() -> RawWaker {
        fn clone(_: *const ()) -> RawWaker {
            noop_raw()
        }
        fn noop(_: *const ()) {}
        static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    // SAFETY: the vtable functions ignore the data pointer and do nothing.
    let waker = unsafe { Waker::from_raw(noop_raw()) };
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
