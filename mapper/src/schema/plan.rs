//! The compiled plan: paths pre-split, compare values pre-lower-cased, conversions resolved,
//! `extends` resolved, families in detection order. Built by [`super::load`].
use std::collections::HashMap;

use crate::extract::Extractor;
use azlog_plugin_api::Value;

use crate::convert::Conversion;
use crate::path::Seg;

/// The whole compiled schema.
#[derive(Debug)]
pub struct Plan {
    /// Detectable families, in detection order (priority desc, then name).
    pub families: Vec<FamilyPlan>,
    /// The family for records nothing detects.
    pub fallback: FamilyPlan,
    /// Every path used by a condition, interned so each is resolved once per record.
    pub cond_paths: Vec<PathPlan>,
    /// Every `$json` / `$xml` prefix, interned so each is parsed once per record.
    pub embeds: Vec<EmbedPlan>,
    /// Every family name (detectable ones and the fallback), detection order.
    pub names: Vec<String>,
    /// Every distinct first key of a root path, interned so each root member is looked up
    /// once per record.
    pub root_keys: Vec<Box<str>>,
    /// The `equals` values that pre-select candidate families.
    pub detect_index: super::detect_index::DetectIndex,
    /// The paths the per-record loops resolve, compiled into flat arrays (see
    /// [`FlatPaths`]): the condition paths, then the embed bases, then the fields' paths.
    pub flat: FlatPaths,
}

/// Every path the per-record loops resolve, in three contiguous arrays instead of
/// [`PathPlan`]s with their own step vectors and boxed keys: a record walks a few cache
/// lines of plan, not a pointer chain per path. Path `i < cond_paths.len()` is condition
/// path `i`; path `embed_base + e` is the base of embed `e`; a field's paths are the range
/// [`HotField::paths`] names.
#[derive(Debug, Default, Clone)]
pub struct FlatPaths {
    /// The paths.
    pub paths: Vec<FlatPath>,
    /// The steps of every path, each path's contiguous.
    pub steps: Vec<FlatStep>,
    /// The text of every key of the steps.
    pub keys: String,
    /// Index of the first embed base in `paths`.
    pub embed_base: u32,
    /// [`Plan::root_keys`] by folded text, to match a record's root members in one pass.
    pub(crate) root_index: crate::root_index::RootIndex,
}

/// One path of [`FlatPaths`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatPath {
    /// [`NONE`]: the record root; else the index of the embedded document.
    pub start: u32,
    /// For root paths: the first key (index into [`Plan::root_keys`]); else [`NONE`].
    pub root_key: u32,
    /// First step, in [`FlatPaths::steps`].
    pub step: u32,
    /// Number of steps.
    pub nsteps: u32,
}

/// "None" in the flat arrays.
pub const NONE: u32 = u32::MAX;

/// One step of a [`FlatPath`]: an object key (a span of [`FlatPaths::keys`]) or, when
/// `len` is [`NONE`], the array index `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatStep {
    /// Start of the key in [`FlatPaths::keys`], or the array index.
    pub off: u32,
    /// Key length, or [`NONE`] for an array index.
    pub len: u32,
}

/// The part of a [`FieldPlan`] the per-record loop reads for every field; the rest is read
/// only for a field whose source yields a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotField {
    /// [`FieldPlan::group`].
    pub group: u32,
    /// First condition of [`FieldPlan::when`], in [`FamilyPlan::when`].
    pub when: u32,
    /// Number of conditions.
    pub nwhen: u32,
    /// First path of [`Source::Paths`] in [`FlatPaths::paths`] ([`NONE`] for a constant).
    pub paths: u32,
    /// Number of paths.
    pub npaths: u32,
    /// The target is `@timestamp`.
    pub timestamp: bool,
    /// [`FieldPlan::default`] is set.
    pub has_default: bool,
    /// The source is paths, without `extract` and `map`: the value is `convert` applied
    /// to the first node that converts, so [`FieldPlan`] need not be read.
    pub plain: bool,
    /// [`FieldPlan::convert`].
    pub convert: Conversion,
}

impl Plan {
    /// Fills [`Plan::flat`] and every family's [`FamilyPlan::hot`] / [`FamilyPlan::when`]
    /// from the rest of the plan (called once the plan is complete).
    pub fn flatten(&mut self) {
        let mut flat = FlatPaths {
            root_index: crate::root_index::RootIndex::new(&self.root_keys),
            ..FlatPaths::default()
        };
        for p in &self.cond_paths {
            flat.push(p);
        }
        flat.embed_base = flat.len();
        for e in &self.embeds {
            flat.push(&e.base);
        }
        for fam in self
            .families
            .iter_mut()
            .chain(std::iter::once(&mut self.fallback))
        {
            fam.when.clear();
            fam.hot.clear();
            for f in &fam.fields {
                let when = u32::try_from(fam.when.len()).unwrap_or(NONE);
                fam.when.extend(f.when.iter().cloned());
                let (paths, npaths) = match &f.source {
                    Source::Paths(ps) => {
                        let first = flat.len();
                        ps.iter().for_each(|p| flat.push(p));
                        (first, flat.len() - first)
                    }
                    Source::Const(_) => (NONE, 0),
                };
                fam.hot.push(HotField {
                    group: u32::try_from(f.group).unwrap_or(NONE),
                    when,
                    nwhen: u32::try_from(f.when.len()).unwrap_or(0),
                    paths,
                    npaths,
                    timestamp: f.target == Target::Timestamp,
                    has_default: f.default.is_some(),
                    plain: matches!(f.source, Source::Paths(_))
                        && f.extract.is_none()
                        && f.map.is_none(),
                    convert: f.convert,
                });
            }
            // Field conditions by what they test: those of more than one field share a memo
            // slot (in `when` order, so the slots are stable).
            let mut groups: HashMap<(usize, &Test), Vec<usize>> = HashMap::new();
            for (i, c) in fam.when.iter().enumerate() {
                groups.entry((c.path, &c.test)).or_default().push(i);
            }
            let mut shared: Vec<Vec<usize>> =
                groups.into_values().filter(|ids| ids.len() > 1).collect();
            shared.sort_unstable();
            fam.cond_slots = u32::try_from(shared.len()).unwrap_or(0);
            for (slot, ids) in shared.iter().enumerate() {
                for &i in ids {
                    if let Some(c) = fam.when.get_mut(i) {
                        c.memo = u32::try_from(slot).unwrap_or(NONE);
                    }
                }
            }
            fam.static_keys = fam
                .static_order
                .iter()
                .map(|slot| slot.key(&fam.fields))
                .collect();
        }
        self.flat = flat;
    }
}

impl FlatPaths {
    fn len(&self) -> u32 {
        u32::try_from(self.paths.len()).unwrap_or(NONE)
    }

    fn key(&mut self, k: &str) -> FlatStep {
        let off = u32::try_from(self.keys.len()).unwrap_or(NONE);
        self.keys.push_str(k);
        FlatStep {
            off,
            len: u32::try_from(k.len()).unwrap_or(NONE),
        }
    }

    fn push(&mut self, p: &PathPlan) {
        let step = u32::try_from(self.steps.len()).unwrap_or(NONE);
        for st in &p.steps {
            let flat = match st {
                Step::Key(k) => self.key(k),
                // An index beyond u32 finds no element either way.
                Step::Index(i) => FlatStep {
                    off: u32::try_from(*i).unwrap_or(NONE),
                    len: NONE,
                },
            };
            self.steps.push(flat);
        }
        let opt = |v: Option<usize>| v.map_or(NONE, |v| u32::try_from(v).unwrap_or(NONE));
        self.paths.push(FlatPath {
            start: opt(p.start),
            root_key: opt(p.root_key),
            step,
            nsteps: u32::try_from(p.steps.len()).unwrap_or(0),
        });
    }

    /// The key text of a step (`None` for an index step).
    #[inline]
    pub fn key_bytes(&self, st: FlatStep) -> Option<&[u8]> {
        if st.len == NONE {
            return None;
        }
        let (off, len) = (st.off as usize, st.len as usize);
        self.keys.as_bytes().get(off..off + len)
    }
}

/// A compiled path: where it starts (the record, or an embedded document) and the steps.
#[derive(Debug, Clone)]
pub struct PathPlan {
    /// `None`: the record root; `Some(i)`: the document of [`Plan::embeds`]`[i]`.
    pub start: Option<usize>,
    /// For root paths: the first key, as an index into [`Plan::root_keys`] (then `steps`
    /// holds the rest of the path).
    pub root_key: Option<usize>,
    /// Steps from the start.
    pub steps: Vec<Step>,
    /// The path as written (for notes and errors).
    pub text: String,
}

/// One step of a compiled path.
#[derive(Debug, Clone)]
pub enum Step {
    /// Object member.
    Key(Box<str>),
    /// Array element.
    Index(usize),
}

/// An embedded document: the value at `base`, parsed as JSON or Windows XML.
#[derive(Debug, Clone)]
pub struct EmbedPlan {
    /// Where the text is.
    pub base: PathPlan,
    /// How to parse it.
    pub kind: EmbedKind,
}

/// Embedded document kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EmbedKind {
    /// `$json`
    Json,
    /// `$xml`
    Xml,
}

/// A condition on an interned path.
#[derive(Debug, Clone)]
pub struct Cond {
    /// Index into [`Plan::cond_paths`].
    pub path: usize,
    /// The test.
    pub test: Test,
    /// For `equals` / `not_equals`: the values that are an integer in canonical decimal
    /// form (`4624`, not `04624`), so an integer node compares as a number; its text could
    /// only ever equal those.
    pub ints: Vec<i64>,
    /// For a field condition that another field of the same family also tests: its slot in
    /// the per-record memo of test results, so that it is evaluated once per record (the
    /// Windows tables test `EventID equals [...]` in up to 23 fields); else [`NONE`].
    pub memo: u32,
}

impl Cond {
    /// A condition, with [`Cond::ints`] derived from the test.
    pub fn new(path: usize, test: Test) -> Cond {
        let ints = match &test {
            Test::Equals(vals) | Test::NotEquals(vals) => vals
                .iter()
                .filter_map(|v| v.parse::<i64>().ok().filter(|i| i.to_string() == **v))
                .collect(),
            _ => Vec::new(),
        };
        Cond {
            path,
            test,
            ints,
            memo: NONE,
        }
    }
}

/// A condition test. Compare values are ASCII-lower-cased at load time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Test {
    /// Text equals one of.
    Equals(Vec<Box<str>>),
    /// Text equals none of (absent counts as "none").
    NotEquals(Vec<Box<str>>),
    /// Text contains one of.
    Contains(Vec<Box<str>>),
    /// Text starts with one of.
    StartsWith(Vec<Box<str>>),
    /// Present and not null (`true`) or absent/null (`false`).
    Exists(bool),
}

/// One family, `extends` resolved.
#[derive(Debug, Clone)]
pub struct FamilyPlan {
    /// Family name (`azlog.family`), interned ([`azlog_plugin_api::intern`]).
    pub name: &'static str,
    /// `event.dataset`, interned.
    pub dataset: Option<&'static str>,
    /// Any block matching selects the family; a block matches when all its conditions hold.
    pub detect: Vec<Vec<Cond>>,
    /// Fields in evaluation order; same-`to` fields are alternatives (first yielding wins).
    pub fields: Vec<FieldPlan>,
    /// Payload copy.
    pub payload: Option<PayloadPlan>,
    /// Detection priority.
    pub priority: i64,
    /// The field groups (indices of the first field of each `to`, `@timestamp` excluded),
    /// sorted by target key.
    pub emit_order: Vec<usize>,
    /// Every non-payload field the mapper may emit, in output order: the fixed head
    /// (`event.dataset`, `event.kind`), the field groups and the fixed tail, sorted by key
    /// and, among equal keys, by [`Slot::rank`]. The mapper walks it to emit these fields
    /// already sorted, then merges in the payload (rank 1).
    pub static_order: Vec<Slot>,
    /// Per field (parallel to `fields`): what the per-record loop reads for every field
    /// (filled by [`Plan::flatten`]).
    pub hot: Vec<HotField>,
    /// Every field's `when` conditions, one after the other ([`HotField::when`]).
    pub when: Vec<Cond>,
    /// The key of each slot of `static_order` (filled by [`Plan::flatten`]).
    pub static_keys: Vec<&'static str>,
    /// Memo slots of the shared conditions in [`FamilyPlan::when`] ([`Cond::memo`]).
    pub cond_slots: u32,
}

/// One non-payload output field of a family (see [`FamilyPlan::static_order`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// `event.dataset`
    Dataset,
    /// `event.kind` (`event`; a table field may override it)
    Kind,
    /// The field group starting at this field index.
    Group(usize),
    /// `azlog.timestamp_fallback`
    TimestampFallback,
    /// `azlog.timestamp_raw`
    TimestampRaw,
    /// `event.created`
    Created,
    /// `event.ingested`
    Ingested,
    /// `azlog.family`
    Family,
    /// `azlog.parse_errors`
    ParseErrors,
}

impl Slot {
    /// The output key (`fields` are the family's fields, for groups).
    pub fn key(&self, fields: &[FieldPlan]) -> &'static str {
        match self {
            Slot::Dataset => "event.dataset",
            Slot::Kind => "event.kind",
            Slot::Group(g) => fields.get(*g).map_or("", |f| f.target.as_str()),
            Slot::TimestampFallback => "azlog.timestamp_fallback",
            Slot::TimestampRaw => "azlog.timestamp_raw",
            Slot::Created => "event.created",
            Slot::Ingested => "event.ingested",
            Slot::Family => "azlog.family",
            Slot::ParseErrors => "azlog.parse_errors",
        }
    }

    /// Which value wins when keys are equal (the higher rank, as if pushed later): fixed
    /// head 0, payload 1, table fields 2, fixed tail 3.
    pub fn rank(&self) -> u8 {
        match self {
            Slot::Dataset | Slot::Kind => 0,
            Slot::Group(_) => 2,
            _ => 3,
        }
    }

    /// The static order of a family with these fields and sorted groups.
    pub fn order(fields: &[FieldPlan], emit_order: &[usize]) -> Vec<Slot> {
        let mut slots = vec![Slot::Dataset, Slot::Kind];
        slots.extend(emit_order.iter().map(|&g| Slot::Group(g)));
        slots.extend([
            Slot::TimestampFallback,
            Slot::TimestampRaw,
            Slot::Created,
            Slot::Ingested,
            Slot::Family,
            Slot::ParseErrors,
        ]);
        // Stable: equal (key, rank) keep their order.
        slots.sort_by(|a, b| (a.key(fields), a.rank()).cmp(&(b.key(fields), b.rank())));
        slots
    }
}

/// Where a field goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `@timestamp`: sets the record time.
    Timestamp,
    /// A dotted key, interned ([`azlog_plugin_api::intern`]) so that it is emitted without
    /// a copy.
    Key(&'static str),
}

impl Target {
    /// The key as written in the table.
    pub fn as_str(&self) -> &'static str {
        match self {
            Target::Timestamp => "@timestamp",
            Target::Key(k) => k,
        }
    }
}

/// One compiled `[[field]]`.
#[derive(Debug, Clone)]
pub struct FieldPlan {
    /// Destination.
    pub target: Target,
    /// Conditions for this mapping (all must hold).
    pub when: Vec<Cond>,
    /// Where the value comes from.
    pub source: Source,
    /// Regex applied to the source text before the conversion.
    pub extract: Option<Extractor>,
    /// Conversion.
    pub convert: Conversion,
    /// Value map.
    pub map: Option<MapPlan>,
    /// Value when no source yields one.
    pub default: Option<Value>,
    /// Index of the first field of the family with the same target (for "first wins").
    pub group: usize,
}

/// Source of a field.
#[derive(Debug, Clone)]
pub enum Source {
    /// Paths tried in order.
    Paths(Vec<PathPlan>),
    /// A constant.
    Const(Value),
}

/// A compiled `map` (+ `map_default`).
#[derive(Debug, Clone)]
pub struct MapPlan {
    /// Lower-cased key → result.
    pub entries: HashMap<Box<str>, Value, super::fxhash::FxBuildHasher>,
    /// Result for values not in `entries`; `None` keeps the converted value.
    pub default: Option<Value>,
}

/// A compiled `[payload]`.
#[derive(Debug, Clone)]
pub struct PayloadPlan {
    /// Levels of objects flattened into dotted keys.
    pub depth: usize,
    /// (source path, destination key prefix `<to>.<name>`).
    pub copies: Vec<(PathPlan, String)>,
}

/// Interns paths and embedded-document prefixes while compiling.
#[derive(Debug, Default)]
pub struct Interner {
    /// Condition paths by text.
    cond_index: HashMap<String, usize>,
    /// Condition paths.
    pub cond_paths: Vec<PathPlan>,
    /// Embeds by (start, steps as segments, kind).
    embed_index: HashMap<(Option<usize>, Vec<Seg>, EmbedKind), usize>,
    /// Embeds.
    pub embeds: Vec<EmbedPlan>,
    root_key_index: HashMap<String, usize>,
    /// First keys of root paths.
    pub root_keys: Vec<Box<str>>,
}

impl Interner {
    /// Compiles parsed segments into a path, interning its `$json`/`$xml` prefixes.
    pub fn path(&mut self, text: &str, segs: &[Seg]) -> PathPlan {
        let mut start = None;
        let mut run: Vec<Seg> = Vec::new();
        for seg in segs {
            let kind = match seg {
                Seg::Json => EmbedKind::Json,
                Seg::Xml => EmbedKind::Xml,
                other => {
                    run.push(other.clone());
                    continue;
                }
            };
            let key = (start, std::mem::take(&mut run), kind);
            let next = match self.embed_index.get(&key) {
                Some(&i) => i,
                None => {
                    let base = self.plan_path(key.0, &key.1, text);
                    self.embeds.push(EmbedPlan { base, kind });
                    let i = self.embeds.len() - 1;
                    self.embed_index.insert(key, i);
                    i
                }
            };
            start = Some(next);
        }
        self.plan_path(start, &run, text)
    }

    fn plan_path(&mut self, start: Option<usize>, segs: &[Seg], text: &str) -> PathPlan {
        let (root_key, rest) = match (start, segs.first()) {
            (None, Some(Seg::Key(k))) => {
                let next = self.root_keys.len();
                let id = *self.root_key_index.entry(k.clone()).or_insert(next);
                if id == next {
                    self.root_keys.push(k.as_str().into());
                }
                (Some(id), &segs[1..])
            }
            _ => (None, segs),
        };
        PathPlan {
            start,
            root_key,
            steps: to_steps(rest),
            text: text.to_owned(),
        }
    }

    /// Interns a condition path (same text → same slot, resolved once per record).
    pub fn cond_path(&mut self, text: &str, segs: &[Seg]) -> usize {
        if let Some(&i) = self.cond_index.get(text) {
            return i;
        }
        let p = self.path(text, segs);
        self.cond_paths.push(p);
        let i = self.cond_paths.len() - 1;
        self.cond_index.insert(text.to_owned(), i);
        i
    }
}

fn to_steps(segs: &[Seg]) -> Vec<Step> {
    segs.iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(Step::Key(k.as_str().into())),
            Seg::Index(i) => Some(Step::Index(*i)),
            Seg::Json | Seg::Xml => None,
        })
        .collect()
}
