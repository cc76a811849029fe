//! Bytes on disk, and nothing else: the file header and the log record.
//!
//! A database file is a 64-byte header followed by records appended one after
//! another (a Bitcask log). All integers are little-endian.
//!
//! ```text
//! File header (64 bytes)
//!   0  magic        8  b"FERRUMDB"
//!   8  version      u16  format version, currently 1; newer versions are refused
//!  10  flags        u16  bit 0: encrypted (records are envelopes, below); other bits must be 0
//!  12  header_len   u32  64, or 144 when encrypted; records start here
//!  16  generation   u64  incremented by every compaction rewrite
//!  24  reserved     36   zero
//!  60  crc32c       u32  CRC32C of bytes 0..60
//!
//! Record (32-byte header + key + value)
//!   0  crc32c       u32  CRC32C of bytes 4..end of record (header rest, key, value)
//!   4  kind         u8   1 = put, 2 = delete (tombstone), 3 = batch (a transaction, below),
//!                        4 = meta (index definitions, in their own key namespace; empty
//!                        value = removal)
//!   5  flags        u8   0 (reserved: encrypted payload, compressed value)
//!   6  reserved     u16  0
//!   8  seq          u64  write sequence number, strictly increasing in a file
//!  16  expires_at   u64  Unix milliseconds after which the key is dead; 0 = never (TTL, issue #3)
//!  24  key_len      u32  1..=65536, key is UTF-8
//!  28  value_len    u32  0 for a delete; otherwise the length of the JSON value
//!  32  key bytes, then value bytes (one JSON document, UTF-8)
//!
//! Batch record (one committed transaction)
//!   kind 3, key_len 0, expires_at 0, value_len = the bytes of the records it holds:
//!   one or more complete put (1) / delete (2) records, each exactly as above with
//!   its own checksum and expiry and the batch's seq, laid end to end. The batch
//!   checksum covers them all, so a batch torn by a crash fails as one record and
//!   is cut off whole: a transaction is on disk entirely or not at all. In a plain
//!   file the key directory points straight at the inner records, so reading a key
//!   written by a transaction reads (and verifies) just its record; an encrypted
//!   file seals the whole batch as one envelope, which a read opens whole.
//!
//! Encryption block (bytes 64..144, only when flag bit 0 is set)
//!  64  file_id      16   random per file (new for every compaction/rekey rewrite)
//!  80  kdf          u8   0 = raw 32-byte key, 1 = Argon2id (v0x13) of a passphrase
//!  81  reserved     3    zero
//!  84  m_cost       u32  Argon2id memory in KiB (0 for a raw key)
//!  88  t_cost       u32  Argon2id passes
//!  92  p_cost       u32  Argon2id lanes
//!  96  salt         16   Argon2id salt (zero for a raw key)
//! 112  check_nonce  12   key check: AES-256-GCM seal of nothing, AAD = "ferrumdb key check"
//! 124  check_tag    16     ‖ header bytes 0..112, under the file key (below)
//! 140  crc32c       u32  CRC32C of bytes 64..140
//!
//! Keys: master = the raw key, or Argon2id(passphrase, salt, m, t, p) → 32 bytes;
//! file key = HKDF-SHA256(ikm = master, salt = file_id, info = "ferrumdb v1 record key").
//!
//! Encrypted record (envelope), in place of every plain record
//!   0  crc32c       u32  CRC32C of bytes 4..end of envelope
//!   4  body_len     u32  length of the plain record inside (33..=32+1 GiB: a batch)
//!   8  nonce        12   random for every envelope
//!  20  body         body_len  AES-256-GCM ciphertext of a whole plain record (above:
//!                        crc, kind, seq, expires_at, lengths, key, value)
//!  20+body_len tag  16   GCM tag; AAD = "FDBR" ‖ file_id ‖ offset of the envelope (u64)
//! ```
//!
//! So in an encrypted file nothing but lengths is in the clear: keys, values,
//! index definitions (meta records), kinds, sequence numbers and expiry times
//! are all inside the body. The AAD binds each envelope to its file and offset:
//! a record moved, duplicated, swapped or spliced in from another file (even one
//! with the same key) fails its tag, reported as an encryption error naming
//! file and offset. Cutting whole envelopes off the end is indistinguishable
//! from a crash before they were written, and is not detected. The recovery
//! rule below applies to envelopes as to plain records (with the envelope's
//! crc and 8-byte length header); an envelope whose crc holds but whose tag
//! fails is never a torn tail.
//!
//! Recovery rule: the writer appends one record (or batch) at a time, so a
//! crash leaves at most one incomplete write, and it is the last thing in the
//! file; but its bytes need not have landed front to back (its header may be
//! missing while later bytes of it are there). So a record that fails to
//! decode counts as a *torn tail* (cut off by a crash, truncated on open)
//! only if no checksum-valid record starts anywhere in the non-zero bytes
//! after it, other than the inner records of that torn batch (puts/deletes
//! with the seq right after the last good record; every later write has a
//! higher seq; an encrypted batch is a single envelope). Such a write was never acknowledged. If an intact later
//! record exists, the failure is corruption, unless it was being written
//! while a reader without the writer lock read it: such a reader reads the
//! failed record once more before calling it corruption (the intact later
//! record proves it was complete by then). A file may end in zero bytes
//! (preallocated, unwritten space); they are not
//! records. Hint files (`PATH.hint`) have their own magic and layout: see
//! [`HintHeader`]. A meta record whose key is [`HINT_DIGEST_KEY`] (starting
//! with NUL, which no user key can) is not a key: it carries the SHA-256 of
//! the hint file written at that point, and replay skips it.

mod batch;
mod envelope;
mod header;
mod hint;
mod record;

pub use batch::{batch_record_offset, BatchEncoder, BatchRecords};
pub use envelope::{
    begin_envelope, finish_envelope, split_envelope, EnvelopeHeader, ENVELOPE_HEADER_LEN,
    ENVELOPE_OVERHEAD, ENVELOPE_PREFIX_LEN,
};
pub use header::{
    EncryptionHeader, FileHeader, ENCRYPTED_HEADER_LEN, FLAG_ENCRYPTED, HEADER_LEN, KEY_CHECK_AT,
    MAGIC, VERSION,
};
pub use hint::{
    encode_hint_digest_record, encode_hint_entry, hint_digest_of, is_hint_digest, HintDigest,
    HintEntries, HintEntry, HintHeader, HINT_DIGEST_KEY, HINT_DIGEST_LEN, HINT_DIGEST_RECORD_LEN,
    HINT_HEADER_LEN, HINT_MAGIC, HINT_VERSION,
};
pub use record::{encode_record, DecodeError, Record, RecordHeader, RecordKind, RECORD_HEADER_LEN};

/// Largest key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 64 * 1024;

/// Largest value, in JSON bytes.
pub const MAX_VALUE_BYTES: usize = 256 * 1024 * 1024;

/// Largest batch (one transaction's records together), in bytes.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024 * 1024;
