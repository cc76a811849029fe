//! JSON -> Python: `json_to_py` runs the parser with a sink that builds Python objects as it
//! goes (dict, list, str, int, float, bool, None), reusing object-key strings through a small
//! cache; `validate_json` is [`crate::json::validate`] with Python's `ValueError`. The few raw
//! CPython calls that make building cheap are wrapped here in safe functions.

use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};

use crate::json::{self, Fail, Parser, Sink, Step};

/// Decode JSON bytes straight into Python objects.
///
/// Objects become `dict` in document order (a repeated key keeps its first position and its
/// last value, as `json.loads` does), arrays `list`, integers that fit `i64` or `u64` `int`,
/// every other number `float` (`-0` included, as `-0.0`). Accepts exactly what serde_json
/// accepts: malformed JSON (including trailing data, invalid UTF-8, lone surrogate escapes,
/// numbers beyond `f64` and nesting deeper than [`MAX_DEPTH`](crate::json::MAX_DEPTH)) raises
/// `ValueError` naming line and column in serde_json's words.
pub fn json_to_py(py: Python<'_>, json: &[u8]) -> PyResult<Py<PyAny>> {
    let mut sink = Build {
        py,
        // Busy (another thread, or a finalizer re-entering during this decode): go without.
        shared: match SHARED.try_lock() {
            Ok(shared) => Some(shared),
            // Every key slot is always a whole entry and `items` is emptied before use, so a
            // panic elsewhere cannot leave anything torn.
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        },
        items: Vec::new(),
        pending: None,
    };
    if let Some(shared) = sink.shared.as_mut() {
        sink.items = std::mem::take(&mut shared.items);
    }
    let mut parser = Parser::new(json);
    match parser.document(&mut sink) {
        Ok(value) => Ok(value.unbind()),
        Err(Fail) => Err(match sink.pending.take() {
            Some(err) => err,
            None => invalid_json(&parser),
        }),
    }
}

/// Check that `text` is exactly one valid JSON document; the caller then stores `text`'s bytes
/// unchanged. Otherwise `ValueError` naming line and column.
///
/// It accepts exactly what [`json_to_py`] can read back (the same parser, building nothing):
/// strings are unescaped and surrogate-checked and numbers range-checked, so `"\ud800"` and
/// `1e400` are refused.
pub fn validate_json(text: &str) -> PyResult<()> {
    json::validate(text).map_err(|err| PyValueError::new_err(format!("invalid JSON: {err}")))
}

fn invalid_json(parser: &Parser<'_>) -> PyErr {
    match &parser.error {
        Some(err) => PyValueError::new_err(format!("invalid JSON: {err}")),
        None => PyValueError::new_err("invalid JSON"),
    }
}

/// Builds the Python objects of one document.
struct Build<'py> {
    py: Python<'py>,
    /// The shared key cache and item stack, held for the whole call when they were free.
    shared: Option<MutexGuard<'static, Shared>>,
    /// Items of the arrays being read, innermost array's last; the shared stack's allocation
    /// when there is one, given back at the end.
    items: Vec<Py<PyAny>>,
    /// A Python error met while building (only `MemoryError` in practice), kept so it reaches
    /// the caller unchanged.
    pending: Option<PyErr>,
}

impl Drop for Build<'_> {
    fn drop(&mut self) {
        // Items of arrays left open by an error, dropped while still attached.
        self.items.clear();
        // Kept for the next call unless one huge array grew it.
        if self.items.capacity() <= KEPT_ITEMS_MAX {
            if let Some(shared) = self.shared.as_mut() {
                shared.items = std::mem::take(&mut self.items);
            }
        }
    }
}

impl<'py> Build<'py> {
    /// Keeps `result`'s value, or its error for the caller.
    #[inline(always)]
    fn keep<T>(&mut self, result: PyResult<T>) -> Step<T> {
        result.map_err(|err| self.fail(err))
    }

    #[cold]
    fn fail(&mut self, err: PyErr) -> Fail {
        self.pending = Some(err);
        Fail
    }
}

impl<'py> Sink for Build<'py> {
    type Value = Bound<'py, PyAny>;
    type Key = Bound<'py, PyString>;
    type Object = Bound<'py, PyDict>;

    fn null(&mut self) -> Step<Self::Value> {
        Ok(self.py.None().into_bound(self.py))
    }

    fn bool(&mut self, v: bool) -> Step<Self::Value> {
        Ok(PyBool::new(self.py, v).to_owned().into_any())
    }

    fn i64(&mut self, v: i64) -> Step<Self::Value> {
        let int = new_int(self.py, v);
        self.keep(int)
    }

    fn u64(&mut self, v: u64) -> Step<Self::Value> {
        let int = match i64::try_from(v) {
            Ok(small) => new_int(self.py, small),
            Err(_) => new_uint(self.py, v),
        };
        self.keep(int)
    }

    fn f64(&mut self, v: f64) -> Step<Self::Value> {
        let float = new_float(self.py, v);
        self.keep(float)
    }

    fn str(&mut self, s: &str) -> Step<Self::Value> {
        let string = new_str(self.py, s).map(Bound::into_any);
        self.keep(string)
    }

    fn key(&mut self, s: &str) -> Step<Self::Key> {
        let key = match self.shared.as_mut() {
            Some(shared) => shared.keys.get(self.py, s),
            None => new_str(self.py, s),
        };
        self.keep(key)
    }

    fn known_key(&mut self, raw: &[u8]) -> Option<Self::Key> {
        self.shared.as_ref()?.keys.lookup(self.py, raw)
    }

    fn object_begin(&mut self) -> Step<Self::Object> {
        let dict = new_dict(self.py);
        self.keep(dict)
    }

    fn object_insert(
        &mut self,
        object: &Self::Object,
        key: Self::Key,
        value: Self::Value,
    ) -> Step<()> {
        let inserted = dict_set(object, &key, &value);
        self.keep(inserted)
    }

    fn object_end(&mut self, object: Self::Object) -> Self::Value {
        object.into_any()
    }

    fn array_begin(&mut self) -> usize {
        self.items.len()
    }

    fn array_push(&mut self, item: Self::Value) {
        self.items.push(item.unbind());
    }

    fn array_end(&mut self, mark: usize) -> Step<Self::Value> {
        let list = new_list(self.py, &mut self.items, mark);
        self.keep(list)
    }
}

// ---------------------------------------------------------------------------------------------
// Object constructors: direct CPython calls whose NULL result becomes the pending exception
// (where pyo3's constructors would panic on `MemoryError`), and `new_str`, which writes
// strings in CPython's final layout instead of going through its UTF-8 decoder.

fn new_int(py: Python<'_>, v: i64) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: PyLong_FromLongLong returns a new reference or NULL with an exception set, which
    // is the contract of `from_owned_ptr_or_err`; we are attached to the interpreter (`py`).
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromLongLong(v)) }
}

fn new_uint(py: Python<'_>, v: u64) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: as in `new_int`.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyLong_FromUnsignedLongLong(v)) }
}

fn new_float(py: Python<'_>, v: f64) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: as in `new_int`.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyFloat_FromDouble(v)) }
}

fn new_dict(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    // SAFETY: as in `new_int`; PyDict_New returns a dict, so the downcast is exact.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDict_New()).map(|d| d.cast_into_unchecked()) }
}

/// `dict[key] = value`, straight to `PyDict_SetItem` (pyo3's `set_item` adds generic
/// conversions around the same call).
fn dict_set(
    dict: &Bound<'_, PyDict>,
    key: &Bound<'_, PyString>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // SAFETY: all three pointers are live objects for the duration of the call (borrowed from
    // `Bound`s); PyDict_SetItem takes its own references to key and value, returns 0 on
    // success and -1 with an exception set on failure.
    if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(dict.py()))
    }
}

/// A new `str` holding `text`, written straight into CPython's compact representation.
///
/// CPython's own UTF-8 decoder (`PyUnicode_FromStringAndSize`) checks the bytes again, and for
/// non-ASCII text guesses the width and widens as it goes; `text` is already valid UTF-8, so
/// this works out the exact length and width first and writes each character once (about
/// three times faster on non-ASCII text).
pub fn new_str<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
    if text.is_ascii() {
        return new_compact_str(py, text.len(), 127, |chars| {
            if let Chars::One(out) = chars {
                for (slot, &byte) in out.iter_mut().zip(text.as_bytes()) {
                    slot.write(byte);
                }
            }
        });
    }
    // One pass for both: characters are the bytes that do not continue a sequence, and the
    // widest character follows from the largest lead byte alone (valid UTF-8 has no overlong
    // forms): up to 0xC3 only U+0080..U+00FF occur, up to 0xEF nothing beyond U+FFFF, and a
    // 4-byte lead means a character beyond U+FFFF. So the width chosen is always the narrowest
    // that fits, as CPython requires of every str.
    let (len, largest_byte) = text
        .as_bytes()
        .iter()
        .fold((0usize, 0u8), |(len, largest), &b| {
            (len + usize::from((b as i8) >= -0x40), largest.max(b))
        });
    let max_char = match largest_byte {
        0x00..=0xC3 => 0xFF,
        0xC4..=0xEF => 0xFFFF,
        0xF0..=0xFF => 0x10_FFFF,
    };
    new_compact_str(py, len, max_char, |chars| match chars {
        Chars::One(out) => {
            for (slot, c) in out.iter_mut().zip(text.chars()) {
                slot.write(c as u32 as u8); // every char is <= U+00FF here
            }
        }
        Chars::Two(out) => {
            for (slot, c) in out.iter_mut().zip(text.chars()) {
                slot.write(c as u32 as u16); // every char is <= U+FFFF here
            }
        }
        Chars::Four(out) => {
            for (slot, c) in out.iter_mut().zip(text.chars()) {
                slot.write(c as u32);
            }
        }
    })
}

/// A new list of new `str`s, one per item of `texts` (built as [`new_str`] does, stored
/// straight into their slots): how `find` hands out keys.
pub fn str_list<'py, T: AsRef<str>>(py: Python<'py>, texts: &[T]) -> PyResult<Bound<'py, PyList>> {
    let Ok(len) = ffi::Py_ssize_t::try_from(texts.len()) else {
        return Err(pyo3::exceptions::PyOverflowError::new_err("list too long"));
    };
    // SAFETY: PyList_New(len) returns a new list of `len` NULL slots (or NULL with an exception
    // set), not yet shared; owning it as a `Bound` right away means an early return frees it
    // (list_dealloc skips NULL slots). PyList_SET_ITEM stores into slot `i < len` (the
    // enumeration of `texts`, whose length is `len`) and steals the new reference `into_ptr`
    // gives; each slot is written once, so the list is complete before it is shared.
    unsafe {
        let list = Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len))?;
        for (i, text) in texts.iter().enumerate() {
            let item = new_str(py, text.as_ref())?;
            ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr());
        }
        Ok(list.cast_into_unchecked())
    }
}

/// The character buffer of a new `str`, by width.
enum Chars<'a> {
    One(&'a mut [MaybeUninit<u8>]),
    Two(&'a mut [MaybeUninit<u16>]),
    Four(&'a mut [MaybeUninit<u32>]),
}

/// A new compact `str` of `len` characters, the widest being `max_char` (127, 0xFF, 0xFFFF or
/// 0x10FFFF), whose buffer `fill` gets. `fill` must write every character, and at least one
/// must need the full width (CPython's canonical form); otherwise the `str` holds garbage, but
/// no memory is touched outside it.
#[inline(always)]
fn new_compact_str<'py>(
    py: Python<'py>,
    len: usize,
    max_char: ffi::Py_UCS4,
    fill: impl FnOnce(Chars<'_>),
) -> PyResult<Bound<'py, PyString>> {
    let Ok(size) = ffi::Py_ssize_t::try_from(len) else {
        return Err(pyo3::exceptions::PyOverflowError::new_err(
            "string too long",
        ));
    };
    // SAFETY: PyUnicode_New(size, max_char) returns a new, not yet shared, compact string with
    // room for `size` characters of 1 (max_char < 256), 2 (< 65536) or 4 bytes (CPython adds
    // the terminating NUL), or NULL with an exception set. PyUnicode_DATA of a compact string
    // is that buffer, which follows the object header and so is aligned for any width; it is
    // uninitialised, hence `MaybeUninit`. The slice is dropped before the object is shared.
    // (For `size == 0` CPython may return its shared empty string; the slice is then empty.)
    unsafe {
        let ptr = ffi::PyUnicode_New(size, max_char);
        if ptr.is_null() {
            return Err(PyErr::fetch(py));
        }
        let data = ffi::PyUnicode_DATA(ptr);
        fill(match max_char {
            0..=0xFF => Chars::One(std::slice::from_raw_parts_mut(data.cast(), len)),
            0x100..=0xFFFF => Chars::Two(std::slice::from_raw_parts_mut(data.cast(), len)),
            _ => Chars::Four(std::slice::from_raw_parts_mut(data.cast(), len)),
        });
        Ok(Bound::from_owned_ptr(py, ptr).cast_into_unchecked())
    }
}

/// A new list of `items[mark..]`, which are moved out (leaving `items[..mark]`).
fn new_list<'py>(
    py: Python<'py>,
    items: &mut Vec<Py<PyAny>>,
    mark: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let mark = mark.min(items.len());
    let Ok(len) = ffi::Py_ssize_t::try_from(items.len() - mark) else {
        return Err(pyo3::exceptions::PyOverflowError::new_err("array too long"));
    };
    // SAFETY: PyList_New(len) returns a new list of `len` NULL slots (or NULL with an exception
    // set), not yet shared. PyList_SET_ITEM stores into slot `i` without bounds checks and
    // steals the reference: `i` runs over `0..len` (last first) and each slot is written once
    // with a new reference from `into_ptr`, so the list is complete before it is returned.
    // (`pop` always yields, as `items` holds `mark + len`; `None` would only fill a gap.)
    unsafe {
        let list = ffi::PyList_New(len);
        if list.is_null() {
            return Err(PyErr::fetch(py));
        }
        for i in (0..len).rev() {
            let item = items.pop().unwrap_or_else(|| py.None());
            ffi::PyList_SET_ITEM(list, i, item.into_ptr());
        }
        Ok(Bound::from_owned_ptr(py, list))
    }
}

// ---------------------------------------------------------------------------------------------
// State kept between calls

/// What `json_to_py` keeps between calls: the key cache and the item stack's allocation. Only
/// touched while attached to the interpreter.
static SHARED: Mutex<Shared> = Mutex::new(Shared {
    keys: KeyCache { slots: Vec::new() },
    items: Vec::new(),
});

struct Shared {
    keys: KeyCache,
    /// Always empty between calls; kept for its capacity (at most [`KEPT_ITEMS_MAX`]).
    items: Vec<Py<PyAny>>,
}

/// The largest item stack kept between calls (64 KiB of pointers); a bigger one, grown by a
/// huge array, is freed instead of staying allocated for good.
const KEPT_ITEMS_MAX: usize = 8192;

/// Object keys of at most this many bytes go through the [`KeyCache`].
const CACHED_KEY_MAX_LEN: usize = 64;
/// Slots in the [`KeyCache`] (a power of two).
const KEY_CACHE_SLOTS: usize = 1024;

/// Recently decoded object keys, direct-mapped by a hash of their text.
///
/// Documents repeat the same few keys endlessly; reusing the `str` (whose Python hash is already
/// computed) saves a string allocation, a copy and a hash per key, the trick orjson uses. At
/// most `KEY_CACHE_SLOTS` short strings stay alive.
struct KeyCache {
    slots: Vec<Option<CachedKey>>,
}

struct CachedKey {
    text: Box<str>,
    key: Py<PyString>,
}

impl KeyCache {
    /// The cached key spelled by `raw`, if any.
    #[inline(always)]
    fn lookup<'py>(&self, py: Python<'py>, raw: &[u8]) -> Option<Bound<'py, PyString>> {
        if raw.len() > CACHED_KEY_MAX_LEN {
            return None;
        }
        match self.slots.get(key_slot(raw)) {
            Some(Some(hit)) if same_bytes(hit.text.as_bytes(), raw) => {
                Some(hit.key.bind(py).clone())
            }
            _ => None,
        }
    }

    /// The key for `text`, from the cache or made (and then cached).
    fn get<'py>(&mut self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyString>> {
        if let Some(key) = self.lookup(py, text.as_bytes()) {
            return Ok(key);
        }
        let key = new_str(py, text)?;
        if text.len() > CACHED_KEY_MAX_LEN {
            return Ok(key);
        }
        if self.slots.is_empty() {
            self.slots.resize_with(KEY_CACHE_SLOTS, || None);
        }
        let slot = key_slot(text.as_bytes());
        // Computed once here, then cached inside the str for every dict that uses it.
        if key.hash().is_ok() {
            if let Some(entry) = self.slots.get_mut(slot) {
                *entry = Some(CachedKey {
                    text: text.into(),
                    key: key.clone().unbind(),
                });
            }
        }
        Ok(key)
    }
}

/// `a == b` for short slices, by overlapping word compares instead of a `memcmp` call.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word<const N: usize>(bytes: &[u8], at: usize) -> Option<&[u8; N]> {
        bytes.get(at..).and_then(<[u8]>::first_chunk::<N>)
    }
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len >= 8 {
        // Whole words from the front, then the last eight bytes (overlapping the previous word).
        let mut i = 0;
        while i + 8 <= len {
            if word::<8>(a, i) != word::<8>(b, i) {
                return false;
            }
            i += 8;
        }
        word::<8>(a, len - 8) == word::<8>(b, len - 8)
    } else if len >= 4 {
        word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, len - 4) == word::<4>(b, len - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// The slot for the key spelled `bytes`: a multiply-shift hash of its length and up to three words read from
/// its start, middle and end (overlapping for short keys). Keys that differ only elsewhere
/// share a slot, which costs a miss now and then, never a wrong key.
fn key_slot(bytes: &[u8]) -> usize {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
        bytes
            .get(at..)
            .and_then(<[u8]>::first_chunk::<N>)
            .copied()
            .unwrap_or([0; N])
    }
    let len = bytes.len();
    let (a, b) = if len >= 8 {
        let head = u64::from_le_bytes(word::<8>(bytes, 0));
        let tail = u64::from_le_bytes(word::<8>(bytes, len - 8));
        let middle = u64::from_le_bytes(word::<8>(bytes, (len - 8) / 2));
        (head ^ middle.rotate_left(32), tail)
    } else if len >= 4 {
        let head = u32::from_le_bytes(word::<4>(bytes, 0));
        let tail = u32::from_le_bytes(word::<4>(bytes, len - 4));
        (u64::from(head), u64::from(tail))
    } else {
        let first = bytes.first().copied().unwrap_or(0);
        let middle = bytes.get(len / 2).copied().unwrap_or(0);
        let last = bytes.last().copied().unwrap_or(0);
        (u64::from(first) | u64::from(middle) << 8, u64::from(last))
    };
    let hash = ((a ^ len as u64).wrapping_mul(K).rotate_left(31) ^ b).wrapping_mul(K);
    (hash >> (64 - KEY_CACHE_SLOTS.trailing_zeros())) as usize
}
