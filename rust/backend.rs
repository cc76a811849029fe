//! What the REPL and Ferrum Studio need from a database, as one trait, so the
//! same tools serve a FerrumDB file and a PostgreSQL table.
//!
//! [`Backend`] is implemented once here for the file engine ([`Documents`],
//! each method the call the tools made before, so the file path keeps its
//! speed and behaviour) and once in `rust/python` for PostgreSQL, by calling
//! the Python `PostgresDB` handle (`ferrumdb/postgres.py`). The REPL's
//! commands (`rust/cli/commands.rs`) and Studio's routes (`rust/server`) call
//! only this trait. An operation a backend cannot do fails with
//! [`Error::Backend`] of kind [`BackendErrorKind::Unsupported`], naming the
//! backend.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::documents::{Documents, QueryOptions, UpdateTarget};
use crate::engine::{ValueBuf, WriteBatch};
use crate::error::{BackendErrorKind, Error, Result};
use crate::ops::{export_jsonl, Stage};

/// A database as the tools share it (the REPL, its key completion, and
/// Studio's threads).
pub type SharedBackend = Arc<dyn Backend>;

/// What a store does to the key's expiry (Studio's document editor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TtlChange {
    /// Keep the TTL the key has (none for a new key).
    Keep,
    /// Never expire.
    Clear,
    /// Expire this long from now.
    Set(Duration),
}

/// What [`Backend::put`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Put {
    /// Stored; `created` when the key was new; `ttl` the seconds it has left.
    Stored {
        /// The key did not exist (or had expired).
        created: bool,
        /// Seconds until the key expires, `None` for never.
        ttl: Option<f64>,
    },
    /// `create_only` was asked and the key exists: nothing was written.
    Exists,
}

/// One key of a listing page with its stored value.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The stored JSON text.
    pub raw: ValueBuf,
    /// Seconds until the key expires, `None` for never.
    pub ttl: Option<f64>,
}

/// One query result.
#[derive(Debug, Clone)]
pub struct Found {
    /// The document's key.
    pub key: String,
    /// The document (only the projected paths when the query asked for `fields`).
    pub doc: Value,
    /// The stored JSON text of a whole document, where the backend has it.
    raw: Option<ValueBuf>,
}

impl Found {
    /// A result; `raw` is the stored text of the whole document, when the
    /// backend has it and `doc` is not a projection.
    pub fn new(key: String, doc: Value, raw: Option<ValueBuf>) -> Self {
        Found { key, doc, raw }
    }

    /// The document as JSON text: the stored text, when there is one, rather
    /// than `doc` serialised again.
    pub fn text(&self) -> String {
        match &self.raw {
            Some(raw) => String::from_utf8_lossy(raw.as_bytes()).into_owned(),
            None => self.doc.to_string(),
        }
    }
}

/// One secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// The dotted field path.
    pub field: String,
    /// Whether it refuses duplicate values.
    pub unique: bool,
    /// Entries in it, where the backend knows (the file engine does).
    pub entries: Option<usize>,
}

/// What Studio's live metrics read once a second: counters (rates come
/// from their differences) and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Activity {
    /// Reads by key.
    pub gets: u64,
    /// Writes (stores and updates).
    pub sets: u64,
    /// Deletes.
    pub deletes: u64,
    /// Queries (`query`, `count` with a filter, `distinct`, `find`).
    pub queries: u64,
    /// Live keys.
    pub keys: u64,
    /// The database's size on disk.
    pub file_bytes: u64,
    /// The live data's share of it.
    pub live_bytes: u64,
    /// Gets, sets and deletes per second since the handle opened.
    pub ops_per_sec: f64,
}

/// A progress callback: `(done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// What the REPL and Studio need from a database. Every method may block on
/// I/O; Studio calls them on its blocking pool. Semantics are those of the
/// Python API of the same name (SPEC section 1), on every backend.
pub trait Backend: Send + Sync {
    /// The database for people: the file's path, or the URL without its password.
    fn location(&self) -> String;
    /// Whether the handle refuses writes.
    fn is_read_only(&self) -> bool;

    /// The number of live keys.
    fn len(&self) -> Result<usize>;
    /// Whether there are no live keys.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
    /// The stored JSON text under `key`, `None` when missing or expired.
    fn get(&self, key: &str) -> Result<Option<ValueBuf>>;
    /// Store `json` (valid JSON text) under `key`, replacing any value and TTL.
    fn set(&self, key: &str, json: &[u8], ttl: Option<Duration>) -> Result<()>;
    /// Store `json` under `key` with `change` to its expiry, in one step (a
    /// kept TTL is the very same deadline); with `create_only`, only if
    /// the key does not exist.
    fn put(&self, key: &str, json: &[u8], change: TtlChange, create_only: bool) -> Result<Put>;
    /// Remove `key`; whether it existed.
    fn delete(&self, key: &str) -> Result<bool>;
    /// `None` for a missing key, else the seconds it has left (`None`: no TTL).
    fn ttl(&self, key: &str) -> Result<Option<Option<f64>>>;
    /// Remove `key`'s TTL, keeping its value: `None` for a missing key,
    /// else whether it had one. Another writer's change in between is never lost.
    fn persist(&self, key: &str) -> Result<Option<bool>>;
    /// Up to `limit` keys starting with `prefix`, after `after`, in key order.
    fn keys_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
    /// [`Backend::keys_page`] with each key's value and TTL.
    fn entries_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<Entry>>;

    /// How many documents match `filter` (all when `None`) under `prefix`.
    fn count(&self, filter: Option<&Value>, prefix: &str) -> Result<usize>;
    /// The documents matching `filter`, with `options`.
    fn query(&self, filter: &Value, options: &QueryOptions) -> Result<Vec<Found>>;
    /// The distinct values of `field` among the matching documents.
    fn distinct(&self, field: &str, filter: Option<&Value>, prefix: &str) -> Result<Vec<Value>>;
    /// How a query of `filter` runs, as the backend's plan.
    fn explain(&self, filter: &Value) -> Result<Value>;
    /// Keys of the documents whose `field` equals `value`.
    fn find(&self, field: &str, value: &Value) -> Result<Vec<String>>;
    /// Apply `update` to the document under `key`: the new document, `None` if missing.
    fn update_one(&self, key: &str, update: &Value, upsert: bool) -> Result<Option<Value>>;
    /// Apply `update` to every match, all or nothing; how many changed.
    fn update_many(&self, filter: &Value, update: &Value, prefix: &str) -> Result<usize>;
    /// Delete every match, all or nothing; how many.
    fn delete_many(&self, filter: &Value, prefix: &str) -> Result<usize>;

    /// The secondary indexes, by field.
    fn indexes(&self) -> Result<Vec<IndexInfo>>;
    /// Create an index on `field`; whether it was new.
    fn create_index(&self, field: &str, unique: bool, progress: Progress<'_>) -> Result<bool>;
    /// Drop the index on `field`; whether there was one.
    fn drop_index(&self, field: &str) -> Result<bool>;

    /// The same object as `db.stats()` in Python.
    fn stats(&self) -> Result<Value>;
    /// The counters and sizes Studio's live metrics chart.
    fn activity(&self) -> Result<Activity>;
    /// What Studio's overview shows besides the stats: `path`, `fsync`,
    /// `database_read_only`, `database_live`, `watches`, `backend`.
    fn details(&self) -> Result<Map<String, Value>>;
    /// Reclaim space (compaction, or the server's own); the stats'
    /// `file_bytes` before and after.
    fn compact(&self, progress: Progress<'_>) -> Result<(u64, u64)>;
    /// A consistent copy of the database in the file `dest`; its bytes.
    fn backup(&self, dest: &Path, progress: Progress<'_>) -> Result<u64>;
    /// Every key (under `prefix`) as JSON Lines in `dest`; how many.
    fn export_jsonl(&self, dest: &Path, prefix: &str, progress: Progress<'_>) -> Result<u64>;
    /// Close the handle.
    fn close(&self) -> Result<()>;
}

/// An [`Error::Backend`] of kind `Unsupported`.
pub fn unsupported(message: impl Into<String>) -> Error {
    Error::Backend {
        kind: BackendErrorKind::Unsupported,
        message: message.into(),
    }
}

/// The file engine with its indexes: each method is the call the REPL and
/// Studio made before there was a trait.
impl Backend for Documents {
    fn location(&self) -> String {
        self.database()
            .path()
            .map_or_else(|| ":memory:".to_owned(), |p| p.display().to_string())
    }

    fn is_read_only(&self) -> bool {
        self.database().is_read_only()
    }

    fn len(&self) -> Result<usize> {
        Ok(self.database().len())
    }

    fn get(&self, key: &str) -> Result<Option<ValueBuf>> {
        self.database().get_raw(key)
    }

    fn set(&self, key: &str, json: &[u8], ttl: Option<Duration>) -> Result<()> {
        match ttl {
            Some(ttl) => self.database().put_raw_with_ttl(key, json, ttl),
            None => self.database().put_raw(key, json),
        }
    }

    fn put(&self, key: &str, json: &[u8], change: TtlChange, create_only: bool) -> Result<Put> {
        let db = self.database();
        // The live entry's expiry (Unix ms, 0 for none), exactly as stored,
        // so an edit keeps the very same deadline.
        let expires_at = db
            .entries_page(key, None, 1)?
            .into_iter()
            .find(|(k, ..)| k == key)
            .map(|(_, _, expires_at)| expires_at);
        let existed = expires_at.is_some();
        if create_only && existed {
            return Ok(Put::Exists);
        }
        match change {
            TtlChange::Keep => db.put_raw_expiring_at(key, json, expires_at.unwrap_or(0))?,
            TtlChange::Clear => db.put_raw(key, json)?,
            TtlChange::Set(ttl) => db.put_raw_with_ttl(key, json, ttl)?,
        }
        Ok(Put::Stored {
            created: !existed,
            ttl: db.ttl(key)?.flatten(),
        })
    }

    fn delete(&self, key: &str) -> Result<bool> {
        self.database().delete(key)
    }

    fn ttl(&self, key: &str) -> Result<Option<Option<f64>>> {
        self.database().ttl(key)
    }

    /// One transaction that commits only if the key still holds what was
    /// read (another thread or process may write it in between; then read
    /// again).
    fn persist(&self, key: &str) -> Result<Option<bool>> {
        let db = self.database();
        loop {
            let seen = db.read_stamped(key)?;
            let Some(value) = seen.value() else {
                return Ok(None);
            };
            if seen.expires_at_ms() == 0 {
                return Ok(Some(false));
            }
            let mut batch = WriteBatch::new();
            batch.put(key, value.to_vec())?;
            match db.commit(&batch, [(key, &seen)]) {
                Ok(()) => return Ok(Some(true)),
                Err(Error::TransactionConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn keys_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.database().keys_page(prefix, after, limit)
    }

    fn entries_page(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<Entry>> {
        let db = self.database();
        let now_ms = db.clock().now_ms();
        Ok(db
            .entries_page(prefix, after, limit)?
            .into_iter()
            .map(|(key, raw, expires_at)| Entry {
                key,
                raw,
                ttl: (expires_at != 0).then(|| expires_at.saturating_sub(now_ms) as f64 / 1000.0),
            })
            .collect())
    }

    fn count(&self, filter: Option<&Value>, prefix: &str) -> Result<usize> {
        Documents::count(self, filter, prefix)
    }

    /// The query parsed every document it returns, so each is JSON already:
    /// a whole document's text is the stored bytes, not serialised again.
    fn query(&self, filter: &Value, options: &QueryOptions) -> Result<Vec<Found>> {
        let projected = options.fields.is_some();
        Ok(self
            .query_with(filter, options)?
            .into_iter()
            .map(|row| Found::new(row.key, row.doc, (!projected).then_some(row.raw)))
            .collect())
    }

    fn distinct(&self, field: &str, filter: Option<&Value>, prefix: &str) -> Result<Vec<Value>> {
        Documents::distinct(self, field, filter, prefix)
    }

    fn explain(&self, filter: &Value) -> Result<Value> {
        Documents::explain(self, filter)
    }

    fn find(&self, field: &str, value: &Value) -> Result<Vec<String>> {
        Documents::find(self, field, value)
    }

    fn update_one(&self, key: &str, update: &Value, upsert: bool) -> Result<Option<Value>> {
        Documents::update_one(self, UpdateTarget::Key(key), update, upsert)
    }

    fn update_many(&self, filter: &Value, update: &Value, prefix: &str) -> Result<usize> {
        Documents::update_many(self, filter, update, prefix)
    }

    fn delete_many(&self, filter: &Value, prefix: &str) -> Result<usize> {
        Documents::delete_many(self, filter, prefix)
    }

    fn indexes(&self) -> Result<Vec<IndexInfo>> {
        let sizes = self.index_sizes();
        Ok(Documents::indexes(self)
            .into_iter()
            .map(|field| IndexInfo {
                unique: self.index_is_unique(&field).unwrap_or(false),
                entries: sizes.get(&field).copied(),
                field,
            })
            .collect())
    }

    fn create_index(&self, field: &str, unique: bool, progress: Progress<'_>) -> Result<bool> {
        self.create_index_with(field, unique, progress)
    }

    fn drop_index(&self, field: &str) -> Result<bool> {
        Documents::drop_index(self, field)
    }

    fn stats(&self) -> Result<Value> {
        serde_json::to_value(self.database().stats()?)
            .map_err(|e| Error::from(std::io::Error::from(e)))
    }

    fn activity(&self) -> Result<Activity> {
        let stats = self.database().stats()?;
        Ok(Activity {
            gets: stats.gets,
            sets: stats.sets,
            deletes: stats.deletes,
            queries: self.queries_run(),
            keys: stats.keys,
            file_bytes: stats.file_bytes,
            live_bytes: stats.live_bytes,
            ops_per_sec: stats.ops_per_sec,
        })
    }

    fn details(&self) -> Result<Map<String, Value>> {
        let db = self.database();
        let details = json!({
            "backend": "file",
            "path": self.location(),
            "fsync": db.fsync_policy().to_string(),
            "database_read_only": db.is_read_only(),
            "database_live": db.is_live(),
            "watches": self.watch_count(),
        });
        Ok(match details {
            Value::Object(map) => map,
            _ => Map::new(),
        })
    }

    fn compact(&self, progress: Progress<'_>) -> Result<(u64, u64)> {
        let db = self.database();
        let before = db.stats()?.file_bytes;
        db.compact_with_progress(progress)?;
        Ok((before, db.stats()?.file_bytes))
    }

    fn backup(&self, dest: &Path, progress: Progress<'_>) -> Result<u64> {
        self.database().backup_with_progress(dest, progress)
    }

    fn export_jsonl(&self, dest: &Path, prefix: &str, progress: Progress<'_>) -> Result<u64> {
        export_jsonl(self.database(), dest, prefix, &mut |stage, done, total| {
            if stage == Stage::Exporting {
                progress(done, total);
            }
        })
    }

    fn close(&self) -> Result<()> {
        Documents::close(self)
    }
}
