//! A JSON parser straight into the borrowed [`Node`] tree, for the hot path.
//!
//! It accepts exactly the JSON that `serde_json::from_str` accepts and builds the same tree
//! the serde route ([`Node`]'s `Deserialize`) builds, with less work: no visitor layers, and
//! every object and array is allocated once at its final size (members are collected on a
//! scratch stack shared by the whole document, then moved into an exact-size `Vec` with one
//! block copy, `split_off`).
//!
//! Anything unusual — invalid JSON, deep nesting, numbers other than plain integers, lone
//! surrogate escapes — makes it decline (`None`); [`Node::parse`] then runs the serde route,
//! which gives the tree or the error exactly as before. Declining is always safe; accepting
//! something serde would reject, or building a different tree, would not be, so every branch
//! here is strict.
use crate::scratch::recycle;
use std::borrow::Cow;

use super::tree::Node;

/// Nesting deeper than this declines (serde_json's own limit is 128).
const MAX_DEPTH: usize = 100;

type Members<'a> = Vec<(Cow<'a, str>, Node<'a>)>;

/// The scratch stacks, kept per thread between documents so that a document costs no
/// allocation for them (they are empty between uses).
#[derive(Default)]
struct Scratch {
    items: Vec<Node<'static>>,
    members: Members<'static>,
    text: String,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// Scratch buffers larger than this are not kept (one huge record should not pin memory).
const KEEP_BYTES: usize = 1 << 20;

/// Parses `text` as one JSON document; `None` when the fast route declines.
pub fn parse(text: &str) -> Option<Node<'_>> {
    let scratch = SCRATCH.with(|s| s.take());
    let mut p = Parser {
        src: text,
        bytes: text.as_bytes(),
        pos: 0,
        items: recycle(scratch.items),
        members: recycle(scratch.members),
        scratch: scratch.text,
    };
    let node = p.document();
    let keep = |bytes: usize| bytes <= KEEP_BYTES;
    let mut scratch = Scratch::default();
    if keep(p.items.capacity() * std::mem::size_of::<Node<'_>>()) {
        scratch.items = recycle(p.items);
    }
    if keep(p.members.capacity() * std::mem::size_of::<(Cow<'_, str>, Node<'_>)>()) {
        scratch.members = recycle(p.members);
    }
    if keep(p.scratch.capacity()) {
        p.scratch.clear();
        scratch.text = p.scratch;
    }
    SCRATCH.with(|s| s.set(scratch));
    node
}

/// Bit `j` set when byte `j` of `chunk` ends a plain run of string text: `"`, `\\` or a
/// control character (below 0x20).
#[cfg(target_arch = "x86_64")]
#[inline]
fn special16(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline, and the unaligned load reads exactly the
    // 16 bytes `chunk` refers to.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Unsigned `c < 0x20` is `min(c, 0x1f) == c`.
        let ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), ctl)) as u32 & 0xffff
    }
}

/// [`special16`] without vector instructions, two 8-byte words at a time (SWAR); only the
/// lowest set bit is exact, which is all [`Parser::scan_plain`] reads.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn special16(chunk: &[u8; 16]) -> u32 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    for (half, word) in chunk.chunks_exact(8).enumerate() {
        let mut w8 = [0u8; 8];
        w8.copy_from_slice(word);
        let w = u64::from_le_bytes(w8);
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGH;
        if found != 0 {
            // The lowest flagged byte is exact (borrows only run upwards).
            return 1 << (half * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    0
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Scratch stack of array elements being collected (all open arrays share it).
    items: Vec<Node<'a>>,
    /// Scratch stack of object members being collected (all open objects share it).
    members: Members<'a>,
    /// Buffer for strings with escapes.
    scratch: String,
}

impl<'a> Parser<'a> {
    fn document(&mut self) -> Option<Node<'a>> {
        self.skip_ws();
        let node = self.value(0)?;
        self.skip_ws();
        (self.pos == self.bytes.len()).then_some(node)
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Node<'a>> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.string().map(Node::Str)
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.object(depth + 1)
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.array(depth + 1)
            }
            b't' => self.literal(b"true", Node::Bool(true)),
            b'f' => self.literal(b"false", Node::Bool(false)),
            b'n' => self.literal(b"null", Node::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Reads an array element or member value and hands it to `put`. A string without
    /// escapes (most values) is built right in the call to `put` from [`Parser::plain_string`]'s
    /// registers, not returned through memory.
    #[inline(always)]
    fn element(&mut self, depth: usize, put: impl FnOnce(&mut Self, Node<'a>)) -> Option<()> {
        if self.peek()? != b'"' {
            let v = self.value(depth)?;
            put(self, v);
            return Some(());
        }
        self.pos += 1;
        match self.plain_string() {
            Some(v) => put(self, Node::Str(Cow::Borrowed(v))),
            None => {
                let v = self.string()?;
                put(self, Node::Str(v));
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8], node: Node<'a>) -> Option<Node<'a>> {
        if self.bytes.get(self.pos..self.pos + word.len())? == word {
            self.pos += word.len();
            Some(node)
        } else {
            None
        }
    }

    /// Plain integers directly; anything else (fraction, exponent, `-0`, overflow) through
    /// serde_json on the number's own text, which gives the very same value.
    fn number(&mut self) -> Option<Node<'a>> {
        let start = self.pos;
        let negative = self.bytes[start] == b'-';
        let mut i = start + usize::from(negative);
        let first = *self.bytes.get(i)?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut value: u64 = u64::from(first - b'0');
        let mut overflow = false;
        i += 1;
        if first == b'0' {
            if self.bytes.get(i).is_some_and(u8::is_ascii_digit) {
                return None; // leading zero
            }
        } else {
            while let Some(&b) = self.bytes.get(i) {
                if !b.is_ascii_digit() {
                    break;
                }
                match value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')))
                {
                    Some(v) => value = v,
                    None => overflow = true,
                }
                i += 1;
            }
        }
        let plain = !matches!(self.bytes.get(i), Some(b'.' | b'e' | b'E'));
        if plain && !overflow {
            let node = if !negative {
                match i64::try_from(value) {
                    Ok(v) => Node::Int(v),
                    Err(_) => Node::UInt(value),
                }
            } else if value == 0 {
                Node::Float(-0.0)
            } else if value <= 1u64 << 63 {
                Node::Int((value as i64).wrapping_neg())
            } else {
                return self.number_via_serde(start);
            };
            self.pos = i;
            return Some(node);
        }
        self.number_via_serde(start)
    }

    fn number_via_serde(&mut self, start: usize) -> Option<Node<'a>> {
        let mut end = start;
        while let Some(&b) = self.bytes.get(end) {
            if b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E') {
                end += 1;
            } else {
                break;
            }
        }
        let node: Node<'a> = serde_json::from_str(self.src.get(start..end)?).ok()?;
        if !matches!(node, Node::Int(_) | Node::UInt(_) | Node::Float(_)) {
            return None;
        }
        self.pos = end;
        Some(node)
    }

    /// After the opening quote: the string when it has no escapes (most keys and values),
    /// else `None` with nothing consumed ([`Parser::string`] then reads it). The result fits
    /// in two registers, so the caller builds the node in its final place; a `Cow` comes back
    /// through memory, and copying a value right after it was written stalls store forwarding
    /// (this was over half of the parser's time).
    #[inline]
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let end = self.scan_plain(start);
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        let s = self.src.get(start..end)?;
        self.pos = end + 1;
        Some(s)
    }

    /// After the opening quote. Borrowed when the string has no escapes.
    #[inline]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        let end = self.scan_plain(start);
        match *self.bytes.get(end)? {
            b'"' => {
                self.pos = end + 1;
                Some(Cow::Borrowed(self.src.get(start..end)?))
            }
            b'\\' => self.escaped(start, end),
            _ => None, // control character
        }
    }

    /// A string with escapes: the plain text before the first backslash, then the rest.
    #[inline(never)]
    fn escaped(&mut self, start: usize, end: usize) -> Option<Cow<'a, str>> {
        self.scratch.clear();
        self.scratch.push_str(self.src.get(start..end)?);
        self.pos = end;
        self.escaped_rest()
    }

    /// Continues a string with escapes in `scratch`, from a backslash. Kept out of line so
    /// that [`Parser::string`], the common case, stays small enough to inline.
    #[inline(never)]
    fn escaped_rest(&mut self) -> Option<Cow<'a, str>> {
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(Cow::Owned(self.scratch.clone()));
                }
                b'\\' => {
                    let esc = *self.bytes.get(self.pos + 1)?;
                    self.pos += 2;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    self.scratch.push(c);
                }
                _ => {
                    let start = self.pos;
                    let end = self.scan_plain(start);
                    if end == start {
                        return None; // control character
                    }
                    self.scratch.push_str(self.src.get(start..end)?);
                    self.pos = end;
                }
            }
        }
    }

    /// After `\u`: one code point, or a surrogate pair written as two escapes. Lone or
    /// mismatched surrogates decline (serde decides about them).
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if !(0xD800..=0xDFFF).contains(&hi) {
            return char::from_u32(hi);
        }
        if hi >= 0xDC00 || self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
            return None;
        }
        self.pos += 2;
        let lo = self.hex4()?;
        if !(0xDC00..=0xDFFF).contains(&lo) {
            return None;
        }
        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let mut v = 0u32;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(v)
    }

    /// The index of the first `"`, `\\` or control character at or after `i` (or the end).
    #[inline]
    fn scan_plain(&self, mut i: usize) -> usize {
        let bytes = self.bytes;
        while let Some(chunk) = bytes.get(i..i + 16) {
            let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else {
                break;
            };
            let mask = special16(chunk);
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 16;
        }
        while let Some(&b) = bytes.get(i) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                return i;
            }
            i += 1;
        }
        i
    }

    /// After `[`.
    fn array(&mut self, depth: usize) -> Option<Node<'a>> {
        let base = self.items.len();
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(Node::Array(Vec::new()));
        }
        loop {
            self.skip_ws();
            self.element(depth, |p, v| p.items.push(v))?;
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    let items: Vec<Node<'a>> = self.items.split_off(base);
                    return Some(Node::Array(items));
                }
                _ => return None,
            }
        }
    }

    /// After `{`.
    fn object(&mut self, depth: usize) -> Option<Node<'a>> {
        let base = self.members.len();
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(Node::Object(Vec::new()));
        }
        loop {
            self.skip_ws();
            if self.peek()? != b'"' {
                return None;
            }
            self.pos += 1;
            let key = match self.plain_string() {
                Some(k) => Cow::Borrowed(k),
                None => self.string()?,
            };
            self.skip_ws();
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            self.skip_ws();
            self.element(depth, |p, v| p.members.push((key, v)))?;
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    let members: Members<'a> = self.members.split_off(base);
                    return Some(Node::Object(members));
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde route, the reference.
    fn serde(text: &str) -> Result<Node<'_>, String> {
        serde_json::from_str::<Node<'_>>(text).map_err(|e| e.to_string())
    }

    fn same(text: &str) {
        let fast = parse(text);
        match (&fast, serde(text)) {
            (Some(f), Ok(s)) => {
                assert_eq!(f, &s, "{text:?}");
                // Same float bits too (-0.0 == 0.0 for PartialEq).
                assert_eq!(format!("{f:?}"), format!("{s:?}"), "{text:?}");
            }
            (Some(f), Err(e)) => panic!("fast accepted {text:?} as {f:?}; serde: {e}"),
            (None, _) => {}
        }
    }

    #[test]
    fn agrees_with_serde_on_valid_documents() {
        for text in [
            r#"{"a":"plain","b":"esc\"aped","c":[1,-2,18446744073709551615,1.5,true,null],"d":{}}"#,
            r#" { "k" : [ ] , "e" : { } , "n" : null } "#,
            r#"{"u":"\u00e9\u20ac\ud83d\ude00 \n\t\r\b\f\/\\","k\"q":1}"#,
            r#"[0,-0,-1,9223372036854775807,9223372036854775808,-9223372036854775808,-9223372036854775809]"#,
            r#"[18446744073709551616,1e3,1E-2,-0.0,0.5e+2,123456789012345678901234567890]"#,
            r#""just a string""#,
            "42",
            "true",
            r#"{"dup":1,"dup":2,"Dup":3}"#,
            "{\"long\":\"abcdefghijklmnopqrstuvwxyz0123456789 ünïcödé ✓ abcdefgh\"}",
            r#"{"a":{"b":{"c":[[[{"d":"e"}]]]}}}"#,
            r#"["x\"y","plain",{"k\\":"v\u0041","":""},"",["\n"]]"#,
        ] {
            same(text);
            assert!(parse(text).is_some(), "{text}");
        }
    }

    #[test]
    fn never_accepts_what_serde_rejects() {
        for text in [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            "[01]",
            "[-]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "tru",
            "nul",
            "[true false]",
            "{\"a\":\"x\ny\"}",
            "{\"a\":\"x\u{1}y\"}",
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\ud800\u0041"}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{"b":2}"#,
            "[NaN]",
            "[Infinity]",
            "['x']",
            "\u{feff}{}",
        ] {
            same(text);
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&deep).is_none());
        assert!(serde(&deep).is_err());
        let ok = format!("{}{}", "[".repeat(60), "]".repeat(60));
        same(&ok);
        assert!(parse(&ok).is_some());
    }

    #[test]
    fn recycling_keeps_the_allocation() {
        let text = String::from("local");
        let mut v: Members<'static> = Vec::with_capacity(37);
        v.push((Cow::Borrowed("k"), Node::Null));
        let ptr = v.as_ptr() as usize;
        let mut local: Members<'_> = recycle(v);
        assert!(local.capacity() >= 37);
        assert_eq!(local.as_ptr() as usize, ptr);
        local.push((Cow::Borrowed(text.as_str()), Node::Null));
        let back: Members<'static> = recycle(local);
        assert_eq!(back.as_ptr() as usize, ptr);
        assert!(back.is_empty());
    }

    #[test]
    fn scratch_buffers_are_reused_across_documents() {
        let doc = r#"{"a":[1,2,3],"b":{"c":"d\n","e":[{"f":1}]}}"#;
        let first = parse(doc).unwrap();
        let cap = SCRATCH.with(|s| {
            let v = s.take();
            let caps = (v.items.capacity(), v.members.capacity(), v.text.capacity());
            s.set(v);
            caps
        });
        assert!(cap.0 > 0 && cap.1 > 0 && cap.2 > 0, "{cap:?}");
        assert_eq!(parse(doc).unwrap(), first);
        // A document the fast route declines leaves the buffers empty and usable.
        assert!(parse(r#"{"a":[1,2,"#).is_none());
        assert_eq!(parse(doc).unwrap(), first);
    }

    /// The 16-byte scan stops at the first `"`, `\\` or control character wherever it sits
    /// (inside a block, at its edges, in the byte-wise tail), and runs to the end otherwise.
    #[test]
    fn scan_plain_stops_at_the_first_special_byte() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 47] {
            for at in 0..=len {
                for special in (0u8..0x80).filter(|&b| b == b'"' || b == b'\\' || b < 0x20) {
                    let mut bytes = vec![b'a'; len];
                    if at < len {
                        bytes[at] = special;
                        // A later special byte must not win.
                        if at + 1 < len {
                            bytes[len - 1] = b'"';
                        }
                    }
                    let text = String::from_utf8(bytes).unwrap();
                    let p = Parser {
                        src: &text,
                        bytes: text.as_bytes(),
                        pos: 0,
                        items: Vec::new(),
                        members: Vec::new(),
                        scratch: String::new(),
                    };
                    assert_eq!(p.scan_plain(0), at, "len {len}, {special:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn containers_are_exact_size_and_scratch_is_kept() {
        let n = parse(r#"{"a":[1,2,3],"b":{"c":1,"d":[{}]}}"#).unwrap();
        let Node::Object(m) = &n else { panic!() };
        assert_eq!(m.capacity(), m.len());
        let Node::Array(a) = &m[0].1 else { panic!() };
        assert_eq!(a.capacity(), a.len());
        let Node::Object(b) = &m[1].1 else { panic!() };
        assert_eq!(b.capacity(), b.len());
        let kept = SCRATCH.with(|s| {
            let v = s.take();
            let caps = (v.items.capacity(), v.members.capacity());
            s.set(v);
            caps
        });
        assert!(kept.0 > 0 && kept.1 > 0, "{kept:?}");
    }

    #[test]
    fn borrows_unescaped_strings() {
        let n = parse(r#"{"plain":"abc","esc":"a\"b"}"#).unwrap();
        let Node::Object(m) = n else { panic!() };
        assert!(matches!(m[0].0, Cow::Borrowed("plain")));
        assert!(matches!(m[0].1, Node::Str(Cow::Borrowed("abc"))));
        assert!(matches!(&m[1].1, Node::Str(Cow::Owned(s)) if s == "a\"b"));
        let n = parse(r#"["abc","a\"b"]"#).unwrap();
        let Node::Array(items) = n else { panic!() };
        assert!(matches!(items[0], Node::Str(Cow::Borrowed("abc"))));
        assert!(matches!(&items[1], Node::Str(Cow::Owned(s)) if s == "a\"b"));
    }

    /// Every fixture record, and variations of them, parse to the same tree both ways.
    #[test]
    fn agrees_on_fixtures_and_their_mutations() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut checked = 0;
        for e in rd.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            same(&text);
            // Truncations and single-byte edits at many places: never a different verdict
            // in the fast route's favour, never a different tree.
            let bytes = text.as_bytes();
            let step = (bytes.len() / 97).max(1);
            for cut in (0..bytes.len()).step_by(step) {
                if let Ok(prefix) = std::str::from_utf8(&bytes[..cut]) {
                    same(prefix);
                }
                for repl in [b'"', b'\\', b',', b'}', b']', b'1', b' ', b'\n', b'-', b'e'] {
                    let mut m = bytes.to_vec();
                    m[cut] = repl;
                    if let Ok(s) = std::str::from_utf8(&m) {
                        same(s);
                    }
                }
            }
            checked += 1;
        }
        assert!(checked > 10);
    }
}
