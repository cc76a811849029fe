//! JSON Lines export and import (`db.export_jsonl` / `db.import_jsonl`,
//! `ferrumdb export` / `ferrumdb import`), shared by every binding.
//!
//! Format: one object per line, `{"key": K, "value": V}`, plus
//! `"expires_at": S` (Unix seconds; fractional for millisecond precision) for
//! a key with a TTL. Lines end with `\n`; blank lines are skipped on import.
//!
//! **The header line.** When the database has indexes, the export starts
//! with one more line recording them:
//! `{"key":"ferrumdb:export","value":{"ferrumdb_export":1,"indexes":[{"field":"email","unique":true}]},"expires_at":1}`.
//! It is an ordinary entry that expired in 1970, so an importer that knows
//! nothing of headers (an older FerrumDB, a script) checks it like any line
//! and skips it as expired. This importer recognises it (the first line,
//! that key, `expires_at` exactly 1, a `ferrumdb_export` version in the
//! value), does not count it, and [`import_jsonl_with_indexes`] creates the
//! indexes it names before writing the records. Treating such a line as a
//! header loses nothing: as an entry it would have been skipped anyway.
//!
//! **Export** pages through the keyspace ([`Database::entries_page`]), so
//! memory stays constant, and writes through a buffer into a temporary file
//! beside the target, which is synced and then renamed over it: an interrupted
//! export never leaves a half-written file under the final name. It is not a
//! point-in-time snapshot when other threads write meanwhile: each key appears
//! once, with a value it had during the export.
//!
//! **Import** streams the file twice, holding one line at a time (at most
//! [`MAX_LINE_BYTES`]). The first pass checks every line (JSON syntax, the
//! fields, the key and value rules of `db[k] = v`), so a bad file writes
//! nothing and the error names the line and what is wrong with it. The second
//! pass writes. Entries whose `expires_at` has passed are skipped and counted;
//! when a key appears twice, the later line wins. Only a failure of the
//! database itself during the second pass (disk full, closed handle) or a file
//! changed between the passes can leave an import partly done. With a unique
//! index the second pass commits the whole file as one batch record instead
//! (see `import_as_one_batch`): all or nothing, so a file that would
//! duplicate a unique value writes nothing.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::documents::{stored_indexes, Documents};
use crate::engine::{validate_key, Database, WriteBatch};
use crate::error::{Error, Result};
use crate::format::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// Entries read per [`Database::entries_page`] call while exporting.
const PAGE: usize = 1000;

/// The longest line import accepts: the largest value, the largest key with
/// every byte escaped (`\u00XX`), and the field names around them.
pub const MAX_LINE_BYTES: usize = MAX_VALUE_BYTES + 6 * MAX_KEY_BYTES + 4096;

/// The key of the header line (see the module doc).
pub const HEADER_KEY: &str = "ferrumdb:export";

/// The header line's `expires_at`, in Unix milliseconds: one second into 1970.
const HEADER_EXPIRES_AT_MS: u64 = 1000;

/// The header format this build writes; a later one may add fields, which
/// this importer ignores.
const HEADER_VERSION: u64 = 1;

/// An index definition an export records: the field, and whether it is unique.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexDefinition {
    /// The dotted field path.
    pub field: String,
    /// Whether the index is unique.
    #[serde(default)]
    pub unique: bool,
}

/// Lines between progress reports.
const REPORT_EVERY: u64 = 1024;

/// Which part of the work a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Export: records written (of the keys in the database).
    Exporting,
    /// Import, first pass: bytes of the file checked.
    Checking,
    /// Import, second pass: records written (of the records checked).
    Importing,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Records written.
    pub imported: u64,
    /// Records skipped because their `expires_at` had passed.
    pub expired: u64,
    /// The index definitions the file's header records (empty without one).
    pub indexes: Vec<IndexDefinition>,
    /// The indexes this import created ([`import_jsonl_with_indexes`]).
    pub indexes_created: Vec<String>,
}

/// Write every live key starting with `prefix` to `path` as JSON Lines and
/// return how many records were written. `progress(stage, done, total)` is
/// called as the work goes.
///
/// # Errors
/// [`Error::Closed`], corruption or I/O errors reading the database, I/O
/// errors creating or writing `path` (nothing is left under `path` then),
/// [`Error::InvalidValue`] if `path` is the database file itself.
pub fn export_jsonl(
    db: &Database,
    path: &Path,
    prefix: &str,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<u64> {
    if let Some(db_path) = db.path() {
        if same_file(db_path, path) {
            return Err(Error::InvalidValue {
                path: "path".into(),
                reason: format!(
                    "{} is the database file itself; export to another file",
                    path.display()
                ),
            });
        }
    }
    let io_err = |e: io::Error| Error::io(path, e);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    // Errors name the target, the file the caller knows about.
    let tmp = TempOut::create(&dir, &name).map_err(io_err)?;
    let total = if prefix.is_empty() {
        db.len() as u64
    } else {
        0
    };
    let mut out = BufWriter::with_capacity(1 << 16, &tmp.file);
    let mut line = Vec::with_capacity(1024);
    db.refresh()?;
    let indexes = stored_indexes(db)?;
    if !indexes.is_empty() {
        encode_header(&mut line, &indexes);
        out.write_all(&line).map_err(io_err)?;
    }
    let mut count = 0u64;
    let mut after: Option<String> = None;
    progress(Stage::Exporting, 0, total);
    loop {
        let page = db.entries_page(prefix, after.as_deref(), PAGE)?;
        for (key, value, expires_at) in &page {
            line.clear();
            encode_line(&mut line, key, value.as_bytes(), *expires_at);
            out.write_all(&line).map_err(io_err)?;
        }
        count += page.len() as u64;
        progress(Stage::Exporting, count, total);
        if page.len() < PAGE {
            break;
        }
        after = page.into_iter().last().map(|(key, _, _)| key);
    }
    out.flush().map_err(io_err)?;
    drop(out);
    tmp.file.sync_all().map_err(io_err)?;
    tmp.persist(path).map_err(io_err)?;
    // Make the rename itself durable; a failure here loses nothing written.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(count)
}

/// Export's temporary file beside the target, removed on drop unless
/// persisted. Made here rather than with `tempfile`, whose errors wrap the
/// OS error so that its errno is lost (an export out of descriptors raised
/// `OSError(0, ...)` in Python instead of EMFILE). `create_new` (O_EXCL)
/// never follows or reuses an existing name, symlinks included.
struct TempOut {
    file: File,
    path: PathBuf,
    persisted: bool,
}

impl TempOut {
    /// A new file `.{name}.{pid}.{n}.tmp` in `dir`.
    fn create(dir: &Path, name: &str) -> io::Result<TempOut> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        for attempt in 0.. {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{pid}.{n}.tmp"));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempOut {
                        file,
                        path,
                        persisted: false,
                    })
                }
                // Left over by a crashed export of an earlier process with
                // this pid: take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => {}
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns by its 1000th attempt")
    }

    /// Rename over `target`.
    fn persist(mut self, target: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.persisted {
            // Best effort: the export already failed with its own error.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Read JSON Lines from `path` into `db` (see the module doc for the rules)
/// and report what was written. A header line is recognised and reported
/// (`ImportReport::indexes`), not acted on: [`import_jsonl_with_indexes`]
/// creates the indexes it records.
///
/// # Errors
/// [`Error::InvalidValue`] naming the file and line for a bad line (nothing
/// written), I/O errors opening or reading `path` ([`Error::Io`] naming it),
/// [`Error::ReadOnly`], [`Error::Closed`], and the database's write errors.
pub fn import_jsonl(
    db: &Database,
    path: &Path,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<ImportReport> {
    import_with(db, path, &mut |_| Ok(()), progress)
}

/// [`import_jsonl`] into a database with its index layer, first creating
/// the indexes the file's header records when `indexes` is true (a unique
/// one is then enforced on the import as a whole). They are created after
/// every line has been checked and before anything is written; an index
/// that already exists is kept, and if the import fails the indexes it
/// created are dropped again, so a failed import leaves the database as it
/// was.
///
/// # Errors
/// As [`import_jsonl`]; [`Error::InvalidConfig`] when the file records an
/// index that exists here with the other `unique` setting, and
/// [`Error::DuplicateKey`] when a recorded unique index does not hold for
/// the data already here or in the file (nothing written either way).
pub fn import_jsonl_with_indexes(
    docs: &Documents,
    path: &Path,
    indexes: bool,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<ImportReport> {
    let mut created = Vec::new();
    let result = import_with(
        docs.database(),
        path,
        &mut |recorded| {
            if !indexes {
                return Ok(());
            }
            for index in recorded {
                if docs.create_index_with(&index.field, index.unique, &mut |_, _| {})? {
                    created.push(index.field.clone());
                }
            }
            Ok(())
        },
        progress,
    );
    match result {
        Ok(mut report) => {
            report.indexes_created = created;
            Ok(report)
        }
        Err(e) => {
            for field in &created {
                // Best effort: the import already failed with its own error.
                let _ = docs.drop_index(field);
            }
            Err(e)
        }
    }
}

/// The import: pass 1 checks every line, then `before_writing` gets the
/// header's index definitions, then pass 2 writes.
fn import_with(
    db: &Database,
    path: &Path,
    before_writing: &mut dyn FnMut(&[IndexDefinition]) -> Result<()>,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<ImportReport> {
    if db.is_read_only() {
        return Err(Error::ReadOnly);
    }
    // Pass 1: check everything, write nothing.
    let total_bytes = File::open(path)
        .and_then(|f| f.metadata())
        .map_err(|e| Error::io(path, e))?
        .len();
    let mut records = 0u64;
    let mut read = 0u64;
    let mut header: Option<(u64, Vec<IndexDefinition>)> = None;
    let mut first = true;
    progress(Stage::Checking, 0, total_bytes);
    each_line(path, |line_no, bytes, line| {
        check_line(line).map_err(|reason| bad_line(path, line_no, &reason))?;
        read = bytes;
        if std::mem::take(&mut first) {
            if let Some(indexes) = header_of(line) {
                header = Some((line_no, indexes));
                return Ok(());
            }
        }
        records += 1;
        if records.is_multiple_of(REPORT_EVERY) {
            progress(Stage::Checking, bytes, total_bytes);
        }
        Ok(())
    })?;
    progress(Stage::Checking, total_bytes.max(read), total_bytes);
    let (header_line, indexes) = header.unwrap_or((0, Vec::new()));
    before_writing(&indexes)?;
    let mut report = if db.checks_writes() {
        import_as_one_batch(db, path, header_line, records, progress)?
    } else {
        import_one_by_one(db, path, header_line, records, progress)?
    };
    report.indexes = indexes;
    Ok(report)
}

/// Pass 2 without a unique index: one write per record.
fn import_one_by_one(
    db: &Database,
    path: &Path,
    header_line: u64,
    records: u64,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    progress(Stage::Importing, 0, records);
    each_line(path, |line_no, _, line| {
        if line_no == header_line {
            return Ok(());
        }
        let record = parse_line(line).map_err(|reason| {
            bad_line(
                path,
                line_no,
                &format!("{reason} (the file changed during the import)"),
            )
        })?;
        let now = db.clock().now_ms();
        match record.expires_at_ms {
            Some(at) if at <= now => report.expired += 1,
            at => {
                db.put_raw_expiring_at(&record.key, record.value.as_bytes(), at.unwrap_or(0))?;
                report.imported += 1;
            }
        }
        let done = report.imported + report.expired;
        if done.is_multiple_of(REPORT_EVERY) {
            progress(Stage::Importing, done, records);
        }
        Ok(())
    })?;
    progress(Stage::Importing, report.imported + report.expired, records);
    Ok(report)
}

/// Pass 2 with a unique index: every record goes into one batch, committed
/// as one record, so the index checks the file's final state as a whole (a
/// key rewritten later in the file, or a value moved from one key to another,
/// is fine) and a duplicate anywhere writes nothing. The batch is held in
/// memory and limited to [`crate::MAX_BATCH_BYTES`]; a larger file fails
/// before writing, asking for smaller parts.
fn import_as_one_batch(
    db: &Database,
    path: &Path,
    header_line: u64,
    records: u64,
    progress: &mut dyn FnMut(Stage, u64, u64),
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut batch = WriteBatch::new();
    let now = db.clock().now_ms();
    progress(Stage::Importing, 0, records);
    each_line(path, |line_no, _, line| {
        if line_no == header_line {
            return Ok(());
        }
        let record = parse_line(line).map_err(|reason| {
            bad_line(
                path,
                line_no,
                &format!("{reason} (the file changed during the import)"),
            )
        })?;
        match record.expires_at_ms {
            Some(at) if at <= now => report.expired += 1,
            at => {
                batch.put_expiring_at(
                    &record.key,
                    record.value.as_bytes().to_vec(),
                    at.unwrap_or(0),
                )?;
                report.imported += 1;
            }
        }
        Ok(())
    })?;
    db.commit(&batch, [])?;
    progress(Stage::Importing, report.imported + report.expired, records);
    Ok(report)
}

/// The header line (see the module doc) recording `indexes`.
fn encode_header(out: &mut Vec<u8>, indexes: &[(String, bool)]) {
    let indexes: Vec<serde_json::Value> = indexes
        .iter()
        .map(|(field, unique)| serde_json::json!({ "field": field, "unique": unique }))
        .collect();
    let value = serde_json::json!({ "ferrumdb_export": HEADER_VERSION, "indexes": indexes });
    encode_line(
        out,
        HEADER_KEY,
        value.to_string().as_bytes(),
        HEADER_EXPIRES_AT_MS,
    );
}

/// The index definitions of a header line, or `None` when `text` (a line
/// that passed [`check_line`]) is not one.
fn header_of(text: &str) -> Option<Vec<IndexDefinition>> {
    #[derive(Deserialize)]
    struct Header {
        ferrumdb_export: u64,
        #[serde(default)]
        indexes: Vec<IndexDefinition>,
    }
    if !text.contains(HEADER_KEY) {
        return None;
    }
    let (line, expires_at_ms) = read_line::<&RawValue>(text).ok()?;
    if line.key != HEADER_KEY || expires_at_ms != Some(HEADER_EXPIRES_AT_MS) {
        return None;
    }
    let header: Header = serde_json::from_str(line.value.get()).ok()?;
    (header.ferrumdb_export >= 1).then_some(header.indexes)
}

/// One line: `{"key":…,"value":…[,"expires_at":…]}` and a newline.
fn encode_line(out: &mut Vec<u8>, key: &str, value: &[u8], expires_at_ms: u64) {
    out.extend_from_slice(b"{\"key\":");
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
    out.extend_from_slice(b",\"value\":");
    if value.contains(&b'\n') || value.contains(&b'\r') {
        // Stored through set_json with line breaks between tokens (inside a
        // JSON string they are always escaped): drop them to keep one line.
        push_without_line_breaks(out, value);
    } else {
        out.extend_from_slice(value);
    }
    if expires_at_ms != 0 {
        out.extend_from_slice(b",\"expires_at\":");
        out.extend_from_slice(seconds(expires_at_ms).as_bytes());
    }
    out.extend_from_slice(b"}\n");
}

/// Unix milliseconds as seconds, exactly: `1800000000`, `1800000000.5`.
fn seconds(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        s.to_string()
    } else {
        let frac = format!("{frac:03}");
        format!("{s}.{}", frac.trim_end_matches('0'))
    }
}

/// Copy `json` with `\n` and `\r` outside strings replaced by spaces.
fn push_without_line_breaks(out: &mut Vec<u8>, json: &[u8]) {
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        let b = match b {
            _ if escaped => {
                escaped = false;
                b
            }
            b'\\' if in_string => {
                escaped = true;
                b
            }
            b'"' => {
                in_string = !in_string;
                b
            }
            b'\n' | b'\r' if !in_string => b' ',
            _ => b,
        };
        out.push(b);
    }
}

/// Call `f(line_number, bytes_read_so_far, line)` for every non-blank line of
/// `path`, holding one line in memory.
fn each_line(path: &Path, mut f: impl FnMut(u64, u64, &str) -> Result<()>) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut bytes = 0u64;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        bytes += n as u64;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            return Err(bad_line(
                path,
                line_no,
                &format!("longer than {MAX_LINE_BYTES} bytes, the most a key and value can take"),
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|e| bad_line(path, line_no, &format!("not valid UTF-8 ({e})")))?;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        f(line_no, bytes, text)?;
    }
}

fn bad_line(path: &Path, line_no: u64, reason: &str) -> Error {
    Error::InvalidValue {
        path: format!("{} line {line_no}", path.display()),
        reason: reason.to_owned(),
    }
}

/// A checked import line.
struct Record<'a> {
    key: Cow<'a, str>,
    value: &'a str,
    /// Unix milliseconds, `None` for no expiry.
    expires_at_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an object {\"key\": \"...\", \"value\": ...} with an optional \"expires_at\""
)]
struct Line<'a, V> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    /// [`Check`] in the first pass, the raw text in the second.
    value: V,
    #[serde(default)]
    expires_at: Option<f64>,
}

/// Read one line with its value as `V`, checking the key and the expiry by
/// the rules of `db.set(k, v, ttl)`; the reason when it is bad.
fn read_line<'a, V: Deserialize<'a>>(
    text: &'a str,
) -> std::result::Result<(Line<'a, V>, Option<u64>), String> {
    // (serde would also take a positional array for the struct.)
    if !text.trim_start().starts_with('{') {
        return Err(
            "expected an object {\"key\": \"...\", \"value\": ...} with an optional \"expires_at\""
                .into(),
        );
    }
    let line: Line<'a, V> = serde_json::from_str(text).map_err(|e| without_position(&e))?;
    validate_key(&line.key).map_err(|e| e.to_string())?;
    let expires_at_ms = match line.expires_at {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s * 1000.0 < u64::MAX as f64 => {
            // Never 0, which would mean "no expiry".
            Some(((s * 1000.0).round() as u64).max(1))
        }
        Some(s) => {
            return Err(format!(
                "\"expires_at\" must be a positive number of Unix seconds, not {s}"
            ))
        }
    };
    Ok((line, expires_at_ms))
}

/// First pass: the whole line by the rules of `db[k] = v`, the value parsed
/// by the same acceptance set as every other way of storing one (numbers in
/// range, escapes valid), so whatever is imported reads back.
fn check_line(text: &str) -> std::result::Result<(), String> {
    read_line::<Check>(text)?;
    if text.len() > MAX_VALUE_BYTES {
        // Rare: measure the value itself.
        let (line, _) = read_line::<&RawValue>(text)?;
        let len = line.value.get().len();
        if len > MAX_VALUE_BYTES {
            return Err(format!(
                "the value is {len} bytes of JSON; the limit is {MAX_VALUE_BYTES} bytes"
            ));
        }
    }
    Ok(())
}

/// Second pass: the record to store (the value as its raw text).
fn parse_line(text: &str) -> std::result::Result<Record<'_>, String> {
    let (line, expires_at_ms) = read_line::<&RawValue>(text)?;
    Ok(Record {
        key: line.key,
        value: line.value.get(),
        expires_at_ms,
    })
}

/// serde_json's message without its " at line 1 column N" (every line is line 1
/// to it), with the column kept in words.
fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(at) => msg[..at].to_owned(),
        None => msg,
    };
    format!("{msg} (column {})", e.column())
}

/// Accepts exactly the JSON documents serde_json can read as a value (what the
/// Python layer accepts), building nothing.
struct Check;

impl<'de> Deserialize<'de> for Check {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(CheckVisitor).map(|()| Check)
    }
}

struct CheckVisitor;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element::<Check>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while map.next_entry::<Check, Check>()?.is_some() {}
        Ok(())
    }
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(1_800_000_000_000), "1800000000");
        assert_eq!(seconds(1_800_000_000_500), "1800000000.5");
        assert_eq!(seconds(1_800_000_000_001), "1800000000.001");
        assert_eq!(seconds(1_800_000_000_120), "1800000000.12");
    }

    #[test]
    fn lines_are_one_line_of_json() {
        let mut out = Vec::new();
        encode_line(&mut out, "a \"b\"\n", b"{\n \"x\": \"l1\\nl2\"\r\n}", 0);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"key": "a \"b\"\n", "value": {"x": "l1\nl2"}})
        );
        let mut out = Vec::new();
        encode_line(&mut out, "k", b"1", 1_500);
        assert_eq!(out, b"{\"key\":\"k\",\"value\":1,\"expires_at\":1.5}\n");
    }

    #[test]
    fn line_checks() {
        let ok =
            parse_line(r#"{"key": "k", "value": {"a": [1, 2.5, null]}, "expires_at": 2.0015}"#)
                .unwrap();
        assert_eq!(ok.key, "k");
        assert_eq!(ok.value, r#"{"a": [1, 2.5, null]}"#);
        assert_eq!(ok.expires_at_ms, Some(2002));
        assert_eq!(
            parse_line(r#"{"value": 1, "key": "k", "expires_at": null}"#)
                .unwrap()
                .expires_at_ms,
            None
        );
        for (line, needle) in [
            (r#"{"key": "k"}"#, "missing field `value`"),
            (r#"{"value": 1}"#, "missing field `key`"),
            (
                r#"{"key": 1, "value": 1}"#,
                "invalid type: integer `1`, expected a string",
            ),
            (r#"{"key": "", "value": 1}"#, "invalid key"),
            (
                r#"{"key": "k", "value": 1, "ttl": 5}"#,
                "unknown field `ttl`",
            ),
            (r#"{"key": "k", "value": 1e400}"#, "number out of range"),
            (
                r#"{"key": "k", "value": "\ud800"}"#,
                "unexpected end of hex escape",
            ),
            (
                r#"{"key": "k", "value": 1, "expires_at": -1}"#,
                "positive number",
            ),
            (
                r#"{"key": "k", "value": 1, "expires_at": "soon"}"#,
                "invalid type: string",
            ),
            (r#"[1, 2]"#, "expected an object {\"key\""),
            (r#"{"key": "k", "value": 1"#, "EOF while parsing"),
            (r#"{"key": "k", "value": 1} x"#, "trailing characters"),
        ] {
            let e = check_line(line)
                .err()
                .unwrap_or_else(|| panic!("{line} passed"));
            assert!(e.contains(needle), "{line}: {e}");
            assert!(!e.contains("at line 1"), "{e}");
        }
    }
}
