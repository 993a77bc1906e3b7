//! `extract` regexes of the tables, with a small direct matcher for the simple shapes most of
//! them have.
//!
//! A field's `extract` takes capture group 1 of the first match (else the whole match). The
//! `regex` crate finds a match with its DFAs and then runs a capture engine over it; for the
//! short texts of the tables (Azure Firewall `msg`, NSG flow tuples, Windows paths) that second
//! step costs several thousand instructions per call. Patterns that are a plain sequence of
//! literals, classes (`\S \s \d \w \D \W . [...]`) with quantifiers (`+ * ? +? *? ??`), at most
//! one capture group (which may hold an alternation of literals, `(TCP|UDP)`), `(?:...){n}`
//! repetitions, optional literals `(?:...)?`, a leading `(?i)`, `^`/`$` and a final
//! `(?:[...]|$)` are compiled to a backtracking matcher with the same leftmost-first
//! semantics ([`Simple`]). It only runs on ASCII text (where Unicode `\s \d \w` are their
//! ASCII sets and case folding is ASCII case folding) within a step budget; any other text,
//! pattern or an exhausted budget takes the regex, so results are always the regex's. Among
//! those, "field n of a separated text" (`^(?:[^,]*,){3}([^,]*),`, the NSG flow tuples) is cut
//! with `memchr` alone, on any text ([`FieldOf`]).
use std::sync::OnceLock;

use regex::Regex;

/// Steps (item attempts) the direct matcher may take before it hands over to the regex.
const STEP_BUDGET: u32 = 4_000;

/// Most items a direct pattern may have (after expanding `{n}`).
const MAX_ITEMS: usize = 48;

/// A compiled `extract` pattern.
#[derive(Debug, Clone)]
pub struct Extractor {
    pattern: Box<str>,
    /// The regex crate's form: compiled when the pattern is loaded unless the direct matcher
    /// takes it, else on first use (non-ASCII text or an exhausted budget). Compiling every
    /// table pattern took half of the start-up's instructions. `None` only if the deferred
    /// compile failed, which syntax checking at load time rules out in practice.
    re: OnceLock<Option<Regex>>,
    /// Boxed: the plan's fields stay small (they are walked for every record).
    simple: Option<Box<Simple>>,
}

impl Extractor {
    /// Compiles `pattern` (errors are the regex crate's).
    pub fn new(pattern: &str) -> Result<Extractor, regex::Error> {
        let simple = Simple::parse(pattern).map(Box::new);
        let re = if simple.is_some() {
            // Checked now, compiled when first needed.
            regex_syntax::Parser::new()
                .parse(pattern)
                .map_err(|e| regex::Error::Syntax(e.to_string()))?;
            OnceLock::new()
        } else {
            OnceLock::from(Some(Regex::new(pattern)?))
        };
        Ok(Extractor {
            pattern: pattern.into(),
            re,
            simple,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the direct matcher handles this pattern (on ASCII text).
    pub fn is_direct(&self) -> bool {
        self.simple.is_some()
    }

    /// Capture group 1 of the first match, else the whole match.
    pub fn find<'s>(&self, text: &'s str) -> Option<&'s str> {
        if let Some(simple) = &self.simple {
            // Exact on any UTF-8 text: an ASCII separator never occurs inside a multi-byte
            // character, and `[^c]` takes every other character.
            if let Some(field) = simple.field {
                return field
                    .find(text.as_bytes())
                    .and_then(|(s, e)| text.get(s..e));
            }
            if all_ascii(text.as_bytes()) {
                match simple.find(text.as_bytes()) {
                    Outcome::Match(s, e) => return text.get(s..e),
                    Outcome::NoMatch => return None,
                    Outcome::GiveUp => {}
                }
            }
        }
        self.find_regex(text)
    }

    /// [`Extractor::find`] by the regex crate only.
    pub fn find_regex<'s>(&self, text: &'s str) -> Option<&'s str> {
        let re = self.re.get_or_init(|| {
            Regex::new(&self.pattern)
                .inspect_err(|e| {
                    tracing::error!(pattern = %self.pattern, error = %e, "extract regex failed to compile; it matches nothing");
                })
                .ok()
        });
        let caps = re.as_ref()?.captures(text)?;
        caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str())
    }
}

/// Whether every byte is ASCII: the bytes OR-ed together eight at a time, checked once at
/// the end. `str::is_ascii` took ≈ 5× as long on the ~100-byte texts the patterns run over
/// (Azure Firewall's classic table runs 23 patterns over each `msg`).
fn all_ascii(b: &[u8]) -> bool {
    let mut acc = 0u64;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        acc |= u64::from_ne_bytes(word);
    }
    for &x in words.remainder() {
        acc |= u64::from(x);
    }
    acc & 0x8080_8080_8080_8080 == 0
}

/// A set of ASCII bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Set([u64; 2]);

impl Set {
    const EMPTY: Set = Set([0, 0]);

    fn with(mut self, b: u8) -> Set {
        if b < 128 {
            self.0[usize::from(b >> 6)] |= 1u64 << (b & 63);
        }
        self
    }

    fn range(mut self, lo: u8, hi: u8) -> Set {
        for b in lo..=hi {
            self = self.with(b);
        }
        self
    }

    fn union(self, o: Set) -> Set {
        Set([self.0[0] | o.0[0], self.0[1] | o.0[1]])
    }

    fn not(self) -> Set {
        Set([!self.0[0], !self.0[1]])
    }

    #[inline]
    fn has(self, b: u8) -> bool {
        b < 128 && self.0[usize::from(b >> 6)] & (1u64 << (b & 63)) != 0
    }

    /// The set with both cases of every ASCII letter in it (`(?i)` on ASCII text).
    fn fold_case(self) -> Set {
        (b'A'..=b'Z').fold(self, |s, up| {
            let low = up.to_ascii_lowercase();
            if s.has(up) || s.has(low) {
                s.with(up).with(low)
            } else {
                s
            }
        })
    }

    /// Unicode `\s` restricted to ASCII.
    fn space() -> Set {
        Set::EMPTY.range(b'\t', b'\r').with(b' ')
    }

    fn digit() -> Set {
        Set::EMPTY.range(b'0', b'9')
    }

    /// Unicode `\w` restricted to ASCII.
    fn word() -> Set {
        Set::digit().range(b'a', b'z').range(b'A', b'Z').with(b'_')
    }
}

/// One element of the sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A byte class repeated `min..=max` times.
    Class {
        set: Set,
        min: u32,
        max: u32,
        greedy: bool,
    },
    /// Fixed-length alternatives of one byte class per position, tried in order: a run of
    /// literals (one alternative), `(TCP|UDP)`, or `(?:\.0)?` (the text, then nothing).
    Alt(Vec<Vec<Set>>),
    /// `(?:[set]|$)`: one byte of `set`, or the end of the text.
    OrEnd(Set),
}

impl Item {
    /// One byte of `set`, exactly once.
    fn one(set: Set) -> Item {
        Item::Alt(vec![vec![set]])
    }

    /// The single alternative of a fixed sequence, if this item is one.
    fn fixed(&self) -> Option<&[Set]> {
        match self {
            Item::Alt(alts) if alts.len() == 1 => alts.first().map(Vec::as_slice),
            _ => None,
        }
    }
}

/// A pattern of the simple shape (see the module docs).
#[derive(Debug, Clone)]
struct Simple {
    start: bool,
    end: bool,
    items: Vec<Item>,
    /// Item range `[from, to)` of capture group 1.
    group: Option<(usize, usize)>,
    /// Literal bytes every match starts with (the leading items of exactly one byte).
    prefix: Vec<u8>,
    /// Searcher for `prefix` (when not empty).
    finder: memchr::memmem::Finder<'static>,
    /// For each `i` in `0..=items.len()`: the bytes a match of `items[i..]` can start with,
    /// and whether it can match the empty text. A quantified class tries a next position only
    /// when the rest can start there (see [`Matcher::may_start`]).
    follow: Vec<(Set, bool)>,
    /// Set when the pattern picks one field of a separated text (see [`FieldOf`]).
    field: Option<FieldOf>,
}

/// `^(?:[^c]*c){n}([^c]*)`, optionally followed by `c`: field `n` (from 0) of a text whose
/// fields are separated by the byte `c` (NSG flow tuples: `^(?:[^,]*,){3}([^,]*),`). Each
/// `[^c]*` can only stop at a `c`, so the pattern matches in exactly one way and needs no
/// backtracking: the separators are found with `memchr` instead of one matcher step per item
/// (and it holds on any UTF-8 text, see [`Extractor::find`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldOf {
    sep: u8,
    n: usize,
    /// The pattern ends with `c`: the field must be followed by a separator.
    then_sep: bool,
}

impl FieldOf {
    /// The shape in the compiled items (after [`merge_fixed`]), if they have it.
    fn detect(
        start: bool,
        end: bool,
        items: &[Item],
        group: Option<(usize, usize)>,
    ) -> Option<FieldOf> {
        if !start || end {
            return None;
        }
        let Some(
            field @ Item::Class {
                set: run,
                min: 0,
                max: u32::MAX,
                greedy: true,
            },
        ) = items.first()
        else {
            return None;
        };
        let sep = single(run.not())?;
        let one = Item::one(Set::EMPTY.with(sep));
        // n × (run, sep), the group around one run, and maybe one more sep.
        let (g0, g1) = group?;
        let then_sep = match items.get(g1..)? {
            [] => false,
            [last] if *last == one => true,
            _ => return None,
        };
        let before_ok = g0 % 2 == 0
            && items
                .get(..g0)?
                .chunks(2)
                .all(|pair| matches!(pair, [r, c] if r == field && *c == one));
        (before_ok && g1 == g0 + 1 && items.get(g0) == Some(field)).then_some(FieldOf {
            sep,
            n: g0 / 2,
            then_sep,
        })
    }

    /// The field's byte range, if the text has it (it never gives up).
    fn find(self, text: &[u8]) -> Option<(usize, usize)> {
        let mut at = 0;
        for _ in 0..self.n {
            at += memchr::memchr(self.sep, text.get(at..)?)? + 1;
        }
        match memchr::memchr(self.sep, text.get(at..)?) {
            Some(o) => Some((at, at + o)),
            None if self.then_sep => None,
            None => Some((at, text.len())),
        }
    }
}

enum Outcome {
    Match(usize, usize),
    NoMatch,
    GiveUp,
}

impl Simple {
    /// The direct form of `pattern`, when it has the simple shape.
    fn parse(pattern: &str) -> Option<Simple> {
        let mut p = Parser {
            b: pattern.as_bytes(),
            i: 0,
            fold: false,
        };
        let start = p.eat(b'^');
        if p.b.get(p.i..p.i + 4) == Some(b"(?i)") {
            p.i += 4;
            p.fold = true;
        }
        let mut items = Vec::new();
        let mut group = None;
        let mut end = false;
        while let Some(&c) = p.b.get(p.i) {
            match c {
                b'$' => {
                    p.i += 1;
                    end = true;
                    if p.i != p.b.len() {
                        return None;
                    }
                }
                b'(' => {
                    p.i += 1;
                    if p.b.get(p.i..p.i + 2) == Some(b"?:") {
                        p.i += 2;
                        if p.b.get(p.i) == Some(&b'[') {
                            // `(?:[...]|$)` as the last element.
                            let save = p.i;
                            let set = p.class()?;
                            if p.b.get(p.i..) == Some(b"|$)") {
                                items.push(Item::OrEnd(set));
                                p.i += 3;
                                if p.i != p.b.len() {
                                    return None;
                                }
                                continue;
                            }
                            p.i = save;
                        }
                        let inner = p.sequence()?;
                        if !p.eat(b')') {
                            return None;
                        }
                        if p.eat(b'?') {
                            // `(?:literals)?`: the literals, else nothing (`??`: the reverse).
                            let lit = literal(&inner)?;
                            let alts = if p.eat(b'?') {
                                vec![Vec::new(), lit]
                            } else {
                                vec![lit, Vec::new()]
                            };
                            items.push(Item::Alt(alts));
                            continue;
                        }
                        // `(?:seq){n}`: the sequence n times.
                        if !p.eat(b'{') {
                            return None;
                        }
                        let n = p.number()?;
                        if !p.eat(b'}') || n == 0 || n > 16 {
                            return None;
                        }
                        for _ in 0..n {
                            items.extend(inner.iter().cloned());
                        }
                    } else {
                        if group.is_some() || p.b.get(p.i) == Some(&b'?') {
                            return None;
                        }
                        let from = items.len();
                        let first = p.sequence()?;
                        if p.b.get(p.i) == Some(&b'|') {
                            // `(lit|lit|...)`: alternatives of literals only.
                            let mut alts = vec![literal(&first)?];
                            while p.eat(b'|') {
                                alts.push(literal(&p.sequence()?)?);
                            }
                            items.push(Item::Alt(alts));
                        } else {
                            items.extend(first);
                        }
                        if !p.eat(b')') {
                            return None;
                        }
                        if matches!(p.b.get(p.i), Some(b'*' | b'+' | b'?' | b'{')) {
                            return None;
                        }
                        group = Some((from, items.len()));
                    }
                }
                _ => items.push(p.item()?),
            }
        }
        if items.is_empty() || items.len() >= MAX_ITEMS {
            return None;
        }
        let prefix: Vec<u8> = items
            .iter()
            .map_while(Item::fixed)
            .flatten()
            .map_while(|&set| single(set))
            .collect();
        let (items, group) = merge_fixed(items, group);
        let finder = memchr::memmem::Finder::new(&prefix).into_owned();
        let follow = follow_sets(&items);
        let field = FieldOf::detect(start, end, &items, group);
        Some(Simple {
            start,
            end,
            items,
            group,
            prefix,
            finder,
            follow,
            field,
        })
    }

    fn find(&self, text: &[u8]) -> Outcome {
        let mut m = Matcher {
            s: self,
            text,
            group: (0, 0),
            steps: 0,
        };
        let last = if self.start { 0 } else { text.len() };
        // A leading unbounded class: after a failed start, no start inside the run it
        // covered can match (its ends were all tried), so the search resumes past the run.
        let lead = match self.items.first() {
            Some(&Item::Class {
                set, max: u32::MAX, ..
            }) => Some(set),
            _ => None,
        };
        let mut from = 0;
        while from <= last {
            let at = if self.prefix.is_empty() || self.start {
                from
            } else {
                match text.get(from..).and_then(|t| self.finder.find(t)) {
                    Some(o) => from + o,
                    None => return Outcome::NoMatch,
                }
            };
            match m.run(0, at) {
                Some(end) => {
                    let (s, e) = match self.group {
                        Some(_) => m.group,
                        None => (at, end),
                    };
                    return Outcome::Match(s, e);
                }
                None if m.steps > STEP_BUDGET => return Outcome::GiveUp,
                None => {}
            }
            from = at + 1;
            if let Some(set) = lead {
                from += text
                    .get(at..)
                    .map_or(0, |t| t.iter().take_while(|&&b| set.has(b)).count());
            }
        }
        Outcome::NoMatch
    }
}

/// [`Simple::follow`]: from the last item back, the first bytes of each suffix and whether it
/// can be empty. `(?:[set]|$)` counts as not empty: before the end of the text it needs a
/// byte of its set (at the end [`Matcher::may_start`] does not filter).
fn follow_sets(items: &[Item]) -> Vec<(Set, bool)> {
    let mut out = vec![(Set::EMPTY, true); items.len() + 1];
    for (i, item) in items.iter().enumerate().rev() {
        let (first, empty) = match item {
            Item::Class { set, min, .. } => (*set, *min == 0),
            Item::Alt(alts) => {
                alts.iter()
                    .fold((Set::EMPTY, false), |(f, e), alt| match alt.first() {
                        Some(&set) => (f.union(set), e),
                        None => (f, true),
                    })
            }
            Item::OrEnd(set) => (*set, false),
        };
        let (rest_first, rest_empty) = out.get(i + 1).copied().unwrap_or((Set::EMPTY, true));
        if let Some(slot) = out.get_mut(i) {
            *slot = if empty {
                (first.union(rest_first), rest_empty)
            } else {
                (first, false)
            };
        }
    }
    out
}

/// The byte sets of a sequence of single bytes (literals or one-byte classes).
fn literal(items: &[Item]) -> Option<Vec<Set>> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(item.fixed()?);
    }
    Some(out)
}

/// Merges neighbouring fixed sequences into one item (one comparison instead of one step
/// per byte), never across the capture group's bounds; returns the items and the group's
/// new bounds.
fn merge_fixed(
    items: Vec<Item>,
    group: Option<(usize, usize)>,
) -> (Vec<Item>, Option<(usize, usize)>) {
    let n = items.len();
    let mut out: Vec<Item> = Vec::with_capacity(n);
    let mut bounds = group;
    // The last item pushed is a fixed sequence that later ones may join.
    let mut open = false;
    for (i, item) in items.into_iter().enumerate() {
        if let (Some((g0, g1)), Some(b)) = (group, bounds.as_mut()) {
            if i == g0 {
                b.0 = out.len();
                open = false;
            }
            if i == g1 {
                b.1 = out.len();
                open = false;
            }
        }
        let fixed = item.fixed().map(<[Set]>::to_vec);
        match (fixed, out.last_mut()) {
            (Some(f), Some(Item::Alt(alts))) if open => {
                if let Some(seq) = alts.first_mut() {
                    seq.extend(f);
                }
            }
            (f, _) => {
                open = f.is_some();
                out.push(item);
            }
        }
    }
    if let (Some((g0, g1)), Some(b)) = (group, bounds.as_mut()) {
        if g0 >= n {
            b.0 = out.len();
        }
        if g1 >= n {
            b.1 = out.len();
        }
    }
    (out, bounds)
}

/// The byte of a one-byte set.
fn single(set: Set) -> Option<u8> {
    let n = set.0[0].count_ones() + set.0[1].count_ones();
    (n == 1).then(|| (0u8..128).find(|&b| set.has(b))).flatten()
}

struct Matcher<'m> {
    s: &'m Simple,
    text: &'m [u8],
    /// Where the items that start and end capture group 1 ([`Simple::group`]) started on the
    /// current path. The successful path is the last to reach each item (a match returns at
    /// once), so this is the group of the match.
    group: (usize, usize),
    steps: u32,
}

impl Matcher<'_> {
    /// Whether items `i..` can match at `at`, by its first byte only: a pure filter (when
    /// false, [`Matcher::run`] would fail there at once), so results do not change.
    #[inline]
    fn may_start(&self, i: usize, at: usize) -> bool {
        match (self.s.follow.get(i), self.text.get(at)) {
            (Some(&(first, empty)), Some(&b)) => empty || first.has(b),
            _ => true,
        }
    }

    /// Matches items `i..` at `at`; the end of the match.
    fn run(&mut self, i: usize, at: usize) -> Option<usize> {
        self.steps += 1;
        if self.steps > STEP_BUDGET {
            return None;
        }
        if let Some((g0, g1)) = self.s.group {
            if i == g0 {
                self.group.0 = at;
            }
            if i == g1 {
                self.group.1 = at;
            }
        }
        let Some(item) = self.s.items.get(i) else {
            return (!self.s.end || at == self.text.len()).then_some(at);
        };
        match item {
            Item::OrEnd(set) => match self.text.get(at) {
                Some(&b) if set.has(b) => self.run(i + 1, at + 1),
                Some(_) => None,
                None => self.run(i + 1, at),
            },
            Item::Alt(alts) => {
                for alt in alts {
                    let fits = self
                        .text
                        .get(at..at + alt.len())
                        .is_some_and(|t| t.iter().zip(alt).all(|(&b, set)| set.has(b)));
                    if fits {
                        if let Some(e) = self.run(i + 1, at + alt.len()) {
                            return Some(e);
                        }
                        if self.steps > STEP_BUDGET {
                            return None;
                        }
                    }
                }
                None
            }
            &Item::Class {
                set,
                min,
                max,
                greedy,
            } => {
                // The longest run the item can take here.
                let rest = self.text.get(at..)?;
                let cap = usize::try_from(max).unwrap_or(usize::MAX);
                let n = rest.iter().take(cap).take_while(|&&b| set.has(b)).count();
                let min = usize::try_from(min).unwrap_or(usize::MAX);
                if n < min {
                    return None;
                }
                if greedy {
                    for k in (min..=n).rev() {
                        if !self.may_start(i + 1, at + k) {
                            continue;
                        }
                        if let Some(e) = self.run(i + 1, at + k) {
                            return Some(e);
                        }
                        if self.steps > STEP_BUDGET {
                            return None;
                        }
                    }
                } else {
                    for k in min..=n {
                        if !self.may_start(i + 1, at + k) {
                            continue;
                        }
                        if let Some(e) = self.run(i + 1, at + k) {
                            return Some(e);
                        }
                        if self.steps > STEP_BUDGET {
                            return None;
                        }
                    }
                }
                None
            }
        }
    }
}

struct Parser<'p> {
    b: &'p [u8],
    i: usize,
    /// `(?i)` is in effect: letters match either case.
    fold: bool,
}

impl Parser<'_> {
    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        std::str::from_utf8(self.b.get(start..self.i)?)
            .ok()?
            .parse()
            .ok()
    }

    /// Items up to (not including) `)`, `|` or the end.
    fn sequence(&mut self) -> Option<Vec<Item>> {
        let mut out = Vec::new();
        while let Some(&c) = self.b.get(self.i) {
            if c == b')' || c == b'|' {
                break;
            }
            out.push(self.item()?);
        }
        Some(out)
    }

    /// One atom with its quantifier.
    fn item(&mut self) -> Option<Item> {
        let set = self.atom()?;
        let (min, max) = match self.b.get(self.i) {
            Some(b'+') => (1, u32::MAX),
            Some(b'*') => (0, u32::MAX),
            Some(b'?') => (0, 1),
            Some(b'{') => return None,
            _ => return Some(Item::one(set)),
        };
        self.i += 1;
        let greedy = !self.eat(b'?');
        if matches!(self.b.get(self.i), Some(b'+' | b'*' | b'?' | b'{')) {
            return None;
        }
        Some(Item::Class {
            set,
            min,
            max,
            greedy,
        })
    }
    /// A literal, escape, `.` or bracket class.
    fn atom(&mut self) -> Option<Set> {
        let c = *self.b.get(self.i)?;
        match c {
            b'\\' => {
                self.i += 1;
                let e = *self.b.get(self.i)?;
                self.i += 1;
                escape(e)
            }
            b'.' => {
                self.i += 1;
                Some(Set::EMPTY.with(b'\n').not())
            }
            b'[' => self.class(),
            b'(' | b')' | b'|' | b'^' | b'$' | b'*' | b'+' | b'?' | b'{' | b'}' | b']' => None,
            c if c.is_ascii_graphic() || c == b' ' => {
                self.i += 1;
                // Under `(?i)` a letter matches either case. The other atoms are already
                // closed under case: escapes name no single letter, `.` holds all of them,
                // and classes fold themselves.
                let set = Set::EMPTY.with(c);
                Some(if self.fold { set.fold_case() } else { set })
            }
            _ => None,
        }
    }

    /// `[...]` / `[^...]` of literals, escapes and `a-z` ranges.
    fn class(&mut self) -> Option<Set> {
        if !self.eat(b'[') {
            return None;
        }
        let negated = self.eat(b'^');
        let mut set = Set::EMPTY;
        let mut first = true;
        loop {
            let c = *self.b.get(self.i)?;
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            self.i += 1;
            let lo = match c {
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    let s = escape(e)?;
                    match single(s) {
                        Some(b) => b,
                        None => {
                            set = set.union(s);
                            continue;
                        }
                    }
                }
                b'[' | b'&' | b'~' | b'-' => return None,
                c if c.is_ascii_graphic() || c == b' ' => c,
                _ => return None,
            };
            if self.b.get(self.i) == Some(&b'-') && self.b.get(self.i + 1) != Some(&b']') {
                let hi = *self.b.get(self.i + 1)?;
                if !hi.is_ascii_alphanumeric() || !lo.is_ascii_alphanumeric() || hi < lo {
                    return None;
                }
                self.i += 2;
                set = set.range(lo, hi);
            } else {
                set = set.with(lo);
            }
        }
        // `(?i)` folds the class's members before it is negated, as the regex crate does.
        let set = if self.fold { set.fold_case() } else { set };
        Some(if negated { set.not() } else { set })
    }
}

/// The set of `\e`, for the escapes the direct matcher knows.
fn escape(e: u8) -> Option<Set> {
    Some(match e {
        b'S' => Set::space().not(),
        b's' => Set::space(),
        b'd' => Set::digit(),
        b'D' => Set::digit().not(),
        b'w' => Set::word(),
        b'W' => Set::word().not(),
        b't' => Set::EMPTY.with(b'\t'),
        b'n' => Set::EMPTY.with(b'\n'),
        b'r' => Set::EMPTY.with(b'\r'),
        // `\<` and `\>` are word-boundary assertions.
        b'<' | b'>' => return None,
        c if c.is_ascii_punctuation() => Set::EMPTY.with(c),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-wise check agrees with `is_ascii` for a non-ASCII byte at every position of
    /// texts up to three words and a bit long.
    #[test]
    fn all_ascii_sees_every_byte() {
        for len in 0..30 {
            let plain = vec![b'a'; len];
            assert!(all_ascii(&plain), "{len}");
            for at in 0..len {
                for high in [0x80u8, 0xc3, 0xff] {
                    let mut b = plain.clone();
                    b[at] = high;
                    assert!(!all_ascii(&b), "{len} {at} {high:#x}");
                    assert_eq!(all_ascii(&b), b.is_ascii());
                }
            }
        }
    }

    /// Every `extract` pattern of the built-in tables.
    fn table_patterns() -> Vec<String> {
        let mut out = Vec::new();
        for (_, text) in crate::schema::builtin::BUILTIN_TABLES {
            let Ok(doc) = text.parse::<toml::Table>() else {
                continue;
            };
            if let Some(toml::Value::Array(fields)) = doc.get("field") {
                for f in fields {
                    if let Some(toml::Value::String(re)) = f.get("extract") {
                        out.push(re.clone());
                    }
                }
            }
        }
        out
    }

    const TEXTS: &[&str] = &[
        "TCP request from 10.0.2.4:51990 to 13.69.65.17:443. Action: Allow. Rule Collection: rc1. Rule: r1",
        "HTTPS request from 10.1.0.5:55640 to www.contoso.com:443. Action: Deny. No rule matched. Proceeding with default action",
        "TCP request from 52.1.2.3:50000 to 20.1.1.1:3389 was DNAT'ed to 10.0.0.4:3389",
        "HTTP request from 10.0.0.4:12345 to bad.example:80. Action: Alert. ThreatIntel: Bot Networks",
        "HTTP request from 10.0.0.4:12345 to bad.example:80. Action: Alert. ThreatIntel: Bot Networks.  ",
        "DNS Request: 10.0.0.4:53211 - 15676 AAAA IN www.microsoft.com. udp 36 false 512 NOERROR qr,rd,ra 89 0.000076s",
        "DNS Request: 10.0.0.4:53211 - 15676 A IN x. udp 36 false 512 NXDOMAIN qr 1 0.1s",
        "UDP request from [2001:db8::1]:53 to [2001:db8::2]:53",
        "ICMP request from 10.0.0.1:0 to 10.0.0.2:0. Action: Deny",
        "request from a:1 to b:2",
        " to x:1",
        "to x:1.",
        "Rule: ",
        "Rule: .",
        "Rule Collection: a.b. Rule: c.d.",
        "1542039285,10.0.0.4,13.67.143.118,44931,443,T,O,A",
        "1542039285,10.0.0.4,13.67.143.118,44931,443,T,O,A,B,1,66,1,66",
        ",,,,,,,,,",
        "C:\\Windows\\System32\\svchost.exe",
        "svchost.exe",
        "C:\\dir\\",
        "\\",
        "404",
        " 200 ",
        "200.0",
        "2000",
        "tcp",
        "HTTPS",
        "",
        " ",
        "\t\r\n",
        "a\nb Rule: x\ny",
        "Action: \u{e9}t\u{e9}",
        "request from h\u{f6}st:1 to x:2 ",
    ];

    #[test]
    fn direct_matcher_agrees_with_the_regex() {
        let mut extra: Vec<String> = TEXTS.iter().map(|s| (*s).to_owned()).collect();
        // Every prefix and suffix of the longer texts, so partial matches are exercised.
        for t in TEXTS.iter().filter(|t| t.is_ascii()) {
            for k in 0..t.len() {
                extra.push(t[..k].to_owned());
                extra.push(t[k..].to_owned());
            }
        }
        let mut direct = 0;
        for p in table_patterns()
            .iter()
            .map(String::as_str)
            .chain(EXTRA_PATTERNS.iter().copied())
        {
            let x = Extractor::new(p).expect("pattern compiles");
            direct += usize::from(x.is_direct());
            for t in &extra {
                assert_eq!(x.find(t), x.find_regex(t), "pattern {p:?} on {t:?}");
            }
        }
        assert!(
            direct >= 20,
            "only {direct} patterns take the direct matcher"
        );
    }

    const EXTRA_PATTERNS: &[&str] = &[
        // A class followed by optional items, so that the next-byte filter (`follow`) must
        // look past them.
        r"(\S+)\s*x?$",
        r"(\w+)(?:[.\s]|$)",
        r"(\d+?)(?:\.0)?z",
        r"(\S*)(?:ab)?c",
        r"(.+?)\.?\s*$",
        r"a+?b",
        r"(\d*)",
        r"x?",
        r"([^,]*),$",
        r"(\w+)\s*$",
        r"^\s*(\S+?)\.?\s*$",
        r"[a-f0-9]+",
        r"(?:a|b)",
        r"[\d.]+",
        r"^(?i)(tcp|udp|icmp)$",
        r"(?i)(https?) ",
        r"(?i)[^a-z]+",
        r"(?i)([^A-Z:]+):",
        r"(?i)rule: (\w+)",
        r"(a|ab)c",
        r"(ab|a)c",
        r"(|a)b",
        r"(a|)",
        r"()",
        r"x()",
        r"(?:\.0)?(\d)",
        r"(\d)(?:\.0)??$",
        r"^\s*([1-5])\d\d(?:\.0)?\s*$",
        r"([^\\]+)$",
        r"(\w*)\.$",
    ];

    #[test]
    fn direct_matcher_agrees_on_random_texts() {
        // Texts drawn from the bytes the patterns care about (deterministic xorshift).
        const ALPHABET: &[u8] = b"aZ_09:.,- \t\n\\'$TCPrequestfromtoAction:RuleDNSd";
        let pieces = [
            "request from ",
            " to ",
            "Action: ",
            "Rule: ",
            "Rule Collection: ",
            "DNAT'ed to ",
            "DNS Request: ",
            "ThreatIntel: ",
            "No rule matched",
            " - ",
            "1.2.3.4:80",
            ",",
            "tcp",
            "TCP",
            "Https",
            "200.0",
            "\\",
            "ab",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let patterns: Vec<Extractor> = table_patterns()
            .iter()
            .map(String::as_str)
            .chain(EXTRA_PATTERNS.iter().copied())
            .map(|p| Extractor::new(p).expect("pattern compiles"))
            .collect();
        for _ in 0..3000 {
            let mut t = String::new();
            for _ in 0..(next() % 24) {
                if next() % 3 == 0 {
                    t.push_str(pieces[(next() % pieces.len() as u64) as usize]);
                } else {
                    t.push(char::from(
                        ALPHABET[(next() % ALPHABET.len() as u64) as usize],
                    ));
                }
            }
            for x in &patterns {
                assert_eq!(
                    x.find(&t),
                    x.find_regex(&t),
                    "pattern {:?} on {t:?}",
                    x.as_str()
                );
            }
        }
    }

    /// Every string value in the JSON and NDJSON files under `dir` (recursively).
    fn strings_under(dir: &std::path::Path, out: &mut Vec<String>) {
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Array(a) => a.iter().for_each(|i| walk(i, out)),
                serde_json::Value::Object(o) => o.values().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in rd.filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                strings_under(&p, out);
                continue;
            }
            let name = p.to_string_lossy();
            if !(name.ends_with(".json") || name.ends_with(".ndjson")) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => walk(&v, out),
                Err(_) => text
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .for_each(|v| walk(&v, out)),
            }
        }
    }

    #[test]
    fn direct_matcher_agrees_on_fixture_and_sample_strings() {
        // Every string of the fixtures (and of ../shared/samples when present).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut texts = Vec::new();
        strings_under(&root.join("tests/fixtures/records"), &mut texts);
        strings_under(&root.join("../shared/samples"), &mut texts);
        texts.sort();
        texts.dedup();
        texts.retain(|t| t.len() <= 4096);
        assert!(texts.len() > 100, "only {} texts", texts.len());
        for p in table_patterns() {
            let x = Extractor::new(&p).expect("pattern compiles");
            for t in &texts {
                assert_eq!(x.find(t), x.find_regex(t), "pattern {p:?} on {t:?}");
            }
        }
    }

    #[test]
    fn shapes() {
        assert!(Simple::parse(r"Action: (\w+)").is_some());
        assert!(Simple::parse(r" to (\S+):\d+(?:[.\s]|$)").is_some());
        assert!(Simple::parse(r"^(?:[^,]*,){3}([^,]*),").is_some());
        assert!(Simple::parse(r"^(TCP|UDP) x").is_some());
        assert!(Simple::parse(r"^(?i)(tcp)$").is_some());
        assert!(Simple::parse(r"^\s*([1-5])\d\d(?:\.0)?\s*$").is_some());
        assert!(Simple::parse(r"(TCP|U+DP)").is_none());
        assert!(Simple::parse(r"(?:a|b)").is_none());
        assert!(Simple::parse(r"a(?i)b").is_none());
        assert!(Simple::parse(r"(?:a+)?").is_none());
        assert!(Simple::parse(r"(a)(b)").is_none());
        assert!(Simple::parse(r"a{2}").is_none());
        let s = Simple::parse(r"DNAT'ed to (\S+):\d+").expect("simple");
        assert_eq!(s.prefix, b"DNAT'ed to ".to_vec());
    }

    #[test]
    fn every_table_pattern_takes_the_direct_matcher() {
        for p in table_patterns() {
            assert!(Simple::parse(&p).is_some(), "{p:?} is not direct");
        }
    }

    #[test]
    fn one_field_of_a_separated_text_is_cut_with_memchr_as_the_regex_would() {
        let field = |p: &str| Simple::parse(p).and_then(|s| s.field);
        let of = |sep: u8, n: usize, then_sep: bool| Some(FieldOf { sep, n, then_sep });
        // The NSG flow-tuple patterns of the tables, and other separators.
        assert_eq!(field(r"^[^,]*,([^,]*),"), of(b',', 1, true));
        assert_eq!(field(r"^[^,]*,[^,]*,([^,]*),"), of(b',', 2, true));
        assert_eq!(field(r"^(?:[^,]*,){3}([^,]*),"), of(b',', 3, true));
        assert_eq!(field(r"^(?:[^,]*,){8}([^,]*)"), of(b',', 8, false));
        assert_eq!(field(r"^([^,]*)"), of(b',', 0, false));
        assert_eq!(field(r"^(?:[^;]*;){2}([^;]*);"), of(b';', 2, true));
        let nsg: Vec<String> = table_patterns()
            .into_iter()
            .filter(|p| p.starts_with("^[^,]*,") || p.starts_with("^(?:[^,]*,){"))
            .collect();
        assert!(nsg.len() >= 8, "{nsg:?}");
        for p in &nsg {
            assert!(field(p).is_some(), "{p:?} does not take the field path");
        }
        // Shapes that must keep the general matcher.
        for p in NOT_FIELDS {
            assert_eq!(field(p), None, "{p:?}");
        }
        // Results, on ASCII and non-ASCII texts, equal the regex crate's.
        let texts = [
            "",
            ",",
            ",,,,,,,,,,",
            "a",
            "a,b",
            "a,b,",
            "a,b,c",
            "a;b;c;d;",
            "1716454800,185.220.101.4,10.0.1.4,55960,3389,T,I,D,B,,,,",
            "1716454800,185.220.101.4,10.0.1.4,55960,3389,T,I,D",
            "h\u{f6}st,\u{e9}t\u{e9},\u{1f600},x\ny,z",
            "\u{e9},\u{e9};\u{e9};\u{e9};\u{e9}",
            "a\nb,c\r\nd,e",
        ];
        let patterns = [
            r"^[^,]*,([^,]*),",
            r"^[^,]*,[^,]*,([^,]*),",
            r"^(?:[^,]*,){3}([^,]*),",
            r"^(?:[^,]*,){8}([^,]*)",
            r"^([^,]*)",
            r"^(?:[^;]*;){2}([^;]*);",
        ];
        for p in patterns.iter().copied().chain(NOT_FIELDS.iter().copied()) {
            let x = Extractor::new(p).expect("pattern compiles");
            for t in texts {
                assert_eq!(x.find(t), x.find_regex(t), "pattern {p:?} on {t:?}");
            }
        }
    }

    /// Near misses of [`FieldOf`]: each differs from the shape in one way.
    const NOT_FIELDS: &[&str] = &[
        r"(?:[^,]*,){2}([^,]*)",
        r"^(?:[^,]*,){2}([^,]+)",
        r"^(?:[^,]*,){2}([^,]*?)",
        r"^(?:[^,]*,){2}([^,]*)$",
        r"^(?:[^,]*,){2}([^;]*)",
        r"^(?:[^,]*;){2}([^,]*)",
        r"^(?:[^,]*,){2}([^,]*),,",
        r"^(?:[^,]*,){2}[^,]*",
        r"^[^,]*,[^,]*([^,]*)",
        r"^[^,]+,([^,]*)",
        r"^(?:[^,]*,){2}([^,]*),x",
        r"^([^,]*,[^,]*)",
    ];

    #[test]
    fn neighbouring_literals_are_one_item_and_keep_the_group_bounds() {
        let s = Simple::parse(r"request from (\S+):\d+ to ").expect("simple");
        // "request from " | \S+ | ":" + ... : 5 items instead of 21.
        assert_eq!(s.items.len(), 5, "{:?}", s.items);
        assert_eq!(s.group, Some((1, 2)));
        let s = Simple::parse(r"ab(cd)ef").expect("simple");
        assert_eq!((s.items.len(), s.group), (3, Some((1, 2))));
        let s = Simple::parse(r"ab(cd)").expect("simple");
        assert_eq!((s.items.len(), s.group), (2, Some((1, 2))));
    }

    #[test]
    fn invalid_patterns_fail_at_load_with_the_regex_crates_message() {
        for p in [
            "(", "[a", "a)", "x{", "\\", "(?i", "[z-a]", "(?:a", "a{2,1}",
        ] {
            let want = Regex::new(p).expect_err(p).to_string();
            let got = Extractor::new(p).expect_err(p).to_string();
            assert_eq!(got, want, "{p:?}");
        }
        // Direct patterns compile the regex only when it is needed, and then agree.
        let x = Extractor::new(r"Action: (\w+)").expect("compiles");
        assert!(x.re.get().is_none());
        assert_eq!(x.find("Action: Allow"), Some("Allow"));
        assert!(x.re.get().is_none());
        assert_eq!(x.find("Action: \u{e9}t\u{e9}"), Some("\u{e9}t\u{e9}"));
        assert!(x.re.get().is_some());
    }

    #[test]
    fn budget_hands_over_to_the_regex() {
        let x = Extractor::new(r"(\S+):(?:\S+ ){10}x").expect("compiles");
        let t = "a:".to_owned() + &"b ".repeat(40) + "y";
        assert_eq!(x.find(&t), x.find_regex(&t));
        let x = Extractor::new(r"^(\S*)(\S*)(\S*)z").expect("compiles");
        let t = "a".repeat(300);
        assert_eq!(x.find(&t), None);
    }
}
