//! The key directory: every live key and where its latest record lives.
//!
//! An ordered map (B-tree) rather than a hash map, so `scan(prefix)` and key
//! paging walk keys in order without sorting. Values are never held here, only
//! a 16-byte location, which is what lets a database outgrow memory. Keys are
//! `CompactString`s: up to 24 bytes live inline in the tree node, so a lookup
//! compares keys without chasing a pointer per comparison, and short keys cost
//! no allocation.

use std::collections::BTreeMap;

use compact_str::CompactString;

use crate::format::RECORD_HEADER_LEN;

/// Where a key's live record is: its offset in the log and its value length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Offset of the record's first byte.
    pub offset: u64,
    /// Length of the JSON value.
    pub value_len: u32,
}

impl Loc {
    /// Bytes the whole record occupies on disk.
    pub fn record_len(&self, key: &str) -> u64 {
        (RECORD_HEADER_LEN + key.len()) as u64 + u64::from(self.value_len)
    }
}

/// Ordered map from key to location.
pub type Keydir = BTreeMap<CompactString, Loc>;
