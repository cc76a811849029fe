//! `Documents`: a database plus its secondary indexes, and the document
//! operations that use them (`create_index`, `find`, `query`, `count`,
//! `distinct`, `explain`).
//!
//! Index definitions are engine metadata entries (`index:<field>`), so they
//! survive reopen; index contents come from the index file a clean close
//! leaves (`documents::persist`, built on first use), or else are rebuilt
//! from a scan at open (one JSON parse per document). Query results are
//! always re-checked against the whole filter on the document as read, so a
//! result is exact even if the document changed between probe and read.
//!
//! A stored value that is not JSON is never skipped: every read here that
//! needs the document (scan, index probe, index build) and the async
//! `FerrumDB::get` fail with `Error::InvalidValue` naming the key
//! ([`parse_stored`], the one place that parses a stored document).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use compact_str::CompactString;
use serde_json::{json, Value};

use crate::engine::{Database, ValueBuf, SIDECAR_DIGEST_META};
use crate::error::{Error, Result};
use crate::query::{
    choose_plan, compare, matches, values_equal, FieldPath, Fields, Filter, FilterError, IndexInfo,
    Plan, Projection, Reached, SortSpec,
};

use super::field::FieldIndex;
use super::set::IndexSet;
use super::watch::{Watch, DEFAULT_WATCH_BYTES, DEFAULT_WATCH_EVENTS};

/// Prefix of index definitions in the engine's metadata namespace.
const INDEX_META: &str = "index:";
/// Documents read per page when scanning.
const SCAN_PAGE: usize = 1024;

/// One query result: the key, the document as JSON bytes, and parsed.
#[derive(Debug, Clone)]
pub struct Row {
    /// The document's key.
    pub key: String,
    /// The stored JSON bytes (for callers that transcode them directly);
    /// the whole document even when the query projected `doc`.
    pub raw: ValueBuf,
    /// The parsed document (only the projected paths when the query asked
    /// for `fields`).
    pub doc: Value,
}

/// One result of [`Documents::query_raw`]: the key and the stored JSON
/// bytes; the document is not parsed unless the query projected it.
#[derive(Debug, Clone)]
pub struct RawRow {
    /// The document's key.
    pub key: String,
    /// The stored JSON bytes of the whole document.
    pub raw: ValueBuf,
    /// The projected document, when the query asked for `fields`.
    pub projected: Option<Value>,
}

/// Everything about a query beyond its filter; `Default` is "every match,
/// in key order, whole documents".
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// A sort specification (`"field"`, `"-field"`, `[["field", -1], ...]`);
    /// `None` for key order.
    pub sort: Option<Value>,
    /// At most this many rows (after `skip`).
    pub limit: Option<usize>,
    /// Rows skipped first.
    pub skip: usize,
    /// Only keys starting with this ("" for all): a "collection". Read as a
    /// range of the ordered key directory, not a full scan.
    pub prefix: String,
    /// A list of dotted paths to keep in each document (see
    /// [`Projection`]); `None` for whole documents.
    pub fields: Option<Value>,
}

/// A database with secondary indexes.
#[derive(Debug, Clone)]
pub struct Documents {
    pub(super) db: Database,
    pub(super) indexes: Arc<IndexSet>,
}

pub(super) fn filter_error(e: FilterError) -> Error {
    Error::InvalidFilter {
        path: e.path,
        reason: e.reason,
    }
}

/// A stored value as a document. The one rule for a stored value that is not
/// JSON (only the raw Rust API, whose caller vouches for the bytes, can store
/// one; the record itself passed its checksum): every read that needs the
/// document fails with [`Error::InvalidValue`] naming the key, whichever path
/// reached it (a scan, an index probe, `create_index`, [`crate::FerrumDB::get`]).
/// Nothing skips it silently, and it is not called file corruption.
pub(crate) fn parse_stored(key: &str, raw: &ValueBuf) -> Result<Value> {
    serde_json::from_slice(raw.as_bytes()).map_err(|e| Error::InvalidValue {
        path: "$".into(),
        reason: format!("stored value of {key:?} is not JSON: {e}"),
    })
}

/// The error of a stored value that does not parse (see [`parse_stored`]).
fn not_json(key: &str, e: &serde_json::Error) -> Error {
    Error::InvalidValue {
        path: "$".into(),
        reason: format!("stored value of {key:?} is not JSON: {e}"),
    }
}

/// A query's filter, sort and projection, parsed.
fn parse_query(
    filter: &Value,
    options: &QueryOptions,
) -> Result<(Filter, SortSpec, Option<Projection>)> {
    let filter = Filter::parse(filter).map_err(filter_error)?;
    let sort = match &options.sort {
        Some(s) => SortSpec::parse(s).map_err(filter_error)?,
        None => SortSpec::default(),
    };
    let projection = options
        .fields
        .as_ref()
        .map(|f| Projection::parse(f).map_err(filter_error))
        .transpose()?;
    Ok((filter, sort, projection))
}

/// The rows a query keeps, in sort order once finished. With a sort and a
/// bound (`skip + limit`), only the first `bound` rows can be returned, so
/// whenever twice the bound (and at least a page) have gathered they are
/// sorted and cut back to it: memory stays bounded and the final sort is
/// small, at O(n) amortised cost.
struct TopRows<'a> {
    sort: &'a SortSpec,
    bound: Option<usize>,
    rows: Vec<Row>,
}

impl<'a> TopRows<'a> {
    fn new(sort: &'a SortSpec, bound: Option<usize>) -> Self {
        let bound = bound.filter(|_| !sort.is_empty());
        TopRows {
            sort,
            bound,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Row) {
        self.rows.push(row);
        if let Some(bound) = self.bound {
            if self.rows.len() >= bound.saturating_mul(2).max(SCAN_PAGE) {
                self.cut(bound);
            }
        }
    }

    fn cut(&mut self, bound: usize) {
        let rows = std::mem::take(&mut self.rows);
        self.rows = self
            .sort
            .sort_by_parts(rows, |row| (row.key.as_str(), &row.doc));
        self.rows.truncate(bound);
    }

    /// The rows in sort order (key order without a sort: they came in it).
    fn finish(mut self) -> Vec<Row> {
        if !self.sort.is_empty() {
            self.cut(self.bound.unwrap_or(usize::MAX));
        }
        self.rows
    }
}

fn parse_field(field: &str) -> Result<FieldPath> {
    FieldPath::parse(field).map_err(|e| Error::InvalidFilter {
        path: format!("field {:?}", e.path),
        reason: e.reason,
    })
}

/// The index definitions stored in `db`, as `(field, unique)` sorted by
/// field, read without an index layer attached (export records them). Each
/// is `{"field": ..., "unique": true}` (`unique` absent in definitions
/// written before unique indexes existed).
///
/// # Errors
/// [`Error::Closed`], corruption or I/O errors reading the metadata.
pub fn stored_indexes(db: &Database) -> Result<Vec<(String, bool)>> {
    Ok(db
        .meta_entries(INDEX_META)?
        .into_iter()
        .filter_map(|(key, value)| {
            let field = key.strip_prefix(INDEX_META)?.to_string();
            let unique = serde_json::from_slice::<Value>(value.as_bytes())
                .ok()
                .and_then(|d| d.get("unique").and_then(Value::as_bool))
                .unwrap_or(false);
            Some((field, unique))
        })
        .collect())
}

impl Documents {
    /// Attach indexes to `db`: register the change hook, then build every
    /// index whose definition is stored in the database.
    ///
    /// # Errors
    /// Corruption or I/O errors while reading definitions or documents.
    pub fn open(db: Database) -> Result<Self> {
        let indexes = Arc::new(IndexSet::default());
        // A database handle is attached once; a second attach would miss changes.
        if !db.set_observer(indexes.clone()) {
            return Err(Error::InvalidConfig(
                "this database already has an index layer attached".into(),
            ));
        }
        let docs = Documents { db, indexes };
        docs.build_missing(docs.db.meta_writes(), true)?;
        Ok(docs)
    }

    /// The stored index definitions: `(field, unique)`.
    fn definitions(&self) -> Result<Vec<(String, bool)>> {
        stored_indexes(&self.db)
    }

    /// Build every stored index this handle does not have yet: all of them
    /// at open, and later the ones another process created (the engine
    /// takes in its definition like any write; one counter compare when
    /// none changed). One scan (one JSON parse per document) builds them
    /// all; a unique index is not re-verified (every write was checked). An
    /// index another process dropped is dropped here too. Writes call this
    /// through the engine before their checks
    /// ([`crate::engine::ChangeObserver::follow_definitions`]), reads before planning.
    ///
    /// # Errors
    /// Corruption or I/O errors while reading definitions or documents.
    fn follow_definitions(&self) -> Result<()> {
        let writes = self.db.meta_writes();
        if self.indexes.seen_meta.load(Ordering::Relaxed) == writes {
            return Ok(());
        }
        self.build_missing(writes, false)
    }

    /// Make this handle's indexes the stored ones: drop those another
    /// process dropped (or recreated with the other `unique` setting),
    /// build those it lacks (`at_open`: loading what it can from the index
    /// file first), then note `writes` (the engine's `meta_writes` before
    /// reading them) as seen.
    pub(super) fn build_missing(&self, writes: u64, at_open: bool) -> Result<()> {
        let definitions = self.definitions()?;
        let stale: Vec<String> = {
            let indexes = self.indexes.indexes.read();
            let defined = self.indexes.defined.read();
            indexes
                .iter()
                .filter(
                    |(field, index)| match definitions.iter().find(|(f, _)| f == *field) {
                        Some((_, unique)) => *unique != index.is_unique(),
                        None => defined.contains(*field),
                    },
                )
                .map(|(field, _)| field.clone())
                .collect()
        };
        if !stale.is_empty() {
            self.db.with_writes_paused(|| {
                let mut indexes = self.indexes.indexes.write();
                for field in &stale {
                    indexes.remove(field);
                }
                drop(indexes);
                self.indexes.refresh_active();
            });
        }
        *self.indexes.defined.write() = definitions.iter().map(|(f, _)| f.clone()).collect();
        let have: Vec<String> = self.indexes.indexes.read().keys().cloned().collect();
        let mut missing: Vec<(String, bool)> = definitions
            .into_iter()
            .filter(|(field, _)| !have.contains(field))
            .collect();
        if at_open && !missing.is_empty() {
            let loaded = self.load_index_file(&missing)?;
            missing.retain(|(field, _)| !loaded.contains(field));
        }
        if !missing.is_empty() {
            let specs: Vec<(&str, bool)> = missing.iter().map(|(f, u)| (f.as_str(), *u)).collect();
            self.build(&specs, false, &mut |_, _| {})?;
        }
        self.indexes.seen_meta.store(writes, Ordering::Relaxed);
        Ok(())
    }

    /// Install the indexes in `wanted` that the index file (see
    /// `documents::persist`) holds, when it is built on the hint this open
    /// used; the live keys it cannot vouch for are read and indexed from
    /// their documents. Returns the fields installed (none without a usable
    /// file: the caller builds them by a scan).
    ///
    /// # Errors
    /// As reading documents ([`Error::InvalidValue`] for a stored value that
    /// is not JSON, as a scan would meet).
    fn load_index_file(&self, wanted: &[(String, bool)]) -> Result<Vec<String>> {
        let Some(file) = self.db.file_path() else {
            return Ok(Vec::new());
        };
        self.db.with_writes_paused(|| {
            // Read with writers paused: a compaction cannot slip in between.
            let Some(basis) = self.db.hint_basis() else {
                return Ok(Vec::new());
            };
            // The digest the close that wrote the file recorded in the log.
            let digest = self
                .db
                .meta_entries(SIDECAR_DIGEST_META)?
                .into_iter()
                .find(|(key, _)| key == SIDECAR_DIGEST_META)
                .map(|(_, value)| value);
            let Some(digest) = digest else {
                return Ok(Vec::new());
            };
            let Some(loaded) = self.db.with_live_locations(|live| {
                super::persist::load(file, &basis, digest.as_bytes(), wanted, live)
            }) else {
                return Ok(Vec::new());
            };
            // The documents the file cannot vouch for are read now (only
            // the fields the indexes read, but every one is checked to be
            // JSON, as a scan would); the indexes add them when built.
            let mut fields = Fields::none();
            for (_, path, _, _) in &loaded.indexes {
                fields.add_path(path);
            }
            let mut stale = Vec::with_capacity(loaded.stale.len());
            for key in loaded.stale {
                let Some(raw) = self.db.get_raw(&key)? else {
                    continue;
                };
                let doc = fields
                    .decode(raw.as_bytes())
                    .map_err(|e| not_json(&key, &e))?;
                stale.push((key, doc));
            }
            let stale = Arc::new(stale);
            let built: Vec<(String, FieldIndex)> = loaded
                .indexes
                .into_iter()
                .map(|(field, path, unique, mut listed)| {
                    listed.stale = stale.clone();
                    (field, FieldIndex::listed(path, unique, listed))
                })
                .collect();
            let fields: Vec<String> = built.iter().map(|(f, _)| f.clone()).collect();
            self.indexes
                .from_file
                .store(!fields.is_empty(), Ordering::Relaxed);
            self.indexes.indexes.write().extend(built);
            self.indexes.refresh_active();
            Ok(fields)
        })
    }

    /// Whether the open loaded indexes from the index file (`PATH.index`,
    /// left by the last clean close) instead of parsing every document.
    pub fn opened_with_index_file(&self) -> bool {
        self.indexes.from_file.load(Ordering::Relaxed)
    }

    /// The database underneath.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Indexed field paths, sorted.
    pub fn indexes(&self) -> Vec<String> {
        // Definitions another process created count too (an error reading
        // them is met by the next call that can raise it).
        let _ = self.db.refresh().and_then(|()| self.follow_definitions());
        self.indexes.indexes.read().keys().cloned().collect()
    }

    /// Approximate memory held by all indexes, in bytes.
    pub fn index_memory_bytes(&self) -> u64 {
        self.indexes.memory_bytes()
    }

    /// Create an index on `field` (a dotted path), built from the existing
    /// documents and kept exact on every write. Returns false if it existed.
    /// Writers pause while it is built.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] for a malformed path; [`Error::ReadOnly`],
    /// [`Error::Closed`], corruption or I/O errors.
    pub fn create_index(&self, field: &str) -> Result<bool> {
        self.create_index_with(field, false, &mut |_, _| {})
    }

    /// Whether the index on `field` is unique (`None`: no such index).
    pub fn index_is_unique(&self, field: &str) -> Option<bool> {
        self.indexes
            .indexes
            .read()
            .get(field)
            .map(FieldIndex::is_unique)
    }

    /// [`Documents::create_index`], reporting `(documents indexed, total)`
    /// after each page of documents.
    ///
    /// # Errors
    /// As [`Documents::create_index`].
    pub fn create_index_with_progress(
        &self,
        field: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<bool> {
        self.create_index_with(field, false, progress)
    }

    /// Create an index on `field`; with `unique`, a write that would give two
    /// documents the same value there fails with [`Error::DuplicateKey`] and
    /// writes nothing (a document without the field counts as `null`, as in
    /// MongoDB, so at most one may lack it). Returns false if the same index
    /// existed.
    ///
    /// # Errors
    /// As [`Documents::create_index`]; [`Error::DuplicateKey`] naming a
    /// duplicated value when the existing documents already repeat one
    /// (nothing is created); [`Error::InvalidConfig`] when an index on
    /// `field` exists with the other `unique` setting.
    pub fn create_index_with(
        &self,
        field: &str,
        unique: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<bool> {
        parse_field(field)?;
        if let Some(existing) = self.indexes.indexes.read().get(field) {
            if existing.is_unique() == unique {
                return Ok(false);
            }
            return Err(Error::InvalidConfig(format!(
                "an index on {field:?} already exists {}; drop_index({field:?}) first to change it",
                if unique {
                    "without unique"
                } else {
                    "with unique=True"
                }
            )));
        }
        let definition = if unique {
            json!({ "field": field, "unique": true })
        } else {
            json!({ "field": field })
        };
        if !unique {
            self.db.put_meta(
                &format!("{INDEX_META}{field}"),
                definition.to_string().as_bytes(),
            )?;
            self.build(&[(field, false)], false, progress)?;
            return Ok(true);
        }
        // A unique index is verified and enforced (installed) before its
        // definition is stored: a crash in between leaves no definition, and
        // a duplicate found while building leaves nothing at all.
        self.build(&[(field, true)], true, progress)?;
        let meta_key = format!("{INDEX_META}{field}");
        let uninstall = || {
            self.db.with_writes_paused(|| {
                self.indexes.indexes.write().remove(field);
                self.indexes.refresh_active();
            });
        };
        if let Err(e) = self
            .db
            .put_meta(&meta_key, definition.to_string().as_bytes())
        {
            uninstall();
            return Err(e);
        }
        // Another process may have written a duplicate between the build
        // and the definition (it checked against the indexes it knew): the
        // definition's write took it in, so the index shows it now. Every
        // write after the definition is checked in every process.
        if let Some(duplicate) = self.live_duplicate(field)? {
            let _ = self.db.delete_meta(&meta_key);
            uninstall();
            return Err(duplicate);
        }
        Ok(true)
    }

    /// A value two live documents share in the unique index on `field`, as
    /// the error creating it reports.
    fn live_duplicate(&self, field: &str) -> Result<Option<Error>> {
        let shared = match self.indexes.indexes.read().get(field) {
            Some(index) => index.shared_claims(),
            None => return Ok(None),
        };
        for (encoded, keys) in shared {
            let mut live = Vec::new();
            for key in keys {
                if self.db.contains(&key)? {
                    live.push(key);
                }
            }
            if let [existing, key, ..] = live.as_slice() {
                let value = self
                    .db
                    .get_raw(key)?
                    .and_then(|raw| serde_json::from_slice::<Value>(raw.as_bytes()).ok())
                    .and_then(|doc| {
                        let indexes = self.indexes.indexes.read();
                        let index = indexes.get(field)?;
                        index
                            .claims(&doc)
                            .into_iter()
                            .find(|(e, _)| *e == encoded)
                            .map(|(_, v)| v)
                    })
                    .unwrap_or(Value::Null);
                return Ok(Some(Error::DuplicateKey {
                    field: field.to_string(),
                    value: value.to_string(),
                    key: key.to_string(),
                    existing: existing.to_string(),
                }));
            }
        }
        Ok(None)
    }

    /// Remove the index on `field`. Returns false if there was none.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::Closed`], I/O errors.
    pub fn drop_index(&self, field: &str) -> Result<bool> {
        if !self.indexes.indexes.read().contains_key(field) {
            return Ok(false);
        }
        self.db.delete_meta(&format!("{INDEX_META}{field}"))?;
        self.db.with_writes_paused(|| {
            self.indexes.indexes.write().remove(field);
            self.indexes.refresh_active();
        });
        Ok(true)
    }

    /// Build the indexes on `fields` (`(path, unique)`) from every document
    /// in one scan, with writers paused so no change slips between the scan
    /// and the hook. With `verify`, a value two documents share in a unique
    /// index fails the build with [`Error::DuplicateKey`] and installs
    /// nothing.
    fn build(
        &self,
        fields: &[(&str, bool)],
        verify: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let mut built = fields
            .iter()
            .map(|(f, unique)| {
                let path = parse_field(f)?;
                let index = if *unique {
                    FieldIndex::new_unique(path)
                } else {
                    FieldIndex::new(path)
                };
                Ok((f.to_string(), index))
            })
            .collect::<Result<Vec<_>>>()?;
        // Counted before pausing writes: `len()` purges expired keys, which
        // takes the writer mutex (not re-entrant), so inside it would deadlock.
        // The total is only for the progress bar; an estimate is enough.
        let total = self.db.len() as u64;
        self.db.with_writes_paused(|| {
            let mut done = 0u64;
            let mut duplicate: Option<Error> = None;
            progress(0, total);
            self.for_each_document("", |key, _, doc| {
                for (field, index) in &mut built {
                    if verify && index.is_unique() {
                        for (encoded, value) in index.claims(&doc) {
                            if let Some(existing) = index.holders(&encoded).next() {
                                duplicate = Some(Error::DuplicateKey {
                                    field: field.clone(),
                                    value: value.to_string(),
                                    key: String::new(),
                                    existing: existing.to_string(),
                                });
                                return false;
                            }
                        }
                    }
                    index.insert(&key, &doc);
                }
                done += 1;
                if done.is_multiple_of(SCAN_PAGE as u64) {
                    progress(done, total);
                }
                true
            })?;
            if let Some(e) = duplicate {
                return Err(e);
            }
            progress(done, total);
            self.indexes.indexes.write().extend(built);
            self.indexes.refresh_active();
            Ok(())
        })
    }

    /// Visit every live document whose key starts with `prefix`, in key
    /// order, until `visit` returns false; each is handed over owned, so a
    /// caller keeping it copies nothing.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for a stored value that is not JSON (see
    /// [`parse_stored`]); read errors.
    fn for_each_document(
        &self,
        prefix: &str,
        mut visit: impl FnMut(String, ValueBuf, Value) -> bool,
    ) -> Result<()> {
        let mut failed = None;
        self.for_each_raw(prefix, |key, raw| match parse_stored(&key, &raw) {
            Ok(doc) => visit(key, raw, doc),
            Err(e) => {
                failed = Some(e);
                false
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// Visit every live `(key, stored bytes)` whose key starts with
    /// `prefix`, in key order, until `visit` returns false (documents are
    /// not parsed: the caller decodes as much as it needs).
    ///
    /// # Errors
    /// Read errors.
    fn for_each_raw(
        &self,
        prefix: &str,
        mut visit: impl FnMut(String, ValueBuf) -> bool,
    ) -> Result<()> {
        let mut after: Option<String> = None;
        loop {
            let page = self.db.items_page(prefix, after.as_deref(), SCAN_PAGE)?;
            let done = page.len() < SCAN_PAGE;
            let next = match page.last() {
                Some((k, _)) if !done => Some(k.clone()),
                _ => None,
            };
            for (key, raw) in page {
                if !visit(key, raw) {
                    return Ok(());
                }
            }
            match next {
                Some(k) => after = Some(k),
                None => return Ok(()),
            }
        }
    }

    /// Keys of the documents whose `field` equals `value` (MongoDB equality:
    /// an array field matches if any element equals `value`), in key order.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] for a malformed path; read errors.
    pub fn find(&self, field: &str, value: &Value) -> Result<Vec<String>> {
        Ok(self
            .find_keys(field, value)?
            .iter()
            .map(|k| k.to_string())
            .collect())
    }

    /// [`Documents::find`] without a `String` per key (the keys as the index
    /// holds them), for bindings that convert them once more anyway.
    ///
    /// # Errors
    /// As [`Documents::find`].
    pub fn find_keys(&self, field: &str, value: &Value) -> Result<Vec<CompactString>> {
        Ok(self.find_keys_indexed(field, value)?.0)
    }

    /// A number that moves whenever any index's contents (or the set of
    /// indexes) may have changed, read after taking in other processes'
    /// writes and purging expired keys, as an index-answered call does: a
    /// binding may reuse what it built from a [`Documents::find_keys_indexed`]
    /// answered by an index while this stays put.
    ///
    /// # Errors
    /// As taking in other processes' writes.
    pub fn index_version(&self) -> Result<u64> {
        self.db.refresh()?;
        self.follow_definitions()?;
        self.db.purge_expired_now();
        Ok(self.indexes.version.load(Ordering::Acquire))
    }

    /// Count a `find` a binding answered itself (see
    /// [`Documents::index_version`]) in [`Documents::queries_run`].
    pub fn count_find(&self) {
        self.count_query();
    }

    /// [`Documents::find_keys`], and whether an index answered it (no
    /// document read).
    ///
    /// # Errors
    /// As [`Documents::find`].
    pub fn find_keys_indexed(
        &self,
        field: &str,
        value: &Value,
    ) -> Result<(Vec<CompactString>, bool)> {
        self.count_query();
        parse_field(field)?;
        if let Value::Object(map) = value {
            if let Some(op) = map.keys().find(|k| k.starts_with('$')) {
                return Err(Error::InvalidFilter {
                    path: format!("find({field:?}, ...) value"),
                    reason: format!(
                        "find() compares with equality, so {op} would only match a stored object \
                         with that key; for operators use query({{{field:?}: {{{op:?}: ...}}}})"
                    ),
                });
            }
        }
        let filter = Filter::equality(field, value.clone()).map_err(filter_error)?;
        if let Some(keys) = self.exact_keys(&filter, "")? {
            return Ok((keys, true));
        }
        let rows = self.run(
            &filter,
            &SortSpec::default(),
            0,
            None,
            "",
            Some(&Fields::none()),
        )?;
        Ok((
            rows.into_iter()
                .map(|r| CompactString::from(r.key))
                .collect(),
            false,
        ))
    }

    /// The keys matching `filter` (with `prefix`), in key order, when one
    /// index probe answers it exactly: no document is read. `None` when the
    /// plan needs the documents.
    fn exact_keys(&self, filter: &Filter, prefix: &str) -> Result<Option<Vec<CompactString>>> {
        self.exact_probe(filter, |ix, probe| {
            let mut keys = ix.probe(probe);
            if !prefix.is_empty() {
                keys.retain(|k| k.starts_with(prefix));
            }
            keys
        })
    }

    /// How many keys match `filter` (with `prefix`), when one index probe
    /// answers it exactly: without a prefix, not even the keys are copied
    /// (see [`FieldIndex::count`]). `None` when the plan needs documents.
    fn exact_count(&self, filter: &Filter, prefix: &str) -> Result<Option<usize>> {
        self.exact_probe(filter, |ix, probe| {
            if prefix.is_empty() {
                ix.count(probe)
            } else {
                ix.probe(probe)
                    .iter()
                    .filter(|k| k.starts_with(prefix))
                    .count()
            }
        })
    }

    /// `answer(index, probe)` under the index lock, when one index probe
    /// answers `filter` exactly (no residual condition); `None` otherwise.
    fn exact_probe<T>(
        &self,
        filter: &Filter,
        answer: impl FnOnce(&FieldIndex, &crate::query::IndexProbe) -> T,
    ) -> Result<Option<T>> {
        // Another process's writes (and index definitions) first: the
        // index probe below reads nothing through the engine.
        self.db.refresh()?;
        self.follow_definitions()?;
        let plan = self.plan(filter);
        let (false, Some(index), Some(probe)) = (plan.residual, &plan.index, plan.kind.probe())
        else {
            return Ok(None);
        };
        // Keys whose TTL has passed leave the index when they are purged
        // (the engine tells the index, see ChangeObserver): purge first, and
        // every key the index holds is live.
        self.db.purge_expired_now();
        let indexes = self.indexes.indexes.read();
        Ok(indexes.get(index).map(|ix| answer(ix, &probe)))
    }

    /// Documents matching `filter` (Mongo-style), sorted by `sort` (key order
    /// by default), after skipping `skip`, at most `limit`.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] naming the malformed part; read errors.
    pub fn query(
        &self,
        filter: &Value,
        sort: Option<&Value>,
        limit: Option<usize>,
        skip: usize,
    ) -> Result<Vec<Row>> {
        self.count_query();
        let filter = Filter::parse(filter).map_err(filter_error)?;
        let sort = match sort {
            Some(s) => SortSpec::parse(s).map_err(filter_error)?,
            None => SortSpec::default(),
        };
        self.run(&filter, &sort, skip, limit, "", None)
    }

    /// [`Documents::query`] with every option: a key `prefix` and a
    /// projection (`fields`) besides sort, limit and skip. With `fields`,
    /// each row's `doc` holds only those paths while `raw` stays the stored
    /// document.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] naming the malformed part of the filter,
    /// sort or fields; read errors.
    pub fn query_with(&self, filter: &Value, options: &QueryOptions) -> Result<Vec<Row>> {
        self.count_query();
        let (filter, sort, projection) = parse_query(filter, options)?;
        let fields = projection.as_ref().map(|p| {
            let mut fields = Fields::none();
            fields.add_projection(p);
            fields
        });
        let (skip, limit) = (options.skip, options.limit);
        let mut rows = self.run(
            &filter,
            &sort,
            skip,
            limit,
            &options.prefix,
            fields.as_ref(),
        )?;
        if let Some(projection) = projection {
            for row in &mut rows {
                row.doc = projection.apply(&row.doc);
            }
        }
        Ok(rows)
    }

    /// [`Documents::query_with`] for callers that transcode the stored bytes
    /// themselves (the Python binding): each document is built only as far
    /// as the filter, sort and projection read it (see [`Fields`]), and a
    /// row carries a parsed document only when the query projected one.
    ///
    /// # Errors
    /// As [`Documents::query_with`].
    pub fn query_raw(&self, filter: &Value, options: &QueryOptions) -> Result<Vec<RawRow>> {
        self.count_query();
        let (filter, sort, projection) = parse_query(filter, options)?;
        let mut fields = Fields::none();
        if let Some(p) = &projection {
            fields.add_projection(p);
        }
        let rows = self.run(
            &filter,
            &sort,
            options.skip,
            options.limit,
            &options.prefix,
            Some(&fields),
        )?;
        Ok(rows
            .into_iter()
            .map(|row| RawRow {
                projected: projection.as_ref().map(|p| p.apply(&row.doc)),
                key: row.key,
                raw: row.raw,
            })
            .collect())
    }

    /// How many documents whose key starts with `prefix` match `filter`
    /// (`None`: all of them).
    ///
    /// Reads no document when it can: with no filter, the live keys are
    /// counted (the key directory's length, or its `prefix` range); with a
    /// filter that one index probe answers exactly (an indexed equality,
    /// `$in` or range, alone), the probed keys are counted. Otherwise the
    /// matching documents are read and counted.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] naming the malformed part; read errors.
    pub fn count(&self, filter: Option<&Value>, prefix: &str) -> Result<usize> {
        self.count_query();
        let filter = match filter {
            Some(f) => Filter::parse(f).map_err(filter_error)?,
            None => Filter::all(),
        };
        if filter.clauses.is_empty() {
            if prefix.is_empty() {
                return Ok(self.db.len());
            }
            return Ok(self.db.keys_page(prefix, None, usize::MAX)?.len());
        }
        if let Some(count) = self.exact_count(&filter, prefix)? {
            return Ok(count);
        }
        Ok(self
            .run(
                &filter,
                &SortSpec::default(),
                0,
                None,
                prefix,
                Some(&Fields::none()),
            )?
            .len())
    }

    /// The distinct values of `field` among the documents whose key starts
    /// with `prefix` and that match `filter` (`None`: all), in the query
    /// sort order ([`compare`]). An array is counted element by element (a
    /// nested array as one element), as in MongoDB; documents without the
    /// field add nothing; `1` and `1.0` are one value (the one met first, in
    /// key order, is returned).
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] for a malformed filter or path; read errors.
    pub fn distinct(
        &self,
        field: &str,
        filter: Option<&Value>,
        prefix: &str,
    ) -> Result<Vec<Value>> {
        self.count_query();
        let path = parse_field(field)?;
        let filter = match filter {
            Some(f) => Filter::parse(f).map_err(filter_error)?,
            None => Filter::all(),
        };
        let mut values: Vec<Value> = Vec::new();
        let mut collect = |doc: &Value| {
            let _ = path.visit(doc, &mut |r: Reached<'_>| {
                match r {
                    // An array at the end counts by its elements.
                    Reached::Value(Value::Array(_)) | Reached::Missing => {}
                    Reached::Value(v) | Reached::Element(v) => values.push(v.clone()),
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        };
        if filter.clauses.is_empty() {
            self.for_each_document(prefix, |_, _, doc| {
                collect(&doc);
                true
            })?;
        } else {
            let mut fields = Fields::none();
            fields.add_path(&path);
            let rows = self.run(
                &filter,
                &SortSpec::default(),
                0,
                None,
                prefix,
                Some(&fields),
            )?;
            for row in rows {
                collect(&row.doc);
            }
        }
        values.sort_by(compare);
        values.dedup_by(|a, b| values_equal(a, b));
        Ok(values)
    }

    /// The plan `query` would use for `filter`, as a JSON object with at least
    /// `index` (field or null), `scan` (bool) and `estimated_rows`.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`] naming the malformed part.
    pub fn explain(&self, filter: &Value) -> Result<Value> {
        let filter = Filter::parse(filter).map_err(filter_error)?;
        Ok(self.plan(&filter).to_json())
    }

    fn plan(&self, filter: &Filter) -> Plan {
        // Counted before taking the index lock: counting may purge expired
        // keys, which updates the indexes (lock order: engine, then indexes).
        let total = self.db.len() as u64;
        let indexes = self.indexes.indexes.read();
        let infos: Vec<IndexInfo<'_>> = indexes
            .iter()
            .map(|(field, ix)| IndexInfo {
                field,
                multikey: ix.is_multikey(),
            })
            .collect();
        choose_plan(filter, &infos, total, |field, kind| {
            match (indexes.get(field), kind.probe()) {
                (Some(ix), Some(probe)) => ix.estimate(&probe),
                _ => total,
            }
        })
    }

    /// The rows matching `filter` with keys starting with `prefix`, sorted,
    /// skipped and limited. Each row's `doc` holds the whole document when
    /// `fields` is `None`; otherwise only the top-level fields the filter,
    /// the sort and `fields` read (see [`Fields`]).
    pub(super) fn run(
        &self,
        filter: &Filter,
        sort: &SortSpec,
        skip: usize,
        limit: Option<usize>,
        prefix: &str,
        fields: Option<&Fields>,
    ) -> Result<Vec<Row>> {
        // Another process's writes (and index definitions) first: the plan
        // reads the indexes.
        self.db.refresh()?;
        self.follow_definitions()?;
        let plan = self.plan(filter);
        let read = fields.map(|f| {
            let mut read = f.clone();
            read.add_filter(filter);
            read.add_sort(sort);
            read
        });
        let decode = |key: &str, raw: &ValueBuf| -> Result<Value> {
            match &read {
                None => parse_stored(key, raw),
                Some(read) => read.decode(raw.as_bytes()).map_err(|e| not_json(key, &e)),
            }
        };
        // Without a sort, rows come in key order and the scan can stop early.
        let enough = if sort.is_empty() {
            limit.map(|l| l.saturating_add(skip))
        } else {
            None
        };
        // With a sort and a limit only the first `skip + limit` rows can be
        // returned: the rows kept are cut back to them whenever twice as
        // many (and at least a page) have gathered.
        let mut kept = TopRows::new(sort, limit.map(|l| l.saturating_add(skip)));
        // A probe that answers the filter exactly, for a caller that wants
        // no field, no sort and no limit, needs no document parsed: the rows
        // are re-checked only if a write may have slipped in between the
        // probe and the reads (see `Database::writes_idle`).
        let unchecked = !plan.residual
            && sort.is_empty()
            && limit.is_none()
            && fields.is_some_and(Fields::is_empty);
        let version = self.indexes.version.load(Ordering::Acquire);
        let candidates: Option<Vec<CompactString>> = match (&plan.index, plan.kind.probe()) {
            (Some(field), Some(probe)) => {
                let indexes = self.indexes.indexes.read();
                indexes.get(field).map(|ix| {
                    let mut keys = ix.probe(&probe);
                    if !prefix.is_empty() {
                        keys.retain(|k| k.starts_with(prefix));
                    }
                    keys
                })
            }
            _ => None,
        };
        #[cfg(test)]
        if let Some(hook) = tests::AFTER_PROBE.with_borrow_mut(Option::take) {
            hook();
        }
        match candidates {
            Some(keys) => {
                for key in keys {
                    if enough.is_some_and(|n| kept.rows.len() >= n) {
                        break;
                    }
                    let Some(raw) = self.db.get_raw(&key)? else {
                        continue;
                    };
                    if unchecked {
                        kept.push(Row {
                            key: key.to_string(),
                            raw,
                            doc: Value::Null,
                        });
                        continue;
                    }
                    // Re-checked even after an exact probe: the document may
                    // have changed between the probe and this read.
                    let doc = decode(&key, &raw)?;
                    if matches(filter, &doc) {
                        kept.push(Row {
                            key: key.to_string(),
                            raw,
                            doc,
                        });
                    }
                }
                let undisturbed = self.db.writes_idle()
                    && self.indexes.version.load(Ordering::Acquire) == version;
                if unchecked && !undisturbed {
                    let mut checked = Vec::with_capacity(kept.rows.len());
                    for row in kept.rows.drain(..) {
                        if matches(filter, &decode(&row.key, &row.raw)?) {
                            checked.push(row);
                        }
                    }
                    kept.rows = checked;
                }
            }
            None => {
                let mut failed = None;
                self.for_each_raw(prefix, |key, raw| {
                    let doc = match decode(&key, &raw) {
                        Ok(doc) => doc,
                        Err(e) => {
                            failed = Some(e);
                            return false;
                        }
                    };
                    if matches(filter, &doc) {
                        kept.push(Row { key, raw, doc });
                    }
                    enough.is_none_or(|n| kept.rows.len() < n)
                })?;
                if let Some(e) = failed {
                    return Err(e);
                }
            }
        }
        let rows = kept.finish().into_iter().skip(skip);
        Ok(match limit {
            Some(l) => rows.take(l).collect(),
            None => rows.collect(),
        })
    }

    /// A feed of every change committed after this call to a key starting
    /// with `prefix` ("" for all): sets with their new JSON bytes, deletes,
    /// and expirations (as deletes, once the engine purges the expired key:
    /// at the next count, iteration, scan or compaction). At most
    /// [`DEFAULT_WATCH_EVENTS`] events (and [`DEFAULT_WATCH_BYTES`] bytes)
    /// wait unread; past that the watch overflows (see [`crate::documents::Recv`]).
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn watch(&self, prefix: &str) -> Result<Watch> {
        self.watch_with_limits(prefix, DEFAULT_WATCH_EVENTS, DEFAULT_WATCH_BYTES)
    }

    /// [`Documents::watch`] with its own bounds on unread events and bytes.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn watch_with_limits(
        &self,
        prefix: &str,
        max_events: usize,
        max_bytes: usize,
    ) -> Result<Watch> {
        // Registered with writes paused: a write either finished before (not
        // reported) or starts after and sees the watcher (reported).
        self.db.with_writes_paused(|| {
            if self.db.is_closed() {
                return Err(Error::Closed);
            }
            let follower = self.db.follower();
            Ok(self
                .indexes
                .watchers
                .watch(prefix, (max_events, max_bytes), follower))
        })
    }

    /// Number of live watches (closed and overflowed ones are not counted).
    pub fn watch_count(&self) -> usize {
        self.indexes.watchers.len()
    }

    /// Close the database (see [`Database::close`]), then end every watch:
    /// each delivers the changes committed before the close, then
    /// [`crate::documents::Recv::Closed`].
    ///
    /// # Errors
    /// As [`Database::close`] (the watches end regardless).
    pub fn close(&self) -> Result<()> {
        let result = self.db.close();
        self.indexes.watchers.close_all();
        result
    }

    /// Reads made through this layer since open: every `query`,
    /// `query_with`, `count`, `distinct` and `find` call (failed ones too),
    /// for Studio's queries-per-second. Shared by every clone of the handle.
    pub fn queries_run(&self) -> u64 {
        self.indexes.queries.load(Ordering::Relaxed)
    }

    fn count_query(&self) {
        self.indexes.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// Index field -> number of (value, key) entries, for stats.
    pub fn index_sizes(&self) -> BTreeMap<String, usize> {
        self.indexes
            .indexes
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::config::Config;

    thread_local! {
        /// Run once between a query's index probe and its reads.
        pub(super) static AFTER_PROBE: RefCell<Option<Box<dyn FnOnce()>>> =
            const { RefCell::new(None) };
    }

    fn indexed() -> Documents {
        let db = Database::open(&Config::new().in_memory()).expect("open");
        let docs = Documents::open(db).expect("documents");
        for (key, g) in [("a", 1), ("b", 1), ("c", 2)] {
            let doc = json!({ "g": g }).to_string();
            docs.database().put_raw(key, doc.as_bytes()).expect("put");
        }
        docs.create_index("g").expect("index");
        docs
    }

    fn keys(rows: Vec<RawRow>) -> Vec<String> {
        rows.into_iter().map(|r| r.key).collect()
    }

    #[test]
    fn an_exact_probe_reads_no_document_unless_a_write_slips_in() {
        let docs = indexed();
        let all = QueryOptions::default();
        let g1 = json!({"g": 1});
        assert_eq!(keys(docs.query_raw(&g1, &all).expect("query")), ["a", "b"]);
        // "a" leaves g = 1 after the probe found it there: the write is
        // seen, so the rows are checked and "a" is left out.
        let writer = docs.clone();
        AFTER_PROBE.set(Some(Box::new(move || {
            writer.database().put_raw("a", br#"{"g":2}"#).expect("put");
        })));
        assert_eq!(keys(docs.query_raw(&g1, &all).expect("query")), ["b"]);
        assert_eq!(
            keys(docs.query_raw(&json!({"g": 2}), &all).expect("query")),
            ["a", "c"]
        );
    }
}
