//! The JSON grammar: a single-pass recursive-descent parser over bytes, generic over a [`Sink`]
//! that builds the values (Python objects in `python/convert`, nothing at all for [`super::validate`]). It
//! accepts exactly what `serde_json::from_slice` accepts, nesting limit included, and reports
//! errors with serde_json's wording and line/column, so replacing serde_json here changed no
//! result and no message. No Python and no `unsafe` in this file.

use std::fmt;

use super::scan::{digit_run, leading_digits_value, parse_u64, scan_plain, slice, POW10};
use super::MAX_DEPTH;

/// Marks a failed parse; the details wait in [`Parser::error`] (syntax) or in the sink (its own
/// failures), which keeps every `Result` in the hot path one word wide.
#[derive(Debug)]
pub(crate) struct Fail;

pub(crate) type Step<T> = Result<T, Fail>;

/// Receives the values of one document, innermost first, and assembles them.
pub(crate) trait Sink {
    type Value;
    type Key;
    type Object;

    fn null(&mut self) -> Step<Self::Value>;
    fn bool(&mut self, v: bool) -> Step<Self::Value>;
    fn i64(&mut self, v: i64) -> Step<Self::Value>;
    fn u64(&mut self, v: u64) -> Step<Self::Value>;
    fn f64(&mut self, v: f64) -> Step<Self::Value>;
    fn str(&mut self, s: &str) -> Step<Self::Value>;
    fn key(&mut self, s: &str) -> Step<Self::Key>;
    /// The key spelled by `raw` (a key without escapes) if the sink already has it, so the
    /// parser can skip making text of it. Bytes equal to a known key are valid UTF-8.
    fn known_key(&mut self, raw: &[u8]) -> Option<Self::Key>;
    fn object_begin(&mut self) -> Step<Self::Object>;
    /// A repeated key replaces the value but keeps its first position, as `json.loads` does.
    fn object_insert(
        &mut self,
        object: &Self::Object,
        key: Self::Key,
        value: Self::Value,
    ) -> Step<()>;
    fn object_end(&mut self, object: Self::Object) -> Self::Value;
    /// Items of open arrays wait on one stack shared by all levels; this returns the mark
    /// where the new array's items start.
    fn array_begin(&mut self) -> usize;
    fn array_push(&mut self, item: Self::Value);
    /// The array of everything pushed since `mark`.
    fn array_end(&mut self, mark: usize) -> Step<Self::Value>;
}

/// serde_json's error kinds that its parser can raise on a complete input, with its wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    EofWhileParsingList,
    EofWhileParsingObject,
    EofWhileParsingString,
    EofWhileParsingValue,
    ExpectedColon,
    ExpectedListCommaOrEnd,
    ExpectedObjectCommaOrEnd,
    ExpectedSomeIdent,
    ExpectedSomeValue,
    InvalidEscape,
    InvalidNumber,
    NumberOutOfRange,
    InvalidUnicodeCodePoint,
    ControlCharacterWhileParsingString,
    KeyMustBeAString,
    LoneLeadingSurrogateInHexEscape,
    TrailingComma,
    TrailingCharacters,
    UnexpectedEndOfHexEscape,
    RecursionLimitExceeded,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Code::EofWhileParsingList => "EOF while parsing a list",
            Code::EofWhileParsingObject => "EOF while parsing an object",
            Code::EofWhileParsingString => "EOF while parsing a string",
            Code::EofWhileParsingValue => "EOF while parsing a value",
            Code::ExpectedColon => "expected `:`",
            Code::ExpectedListCommaOrEnd => "expected `,` or `]`",
            Code::ExpectedObjectCommaOrEnd => "expected `,` or `}`",
            Code::ExpectedSomeIdent => "expected ident",
            Code::ExpectedSomeValue => "expected value",
            Code::InvalidEscape => "invalid escape",
            Code::InvalidNumber => "invalid number",
            Code::NumberOutOfRange => "number out of range",
            Code::InvalidUnicodeCodePoint => "invalid unicode code point",
            Code::ControlCharacterWhileParsingString => {
                "control character (\\u0000-\\u001F) found while parsing a string"
            }
            Code::KeyMustBeAString => "key must be a string",
            Code::LoneLeadingSurrogateInHexEscape => "lone leading surrogate in hex escape",
            Code::TrailingComma => "trailing comma",
            Code::TrailingCharacters => "trailing characters",
            Code::UnexpectedEndOfHexEscape => "unexpected end of hex escape",
            Code::RecursionLimitExceeded => "recursion limit exceeded",
        })
    }
}

/// Where and why the input is not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub code: Code,
    /// 1-based line.
    pub line: usize,
    /// serde_json's column: bytes from the start of the line up to and including the offending
    /// byte (so 1-based), or the line's length at end of input.
    pub column: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.code, self.line, self.column
        )
    }
}

pub(crate) struct Parser<'a> {
    bytes: &'a [u8],
    /// `bytes` as text when all of it is valid UTF-8 (checked once up front), so string
    /// contents need no check of their own; otherwise each string is checked as it is read.
    text: Option<&'a str>,
    /// Index of the next unread byte.
    pos: usize,
    /// Containers open around the current position.
    depth: usize,
    /// Unescaped contents of the current string, used only when it has escapes.
    scratch: Vec<u8>,
    /// Set when a syntax error stopped the parse.
    pub error: Option<SyntaxError>,
}

impl<'a> Parser<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Parser {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
            pos: 0,
            depth: 0,
            scratch: Vec::new(),
            error: None,
        }
    }

    pub fn from_str(text: &'a str) -> Self {
        Parser {
            bytes: text.as_bytes(),
            text: Some(text),
            pos: 0,
            depth: 0,
            scratch: Vec::new(),
            error: None,
        }
    }

    /// Exactly one value, optionally surrounded by whitespace.
    pub fn document<S: Sink>(&mut self, sink: &mut S) -> Step<S::Value> {
        let value = self.value(sink)?;
        match self.skip_ws() {
            Some(_) => Err(self.fail(Code::TrailingCharacters, self.pos)),
            None => Ok(value),
        }
    }

    /// Records a syntax error caused by the byte at `at` (or by the end of input when `at` is
    /// the input's length), positioned as serde_json positions it.
    #[cold]
    #[inline(never)]
    fn fail(&mut self, code: Code, at: usize) -> Fail {
        let index = (at + 1).min(self.bytes.len());
        self.fail_at_index(code, index, 0)
    }

    /// Records a syntax error at serde_json's position `index` (see [`syntax_error`]).
    #[cold]
    #[inline(never)]
    fn fail_at_index(&mut self, code: Code, index: usize, back: usize) -> Fail {
        self.error = Some(syntax_error(self.bytes, code, index, back));
        Fail
    }

    /// Skips JSON whitespace and returns the next byte without consuming it.
    #[inline(always)]
    fn skip_ws(&mut self) -> Option<u8> {
        loop {
            match self.bytes.get(self.pos) {
                Some(b' ' | b'\n' | b'\t' | b'\r') => self.pos += 1,
                other => return other.copied(),
            }
        }
    }

    /// One value of any kind. Inlined into the container loops, while the containers
    /// themselves stay out of line, so reading a scalar costs no call beyond its own.
    #[inline(always)]
    fn value<S: Sink>(&mut self, sink: &mut S) -> Step<S::Value> {
        let Some(first) = self.skip_ws() else {
            return Err(self.fail(Code::EofWhileParsingValue, self.pos));
        };
        match first {
            b'"' => {
                self.pos += 1;
                let s = self.string()?;
                sink.str(s)
            }
            b'{' => self.object(sink),
            b'[' => self.array(sink),
            b'-' | b'0'..=b'9' => self.number(sink),
            b't' => {
                self.literal(b"true")?;
                sink.bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                sink.bool(false)
            }
            b'n' => {
                self.literal(b"null")?;
                sink.null()
            }
            _ => Err(self.fail(Code::ExpectedSomeValue, self.pos)),
        }
    }

    /// `true`, `false` or `null` (`N` bytes), whose first byte is known to match. Compared as
    /// one fixed-size array, which compiles to a single word compare.
    #[inline(always)]
    fn literal<const N: usize>(&mut self, word: &[u8; N]) -> Step<()> {
        let found = self
            .bytes
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<N>);
        if found == Some(word) {
            self.pos += N;
            Ok(())
        } else {
            Err(self.literal_error(word))
        }
    }

    #[cold]
    fn literal_error(&mut self, word: &[u8]) -> Fail {
        for (i, &want) in word.iter().enumerate().skip(1) {
            let at = self.pos + i;
            match self.bytes.get(at) {
                None => return self.fail(Code::EofWhileParsingValue, at),
                Some(&got) if got != want => return self.fail(Code::ExpectedSomeIdent, at),
                Some(_) => {}
            }
        }
        // Unreachable: `literal` saw a mismatch. Report it as serde_json would a bad ident.
        self.fail(Code::ExpectedSomeIdent, self.pos)
    }

    /// Opens a container at `self.pos` (its bracket), refusing the 128th level as serde_json does.
    #[inline(always)]
    fn enter(&mut self) -> Step<()> {
        if self.depth == MAX_DEPTH {
            return Err(self.fail(Code::RecursionLimitExceeded, self.pos));
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    #[inline(never)]
    fn object<S: Sink>(&mut self, sink: &mut S) -> Step<S::Value> {
        self.enter()?;
        let object = sink.object_begin()?;
        match self.skip_ws() {
            Some(b'"') => {}
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(sink.object_end(object));
            }
            Some(_) => return Err(self.fail(Code::KeyMustBeAString, self.pos)),
            None => return Err(self.fail(Code::EofWhileParsingObject, self.pos)),
        }
        loop {
            // At the key's opening quote.
            self.pos += 1;
            let key = self.key(sink)?;
            match self.skip_ws() {
                Some(b':') => self.pos += 1,
                Some(_) => return Err(self.fail(Code::ExpectedColon, self.pos)),
                None => return Err(self.fail(Code::EofWhileParsingObject, self.pos)),
            }
            let value = self.value(sink)?;
            sink.object_insert(&object, key, value)?;
            match self.skip_ws() {
                Some(b',') => {
                    self.pos += 1;
                    match self.skip_ws() {
                        Some(b'"') => {}
                        Some(b'}') => return Err(self.fail(Code::TrailingComma, self.pos)),
                        Some(_) => return Err(self.fail(Code::KeyMustBeAString, self.pos)),
                        None => return Err(self.fail(Code::EofWhileParsingValue, self.pos)),
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(sink.object_end(object));
                }
                Some(_) => return Err(self.fail(Code::ExpectedObjectCommaOrEnd, self.pos)),
                None => return Err(self.fail(Code::EofWhileParsingObject, self.pos)),
            }
        }
    }

    #[inline(never)]
    fn array<S: Sink>(&mut self, sink: &mut S) -> Step<S::Value> {
        self.enter()?;
        let mark = sink.array_begin();
        match self.skip_ws() {
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                return sink.array_end(mark);
            }
            Some(_) => {}
            None => return Err(self.fail(Code::EofWhileParsingList, self.pos)),
        }
        loop {
            let item = self.value(sink)?;
            sink.array_push(item);
            match self.skip_ws() {
                Some(b',') => {
                    self.pos += 1;
                    match self.skip_ws() {
                        Some(b']') => return Err(self.fail(Code::TrailingComma, self.pos)),
                        Some(_) => {}
                        None => return Err(self.fail(Code::EofWhileParsingValue, self.pos)),
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return sink.array_end(mark);
                }
                Some(_) => return Err(self.fail(Code::ExpectedListCommaOrEnd, self.pos)),
                None => return Err(self.fail(Code::EofWhileParsingList, self.pos)),
            }
        }
    }

    /// A number starting at `self.pos` (a '-' or a digit).
    ///
    /// Integers that fit `i64` or `u64` become ints; everything else becomes a correctly
    /// rounded float (`str::parse::<f64>` on the validated text, which is what serde_json's
    /// `float_roundtrip` parser computes too), `-0` included, which serde_json reads as `-0.0`.
    /// A float beyond `f64` range is an error, as in serde_json.
    #[inline(always)]
    fn number<S: Sink>(&mut self, sink: &mut S) -> Step<S::Value> {
        // Fastest path: an integer of 1 to 7 digits with 8 bytes of input from its first
        // digit on (almost every integer), read from one word.
        let bytes = self.bytes;
        let start = self.pos;
        let negative = bytes.get(start) == Some(&b'-');
        let int_start = start + usize::from(negative);
        if let Some(chunk) = bytes.get(int_start..).and_then(<[u8]>::first_chunk::<8>) {
            let word = u64::from_le_bytes(*chunk);
            let run = digit_run(word);
            let after = (word >> (8 * (run & 7))) as u8;
            let leading_zero = word as u8 == b'0' && run > 1;
            if (1..8).contains(&run) && !leading_zero {
                if after == b'.' || after | 0x20 == b'e' {
                    return self.number_slow(sink, int_start, int_start + run);
                }
                self.pos = int_start + run;
                return integer(sink, negative, leading_digits_value(word, run));
            }
        }
        // Fast path: an integer of at most 19 digits (which cannot overflow a u64), read in
        // one pass. Anything else, errors included, goes the long way.
        let mut i = int_start;
        let mut magnitude = 0u64;
        // Eight digits per step while eight bytes remain; the value may wrap past 19 digits,
        // which then take the slow path anyway.
        while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
            let word = u64::from_le_bytes(*chunk);
            let run = digit_run(word);
            if run > 0 {
                magnitude = magnitude
                    .wrapping_mul(POW10[run])
                    .wrapping_add(leading_digits_value(word, run));
            }
            i += run;
            if run < 8 {
                break;
            }
        }
        // Near the end of the input: a byte at a time.
        while let Some(&c) = bytes.get(i) {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            magnitude = magnitude.wrapping_mul(10).wrapping_add(u64::from(digit));
            i += 1;
        }
        let digits = i - int_start;
        let plain = (1..=19).contains(&digits)
            && (digits == 1 || bytes.get(int_start) != Some(&b'0'))
            && !matches!(bytes.get(i), Some(b'.' | b'e' | b'E'));
        if !plain {
            return self.number_slow(sink, int_start, i);
        }
        self.pos = i;
        integer(sink, negative, magnitude)
    }

    /// [`Self::number`] for floats, integers of 20 digits or more and malformed numbers, with
    /// serde_json's checks and error positions; `bytes[int_start..int_end]` are the digits
    /// the fast path found.
    #[inline(never)]
    fn number_slow<S: Sink>(
        &mut self,
        sink: &mut S,
        int_start: usize,
        int_end: usize,
    ) -> Step<S::Value> {
        let bytes = self.bytes;
        let start = self.pos;
        let negative = int_start > start;
        match bytes.get(int_start) {
            Some(b'0') if int_end > int_start + 1 => {
                // There can be only one leading '0'.
                return Err(self.fail(Code::InvalidNumber, int_start + 1));
            }
            Some(b'0'..=b'9') => {}
            Some(_) => return Err(self.fail(Code::InvalidNumber, int_start)),
            None => return Err(self.fail(Code::EofWhileParsingValue, int_start)),
        }
        let mut i = int_end;
        let fraction = bytes.get(i) == Some(&b'.');
        if fraction {
            i += 1;
            let digits = i;
            while let Some(b'0'..=b'9') = bytes.get(i) {
                i += 1;
            }
            if i == digits {
                let code = match bytes.get(i) {
                    Some(_) => Code::InvalidNumber,
                    None => Code::EofWhileParsingValue,
                };
                return Err(self.fail(code, i));
            }
        }
        let exponent = matches!(bytes.get(i), Some(b'e' | b'E'));
        if exponent {
            let mantissa_end = i;
            i += 1;
            let positive = match bytes.get(i) {
                Some(b'+') => {
                    i += 1;
                    true
                }
                Some(b'-') => {
                    i += 1;
                    false
                }
                _ => true,
            };
            match bytes.get(i) {
                Some(b'0'..=b'9') => {}
                Some(_) => return Err(self.fail(Code::InvalidNumber, i)),
                None => return Err(self.fail(Code::EofWhileParsingValue, i)),
            }
            // serde_json accumulates the exponent in an i32 and, when it overflows with a
            // nonzero mantissa and a positive sign, reports the digit where it overflowed.
            let mut exp: i32 = 0;
            while let Some(&c @ b'0'..=b'9') = bytes.get(i) {
                let digit = i32::from(c - b'0');
                match exp.checked_mul(10).and_then(|e| e.checked_add(digit)) {
                    Some(e) => exp = e,
                    None => {
                        let nonzero = slice(bytes, int_start, mantissa_end)
                            .iter()
                            .any(|b| (b'1'..=b'9').contains(b));
                        if positive && nonzero {
                            return Err(self.fail(Code::NumberOutOfRange, i));
                        }
                        // Otherwise the value is +-0.0, which `parse_float` works out too.
                        while let Some(b'0'..=b'9') = bytes.get(i) {
                            i += 1;
                        }
                        break;
                    }
                }
                i += 1;
            }
        }
        self.pos = i;
        if !fraction && !exponent {
            if let Some(magnitude) = parse_u64(slice(bytes, int_start, int_end)) {
                return integer(sink, negative, magnitude);
            }
        }
        let value = self.parse_float(start, i)?;
        sink.f64(value)
    }

    /// The float spelled by `bytes[start..end]`, already checked against JSON's grammar.
    fn parse_float(&mut self, start: usize, end: usize) -> Step<f64> {
        let spelled = match self.text {
            Some(text) => text.get(start..end),
            None => std::str::from_utf8(slice(self.bytes, start, end)).ok(),
        };
        match spelled.map(str::parse::<f64>) {
            Some(Ok(value)) if value.is_finite() => Ok(value),
            // Out of range (or, impossibly, not a number): serde_json's error at its end.
            _ => Err(self.fail(Code::NumberOutOfRange, end.saturating_sub(1))),
        }
    }

    /// An object key whose opening quote was just consumed: first asks the sink whether it
    /// knows the key's bytes, which spares the text conversion.
    #[inline(always)]
    fn key<S: Sink>(&mut self, sink: &mut S) -> Step<S::Key> {
        let start = self.pos;
        let end = scan_plain(self.bytes, start);
        if self.bytes.get(end) == Some(&b'"') {
            if let Some(key) = self
                .bytes
                .get(start..end)
                .and_then(|raw| sink.known_key(raw))
            {
                self.pos = end + 1;
                return Ok(key);
            }
        }
        let s = self.string_to(start, end)?;
        sink.key(s)
    }

    /// The rest of a string whose opening quote was just consumed; leaves `pos` after the
    /// closing quote. Borrows from the input when there are no escapes.
    #[inline(always)]
    fn string(&mut self) -> Step<&str> {
        let start = self.pos;
        let end = scan_plain(self.bytes, start);
        self.string_to(start, end)
    }

    /// [`Self::string`] once the plain run from `start` is known to stop at `end`.
    #[inline(always)]
    fn string_to(&mut self, start: usize, end: usize) -> Step<&str> {
        if self.bytes.get(end) == Some(&b'"') {
            self.pos = end + 1;
            if let Some(s) = self.text.and_then(|text| text.get(start..end)) {
                return Ok(s);
            }
            return self.utf8(slice(self.bytes, start, end));
        }
        self.string_slow(start, end)
    }

    /// A string with escapes, a control character or no end: `end` is where the plain run
    /// starting at `start` stopped.
    #[cold]
    fn string_slow(&mut self, start: usize, mut end: usize) -> Step<&str> {
        let bytes = self.bytes;
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut run = start;
        loop {
            match bytes.get(end) {
                Some(b'"') => {
                    scratch.extend_from_slice(slice(bytes, run, end));
                    self.pos = end + 1;
                    self.scratch = scratch;
                    // Escapes only ever add whole UTF-8 sequences, so the text is valid exactly
                    // when its raw runs are; one check of the whole also positions an error as
                    // serde_json does.
                    return match std::str::from_utf8(&self.scratch) {
                        Ok(s) => Ok(s),
                        Err(err) => {
                            let back = self.scratch.len() - err.valid_up_to();
                            self.error = Some(syntax_error(
                                bytes,
                                Code::InvalidUnicodeCodePoint,
                                end + 1,
                                back,
                            ));
                            Err(Fail)
                        }
                    };
                }
                Some(b'\\') => {
                    scratch.extend_from_slice(slice(bytes, run, end));
                    self.pos = end + 1;
                    if let Err(fail) = self.escape(&mut scratch) {
                        self.scratch = scratch;
                        return Err(fail);
                    }
                    run = self.pos;
                    end = scan_plain(bytes, run);
                }
                Some(_) => {
                    self.scratch = scratch;
                    return Err(self.fail(Code::ControlCharacterWhileParsingString, end));
                }
                None => {
                    self.scratch = scratch;
                    return Err(self.fail(Code::EofWhileParsingString, end));
                }
            }
        }
    }

    /// `raw` as text, or serde_json's error for invalid UTF-8: positioned after the closing
    /// quote (`self.pos`) and moved back to the first bad byte.
    fn utf8<'s>(&mut self, raw: &'s [u8]) -> Step<&'s str> {
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s),
            Err(err) => {
                let back = raw.len() - err.valid_up_to();
                Err(self.fail_at_index(Code::InvalidUnicodeCodePoint, self.pos, back))
            }
        }
    }

    /// One escape after its backslash, appended to `out` as UTF-8.
    fn escape(&mut self, out: &mut Vec<u8>) -> Step<()> {
        let at = self.pos;
        let Some(&c) = self.bytes.get(at) else {
            return Err(self.fail(Code::EofWhileParsingString, at));
        };
        self.pos += 1;
        let byte = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => b'\x08',
            b'f' => b'\x0c',
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.unicode_escape(out),
            _ => return Err(self.fail(Code::InvalidEscape, at)),
        };
        out.push(byte);
        Ok(())
    }

    /// `\uXXXX` after its `\u`, or a surrogate pair `\uD8XX\uDCXX`; lone surrogates are errors.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Step<()> {
        let first = self.hex4()?;
        let code_point = match first {
            0xDC00..=0xDFFF => {
                return Err(self.fail(
                    Code::LoneLeadingSurrogateInHexEscape,
                    self.pos.saturating_sub(1),
                ))
            }
            0xD800..=0xDBFF => {
                for want in [b'\\', b'u'] {
                    match self.bytes.get(self.pos) {
                        Some(&got) if got == want => self.pos += 1,
                        Some(_) => return Err(self.fail(Code::UnexpectedEndOfHexEscape, self.pos)),
                        None => return Err(self.fail(Code::EofWhileParsingString, self.pos)),
                    }
                }
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.fail(
                        Code::LoneLeadingSurrogateInHexEscape,
                        self.pos.saturating_sub(1),
                    ));
                }
                0x1_0000 + ((u32::from(first) - 0xD800) << 10) + (u32::from(second) - 0xDC00)
            }
            other => u32::from(other),
        };
        match char::from_u32(code_point) {
            Some(c) => {
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                Ok(())
            }
            // Unreachable: surrogates were handled above and a pair stays below 0x110000.
            None => Err(self.fail(Code::InvalidUnicodeCodePoint, self.pos.saturating_sub(1))),
        }
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Step<u16> {
        let at = self.pos;
        let Some(digits) = self
            .bytes
            .get(at..)
            .and_then(|rest| rest.first_chunk::<4>())
        else {
            return Err(self.fail(Code::EofWhileParsingString, self.bytes.len()));
        };
        self.pos = at + 4;
        let mut value = 0u16;
        for &d in digits {
            let nibble = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.fail(Code::InvalidEscape, at + 3)),
            };
            value = value << 4 | u16::from(nibble);
        }
        Ok(value)
    }
}

/// The integer `-magnitude` or `magnitude`, as serde_json types it: `u64` when positive,
/// `i64` when negative and in range, a float otherwise (`-0` included).
#[inline(always)]
fn integer<S: Sink>(sink: &mut S, negative: bool, magnitude: u64) -> Step<S::Value> {
    if !negative {
        sink.u64(magnitude)
    } else if magnitude == 0 {
        // serde_json's one integer literal that becomes a float.
        sink.f64(-0.0)
    } else if magnitude <= 1 << 63 {
        sink.i64((magnitude as i64).wrapping_neg())
    } else {
        sink.f64(-(magnitude as f64))
    }
}

/// serde_json's line and column for byte index `index` of `bytes`, the column then moved back
/// `back` bytes (for invalid UTF-8, found only at the closing quote).
#[cold]
fn syntax_error(bytes: &[u8], code: Code, index: usize, back: usize) -> SyntaxError {
    let before = &bytes[..index.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    SyntaxError {
        code,
        line: 1 + before[..line_start].iter().filter(|&&b| b == b'\n').count(),
        column: (before.len() - line_start).saturating_sub(back),
    }
}
