//! Update operators (`$set $unset $inc $mul $min $max $rename $push $pull
//! $addToSet $pop`) on dotted paths, with MongoDB's semantics.
//!
//! Pure: an update document is parsed once ([`Update::parse`], which rejects
//! a malformed one before any document is read), then applied to a document
//! in memory ([`Update::apply`]: document in, document out, or an error naming
//! the path). Storage, atomicity and indexes are the document layer's job.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

use super::eval::element_matches;
use super::filter::{parse_elem_match, ElemMatch};
use super::order::{compare, values_equal};
use super::path::FieldPath;

const SUPPORTED: &str = "$set $unset $inc $mul $min $max $rename $push $pull $addToSet $pop";

/// Why an update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateErrorKind {
    /// The update document itself is malformed (Python `ValueError`).
    Malformed,
    /// An operator met a value of the wrong type in the document, such as
    /// `$inc` on a string or `$push` on an object (Python `TypeError`).
    TypeMismatch,
    /// The result is out of range: an integer overflow or a non-finite
    /// number (Python `ValueError`).
    OutOfRange,
}

/// A refused update: which part, why, and of what kind.
///
/// `path` is `update.$inc.n` for a malformed update, and the dotted field
/// path (`n`, `a.b`) when applying to a document failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateError {
    /// What kind of refusal.
    pub kind: UpdateErrorKind,
    /// Where.
    pub path: String,
    /// What is wrong and what to do instead.
    pub reason: String,
}

impl UpdateError {
    fn malformed(path: impl Into<String>, reason: impl Into<String>) -> UpdateError {
        UpdateError {
            kind: UpdateErrorKind::Malformed,
            path: path.into(),
            reason: reason.into(),
        }
    }

    fn mismatch(path: &str, reason: impl Into<String>) -> UpdateError {
        UpdateError {
            kind: UpdateErrorKind::TypeMismatch,
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    fn range(path: &str, reason: impl Into<String>) -> UpdateError {
        UpdateError {
            kind: UpdateErrorKind::OutOfRange,
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid update at {}: {}", self.path, self.reason)
    }
}

impl std::error::Error for UpdateError {}

/// One operator applied to one path.
#[derive(Debug, Clone)]
enum Action {
    Set(Value),
    Unset,
    Inc(Number),
    Mul(Number),
    Min(Value),
    Max(Value),
    Rename(FieldPath),
    Push(Vec<Value>),
    AddToSet(Vec<Value>),
    Pull(Pull),
    /// `$pop`: true removes the first element (-1), false the last (1).
    Pop(bool),
}

#[derive(Debug, Clone)]
enum Pull {
    Equal(Value),
    Matching(ElemMatch),
}

/// A parsed update document: operators and their paths, in document order.
#[derive(Debug, Clone)]
pub struct Update {
    actions: Vec<(FieldPath, Action)>,
}

impl Update {
    /// Parse an update document such as `{"$set": {"a.b": 1}, "$inc": {"n": 2}}`.
    ///
    /// Every key must be an operator; each maps to an object of dotted paths.
    /// As in MongoDB, two operators may not touch the same path or a path
    /// inside another (`a` and `a.b`).
    ///
    /// # Errors
    /// [`UpdateErrorKind::Malformed`], naming the part: not an object or empty
    /// (`update`), plain fields (`update.name`, "use $set"), an unknown
    /// operator, an operand of the wrong type (`$inc` of a string, `$pop` not
    /// 1 or -1, `$rename` not a string), conflicting paths.
    pub fn parse(update: &Value) -> Result<Update, UpdateError> {
        let Value::Object(map) = update else {
            return Err(UpdateError::malformed(
                "update",
                "expected an object of update operators like {\"$set\": {\"field\": value}}",
            ));
        };
        if map.is_empty() {
            return Err(UpdateError::malformed(
                "update",
                format!("an update needs at least one operator ({SUPPORTED})"),
            ));
        }
        if let Some(plain) = map.keys().find(|k| !k.starts_with('$')) {
            return Err(UpdateError::malformed(
                format!("update.{plain}"),
                format!(
                    "an update holds operators only; to replace a field write \
                     {{\"$set\": {{{plain:?}: ...}}}}, to replace the document use db[key] = doc"
                ),
            ));
        }
        let mut actions = Vec::new();
        for (op, fields) in map {
            let at = format!("update.{op}");
            if !SUPPORTED.split(' ').any(|s| s == op) {
                return Err(UpdateError::malformed(
                    at,
                    format!("unknown update operator; supported: {SUPPORTED}"),
                ));
            }
            let Value::Object(fields) = fields else {
                return Err(UpdateError::malformed(
                    at,
                    "expected an object of dotted paths like {\"field\": value}",
                ));
            };
            for (path, arg) in fields {
                let here = format!("{at}.{path}");
                let parsed =
                    FieldPath::parse(path).map_err(|e| UpdateError::malformed(&here, e.reason))?;
                let action = parse_action(op, arg, &here)?;
                if let Action::Rename(to) = &action {
                    check_no_conflict(&actions, to, &here)?;
                    if overlaps(&parsed, to) {
                        return Err(UpdateError::malformed(
                            here,
                            "$rename source and target must not be the same path or inside each other",
                        ));
                    }
                }
                check_no_conflict(&actions, &parsed, &here)?;
                actions.push((parsed, action));
            }
        }
        Ok(Update { actions })
    }

    /// The top-level fields this update may change (the first segment of
    /// each path, and of each `$rename` target): everything else in a
    /// document is left as it was.
    pub fn touched(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (path, action) in &self.actions {
            let target = match action {
                Action::Rename(to) => Some(to),
                _ => None,
            };
            for p in std::iter::once(path).chain(target) {
                if let Some(first) = p.segments().first() {
                    if !out.contains(&first.name()) {
                        out.push(first.name());
                    }
                }
            }
        }
        out
    }

    /// Apply the update to `doc` (the new document), or fail naming the path.
    /// `doc` must be an object, as every document written by an update is.
    ///
    /// # Errors
    /// [`UpdateErrorKind::TypeMismatch`] (`$inc` on a non-number, a path
    /// through a scalar, `$push` on a non-array, ...) or
    /// [`UpdateErrorKind::OutOfRange`] (an integer overflow, a non-finite
    /// result); `doc` is then left partly updated and must be discarded.
    pub fn apply(&self, doc: &mut Value) -> Result<(), UpdateError> {
        if !doc.is_object() {
            return Err(UpdateError::mismatch(
                "$",
                "update operators apply to a document that is an object",
            ));
        }
        for (path, action) in &self.actions {
            apply_action(doc, path, action)?;
        }
        Ok(())
    }
}

fn overlaps(a: &FieldPath, b: &FieldPath) -> bool {
    let (x, y) = (a.segments(), b.segments());
    let n = x.len().min(y.len());
    x.iter().zip(y).take(n).all(|(p, q)| p.name() == q.name())
}

fn check_no_conflict(
    actions: &[(FieldPath, Action)],
    path: &FieldPath,
    at: &str,
) -> Result<(), UpdateError> {
    for (other, action) in actions {
        let clash =
            overlaps(other, path) || matches!(action, Action::Rename(to) if overlaps(to, path));
        if clash {
            return Err(UpdateError::malformed(
                at,
                format!(
                    "conflicts with another operator on {:?}; one update may touch a path only once",
                    other.as_str()
                ),
            ));
        }
    }
    Ok(())
}

fn number(arg: &Value, at: &str) -> Result<Number, UpdateError> {
    match arg {
        Value::Number(n) => Ok(n.clone()),
        other => Err(UpdateError::malformed(
            at,
            format!("expected a number, got {}", describe(other)),
        )),
    }
}

/// `$each` for `$push`/`$addToSet`: `{"$each": [...]}` or one value.
fn each(arg: &Value, at: &str) -> Result<Vec<Value>, UpdateError> {
    match arg {
        Value::Object(m) if m.keys().any(|k| k.starts_with('$')) => {
            if m.len() != 1 {
                return Err(UpdateError::malformed(
                    at,
                    "only the $each modifier is supported: {\"$each\": [values]}",
                ));
            }
            match m.get("$each") {
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(other) => Err(UpdateError::malformed(
                    format!("{at}.$each"),
                    format!("expected an array, got {}", describe(other)),
                )),
                None => Err(UpdateError::malformed(
                    at,
                    "only the $each modifier is supported: {\"$each\": [values]}",
                )),
            }
        }
        other => Ok(vec![other.clone()]),
    }
}

fn parse_action(op: &str, arg: &Value, at: &str) -> Result<Action, UpdateError> {
    Ok(match op {
        "$set" => Action::Set(arg.clone()),
        "$unset" => Action::Unset,
        "$inc" => Action::Inc(number(arg, at)?),
        "$mul" => Action::Mul(number(arg, at)?),
        "$min" => Action::Min(arg.clone()),
        "$max" => Action::Max(arg.clone()),
        "$rename" => match arg {
            Value::String(to) => Action::Rename(
                FieldPath::parse(to).map_err(|e| UpdateError::malformed(at, e.reason))?,
            ),
            other => {
                return Err(UpdateError::malformed(
                    at,
                    format!("expected the new field name, got {}", describe(other)),
                ))
            }
        },
        "$push" => Action::Push(each(arg, at)?),
        "$addToSet" => Action::AddToSet(each(arg, at)?),
        "$pull" => match arg {
            Value::Object(_) => Action::Pull(Pull::Matching(
                parse_elem_match(arg, at).map_err(|e| UpdateError::malformed(e.path, e.reason))?,
            )),
            other => Action::Pull(Pull::Equal(other.clone())),
        },
        "$pop" => match arg.as_i64() {
            Some(1) => Action::Pop(false),
            Some(-1) => Action::Pop(true),
            _ => {
                return Err(UpdateError::malformed(
                    at,
                    format!(
                        "expected 1 (remove the last element) or -1 (the first), got {}",
                        describe(arg)
                    ),
                ))
            }
        },
        _ => unreachable!("operators are checked by the caller"),
    })
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("a bool ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) if s.len() <= 40 => format!("a string ({s:?})"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// The parent container of `path`'s last segment, creating objects on the
/// way when `create`; `None` when a segment is missing and not created.
fn parent<'a>(
    doc: &'a mut Value,
    path: &FieldPath,
    create: bool,
) -> Result<Option<&'a mut Value>, UpdateError> {
    let segments = path.segments();
    let Some((_, init)) = segments.split_last() else {
        return Ok(None);
    };
    let mut here = doc;
    for (i, seg) in init.iter().enumerate() {
        let so_far = || {
            segments
                .iter()
                .take(i + 1)
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(".")
        };
        here = match here {
            Value::Object(map) => {
                if !map.contains_key(seg.name()) {
                    if !create {
                        return Ok(None);
                    }
                    map.insert(seg.name().to_owned(), Value::Object(Map::new()));
                }
                match map.get_mut(seg.name()) {
                    Some(child) => child,
                    None => return Ok(None),
                }
            }
            Value::Array(items) => match seg.index() {
                Some(index) => {
                    if index >= items.len() {
                        if !create {
                            return Ok(None);
                        }
                        pad(items, index, path.as_str())?;
                        items.push(Value::Object(Map::new()));
                    }
                    match items.get_mut(index) {
                        Some(child) => child,
                        None => return Ok(None),
                    }
                }
                None if !create => return Ok(None),
                None => {
                    return Err(UpdateError::mismatch(
                        path.as_str(),
                        format!(
                            "{:?} is an array, so {:?} must be an element index",
                            so_far().rsplit_once('.').map_or("", |(p, _)| p),
                            seg.name()
                        ),
                    ))
                }
            },
            other => {
                if !create {
                    return Ok(None);
                }
                return Err(UpdateError::mismatch(
                    path.as_str(),
                    format!(
                        "cannot create field {:?} inside {}",
                        seg.name(),
                        describe(other)
                    ),
                ));
            }
        };
    }
    Ok(Some(here))
}

/// Grow `items` with nulls up to (not including) `index`, as MongoDB does
/// when `$set` names a position past the end; bounded so a typo cannot
/// allocate gigabytes.
fn pad(items: &mut Vec<Value>, index: usize, path: &str) -> Result<(), UpdateError> {
    const MAX_PAD: usize = 1 << 20;
    if index - items.len() > MAX_PAD {
        return Err(UpdateError::range(
            path,
            format!("index {index} is more than {MAX_PAD} past the end of the array"),
        ));
    }
    items.resize(index, Value::Null);
    Ok(())
}

/// The slot the last segment names in `parent`, created as null when
/// `create`; `None` when missing and not created.
fn slot<'a>(
    parent: &'a mut Value,
    path: &FieldPath,
    create: bool,
) -> Result<Option<&'a mut Value>, UpdateError> {
    let Some(last) = path.segments().last() else {
        return Ok(None);
    };
    match parent {
        Value::Object(map) => {
            if create && !map.contains_key(last.name()) {
                // The caller knows from `exists_in` that it was missing.
                map.insert(last.name().to_owned(), Value::Null);
            }
            Ok(map.get_mut(last.name()))
        }
        Value::Array(items) => match last.index() {
            Some(index) => {
                if index >= items.len() {
                    if !create {
                        return Ok(None);
                    }
                    pad(items, index + 1, path.as_str())?;
                }
                Ok(items.get_mut(index))
            }
            None => Err(UpdateError::mismatch(
                path.as_str(),
                format!(
                    "the parent is an array, so {:?} must be an element index",
                    last.name()
                ),
            )),
        },
        other => {
            if create {
                Err(UpdateError::mismatch(
                    path.as_str(),
                    format!(
                        "cannot create field {:?} inside {}",
                        last.name(),
                        describe(other)
                    ),
                ))
            } else {
                Ok(None)
            }
        }
    }
}

/// Whether the last segment of `path` exists in `parent`.
fn exists_in(parent: &Value, path: &FieldPath) -> bool {
    let Some(last) = path.segments().last() else {
        return false;
    };
    match parent {
        Value::Object(map) => map.contains_key(last.name()),
        Value::Array(items) => last.index().is_some_and(|i| i < items.len()),
        _ => false,
    }
}

/// The current value at `path` and a place to write it, creating the path.
/// Returns `(slot, existed)`.
fn target<'a>(doc: &'a mut Value, path: &FieldPath) -> Result<(&'a mut Value, bool), UpdateError> {
    let Some(parent) = parent(doc, path, true)? else {
        return Err(UpdateError::mismatch(
            path.as_str(),
            "the path cannot be created",
        ));
    };
    let existed = exists_in(parent, path);
    match slot(parent, path, true)? {
        Some(slot) => Ok((slot, existed)),
        None => Err(UpdateError::mismatch(
            path.as_str(),
            "the path cannot be created",
        )),
    }
}

/// Remove the value at `path`, if present, and return it. In an array the
/// element becomes null (positions do not shift), as with MongoDB's `$unset`.
fn take(doc: &mut Value, path: &FieldPath) -> Result<Option<Value>, UpdateError> {
    let Some(parent) = parent(doc, path, false)? else {
        return Ok(None);
    };
    let Some(last) = path.segments().last() else {
        return Ok(None);
    };
    Ok(match parent {
        Value::Object(map) => map.shift_remove(last.name()),
        Value::Array(items) => last
            .index()
            .and_then(|i| items.get_mut(i))
            .map(std::mem::take),
        _ => None,
    })
}

fn existing<'a>(
    doc: &'a mut Value,
    path: &FieldPath,
) -> Result<Option<&'a mut Value>, UpdateError> {
    match parent(doc, path, false)? {
        Some(parent) if exists_in(parent, path) => slot(parent, path, false),
        _ => Ok(None),
    }
}

fn apply_action(doc: &mut Value, path: &FieldPath, action: &Action) -> Result<(), UpdateError> {
    let at = path.as_str();
    match action {
        Action::Set(value) => {
            *target(doc, path)?.0 = value.clone();
        }
        Action::Unset => {
            take(doc, path)?;
        }
        Action::Inc(by) | Action::Mul(by) => {
            let multiply = matches!(action, Action::Mul(_));
            let (slot, existed) = target(doc, path)?;
            let current = if existed {
                match &*slot {
                    Value::Number(n) => n.clone(),
                    other => {
                        let op = if multiply { "$mul" } else { "$inc" };
                        return Err(UpdateError::mismatch(
                            at,
                            format!("{op} needs a number there, found {}", describe(other)),
                        ));
                    }
                }
            } else {
                Number::from(0)
            };
            *slot = Value::Number(arithmetic(&current, by, multiply, at)?);
        }
        Action::Min(value) | Action::Max(value) => {
            let want = if matches!(action, Action::Min(_)) {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let (slot, existed) = target(doc, path)?;
            if !existed || compare(value, slot) == want {
                *slot = value.clone();
            }
        }
        Action::Rename(to) => {
            if let Some(value) = take(doc, path)? {
                *target(doc, to)?.0 = value;
            }
        }
        Action::Push(values) | Action::AddToSet(values) => {
            let unique = matches!(action, Action::AddToSet(_));
            let (slot, existed) = target(doc, path)?;
            if !existed {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                let op = if unique { "$addToSet" } else { "$push" };
                return Err(UpdateError::mismatch(
                    at,
                    format!("{op} needs an array there, found {}", describe(slot)),
                ));
            };
            for value in values {
                if !unique || !items.iter().any(|v| values_equal(v, value)) {
                    items.push(value.clone());
                }
            }
        }
        Action::Pull(pull) => {
            if let Some(slot) = existing(doc, path)? {
                let Value::Array(items) = slot else {
                    return Err(UpdateError::mismatch(
                        at,
                        format!("$pull needs an array there, found {}", describe(slot)),
                    ));
                };
                items.retain(|item| match pull {
                    Pull::Equal(v) => !values_equal(item, v),
                    Pull::Matching(spec) => !element_matches(spec, item),
                });
            }
        }
        Action::Pop(first) => {
            if let Some(slot) = existing(doc, path)? {
                let Value::Array(items) = slot else {
                    return Err(UpdateError::mismatch(
                        at,
                        format!("$pop needs an array there, found {}", describe(slot)),
                    ));
                };
                if *first {
                    if !items.is_empty() {
                        items.remove(0);
                    }
                } else {
                    items.pop();
                }
            }
        }
    }
    Ok(())
}

/// `a + b` or `a * b`: exact in integers while both are integers and the
/// result fits in i64/u64, otherwise a float, which must be finite.
fn arithmetic(a: &Number, b: &Number, multiply: bool, at: &str) -> Result<Number, UpdateError> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        let exact = if multiply {
            x.checked_mul(y)
        } else {
            x.checked_add(y)
        };
        if let Some(r) = exact {
            if let Ok(v) = i64::try_from(r) {
                return Ok(Number::from(v));
            }
            if let Ok(v) = u64::try_from(r) {
                return Ok(Number::from(v));
            }
        }
        return Err(UpdateError::range(
            at,
            format!(
                "the result of {} {a} {} {b} does not fit in a 64-bit integer",
                if multiply { "multiplying" } else { "adding" },
                if multiply { "by" } else { "and" },
            ),
        ));
    }
    let (x, y) = (
        a.as_f64().unwrap_or(f64::NAN),
        b.as_f64().unwrap_or(f64::NAN),
    );
    let r = if multiply { x * y } else { x + y };
    Number::from_f64(r)
        .ok_or_else(|| UpdateError::range(at, format!("the result ({r}) is not a finite number")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(update: Value, doc: Value) -> Value {
        let mut doc = doc;
        Update::parse(&update).unwrap().apply(&mut doc).unwrap();
        doc
    }

    fn apply_err(update: Value, doc: Value) -> UpdateError {
        let mut doc = doc;
        Update::parse(&update).unwrap().apply(&mut doc).unwrap_err()
    }

    fn parse_err(update: Value) -> UpdateError {
        Update::parse(&update).unwrap_err()
    }

    #[test]
    fn set_and_unset_on_dotted_paths() {
        assert_eq!(
            apply(json!({"$set": {"a.b.c": 1, "x": [1]}}), json!({"y": 0})),
            json!({"y": 0, "a": {"b": {"c": 1}}, "x": [1]})
        );
        assert_eq!(
            apply(json!({"$set": {"t.1": "z"}}), json!({"t": ["a", "b"]})),
            json!({"t": ["a", "z"]})
        );
        assert_eq!(
            apply(json!({"$set": {"t.3": "z"}}), json!({"t": ["a"]})),
            json!({"t": ["a", null, null, "z"]}),
            "padded with nulls"
        );
        assert_eq!(
            apply(json!({"$set": {"t.0.k": 1}}), json!({"t": [{"j": 0}]})),
            json!({"t": [{"j": 0, "k": 1}]})
        );
        assert_eq!(
            apply(
                json!({"$unset": {"a.b": "", "nope.x": 1}}),
                json!({"a": {"b": 1, "c": 2}})
            ),
            json!({"a": {"c": 2}})
        );
        assert_eq!(
            apply(json!({"$unset": {"t.0": ""}}), json!({"t": [1, 2]})),
            json!({"t": [null, 2]})
        );
        assert_eq!(
            apply(
                json!({"$unset": {"b": ""}}),
                json!({"a": 1, "b": 2, "c": 3})
            ),
            json!({"a": 1, "c": 3}),
            "field order kept"
        );
    }

    #[test]
    fn inc_and_mul() {
        assert_eq!(
            apply(json!({"$inc": {"n": 2}}), json!({"n": 1})),
            json!({"n": 3})
        );
        assert_eq!(
            apply(json!({"$inc": {"n": 2}}), json!({})),
            json!({"n": 2}),
            "starts from 0"
        );
        assert_eq!(
            apply(json!({"$inc": {"n": -0.5}}), json!({"n": 1})),
            json!({"n": 0.5})
        );
        assert_eq!(
            apply(json!({"$inc": {"a.n": 1}}), json!({})),
            json!({"a": {"n": 1}})
        );
        assert_eq!(
            apply(json!({"$mul": {"n": 3}}), json!({"n": 2})),
            json!({"n": 6})
        );
        assert_eq!(apply(json!({"$mul": {"n": 3}}), json!({})), json!({"n": 0}));
        assert_eq!(
            apply(json!({"$inc": {"n": 1}}), json!({"n": i64::MAX})),
            json!({"n": i64::MAX as u64 + 1}),
            "into the u64 range"
        );
        let e = apply_err(json!({"$inc": {"n": 1}}), json!({"n": u64::MAX}));
        assert_eq!(
            (e.kind, e.path.as_str()),
            (UpdateErrorKind::OutOfRange, "n")
        );
        let e = apply_err(json!({"$mul": {"n": 1e308}}), json!({"n": 1e308}));
        assert_eq!(e.kind, UpdateErrorKind::OutOfRange);
        let e = apply_err(json!({"$inc": {"a.n": 1}}), json!({"a": {"n": "x"}}));
        assert_eq!(
            (e.kind, e.path.as_str()),
            (UpdateErrorKind::TypeMismatch, "a.n")
        );
        assert!(e.reason.contains("a string"), "{e}");
    }

    #[test]
    fn min_max_compare_in_the_query_order() {
        assert_eq!(
            apply(json!({"$min": {"n": 1}}), json!({"n": 5})),
            json!({"n": 1})
        );
        assert_eq!(
            apply(json!({"$min": {"n": 9}}), json!({"n": 5})),
            json!({"n": 5})
        );
        assert_eq!(
            apply(json!({"$max": {"n": 9}}), json!({"n": 5})),
            json!({"n": 9})
        );
        assert_eq!(apply(json!({"$max": {"n": 9}}), json!({})), json!({"n": 9}));
        assert_eq!(
            apply(json!({"$max": {"n": "a"}}), json!({"n": 5})),
            json!({"n": "a"}),
            "strings sort after numbers"
        );
    }

    #[test]
    fn rename() {
        assert_eq!(
            apply(json!({"$rename": {"a": "b.c"}}), json!({"a": 1, "z": 0})),
            json!({"z": 0, "b": {"c": 1}})
        );
        assert_eq!(
            apply(json!({"$rename": {"nope": "b"}}), json!({"a": 1})),
            json!({"a": 1})
        );
        assert_eq!(
            parse_err(json!({"$rename": {"a": "a.b"}})).path,
            "update.$rename.a"
        );
        assert_eq!(
            parse_err(json!({"$rename": {"a": 1}})).path,
            "update.$rename.a"
        );
    }

    #[test]
    fn push_add_to_set_pull_pop() {
        assert_eq!(
            apply(json!({"$push": {"t": 1}}), json!({})),
            json!({"t": [1]})
        );
        assert_eq!(
            apply(
                json!({"$push": {"t": {"$each": [2, 3]}}}),
                json!({"t": [1]})
            ),
            json!({"t": [1, 2, 3]})
        );
        assert_eq!(
            apply(json!({"$push": {"t": [9]}}), json!({"t": []})),
            json!({"t": [[9]]})
        );
        assert_eq!(
            apply(
                json!({"$addToSet": {"t": {"$each": [1, 2.0, 3, 3]}}}),
                json!({"t": [1, 2]})
            ),
            json!({"t": [1, 2, 3]})
        );
        assert_eq!(
            apply(json!({"$pull": {"t": 2}}), json!({"t": [1, 2, 3, 2]})),
            json!({"t": [1, 3]})
        );
        assert_eq!(
            apply(
                json!({"$pull": {"t": {"$gte": 2}}}),
                json!({"t": [1, 2, 3]})
            ),
            json!({"t": [1]})
        );
        assert_eq!(
            apply(
                json!({"$pull": {"items": {"sku": 1}}}),
                json!({"items": [{"sku": 1, "q": 2}, {"sku": 2}, 5]})
            ),
            json!({"items": [{"sku": 2}, 5]}),
            "a filter on object elements"
        );
        assert_eq!(apply(json!({"$pull": {"nope": 1}}), json!({})), json!({}));
        assert_eq!(
            apply(json!({"$pop": {"t": 1}}), json!({"t": [1, 2]})),
            json!({"t": [1]})
        );
        assert_eq!(
            apply(json!({"$pop": {"t": -1}}), json!({"t": [1, 2]})),
            json!({"t": [2]})
        );
        assert_eq!(
            apply(json!({"$pop": {"t": -1}}), json!({"t": []})),
            json!({"t": []})
        );
        for update in [
            json!({"$push": {"s": 1}}),
            json!({"$addToSet": {"s": 1}}),
            json!({"$pull": {"s": 1}}),
            json!({"$pop": {"s": 1}}),
        ] {
            let e = apply_err(update.clone(), json!({"s": "x"}));
            assert_eq!(
                (e.kind, e.path.as_str()),
                (UpdateErrorKind::TypeMismatch, "s"),
                "{update}"
            );
        }
    }

    #[test]
    fn paths_through_scalars_and_arrays() {
        let e = apply_err(json!({"$set": {"a.b": 1}}), json!({"a": 5}));
        assert_eq!(
            (e.kind, e.path.as_str()),
            (UpdateErrorKind::TypeMismatch, "a.b")
        );
        let e = apply_err(json!({"$set": {"a.b": 1}}), json!({"a": [{"b": 0}]}));
        assert_eq!(e.kind, UpdateErrorKind::TypeMismatch);
        assert_eq!(
            apply(json!({"$unset": {"a.b": 1}}), json!({"a": 5})),
            json!({"a": 5})
        );
    }

    #[test]
    fn malformed_updates_name_the_part() {
        assert_eq!(parse_err(json!([])).path, "update");
        assert_eq!(parse_err(json!({})).path, "update");
        let e = parse_err(json!({"name": "x"}));
        assert_eq!(e.path, "update.name");
        assert!(e.reason.contains("$set"), "{e}");
        assert_eq!(
            parse_err(json!({"$set": {"a": 1}, "b": 2})).path,
            "update.b"
        );
        assert_eq!(parse_err(json!({"$bogus": {"a": 1}})).path, "update.$bogus");
        assert_eq!(parse_err(json!({"$set": 5})).path, "update.$set");
        assert_eq!(parse_err(json!({"$inc": {"n": "1"}})).path, "update.$inc.n");
        assert_eq!(parse_err(json!({"$pop": {"t": 2}})).path, "update.$pop.t");
        assert_eq!(
            parse_err(json!({"$push": {"t": {"$each": 1}}})).path,
            "update.$push.t.$each"
        );
        assert_eq!(
            parse_err(json!({"$push": {"t": {"$slice": 1}}})).path,
            "update.$push.t"
        );
        assert_eq!(
            parse_err(json!({"$set": {"a..b": 1}})).path,
            "update.$set.a..b"
        );
        let e = parse_err(json!({"$set": {"a": 1}, "$inc": {"a.b": 1}}));
        assert_eq!(e.path, "update.$inc.a.b");
        assert!(e.reason.contains("conflicts"), "{e}");
        assert_eq!(
            parse_err(json!({"$rename": {"a": "b"}, "$set": {"b": 1}})).path,
            "update.$set.b"
        );
        for e in [parse_err(json!({"x": 1})), parse_err(json!({"$set": 5}))] {
            assert_eq!(e.kind, UpdateErrorKind::Malformed);
        }
        let mut doc = json!(5);
        assert_eq!(
            Update::parse(&json!({"$set": {"a": 1}}))
                .unwrap()
                .apply(&mut doc)
                .unwrap_err()
                .kind,
            UpdateErrorKind::TypeMismatch
        );
    }
}
