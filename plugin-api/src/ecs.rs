//! ECS JSON rendering of a [`Record`]: nested objects, ECS names, stable (sorted) key order,
//! `@timestamp` first. Shared by `azlog-hub map`, the file sink, Splunk HEC and Kafka.
use std::cell::RefCell;

use crate::ecs_skeleton::{Skeleton, Skeletons};
use crate::ecs_transitions::{tag, Transitions, START};
use crate::record::{common_prefix_len, Record, Value};
use crate::short_copy::copy_short;

/// What to include besides the mapped fields.
#[derive(Clone, Copy, Debug)]
pub struct EcsOptions {
    /// Emit `event.original` (the raw source record as a JSON string).
    pub include_original: bool,
}

impl Default for EcsOptions {
    fn default() -> Self {
        EcsOptions {
            include_original: true,
        }
    }
}

const ORIGINAL_KEY: &str = "event.original";

/// [`ORIGINAL_KEY`] at one fixed address (a `const` may be copied at each use), so that it
/// has one identity in the skeleton cache.
static ORIGINAL: &str = ORIGINAL_KEY;

/// Appends the record as one compact ECS JSON object (no trailing newline) to `out`.
pub fn write_ecs_json(record: &Record, opts: EcsOptions, out: &mut Vec<u8>) {
    CACHES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut caches) => {
            let caches = caches.get_or_insert_with(|| {
                Box::new(Caches {
                    transitions: Transitions::new(),
                    skeletons: Skeletons::new(),
                })
            });
            if !write_from_skeleton(record, opts, out, &mut caches.skeletons) {
                write_record(record, opts, out, Some(&mut caches.transitions));
            }
        }
        // Only if rendering re-entered itself on this thread: render without the caches.
        Err(_) => write_record(record, opts, out, None),
    });
}

/// The caches of one thread's ECS output.
struct Caches {
    /// The bytes between two keys.
    transitions: Transitions,
    /// The bytes around the values of whole key sequences.
    skeletons: Skeletons,
}

thread_local! {
    /// This thread's ECS output caches (created on first use).
    static CACHES: RefCell<Option<Box<Caches>>> = const { RefCell::new(None) };
}

/// Writes the record from the skeleton of its key sequence (built on the first record of
/// that sequence); false, having written nothing, when the sequence cannot be cached (a key
/// that is not `'static`, or too many keys). The bytes are those of [`write_record`].
fn write_from_skeleton(
    record: &Record,
    opts: EcsOptions,
    out: &mut Vec<u8>,
    skeletons: &mut Skeletons,
) -> bool {
    let fields = record.fields.as_slice();
    // `event.original` goes before the first key that sorts after it (the fields are sorted).
    let original_at = opts
        .include_original
        .then(|| fields.partition_point(|f| f.key.as_str() <= ORIGINAL_KEY));
    let Some(original_tag) = tag(ORIGINAL) else {
        return false;
    };
    let tags = skeletons.tags();
    for (i, field) in fields.iter().enumerate() {
        if original_at == Some(i) {
            tags.push(original_tag);
        }
        match field.key.as_static().and_then(tag) {
            Some(t) => tags.push(t),
            None => return false,
        }
    }
    if original_at == Some(fields.len()) {
        tags.push(original_tag);
    }
    let build = |skeleton: &mut Skeleton| {
        let mut w = NestWriter::after_timestamp(&mut skeleton.bytes, None);
        let mut ends = Vec::with_capacity(fields.len() + 1);
        for (i, field) in fields.iter().enumerate() {
            if original_at == Some(i) {
                w.member(ORIGINAL, None);
                ends.push(u32::try_from(w.out.len()).unwrap_or(u32::MAX));
            }
            w.member(field.key.as_str(), None);
            ends.push(u32::try_from(w.out.len()).unwrap_or(u32::MAX));
        }
        if original_at == Some(fields.len()) {
            w.member(ORIGINAL, None);
            ends.push(u32::try_from(w.out.len()).unwrap_or(u32::MAX));
        }
        w.restore();
        w.close_from(0);
        w.out.push(b'}');
        skeleton.ends = ends;
    };
    let Some(skeleton) = skeletons.get(build) else {
        return false;
    };
    write_timestamp(record.timestamp_ns, out);
    let mut segments = skeleton.segments();
    for (i, field) in fields.iter().enumerate() {
        if original_at == Some(i) {
            segments.write_next(out);
            write_json_str(record.original.as_str(), out);
        }
        segments.write_next(out);
        write_value(&field.value, out);
    }
    if original_at == Some(fields.len()) {
        segments.write_next(out);
        write_json_str(record.original.as_str(), out);
    }
    segments.write_next(out);
    true
}

fn write_record(
    record: &Record,
    opts: EcsOptions,
    out: &mut Vec<u8>,
    cache: Option<&mut Transitions>,
) {
    write_timestamp(record.timestamp_ns, out);
    let mut w = NestWriter::after_timestamp(out, cache);
    let mut original_pending = opts.include_original;
    for field in record.fields.iter() {
        let key = field.key.as_str();
        if original_pending && key > ORIGINAL_KEY {
            w.member_static(ORIGINAL_KEY);
            write_json_str(record.original.as_str(), w.out);
            original_pending = false;
        }
        match field.key.as_static() {
            Some(key) => w.member_static(key),
            None => w.member(key, None),
        }
        write_value(&field.value, w.out);
    }
    if original_pending {
        w.member_static(ORIGINAL_KEY);
        write_json_str(record.original.as_str(), w.out);
    }
    w.restore();
    w.close_from(0);
    w.out.push(b'}');
}

/// Opens the record's object with its first member, `"@timestamp"`.
fn write_timestamp(ns: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"@timestamp\":\"");
    write_rfc3339_ns(ns, out);
    out.push(b'"');
}

/// Renders the record as an ECS JSON string (convenience for tests and tools).
pub fn to_ecs_string(record: &Record, opts: EcsOptions) -> String {
    let mut out = Vec::with_capacity(512 + record.original.len() * 2);
    write_ecs_json(record, opts, &mut out);
    // write_ecs_json only ever writes valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Writes sorted dotted keys as nested objects. Empty segments (`a..b`, `.a`) are skipped.
struct NestWriter<'a, 'o, 'c> {
    /// The objects open below the root: each one's name and the index in `prev` of the dot
    /// that ends it. Out of date while `stale` (see [`NestWriter::restore`]).
    open: Vec<(&'a str, usize)>,
    /// The key written last.
    prev: &'a str,
    /// Its [`tag`] when it is `'static` text ([`START`] before the first key).
    prev_tag: Option<u64>,
    /// Members were written from the transition cache since `open` was last brought up to
    /// date.
    stale: bool,
    /// The innermost open object has no member yet.
    fresh: bool,
    cache: Option<&'c mut Transitions>,
    out: &'o mut Vec<u8>,
}

impl<'o, 'c> NestWriter<'_, 'o, 'c> {
    /// A writer for the members after `"@timestamp"` (the first one needs a comma).
    fn after_timestamp(out: &'o mut Vec<u8>, cache: Option<&'c mut Transitions>) -> Self {
        NestWriter {
            open: Vec::new(),
            prev: "",
            prev_tag: Some(START),
            stale: false,
            fresh: false,
            cache,
            out,
        }
    }
}

impl<'a> NestWriter<'a, '_, '_> {
    fn member_sep(&mut self) {
        if !self.fresh {
            self.out.push(b',');
        }
        self.fresh = false;
    }

    /// [`NestWriter::member`] of a `'static` key: the bytes from the previous key to this
    /// one come from the transition cache when both keys are static and the pair was seen
    /// before (the open objects are then brought up to date only when a key that is not
    /// cached follows).
    #[inline]
    fn member_static(&mut self, key: &'static str) {
        let tag = tag(key);
        if let (Some(cache), Some(prev), Some(k)) = (self.cache.as_deref(), self.prev_tag, tag) {
            if cache.write(prev, k, self.out) {
                self.prev = key;
                self.prev_tag = tag;
                self.stale = true;
                self.fresh = false;
                return;
            }
        }
        self.member(key, tag);
    }

    /// After members written from the cache: `open` as [`NestWriter::member`] would have
    /// left it, the non-empty parent segments of the last key.
    fn restore(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        self.open.clear();
        let (prev, k) = (self.prev, self.prev.as_bytes());
        let mut start = 0;
        while let Some(dot) = find_dot(k, start) {
            if dot > start {
                self.open.push((&prev[start..dot], dot));
            }
            start = dot + 1;
        }
    }

    /// Starts one member: closes and opens objects as the key needs, then writes the leaf
    /// name and `:` (the caller writes the value). Keys come sorted, so consecutive keys share their leading
    /// objects: those whose closing dot lies within the common byte prefix of this key and
    /// the last one stay open without comparing their names; the rest of the key's parent
    /// segments are compared with the open objects by name, and the objects that differ are
    /// closed and opened anew.
    fn member(&mut self, key: &'a str, tag: Option<u64>) {
        self.restore();
        let from = self.out.len();
        let k = key.as_bytes();
        let shared = common_prefix_len(self.prev.as_bytes(), k);
        let mut keep = self.open.partition_point(|&(_, dot)| dot < shared);
        let mut start = keep.checked_sub(1).map_or(0, |i| self.open[i].1 + 1);
        let mut matching = true;
        while let Some(dot) = find_dot(k, start) {
            let seg = &key[start..dot];
            if !seg.is_empty() {
                if matching && self.open.get(keep).is_some_and(|&(name, _)| name == seg) {
                    self.open[keep].1 = dot;
                    keep += 1;
                } else {
                    if matching {
                        self.close_from(keep);
                        matching = false;
                    }
                    self.member_sep();
                    write_json_str(seg, self.out);
                    self.out.extend_from_slice(b":{");
                    self.open.push((seg, dot));
                    self.fresh = true;
                }
            }
            start = dot + 1;
        }
        if matching {
            self.close_from(keep);
        }
        self.member_sep();
        write_json_str(&key[start..], self.out);
        self.out.push(b':');
        if let (Some(cache), Some(prev), Some(k)) = (self.cache.as_deref_mut(), self.prev_tag, tag)
        {
            // Transitions longer than a slot holds are not kept.
            if let Some(bytes) = self.out.get(from..) {
                cache.insert(prev, k, bytes);
            }
        }
        self.prev = key;
        self.prev_tag = tag;
    }

    /// Closes the open objects from depth `keep` on.
    fn close_from(&mut self, keep: usize) {
        for _ in keep..self.open.len() {
            self.out.push(b'}');
            self.fresh = false;
        }
        self.open.truncate(keep);
    }
}

/// The index of the first `.` in `s` at or after `from`.
fn find_dot(s: &[u8], from: usize) -> Option<usize> {
    crate::byte_search::find_byte(s, from, b'.')
}

/// Appends a JSON value.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_i64(*i, out),
        Value::Float(f) => {
            if f.is_finite() {
                use std::io::Write;
                // Writing to a Vec cannot fail.
                let _ = write!(out, "{f}");
            } else {
                out.extend_from_slice(b"null")
            }
        }
        Value::Str(s) => write_json_str(s, out),
        Value::Json(s) => out.extend_from_slice(s.as_bytes()),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(item, out);
            }
            out.push(b']');
        }
    }
}

/// Appends the decimal digits of `v` (as `v.to_string()` would, without allocating).
pub fn write_i64(v: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `s` as a quoted JSON string, escaping `"`, `\`, control characters and DEL.
#[inline]
pub fn write_json_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if bytes.len() <= SHORT && write_short_plain(bytes, out) {
        return;
    }
    let run = plain_json_run(bytes);
    if run == bytes.len() {
        write_quoted(bytes, out);
    } else {
        write_escaped(bytes, run, out);
    }
}

/// The longest string [`write_short_plain`] takes (it fits a 32-byte block with its quotes).
const SHORT: usize = 30;

/// Appends `"bytes"` (at most [`SHORT`] bytes) when none of them needs escaping; false,
/// having written nothing, otherwise. The bytes are assembled in a 32-byte block
/// ([`copy_short`]) over a background of a plain letter; the block is checked
/// 16 bytes at a time (two checks whatever the length, so no loop on the length), then
/// appended whole and cut to length. Most values are short: this is their whole path, with
/// no `memcpy` call and one branch on the length instead of one per 8 bytes.
#[inline]
fn write_short_plain(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    let n = bytes.len();
    let mut block = [b'a'; 32];
    if !block
        .get_mut(1..=SHORT)
        .is_some_and(|dst| copy_short(dst, bytes))
    {
        return false;
    }
    let (lo, hi) = block.split_at(16);
    if special16(lo) | special16(hi) != 0 {
        return false;
    }
    block[0] = b'"';
    block[n + 1] = b'"';
    let at = out.len();
    out.extend_from_slice(&block);
    out.truncate(at + n + 2);
    true
}

/// Appends `"bytes"` of a string known to need no escaping.
#[inline]
fn write_quoted(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// Non-zero when one of the 16 bytes of `chunk` (exactly 16) needs escaping in a JSON
/// string: `"`, `\`, a control character (below 0x20) or DEL; bit `j` stands for byte `j`
/// (without SSE2 only the lowest one is set).
#[cfg(target_arch = "x86_64")]
#[inline]
fn special16(chunk: &[u8]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let Some(chunk) = chunk.get(..16) else {
        return 1;
    };
    // SAFETY: SSE2 is part of the x86-64 baseline, and the unaligned load reads exactly the
    // 16 bytes `chunk` refers to.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
        // Unsigned `c < 0x20` is `min(c, 0x1f) == c`.
        let ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let any = _mm_or_si128(_mm_or_si128(quote, slash), _mm_or_si128(del, ctl));
        _mm_movemask_epi8(any) as u32 & 0xffff
    }
}

/// [`special16`] on targets without SSE2.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn special16(chunk: &[u8]) -> u32 {
    special16_swar(chunk)
}

/// [`special16`] without vector instructions: two 8-byte words (SWAR); only the lowest
/// flagged byte's bit is set.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline]
fn special16_swar(chunk: &[u8]) -> u32 {
    let Some(chunk) = chunk.get(..16) else {
        return 1;
    };
    let (lo, hi) = chunk.split_at(8);
    let (lo, hi) = (specials8(lo), specials8(hi));
    if lo != 0 {
        1 << (lo.trailing_zeros() / 8)
    } else if hi != 0 {
        1 << (8 + hi.trailing_zeros() / 8)
    } else {
        0
    }
}

/// [`write_json_str`] of a string that needs escaping from byte `run` on.
#[cold]
#[inline(never)]
fn write_escaped(bytes: &[u8], run: usize, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 8);
    out.push(b'"');
    let mut start = 0;
    let mut i = run;
    while let Some(&b) = bytes.get(i) {
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
        i = start + plain_json_run(&bytes[start..]);
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Bytes a JSON string holds as they are: everything but `"`, `\\`, control characters
/// (< 0x20) and DEL.
static PLAIN: [bool; 256] = {
    let mut t = [true; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = false;
        c += 1;
    }
    t[b'"' as usize] = false;
    t[b'\\' as usize] = false;
    t[0x7f] = false;
    t
};

/// The high bit of each byte of `chunk` (8 bytes) that needs escaping in a JSON string (exact
/// for the lowest such byte; bits above it may be spurious, so only the lowest set bit may be
/// used). Zero when no byte needs escaping.
#[inline]
fn specials8(chunk: &[u8]) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
    let zero_at = |x: u64| x.wrapping_sub(LO) & !x;
    (zero_at(w ^ (LO * u64::from(b'"')))
        | zero_at(w ^ (LO * u64::from(b'\\')))
        | zero_at(w ^ (LO * 0x7f))
        | (w.wrapping_sub(LO * 0x20) & !w))
        & HI
}

/// Length of the run at the start of `s` that a JSON string holds as it is: everything but
/// `"`, `\\`, control characters (< 0x20) and DEL. Sixteen bytes per step, then eight.
fn plain_json_run(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 16) {
        let hits = special16(chunk);
        if hits != 0 {
            return i + hits.trailing_zeros() as usize;
        }
        i += 16;
    }
    while let Some(chunk) = s.get(i..i + 8) {
        let hits = specials8(chunk);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    if i == s.len() {
        return i;
    }
    if let Some(last) = s
        .len()
        .checked_sub(8)
        .and_then(|at| Some((at, s.get(at..)?)))
    {
        // The last eight bytes, overlapping the words already checked (all plain), so the
        // first special byte found is at or after `i`.
        let hits = specials8(last.1);
        return if hits == 0 {
            s.len()
        } else {
            last.0 + (hits.trailing_zeros() / 8) as usize
        };
    }
    while let Some(&c) = s.get(i) {
        if !PLAIN[usize::from(c)] {
            break;
        }
        i += 1;
    }
    i
}

/// Appends an RFC 3339 UTC timestamp with millisecond, microsecond or nanosecond precision
/// (the shortest that is exact). Years outside 0..=9999 are written as `{:04}` formats them
/// (a sign, or more digits).
pub fn write_rfc3339_ns(ns: i64, out: &mut Vec<u8>) {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        write_digits(y as u64, 4, out);
    } else {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{y:04}");
    }
    out.push(b'-');
    write_digits(u64::from(m), 2, out);
    out.push(b'-');
    write_digits(u64::from(d), 2, out);
    out.push(b'T');
    // 0 <= sod < 86_400 and 0 <= frac < 10^9: both fit u64 and their digit widths.
    let sod = sod.unsigned_abs();
    write_digits(sod / 3600, 2, out);
    out.push(b':');
    write_digits((sod / 60) % 60, 2, out);
    out.push(b':');
    write_digits(sod % 60, 2, out);
    out.push(b'.');
    write_rfc3339_fraction(frac.unsigned_abs(), out);
}

/// Appends what [`write_rfc3339_ns`] writes after the seconds' `.`: the fraction `frac_ns`
/// (below 10^9) in milli-, micro- or nanoseconds, the shortest that is exact, and `Z`.
pub fn write_rfc3339_fraction(frac_ns: u64, out: &mut Vec<u8>) {
    if frac_ns.is_multiple_of(1_000_000) {
        write_digits(frac_ns / 1_000_000, 3, out);
    } else if frac_ns.is_multiple_of(1_000) {
        write_digits(frac_ns / 1_000, 6, out);
    } else {
        write_digits(frac_ns, 9, out);
    }
    out.push(b'Z');
}

/// Appends the last `width` (at most 20) decimal digits of `v`, zero-padded.
fn write_digits(mut v: u64, width: usize, out: &mut Vec<u8>) {
    let mut buf = [b'0'; 20];
    let width = width.min(buf.len());
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time escaper `write_json_str` replaced.
    fn reference(s: &str) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in s.as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => out.push(b),
            }
        }
        out.push(b'"');
        out
    }

    #[test]
    fn json_strings_escape_exactly_like_the_bytewise_reference() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii, long enough for several words of eight".into(),
            "{\"a\":\"b\\\\c\"}".into(),
            "tabs\tand\nnewlines\r\u{0}\u{1f}\u{7f}\u{80}é😀".into(),
        ];
        // Every ASCII byte and some UTF-8 at each offset of a 33-byte window (both sides of
        // the 16- and 8-byte steps, the overlapping last word, the short tail and every
        // length of the short block), followed by 0 to 9 plain bytes.
        for c in (0u8..0x80)
            .map(char::from)
            .chain(['é', '€', '😀', '\u{85}'])
        {
            for at in 0..33 {
                for after in 0..10 {
                    let mut t: String = "abcdefghijklmnopqrstuvwxyzABCDEFG"
                        .chars()
                        .take(at)
                        .collect();
                    t.push(c);
                    t.push_str(&"xyz012345"[..after]);
                    cases.push(t);
                }
            }
        }
        // Plain strings of every length around the block copies' bounds (distinct bytes, so
        // a misplaced half shows).
        cases.extend((0..=40).map(|n| (0..n).map(|i| char::from(b'A' + i as u8)).collect()));
        for case in &cases {
            // After bytes already in the buffer, as in a document.
            let mut out = b"[1,".to_vec();
            write_json_str(case, &mut out);
            let out = out.split_off(3);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&reference(case)),
                "{case:?}"
            );
            let back: String = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(&back, case);
        }
    }

    /// The vector check and the word-at-a-time one flag the same lowest byte, and nothing
    /// when no byte needs escaping (every byte value at every position, on a plain
    /// background and after an earlier special byte).
    #[test]
    fn sixteen_byte_checks_agree() {
        for b in 0..=255u8 {
            for at in 0..16 {
                for earlier in [None, Some(0usize), Some(at / 2)] {
                    let mut chunk = [b'k'; 16];
                    if let Some(e) = earlier.filter(|&e| e < at) {
                        chunk[e] = b'"';
                    }
                    chunk[at] = b;
                    let lowest = |m: u32| (m != 0).then(|| m.trailing_zeros());
                    let want = chunk.iter().position(|&c| !PLAIN[usize::from(c)]);
                    assert_eq!(
                        lowest(special16(&chunk)),
                        want.map(|w| w as u32),
                        "{chunk:?}"
                    );
                    assert_eq!(lowest(special16_swar(&chunk)), want.map(|w| w as u32));
                }
            }
        }
    }

    use crate::record::{Field, Position};
    use crate::Text;
    use abi_stable::std_types::{RString, RVec};

    fn rec(fields: Vec<(&str, Value)>) -> Record {
        Record::from_fields(
            1_661_191_636_123_000_000,
            fields
                .into_iter()
                .map(|(k, v)| Field {
                    key: Text::from(k),
                    value: v,
                })
                .collect(),
            RString::from("{\"a\":1}"),
            Position::default(),
        )
    }

    #[test]
    fn nests_sorted_dotted_keys() {
        let r = rec(vec![
            ("user.name", "bob".into()),
            ("event.action", "login".into()),
            (
                "event.category",
                Value::List(RVec::from(vec![Text::from_static("authentication")])),
            ),
            ("azure.signinlogs.properties.app_id", "x".into()),
            ("azure.tenant_id", "t".into()),
            ("message", "hi \"there\"\n".into()),
            ("event.severity", Value::Int(3)),
        ]);
        let s = to_ecs_string(&r, EcsOptions::default());
        assert_eq!(
            s,
            "{\"@timestamp\":\"2022-08-22T18:07:16.123Z\",\"azure\":{\"signinlogs\":{\"properties\":{\"app_id\":\"x\"}},\"tenant_id\":\"t\"},\
\"event\":{\"action\":\"login\",\"category\":[\"authentication\"],\"original\":\"{\\\"a\\\":1}\",\"severity\":3},\
\"message\":\"hi \\\"there\\\"\\n\",\"user\":{\"name\":\"bob\"}}"
        );
        let v: serde_json_check::Json = serde_json_check::parse(&s);
        assert!(v.0);
    }

    #[test]
    fn original_can_be_left_out_and_goes_last_when_alone() {
        let r = rec(vec![("a", "1".into())]);
        assert_eq!(
            to_ecs_string(
                &r,
                EcsOptions {
                    include_original: false
                }
            ),
            "{\"@timestamp\":\"2022-08-22T18:07:16.123Z\",\"a\":\"1\"}"
        );
        assert_eq!(
            to_ecs_string(&r, EcsOptions::default()),
            "{\"@timestamp\":\"2022-08-22T18:07:16.123Z\",\"a\":\"1\",\"event\":{\"original\":\"{\\\"a\\\":1}\"}}"
        );
    }

    /// The nesting writer `NestWriter` replaced (splits every key and compares segment names
    /// with the open objects), over the same sorted keys: the oracle for the prefix shortcut.
    fn reference_nesting(keys: &[&str]) -> Vec<u8> {
        let mut out = b"{".to_vec();
        let mut open: Vec<&str> = Vec::new();
        let mut fresh = true;
        for (n, key) in keys.iter().enumerate() {
            let (parents, leaf) = match key.rfind('.') {
                Some(i) => (&key[..i], &key[i + 1..]),
                None => ("", *key),
            };
            let mut common = 0;
            let mut segs = parents.split('.').filter(|s| !s.is_empty()).peekable();
            while common < open.len() && segs.peek() == Some(&open[common]) {
                segs.next();
                common += 1;
            }
            if common < open.len() {
                out.extend(std::iter::repeat_n(b'}', open.len() - common));
                fresh = false;
            }
            open.truncate(common);
            for seg in segs {
                if !fresh {
                    out.push(b',');
                }
                write_json_str(seg, &mut out);
                out.extend_from_slice(b":{");
                open.push(seg);
                fresh = true;
            }
            if !fresh {
                out.push(b',');
            }
            fresh = false;
            write_json_str(leaf, &mut out);
            out.push(b':');
            write_i64(n as i64, &mut out);
        }
        out.extend(std::iter::repeat_n(b'}', open.len() + 1));
        out
    }

    /// The writer over `keys`; with a transition cache, every key goes the static route (the
    /// cache is used when it holds the pair, filled when it does not).
    fn nesting(keys: &[&'static str], cache: Option<&mut Transitions>) -> Vec<u8> {
        let mut out = b"{".to_vec();
        let values: Vec<Value> = (0..keys.len()).map(|n| Value::Int(n as i64)).collect();
        let cached = cache.is_some();
        let mut w = NestWriter {
            open: Vec::new(),
            prev: "",
            prev_tag: Some(START),
            stale: false,
            fresh: true,
            cache,
            out: &mut out,
        };
        for (key, value) in keys.iter().zip(&values) {
            if cached {
                w.member_static(key);
            } else {
                w.member(key, None);
            }
            write_value(value, w.out);
        }
        w.restore();
        w.close_from(0);
        out.push(b'}');
        out
    }

    /// Every sorted pair and triple of `pool` (sorted, without repeats).
    fn sorted_triples(pool: &[&'static str]) -> Vec<Vec<&'static str>> {
        let mut all = Vec::new();
        for a in pool {
            for (j, b) in pool.iter().enumerate() {
                for c in pool.iter().skip(j) {
                    let mut keys = vec![*a, *b, *c];
                    keys.sort_unstable();
                    keys.dedup();
                    all.push(keys);
                }
            }
        }
        all
    }

    /// Records of `'static` keys are written from the skeleton cache (built on the first
    /// record of a key sequence, read on the next ones): the same bytes as writing key by key
    /// without any cache, with and without `event.original` wherever it falls (first, between
    /// keys, after a key equal to it, last).
    #[test]
    fn skeletons_write_the_same_bytes_as_key_by_key() {
        let pool: [&'static str; 14] = [
            "a",
            "a.b",
            "a.b.c",
            "a..b",
            ".a",
            "azure.signinlogs.properties.app_id",
            "event.kind",
            "event.original",
            "event.originalx",
            "event.outcome",
            "event.original.x",
            "x.",
            "z",
            "",
        ];
        let record = |keys: &[&'static str]| Record {
            timestamp_ns: 1_661_191_636_123_000_000,
            fields: keys
                .iter()
                .enumerate()
                .map(|(n, k)| Field {
                    key: Text::from_static(k),
                    value: if n % 2 == 0 {
                        Value::Int(n as i64)
                    } else {
                        Value::from("v\"al")
                    },
                })
                .collect(),
            original: RString::from("{\"a\":\"\\n\"}"),
            position: Position::default(),
        };
        // A record without keys, first on a fresh thread (every entry of the table unbuilt).
        let empty = record(&[]);
        let opts = EcsOptions {
            include_original: false,
        };
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                let mut out = Vec::new();
                write_ecs_json(&empty, opts, &mut out);
                out
            })
            .join()
        });
        let mut want = Vec::new();
        write_record(&empty, opts, &mut want, None);
        assert_eq!(got.ok(), Some(want));
        // With and without `event.original`, twice (built, then read from the table).
        let same_as_key_by_key = |r: &Record, what: &str| {
            for include_original in [false, true] {
                let opts = EcsOptions { include_original };
                let mut want = Vec::new();
                write_record(r, opts, &mut want, None);
                for round in 0..2 {
                    let mut got = Vec::new();
                    write_ecs_json(r, opts, &mut got);
                    assert_eq!(
                        String::from_utf8_lossy(&got),
                        String::from_utf8_lossy(&want),
                        "{what}, original {include_original}, round {round}"
                    );
                }
            }
        };
        let mut checked = 0;
        for keys in sorted_triples(&pool) {
            same_as_key_by_key(&record(&keys), &format!("{keys:?}"));
            checked += 1;
        }
        assert!(checked > 500, "{checked}");
        // The empty record, and one key sequence of every length up to the limit and past it.
        let all: Vec<&'static str> = (0..300)
            .map(|i| &*Box::leak(format!("k.{i:03}").into_boxed_str()))
            .collect();
        for n in [0, 1, 2, 191, 192, 193, 300] {
            same_as_key_by_key(&record(&all[..n]), &format!("{n} keys"));
        }
    }

    #[test]
    fn nesting_matches_the_segment_by_segment_reference() {
        // Every sorted pair and triple from keys with shared prefixes, prefixes that end
        // inside a segment, empty segments and long names (the 8-byte compare steps).
        let pool = [
            "a",
            "a.b",
            "a.b.c",
            "a.bc",
            "a.bc.d",
            "a..b",
            "a..b.x",
            "a.b..c",
            ".a",
            ".a.b",
            "ab.c",
            "a.b.y",
            "b",
            "b.a",
            "azure.signinlogs.properties.app_id",
            "azure.signinlogs.properties.app_idx.y",
            "azure.signinlogs.propertiesx.a",
            "azure.signinlogs.z",
            "azure.tenant_id",
            "x.",
            "x..",
            "x...y",
            "",
        ];
        let mut checked = 0;
        // One transition cache for all sequences: a pair cached from one sequence is reused
        // in others, with the open objects rebuilt when an uncached pair follows.
        let mut cache = Transitions::new();
        for keys in sorted_triples(&pool) {
            let want = String::from_utf8_lossy(&reference_nesting(&keys)).into_owned();
            assert_eq!(
                String::from_utf8_lossy(&nesting(&keys, None)),
                want,
                "{keys:?}"
            );
            // Twice: the first run may fill the cache, the second reads it.
            for _ in 0..2 {
                let got = nesting(&keys, Some(&mut cache));
                assert_eq!(String::from_utf8_lossy(&got), want, "cached {keys:?}");
            }
            checked += 1;
        }
        assert!(checked > 1000);
    }

    #[test]
    fn integers_and_timestamps_match_the_formatter() {
        for v in [
            0i64,
            1,
            -1,
            9,
            10,
            -10,
            1234567890,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            let mut out = Vec::new();
            write_i64(v, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), v.to_string());
        }
        let reference = |ns: i64| {
            let secs = ns.div_euclid(1_000_000_000);
            let frac = ns.rem_euclid(1_000_000_000);
            let sod = secs.rem_euclid(86_400);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            let frac = if frac % 1_000_000 == 0 {
                format!(".{:03}", frac / 1_000_000)
            } else if frac % 1_000 == 0 {
                format!(".{:06}", frac / 1_000)
            } else {
                format!(".{frac:09}")
            };
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60
            )
        };
        // i64 nanoseconds span 1677..2262: a walk over that range with varied fractions.
        let mut cases = vec![0, -1, 1, i64::MAX, i64::MIN, 951_782_400_000_001_000];
        let mut ns = i64::MIN;
        for k in 0..4000i64 {
            cases.push(ns);
            ns = ns.saturating_add(4_611_686_018_427_387 + k * 1_000_003);
        }
        for ns in cases {
            let mut out = Vec::new();
            write_rfc3339_ns(ns, &mut out);
            assert_eq!(String::from_utf8_lossy(&out), reference(ns), "{ns}");
        }
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = Vec::new();
        write_json_str("a\u{1}b\u{7f}", &mut out);
        assert_eq!(out, b"\"a\\u0001b\\u007f\"");
    }

    #[test]
    fn timestamps() {
        let mut out = Vec::new();
        write_rfc3339_ns(0, &mut out);
        assert_eq!(out, b"1970-01-01T00:00:00.000Z");
        out.clear();
        write_rfc3339_ns(-1, &mut out);
        assert_eq!(out, b"1969-12-31T23:59:59.999999999Z");
        out.clear();
        write_rfc3339_ns(951_782_400_000_001_000, &mut out); // 2000-02-29
        assert_eq!(out, b"2000-02-29T00:00:00.000001Z");
    }

    /// Minimal structural check without a JSON dependency: balanced braces outside strings.
    mod serde_json_check {
        pub struct Json(pub bool);
        pub fn parse(s: &str) -> Json {
            let (mut depth, mut in_str, mut esc) = (0i32, false, false);
            for c in s.chars() {
                if in_str {
                    match (esc, c) {
                        (true, _) => esc = false,
                        (false, '\\') => esc = true,
                        (false, '"') => in_str = false,
                        _ => {}
                    }
                    continue;
                }
                match c {
                    '"' => in_str = true,
                    '{' | '[' => depth += 1,
                    '}' | ']' => depth -= 1,
                    _ => {}
                }
            }
            Json(depth == 0 && !in_str)
        }
    }
}
