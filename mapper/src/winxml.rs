//! Windows event XML (`<Event>`) into a JSON tree addressed with `$xml` in schema paths.
//!
//! The tree follows docs/schema-tables.md (`$xml`):
//!
//! - the children of the root `<Event>` become the top-level keys (`System`, `EventData`,
//!   `UserData`, `RenderingInfo`); any other root element (`<EventData>` as carried by
//!   SecurityEvent rows, a bare `<System>`) becomes a top-level key itself;
//! - elements become keys, attributes become keys too (`System.Provider.Name`,
//!   `System.TimeCreated.SystemTime`); an element holding text is that text
//!   (`System.EventID = "4624"`), and its attributes then sit next to it in the parent as
//!   `<element>_<attribute>` (`System.EventID_Qualifiers`);
//! - `<Data Name="X">v</Data>` inside `<EventData>` becomes `EventData.X = "v"`, unnamed
//!   `<Data>` become the list `EventData.Data`;
//! - repeated sibling elements become a list; empty elements are `""`;
//! - namespace prefixes and `xmlns` attributes are dropped.
//!
//! The parser never fails: malformed or truncated XML yields what could be read plus a note
//! saying what went wrong (the mapper stores it in `azlog.parse_errors`). Control characters
//! (which make real Windows logs invalid XML 1.0) are kept as they are.
use crate::scratch::recycle;
use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::Value;

use crate::path::Node;

/// An object under construction: members sorted by key and unique, as in the JSON object
/// model the tree follows (a `BTreeMap`); the mapper reads it as a [`Node::Object`].
type Members<'a> = Vec<(Cow<'a, str>, Node<'a>)>;

/// Attributes of an element: (local name, unescaped value), in document order.
type Attrs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// One open element of the reader route while the tree is built.
struct Frame<'a> {
    /// Local name (namespace prefix removed).
    name: Cow<'a, str>,
    /// Attributes (without `xmlns`), in document order.
    attrs: Attrs<'a>,
    /// Child elements already closed, as they go into this element's object.
    children: Members<'a>,
    /// Whether any child element was seen (even one folded away, like a `<Data>`).
    has_children: bool,
    /// Text and CDATA content, entity references resolved.
    text: Cow<'a, str>,
}

impl<'a> Frame<'a> {
    fn new(name: Cow<'a, str>, attrs: Attrs<'a>) -> Frame<'a> {
        Frame {
            name,
            attrs,
            children: Vec::new(),
            has_children: false,
            text: Cow::Borrowed(""),
        }
    }
}

/// Parses one Windows event XML document into the `$xml` tree, as a JSON value.
///
/// Returns the tree (always an object, possibly empty) and, when the XML was malformed or
/// truncated, a note describing the first problem; whatever was read before it is kept.
pub fn parse_event(xml: &str) -> (Value, Option<String>) {
    let (tree, note) = parse_event_tree(xml);
    (tree.to_value(), note)
}

/// [`parse_event`] into the mapper's tree, borrowing names and text from `xml` where they
/// need no unescaping. Object members are sorted by key.
///
/// Well-formed documents of the usual shape take a direct scanner ([`fast_tree`]); anything
/// else (CDATA, DOCTYPE, odd attributes, unknown entities, mismatched or missing end tags)
/// goes through quick-xml, which also words the notes.
pub fn parse_event_tree(xml: &str) -> (Node<'_>, Option<String>) {
    if let Some(done) = fast_tree(xml) {
        return done;
    }
    reader_tree(xml)
}

/// XML whitespace.
#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// What a closed child element does to its parent's object, recorded in document order and
/// replayed when the parent closes (so the parent's object is allocated once, at its final
/// size, and no element needs an allocation of its own while it is open).
enum Op<'a> {
    /// [`insert_child`] of a member.
    Child(Cow<'a, str>, Node<'a>),
    /// An unnamed `<Data>` inside `<EventData>`, appended to the `Data` list ([`add_data`]).
    Data(Cow<'a, str>),
}

/// One open element of the direct scanner; its attributes and its children's [`Op`]s sit on
/// stacks shared by all open elements, from the indices it records.
struct Open<'a> {
    /// Local name (namespace prefix removed).
    name: &'a str,
    /// The name as written in the start tag, so that the usual end tag is one compare.
    raw: &'a [u8],
    /// Where this element's attributes start on the attribute stack.
    attrs: usize,
    /// Where this element's children's operations start on the operation stack.
    ops: usize,
    /// Text content, entity references resolved.
    text: Cow<'a, str>,
}

/// The direct scanner's stacks, kept per thread between documents so that a document costs
/// no allocation for them (they are empty between uses).
#[derive(Default)]
struct Stacks {
    open: Vec<Open<'static>>,
    attrs: Attrs<'static>,
    ops: Vec<Op<'static>>,
}

thread_local! {
    static STACKS: std::cell::Cell<Stacks> = std::cell::Cell::new(Stacks::default());
}

/// Stacks larger than this are not kept (one huge document should not pin memory).
const KEEP_BYTES: usize = 1 << 16;

/// The direct scanner: the same tree and note as [`reader_tree`] gives, for documents made
/// of elements, attributes (`name="v"` / `name='v'`), text, comments and processing
/// instructions, with matching end tags and known entity references only, complete or cut
/// off in text (the note then says which element was not closed). `None` for anything else.
fn fast_tree(xml: &str) -> Option<(Node<'_>, Option<String>)> {
    let stacks = STACKS.with(|s| s.take());
    let mut scan = Scan {
        open: recycle(stacks.open),
        attrs: recycle(stacks.attrs),
        ops: recycle(stacks.ops),
    };
    let out = scan.run(xml);
    let keep = |cap: usize, size: usize| cap * size <= KEEP_BYTES;
    let mut stacks = Stacks::default();
    if keep(scan.open.capacity(), std::mem::size_of::<Open<'_>>()) {
        stacks.open = recycle(scan.open);
    }
    if keep(
        scan.attrs.capacity(),
        std::mem::size_of::<(Cow<'_, str>, Cow<'_, str>)>(),
    ) {
        stacks.attrs = recycle(scan.attrs);
    }
    if keep(scan.ops.capacity(), std::mem::size_of::<Op<'_>>()) {
        stacks.ops = recycle(scan.ops);
    }
    STACKS.with(|s| s.set(stacks));
    out
}

struct Scan<'a> {
    open: Vec<Open<'a>>,
    attrs: Attrs<'a>,
    ops: Vec<Op<'a>>,
}

impl<'a> Scan<'a> {
    fn run(&mut self, xml: &'a str) -> Option<(Node<'a>, Option<String>)> {
        let b = xml.as_bytes();
        let mut root: Members<'a> = Vec::new();
        let mut i = 0;
        loop {
            let (lt, amp) = text_end(b, i);
            if lt > i {
                if let Some(frame) = self.open.last_mut() {
                    let text = xml.get(i..lt)?;
                    if frame.text.is_empty() {
                        frame.text = unescaped_strict(text, amp)?;
                    } else if !(text.bytes().all(is_ws) && frame.text.bytes().all(is_ws)) {
                        // Text in several pieces (around children or comments) that is not
                        // all layout whitespace: leave it to the reader route.
                        return None;
                    }
                    // More layout whitespace after layout whitespace: the element's text
                    // stays blank, which is all that matters (blank text counts as none).
                }
            }
            if lt == b.len() {
                // End of input: complete when nothing is open, else cut off in text, which
                // the reader route notes and closes the same way.
                let note = self
                    .open
                    .first()
                    .map(|open| format!("truncated XML: <{}> not closed", open.name));
                while let Some(frame) = self.open.pop() {
                    self.close(frame, &mut root);
                }
                return Some((Node::Object(root), note));
            }
            i = lt + 1;
            match *b.get(i)? {
                b'/' => {
                    let frame = self.open.pop()?;
                    // The usual end tag repeats the start tag's name (which holds no `>`).
                    let after = i + 1 + frame.raw.len();
                    let close =
                        if b.get(i + 1..after) == Some(frame.raw) && b.get(after) == Some(&b'>') {
                            after
                        } else {
                            let close = find_byte(b, i, b'>')?;
                            let name = xml.get(i + 1..close)?;
                            // (quick-xml reads quotes in end tags as quoting a `>`)
                            if name.is_empty()
                                || name
                                    .bytes()
                                    .any(|c| is_ws(c) || matches!(c, b'<' | b'"' | b'\''))
                            {
                                return None;
                            }
                            if frame.name != local(name) {
                                return None;
                            }
                            close
                        };
                    if self.close(frame, &mut root) {
                        return Some((Node::Object(root), None));
                    }
                    i = close + 1;
                }
                b'?' => {
                    // Up to the first `?>`; quick-xml reports `<?>` as an unclosed
                    // processing instruction.
                    let o = memchr::memmem::find(b.get(i..)?, b"?>")?;
                    if o == 0 {
                        return None;
                    }
                    i += o + 2;
                }
                b'!' => {
                    if !b.get(i..)?.starts_with(b"!--") {
                        return None;
                    }
                    i += 3 + memchr::memmem::find(b.get(i + 3..)?, b"-->")? + 3;
                }
                _ => {
                    let (frame, empty, close) = self.start_tag(xml, i)?;
                    if empty {
                        if self.close(frame, &mut root) {
                            return Some((Node::Object(root), None));
                        }
                    } else {
                        self.open.push(frame);
                    }
                    i = close + 1;
                }
            }
        }
    }

    /// The start tag from `i` (just after its `<`): its name, with its attributes pushed on
    /// the attribute stack; whether it is empty (`/>`), and the index of its `>`.
    ///
    /// One pass over the tag, accepting what the two-step reading accepted before (cut at
    /// the first `>`, then name and attributes): a `>` inside an attribute value declines.
    fn start_tag(&mut self, xml: &'a str, i: usize) -> Option<(Open<'a>, bool, usize)> {
        let b = xml.as_bytes();
        let name_end = find_any(
            b,
            i,
            [
                b' ', b'\t', b'\r', b'\n', b'>', b'/', b'<', b'"', b'\'', b'=',
            ],
        );
        let name = xml.get(i..name_end)?;
        if name.is_empty() || matches!(b.get(name_end)?, b'<' | b'"' | b'\'' | b'=') {
            return None;
        }
        let frame = Open {
            name: local(name),
            raw: name.as_bytes(),
            attrs: self.attrs.len(),
            ops: self.ops.len(),
            text: Cow::Borrowed(""),
        };
        let mut i = name_end;
        loop {
            while is_ws(*b.get(i)?) {
                i += 1;
            }
            match b[i] {
                b'>' => return Some((frame, false, i)),
                b'/' => {
                    return (b.get(i + 1) == Some(&b'>')).then_some((frame, true, i + 1));
                }
                _ => {}
            }
            let key_start = i;
            while b.get(i).is_some_and(|&c| {
                !is_ws(c) && !matches!(c, b'=' | b'"' | b'\'' | b'<' | b'/' | b'>')
            }) {
                i += 1;
            }
            let key = xml.get(key_start..i)?;
            while b.get(i).is_some_and(|&c| is_ws(c)) {
                i += 1;
            }
            if key.is_empty() || b.get(i) != Some(&b'=') {
                return None;
            }
            i += 1;
            while b.get(i).is_some_and(|&c| is_ws(c)) {
                i += 1;
            }
            let quote = *b.get(i)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value_start = i + 1;
            // Up to the closing quote, declining `<` and `>`, noting `&` (unescaped).
            let (mut value_end, mut amp) = (value_start, false);
            loop {
                value_end = find_any(b, value_end, [quote, b'<', b'>', b'&']);
                match *b.get(value_end)? {
                    b'&' => {
                        amp = true;
                        value_end += 1;
                    }
                    c if c == quote => break,
                    _ => return None,
                }
            }
            let raw = xml.get(value_start..value_end)?;
            i = value_end + 1;
            // Attributes are separated by whitespace.
            if b.get(i)
                .is_some_and(|&c| !is_ws(c) && c != b'>' && c != b'/')
            {
                return None;
            }
            let kb = key.as_bytes();
            if kb == b"xmlns" || kb.starts_with(b"xmlns:") {
                continue;
            }
            let value = unescaped_strict(raw, amp)?;
            self.attrs.push((Cow::Borrowed(local(key)), value));
        }
    }

    /// Closes `frame` (the innermost open element, already popped) into its parent's
    /// operations, or into the root: what [`close_frame`] does for the reader route. Returns
    /// true when the root element itself was closed.
    fn close(&mut self, frame: Open<'a>, root: &mut Members<'a>) -> bool {
        let text = leaf_text(frame.text);
        let parent = self.open.last().map(|p| p.name);
        if parent == Some("EventData") && frame.name == "Data" {
            // add_data: the text, under the `Name` attribute or in the `Data` list; the
            // element's other attributes and any children are dropped.
            let name = self.attrs[frame.attrs..]
                .iter_mut()
                .find(|(k, _)| k == "Name")
                .map(|(_, v)| std::mem::replace(v, Cow::Borrowed("")))
                .filter(|v| !v.is_empty());
            self.attrs.truncate(frame.attrs);
            self.ops.truncate(frame.ops);
            self.ops.push(match name {
                Some(name) => Op::Child(name, Node::Str(text)),
                None => Op::Data(text),
            });
            return false;
        }
        // The children's object, replaying their operations in document order.
        let n_ops = self.ops.len() - frame.ops;
        let has_children = n_ops > 0;
        let has_attrs = self.attrs.len() > frame.attrs;
        let mut children: Members<'a> = Vec::new();
        if has_children {
            children.reserve_exact(n_ops + usize::from(!text.is_empty()));
            for op in self.ops.drain(frame.ops..) {
                match op {
                    Op::Child(k, v) => insert_child(&mut children, k, v),
                    Op::Data(text) => match get_mut(&mut children, "Data") {
                        Some(Node::Array(items)) => items.push(Node::Str(text)),
                        _ => insert(
                            &mut children,
                            Cow::Borrowed("Data"),
                            Node::Array(vec![Node::Str(text)]),
                        ),
                    },
                }
            }
        }
        // finish: the element's value, and whether its attributes go next to it.
        let (value, side_attrs) = if !has_children && !has_attrs {
            (Node::Str(text), false)
        } else if !has_children && !text.is_empty() {
            // <EventID Qualifiers="0">4624</EventID>: the element is its text.
            (Node::Str(text), true)
        } else {
            let mut map = if has_attrs {
                let n_attrs = self.attrs.len() - frame.attrs;
                let mut map: Members<'a> = Vec::with_capacity(n_attrs + children.len() + 1);
                for (k, v) in self.attrs.drain(frame.attrs..) {
                    insert(&mut map, k, Node::Str(v));
                }
                for (k, v) in children {
                    insert_child(&mut map, k, v);
                }
                map
            } else {
                children
            };
            if !text.is_empty() {
                insert(&mut map, Cow::Borrowed("#text"), Node::Str(text));
            }
            (Node::Object(map), false)
        };
        let name = Cow::Borrowed(frame.name);
        if parent.is_some() {
            if side_attrs {
                for (k, v) in self.attrs.drain(frame.attrs..) {
                    self.ops
                        .push(Op::Child(side_key(frame.name, &k), Node::Str(v)));
                }
            } else {
                self.attrs.truncate(frame.attrs);
            }
            self.ops.push(Op::Child(name, value));
            return false;
        }
        self.attrs.truncate(frame.attrs);
        if frame.name == "Event" {
            // The children of <Event> are the top level of the tree.
            if let Node::Object(map) = value {
                if root.is_empty() {
                    *root = map;
                } else {
                    for (k, v) in map {
                        insert(root, k, v);
                    }
                }
            }
        } else {
            insert_child(root, name, value);
        }
        true
    }
}

/// The parent's key for attribute `attr` of element `element` whose value is its text
/// (`EventID_Qualifiers`); the common one without an allocation.
fn side_key<'a>(element: &str, attr: &str) -> Cow<'a, str> {
    match (element, attr) {
        ("EventID", "Qualifiers") => Cow::Borrowed("EventID_Qualifiers"),
        _ => Cow::Owned(format!("{element}_{attr}")),
    }
}

/// The local part of a possibly prefixed name.
#[inline]
fn local(name: &str) -> &str {
    match name.as_bytes().iter().rposition(|&b| b == b':') {
        // The byte after an ASCII `:` starts a character.
        Some(i) => name.get(i + 1..).unwrap_or(""),
        None => name,
    }
}

/// From `from`: the index of the next `<` (or the end), and whether a `&` comes before it.
#[inline]
fn text_end(b: &[u8], from: usize) -> (usize, bool) {
    let at = find_any(b, from, [b'<', b'&']);
    if b.get(at) == Some(&b'&') {
        (find_any(b, at, [b'<']), true)
    } else {
        (at, false)
    }
}

/// The index of the first byte at or after `from` that is one of `needles` (or the end):
/// 16 bytes at a time (SSE2 on x86-64), then byte by byte.
#[inline(always)]
fn find_any<const N: usize>(b: &[u8], from: usize, needles: [u8; N]) -> usize {
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 16) {
        let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else {
            break;
        };
        let mask = mask16(chunk, needles);
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    while let Some(c) = b.get(i) {
        if needles.contains(c) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Bit `j` set when byte `j` of `chunk` is one of `needles`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask16<const N: usize>(chunk: &[u8; 16], needles: [u8; N]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128,
    };
    // SAFETY: SSE2 is part of the x86-64 baseline, and the unaligned load reads exactly the
    // 16 bytes `chunk` refers to.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let mut hit = _mm_setzero_si128();
        for n in needles {
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8(n as i8)));
        }
        _mm_movemask_epi8(hit) as u32 & 0xffff
    }
}

/// [`mask16`] byte by byte.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn mask16<const N: usize>(chunk: &[u8; 16], needles: [u8; N]) -> u32 {
    let mut mask = 0;
    for (j, c) in chunk.iter().enumerate() {
        if needles.contains(c) {
            mask |= 1 << j;
        }
    }
    mask
}

/// The index of the first `c` at or after `from` (a plain loop: tags and attribute values
/// are short, shorter than a vectorised search takes to set up).
fn find_byte(b: &[u8], from: usize, c: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&x| x == c)
        .map(|o| from + o)
}

/// The quick-xml route of [`parse_event_tree`]: lenient, never fails, notes problems.
fn reader_tree(xml: &str) -> (Node<'_>, Option<String>) {
    let mut reader = Reader::from_str(xml);
    {
        let cfg = reader.config_mut();
        cfg.trim_text(false);
        cfg.check_end_names = false;
        cfg.check_comments = false;
        cfg.expand_empty_elements = false;
    }
    let mut root: Members<'_> = Vec::new();
    let mut stack: Vec<Frame<'_>> = Vec::with_capacity(8);
    let mut note: Option<String> = None;
    // Set once the root element is closed: anything after it is ignored.
    let mut done = false;

    while !done {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                let frame = open_frame(xml, &start, &mut note);
                stack.push(frame);
            }
            Ok(Event::Empty(start)) => {
                let frame = open_frame(xml, &start, &mut note);
                done = close_frame(frame, &mut stack, &mut root);
            }
            Ok(Event::End(end)) => {
                let name = local_name(xml, end.name().as_ref());
                // Lenient end tags: close up to the matching open element; a stray end tag
                // that matches nothing open is ignored.
                if let Some(pos) = stack.iter().rposition(|f| f.name == name) {
                    while stack.len() > pos {
                        let Some(frame) = stack.pop() else { break };
                        if stack.len() > pos && note.is_none() {
                            note = Some(format!("unclosed <{}> closed by </{}>", frame.name, name));
                        }
                        if close_frame(frame, &mut stack, &mut root) {
                            done = true;
                        }
                    }
                } else if note.is_none() {
                    note = Some(format!("stray end tag </{name}>"));
                }
            }
            Ok(Event::Text(text)) => {
                if let Some(frame) = stack.last_mut() {
                    let raw = text.into_inner();
                    match in_source(xml, &raw) {
                        Some(s) if frame.text.is_empty() && !s.contains('&') => {
                            frame.text = Cow::Borrowed(s);
                        }
                        _ => {
                            let raw = String::from_utf8_lossy(&raw);
                            unescape_into(&raw, frame.text.to_mut(), &mut note);
                        }
                    }
                }
            }
            Ok(Event::CData(cdata)) => {
                if let Some(frame) = stack.last_mut() {
                    frame
                        .text
                        .to_mut()
                        .push_str(&String::from_utf8_lossy(cdata.as_ref()));
                }
            }
            Ok(Event::Eof) => {
                if let Some(open) = stack.first() {
                    note.get_or_insert_with(|| {
                        format!("truncated XML: <{}> not closed", open.name)
                    });
                }
                break;
            }
            Ok(_) => {} // declarations, comments, processing instructions, doctype
            Err(err) => {
                note.get_or_insert_with(|| {
                    format!("malformed XML at byte {}: {err}", reader.error_position())
                });
                break;
            }
        }
    }
    // Close whatever is still open (truncated or malformed input): keep what was read.
    while let Some(frame) = stack.pop() {
        close_frame(frame, &mut stack, &mut root);
    }
    (Node::Object(root), note)
}

/// `part` as a slice of `src` when it lies inside it (quick-xml hands out slices of its
/// input), so names and plain text are borrowed, not copied. `None` otherwise.
fn in_source<'a>(src: &'a str, part: &[u8]) -> Option<&'a str> {
    let offset = (part.as_ptr() as usize).checked_sub(src.as_ptr() as usize)?;
    src.get(offset..offset.checked_add(part.len())?)
}

/// `raw` (from `src`) as text: borrowed when possible, else decoded lossily.
fn text_of<'a>(src: &'a str, raw: &[u8]) -> Cow<'a, str> {
    match in_source(src, raw) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
    }
}

/// Builds a frame from a start tag: local name plus attributes (unescaped, `xmlns` dropped).
fn open_frame<'a>(src: &'a str, start: &BytesStart<'_>, note: &mut Option<String>) -> Frame<'a> {
    let name = local_name(src, start.name().as_ref());
    let mut attrs = Vec::new();
    for attr in start.attributes().with_checks(false) {
        match attr {
            Ok(attr) => {
                let key = attr.key.as_ref();
                if key == b"xmlns" || key.starts_with(b"xmlns:") {
                    continue;
                }
                let raw = text_of(src, &attr.value);
                let value = if raw.contains('&') {
                    let mut value = String::new();
                    unescape_into(&raw, &mut value, note);
                    Cow::Owned(value)
                } else {
                    raw
                };
                attrs.push((local_name(src, key), value));
            }
            Err(err) => {
                note.get_or_insert_with(|| format!("bad attribute in <{name}>: {err}"));
                break;
            }
        }
    }
    Frame::new(name, attrs)
}

/// Closes `frame` into its parent (or into the root). Returns true when the root element
/// itself was closed.
fn close_frame<'a>(frame: Frame<'a>, stack: &mut [Frame<'a>], root: &mut Members<'a>) -> bool {
    match stack.last_mut() {
        Some(parent) => {
            parent.has_children = true;
            if parent.name == "EventData" && frame.name == "Data" {
                add_data(parent, frame);
            } else {
                let name = frame.name.clone();
                let (value, side_attrs) = finish(frame);
                for (k, v) in side_attrs {
                    insert_child(
                        &mut parent.children,
                        Cow::Owned(format!("{name}_{k}")),
                        Node::Str(v),
                    );
                }
                insert_child(&mut parent.children, name, value);
            }
            false
        }
        None => {
            if frame.name == "Event" {
                // The children of <Event> are the top level of the tree.
                let (value, _) = finish(frame);
                if let Node::Object(map) = value {
                    for (k, v) in map {
                        insert(root, k, v);
                    }
                }
            } else {
                let name = frame.name.clone();
                let (value, _) = finish(frame);
                insert_child(root, name, value);
            }
            true
        }
    }
}

/// Folds a `<Data>` element into its `<EventData>` parent.
fn add_data<'a>(parent: &mut Frame<'a>, data: Frame<'a>) {
    let Frame { attrs, text, .. } = data;
    let text = leaf_text(text);
    let name = attrs
        .into_iter()
        .find(|(k, _)| k == "Name")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty());
    match name {
        Some(name) => insert_child(&mut parent.children, name, Node::Str(text)),
        None => match get_mut(&mut parent.children, "Data") {
            Some(Node::Array(items)) => items.push(Node::Str(text)),
            _ => insert(
                &mut parent.children,
                Cow::Borrowed("Data"),
                Node::Array(vec![Node::Str(text)]),
            ),
        },
    }
}

/// The value of a closed element, plus attributes to place next to it in the parent (only
/// for elements whose value is their text).
fn finish(frame: Frame<'_>) -> (Node<'_>, Attrs<'_>) {
    let Frame {
        attrs,
        children,
        has_children,
        text,
        ..
    } = frame;
    let text = leaf_text(text);
    if !has_children && attrs.is_empty() {
        return (Node::Str(text), Vec::new());
    }
    if !has_children && !text.is_empty() {
        // <EventID Qualifiers="0">4624</EventID>: the element is its text.
        return (Node::Str(text), attrs);
    }
    let mut map = if attrs.is_empty() {
        // The children already are a sorted map with unique keys.
        children
    } else {
        let mut map: Members<'_> = Vec::with_capacity(attrs.len() + children.len() + 1);
        for (k, v) in attrs {
            insert(&mut map, k, Node::Str(v));
        }
        for (k, v) in children {
            insert_child(&mut map, k, v);
        }
        map
    };
    if !text.is_empty() {
        insert(&mut map, Cow::Borrowed("#text"), Node::Str(text));
    }
    (Node::Object(map), Vec::new())
}

/// `a.cmp(b)`, the keys' order. Most keys differ in their first eight bytes (or in their
/// first byte), which are compared here without a call.
#[inline]
fn key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        // Big-endian words compare as their bytes do.
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    } else if let (Some(x), Some(y)) = (a.first(), b.first()) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.cmp(b)
}

/// Map insert: replaces the value of an existing key.
fn insert<'a>(map: &mut Members<'a>, key: Cow<'a, str>, value: Node<'a>) {
    match map.binary_search_by(|(k, _)| key_cmp(k, &key)) {
        Ok(i) => map[i].1 = value,
        Err(i) => map.insert(i, (key, value)),
    }
}

fn get_mut<'m, 'a>(map: &'m mut Members<'a>, key: &str) -> Option<&'m mut Node<'a>> {
    let i = map.binary_search_by(|(k, _)| key_cmp(k, key)).ok()?;
    map.get_mut(i).map(|(_, v)| v)
}

/// Inserts a child; a repeated key turns into a list of the values.
fn insert_child<'a>(map: &mut Members<'a>, key: Cow<'a, str>, value: Node<'a>) {
    if map.capacity() == 0 {
        map.reserve(8);
    }
    match map.binary_search_by(|(k, _)| key_cmp(k, &key)) {
        Err(i) => map.insert(i, (key, value)),
        Ok(i) => match &mut map[i].1 {
            Node::Array(items) => items.push(value),
            existing => {
                let first = std::mem::replace(existing, Node::Null);
                *existing = Node::Array(vec![first, value]);
            }
        },
    }
}

/// Element text: whitespace-only content (pretty-printing) is empty, anything else is kept
/// exactly.
fn leaf_text(text: Cow<'_, str>) -> Cow<'_, str> {
    // Usually the first byte decides: ASCII and not whitespace (`char::is_whitespace` for
    // ASCII: space, \t, \n, \x0b, \x0c, \r).
    if text
        .as_bytes()
        .first()
        .is_some_and(|&c| c.is_ascii() && !matches!(c, b' ' | b'\t'..=b'\r'))
    {
        return text;
    }
    if text.trim().is_empty() {
        Cow::Borrowed("")
    } else {
        text
    }
}

/// The local part of a possibly prefixed XML name (borrowed from `src` when it lies in it).
fn local_name<'a>(src: &'a str, raw: &[u8]) -> Cow<'a, str> {
    let local = match raw.iter().rposition(|&b| b == b':') {
        Some(i) => &raw[i + 1..],
        None => raw,
    };
    text_of(src, local)
}

/// `text` with its entity references resolved (only looked for when `amp`: it holds a
/// `&`), borrowed when there are none; `None` when a reference is not one the direct
/// scanner resolves (the caller then hands the document to quick-xml).
fn unescaped_strict(text: &str, amp: bool) -> Option<Cow<'_, str>> {
    if !amp {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::new();
    let mut note = None;
    unescape_into(text, &mut out, &mut note);
    note.is_none().then_some(Cow::Owned(out))
}

/// Resolves XML entity and character references leniently: the five predefined entities,
/// `&#N;` and `&#xH;` (any code point Rust accepts, control characters included). Unknown or
/// broken references stay as written and leave a note.
fn unescape_into(raw: &str, out: &mut String, note: &mut Option<String>) {
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let resolved = after.find(';').filter(|&semi| semi <= 10).and_then(|semi| {
            let name = &after[..semi];
            resolve_entity(name).map(|c| (c, semi))
        });
        match resolved {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                note.get_or_insert_with(|| {
                    let end = after
                        .char_indices()
                        .nth(10)
                        .map(|(i, _)| i)
                        .unwrap_or(after.len());
                    format!("unknown entity reference &{}", &after[..end])
                });
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse::<u32>().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LOGON: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Name="Microsoft-Windows-Security-Auditing" Guid="{54849625-5478-4994-A5BA-3E3B0328C30D}" />
    <EventID Qualifiers="0">4624</EventID>
    <Level>0</Level>
    <Keywords>0x8020000000000000</Keywords>
    <TimeCreated SystemTime="2023-03-01T10:11:12.1234567Z" />
    <Execution ProcessID="636" ThreadID="4512" />
    <Computer>DC01.contoso.local</Computer>
    <Security />
  </System>
  <EventData>
    <Data Name="TargetUserName">alice</Data>
    <Data Name="IpAddress">10.1.2.3</Data>
    <Data Name="IpPort">50123</Data>
    <Data Name="LogonType">3</Data>
    <Data Name="Empty"></Data>
  </EventData>
</Event>"#;

    #[test]
    fn system_and_named_data() {
        let (tree, note) = parse_event(LOGON);
        assert_eq!(note, None);
        assert_eq!(tree["System"]["EventID"], "4624");
        assert_eq!(tree["System"]["EventID_Qualifiers"], "0");
        assert_eq!(
            tree["System"]["Provider"]["Name"],
            "Microsoft-Windows-Security-Auditing"
        );
        assert_eq!(
            tree["System"]["TimeCreated"]["SystemTime"],
            "2023-03-01T10:11:12.1234567Z"
        );
        assert_eq!(tree["System"]["Execution"]["ProcessID"], "636");
        assert_eq!(tree["System"]["Security"], "");
        assert_eq!(tree["System"]["Computer"], "DC01.contoso.local");
        assert_eq!(tree["EventData"]["TargetUserName"], "alice");
        assert_eq!(tree["EventData"]["IpPort"], "50123");
        assert_eq!(tree["EventData"]["Empty"], "");
        assert!(tree.get("Event").is_none());
    }

    #[test]
    fn unnamed_data_is_a_list_and_binary_kept() {
        let xml = "<Event><System><EventID>7036</EventID></System><EventData>\
                   <Data>Windows Update</Data><Data>running</Data><Binary>7700</Binary>\
                   </EventData></Event>";
        let (tree, note) = parse_event(xml);
        assert_eq!(note, None);
        assert_eq!(
            tree["EventData"]["Data"],
            json!(["Windows Update", "running"])
        );
        assert_eq!(tree["EventData"]["Binary"], "7700");
        let (single, _) = parse_event("<Event><EventData><Data>one</Data></EventData></Event>");
        assert_eq!(single["EventData"]["Data"], json!(["one"]));
    }

    #[test]
    fn user_data_and_repeated_elements() {
        let xml = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System><EventID>1102</EventID></System>
  <UserData>
    <LogFileCleared xmlns="http://manifests.microsoft.com/win/2004/08/windows/eventlog">
      <SubjectUserName>admin</SubjectUserName>
      <URL scheme="http">http://crl.example/x.crl</URL>
      <Item>a</Item><Item>b</Item><Item>c</Item>
    </LogFileCleared>
  </UserData>
</Event>"#;
        let (tree, note) = parse_event(xml);
        assert_eq!(note, None);
        let cleared = &tree["UserData"]["LogFileCleared"];
        assert_eq!(cleared["SubjectUserName"], "admin");
        assert_eq!(cleared["URL"], "http://crl.example/x.crl");
        assert_eq!(cleared["URL_scheme"], "http");
        assert_eq!(cleared["Item"], json!(["a", "b", "c"]));
        assert!(cleared.get("xmlns").is_none());
    }

    #[test]
    fn entity_and_char_refs() {
        let xml = "<Event><EventData><Data Name=\"Cmd\">a &amp; b &lt;c&gt; &quot;d&quot; &#65;&#x42;</Data>\
                   <Data Name=\"Ctl\">x&#3;y</Data><Data Name=\"Odd\">&bogus; z</Data></EventData></Event>";
        let (tree, note) = parse_event(xml);
        assert_eq!(tree["EventData"]["Cmd"], "a & b <c> \"d\" AB");
        assert_eq!(tree["EventData"]["Ctl"], "x\u{3}y");
        assert_eq!(tree["EventData"]["Odd"], "&bogus; z");
        assert!(note.unwrap_or_default().contains("&bogus;"));
    }

    #[test]
    fn raw_control_characters_are_kept() {
        let xml = "<Event><EventData><Data Name=\"MinPasswordAge\">\u{3}</Data>\
                   <Data Name=\"After\">ok</Data></EventData></Event>";
        let (tree, note) = parse_event(xml);
        assert_eq!(note, None);
        assert_eq!(tree["EventData"]["MinPasswordAge"], "\u{3}");
        assert_eq!(tree["EventData"]["After"], "ok");
    }

    #[test]
    fn truncated_xml_keeps_what_was_read() {
        let cut = &LOGON[..LOGON.find("<Data Name=\"IpPort\"").unwrap_or(LOGON.len()) + 14];
        let (tree, note) = parse_event(cut);
        assert_eq!(tree["System"]["EventID"], "4624");
        assert_eq!(tree["EventData"]["TargetUserName"], "alice");
        assert_eq!(tree["EventData"]["IpAddress"], "10.1.2.3");
        let note = note.unwrap_or_default();
        assert!(
            note.contains("truncated") || note.contains("malformed"),
            "{note}"
        );
    }

    #[test]
    fn garbage_and_empty_input() {
        let (tree, note) = parse_event("");
        assert_eq!(tree, json!({}));
        assert_eq!(note, None);
        let (tree, note) = parse_event("not xml at all");
        assert_eq!(tree, json!({}));
        assert_eq!(note, None);
        let (tree, note) = parse_event("<Event><System><EventID>1</EventID></Sys></Event>");
        assert_eq!(tree["System"]["EventID"], "1");
        assert!(note.is_some());
    }

    #[test]
    fn mismatched_end_tags_recover() {
        let xml = "<Event><System><EventID>4625</EventID><Computer>h1</System>\
                   <EventData><Data Name=\"A\">1</Data></EventData></Event>";
        let (tree, note) = parse_event(xml);
        assert_eq!(tree["System"]["EventID"], "4625");
        assert_eq!(tree["System"]["Computer"], "h1");
        assert_eq!(tree["EventData"]["A"], "1");
        assert!(note.unwrap_or_default().contains("Computer"));
    }

    #[test]
    fn security_event_eventdata_root() {
        let xml = "<EventData xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\">\r\n  \
                   <Data Name=\"TargetUserName\">bob</Data>\r\n  <Data Name=\"LogonType\">10</Data>\r\n</EventData>";
        let (tree, note) = parse_event(xml);
        assert_eq!(note, None);
        assert_eq!(tree["EventData"]["TargetUserName"], "bob");
        assert_eq!(tree["EventData"]["LogonType"], "10");
    }

    #[test]
    fn prefixed_names_and_cdata() {
        let xml = "<e:Event xmlns:e=\"urn:x\"><e:System e:Attr=\"v\"><e:Computer><![CDATA[a<b]]></e:Computer></e:System></e:Event>";
        let (tree, note) = parse_event(xml);
        assert_eq!(note, None);
        assert_eq!(tree["System"]["Computer"], "a<b");
        assert_eq!(tree["System"]["Attr"], "v");
    }

    #[test]
    fn rendering_info() {
        let xml = "<Event><System><EventID>4624</EventID></System><RenderingInfo Culture=\"en-US\">\
                   <Message>An account was successfully logged on.</Message><Level>Information</Level>\
                   <Keywords><Keyword>Audit Success</Keyword></Keywords></RenderingInfo></Event>";
        let (tree, _) = parse_event(xml);
        assert_eq!(
            tree["RenderingInfo"]["Message"],
            "An account was successfully logged on."
        );
        assert_eq!(tree["RenderingInfo"]["Culture"], "en-US");
        assert_eq!(
            tree["RenderingInfo"]["Keywords"]["Keyword"],
            "Audit Success"
        );
    }

    /// Documents that exercise how the tree is assembled (repeated keys, attributes next to
    /// children, `<Data>` folding, roots, prefixes, blank text, truncation in text).
    const TRICKY: &[&str] = &[
        r#"<Event><System><EventID Qualifiers="0">4624</EventID><EventID_Qualifiers>x</EventID_Qualifiers><EventID>2</EventID></System></Event>"#,
        r#"<Event><EventData><Data Name="Data">n</Data><Data>u1</Data><Data>u2</Data><Data Name="Data">n2</Data></EventData></Event>"#,
        r#"<Event><EventData><Data>u1</Data><Data Name="Data">n</Data><Data>u2</Data></EventData></Event>"#,
        r#"<Event><EventData><Data Name="">e</Data><Data Name="A" Name="B">x</Data><Data Other="1">y</Data><Data Name="A">again</Data></EventData></Event>"#,
        r#"<Event><EventData><Data Name="K"><Inner>z</Inner></Data><Data Name="L">t<b/></Data></EventData></Event>"#,
        r#"<Event><System Attr="1"><Attr>child</Attr><Attr>child2</Attr></System></Event>"#,
        r#"<Event><System Attr="1" Attr="2"><Child>c</Child></System></Event>"#,
        r#"<Event><A x="1">text<B/></A><A y="2"/><A>t</A><A><C/></A></Event>"#,
        r#"<Event><A x="1"> <B/> </A></Event>"#,
        r#"<Event><A x="1">t</A><A_x>o</A_x><A x="2">u</A></Event>"#,
        r#"<Event Version="1"/>"#,
        r#"<Event Version="1">text</Event>"#,
        r#"<Event>text</Event>"#,
        r#"<Event Version="1"><System/></Event>"#,
        r#"<Other a="1">t</Other>"#,
        r#"<Other a="1"/>"#,
        r#"<Other a="1"><X>1</X></Other>"#,
        r#"<x:Event xmlns:x="u"><x:System x:A="1" B="2"><x:C>c</x:C><C>d</C></x:System></x:Event>"#,
        r#"<Event><Sys:><a:>v</a:></Sys:></Event>"#,
        r#"<Event><EventData><Data Name="A">&amp;&lt;</Data><Data Name="&quot;q&quot;">v</Data></EventData></Event>"#,
        r#"<Event><UserData><EventData><Data>nested</Data></EventData></UserData><EventData><Data Name="A">a</Data><Data>b</Data></EventData></Event>"#,
        r#"<Event><RenderingInfo Culture="en"><Message>m</Message><Keywords><Keyword>a</Keyword><Keyword>b</Keyword></Keywords></RenderingInfo></Event>"#,
        r#"<Event><System><Provider Name="P"/><Provider Name="Q"/><Provider>t</Provider></System></Event>"#,
        r#"<Event><A>&#160;</A><B>&#xA0;x</B><C>&#11;</C><D>&#12;</D><E> &#x2003; </E></Event>"#,
        "<Event><A>  </A><B> x </B><C>\n</C></Event>",
        r#"<Event><EventData><Data Name="A">1</Data>"#,
        r#"<Event><EventData><Data Name="A">1</Data><Data Name="B">tr &amp; unc"#,
        r#"<Event><System><EventID Qualifiers="0">4624</EventID></System><EventData>  "#,
        r#"<EventData><Data Name="A">1</Data><Data>2</Data>"#,
        r#"<Event><!-- c --><System><?pi x?><EventID>1</EventID><!-- c2 --></System></Event>"#,
        r#"<Event><System><EventID>1</EventID></System></Event>trailing<More/>"#,
        r#"<Event><#text>x</#text><A a="1">t</A></Event>"#,
        r#"<Event><A><B>1</B><B>2</B><B><C/></B></A></Event>"#,
        r#"<Event><A B="1"><B>2</B></A></Event>"#,
        r#"<Event><A B="1"><B>2</B><B>3</B></A></Event>"#,
        r#"<Event><EventData><Data Name="X">1</Data><X>child</X><Data Name="X">2</Data></EventData></Event>"#,
        r#"<Event><EventData a="1"><Data Name="a">1</Data></EventData></Event>"#,
        r#"<Event><EventData>text<Data Name="a">1</Data></EventData></Event>"#,
        r#"<Event><Data Name="x">not in eventdata</Data><Data>y</Data></Event>"#,
        r#"<Event><?>x</Event>"#,
        r#"<Event><??><A>1</A></Event>"#,
        r#"<Event><!----><!---->x</Event>"#,
        "<Event><A>1</A>\r\n  <B>2</B>\r\n",
        r#"<Event><A>1</A><B>text"#,
        r#"<Event><A>1</A><B>t &amp; u"#,
        r#"<Event><A>1</A><B>t &bogus; u"#,
        r#"<Event xmlns="u"><System><EventID Qualifiers="16384">7036</EventID></System></Event>"#,
    ];

    /// Documents for the differential test: the fixtures' XML, the shared samples when
    /// present, and truncations and single-byte edits of them.
    fn corpus() -> Vec<String> {
        let mut docs: Vec<String> = vec![LOGON.to_string()];
        docs.extend(TRICKY.iter().map(|d| d.to_string()));
        docs.push(TRICKY.concat());
        let dir = std::path::Path::new(
            "/work/shared/samples/windows-security-xml/from-omerbenamram-evtx-samples",
        );
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                for chunk in text.split("<Event ").skip(1) {
                    let end = chunk.find("</Event>").map(|i| i + 8).unwrap_or(chunk.len());
                    docs.push(format!("<Event {}", &chunk[..end]));
                }
            }
        }
        let fx = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records");
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::String(s) if s.contains('<') => out.push(s.clone()),
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        for e in std::fs::read_dir(fx).into_iter().flatten().flatten() {
            let Ok(t) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                walk(&v, &mut docs);
            }
        }
        let mut variants = Vec::new();
        let head = TRICKY.len() + 2;
        for d in docs[..head]
            .iter()
            .chain(docs[head..].iter().step_by(3).take(300))
        {
            let b = d.as_bytes();
            let step = (b.len() / 41).max(1);
            for cut in (0..b.len()).step_by(step) {
                if let Ok(p) = std::str::from_utf8(&b[..cut]) {
                    variants.push(p.to_string());
                }
                for r in [
                    b'<', b'>', b'/', b'&', b'"', b'\'', b' ', b'=', b'!', b'?', b'x', b':',
                ] {
                    let mut m = b.to_vec();
                    m[cut] = r;
                    if let Ok(s) = String::from_utf8(m) {
                        variants.push(s);
                    }
                }
            }
        }
        docs.extend(variants);
        docs
    }

    /// Whatever the direct scanner accepts, quick-xml reads the same way and without a note.
    #[test]
    fn direct_scanner_agrees_with_quick_xml() {
        let docs = corpus();
        let mut fast = 0usize;
        for d in &docs {
            if let Some((tree, fast_note)) = fast_tree(d) {
                fast += 1;
                let (slow, note) = reader_tree(d);
                assert_eq!(fast_note, note, "{d}");
                assert_eq!(tree, slow, "{d}");
                assert_eq!(tree.to_json(), slow.to_json(), "{d}");
            }
        }
        assert!(
            docs.len() > 1000 && fast > docs.len() / 10,
            "{fast} of {}",
            docs.len()
        );
    }

    /// Every event of the real Windows Security samples parses; the control-character file
    /// too. Read at test time only when the shared samples exist (never copied into the repo).
    #[test]
    fn shared_windows_samples_parse() {
        let dir = std::path::Path::new(
            "/work/shared/samples/windows-security-xml/from-omerbenamram-evtx-samples",
        );
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("note: {} not present, skipping", dir.display());
            return;
        };
        let mut events = 0usize;
        let mut with_ids = 0usize;
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            for chunk in text.split("<Event ").skip(1) {
                let end = chunk.find("</Event>").map(|i| i + 8).unwrap_or(chunk.len());
                let xml = format!("<Event {}", &chunk[..end]);
                let (tree, note) = parse_event(&xml);
                events += 1;
                assert_eq!(note, None, "{}: {xml}", entry.path().display());
                if tree["System"]["EventID"].as_str().is_some()
                    && tree["System"]["TimeCreated"]["SystemTime"]
                        .as_str()
                        .is_some()
                {
                    with_ids += 1;
                }
                if tree["System"]["EventID"] == "4624" {
                    assert!(tree["EventData"]["TargetUserName"].is_string());
                    assert!(tree["EventData"]["LogonType"].is_string());
                }
            }
        }
        assert!(events > 500, "only {events} events found");
        assert_eq!(with_ids, events);
    }
}
