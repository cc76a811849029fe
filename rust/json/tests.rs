//! Differential tests of the parser against serde_json itself: on valid, hand-picked invalid
//! and randomly mutated documents, `Parser` must accept exactly what
//! `serde_json::from_slice::<Value>` accepts, build the same value and fail with the same
//! message (line and column included), and `validate` must agree. No Python needed: the sink
//! here builds a `Value`.

use std::cell::RefCell;

use serde_json::{Map, Value};

use super::parser::{Fail, Parser, Sink, Step};
use super::validate;

/// Builds a `serde_json::Value`, so results compare directly with serde_json's.
#[derive(Default)]
struct ValueSink {
    items: Vec<Value>,
}

impl Sink for ValueSink {
    type Value = Value;
    type Key = String;
    type Object = RefCell<Map<String, Value>>;

    fn null(&mut self) -> Step<Value> {
        Ok(Value::Null)
    }
    fn bool(&mut self, v: bool) -> Step<Value> {
        Ok(Value::Bool(v))
    }
    fn i64(&mut self, v: i64) -> Step<Value> {
        Ok(Value::from(v))
    }
    fn u64(&mut self, v: u64) -> Step<Value> {
        Ok(Value::from(v))
    }
    fn f64(&mut self, v: f64) -> Step<Value> {
        Ok(Value::from(v))
    }
    fn str(&mut self, s: &str) -> Step<Value> {
        Ok(Value::from(s))
    }
    fn key(&mut self, s: &str) -> Step<String> {
        Ok(s.to_owned())
    }
    fn known_key(&mut self, raw: &[u8]) -> Option<String> {
        // Exercise the known-key path for a few keys.
        matches!(raw, b"a" | b"id" | b"name").then(|| String::from_utf8_lossy(raw).into_owned())
    }
    fn object_begin(&mut self) -> Step<Self::Object> {
        Ok(RefCell::default())
    }
    fn object_insert(&mut self, object: &Self::Object, key: String, value: Value) -> Step<()> {
        object.borrow_mut().insert(key, value);
        Ok(())
    }
    fn object_end(&mut self, object: Self::Object) -> Value {
        Value::Object(object.into_inner())
    }
    fn array_begin(&mut self) -> usize {
        self.items.len()
    }
    fn array_push(&mut self, item: Value) {
        self.items.push(item);
    }
    fn array_end(&mut self, mark: usize) -> Step<Value> {
        Ok(Value::Array(self.items.split_off(mark)))
    }
}

/// Our result for `input`: the value in serde_json's rendering, or the error message.
fn ours(input: &[u8]) -> Result<String, String> {
    let mut parser = Parser::new(input);
    match parser.document(&mut ValueSink::default()) {
        Ok(value) => Ok(value.to_string()),
        Err(Fail) => Err(parser
            .error
            .map_or("no error recorded".into(), |e| e.to_string())),
    }
}

fn serde(input: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<Value>(input)
        .map(|value| value.to_string())
        .map_err(|err| err.to_string())
}

fn check(input: &[u8]) {
    let want = serde(input);
    assert_eq!(
        ours(input),
        want,
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    if let Ok(text) = std::str::from_utf8(input) {
        assert_eq!(
            validate(text).map_err(|e| e.to_string()),
            want.clone().map(|_| ()),
            "validate on {text:?}"
        );
        let mut parser = Parser::from_str(text);
        assert_eq!(
            parser.document(&mut ValueSink::default()).is_ok(),
            want.is_ok(),
            "from_str on {text:?}"
        );
    }
}

const VALID: &[&str] = &[
    r#"{"id":123456,"name":"Ada Lovelace","email":"ada@example.com","age":36,"score":97.25,"active":true,"tags":["math","poetry","engines"],"address":{"city":"London","zip":"W1"},"note":null,"ratio":0.3333333333333333}"#,
    " \n\t[1, -1, 0, -0, 1.5, -0.0, 1e5, 1E-3, 2.5e+10, 18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809, 123456789012345678901234567890] \r\n",
    r#"{"a":1,"b":2,"a":3}"#,
    r#"["\ud83d\ude00 \u00e9 \n \" \\ \/ \b \f \r \t", "héllo 日本語 😀", "", "\u0000"]"#,
    r#"[[[[{"k":[{"k":[]}]}]]]]"#,
    r#"{"x":"a\"b","y\n":{"":[true,false,null]}}"#,
    "0",
    "12345678901234567",
    "[1e308, 4.9e-324, 1e-400, 0e99999999999, 1.7976931348623157e308]",
    r#""plain""#,
];

const INVALID: &[&str] = &[
    "",
    " ",
    "{",
    "[",
    "]",
    "}",
    "{\"a\"",
    "{\"a\":",
    "{\"a\":1",
    "{\"a\":1,",
    "{\"a\":1,}",
    "[1,]",
    "[1 2]",
    "{\"a\" 1}",
    "{1:2}",
    "[,1]",
    "nul",
    "tru",
    "falsy",
    "nan",
    "Infinity",
    "01",
    "-",
    "-a",
    "1.",
    "1.e5",
    ".5",
    "1e",
    "1e+",
    "1ex",
    "+1",
    "1e400",
    "-1e400",
    "1e2147483648",
    "1e99999999999999",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\\ud800x\"",
    "\"\\ud800\\x\"",
    "\"\\u12\"",
    "\"\\u12g4\"",
    "\"\\x\"",
    "\"abc",
    "\"a\tb\"",
    "\"\\",
    "{\"a\":1} x",
    "[1]]",
    "{\"a\":1}{\"b\":2}",
    "\"\u{7f}\u{1}\"",
    "[1,\n2,\n?]",
];

#[test]
fn valid_documents_match_serde_json() {
    for doc in VALID {
        check(doc.as_bytes());
        assert!(ours(doc.as_bytes()).is_ok(), "{doc}");
    }
}

#[test]
fn invalid_documents_match_serde_json() {
    for doc in INVALID {
        check(doc.as_bytes());
        assert!(ours(doc.as_bytes()).is_err(), "{doc}");
    }
    for bytes in [
        &b"\xff\xfe"[..],
        b"\"\xc3(\"",
        b"[\"ok\", \"\xed\xa0\x80\"]",
        b"{\"\xc3\":1}",
    ] {
        check(bytes);
    }
}

#[test]
fn nesting_limit_matches_serde_json() {
    for depth in [126, 127, 128, 200] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let doc = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            check(doc.as_bytes());
            check(open.repeat(depth).as_bytes());
        }
    }
}

/// A fixed-seed xorshift generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_documents_match_serde_json() {
    const BYTES: &[u8] =
        b"{}[]:,\"\\ \t\n\r0123456789-+.eEtrufalsnbu/x\x00\x1f\x7f\x80\xbf\xc3\xe2\xed\xf0\xff";
    const FRAGMENTS: &[&[u8]] = &[
        b"\\u",
        b"\\ud800",
        b"\\udc00",
        b"\\ud83d\\ude00",
        b"\\u00e9",
        b"1e400",
        b"-0",
        b"01",
        b"1.",
        b"1e+",
        b"-",
        b"18446744073709551616",
        b"1e2147483648",
        b"true",
        b"nul",
        b"\xed\xa0\x80",
        b"\xc3\xa9",
        b"\xf0\x9f\x98\x80",
        b",]",
        b",}",
        b"\"",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let mut doc = VALID[rng.below(VALID.len())].as_bytes().to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(doc.len() + 1);
            match rng.below(4) {
                0 if !doc.is_empty() => {
                    doc.remove(at.min(doc.len() - 1));
                }
                1 => doc.insert(at, BYTES[rng.below(BYTES.len())]),
                2 => {
                    let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                    doc.splice(at..at, fragment.iter().copied());
                }
                _ => doc.truncate(at),
            }
        }
        check(&doc);
    }
}
