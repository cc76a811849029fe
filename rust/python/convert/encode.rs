//! Python -> JSON: one walk over Python objects (through their C-level storage) with one set of
//! value rules, written into one of two sinks. `py_to_json` writes compact JSON byte-identical to
//! serde_json's rendering (its formatter writes numbers and escaped strings) for stored values;
//! `py_to_value` builds a `serde_json::Value` directly for query arguments (`filter`, `sort`, a
//! `find` value), with no JSON text in between. Both reject what JSON cannot hold with an error
//! that names the path: `$.tags[2]` for a stored value, `filter.tags["$in"][1]` for an argument.
//! No pythonize or Python `json` sits in between.

use std::fmt::{self, Write as _};

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::ser::{CompactFormatter, Formatter};
use serde_json::{Map, Number, Value};

use super::{ConvertError, ConvertErrorKind};
use crate::json::{has_special_byte, MAX_DEPTH};

/// Serialise a Python object to compact JSON bytes, appending to `out` (so callers can reuse a
/// buffer).
///
/// Accepted: `dict` with `str` keys, `list`, `tuple` (as an array), `str`, `int` in
/// `-2**63 ..= 2**64-1`, finite `float`, `bool`, `None`, and subclasses of these containers and
/// scalars (an `IntEnum` is written as its int, a namedtuple as an array), nested at most
/// [`MAX_DEPTH`] containers deep. Dict order is kept. Containers are read through their C-level
/// storage, so no Python method (`__iter__`, `items`, `__index__`, ...) runs while a value is
/// accepted. Strings, ints and floats are written as serde_json writes them, so the bytes equal
/// serde_json's rendering of the same value. On error `out` may hold a partial document: discard
/// it.
pub fn py_to_json(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Result<(), ConvertError> {
    let mut encoder = Encoder::new(Bytes(out));
    encoder
        .value(obj)
        .map_err(|fail| fail.finish(STORED_ROOT, "store"))
}

/// Convert a query argument to a `serde_json::Value` by the same rules as [`py_to_json`]
/// (the result equals parsing `py_to_json`'s output), naming places from `root`: an error
/// reads `cannot use value of type set at filter.tags["$in"]: ...`.
pub fn py_to_value(obj: &Bound<'_, PyAny>, root: &str) -> Result<Value, ConvertError> {
    let mut encoder = Encoder::new(Tree::default());
    encoder
        .value(obj)
        .map_err(|fail| fail.finish(root, "use"))?;
    Ok(encoder.out.root.take().unwrap_or(Value::Null))
}

/// How a stored value's path starts.
const STORED_ROOT: &str = "$";

/// Where the encoder writes: JSON text or a `Value` tree. Calls arrive in document order;
/// `key`/`item` precede each member's value.
trait Sink {
    fn null(&mut self);
    fn bool(&mut self, b: bool);
    fn i64(&mut self, v: i64) -> Step;
    fn u64(&mut self, v: u64) -> Step;
    /// A finite float.
    fn f64(&mut self, v: f64) -> Step;
    fn str(&mut self, s: &str) -> Step;
    fn begin_object(&mut self);
    /// The key of the next member (`first` for the first member).
    fn key(&mut self, key: &str, first: bool) -> Step;
    fn end_object(&mut self);
    fn begin_array(&mut self);
    /// The next element follows (`first` for the first element).
    fn item(&mut self, first: bool);
    fn end_array(&mut self);
}

/// Compact JSON text appended to a buffer.
struct Bytes<'o>(&'o mut Vec<u8>);

impl Sink for Bytes<'_> {
    #[inline]
    fn null(&mut self) {
        self.0.extend_from_slice(b"null");
    }
    #[inline]
    fn bool(&mut self, b: bool) {
        self.0.extend_from_slice(if b { b"true" } else { b"false" });
    }
    #[inline]
    fn i64(&mut self, v: i64) -> Step {
        CompactFormatter
            .write_i64(&mut *self.0, v)
            .map_err(Fail::write)
    }
    #[inline]
    fn u64(&mut self, v: u64) -> Step {
        CompactFormatter
            .write_u64(&mut *self.0, v)
            .map_err(Fail::write)
    }
    #[inline]
    fn f64(&mut self, v: f64) -> Step {
        CompactFormatter
            .write_f64(&mut *self.0, v)
            .map_err(Fail::write)
    }
    #[inline]
    fn str(&mut self, s: &str) -> Step {
        write_str(self.0, s)
    }
    #[inline]
    fn begin_object(&mut self) {
        self.0.push(b'{');
    }
    #[inline]
    fn key(&mut self, key: &str, first: bool) -> Step {
        if !first {
            self.0.push(b',');
        }
        write_str(self.0, key)?;
        self.0.push(b':');
        Ok(())
    }
    #[inline]
    fn end_object(&mut self) {
        self.0.push(b'}');
    }
    #[inline]
    fn begin_array(&mut self) {
        self.0.push(b'[');
    }
    #[inline]
    fn item(&mut self, first: bool) {
        if !first {
            self.0.push(b',');
        }
    }
    #[inline]
    fn end_array(&mut self) {
        self.0.push(b']');
    }
}

/// A `serde_json::Value` built as the walk goes.
#[derive(Default)]
struct Tree {
    /// Containers being filled, outermost first; an object with the key of its next member.
    open: Vec<Open>,
    /// The finished value.
    root: Option<Value>,
}

enum Open {
    Object(Map<String, Value>, String),
    Array(Vec<Value>),
}

impl Tree {
    fn put(&mut self, value: Value) {
        match self.open.last_mut() {
            // A repeated key keeps its first position and its last value, as parsing does.
            Some(Open::Object(map, key)) => {
                map.insert(std::mem::take(key), value);
            }
            Some(Open::Array(items)) => items.push(value),
            None => self.root = Some(value),
        }
    }
}

impl Sink for Tree {
    fn null(&mut self) {
        self.put(Value::Null);
    }
    fn bool(&mut self, b: bool) {
        self.put(Value::Bool(b));
    }
    fn i64(&mut self, v: i64) -> Step {
        self.put(Value::from(v));
        Ok(())
    }
    fn u64(&mut self, v: u64) -> Step {
        self.put(Value::from(v));
        Ok(())
    }
    fn f64(&mut self, v: f64) -> Step {
        let number = Number::from_f64(v).ok_or_else(|| Fail::write("non-finite float"))?;
        self.put(Value::Number(number));
        Ok(())
    }
    fn str(&mut self, s: &str) -> Step {
        self.put(Value::String(s.to_owned()));
        Ok(())
    }
    fn begin_object(&mut self) {
        self.open.push(Open::Object(Map::new(), String::new()));
    }
    fn key(&mut self, key: &str, _first: bool) -> Step {
        if let Some(Open::Object(_, next)) = self.open.last_mut() {
            key.clone_into(next);
        }
        Ok(())
    }
    fn end_object(&mut self) {
        if let Some(Open::Object(map, _)) = self.open.pop() {
            self.put(Value::Object(map));
        }
    }
    fn begin_array(&mut self) {
        self.open.push(Open::Array(Vec::new()));
    }
    fn item(&mut self, _first: bool) {}
    fn end_array(&mut self) {
        if let Some(Open::Array(items)) = self.open.pop() {
            self.put(Value::Array(items));
        }
    }
}

/// One step of a path, collected from the failing value outwards while the error propagates,
/// so the success path never builds one.
enum Seg {
    Key(String),
    Index(usize),
}

/// A rejection before its path is known. Boxed so `Result<(), Box<Fail>>` stays one word.
struct Fail {
    kind: ConvertErrorKind,
    /// Whether `what` follows `cannot <verb>` (`store` for a value, `use` for an argument).
    refused: bool,
    /// Text before the path, like `value of type datetime` (after `cannot store`) or
    /// `circular reference`.
    what: String,
    /// Text after the path, like `: convert it first, e.g. value.isoformat()`.
    why: String,
    /// Path from the failing value up to the root.
    rev_path: Vec<Seg>,
}

type Step = Result<(), Box<Fail>>;

impl Fail {
    fn new(kind: ConvertErrorKind, what: String, why: &str) -> Box<Fail> {
        Box::new(Fail {
            kind,
            refused: false,
            what,
            why: why.to_owned(),
            rev_path: Vec::new(),
        })
    }

    /// `cannot <verb> {what} at <path>{why}`.
    fn refuse(kind: ConvertErrorKind, what: String, why: &str) -> Box<Fail> {
        let mut fail = Fail::new(kind, what, why);
        fail.refused = true;
        fail
    }

    fn within(mut self: Box<Self>, seg: Seg) -> Box<Self> {
        self.rev_path.push(seg);
        self
    }

    /// serde_json cannot fail writing a `str` or number into a `Vec`; this keeps such an
    /// impossible error an error rather than a panic.
    fn write(err: impl fmt::Display) -> Box<Fail> {
        Fail::new(
            ConvertErrorKind::Value,
            format!("internal error writing JSON ({err})"),
            "",
        )
    }

    fn finish(self, root: &str, verb: &str) -> ConvertError {
        let path = render_path(root, &self.rev_path);
        let message = if self.refused {
            format!("cannot {verb} {} at {}{}", self.what, path, self.why)
        } else {
            format!("{} at {}{}", self.what, path, self.why)
        };
        ConvertError {
            kind: self.kind,
            path,
            message,
        }
    }
}

fn render_path(root: &str, rev_path: &[Seg]) -> String {
    let mut path = String::from(root);
    for seg in rev_path.iter().rev() {
        match seg {
            Seg::Index(i) => {
                let _ = write!(path, "[{i}]");
            }
            Seg::Key(key) if is_identifier(key) => {
                path.push('.');
                path.push_str(key);
            }
            Seg::Key(key) => {
                path.push('[');
                path.push_str(&serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}")));
                path.push(']');
            }
        }
    }
    path
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Open containers tracked without a heap allocation (most documents are shallow).
const INLINE_OPEN: usize = 32;

struct Encoder<S> {
    out: S,
    /// Addresses of the containers being written, outermost first: the first `INLINE_OPEN` in
    /// `open`, the rest in `deeper`. A container met again while it is still open is a cycle; a
    /// shared but finished one is not.
    open: [usize; INLINE_OPEN],
    deeper: Vec<usize>,
    depth: usize,
}

impl<S: Sink> Encoder<S> {
    fn new(out: S) -> Self {
        Encoder {
            out,
            open: [0; INLINE_OPEN],
            deeper: Vec::new(),
            depth: 0,
        }
    }

    fn value(&mut self, obj: &Bound<'_, PyAny>) -> Step {
        // Exact types first: one pointer compare each, in order of how common they are.
        if let Ok(s) = obj.cast_exact::<PyString>() {
            self.str(s)
        } else if let Ok(d) = obj.cast_exact::<PyDict>() {
            self.dict(d)
        } else if obj.is_exact_instance_of::<PyInt>() {
            self.int(obj)
        } else if let Ok(f) = obj.cast_exact::<PyFloat>() {
            self.float(f)
        } else if let Ok(l) = obj.cast_exact::<PyList>() {
            self.seq(obj, l.iter())
        } else if let Ok(b) = obj.cast_exact::<PyBool>() {
            self.out.bool(b.is_true());
            Ok(())
        } else if obj.is_none() {
            self.out.null();
            Ok(())
        } else if let Ok(t) = obj.cast_exact::<PyTuple>() {
            self.seq(obj, t.iter())
        }
        // Subclasses: str/int enums, OrderedDict, defaultdict, namedtuple, ... (bool cannot be
        // subclassed and was handled above, so `int` here never sees True/False.)
        else if let Ok(s) = obj.cast::<PyString>() {
            self.str(s)
        } else if let Ok(d) = obj.cast::<PyDict>() {
            self.dict(d)
        } else if let Ok(l) = obj.cast::<PyList>() {
            self.seq(obj, l.iter())
        } else if let Ok(t) = obj.cast::<PyTuple>() {
            self.seq(obj, t.iter())
        } else if obj.is_instance_of::<PyInt>() {
            self.int(obj)
        } else if let Ok(f) = obj.cast::<PyFloat>() {
            self.float(f)
        } else {
            Err(unsupported_type(obj))
        }
    }

    fn str(&mut self, s: &Bound<'_, PyString>) -> Step {
        match s.to_str() {
            Ok(text) => self.out.str(text),
            Err(_) => Err(Fail::refuse(
                ConvertErrorKind::Value,
                "str".to_owned(),
                ": it contains a lone surrogate and cannot be encoded as UTF-8",
            )),
        }
    }

    fn int(&mut self, obj: &Bound<'_, PyAny>) -> Step {
        if let Ok(v) = obj.extract::<i64>() {
            self.out.i64(v)
        } else if let Ok(v) = obj.extract::<u64>() {
            self.out.u64(v)
        } else {
            Err(Fail::refuse(
                ConvertErrorKind::Value,
                format!("int {}", short_repr(obj)),
                ": out of range, JSON integers here must be between -2**63 and 2**64-1; \
                 store it as str(value)",
            ))
        }
    }

    fn float(&mut self, f: &Bound<'_, PyFloat>) -> Step {
        let v = f.value();
        if !v.is_finite() {
            return Err(Fail::refuse(
                ConvertErrorKind::Value,
                format!("float {}", short_repr(f.as_any())),
                ": JSON has no NaN/Infinity",
            ));
        }
        self.out.f64(v)
    }

    fn dict(&mut self, d: &Bound<'_, PyDict>) -> Step {
        self.enter(d.as_any())?;
        self.out.begin_object();
        let mut first = true;
        for (key, value) in d.iter() {
            let key = dict_key(&key)?;
            self.out.key(key, first)?;
            first = false;
            self.value(&value)
                .map_err(|fail| fail.within(Seg::Key(key.to_owned())))?;
        }
        self.out.end_object();
        self.leave();
        Ok(())
    }

    fn seq<'py>(
        &mut self,
        container: &Bound<'py, PyAny>,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
    ) -> Step {
        self.enter(container)?;
        self.out.begin_array();
        for (i, item) in items.enumerate() {
            self.out.item(i == 0);
            self.value(&item)
                .map_err(|fail| fail.within(Seg::Index(i)))?;
        }
        self.out.end_array();
        self.leave();
        Ok(())
    }

    /// Open a container; the caller closes it with `leave`.
    fn enter(&mut self, container: &Bound<'_, PyAny>) -> Step {
        let addr = container.as_ptr() as usize;
        let inline = self.depth.min(INLINE_OPEN);
        if self.open[..inline].contains(&addr) || self.deeper.contains(&addr) {
            return Err(Fail::new(
                ConvertErrorKind::Value,
                "circular reference".to_owned(),
                ": the value contains itself",
            ));
        }
        if self.depth == MAX_DEPTH {
            return Err(Fail::new(
                ConvertErrorKind::Value,
                format!("nesting deeper than {MAX_DEPTH} levels"),
                ": flatten the value or store the inner part separately",
            ));
        }
        match self.open.get_mut(self.depth) {
            Some(slot) => *slot = addr,
            None => self.deeper.push(addr),
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
        if self.depth >= INLINE_OPEN {
            self.deeper.pop();
        }
    }
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Step {
    if has_special_byte(s.as_bytes()) {
        // serde_json's own escaping, so stored strings are byte-identical to serde_json output.
        serde_json::to_writer(out, s).map_err(Fail::write)
    } else {
        // Exactly the bytes serde_json would write, in one copy instead of its small writes.
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    }
}

/// The text of a dict key, or the error for the dict's path (the caller adds no segment).
fn dict_key<'a>(key: &'a Bound<'_, PyAny>) -> Result<&'a str, Box<Fail>> {
    let Ok(s) = key.cast::<PyString>() else {
        return Err(Fail::refuse(
            ConvertErrorKind::Type,
            format!("dict key {} of type {}", short_repr(key), type_name(key)),
            ": JSON object keys must be str; convert it first, e.g. str(key)",
        ));
    };
    s.to_str().map_err(|_| {
        Fail::refuse(
            ConvertErrorKind::Value,
            format!("dict key {}", short_repr(key)),
            ": it contains a lone surrogate and cannot be encoded as UTF-8",
        )
    })
}

fn unsupported_type(obj: &Bound<'_, PyAny>) -> Box<Fail> {
    Fail::refuse(
        ConvertErrorKind::Type,
        format!("value of type {}", type_name(obj)),
        conversion_hint(&obj.get_type()),
    )
}

/// Suggestion for a rejected type, found by walking its MRO so subclasses get it too.
fn conversion_hint(ty: &Bound<'_, PyType>) -> &'static str {
    for base in ty.mro().iter() {
        let Ok(base) = base.cast::<PyType>() else {
            continue;
        };
        let (Ok(module), Ok(name)) = (base.module(), base.qualname()) else {
            continue;
        };
        let (Ok(module), Ok(name)) = (module.to_str(), name.to_str()) else {
            continue;
        };
        match (module, name) {
            ("datetime", "datetime" | "date" | "time") => {
                return ": convert it first, e.g. value.isoformat()";
            }
            ("builtins", "bytes" | "bytearray" | "memoryview") => {
                return ": decode or base64-encode it first";
            }
            ("builtins", "set" | "frozenset") => {
                return ": convert it first, e.g. list(value)";
            }
            ("decimal", "Decimal") => return ": convert it first, e.g. float(value) or str(value)",
            ("uuid", "UUID") => return ": convert it first, e.g. str(value)",
            _ => {}
        }
    }
    ": convert it to dict, list, str, int, float, bool or None"
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "<unknown>".to_owned(), |name| name.to_string())
}

/// `repr(obj)` for messages, cut short so a huge int or key cannot flood the message.
fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    const MAX_CHARS: usize = 60;
    let Ok(repr) = obj.repr() else {
        return format!("<{} that has no repr>", type_name(obj));
    };
    let repr = repr.to_string_lossy();
    if repr.chars().count() <= MAX_CHARS {
        repr.into_owned()
    } else {
        let head: String = repr.chars().take(MAX_CHARS).collect();
        format!("{head}...")
    }
}
