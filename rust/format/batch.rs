//! Batch records: a committed transaction as one record on disk.
//!
//! A batch is an ordinary record header (kind 3, no key) whose value is a run
//! of complete put/delete records. One checksum over the whole run is what
//! makes a transaction atomic across a crash: a batch cut short fails its
//! checksum as a unit and the torn-tail rule drops it whole. The inner records
//! keep their own headers and checksums so the key directory can point at one
//! of them and a read verifies just that record.

use super::record::{encode_record, DecodeError, Record, RecordKind, RECORD_HEADER_LEN};

/// Where the key directory finds the record that sits `at` bytes into a
/// batch written at `batch_offset` (the `at` that [`BatchEncoder::push`]
/// returns and [`BatchRecords`] yields). In a plain log that is the record
/// itself, so a read verifies just that record. In an encrypted log the
/// batch is sealed whole into one envelope at `batch_offset`: every key of
/// the transaction points at the envelope, and a read opens it and finds
/// the record by key. The writer and every reader of a log use this one rule.
pub fn batch_record_offset(batch_offset: u64, at: usize, sealed: bool) -> u64 {
    if sealed {
        batch_offset
    } else {
        batch_offset + at as u64
    }
}

/// Builds one batch record in a caller's buffer: [`BatchEncoder::begin`],
/// then one [`BatchEncoder::push`] per write, then [`BatchEncoder::finish`].
#[derive(Debug)]
pub struct BatchEncoder {
    start: usize,
    seq: u64,
}

impl BatchEncoder {
    /// Start a batch with sequence number `seq` at the end of `out`.
    pub fn begin(out: &mut Vec<u8>, seq: u64) -> Self {
        let start = out.len();
        out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
        BatchEncoder { start, seq }
    }

    /// Append one put or delete; returns its offset from the batch's first byte
    /// (where the key directory will find it).
    pub fn push(
        &self,
        out: &mut Vec<u8>,
        kind: RecordKind,
        expires_at: u64,
        key: &str,
        value: &[u8],
    ) -> usize {
        let at = out.len() - self.start;
        encode_record(out, kind, self.seq, expires_at, key, value);
        at
    }

    /// Write the batch header (length and checksum over everything pushed).
    /// The caller keeps the total under [`super::MAX_BATCH_BYTES`].
    pub fn finish(self, out: &mut [u8]) {
        let inner = out.len() - self.start - RECORD_HEADER_LEN;
        let Some(rec) = out.get_mut(self.start..) else {
            return;
        };
        rec[4] = RecordKind::Batch as u8;
        rec[8..16].copy_from_slice(&self.seq.to_le_bytes());
        rec[28..32].copy_from_slice(&(inner as u32).to_le_bytes());
        let crc = crc32c::crc32c(&rec[4..]);
        rec[0..4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The records inside a verified batch, with their offsets from the batch's
/// first byte. Yields an error (and then stops) if an inner record is not a
/// well-formed put/delete of the batch's seq: with the batch checksum intact
/// that can only be a writer bug or a forged file, never a torn write.
#[derive(Debug)]
pub struct BatchRecords<'a> {
    batch: Record<'a>,
    pos: usize,
    failed: bool,
}

impl<'a> BatchRecords<'a> {
    /// Iterate the records of `batch`, which must be a decoded batch record.
    pub fn new(batch: Record<'a>) -> Self {
        BatchRecords {
            batch,
            pos: 0,
            failed: batch.header.kind != RecordKind::Batch,
        }
    }
}

impl<'a> Iterator for BatchRecords<'a> {
    type Item = Result<(usize, Record<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.batch.value.len() {
            return None;
        }
        let bytes = self.batch.value.get(self.pos..).unwrap_or_default();
        let rec = match Record::decode(bytes) {
            Ok(r) if !matches!(r.header.kind, RecordKind::Put | RecordKind::Delete) => Err(
                DecodeError::Malformed("batch holds a record that is not a put or delete"),
            ),
            Ok(r) if r.header.seq != self.batch.header.seq => Err(DecodeError::Malformed(
                "batch holds a record of another seq",
            )),
            other => other,
        };
        match rec {
            Ok(r) => {
                let at = RECORD_HEADER_LEN + self.pos;
                self.pos += r.header.record_len();
                Some(Ok((at, r)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<usize>) {
        let mut out = b"prefix".to_vec();
        let enc = BatchEncoder::begin(&mut out, 7);
        let a = enc.push(&mut out, RecordKind::Put, 0, "a", b"1");
        let b = enc.push(&mut out, RecordKind::Delete, 0, "b", b"");
        let c = enc.push(&mut out, RecordKind::Put, 99, "c", br#"{"x":[1,2]}"#);
        enc.finish(&mut out);
        (out.split_off(6), vec![a, b, c])
    }

    #[test]
    fn round_trip_with_offsets() {
        let (bytes, offsets) = sample();
        let batch = Record::decode(&bytes).expect("batch decodes");
        assert_eq!(batch.header.kind, RecordKind::Batch);
        assert_eq!(batch.header.seq, 7);
        assert_eq!(batch.key, "");
        let inner: Vec<_> = BatchRecords::new(batch)
            .map(|r| r.expect("inner record decodes"))
            .collect();
        let got: Vec<_> = inner
            .iter()
            .map(|(at, r)| (*at, r.header.kind, r.key, r.value, r.header.expires_at))
            .collect();
        assert_eq!(
            got,
            vec![
                (offsets[0], RecordKind::Put, "a", &b"1"[..], 0),
                (offsets[1], RecordKind::Delete, "b", &b""[..], 0),
                (offsets[2], RecordKind::Put, "c", &br#"{"x":[1,2]}"#[..], 99),
            ]
        );
        // The offsets point at records a plain read can verify on their own.
        for (at, r) in &inner {
            let alone = Record::decode(&bytes[*at..]).expect("inner record stands alone");
            assert_eq!(alone.key, r.key);
        }
    }

    #[test]
    fn every_cut_and_every_flip_fails_the_whole_batch() {
        let (bytes, _) = sample();
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            let mut c = bytes.clone();
            c[i] ^= 0x10;
            assert!(Record::decode(&c).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn inner_records_must_be_puts_or_deletes_of_the_batch_seq() {
        // A meta record smuggled into a batch with a valid outer checksum.
        let mut out = Vec::new();
        let enc = BatchEncoder::begin(&mut out, 3);
        enc.push(&mut out, RecordKind::Meta, 0, "index:x", b"{}");
        enc.finish(&mut out);
        let batch = Record::decode(&out).expect("outer checksum is fine");
        let first = BatchRecords::new(batch).next().expect("one item");
        assert!(matches!(first, Err(DecodeError::Malformed(_))));

        let mut out = Vec::new();
        let enc = BatchEncoder::begin(&mut out, 3);
        let at = enc.push(&mut out, RecordKind::Put, 0, "k", b"1");
        out[at + 8] = 4; // the inner record claims seq 4
        let crc = crc32c::crc32c(&out[at + 4..]);
        out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        enc.finish(&mut out);
        let batch = Record::decode(&out).expect("outer checksum is fine");
        let items: Vec<_> = BatchRecords::new(batch).collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
    }

    #[test]
    fn a_batch_needs_no_key_and_at_least_one_record() {
        let mut out = Vec::new();
        BatchEncoder::begin(&mut out, 1).finish(&mut out);
        assert_eq!(
            Record::decode(&out),
            Err(DecodeError::Malformed("batch length out of range"))
        );
    }
}
