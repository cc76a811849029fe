//! Test-only generators shared by the query module's property loops.
//!
//! A tiny deterministic PRNG (no new dependencies, reproducible failures) and
//! random small documents and filters drawn from a narrow vocabulary, so that
//! paths, arrays, missing fields and type mismatches collide often.

use serde_json::{json, Map, Value};

/// splitmix64: small, fast, good enough for test-case generation.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &["a", "b", "c"];

/// Paths over [`KEYS`], including numeric segments.
pub(crate) const PATHS: &[&str] = &[
    "a", "b", "c", "a.b", "a.c", "b.a", "a.0", "a.1", "a.b.c", "a.0.b",
];

/// A small scalar: ints and floats that collide (1 and 1.0), strings, bools, null.
pub(crate) fn random_scalar(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 1),
        2 | 3 => json!(rng.below(4) as i64 - 1),
        4 => json!((rng.below(8) as f64 - 2.0) / 2.0),
        5 => json!(u64::MAX - rng.below(2)),
        6 => json!(1.844_674_407_370_955_2e19),
        _ => json!(*rng.pick(&["", "x", "y", "1"])),
    }
}

/// A small JSON value of at most `depth` container levels.
pub(crate) fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let kinds = if depth == 0 { 1 } else { 4 };
    match rng.below(kinds) {
        0 | 1 => random_scalar(rng),
        2 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => random_object(rng, depth - 1),
    }
}

/// A small object with keys from [`KEYS`].
pub(crate) fn random_object(rng: &mut Rng, depth: u32) -> Value {
    let mut m = Map::new();
    for _ in 0..rng.below(4) {
        let k = *rng.pick(KEYS);
        m.insert(k.to_owned(), random_value(rng, depth));
    }
    Value::Object(m)
}

/// A random filter document (always well-formed).
pub(crate) fn random_filter(rng: &mut Rng, depth: u32) -> Value {
    let mut m = Map::new();
    for _ in 0..rng.below(3) + 1 {
        let choice = if depth == 0 { 0 } else { rng.below(6) };
        match choice {
            0..=3 => {
                let path = *rng.pick(PATHS);
                m.insert(path.to_owned(), random_operand(rng));
            }
            4 => {
                let n = rng.below(2) + 1;
                let subs = (0..n).map(|_| random_filter(rng, depth - 1)).collect();
                m.insert("$and".to_owned(), Value::Array(subs));
            }
            _ => {
                let n = rng.below(3) + 1;
                let subs = (0..n).map(|_| random_filter(rng, depth - 1)).collect();
                m.insert("$or".to_owned(), Value::Array(subs));
            }
        }
    }
    Value::Object(m)
}

fn random_operand(rng: &mut Rng) -> Value {
    if rng.below(4) == 0 {
        return random_value(rng, 1); // literal equality, maybe an array/object
    }
    let mut ops = Map::new();
    for _ in 0..rng.below(2) + 1 {
        let (op, arg) = match rng.below(9) {
            0 => ("$eq", random_value(rng, 1)),
            1 => ("$ne", random_value(rng, 1)),
            2 => ("$gt", random_value(rng, 1)),
            3 => ("$gte", random_value(rng, 1)),
            4 => ("$lt", random_value(rng, 1)),
            5 => ("$lte", random_value(rng, 1)),
            6 => (
                "$in",
                Value::Array((0..rng.below(3)).map(|_| random_value(rng, 1)).collect()),
            ),
            7 => (
                "$nin",
                Value::Array((0..rng.below(3)).map(|_| random_value(rng, 1)).collect()),
            ),
            _ => ("$exists", json!(rng.below(2) == 1)),
        };
        ops.insert(op.to_owned(), arg);
    }
    Value::Object(ops)
}
