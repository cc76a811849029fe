//! Byte-level scanning for the parser (and the encoder's escape check): finding the bytes a
//! JSON string must escape and reading runs of digits, eight bytes per step with SWAR (SIMD
//! within a register) tricks. Pure functions on `&[u8]` and `u64`, kept apart so the grammar
//! in `parser.rs` stays readable and these can be tested on their own.

/// `bytes[start..end]`, or nothing when that range is out of bounds (callers pass ranges they
/// found by scanning, so this only keeps a logic error from becoming a panic).
#[inline(always)]
pub(crate) fn slice(bytes: &[u8], start: usize, end: usize) -> &[u8] {
    bytes.get(start..end).unwrap_or_default()
}

/// The high bit of every byte of `word` that ends a plain run inside a JSON string: `"`, `\`
/// or a control character (below 0x20), the bytes serde_json escapes.
///
/// The SWAR "has a zero byte" trick, three times over: it can also flag a byte just above a
/// true hit (a borrow moving up), never below one, so the lowest flag is always exact and a
/// nonzero result always means a hit.
#[inline(always)]
pub(crate) fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGHS
}

/// Index of the first byte at or after `i` that ends a plain run inside a string (see
/// [`special_bytes`]); `bytes.len()` when there is none. Eight bytes per step.
#[inline(always)]
pub(crate) fn scan_plain(bytes: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let hits = special_bytes(u64::from_le_bytes(*chunk));
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// Whether any byte of `bytes` is one serde_json escapes (see [`special_bytes`]). Whole words
/// only: the tail is covered by a word overlapping the one before, and strings shorter than
/// a word are folded into one (repeating bytes, which cannot add a hit).
#[inline(always)]
pub(crate) fn has_special_byte(bytes: &[u8]) -> bool {
    fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
        bytes
            .get(at..)
            .and_then(<[u8]>::first_chunk::<N>)
            .copied()
            .unwrap_or([b' '; N])
    }
    let len = bytes.len();
    if len >= 8 {
        let mut at = 0;
        while at + 8 <= len {
            if special_bytes(u64::from_le_bytes(word::<8>(bytes, at))) != 0 {
                return true;
            }
            at += 8;
        }
        at < len && special_bytes(u64::from_le_bytes(word::<8>(bytes, len - 8))) != 0
    } else if len >= 4 {
        let head = u32::from_le_bytes(word::<4>(bytes, 0));
        let tail = u32::from_le_bytes(word::<4>(bytes, len - 4));
        special_bytes(u64::from(head) | u64::from(tail) << 32) != 0
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        let middle = bytes.get(len / 2).copied().unwrap_or(b' ');
        special_bytes(u64::from_le_bytes([
            first, middle, last, b' ', b' ', b' ', b' ', b' ',
        ])) != 0
    } else {
        false
    }
}

/// Powers of ten up to 10^8, for `Parser::number`.
pub(crate) const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// How many ASCII digits `word` (eight input bytes, little-endian) starts with, 0..=8.
///
/// A byte is a digit when its high nibble is 3 both as is and after adding 6 (which moves
/// 0x3A..=0x3F out). Adding 6 carries only out of bytes >= 0xFA, which are not digits, so it
/// can only disturb bytes after the first non-digit.
#[inline(always)]
pub(crate) fn digit_run(word: u64) -> usize {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    let high = word & HIGH_NIBBLES;
    let shifted = word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES;
    let not_digit = (high ^ THREES) | (shifted ^ THREES);
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `count` (1..=8) bytes of `word`, all ASCII digits, the first being
/// the most significant: the digits are moved to the top of the word (zeros, the value of
/// leading '0's, fill in below) and combined pairwise in three multiplications.
#[inline(always)]
pub(crate) fn leading_digits_value(word: u64, count: usize) -> u64 {
    let v = word << (64 - 8 * count.clamp(1, 8));
    let v = ((v & 0x0F0F_0F0F_0F0F_0F0F).wrapping_mul(2561)) >> 8;
    let v = ((v & 0x00FF_00FF_00FF_00FF).wrapping_mul(6_553_601)) >> 16;
    ((v & 0x0000_FFFF_0000_FFFF).wrapping_mul(42_949_672_960_001)) >> 32
}

/// Decimal digits as a `u64`, or `None` when they do not fit.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(bytes: &[u8]) -> u64 {
        let mut padded = [b'x'; 8];
        padded[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(padded)
    }

    #[test]
    fn scan_plain_finds_first_special_byte() {
        for special in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
            for at in 0..20 {
                let mut bytes = vec![b'a'; 20];
                bytes[at] = special;
                if at + 1 < 20 {
                    bytes[at + 1] = b'"';
                }
                assert_eq!(scan_plain(&bytes, 0), at, "{special:#x} at {at}");
            }
        }
        // Bytes that must not stop a run: space, DEL, UTF-8 continuation and lead bytes.
        let plain = [
            b' ', 0x7F, 0x80, 0xBF, 0xC3, 0xE2, 0xF0, 0xFF, b'/', b'!', b'#',
        ];
        for &b in &plain {
            let bytes = vec![b; 19];
            assert_eq!(scan_plain(&bytes, 0), 19);
            assert_eq!(scan_plain(&bytes, 5), 19);
        }
        assert_eq!(scan_plain(b"", 0), 0);
        assert_eq!(scan_plain(b"ab", 7), 7);
    }

    #[test]
    fn has_special_byte_everywhere() {
        assert!(!has_special_byte(b""));
        for len in 1..40 {
            assert!(!has_special_byte(&vec![b'a'; len]));
            assert!(!has_special_byte(&vec![0xE9; len]));
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1F] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    assert!(has_special_byte(&bytes), "{special:#x} at {at} of {len}");
                }
                for plain in [b' ', 0x7F, 0x80, 0xFF, b'!', b'#', b'[', b']'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = plain;
                    assert!(!has_special_byte(&bytes), "{plain:#x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn digit_run_and_value() {
        for len in 0..=8 {
            for tail in [b'x', b'.', b'e', b'/', b':', 0x00, 0xFF, 0xFA, b'"'] {
                let digits: Vec<u8> = (0..len).map(|i| b"9081726354"[i % 10]).collect();
                let mut bytes = digits.clone();
                bytes.resize(8, tail);
                let w = u64::from_le_bytes(bytes.as_slice().try_into().unwrap());
                assert_eq!(digit_run(w), len, "{bytes:?}");
                if len > 0 {
                    let want: u64 = std::str::from_utf8(&digits).unwrap().parse().unwrap();
                    assert_eq!(leading_digits_value(w, len), want);
                }
            }
        }
        assert_eq!(digit_run(word(b"12345678")), 8);
        assert_eq!(leading_digits_value(word(b"00000007"), 8), 7);
        assert_eq!(leading_digits_value(word(b"99999999"), 8), 99_999_999);
    }

    #[test]
    fn parse_u64_limits() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"0"), Some(0));
    }
}
