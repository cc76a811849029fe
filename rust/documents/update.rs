//! Atomic writes of documents by operator: `update_one`, `update_many` and
//! `delete_many`.
//!
//! Each is a read-modify-write committed as one transaction
//! ([`Database::commit`]) that names every document it read: if another
//! write changed one of them in between, the commit writes nothing and the
//! call starts over from a fresh read. So concurrent `$inc`s never lose an
//! increment, and `update_many`/`delete_many` are one batch record (all or
//! nothing), without holding the writer lock while documents are parsed and
//! updated. An update keeps a key's TTL (its absolute deadline). Indexes,
//! change feeds and unique constraints follow through the engine's one
//! write path, as for any other commit.

use serde_json::{json, Value};

use crate::engine::{ReadStamp, WriteBatch};
use crate::error::{Error, Result};
use crate::query::{matches, Fields, Filter, SortSpec, Update, UpdateError, UpdateErrorKind};

use super::docs::{filter_error, Documents};
use super::set::{with_parsed, Parsed};

/// Which document `update_one` changes.
#[derive(Debug, Clone, Copy)]
pub enum UpdateTarget<'a> {
    /// The document under this key.
    Key(&'a str),
    /// The first document matching this filter, in key order.
    Filter(&'a Value),
}

fn malformed(e: UpdateError) -> Error {
    Error::InvalidUpdate {
        path: e.path,
        reason: e.reason,
    }
}

/// An update that failed on the document `key`.
fn failed_on(key: &str, e: UpdateError) -> Error {
    match e.kind {
        UpdateErrorKind::TypeMismatch => Error::UpdateTypeMismatch {
            key: key.to_owned(),
            path: e.path,
            reason: e.reason,
        },
        UpdateErrorKind::Malformed | UpdateErrorKind::OutOfRange => Error::InvalidUpdate {
            path: format!("key {key:?}, field {}", e.path),
            reason: e.reason,
        },
    }
}

/// The document a stamp read, parsed (the rule of `parse_stored`).
fn stamped_doc(key: &str, stamp: &ReadStamp) -> Result<Option<Value>> {
    stamp
        .value()
        .map(|bytes| {
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidValue {
                path: "$".into(),
                reason: format!("stored value of {key:?} is not JSON: {e}"),
            })
        })
        .transpose()
}

fn encode(key: &str, doc: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(doc).map_err(|e| Error::InvalidValue {
        path: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Whether a commit lost a race and the call should start over.
fn retry(result: Result<()>) -> Result<bool> {
    match result {
        Ok(()) => Ok(false),
        Err(Error::TransactionConflict { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

impl Documents {
    /// Apply update operators (`{"$inc": {"n": 1}}`; see
    /// [`crate::query::Update`]) to one document, atomically, and return it
    /// as written; `None` when no document matched. With `upsert`, a missing
    /// key starts from `{}` (a filter target cannot upsert: it names no
    /// key). A document the update leaves equal is not written again.
    ///
    /// # Errors
    /// [`Error::InvalidUpdate`] for a malformed update (before anything is
    /// read) or an out-of-range result; [`Error::UpdateTypeMismatch`] naming
    /// the key and path; [`Error::InvalidFilter`]; a unique index refusing
    /// the result; write errors. Nothing is written on error.
    pub fn update_one(
        &self,
        target: UpdateTarget<'_>,
        update: &Value,
        upsert: bool,
    ) -> Result<Option<Value>> {
        Ok(self
            .update_one_with_bytes(target, update, upsert)?
            .map(|(doc, _)| doc))
    }

    /// [`Documents::update_one`], also returning the document's JSON bytes
    /// as written (as stored, when the update left it equal), for callers
    /// that transcode them (the Python binding) instead of encoding the
    /// document once more.
    ///
    /// # Errors
    /// As [`Documents::update_one`].
    pub fn update_one_with_bytes(
        &self,
        target: UpdateTarget<'_>,
        update: &Value,
        upsert: bool,
    ) -> Result<Option<(Value, Vec<u8>)>> {
        let update = Update::parse(update).map_err(malformed)?;
        let filter = match target {
            UpdateTarget::Key(_) => None,
            UpdateTarget::Filter(f) => Some(Filter::parse(f).map_err(filter_error)?),
        };
        if upsert && filter.is_some() {
            return Err(Error::InvalidUpdate {
                path: "upsert".into(),
                reason: "upsert=True needs a key (a str): a filter names no key to create".into(),
            });
        }
        let touched = update.touched();
        loop {
            let key = match (target, &filter) {
                (UpdateTarget::Key(key), _) => key.to_owned(),
                (_, Some(filter)) => {
                    let first = self.run(
                        filter,
                        &SortSpec::default(),
                        0,
                        Some(1),
                        "",
                        Some(&Fields::none()),
                    )?;
                    match first.into_iter().next() {
                        Some(row) => row.key,
                        None => return Ok(None),
                    }
                }
                (UpdateTarget::Filter(_), None) => return Ok(None),
            };
            let stamp = self.db.read_stamped(&key)?;
            let current = stamped_doc(&key, &stamp)?;
            let mut doc = match (current, &filter) {
                (Some(doc), Some(filter)) if !matches(filter, &doc) => continue, // changed since the query
                (None, Some(_)) => continue, // deleted since the query
                (None, None) if !upsert => return Ok(None),
                (None, None) => json!({}),
                (Some(doc), _) => doc,
            };
            // Only the fields the update touches can change: they alone are
            // kept to tell whether it left the document equal.
            let before: Option<Vec<Option<Value>>> = stamp
                .value()
                .is_some()
                .then(|| touched.iter().map(|f| doc.get(f).cloned()).collect());
            // With indexes, their upkeep needs the document as it was too.
            let old_doc =
                (stamp.value().is_some() && self.indexes.is_active()).then(|| doc.clone());
            update.apply(&mut doc).map_err(|e| failed_on(&key, e))?;
            let unchanged = before.is_some_and(|before| {
                touched
                    .iter()
                    .zip(&before)
                    .all(|(f, old)| doc.get(f) == old.as_ref())
            });
            if unchanged {
                let stored = stamp.value().unwrap_or_default().to_vec();
                return Ok(Some((doc, stored)));
            }
            let bytes = encode(&key, &doc)?;
            let mut batch = WriteBatch::new();
            batch.put_expiring_at(&key, bytes.clone(), stamp.expires_at_ms())?;
            let commit = || retry(self.db.commit(&batch, [(key.as_str(), &stamp)]));
            let (retried, doc) = match old_doc {
                // Index upkeep gets both documents as parsed here.
                Some(old_doc) => {
                    let parsed = Parsed {
                        key: key.clone(),
                        old: stamp.value().unwrap_or_default().to_vec(),
                        old_doc,
                        new: bytes.clone(),
                        new_doc: doc,
                    };
                    let (retried, parsed) = with_parsed(parsed, commit);
                    (retried, parsed.new_doc)
                }
                None => (commit(), doc),
            };
            if !retried? {
                return Ok(Some((doc, bytes)));
            }
        }
    }

    /// Apply update operators to every document matching `filter` whose key
    /// starts with `prefix`, as one batch record (all or nothing), and
    /// return how many documents changed (one the update leaves equal is
    /// neither written nor counted).
    ///
    /// # Errors
    /// As [`Documents::update_one`]; the first failing document stops the
    /// call with nothing written.
    pub fn update_many(&self, filter: &Value, update: &Value, prefix: &str) -> Result<usize> {
        let update = Update::parse(update).map_err(malformed)?;
        let filter = Filter::parse(filter).map_err(filter_error)?;
        loop {
            let (stamps, batch) = self.read_matches(&filter, prefix, |key, doc| {
                let mut new = doc.clone();
                update.apply(&mut new).map_err(|e| failed_on(key, e))?;
                Ok((new != *doc).then_some(new))
            })?;
            let changed = batch.len();
            if changed == 0 {
                return Ok(0);
            }
            let reads = stamps.iter().map(|(k, s)| (k.as_str(), s));
            if !retry(self.db.commit(&batch, reads))? {
                return Ok(changed);
            }
        }
    }

    /// Delete every document matching `filter` whose key starts with
    /// `prefix`, as one batch record (all or nothing); returns how many.
    ///
    /// # Errors
    /// [`Error::InvalidFilter`]; write errors (nothing is deleted then).
    pub fn delete_many(&self, filter: &Value, prefix: &str) -> Result<usize> {
        let filter = Filter::parse(filter).map_err(filter_error)?;
        loop {
            let mut batch = WriteBatch::new();
            let (stamps, _) = self.read_matches(&filter, prefix, |key, _| {
                batch.delete(key)?;
                Ok(None)
            })?;
            if batch.is_empty() {
                return Ok(0);
            }
            let deleted = batch.len();
            let reads = stamps.iter().map(|(k, s)| (k.as_str(), s));
            if !retry(self.db.commit(&batch, reads))? {
                return Ok(deleted);
            }
        }
    }

    /// Read every document matching `filter` (with `prefix`) with a stamp,
    /// and batch `change(key, doc)`'s new documents (keeping each key's
    /// TTL). Documents that stopped matching between the query and the
    /// stamped read are skipped, but their stamps are kept, so the commit
    /// fails if they change again.
    fn read_matches(
        &self,
        filter: &Filter,
        prefix: &str,
        mut change: impl FnMut(&str, &Value) -> Result<Option<Value>>,
    ) -> Result<(Vec<(String, ReadStamp)>, WriteBatch)> {
        let keys: Vec<String> = self
            .run(
                filter,
                &SortSpec::default(),
                0,
                None,
                prefix,
                Some(&Fields::none()),
            )?
            .into_iter()
            .map(|row| row.key)
            .collect();
        let mut stamps = Vec::with_capacity(keys.len());
        let mut batch = WriteBatch::new();
        for key in keys {
            let stamp = self.db.read_stamped(&key)?;
            if let Some(doc) = stamped_doc(&key, &stamp)? {
                if matches(filter, &doc) {
                    if let Some(new) = change(&key, &doc)? {
                        batch.put_expiring_at(&key, encode(&key, &new)?, stamp.expires_at_ms())?;
                    }
                }
            }
            stamps.push((key, stamp));
        }
        Ok((stamps, batch))
    }
}
