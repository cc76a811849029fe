//! A JSON parser with no dependency on Python: a single-pass recursive-descent grammar
//! (`parser`) over SWAR byte scanning (`scan`), generic over a [`Sink`] that builds the values.
//! It accepts exactly what `serde_json::from_slice` accepts, with serde_json's error wording and
//! line/column. The Python layer builds Python objects with it (`python/convert`); [`validate`]
//! is the one rule for "this text is a JSON document FerrumDB can read back", used by
//! `db.set_json` and by the command line when it shows a stored value.
//!
//! [`relaxed`] is the forgiving reader for JSON that people type (the REPL): single quotes and
//! unquoted keys, read into `serde_json::Value`, with line and column in its errors.

// Without the `python` feature only `validate` is used; the builders' half of the parser
// (`Parser::new`, `Sink::known_key` and the like) and the encoder's byte scan then go unused.
#![cfg_attr(not(feature = "python"), allow(dead_code))]

mod parser;
pub(crate) mod relaxed;
mod scan;
#[cfg(test)]
mod tests;

pub(crate) use parser::{Code, Fail, Parser, Sink, Step, SyntaxError};
#[cfg(feature = "python")]
pub(crate) use scan::has_special_byte;

/// Most containers (objects, arrays) that may be nested inside one another in a stored value.
///
/// 127 rather than a round 256: it is serde_json's fixed recursion limit (its parser refuses the
/// 128th nested level), which this parser keeps so that it accepts exactly what serde_json
/// accepts. The Python encoder uses the same limit, so every value it writes reads back.
pub const MAX_DEPTH: usize = 127;

/// Check that `text` is exactly one JSON document, building nothing: strings are unescaped and
/// surrogate-checked and numbers range-checked (`"\ud800"` and `1e400` are refused), which is
/// what reading the value back into Python needs.
///
/// # Errors
/// Where and why `text` is not JSON, in serde_json's words (`expected value at line 1 column 5`).
pub(crate) fn validate(text: &str) -> Result<(), SyntaxError> {
    let mut parser = Parser::from_str(text);
    match parser.document(&mut Check) {
        Ok(()) => Ok(()),
        // A syntax error is always recorded, since `Check` itself never fails; the fallback
        // only keeps that reasoning out of the types.
        Err(Fail) => Err(parser.error.unwrap_or(SyntaxError {
            code: Code::ExpectedSomeValue,
            line: 1,
            column: 0,
        })),
    }
}

/// Builds nothing: what is left of parsing is validation.
struct Check;

impl Sink for Check {
    type Value = ();
    type Key = ();
    type Object = ();

    fn null(&mut self) -> Step<()> {
        Ok(())
    }
    fn bool(&mut self, _: bool) -> Step<()> {
        Ok(())
    }
    fn i64(&mut self, _: i64) -> Step<()> {
        Ok(())
    }
    fn u64(&mut self, _: u64) -> Step<()> {
        Ok(())
    }
    fn f64(&mut self, _: f64) -> Step<()> {
        Ok(())
    }
    fn str(&mut self, _: &str) -> Step<()> {
        Ok(())
    }
    fn key(&mut self, _: &str) -> Step<()> {
        Ok(())
    }
    fn known_key(&mut self, _: &[u8]) -> Option<()> {
        None
    }
    fn object_begin(&mut self) -> Step<()> {
        Ok(())
    }
    fn object_insert(&mut self, _: &(), _: (), _: ()) -> Step<()> {
        Ok(())
    }
    fn object_end(&mut self, _: ()) {}
    fn array_begin(&mut self) -> usize {
        0
    }
    fn array_push(&mut self, _: ()) {}
    fn array_end(&mut self, _: usize) -> Step<()> {
        Ok(())
    }
}
