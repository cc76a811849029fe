//! The one total order over JSON values, and a byte encoding that preserves it.
//!
//! Sorting, range operators and secondary indexes must all agree on how two
//! values compare, so they all call [`compare`]; an index stores
//! [`encode_key`] bytes in a `BTreeMap` and gets the same order from `memcmp`.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// Type tags: the first byte of every encoded key, and the rank of each JSON
/// type in the cross-type order `null < bool < number < string < array < object`.
///
/// Tags are spaced out (room for new types) and all lie strictly between the
/// terminator bytes `0x00`/`0x01` and the string escape byte `0xFF`; the
/// encoding's prefix rules below rely on that.
const TAG_NULL: u8 = 0x10;
const TAG_BOOL: u8 = 0x20;
const TAG_NUMBER: u8 = 0x30;
const TAG_STRING: u8 = 0x40;
const TAG_ARRAY: u8 = 0x50;
const TAG_OBJECT: u8 = 0x60;

/// Ends an array, and ends an object (where [`PAIR`] would start another pair).
const END: u8 = 0x00;
/// Starts one `(key, value)` pair inside an encoded object.
const PAIR: u8 = 0x01;

/// The JSON type of a value, in cross-type order.
///
/// Range operators (`$gt`, ...) and index ranges never cross types: a range
/// over numbers only ever matches numbers, however the types compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TypeClass {
    /// `null`.
    Null,
    /// `false` and `true`.
    Bool,
    /// Every number: integers and floats are one type and compare by value.
    Number,
    /// Strings.
    String,
    /// Arrays.
    Array,
    /// Objects.
    Object,
}

impl TypeClass {
    /// The type of `value`.
    #[must_use]
    pub fn of(value: &Value) -> TypeClass {
        match value {
            Value::Null => TypeClass::Null,
            Value::Bool(_) => TypeClass::Bool,
            Value::Number(_) => TypeClass::Number,
            Value::String(_) => TypeClass::String,
            Value::Array(_) => TypeClass::Array,
            Value::Object(_) => TypeClass::Object,
        }
    }

    /// The tag byte that starts [`encode_key`] output for values of this type.
    ///
    /// Every encoded value of this type is `>= [tag]` and `< [tag + 1]`
    /// bytewise, so `[tag]..[tag + 1]` is the range of the whole type.
    #[must_use]
    pub fn tag(self) -> u8 {
        match self {
            TypeClass::Null => TAG_NULL,
            TypeClass::Bool => TAG_BOOL,
            TypeClass::Number => TAG_NUMBER,
            TypeClass::String => TAG_STRING,
            TypeClass::Array => TAG_ARRAY,
            TypeClass::Object => TAG_OBJECT,
        }
    }
}

/// Compare two JSON values in FerrumDB's total order.
///
/// - Across types: `null < false < true < numbers < strings < arrays < objects`.
/// - Numbers compare by exact mathematical value whatever their representation
///   (`i64`, `u64` or `f64`): `1 == 1.0`, `-0.0 == 0`, and
///   `u64::MAX (18446744073709551615) < 18446744073709551616.0`, with no
///   rounding through `f64`.
/// - Strings compare by Unicode code point, which is the byte order of UTF-8
///   (the same as Python's `str` comparison).
/// - Arrays compare lexicographically by element; a proper prefix is smaller.
/// - Objects compare as the list of their `(key, value)` pairs **sorted by key**,
///   lexicographically (keys first, then values). Field order in the document
///   therefore does not matter, so `{"a":1,"b":2} == {"b":2,"a":1}` as for
///   Python dicts. (MongoDB compares BSON documents in stored field order; we
///   deliberately follow the Python meaning of dict equality instead.)
///
/// `compare(a, b) == Equal` is the equality used by `$eq`, `$in` and indexes;
/// it is *not* `serde_json`'s `==` (which says `1 != 1.0`).
#[must_use]
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Array(x), Value::Array(y)) => compare_arrays(x, y),
        (Value::Object(x), Value::Object(y)) => compare_objects(x, y),
        _ => TypeClass::of(a).cmp(&TypeClass::of(b)),
    }
}

/// `compare(a, b) == Ordering::Equal`: the equality of `$eq`, `$in` and indexes.
#[must_use]
pub fn values_equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == Ordering::Equal
}

fn compare_arrays(x: &[Value], y: &[Value]) -> Ordering {
    for (a, b) in x.iter().zip(y) {
        let o = compare(a, b);
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

fn compare_objects(x: &Map<String, Value>, y: &Map<String, Value>) -> Ordering {
    let xs = sorted_pairs(x);
    let ys = sorted_pairs(y);
    for ((ka, va), (kb, vb)) in xs.iter().zip(&ys) {
        let o = ka
            .as_bytes()
            .cmp(kb.as_bytes())
            .then_with(|| compare(va, vb));
        if o != Ordering::Equal {
            return o;
        }
    }
    xs.len().cmp(&ys.len())
}

/// Object pairs in key order. With serde_json's `preserve_order` feature maps
/// iterate in insertion order, so sort explicitly (keys are unique).
fn sorted_pairs(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut pairs: Vec<(&String, &Value)> = map.iter().collect();
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    pairs
}

/// Exact compare of two JSON numbers. Same-representation pairs take a fast
/// path; mixed pairs go through the exact binary decomposition that
/// [`encode_key`] also uses, so compare and encoding cannot disagree.
fn compare_numbers(x: &Number, y: &Number) -> Ordering {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return a.cmp(&b);
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return a.cmp(&b);
    }
    if x.is_f64() && y.is_f64() {
        if let (Some(a), Some(b)) = (x.as_f64(), y.as_f64()) {
            // Finite (JSON has no NaN/inf), so partial_cmp is total; -0.0 == 0.0.
            if let Some(o) = a.partial_cmp(&b) {
                return o;
            }
        }
    }
    Exact::of(x).cmp(&Exact::of(y))
}

/// A finite binary number `sign * 1.fraction * 2^exp`, exactly, ordered by value.
///
/// Every `i64`, `u64` and finite `f64` is such a number with `exp` in
/// `-1074..=1023` and at most 63 fraction bits, so `fraction` holds them
/// left-aligned in a `u64` with nothing lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exact {
    Negative { exp: i16, fraction: u64 },
    Zero,
    Positive { exp: i16, fraction: u64 },
}

/// Added to the binary exponent so it encodes as an unsigned big-endian `u16`
/// (smallest exponent, of the smallest subnormal, is -1074).
const EXP_BIAS: i32 = 1075;

impl Exact {
    fn of(n: &Number) -> Exact {
        if let Some(u) = n.as_u64() {
            Exact::from_magnitude(false, u)
        } else if let Some(i) = n.as_i64() {
            Exact::from_magnitude(i < 0, i.unsigned_abs())
        } else {
            // serde_json numbers are i64, u64 or finite f64; as_f64 never fails
            // for the last, and 0.0 is a harmless fallback.
            Exact::from_f64(n.as_f64().unwrap_or(0.0))
        }
    }

    fn from_magnitude(negative: bool, magnitude: u64) -> Exact {
        if magnitude == 0 {
            return Exact::Zero;
        }
        // Position of the leading 1; shifting it out leaves the fraction bits
        // left-aligned (a shift by 64, when top == 0, leaves no fraction).
        let top = magnitude.ilog2();
        let fraction = magnitude.checked_shl(64 - top).unwrap_or(0);
        // top <= 63, so the conversion cannot fail.
        let exp = i16::try_from(top).unwrap_or(i16::MAX);
        Exact::signed(negative, exp, fraction)
    }

    fn from_f64(f: f64) -> Exact {
        let bits = f.to_bits();
        let negative = bits >> 63 == 1;
        let biased = i32::try_from((bits >> 52) & 0x7FF).unwrap_or(0);
        let mantissa = bits & ((1 << 52) - 1);
        if biased == 0 {
            if mantissa == 0 {
                return Exact::Zero; // +0.0 and -0.0
            }
            // Subnormal: mantissa * 2^-1074.
            let top = mantissa.ilog2();
            let fraction = mantissa.checked_shl(64 - top).unwrap_or(0);
            let exp = i32::try_from(top).unwrap_or(0) - 1074;
            return Exact::signed(negative, i16::try_from(exp).unwrap_or(i16::MIN), fraction);
        }
        let exp = i16::try_from(biased - 1023).unwrap_or(i16::MAX);
        Exact::signed(negative, exp, mantissa << 12)
    }

    fn signed(negative: bool, exp: i16, fraction: u64) -> Exact {
        if negative {
            Exact::Negative { exp, fraction }
        } else {
            Exact::Positive { exp, fraction }
        }
    }

    /// 11 bytes: sign class, then (biased exponent, fraction) big-endian;
    /// both inverted for negatives, where a larger magnitude is smaller.
    fn encode(self, out: &mut Vec<u8>) {
        match self {
            Exact::Zero => {
                out.push(0x01);
                out.extend_from_slice(&[0; 10]);
            }
            Exact::Positive { exp, fraction } => {
                out.push(0x02);
                out.extend_from_slice(&biased_exp(exp).to_be_bytes());
                out.extend_from_slice(&fraction.to_be_bytes());
            }
            Exact::Negative { exp, fraction } => {
                out.push(0x00);
                out.extend_from_slice(&(!biased_exp(exp)).to_be_bytes());
                out.extend_from_slice(&(!fraction).to_be_bytes());
            }
        }
    }
}

fn biased_exp(exp: i16) -> u16 {
    // exp is in -1074..=1023, so the biased value is in 1..=2098.
    u16::try_from(i32::from(exp) + EXP_BIAS).unwrap_or(0)
}

impl Ord for Exact {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Exact::Zero, Exact::Zero) => Ordering::Equal,
            (
                Exact::Positive {
                    exp: a,
                    fraction: fa,
                },
                Exact::Positive {
                    exp: b,
                    fraction: fb,
                },
            ) => (a, fa).cmp(&(b, fb)),
            (
                Exact::Negative {
                    exp: a,
                    fraction: fa,
                },
                Exact::Negative {
                    exp: b,
                    fraction: fb,
                },
            ) => (b, fb).cmp(&(a, fa)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Exact {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Exact {
    fn rank(self) -> u8 {
        match self {
            Exact::Negative { .. } => 0,
            Exact::Zero => 1,
            Exact::Positive { .. } => 2,
        }
    }
}

/// Append the order-preserving encoding of `value` to `out`.
///
/// Guarantees, for all values `a`, `b`:
/// - `encode(a).cmp(encode(b)) == compare(a, b)` (bytewise, as `Vec<u8>` and
///   `BTreeMap` compare);
/// - `encode(a) == encode(b)` exactly when `compare(a, b) == Equal`, so `1`,
///   `1.0` and `1u64` share one index key;
/// - every value of one [`TypeClass`] encodes to bytes in
///   `[tag] ..< [tag + 1]` (see [`TypeClass::tag`]).
///
/// Layout (a type tag byte, then):
/// - null: nothing; bool: `0x00`/`0x01`;
/// - number: 11 bytes, sign class (`0x00` negative, `0x01` zero, `0x02`
///   positive) then the exact binary exponent (biased `u16`) and 64 fraction
///   bits, big-endian, inverted for negatives: exact for every `i64`, `u64`
///   and `f64`;
/// - string: UTF-8 with each `0x00` written as `0x00 0xFF`, then `0x00`. What
///   may follow a string's terminator is always below `0xFF`, so `"a" < "a\0"`
///   and a string sorts before its extensions;
/// - array: each element's encoding, then `0x00` (below every tag);
/// - object: per pair in key order, `0x01`, the key as an escaped string, the
///   value's encoding; then `0x00`.
///
/// Not guaranteed: that the bytes can be decoded back, or that the layout is
/// stable across format versions (indexes are rebuilt, never persisted raw).
pub fn encode_key(value: &Value, out: &mut Vec<u8>) {
    out.push(TypeClass::of(value).tag());
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Number(n) => Exact::of(n).encode(out),
        Value::String(s) => encode_str(s, out),
        Value::Array(items) => {
            for item in items {
                encode_key(item, out);
            }
            out.push(END);
        }
        Value::Object(map) => {
            for (k, v) in sorted_pairs(map) {
                out.push(PAIR);
                encode_str(k, out);
                encode_key(v, out);
            }
            out.push(END);
        }
    }
}

/// [`encode_key`] into a fresh buffer.
#[must_use]
pub fn key_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(value, &mut out);
    out
}

fn encode_str(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        out.push(b);
        if b == 0x00 {
            out.push(0xFF);
        }
    }
    out.push(0x00);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::test_support::Rng;
    use serde_json::json;

    const TRICKY_FLOATS: &[f64] = &[
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        1e-310,
        f64::MAX,
        f64::MIN,
        9_007_199_254_740_992.0,  // 2^53
        9_007_199_254_740_994.0,  // 2^53 + 2
        -9_007_199_254_740_992.0, // -2^53
        9.223_372_036_854_776e18, // 2^63
        -9.223_372_036_854_776e18,
        1.844_674_407_370_955_2e19, // 2^64
        1.844_674_407_370_954_8e19, // 2^64 - 2048, the largest f64 below 2^64
        1e300,
        -1e300,
        3.25,
        -3.25,
    ];

    const TRICKY_INTS: &[i64] = &[
        0,
        1,
        -1,
        2,
        3,
        -3,
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
        9_007_199_254_740_992, // 2^53
        9_007_199_254_740_993, // 2^53 + 1: not an f64
        -9_007_199_254_740_993,
    ];

    const TRICKY_U64: &[u64] = &[
        u64::MAX,
        u64::MAX - 1,
        1 << 63,
        (1 << 63) + 1,
        18_446_744_073_709_549_568, // 2^64 - 2048, exactly an f64
    ];

    fn random_number(rng: &mut Rng) -> Value {
        match rng.below(6) {
            0 => json!(*rng.pick(TRICKY_FLOATS)),
            1 => json!(*rng.pick(TRICKY_INTS)),
            2 => json!(*rng.pick(TRICKY_U64)),
            3 => json!((rng.below(21) as i64) - 10),
            4 => json!(((rng.below(41) as i64) - 20) as f64 / 4.0),
            _ => {
                // Random bits: any finite f64, ints of every magnitude.
                let bits = rng.next();
                match rng.below(3) {
                    0 => {
                        let f = f64::from_bits(bits);
                        if f.is_finite() {
                            json!(f)
                        } else {
                            json!(0.25)
                        }
                    }
                    1 => json!(bits as i64 >> rng.below(64)),
                    _ => json!(bits >> rng.below(64)),
                }
            }
        }
    }

    fn random_string(rng: &mut Rng) -> String {
        const ALPHABET: &[&str] = &[
            "", "a", "b", "\0", "\u{7f}", "\u{ff}", "é", "\u{ffff}", "😀",
        ];
        let len = rng.below(4);
        (0..len).map(|_| *rng.pick(ALPHABET)).collect()
    }

    fn random_value(rng: &mut Rng, depth: u32) -> Value {
        let kinds = if depth == 0 { 4 } else { 6 };
        match rng.below(kinds) {
            0 => Value::Null,
            1 => json!(rng.below(2) == 1),
            2 => random_number(rng),
            3 => json!(random_string(rng)),
            4 => {
                let n = rng.below(4);
                Value::Array((0..n).map(|_| random_value(rng, depth - 1)).collect())
            }
            _ => {
                let n = rng.below(4);
                let mut m = Map::new();
                for _ in 0..n {
                    m.insert(random_string(rng), random_value(rng, depth - 1));
                }
                Value::Object(m)
            }
        }
    }

    /// Independent exact reference for numbers: integers as i128, floats split
    /// into an integer part (exact in i128 within ±2^64) and a fraction sign.
    fn reference_number_cmp(a: &Number, b: &Number) -> Ordering {
        fn as_int(n: &Number) -> Option<i128> {
            n.as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
        }
        fn int_vs_float(i: i128, f: f64) -> Ordering {
            if f >= 1.844_674_407_370_955_2e19 {
                return Ordering::Less;
            }
            if f < -9.223_372_036_854_776e18 {
                return Ordering::Greater;
            }
            let t = f.trunc();
            match i.cmp(&(t as i128)) {
                Ordering::Equal => 0.0f64.partial_cmp(&(f - t)).unwrap_or(Ordering::Equal),
                o => o,
            }
        }
        match (as_int(a), as_int(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(x), None) => int_vs_float(x, b.as_f64().unwrap()),
            (None, Some(y)) => int_vs_float(y, a.as_f64().unwrap()).reverse(),
            (None, None) => a
                .as_f64()
                .unwrap()
                .partial_cmp(&b.as_f64().unwrap())
                .unwrap(),
        }
    }

    fn enc(v: &Value) -> Vec<u8> {
        key_bytes(v)
    }

    #[test]
    fn cross_type_order_is_documented_one() {
        let ladder = [
            json!(null),
            json!(false),
            json!(true),
            json!(-1e300),
            json!(0),
            json!(u64::MAX),
            json!(""),
            json!("a"),
            json!([]),
            json!([null]),
            json!({}),
            json!({"a": null}),
        ];
        for (i, a) in ladder.iter().enumerate() {
            for (j, b) in ladder.iter().enumerate() {
                assert_eq!(compare(a, b), i.cmp(&j), "{a} vs {b}");
                assert_eq!(enc(a).cmp(&enc(b)), i.cmp(&j), "{a} vs {b} encoded");
            }
        }
    }

    #[test]
    fn numbers_compare_exactly_across_representations() {
        assert_eq!(compare(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(compare(&json!(0), &json!(-0.0)), Ordering::Equal);
        assert_eq!(enc(&json!(1)), enc(&json!(1.0)));
        assert_eq!(enc(&json!(0)), enc(&json!(-0.0)));
        assert_eq!(enc(&json!(1u64)), enc(&json!(1i64)));
        // u64::MAX is below 2^64 even though `u64::MAX as f64 == 2^64`.
        assert_eq!(
            compare(&json!(u64::MAX), &json!(1.844_674_407_370_955_2e19)),
            Ordering::Less
        );
        // 2^53 + 1 is above the f64 2^53 it would round to.
        assert_eq!(
            compare(
                &json!(9_007_199_254_740_993_i64),
                &json!(9_007_199_254_740_992.0)
            ),
            Ordering::Greater
        );
        assert_eq!(
            compare(
                &json!(-9_007_199_254_740_993_i64),
                &json!(-9_007_199_254_740_992.0)
            ),
            Ordering::Less
        );
        assert_eq!(
            compare(&json!(i64::MIN), &json!(-9.223_372_036_854_776e18)),
            Ordering::Equal
        );
        assert_eq!(compare(&json!(2), &json!(2.5)), Ordering::Less);
        assert_eq!(compare(&json!(-2), &json!(-2.5)), Ordering::Greater);
        assert_eq!(compare(&json!(5e-324), &json!(0)), Ordering::Greater);
        assert_eq!(compare(&json!(-5e-324), &json!(0)), Ordering::Less);
    }

    #[test]
    fn strings_order_by_code_point_and_prefix() {
        let ordered = [
            "", "\0", "\0\0", "a", "a\0", "a\0b", "aa", "b", "\u{7f}", "é", "\u{ffff}", "😀",
        ];
        for w in ordered.windows(2) {
            let (a, b) = (json!(w[0]), json!(w[1]));
            assert_eq!(compare(&a, &b), Ordering::Less, "{a} < {b}");
            assert!(enc(&a) < enc(&b), "{a} < {b} encoded");
        }
    }

    #[test]
    fn arrays_and_objects() {
        assert_eq!(compare(&json!([1, 2]), &json!([1, 2, 0])), Ordering::Less);
        assert_eq!(
            compare(&json!([1, 3]), &json!([1, 2, 9])),
            Ordering::Greater
        );
        assert_eq!(compare(&json!(["a"]), &json!(["a\u{0}"])), Ordering::Less);
        assert_eq!(
            compare(&json!({"a": 1, "b": 2}), &json!({"b": 2.0, "a": 1})),
            Ordering::Equal
        );
        assert_eq!(
            enc(&json!({"a": 1, "b": 2})),
            enc(&json!({"b": 2.0, "a": 1}))
        );
        assert_eq!(
            compare(&json!({"a": 1}), &json!({"a": 1, "b": 0})),
            Ordering::Less
        );
        assert_eq!(compare(&json!({"a": 9}), &json!({"b": 0})), Ordering::Less);
        assert_eq!(
            compare(&json!({"": 9}), &json!({"\u{0}": 0})),
            Ordering::Less
        );
        assert!(enc(&json!({"": 9})) < enc(&json!({"\u{0}": 0})));
    }

    #[test]
    fn type_ranges_bracket_every_encoding() {
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let v = random_value(&mut rng, 3);
            let tag = TypeClass::of(&v).tag();
            let e = enc(&v);
            assert!(e.as_slice() >= [tag].as_slice() && e.as_slice() < [tag + 1].as_slice());
        }
    }

    #[test]
    fn random_numbers_match_exact_reference() {
        let mut rng = Rng(1);
        for _ in 0..20_000 {
            let (a, b) = (random_number(&mut rng), random_number(&mut rng));
            let (Value::Number(x), Value::Number(y)) = (&a, &b) else {
                unreachable!()
            };
            let want = reference_number_cmp(x, y);
            assert_eq!(compare(&a, &b), want, "{a} vs {b}");
            assert_eq!(enc(&a).cmp(&enc(&b)), want, "{a} vs {b} encoded");
        }
    }

    #[test]
    fn random_values_encode_order_equals_compare_order() {
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let a = random_value(&mut rng, 3);
            let b = if rng.below(4) == 0 {
                a.clone()
            } else {
                random_value(&mut rng, 3)
            };
            let c = random_value(&mut rng, 3);
            let ab = compare(&a, &b);
            assert_eq!(enc(&a).cmp(&enc(&b)), ab, "{a} vs {b}");
            assert_eq!(compare(&b, &a), ab.reverse(), "antisymmetry {a} {b}");
            assert_eq!(compare(&a, &a), Ordering::Equal);
            // Transitivity on the triple.
            let (bc, ac) = (compare(&b, &c), compare(&a, &c));
            if ab != Ordering::Greater && bc != Ordering::Greater {
                assert_ne!(ac, Ordering::Greater, "{a} <= {b} <= {c}");
            }
            // Values inside containers keep the order (prefix-freedom in practice).
            let (wa, wb) = (json!([a.clone(), c.clone()]), json!([b.clone(), c.clone()]));
            assert_eq!(enc(&wa).cmp(&enc(&wb)), compare(&wa, &wb), "{wa} vs {wb}");
        }
    }
}
