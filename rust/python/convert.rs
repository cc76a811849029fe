//! Python value <-> JSON bytes for the document hot path, and the value rules that go with it.
//! It transcodes directly: `py_to_json` walks Python objects and writes through serde_json's
//! formatter, `json_to_py` drives serde_json's parser with a visitor that builds Python objects.
//! No `serde_json::Value`, pythonize round trip or Python `json` module sits in between, which
//! is what keeps set/get near orjson speed.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyNone, PyString, PyTuple, PyType};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::ser::{CompactFormatter, Formatter};

/// Most containers (dict, list, tuple) that may be nested inside one another in a stored value.
///
/// 127 rather than a round 256: serde_json's parser refuses the 128th nested level (its fixed
/// recursion limit, liftable only through the `unbounded_depth` feature), so anything deeper
/// could be written but never read back by [`json_to_py`] or accepted by [`validate_json`].
/// Keeping the writer's limit equal to the reader's makes every accepted value readable.
pub const MAX_DEPTH: usize = 127;

/// Why a Python value was rejected.
///
/// `path` names the offending place, like `$`, `$.address.city`, `$.tags[2]` or
/// `$["a key with spaces"]`. `message` is the complete sentence shown to the user and already
/// contains `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// Which exception this becomes.
    pub kind: ConvertErrorKind,
    /// Where in the value the problem is, `$` being the value itself.
    pub path: String,
    /// The full sentence for the user, path included.
    pub message: String,
}

/// Which Python exception a [`ConvertError`] becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertErrorKind {
    /// The value has a type JSON cannot hold (-> `TypeError`).
    Type,
    /// The type is fine but this value is not (NaN, huge int, lone surrogate, cycle, too deep)
    /// (-> `ValueError`).
    Value,
}

impl ConvertError {
    /// The Python exception for this error: `TypeError` or `ValueError` carrying `message`.
    pub fn into_pyerr(self) -> PyErr {
        match self.kind {
            ConvertErrorKind::Type => PyTypeError::new_err(self.message),
            ConvertErrorKind::Value => PyValueError::new_err(self.message),
        }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConvertError {}

impl From<ConvertError> for PyErr {
    fn from(err: ConvertError) -> PyErr {
        err.into_pyerr()
    }
}

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
    let mut encoder = Encoder {
        out,
        open: [0; INLINE_OPEN],
        deeper: Vec::new(),
        depth: 0,
    };
    encoder.value(obj).map_err(|fail| fail.finish())
}

/// Decode JSON bytes straight into Python objects.
///
/// Objects become `dict` in document order (a repeated key keeps its first position and its
/// last value, as `json.loads` does), arrays `list`, integers that fit `i64` or `u64` `int`,
/// every other number `float`. Malformed JSON (including trailing data, lone surrogate escapes
/// and nesting deeper than [`MAX_DEPTH`]) raises `ValueError` naming line and column.
pub fn json_to_py(py: Python<'_>, json: &[u8]) -> PyResult<Py<PyAny>> {
    let ctx = DecodeCtx {
        py,
        pending: Cell::new(None),
        // Busy (another thread, or a finalizer re-entering during this decode): go without.
        keys: match KEY_CACHE.try_lock() {
            Ok(keys) => Some(RefCell::new(keys)),
            // Every slot is always a whole entry, so a panic elsewhere cannot leave it torn.
            Err(TryLockError::Poisoned(poisoned)) => Some(RefCell::new(poisoned.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        },
    };
    let seed = ValueSeed(&ctx);
    // One UTF-8 check of the whole input lets serde_json lend string slices without checking
    // each one again; invalid input takes the byte path so the error still names a position.
    let decoded = match std::str::from_utf8(json) {
        Ok(text) => decode(seed, serde_json::Deserializer::from_str(text)),
        Err(_) => decode(seed, serde_json::Deserializer::from_slice(json)),
    };
    match decoded {
        Ok(value) => Ok(value.unbind()),
        Err(err) => Err(ctx.pending.take().unwrap_or_else(|| invalid_json(&err))),
    }
}

/// Check that `text` is exactly one valid JSON document; the caller then stores `text`'s bytes
/// unchanged. Otherwise `ValueError` naming line and column.
///
/// It accepts exactly what [`json_to_py`] can read back. That is stricter than
/// `serde_json::from_str::<IgnoredAny>`, which skips string and number contents and so lets
/// `"\ud800"` (lone surrogate) and `1e400` (out of f64 range) through.
pub fn validate_json(text: &str) -> PyResult<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    Checked
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|err| invalid_json(&err))
}

fn decode<'de, 'py, R: serde_json::de::Read<'de>>(
    seed: ValueSeed<'_, 'py>,
    mut de: serde_json::Deserializer<R>,
) -> serde_json::Result<Bound<'py, PyAny>> {
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

fn invalid_json(err: &serde_json::Error) -> PyErr {
    PyValueError::new_err(format!("invalid JSON: {err}"))
}

// ---------------------------------------------------------------------------------------------
// Python -> JSON

/// One step of a path, collected from the failing value outwards while the error propagates,
/// so the success path never builds one.
enum Seg {
    Key(String),
    Index(usize),
}

/// A rejection before its path is known. Boxed so `Result<(), Box<Fail>>` stays one word.
struct Fail {
    kind: ConvertErrorKind,
    /// Text before the path, like `cannot store value of type datetime`.
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
            what,
            why: why.to_owned(),
            rev_path: Vec::new(),
        })
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

    fn finish(self) -> ConvertError {
        let path = render_path(&self.rev_path);
        let message = format!("{} at {}{}", self.what, path, self.why);
        ConvertError {
            kind: self.kind,
            path,
            message,
        }
    }
}

fn render_path(rev_path: &[Seg]) -> String {
    let mut path = String::from("$");
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

struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    /// Addresses of the containers being written, outermost first: the first `INLINE_OPEN` in
    /// `open`, the rest in `deeper`. A container met again while it is still open is a cycle; a
    /// shared but finished one is not.
    open: [usize; INLINE_OPEN],
    deeper: Vec<usize>,
    depth: usize,
}

impl Encoder<'_> {
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
            self.out
                .extend_from_slice(if b.is_true() { b"true" } else { b"false" });
            Ok(())
        } else if obj.is_none() {
            self.out.extend_from_slice(b"null");
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
            Ok(text) => write_str(self.out, text),
            Err(_) => Err(Fail::new(
                ConvertErrorKind::Value,
                "cannot store str".to_owned(),
                ": it contains a lone surrogate and cannot be encoded as UTF-8",
            )),
        }
    }

    fn int(&mut self, obj: &Bound<'_, PyAny>) -> Step {
        let written = if let Ok(v) = obj.extract::<i64>() {
            CompactFormatter.write_i64(&mut *self.out, v)
        } else if let Ok(v) = obj.extract::<u64>() {
            CompactFormatter.write_u64(&mut *self.out, v)
        } else {
            return Err(Fail::new(
                ConvertErrorKind::Value,
                format!("cannot store int {}", short_repr(obj)),
                ": out of range, JSON integers here must be between -2**63 and 2**64-1; \
                 store it as str(value)",
            ));
        };
        written.map_err(Fail::write)
    }

    fn float(&mut self, f: &Bound<'_, PyFloat>) -> Step {
        let v = f.value();
        if !v.is_finite() {
            return Err(Fail::new(
                ConvertErrorKind::Value,
                format!("cannot store float {}", short_repr(f.as_any())),
                ": JSON has no NaN/Infinity",
            ));
        }
        CompactFormatter
            .write_f64(&mut *self.out, v)
            .map_err(Fail::write)
    }

    fn dict(&mut self, d: &Bound<'_, PyDict>) -> Step {
        self.enter(d.as_any())?;
        self.out.push(b'{');
        let mut first = true;
        for (key, value) in d.iter() {
            if !first {
                self.out.push(b',');
            }
            first = false;
            let key = dict_key(&key)?;
            write_str(self.out, key)?;
            self.out.push(b':');
            self.value(&value)
                .map_err(|fail| fail.within(Seg::Key(key.to_owned())))?;
        }
        self.out.push(b'}');
        self.leave();
        Ok(())
    }

    fn seq<'py>(
        &mut self,
        container: &Bound<'py, PyAny>,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
    ) -> Step {
        self.enter(container)?;
        self.out.push(b'[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.value(&item)
                .map_err(|fail| fail.within(Seg::Index(i)))?;
        }
        self.out.push(b']');
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
    if needs_escape(s.as_bytes()) {
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

/// Whether serde_json would escape any byte: `"`, `\` and everything below 0x20 (nothing
/// else). Checks eight bytes per step with the SWAR "has a byte below n" trick, which is exact
/// as a yes/no answer.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    fn has_byte_below(word: u64, n: u8) -> bool {
        word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0
    }
    fn hit(word: u64) -> bool {
        has_byte_below(word, 0x20)
            || has_byte_below(word ^ (ONES * u64::from(b'"')), 1)
            || has_byte_below(word ^ (ONES * u64::from(b'\\')), 1)
    }
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if hit(u64::from_le_bytes(word)) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// The text of a dict key, or the error for the dict's path (the caller adds no segment).
fn dict_key<'a>(key: &'a Bound<'_, PyAny>) -> Result<&'a str, Box<Fail>> {
    let Ok(s) = key.cast::<PyString>() else {
        return Err(Fail::new(
            ConvertErrorKind::Type,
            format!(
                "cannot store dict key {} of type {}",
                short_repr(key),
                type_name(key)
            ),
            ": JSON object keys must be str; convert it first, e.g. str(key)",
        ));
    };
    s.to_str().map_err(|_| {
        Fail::new(
            ConvertErrorKind::Value,
            format!("cannot store dict key {}", short_repr(key)),
            ": it contains a lone surrogate and cannot be encoded as UTF-8",
        )
    })
}

fn unsupported_type(obj: &Bound<'_, PyAny>) -> Box<Fail> {
    Fail::new(
        ConvertErrorKind::Type,
        format!("cannot store value of type {}", type_name(obj)),
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

// ---------------------------------------------------------------------------------------------
// JSON -> Python

/// State shared by one `json_to_py` call.
struct DecodeCtx<'py> {
    py: Python<'py>,
    /// A Python error met while building (only `MemoryError` in practice), kept so it reaches
    /// the caller unchanged instead of as a serde message.
    pending: Cell<Option<PyErr>>,
    /// The shared key cache, held for the whole call when it was free.
    keys: Option<RefCell<MutexGuard<'static, KeyCache>>>,
}

impl<'py> DecodeCtx<'py> {
    fn fail<E: de::Error>(&self, err: PyErr) -> E {
        self.pending.set(Some(err));
        E::custom("Python error while building the value")
    }

    fn key(&self, text: &str) -> Bound<'py, PyString> {
        match self
            .keys
            .as_ref()
            .and_then(|keys| keys.try_borrow_mut().ok())
        {
            Some(mut keys) => keys.get(self.py, text),
            None => PyString::new(self.py, text),
        }
    }
}

/// Object keys of at most this many bytes go through [`KEY_CACHE`].
const CACHED_KEY_MAX_LEN: usize = 64;
/// Slots in [`KEY_CACHE`] (a power of two).
const KEY_CACHE_SLOTS: usize = 1024;

/// Recently decoded object keys, direct-mapped by a hash of their text.
///
/// Documents repeat the same few keys endlessly; reusing the `str` (whose Python hash is already
/// computed) saves a string allocation, a UTF-8 decode and a hash per key, the trick orjson uses.
/// Only touched while attached to the interpreter; at most `KEY_CACHE_SLOTS` short strings stay
/// alive.
static KEY_CACHE: Mutex<KeyCache> = Mutex::new(KeyCache { slots: Vec::new() });

struct KeyCache {
    slots: Vec<Option<CachedKey>>,
}

struct CachedKey {
    text: Box<str>,
    key: Py<PyString>,
}

impl KeyCache {
    fn get<'py>(&mut self, py: Python<'py>, text: &str) -> Bound<'py, PyString> {
        if text.len() > CACHED_KEY_MAX_LEN {
            return PyString::new(py, text);
        }
        if self.slots.is_empty() {
            self.slots.resize_with(KEY_CACHE_SLOTS, || None);
        }
        let slot = key_slot(text);
        if let Some(Some(hit)) = self.slots.get(slot) {
            if *hit.text == *text {
                return hit.key.bind(py).clone();
            }
        }
        let key = PyString::new(py, text);
        // Computed once here, then cached inside the str for every dict that uses it.
        if key.hash().is_ok() {
            if let Some(entry) = self.slots.get_mut(slot) {
                *entry = Some(CachedKey {
                    text: text.into(),
                    key: key.clone().unbind(),
                });
            }
        }
        key
    }
}

/// A multiply-rotate hash over the key, eight bytes at a time; the top bits pick the slot.
fn key_slot(text: &str) -> usize {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut hash = text.len() as u64;
    let mut chunks = text.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    let rest = chunks.remainder();
    let mut word = [0u8; 8];
    word[..rest.len()].copy_from_slice(rest);
    hash = (hash ^ u64::from_le_bytes(word)).wrapping_mul(K);
    (hash >> (64 - KEY_CACHE_SLOTS.trailing_zeros())) as usize
}

/// Builds the Python object for one JSON value.
#[derive(Clone, Copy)]
struct ValueSeed<'a, 'py>(&'a DecodeCtx<'py>);

impl<'de, 'py> DeserializeSeed<'de> for ValueSeed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, 'py> Visitor<'de> for ValueSeed<'_, 'py> {
    type Value = Bound<'py, PyAny>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(PyBool::new(self.0.py, v).to_owned().into_any())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0.py, v).into_any())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(PyInt::new(self.0.py, v).into_any())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(PyFloat::new(self.0.py, v).into_any())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0.py, v).into_any())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(PyString::new(self.0.py, v).into_any())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(PyNone::get(self.0.py).to_owned().into_any())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // JSON gives no length up front: gather, then build the list at its final size.
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        PyList::new(self.0.py, items)
            .map(Bound::into_any)
            .map_err(|err| self.0.fail(err))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let dict = PyDict::new(self.0.py);
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            let value = map.next_value_seed(self)?;
            dict.set_item(key, value).map_err(|err| self.0.fail(err))?;
        }
        Ok(dict.into_any())
    }
}

/// An object key, straight to a Python `str`: serde_json lends a slice of the input when the
/// key has no escapes, so no `String` is allocated for it.
struct KeySeed<'a, 'py>(&'a DecodeCtx<'py>);

impl<'de, 'py> DeserializeSeed<'de> for KeySeed<'_, 'py> {
    type Value = Bound<'py, PyString>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'py> Visitor<'de> for KeySeed<'_, 'py> {
    type Value = Bound<'py, PyString>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self.0.key(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.key(v))
    }
}

/// Parses every value as `json_to_py` would (strings unescaped and surrogate-checked, numbers
/// range-checked) but keeps nothing.
struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Checked)?.is_some() {
            map.next_value_seed(Checked)?;
        }
        Ok(())
    }
}
