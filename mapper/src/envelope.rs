//! Envelope decoding: splits event bodies and files into single raw records, streaming.
//!
//! Accepted shapes, in one stream or mixed: `{"records":[...]}` envelopes (many records per
//! event), bare record objects, NDJSON (or any whitespace-separated sequence of values), and
//! JSON arrays; a UTF-8 BOM anywhere a value may start. The splitter is a byte-level scanner
//! that tracks strings and nesting, so it never holds more than one record in memory, however
//! large the file (a 10 GB `{"records":[...]}` file streams record by record).
//!
//! Sanitizers fix two kinds of broken JSON that Azure services really emit; each is on by
//! default, can be switched off, and is counted:
//! - raw control characters (newlines, tabs) inside strings → escaped (`\n`, `\u0001`);
//! - single-quoted pseudo-JSON (`{'a': 'b', 'c': True}`) → double quotes, Python literals
//!   `True`/`False`/`None` → `true`/`false`/`null`.
//!
//! Input that is not JSON at all (a garbage line) comes out as a [`RawRecord`] with an
//! `error`, so it can be dead-lettered with its position; the scanner then resynchronises at
//! the next line.
use std::io::{self, BufRead};
use std::sync::atomic::{AtomicU64, Ordering};

/// Sanitizer switches and limits.
#[derive(Clone, Debug)]
pub struct EnvelopeConfig {
    /// Escape raw control characters inside strings.
    pub fix_control_chars: bool,
    /// Turn single-quoted pseudo-JSON into JSON.
    pub fix_single_quotes: bool,
    /// A record larger than this is cut and dead-lettered (its first bytes kept).
    pub max_record_bytes: usize,
}

impl Default for EnvelopeConfig {
    fn default() -> Self {
        EnvelopeConfig {
            fix_control_chars: true,
            fix_single_quotes: true,
            max_record_bytes: 64 << 20,
        }
    }
}

/// Counters, shared across threads.
#[derive(Debug, Default)]
pub struct EnvelopeStats {
    /// Records split out (good or bad).
    pub records: AtomicU64,
    /// Records whose raw control characters were escaped.
    pub fixed_control_chars: AtomicU64,
    /// Records converted from single-quoted pseudo-JSON.
    pub fixed_single_quotes: AtomicU64,
    /// Envelopes (`{"records":[...]}` objects) seen.
    pub envelopes: AtomicU64,
    /// Pieces that could not be split into a record (garbage, truncation, oversize).
    pub bad: AtomicU64,
}

/// One record split out of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// The record's JSON bytes after sanitizing (or the raw bytes of a bad piece).
    pub json: Vec<u8>,
    /// 1-based line where the record starts (files) or where it sits in the body.
    pub line: u64,
    /// Index of the record in its envelope or array (0 for bare records).
    pub index: u32,
    /// Why this piece is not a record; `None` for a record the mapper should try.
    pub error: Option<String>,
}

/// A good `BufReader` capacity for a file or stdin that a [`RecordReader`] reads. `azlog-hub
/// map` maps the records split from one read as a batch, family by family: with 1 MiB reads
/// (≈ 1,000 records of the bench input) it ran 12–14 % faster over the 100 MB fixture mix
/// than with 256 KiB reads (≈ 250 records, too few to repeat a family), while the serde_json
/// baseline (`examples/parse_only.rs`, which reads the same way) did not change. A pipe
/// still gives what it holds (64 KiB by default on Linux) to each read.
pub const READ_BUFFER: usize = 1 << 20;

/// How much of an oversize or garbage piece is kept for the dead-letter store.
const KEEP_BAD_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Between top-level values.
    Top,
    /// Scanning a value into `buf`.
    Value,
    /// Inside an array of records (envelope `records` array or a top-level array), between
    /// elements. The array's elements live at `list_depth`.
    List,
    /// After an envelope's `records` array: skipping the rest of the envelope object.
    EnvelopeTail,
    /// Skipping a garbage line.
    Garbage,
}

/// The streaming splitter. Wrap any `BufRead` (a file, stdin, or a `&[u8]` event body).
pub struct RecordReader<R> {
    /// The input; taken out while a chunk of it is scanned (so the chunk is borrowed from the
    /// input, not copied), put back before `fill` returns.
    input: Option<R>,
    cfg: EnvelopeConfig,
    mode: Mode,
    /// Current nesting depth (objects + arrays).
    depth: u32,
    /// Depth of elements of the list being split (1: top-level array; 2: envelope records).
    list_depth: u32,
    /// The value in `buf` is a top-level object (candidate envelope).
    top_object: bool,
    /// Keys seen so far in the top-level object (only the first matters).
    in_string: bool,
    /// Inside a single-quoted string being rewritten.
    in_sq_string: bool,
    escape: bool,
    buf: Vec<u8>,
    fixed_ctrl: bool,
    fixed_sq: bool,
    oversize: bool,
    line: u64,
    start_line: u64,
    index: u32,
    /// The value being scanned is a scalar (ends at a delimiter, not a bracket).
    scalar: bool,
    ready: std::collections::VecDeque<RawRecord>,
    eof: bool,
    stats: std::sync::Arc<EnvelopeStats>,
}

impl<R: BufRead> RecordReader<R> {
    /// A reader with its own counters.
    pub fn new(input: R, cfg: EnvelopeConfig) -> Self {
        Self::with_stats(input, cfg, Default::default())
    }

    /// A reader that adds to shared counters.
    pub fn with_stats(input: R, cfg: EnvelopeConfig, stats: std::sync::Arc<EnvelopeStats>) -> Self {
        RecordReader {
            input: Some(input),
            cfg,
            mode: Mode::Top,
            depth: 0,
            list_depth: 0,
            top_object: false,
            in_string: false,
            in_sq_string: false,
            escape: false,
            buf: Vec::with_capacity(4096),
            fixed_ctrl: false,
            fixed_sq: false,
            oversize: false,
            line: 1,
            start_line: 1,
            index: 0,
            scalar: false,
            ready: Default::default(),
            eof: false,
            stats,
        }
    }

    /// The next record split from what was already read, without reading more input (`None`
    /// when that is used up, even if the input has more). After [`Iterator::next`], this
    /// drains the records of the same read: a batch that never waits for a slow stream.
    pub fn next_ready(&mut self) -> Option<RawRecord> {
        self.ready.pop_front()
    }

    /// The counters this reader adds to.
    pub fn stats(&self) -> &EnvelopeStats {
        &self.stats
    }

    fn push_byte(&mut self, b: u8) {
        if self.buf.len() < self.cfg.max_record_bytes {
            self.buf.push(b);
        } else {
            self.oversize = true;
        }
    }

    fn push_bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.push_byte(x);
        }
    }

    fn begin_value(&mut self, index: u32) {
        self.buf.clear();
        self.fixed_ctrl = false;
        self.fixed_sq = false;
        self.oversize = false;
        self.in_string = false;
        self.in_sq_string = false;
        self.escape = false;
        self.scalar = false;
        self.start_line = self.line;
        self.index = index;
        self.mode = Mode::Value;
    }

    /// The value in `buf` is complete.
    fn finish_value(&mut self) {
        let in_list = self.list_depth > 0;
        if !in_list && self.top_object && !self.oversize && looks_like_late_envelope(&self.buf) {
            // `{"a":..,"records":[...]}`: the records key was not first, so the object was
            // buffered whole; split it now.
            self.split_buffered_envelope();
        } else {
            // An exact-size copy: `buf` keeps its capacity for the next record (taking it
            // would regrow a fresh buffer from empty for every record).
            let mut json = if self.fixed_sq {
                fix_python_literals(&self.buf)
            } else {
                self.buf.clone()
            };
            self.buf.clear();
            let error = if self.oversize {
                json.truncate(KEEP_BAD_BYTES);
                Some(format!(
                    "record exceeds the {} byte limit (first {} bytes kept)",
                    self.cfg.max_record_bytes,
                    json.len()
                ))
            } else {
                None
            };
            self.emit(json, self.start_line, self.index, error);
            if self.fixed_ctrl {
                self.stats
                    .fixed_control_chars
                    .fetch_add(1, Ordering::Relaxed);
            }
            if self.fixed_sq {
                self.stats
                    .fixed_single_quotes
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        self.top_object = false;
        self.mode = if in_list { Mode::List } else { Mode::Top };
        if in_list {
            self.index += 1;
        }
    }

    fn emit(&mut self, json: Vec<u8>, line: u64, index: u32, error: Option<String>) {
        // A multi-line (pretty-printed) record becomes one line, so `event.original` stays
        // safe for line-oriented outputs (NDJSON files, HEC, Kafka values).
        let json = if error.is_none() {
            compact_multiline(json)
        } else {
            json
        };
        self.stats.records.fetch_add(1, Ordering::Relaxed);
        if error.is_some() {
            self.stats.bad.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.push_back(RawRecord {
            json,
            line,
            index,
            error,
        });
    }

    fn split_buffered_envelope(&mut self) {
        #[derive(serde::Deserialize)]
        struct Env<'a> {
            #[serde(borrow)]
            records: Vec<&'a serde_json::value::RawValue>,
        }
        let buf = std::mem::take(&mut self.buf);
        let line = self.start_line;
        match serde_json::from_slice::<Env>(&buf) {
            Ok(env) => {
                self.stats.envelopes.fetch_add(1, Ordering::Relaxed);
                for (i, r) in env.records.iter().enumerate() {
                    let index = u32::try_from(i).unwrap_or(u32::MAX);
                    self.emit(r.get().as_bytes().to_vec(), line, index, None);
                }
            }
            // Not an envelope after all (or broken): hand it on as one record; the mapper
            // reports what is wrong with it.
            Err(_) => self.emit(buf, line, 0, None),
        }
    }

    /// The length of the top-level object at the start of `s` when the quick route takes it
    /// ([`RecordReader::consume_chunk`]): it ends within `s`, fits the record limit, has no
    /// raw control character inside a string and no single quote outside one
    /// ([`crate::object_end::object_end`]), and is not an envelope (no `"records"` in it; an
    /// object starting `{"records"` is declined before it is scanned). For such an object the
    /// state machine would copy every byte unchanged; otherwise it reads the object as before.
    fn plain_object(&self, s: &[u8]) -> Option<usize> {
        const RECORDS: &[u8] = b"\"records\"";
        let key = s.get(1..)?.iter().position(|b| !b.is_ascii_whitespace())? + 1;
        if s.get(key..key + RECORDS.len())
            .is_some_and(|k| k.eq_ignore_ascii_case(RECORDS))
        {
            return None;
        }
        let len = crate::object_end::object_end(s, 0)? + 1;
        let json = s.get(..len)?;
        (len <= self.cfg.max_record_bytes && !looks_like_late_envelope(json)).then_some(len)
    }

    /// Hands on an object [`RecordReader::plain_object`] accepted, as the state machine would
    /// have: one record (made one line) from the line it starts on.
    fn take_plain_object(&mut self, json: &[u8]) {
        let line = self.line;
        self.emit(json.to_vec(), line, 0, None);
        self.line += memchr::memchr_iter(b'\n', json).count() as u64;
    }

    /// Feeds one byte through the state machine.
    fn step(&mut self, b: u8) {
        if b == b'\n' {
            self.line += 1;
        }
        match self.mode {
            Mode::Top => self.step_top(b),
            Mode::List => self.step_list(b),
            Mode::Value => self.step_value(b),
            Mode::EnvelopeTail => self.step_tail(b),
            Mode::Garbage => {
                if b == b'\n' {
                    let junk = std::mem::take(&mut self.buf);
                    self.emit_garbage(junk);
                    self.mode = Mode::Top;
                } else if self.buf.len() < KEEP_BAD_BYTES {
                    self.buf.push(b);
                }
            }
        }
    }

    fn emit_garbage(&mut self, junk: Vec<u8>) {
        let junk_trimmed = trim_ascii(&junk);
        if junk_trimmed.is_empty() {
            return;
        }
        let preview: String =
            String::from_utf8_lossy(&junk_trimmed[..junk_trimmed.len().min(40)]).into_owned();
        let line = self.start_line;
        self.emit(
            junk_trimmed.to_vec(),
            line,
            0,
            Some(format!("not JSON: line starts with {preview:?}")),
        );
    }

    fn step_top(&mut self, b: u8) {
        match b {
            // Whitespace, separators, and the bytes of a UTF-8 BOM (concatenated files).
            b' ' | b'\t' | b'\r' | b'\n' | b',' | 0xEF | 0xBB | 0xBF => {}
            b'{' => {
                self.begin_value(0);
                self.top_object = true;
                self.step_value(b);
            }
            b'[' => {
                self.depth = 1;
                self.list_depth = 1;
                self.index = 0;
                self.mode = Mode::List;
            }
            _ => {
                self.buf.clear();
                self.buf.push(b);
                self.start_line = self.line;
                self.mode = Mode::Garbage;
            }
        }
    }

    fn step_list(&mut self, b: u8) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' | b',' => {}
            b']' => {
                self.depth -= 1;
                if self.list_depth == 2 {
                    self.mode = Mode::EnvelopeTail;
                } else {
                    self.mode = Mode::Top;
                }
                self.list_depth = 0;
            }
            _ => {
                let index = self.index;
                self.begin_value(index);
                self.scalar = !matches!(b, b'{' | b'[' | b'"' | b'\'');
                self.step_value(b);
            }
        }
    }

    fn step_tail(&mut self, b: u8) {
        // Skip the rest of the envelope object, honouring strings.
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.mode = Mode::Top;
                }
            }
            _ => {}
        }
    }

    fn step_value(&mut self, b: u8) {
        if self.in_string || self.in_sq_string {
            self.step_string(b);
            return;
        }
        let base = self.list_depth;
        if self.scalar {
            // Scalars inside a list end at a delimiter at the list's depth.
            if matches!(b, b',' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                self.finish_value();
                if b == b']' {
                    self.step_list(b);
                }
                return;
            }
            if b == b'"' {
                self.in_string = true;
            }
            self.push_byte(b);
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                self.push_byte(b);
                // A top-level string value (not in a list) is itself complete at its end quote.
            }
            b'\'' if self.cfg.fix_single_quotes => {
                self.in_sq_string = true;
                self.fixed_sq = true;
                self.push_byte(b'"');
            }
            b'{' | b'[' => {
                self.depth += 1;
                self.push_byte(b);
                if b == b'[' && self.top_object && self.depth == 2 && is_envelope_prefix(&self.buf)
                {
                    // `{"records":[` — switch to splitting the records one by one.
                    self.stats.envelopes.fetch_add(1, Ordering::Relaxed);
                    self.buf.clear();
                    self.top_object = false;
                    self.list_depth = 2;
                    self.index = 0;
                    self.mode = Mode::List;
                }
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                self.push_byte(b);
                if self.depth == base {
                    self.finish_value();
                }
            }
            _ => self.push_byte(b),
        }
    }

    fn step_string(&mut self, b: u8) {
        let single = self.in_sq_string;
        if self.escape {
            self.escape = false;
            if single && b == b'\'' {
                // `\'` inside a single-quoted string is a plain quote in JSON.
                self.buf.pop();
                self.push_byte(b'\'');
            } else {
                self.push_byte(b);
            }
            return;
        }
        match b {
            b'\\' => {
                self.escape = true;
                self.push_byte(b);
            }
            b'"' if single => self.push_bytes(b"\\\""),
            b'\'' if single => {
                self.in_sq_string = false;
                self.push_byte(b'"');
                self.end_of_string_scalar();
            }
            b'"' => {
                self.in_string = false;
                self.push_byte(b);
                self.end_of_string_scalar();
            }
            0..=0x1f if self.cfg.fix_control_chars => {
                self.fixed_ctrl = true;
                match b {
                    b'\n' => self.push_bytes(b"\\n"),
                    b'\r' => self.push_bytes(b"\\r"),
                    b'\t' => self.push_bytes(b"\\t"),
                    _ => {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        self.push_bytes(&[
                            b'\\',
                            b'u',
                            b'0',
                            b'0',
                            HEX[(b >> 4) as usize],
                            HEX[(b & 15) as usize],
                        ]);
                    }
                }
            }
            _ => self.push_byte(b),
        }
    }

    /// A string that is a whole list element ends the element.
    fn end_of_string_scalar(&mut self) {
        if self.depth == self.list_depth && self.list_depth > 0 && !self.scalar {
            self.finish_value();
        }
    }

    /// Input ended: flush what is pending.
    fn finish_input(&mut self) {
        match self.mode {
            Mode::Top | Mode::EnvelopeTail => {}
            Mode::Garbage => {
                let junk = std::mem::take(&mut self.buf);
                self.emit_garbage(junk);
            }
            Mode::List => {
                // A records array that never closed: the records before were complete.
            }
            Mode::Value => {
                if self.scalar {
                    self.finish_value();
                } else {
                    let mut raw = std::mem::take(&mut self.buf);
                    raw.truncate(KEEP_BAD_BYTES);
                    let (line, index) = (self.start_line, self.index);
                    self.emit(
                        raw,
                        line,
                        index,
                        Some("truncated: input ended inside a JSON value".into()),
                    );
                }
            }
        }
        self.mode = Mode::Top;
    }

    fn fill(&mut self) -> io::Result<()> {
        let Some(mut input) = self.input.take() else {
            return Ok(());
        };
        let result = self.fill_from(&mut input);
        self.input = Some(input);
        result
    }

    fn fill_from(&mut self, input: &mut R) -> io::Result<()> {
        while self.ready.is_empty() && !self.eof {
            let chunk = input.fill_buf()?;
            if chunk.is_empty() {
                self.eof = true;
                self.finish_input();
                break;
            }
            let n = chunk.len();
            self.consume_chunk(chunk);
            input.consume(n);
        }
        Ok(())
    }

    fn consume_chunk(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() {
            // Quick route: a top-level object wholly in this chunk, with nothing for the
            // sanitizers to do and no envelope, is one record as it stands.
            if self.mode == Mode::Top && chunk[i] == b'{' {
                if let Some(len) = self.plain_object(&chunk[i..]) {
                    self.take_plain_object(&chunk[i..i + len]);
                    i += len;
                    continue;
                }
            }
            // Fast path: copy runs of plain bytes inside a value with one extend.
            if self.mode == Mode::Value && !self.scalar && !self.escape {
                let rest = &chunk[i..];
                let run = if self.in_string {
                    plain_string_run(rest)
                } else if self.in_sq_string {
                    rest.iter()
                        .position(|&c| c == b'\'' || c == b'"' || c == b'\\' || c < 0x20)
                        .unwrap_or(rest.len())
                } else {
                    rest.iter()
                        .position(|&c| STRUCTURAL[usize::from(c)])
                        .unwrap_or(rest.len())
                };
                if run > 0 {
                    if self.buf.len() + run <= self.cfg.max_record_bytes {
                        self.buf.extend_from_slice(&rest[..run]);
                    } else {
                        self.push_bytes(&rest[..run]);
                    }
                    i += run;
                    continue;
                }
            }
            self.step(chunk[i]);
            i += 1;
        }
    }
}

impl<R: BufRead> Iterator for RecordReader<R> {
    type Item = io::Result<RawRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() {
            if let Err(e) = self.fill() {
                return Some(Err(e));
            }
        }
        self.ready.pop_front().map(Ok)
    }
}

/// Bytes that end a run of plain bytes outside strings inside a value (see `consume_chunk`).
static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let special = b"\"'{}[]\n";
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

/// Length of the run of bytes at the start of `s` that a double-quoted string copies as they
/// are: everything but `"`, `\\` and control characters (< 0x20). Eight bytes per step.
pub(crate) fn plain_string_run(s: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (LO * u64::from(b'"'));
        let backslash = w ^ (LO * u64::from(b'\\'));
        // A byte's high bit is set where that byte is zero / below 0x20 (the first such byte
        // is exact; bits above it may be spurious, so only the lowest set bit is used).
        let hits = (quote.wrapping_sub(LO) & !quote)
            | (backslash.wrapping_sub(LO) & !backslash)
            | (w.wrapping_sub(LO * 0x20) & !w);
        let hits = hits & HI;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + s[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .unwrap_or(s.len() - i)
}

/// Splits one event body (an Event Hubs message, a Kafka record) into records.
pub fn split_body(
    body: &[u8],
    cfg: &EnvelopeConfig,
    stats: std::sync::Arc<EnvelopeStats>,
) -> Vec<RawRecord> {
    // The usual body, a plain `{"records":[...]}` envelope, takes the quick route.
    if let Some(records) = crate::body_split::plain_envelope(body, cfg.max_record_bytes) {
        stats.envelopes.fetch_add(1, Ordering::Relaxed);
        stats
            .records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        return records;
    }
    let reader = RecordReader::with_stats(body, cfg.clone(), stats);
    // Reading from a slice cannot fail.
    reader.filter_map(Result::ok).collect()
}

/// `{ "records" : [` with any whitespace.
///
/// Stops at the first byte that cannot belong to that prefix, so a large bare record with
/// many arrays at depth 2 costs a few bytes per array, not a pass over the record so far.
fn is_envelope_prefix(buf: &[u8]) -> bool {
    const PREFIX: &[u8] = b"{\"records\":[";
    let mut want = PREFIX.iter();
    for &b in buf {
        if b.is_ascii_whitespace() {
            continue;
        }
        match want.next() {
            Some(w) if w.eq_ignore_ascii_case(&b) => {}
            _ => return false,
        }
    }
    want.next().is_none()
}

/// A buffered top-level object that may hold a `records` array after other keys.
fn looks_like_late_envelope(buf: &[u8]) -> bool {
    // Built once: `memmem::find` sets a searcher up on every call, which cost more than the
    // search over a record of a few KB.
    static RECORDS_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"records\""));
    RECORDS_KEY.find(buf).is_some()
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Removes whitespace outside strings when the record spans several lines. Raw line breaks
/// inside strings never reach this point (the sanitizer escapes them; without it the record is
/// invalid anyway and kept as it is), so only insignificant whitespace goes.
pub(crate) fn compact_multiline(json: Vec<u8>) -> Vec<u8> {
    if memchr::memchr2(b'\n', b'\r', &json).is_none() {
        return json;
    }
    let mut out = Vec::with_capacity(json.len());
    let (mut in_str, mut esc) = (false, false);
    for &b in &json {
        if in_str {
            if b == b'\n' || b == b'\r' {
                // An unescaped break inside a string: invalid JSON; keep the record untouched.
                return json;
            }
            out.push(b);
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_str = b == b'"';
            out.push(b);
        }
    }
    out
}

/// Rewrites bare `True`/`False`/`None` outside strings (Python reprs) to JSON literals.
fn fix_python_literals(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_str, mut esc) = (false, false);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_str {
            out.push(b);
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_str = true;
            out.push(b);
            i += 1;
            continue;
        }
        let rest = &json[i..];
        let mut replaced = false;
        for (py, js) in [
            (&b"True"[..], &b"true"[..]),
            (b"False", b"false"),
            (b"None", b"null"),
        ] {
            if rest.starts_with(py)
                && !rest
                    .get(py.len())
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && !out.last().is_some_and(|c| c.is_ascii_alphanumeric())
            {
                out.extend_from_slice(js);
                i += py.len();
                replaced = true;
                break;
            }
        }
        if !replaced {
            out.push(b);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &str) -> Vec<RawRecord> {
        RecordReader::new(input.as_bytes(), EnvelopeConfig::default())
            .map(|r| r.unwrap())
            .collect()
    }

    fn jsons(input: &str) -> Vec<String> {
        split(input)
            .into_iter()
            .map(|r| {
                assert_eq!(r.error, None, "{:?}", String::from_utf8_lossy(&r.json));
                String::from_utf8(r.json).unwrap()
            })
            .collect()
    }

    fn parses(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
    }

    #[test]
    fn envelope_prefix_allows_whitespace_and_case_only() {
        for yes in ["{\"records\":[", " {\n \"Records\" :\t[", "{\"RECORDS\":["] {
            assert!(is_envelope_prefix(yes.as_bytes()), "{yes:?}");
        }
        for no in [
            "{\"records\":",
            "{\"records\":[[",
            "{\"records2\":[",
            "{\"a\":1,\"records\":[",
            "{\"recs\":[",
            "",
        ] {
            assert!(!is_envelope_prefix(no.as_bytes()), "{no:?}");
        }
    }

    /// A bare record whose arrays at depth 2 come after other members stays one record, and
    /// each array's check stops early (the record is not an envelope).
    #[test]
    fn bare_record_with_many_arrays_is_one_record() {
        let members: Vec<String> = (0..2000).map(|i| format!("\"k{i}\":[{i}]")).collect();
        let input = format!("{{\"time\":\"t\",{}}}", members.join(","));
        let out = jsons(&input);
        assert_eq!(out.len(), 1);
        assert_eq!(parses(&out[0])["k1999"][0], 1999);
    }

    #[test]
    fn envelope_records_are_split_with_indexes() {
        let recs = split("{\"records\": [ {\"a\":1}, {\"b\":{\"c\":[1,2]}} ,{\"d\":\"}]\"} ]}");
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].json, b"{\"a\":1}");
        assert_eq!(recs[1].json, b"{\"b\":{\"c\":[1,2]}}");
        assert_eq!(recs[2].json, b"{\"d\":\"}]\"}");
        assert_eq!(recs.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn envelopes_in_ndjson_and_bare_objects_mix() {
        let out =
            jsons("{\"records\":[{\"a\":1}]}\n{\"b\":2}\n\n{\"records\":[{\"c\":3},{\"d\":4}]}\n");
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"]);
    }

    #[test]
    fn records_key_not_first_is_still_an_envelope() {
        let out = jsons("{\"version\":\"1\", \"records\":[{\"a\":1},{\"b\":2}]}");
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn a_field_named_records_that_is_no_array_stays_a_record() {
        let out = jsons("{\"x\":1,\"records\":5}");
        assert_eq!(out, ["{\"x\":1,\"records\":5}"]);
    }

    #[test]
    fn envelope_with_trailing_keys_is_read() {
        let out = jsons("{\"records\":[{\"a\":1}],\"next\":{\"x\":\"]}\"}}\n{\"b\":2}");
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn top_level_array_and_bom() {
        let out = jsons("\u{feff}[{\"a\":1},\n{\"b\":[{}]}]");
        assert_eq!(out, ["{\"a\":1}", "{\"b\":[{}]}"]);
    }

    #[test]
    fn line_numbers_point_at_record_start() {
        let recs = split("{\"a\":1}\n\n{\"b\":\n2}\n{\"records\":[\n{\"c\":3},\n{\"d\":4}]}");
        assert_eq!(
            recs.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 3, 6, 7]
        );
    }

    #[test]
    fn raw_newlines_inside_strings_are_escaped_and_counted() {
        let reader = RecordReader::new(
            &b"{\"msg\":\"line1\nline2\tx\x01\"}\n{\"ok\":1}"[..],
            EnvelopeConfig::default(),
        );
        let stats = reader.stats.clone();
        let recs: Vec<_> = reader.map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        let v = parses(std::str::from_utf8(&recs[0].json).unwrap());
        assert_eq!(v["msg"], "line1\nline2\tx\u{1}");
        assert_eq!(stats.fixed_control_chars.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn control_char_fix_can_be_switched_off() {
        let cfg = EnvelopeConfig {
            fix_control_chars: false,
            ..Default::default()
        };
        let recs: Vec<_> = RecordReader::new(&b"{\"msg\":\"a\nb\"}"[..], cfg)
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(recs.len(), 1);
        assert!(serde_json::from_slice::<serde_json::Value>(&recs[0].json).is_err());
    }

    #[test]
    fn single_quoted_pseudo_json_is_converted_and_counted() {
        let reader = RecordReader::new(
            &b"{'time': '2022-01-01T00:00:00Z', 'msg': 'say \"hi\" it\\'s', 'ok': True, 'n': None, 'x': [False, 1]}"[..],
            EnvelopeConfig::default(),
        );
        let stats = reader.stats.clone();
        let recs: Vec<_> = reader.map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 1);
        let v = parses(std::str::from_utf8(&recs[0].json).unwrap());
        assert_eq!(v["msg"], "say \"hi\" it's");
        assert_eq!(v["ok"], true);
        assert_eq!(v["n"], serde_json::Value::Null);
        assert_eq!(v["x"][0], false);
        assert_eq!(stats.fixed_single_quotes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn python_literals_inside_strings_are_kept() {
        let out = jsons("{'a': 'True None', 'b': True}");
        assert_eq!(parses(&out[0])["a"], "True None");
    }

    #[test]
    fn single_quote_fix_can_be_switched_off() {
        let cfg = EnvelopeConfig {
            fix_single_quotes: false,
            ..Default::default()
        };
        let recs: Vec<_> = RecordReader::new(&b"{'a': 'b'}"[..], cfg)
            .map(|r| r.unwrap())
            .collect();
        assert!(serde_json::from_slice::<serde_json::Value>(&recs[0].json).is_err());
    }

    #[test]
    fn garbage_lines_come_out_as_bad_pieces_and_reading_goes_on() {
        let recs = split("{\"a\":1}\nthis is not json\n{\"b\":2}\n");
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[1].error.as_deref(),
            Some("not JSON: line starts with \"this is not json\"")
        );
        assert_eq!(recs[1].line, 2);
        assert_eq!(recs[2].json, b"{\"b\":2}");
    }

    #[test]
    fn truncated_input_is_reported() {
        let recs = split("{\"a\":1}\n{\"b\":{\"c\":");
        assert_eq!(recs.len(), 2);
        assert!(recs[1].error.as_deref().unwrap().starts_with("truncated"));
        assert_eq!(recs[1].json, b"{\"b\":{\"c\":");
    }

    #[test]
    fn oversize_records_are_cut_and_flagged_and_the_next_one_read() {
        let cfg = EnvelopeConfig {
            max_record_bytes: 16,
            ..Default::default()
        };
        let input = "{\"records\":[{\"a\":\"0123456789012345678901234567890\"},{\"b\":1}]}";
        let recs: Vec<_> = RecordReader::new(input.as_bytes(), cfg)
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(recs.len(), 2);
        assert!(recs[0]
            .error
            .as_deref()
            .unwrap()
            .contains("exceeds the 16 byte limit"));
        assert_eq!(recs[1].json, b"{\"b\":1}");
        assert_eq!(recs[1].error, None);
    }

    #[test]
    fn records_over_one_megabyte_pass_whole() {
        let big = "x".repeat(3 << 20);
        let input = format!("{{\"records\":[{{\"big\":\"{big}\"}},{{\"n\":2}}]}}");
        let out = jsons(&input);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), big.len() + 10);
    }

    /// The records and counters a reader gives for `input` read whole (objects within one read
    /// take the quick route) and one byte per read (every byte through the state machine).
    fn whole_and_bytewise(input: &[u8], cfg: &EnvelopeConfig) -> [(Vec<RawRecord>, [u64; 5]); 2] {
        let run = |capacity: usize| {
            let reader = std::io::BufReader::with_capacity(capacity, input);
            let mut r = RecordReader::new(reader, cfg.clone());
            let records: Vec<RawRecord> = r.by_ref().map(|x| x.unwrap()).collect();
            let st = r.stats();
            let counts = [
                &st.records,
                &st.envelopes,
                &st.bad,
                &st.fixed_control_chars,
                &st.fixed_single_quotes,
            ]
            .map(|c| c.load(Ordering::Relaxed));
            (records, counts)
        };
        [run(input.len().max(1)), run(1)]
    }

    /// The quick route for top-level objects gives exactly what the state machine gives:
    /// records, lines, indexes, errors and counters, for every shape it must decline too.
    #[test]
    fn the_quick_route_for_whole_objects_agrees_with_the_state_machine() {
        let mut inputs: Vec<String> = [
            "{\"a\":1}\n{\"b\":\"x\\\"y\"}\r\n\n{\"c\":[1,{\"d\":[]}]}",
            "\u{feff}{\"a\":1} {\"b\":2},{\"c\":3}",
            "{\n  \"a\": \"x y\",\n  \"b\": [1, 2]\n}\n{\"next\":true}",
            "{\"a\":\"line\nbreak\"}\n{\"b\":\"tab\there\"}",
            "{'a': 'single', 'b': True}\n{\"a\":\"it's fine\"}",
            "{\"records\":[{\"a\":1},{\"b\":2}]}\n{\"c\":3}",
            "{ \"RECORDS\" : [{\"a\":1}]}",
            "{\"x\":1,\"records\":[{\"a\":1}]}\n{\"y\":2}",
            "{\"x\":\"the records key\",\"records\":5}",
            "{\"x\":\"mentions \\\"records\\\" only\"}",
            "{\"esc\":\"a\\\nb\"}\n{\"after\":1}",
            "garbage line\n{\"a\":1}\n[{\"b\":2},3]\n{\"c\":",
            "{\"a\":{\"b\":{\"c\":\"}]}\"}}}\n{\"mismatched\":]\n{\"z\":0}",
            "{\"big\":\"0123456789012345678901234567890123456789\"}\n{\"s\":1}",
        ]
        .map(str::to_owned)
        .to_vec();
        // And every fixture record, one per line.
        let fixtures = crate::test_fixtures::fixture_records();
        inputs.push(fixtures.iter().map(|r| format!("{r}\n")).collect());
        let small = EnvelopeConfig {
            max_record_bytes: 32,
            ..Default::default()
        };
        let plain = EnvelopeConfig {
            fix_control_chars: false,
            fix_single_quotes: false,
            ..Default::default()
        };
        for input in &inputs {
            for cfg in [&EnvelopeConfig::default(), &small, &plain] {
                let [whole, bytewise] = whole_and_bytewise(input.as_bytes(), cfg);
                assert_eq!(whole, bytewise, "{input:?} with {cfg:?}");
            }
        }
    }

    #[test]
    fn streams_across_small_read_chunks() {
        // A BufReader with a tiny buffer proves records straddle chunk boundaries correctly.
        let input = "{\"records\":[{\"a\":\"x\\\"y\"},{'b': 'q\nr'}]}\n{\"c\":[1,{\"d\":2}]}";
        let reader = std::io::BufReader::with_capacity(3, input.as_bytes());
        let out: Vec<String> = RecordReader::new(reader, EnvelopeConfig::default())
            .map(|r| String::from_utf8(r.unwrap().json).unwrap())
            .collect();
        assert_eq!(
            out,
            [
                "{\"a\":\"x\\\"y\"}",
                "{\"b\": \"q\\nr\"}",
                "{\"c\":[1,{\"d\":2}]}"
            ]
        );
    }

    #[test]
    fn pretty_printed_records_become_one_line_with_strings_intact() {
        let out = jsons("{\"records\": [\n  {\n    \"a\": \"x  y\",\n    \"b\": [1, 2]\n  },\n  {\"c\": \"q\\\" z\"}\n]}");
        assert_eq!(
            out,
            ["{\"a\":\"x  y\",\"b\":[1,2]}", "{\"c\": \"q\\\" z\"}"]
        );
    }

    #[test]
    fn scalars_in_arrays_are_elements() {
        let recs = split("[1, \"two\", {\"three\":3}, null]");
        let out: Vec<_> = recs
            .iter()
            .map(|r| String::from_utf8(r.json.clone()).unwrap())
            .collect();
        assert_eq!(out, ["1", "\"two\"", "{\"three\":3}", "null"]);
    }

    #[test]
    fn plain_string_runs_stop_at_the_first_special_byte() {
        let naive = |s: &[u8]| {
            s.iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(s.len())
        };
        // Every special byte at every position of inputs up to 3 words long, with bytes
        // around it that sit next to the special ones (0x21, 0x5d, 0x01 after, 0xff).
        for len in 0..24 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n', 0xff] {
                    for filler in [b'a', 0x21, 0x5d, 0x20, 0x80, 0xfe] {
                        let mut s = vec![filler; len];
                        if at < len {
                            s[at] = special;
                        }
                        for tail in at + 1..len {
                            s[tail] = [0x01, b'"', filler][tail % 3];
                        }
                        assert_eq!(plain_string_run(&s), naive(&s), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn split_body_of_an_event() {
        let stats = std::sync::Arc::new(EnvelopeStats::default());
        let recs = split_body(
            b"{\"records\":[{\"a\":1},{\"b\":2}]}",
            &EnvelopeConfig::default(),
            stats.clone(),
        );
        assert_eq!(recs.len(), 2);
        assert_eq!(stats.envelopes.load(Ordering::Relaxed), 1);
        assert_eq!(stats.records.load(Ordering::Relaxed), 2);
    }
}
