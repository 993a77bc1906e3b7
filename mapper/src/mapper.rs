//! Runs the compiled plan over one raw record and builds the canonical record.
//!
//! Per record: the JSON is parsed once into a borrowed tree ([`Node`]); detection walks the
//! families in priority order, resolving each interned condition path at most once; the
//! chosen family's fields are resolved, converted and mapped; the payload subtrees are
//! flattened; `$json` / `$xml` documents are parsed at most once each. Only emitted values
//! are copied. The output is built in key order: the family's own fields are in key order
//! in the plan, and the payload's order comes from the per-thread layout table
//! (`mapper/src/layout.rs`); [`Record::from_fields`] runs only for the rare record whose keys
//! collide (equal keys, or one a dotted prefix of another).
use crate::scratch::recycle;
use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::path::Path;

use abi_stable::std_types::{RString, RVec};
use azlog_plugin_api::byte_search::find_byte;
use azlog_plugin_api::record::{common_prefix_len, is_dotted_prefix, merge_equal_keys};
use azlog_plugin_api::{Field, Position, Record, Text, Value};

use crate::convert;
use crate::convert::resource::{split_resource_id, ResourceParts};
use crate::extract::Extractor;
use crate::layout::{no_slot_present, present_bit, Layouts};
use crate::path::Node;
use crate::payload_keys::RecentKeys;
use crate::root_index::member_of;
use crate::schema::plan::{
    Cond, EmbedKind, FamilyPlan, FieldPlan, HotField, PathPlan, Plan, Slot, Source, Step, Test,
    NONE,
};
use crate::schema::{self, SchemaError, TableSource};

/// One raw record to map.
#[derive(Debug, Clone)]
pub struct MapInput<'a> {
    /// The record's JSON text (one object), already split from its envelope and sanitized.
    pub json: &'a str,
    /// Where it came from.
    pub position: Position,
    /// The source's enqueued time (Event Hubs `x-opt-enqueued-time`), ns since the epoch.
    pub enqueued_ns: Option<i64>,
}

/// A record parsed and its family detected ([`Mapper::parse`]), to be mapped by
/// [`Mapper::map_parsed`].
#[derive(Debug)]
pub struct Parsed<'a> {
    tree: Node<'a>,
    /// Index in [`Plan::families`]; its length for the fallback family.
    family: usize,
}

impl Parsed<'_> {
    /// The detected family, as an index that orders records by family: equal for records of
    /// one family, different for different families.
    pub fn family(&self) -> usize {
        self.family
    }
}

/// Per-call options of [`Mapper::map_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapOptions {
    /// Copy the record's JSON into [`Record::original`] (`event.original`). When false,
    /// `original` is left empty and the copy (one allocation and the record's length in
    /// bytes) is saved; for callers that do not output it. Default: true.
    pub keep_original: bool,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            keep_original: true,
        }
    }
}

/// Why a record could not be mapped (it then goes to the dead-letter store).
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The text is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The JSON is not an object.
    #[error("record is not a JSON object (found {0})")]
    NotAnObject(&'static str),
}

/// The compiled schema tables.
#[derive(Debug)]
pub struct Mapper {
    plan: Plan,
    /// Distinguishes this mapper's plan in the per-thread layout table (a later mapper may
    /// reuse the addresses of a dropped one's families).
    uid: u64,
}

/// The next [`Mapper::uid`].
static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Mapper {
    /// The built-in tables (embedded at compile time).
    pub fn builtin() -> Result<Mapper, SchemaError> {
        Mapper::load(None)
    }

    /// The built-in tables overlaid with the `*.toml` files of `overlay_dir` (`--schemas DIR`):
    /// a table with the name of a built-in family replaces it, a new name adds a family.
    pub fn load(overlay_dir: Option<&Path>) -> Result<Mapper, SchemaError> {
        let mut sources = schema::builtin_sources();
        if let Some(dir) = overlay_dir {
            sources.extend(schema::overlay_sources(dir)?);
        }
        Mapper::from_sources(sources)
    }

    /// Compiles the given tables only (no built-ins); for tests and tools.
    pub fn from_sources(sources: Vec<TableSource>) -> Result<Mapper, SchemaError> {
        let plan = schema::compile(sources)?;
        tracing::debug!(families = plan.names.len(), "schema tables compiled");
        let uid = NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Mapper { plan, uid })
    }

    /// Compiles `(file name, TOML text)` pairs only (no built-ins); for tests.
    pub fn from_tables(tables: &[(&str, &str)]) -> Result<Mapper, SchemaError> {
        Mapper::from_sources(
            tables
                .iter()
                .map(|(file, text)| TableSource {
                    file: (*file).to_owned(),
                    text: Cow::Owned((*text).to_owned()),
                    overlay: false,
                })
                .collect(),
        )
    }

    /// Every family name, in detection order, the fallback family last.
    pub fn family_names(&self) -> Vec<&str> {
        self.plan.names.iter().map(String::as_str).collect()
    }

    /// The name of the fallback family (records no table detects).
    pub fn fallback_name(&self) -> &str {
        self.plan.fallback.name
    }

    /// The compiled plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Maps one record. `ingested_ns` is the mapping time (`event.ingested`).
    ///
    /// Any JSON object maps (unrecognised records go to the fallback family); invalid JSON
    /// and non-objects are errors for the dead-letter store.
    pub fn map(&self, input: MapInput<'_>, ingested_ns: i64) -> Result<Record, MapError> {
        self.map_with(input, ingested_ns, MapOptions::default())
    }

    /// [`Mapper::map`] with options: the same record, except that `original` stays empty
    /// when [`MapOptions::keep_original`] is false.
    pub fn map_with(
        &self,
        input: MapInput<'_>,
        ingested_ns: i64,
        options: MapOptions,
    ) -> Result<Record, MapError> {
        let tree = Node::parse(input.json).map_err(|e| MapError::InvalidJson(e.to_string()))?;
        if !matches!(tree, Node::Object(_)) {
            return Err(MapError::NotAnObject(tree.type_name()));
        }
        let record = with_scratch(|scratch| {
            self.map_tree(&tree, input, ingested_ns, options, scratch, None)
        });
        Ok(record)
    }

    /// The first half of [`Mapper::map_with`]: parses the record and detects its family,
    /// for a caller that maps a batch of records family by family ([`Mapper::map_parsed`]).
    /// Records of one family mapped one after another share the caches, branch history and
    /// code of that family; `azlog-hub map` does this for the records of each read.
    pub fn parse<'a>(&self, json: &'a str) -> Result<Parsed<'a>, MapError> {
        let tree = Node::parse(json).map_err(|e| MapError::InvalidJson(e.to_string()))?;
        if !matches!(tree, Node::Object(_)) {
            return Err(MapError::NotAnObject(tree.type_name()));
        }
        let family =
            with_scratch(|scratch| self.with_doc(&tree, scratch, |doc, s| self.detect(doc, s)));
        Ok(Parsed { tree, family })
    }

    /// The second half of [`Mapper::map_with`]: maps a record that this mapper's
    /// [`Mapper::parse`] read (from `input.json`), as the family it detected. The record is
    /// the one `map_with` gives.
    pub fn map_parsed(
        &self,
        parsed: &Parsed<'_>,
        input: MapInput<'_>,
        ingested_ns: i64,
        options: MapOptions,
    ) -> Record {
        let family = self.family(parsed.family);
        with_scratch(|scratch| {
            let tree = &parsed.tree;
            self.map_tree(tree, input, ingested_ns, options, scratch, Some(family))
        })
    }

    /// The family at `index` in [`Plan::families`]; the fallback family past its end.
    fn family(&self, index: usize) -> &FamilyPlan {
        self.plan.families.get(index).unwrap_or(&self.plan.fallback)
    }

    /// Hands a record back once its caller is done with it: its fields vector (emptied) is
    /// kept for the next record mapped on this thread, so that the output is written to memory
    /// that is still in cache instead of a fresh allocation. Optional; dropping a record is
    /// equally correct.
    pub fn recycle(&self, record: Record) {
        let mut fields = record.fields.into_vec();
        fields.clear();
        SCRATCH.with(|cell| {
            if let Ok(mut scratch) = cell.try_borrow_mut() {
                // Keep the larger buffer; records of one family need about the same.
                if fields.capacity() > scratch.work.spare_fields.capacity() {
                    scratch.work.spare_fields = fields;
                }
            }
        });
    }

    fn map_tree(
        &self,
        tree: &Node<'_>,
        input: MapInput<'_>,
        ingested_ns: i64,
        options: MapOptions,
        scratch: &mut Scratch,
        known: Option<&FamilyPlan>,
    ) -> Record {
        let (family, ts, mut ts_raw, mut notes) = self.with_doc(tree, scratch, |doc, s| {
            let family = match known {
                Some(family) => family,
                None => self.family(self.detect(doc, s)),
            };
            if let Some(payload) = &family.payload {
                for (path, base) in &payload.copies {
                    if let Some(node) = doc.resolve(path) {
                        s.key.clear();
                        s.key.push_str(base);
                        flatten(
                            node,
                            &mut s.key,
                            0,
                            payload.depth,
                            &mut s.payload,
                            &mut s.recent_keys,
                        );
                    }
                }
            }
            let (ts, ts_raw) = run_fields(doc, family, s);
            (family, ts, ts_raw, doc.notes.take())
        });
        let s = &mut scratch.work;

        let timestamp_ns = ts.unwrap_or(input.enqueued_ns.unwrap_or(ingested_ns));
        // Every other field, in the family's precomputed output order (sorted by key; among
        // equal keys the later one wins: fixed head < payload < table fields < fixed tail).
        let fields = &family.fields;
        // The output is built in place: the static fields in order, each preceded by the
        // payload fields (sorted, rank 1) that sort before it.
        let mut payload = std::mem::take(&mut s.payload);
        // The payload's key order, and how many payload fields go before each static field.
        let mut layouts = std::mem::take(&mut s.layouts);
        let layout = layouts.get(self.uid, family, &payload);
        let mut present = no_slot_present(family.static_order.len());
        // The fields vector of a record handed back through `Mapper::recycle`, else a new one.
        // A new one gets the exact length (records may be kept a while: no spare capacity);
        // a handed-back one that holds the most this family can emit is used as it is, with
        // no pass to count.
        let mut out: Vec<Field> = std::mem::take(&mut s.spare_fields);
        if out.capacity() < payload.len() + family.static_order.len() {
            let groups = family
                .emit_order
                .iter()
                .filter(|&&g| {
                    let st = s.state.get(g).copied().unwrap_or(0);
                    (st != 0 && st != DONE_NO_VALUE) || s.pending.get(g).is_some_and(|&p| p != 0)
                })
                .count();
            let fixed = usize::from(family.dataset.is_some())
                + usize::from(ts.is_none()) * (1 + usize::from(ts_raw.is_some()))
                + usize::from(input.enqueued_ns.is_some())
                + usize::from(!notes.is_empty())
                + 3;
            out.reserve_exact(payload.len() + groups + fixed);
        }
        let mut moved = 0usize;
        for (j, (slot, &key)) in family
            .static_order
            .iter()
            .zip(&family.static_keys)
            .enumerate()
        {
            let value = match *slot {
                Slot::Dataset => family.dataset.map(Value::from_static),
                Slot::Kind => Some(Value::from_static("event")),
                Slot::Group(g) => group_value(fields, s, g),
                Slot::TimestampFallback => ts.is_none().then_some(Value::Bool(true)),
                Slot::TimestampRaw => ts_raw.take().filter(|_| ts.is_none()).map(Value::from),
                Slot::Created => input
                    .enqueued_ns
                    .map(|enq| Value::from(s.created.text(enq))),
                Slot::Ingested => Some(Value::from(s.ingested.text(ingested_ns))),
                Slot::Family => Some(Value::from_static(family.name)),
                Slot::ParseErrors => (!notes.is_empty()).then(|| {
                    Value::List(
                        std::mem::take(&mut notes)
                            .into_iter()
                            .map(Text::from)
                            .collect::<RVec<_>>(),
                    )
                }),
            };
            if let Some(v) = value {
                layout.push_static(j, &mut payload, &mut moved, &mut out, key, v);
                present_bit(&mut present, j);
            }
        }
        layout.finish(&mut payload, moved, &mut out);
        payload.clear();
        s.payload = payload;
        let strict = layout.known_strict(present) || {
            let strict = strictly_ordered(&out);
            if strict {
                layout.remember_strict(present);
            }
            strict
        };
        s.layouts = layouts;
        let original = if options.keep_original {
            RString::from(input.json)
        } else {
            RString::new()
        };
        if strict || merged_normal(&mut out) {
            // What `Record::from_fields` would check first, with a cheaper compare.
            return Record {
                timestamp_ns,
                fields: RVec::from(out),
                original,
                position: input.position,
            };
        }
        Record::from_fields(timestamp_ns, out, original, input.position)
    }

    /// Runs `f` over a [`Doc`] of `tree`, with this thread's per-record caches set up for it
    /// (and handed back afterwards).
    fn with_doc<R>(
        &self,
        tree: &Node<'_>,
        scratch: &mut Scratch,
        f: impl FnOnce(&Doc<'_, '_, '_>, &mut Work) -> R,
    ) -> R {
        let plan = &self.plan;
        let Scratch {
            conds: conds_buf,
            roots,
            generation,
            work,
        } = scratch;
        // Per-record caches. The embedded documents live here, outside `Doc`, so that the
        // node caches (reused from record to record) can be handed back afterwards.
        let embeds: Vec<OnceCell<Option<Emb<'_>>>> =
            (0..plan.embeds.len()).map(|_| OnceCell::new()).collect();
        let mut conds = recycle(std::mem::take(conds_buf));
        conds.resize_with(plan.cond_paths.len(), OnceCell::new);
        // Root members: stamped with the record's generation instead of reset per record.
        *generation = generation.wrapping_add(1);
        if *generation == 0 {
            roots.iter_mut().for_each(|r| *r.get_mut() = (0, 0));
            *generation = 1;
        }
        if roots.len() < plan.root_keys.len() {
            roots.resize(plan.root_keys.len(), Cell::new((0, 0)));
        }
        if let Node::Object(members) = tree {
            plan.flat.root_index.fill(members, roots, *generation);
        }
        let doc = Doc {
            plan,
            root: tree,
            embeds: &embeds,
            conds: &conds,
            roots,
            generation: *generation,
            notes: RefCell::new(Vec::new()),
            resource: OnceCell::new(),
        };
        let result = f(&doc, work);
        drop(doc);
        *conds_buf = recycle(conds);
        result
    }

    /// The index in [`Plan::families`] of the family that a record's tree selects (its
    /// length for the fallback family; see [`Mapper::family`]).
    fn detect(&self, doc: &Doc<'_, '_, '_>, s: &mut Work) -> usize {
        let index = &self.plan.detect_index;
        let candidate = &mut s.candidate;
        candidate.clear();
        candidate.resize(self.plan.families.len(), false);
        for &fi in &index.always {
            if let Some(c) = candidate.get_mut(fi) {
                *c = true;
            }
        }
        let lower = &mut s.lower;
        let mut buf = [0u8; 24];
        for (path, values) in &index.keys {
            let mut mark = |t: &str| {
                lower.clear();
                lower.push_str(t);
                lower.make_ascii_lowercase();
                for &fi in values.get(lower.as_str()).into_iter().flatten() {
                    if let Some(c) = candidate.get_mut(fi) {
                        *c = true;
                    }
                }
            };
            match doc.cond_node(*path) {
                Some(Node::Array(items)) => {
                    for item in items {
                        if let Some(t) = item.scalar_text_in(&mut buf) {
                            mark(&t);
                        }
                    }
                }
                Some(n) => {
                    if let Some(t) = n.scalar_text_in(&mut buf) {
                        mark(&t)
                    }
                }
                None => {}
            }
        }
        self.plan
            .families
            .iter()
            .zip(candidate.iter())
            .position(|(f, &c)| {
                c && f
                    .detect
                    .iter()
                    .any(|block| block.iter().all(|c| doc.test(c)))
            })
            .unwrap_or(self.plan.families.len())
    }
}

/// Runs `f` with this thread's work buffers, borrowed in place (moving the buffers in and
/// out of the cell cost three copies of the struct per record); a nested call on the same
/// thread, which does not happen, would get fresh buffers.
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        Err(_) => f(&mut Scratch::default()),
    })
}

thread_local! {
    /// The work buffers of [`Mapper::map`], reused from record to record on each thread.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Work buffers of one [`Mapper::map`] call, kept per thread so that a record costs no
/// allocation for them. Every buffer is empty between records; the node caches are typed
/// `'static` only while they are empty (see [`recycle`]).
#[derive(Default)]
struct Scratch {
    /// Resolved condition paths (by [`Plan::cond_paths`] index).
    conds: Vec<OnceCell<Option<&'static Node<'static>>>>,
    /// Root members (by [`Plan::root_keys`] index): (generation, member index + 1, with a
    /// flag bit for an exact match; see [`crate::root_index`]). An entry counts only when its
    /// generation is the current record's, so the array is not reset from record to record
    /// (it may be longer than the plan needs).
    roots: Vec<Cell<(u32, u32)>>,
    /// The current record's generation (never 0 while mapping).
    generation: u32,
    work: Work,
}

/// The other work buffers (borrowed mutably while the caches are borrowed by [`Doc`]).
#[derive(Default)]
struct Work {
    /// Families pre-selected by the detection index.
    candidate: Vec<bool>,
    /// The chosen family's shared condition results (see [`test_memo`]).
    cond_memo: Vec<u8>,
    lower: String,
    /// Per field group of the chosen family (by field index): the group's value as an
    /// index + 1 into `values` (0: undecided; [`DONE_NO_VALUE`]: decided without a value,
    /// the record time), and the field whose default applies.
    state: Vec<u32>,
    pending: Vec<u32>,
    /// The values of the decided groups, in the order they were decided.
    values: Vec<Option<Value>>,
    /// The payload fields, in record order (each taken out as it is merged into the output,
    /// in key order).
    payload: Vec<Option<Field>>,
    /// Dotted key being built by [`flatten`].
    key: String,
    /// An empty fields vector from [`Mapper::recycle`], for the next record's output.
    spare_fields: Vec<Field>,
    /// Payload keys seen lately (their `'static` texts, see [`crate::payload_keys`]).
    recent_keys: RecentKeys,
    /// How the payload of each recent key sequence sorts and merges (see [`crate::layout`]).
    layouts: Layouts,
    /// `event.created` / `event.ingested` of the previous record (records of one event or
    /// batch share them).
    created: TimeText,
    ingested: TimeText,
}

/// The RFC 3339 text of the last time formatted.
#[derive(Default)]
struct TimeText {
    ns: Option<i64>,
    /// The text of `ns`: `YYYY-MM-DDTHH:MM:SS.`, then the fraction and `Z`.
    text: Vec<u8>,
}

impl TimeText {
    /// The RFC 3339 text of `ns` (formatted only when it changed; within the same second,
    /// only the fraction is rewritten: `event.ingested` changes with every record).
    fn text(&mut self, ns: i64) -> String {
        if self.ns != Some(ns) {
            let second = |t: i64| t.div_euclid(1_000_000_000);
            match self.text.iter().rposition(|&b| b == b'.') {
                Some(dot) if self.ns.map(second) == Some(second(ns)) => {
                    self.text.truncate(dot + 1);
                    let frac = ns.rem_euclid(1_000_000_000).unsigned_abs();
                    azlog_plugin_api::ecs::write_rfc3339_fraction(frac, &mut self.text);
                }
                _ => {
                    self.text.clear();
                    azlog_plugin_api::ecs::write_rfc3339_ns(ns, &mut self.text);
                }
            }
            self.ns = Some(ns);
        }
        // The writers emit ASCII only.
        String::from_utf8(self.text.clone()).unwrap_or_default()
    }
}

/// Whether the fields are as [`Record::from_fields`] leaves them, after merging equal keys
/// as it does. Fast path, one pass: each key sorts strictly before the next, and a key that
/// is a plain prefix of the next (`Rule`, `RuleCollection`) is not extended with a dot by
/// any key of the run that starts with it (keys between `a` and `a.b` all start with `a`,
/// so that run holds every such key). Otherwise, when the keys are sorted, equal neighbours
/// are merged (the later value wins, as in `normalize_fields`) and the answer is whether no
/// key is a dotted prefix of another. When false, `Record::from_fields` must still run;
/// merging first does not change what it gives.
///
/// (The mapper runs the two routes apart, the first one's answer kept in the layout table;
/// the tests check them together.)
#[cfg(test)]
fn normalized(fields: &mut Vec<Field>) -> bool {
    strictly_ordered(fields) || merged_normal(fields)
}

/// The second route of [`normalized`], for fields that are not strictly ordered: when the
/// keys are sorted, equal neighbours are merged, and the answer is whether no key is then a
/// dotted prefix of another.
fn merged_normal(fields: &mut Vec<Field>) -> bool {
    if !fields
        .windows(2)
        .all(|w| w[0].key.as_str() <= w[1].key.as_str())
    {
        return false;
    }
    merge_equal_keys(fields);
    !(0..fields.len()).any(|i| is_dotted_prefix(fields, i))
}

/// The one-pass check of [`normalized`]: each key sorts strictly before the next, and a key
/// that is a plain prefix of the next is not extended with a dot by any key of its run.
fn strictly_ordered(fields: &[Field]) -> bool {
    (1..fields.len()).all(|i| {
        let (a, b) = (fields[i - 1].key.as_bytes(), fields[i].key.as_bytes());
        let p = common_prefix_len(a, b);
        match (a.get(p), b.get(p)) {
            (Some(x), Some(y)) => x < y,
            (None, Some(_)) => !is_dotted_prefix(fields, i - 1),
            _ => false,
        }
    })
}

/// The value of a field group: its own, else the pending default.
fn group_value(fields: &[FieldPlan], s: &mut Work, g: usize) -> Option<Value> {
    let at = *s.state.get(g)? as usize;
    if let Some(v) = at
        .checked_sub(1)
        .and_then(|i| s.values.get_mut(i))
        .and_then(Option::take)
    {
        return Some(v);
    }
    let p = (*s.pending.get(g)? as usize).checked_sub(1)?;
    fields.get(p)?.default.clone()
}

/// [`Work::state`] of a group decided without a value (the record time).
const DONE_NO_VALUE: u32 = u32::MAX;

/// Evaluates the fields into `s.values` (by group, through `s.state`; `s.pending` names the field whose
/// default applies to a group without value); returns the record time (if read) and the
/// unreadable time text.
fn run_fields(
    doc: &Doc<'_, '_, '_>,
    family: &FamilyPlan,
    s: &mut Work,
) -> (Option<i64>, Option<String>) {
    let fields = &family.fields;
    let n = fields.len();
    let (state, pending, values) = (&mut s.state, &mut s.pending, &mut s.values);
    let memo = &mut s.cond_memo;
    memo.clear();
    memo.resize(family.cond_slots as usize, 0);
    state.clear();
    state.resize(n, 0);
    // Index + 1 of the field whose `default` applies to a group (0: none).
    pending.clear();
    pending.resize(n, 0);
    values.clear();
    let mut ts: Option<i64> = None;
    let mut ts_raw: Option<String> = None;
    // The loop reads the compact `hot` entries; a field's full plan only when its source
    // yields a node (or it is a constant).
    for (i, (h, f)) in family.hot.iter().zip(fields).enumerate() {
        let g = h.group as usize;
        if state.get(g).is_none_or(|&st| st != 0) {
            continue;
        }
        if h.nwhen != 0 {
            let when = family
                .when
                .get(h.when as usize..(h.when as usize + h.nwhen as usize))
                .unwrap_or(&[]);
            if !when.iter().all(|c| test_memo(doc, c, memo)) {
                continue;
            }
        }
        if h.timestamp {
            if let Some(ns) = eval_timestamp(doc, h, f, &mut ts_raw) {
                ts = Some(ns);
                state[g] = DONE_NO_VALUE;
            }
            continue;
        }
        match eval_field(doc, h, f) {
            Some(v) => {
                values.push(Some(v));
                state[g] = u32::try_from(values.len()).unwrap_or(DONE_NO_VALUE);
            }
            None => {
                if pending[g] == 0 && h.has_default {
                    pending[g] = u32::try_from(i + 1).unwrap_or(0);
                }
            }
        }
    }
    (ts, ts_raw)
}

/// [`Doc::test`] of a field condition, through the record's memo when other fields of the
/// family test the same ([`crate::schema::plan::Cond::memo`]; 0: not yet, 1: false, 2: true).
#[inline]
fn test_memo(doc: &Doc<'_, '_, '_>, c: &Cond, memo: &mut [u8]) -> bool {
    match memo.get_mut(c.memo as usize) {
        Some(m) if *m != 0 => *m == 2,
        Some(m) => {
            let r = doc.test(c);
            *m = 1 + u8::from(r);
            r
        }
        None => doc.test(c),
    }
}

/// The flat path ids of a field's source (empty for a constant).
fn path_ids(h: &HotField) -> std::ops::Range<u32> {
    if h.paths == NONE {
        return 0..0;
    }
    h.paths..h.paths.saturating_add(h.npaths)
}

fn eval_timestamp(
    doc: &Doc<'_, '_, '_>,
    h: &HotField,
    f: &FieldPlan,
    raw: &mut Option<String>,
) -> Option<i64> {
    if h.paths == NONE {
        return match &f.source {
            Source::Const(Value::Str(s)) => convert::time::parse_timestamp(s),
            Source::Const(Value::Int(i)) => convert::time::from_epoch_int(*i),
            _ => None,
        };
    }
    for id in path_ids(h) {
        let Some(node) = doc.resolve_id(id) else {
            continue;
        };
        if node.is_empty_value() {
            continue;
        }
        let ns = match &f.extract {
            Some(re) => node
                .text()
                .and_then(|t| extract(re, &t).and_then(convert::time::parse_timestamp)),
            None => convert::timestamp_ns(node),
        };
        if ns.is_some() {
            return ns;
        }
        if raw.is_none() {
            *raw = node.text().map(Cow::into_owned);
        }
    }
    None
}

fn extract<'s>(re: &Extractor, text: &'s str) -> Option<&'s str> {
    re.find(text)
}

fn eval_field(doc: &Doc<'_, '_, '_>, h: &HotField, f: &FieldPlan) -> Option<Value> {
    if h.plain {
        // What the general route below does for paths without `extract` and `map`, from
        // the hot entry only.
        return path_ids(h).find_map(|id| {
            let node = doc.resolve_id(id)?;
            if node.is_empty_value() {
                return None;
            }
            if h.convert.is_resource_part() {
                h.convert
                    .resource_part(doc.resource_parts(node)?.as_ref().as_ref())
            } else {
                h.convert.apply(node)
            }
        });
    }
    let converted = match &f.source {
        Source::Const(v) => return Some(v.clone()),
        Source::Paths(_) => path_ids(h).find_map(|id| {
            let node = doc.resolve_id(id)?;
            if node.is_empty_value() {
                return None;
            }
            match &f.extract {
                Some(re) => {
                    let text = node.text()?;
                    let m = extract(re, &text)?;
                    f.convert.apply(&Node::Str(Cow::Borrowed(m)))
                }
                None if f.convert.is_resource_part() => f
                    .convert
                    .resource_part(doc.resource_parts(node)?.as_ref().as_ref()),
                None => f.convert.apply(node),
            }
        })?,
    };
    Some(match &f.map {
        None => converted,
        Some(map) => {
            let text: Cow<'_, str> = match &converted {
                Value::Str(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_text()),
            };
            let mut buf = [0u8; 64];
            let hit = match lower_in(&text, &mut buf) {
                Some(lower) => map.entries.get(lower),
                None => map.entries.get(text.to_ascii_lowercase().as_str()),
            };
            match (hit, &map.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => converted,
            }
        }
    })
}

/// `text` ASCII-lower-cased, in `buf` when it needs changing and fits (`None`: too long).
fn lower_in<'a>(text: &'a str, buf: &'a mut [u8; 64]) -> Option<&'a str> {
    if !text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some(text);
    }
    let bytes = text.as_bytes();
    let dst = buf.get_mut(..bytes.len())?;
    dst.copy_from_slice(bytes);
    dst.make_ascii_lowercase();
    std::str::from_utf8(dst).ok()
}

/// Flattens a payload subtree into dotted keys under `key`.
fn flatten(
    node: &Node<'_>,
    key: &mut String,
    level: usize,
    depth: usize,
    out: &mut Vec<Option<Field>>,
    keys: &mut RecentKeys,
) {
    let value = match node {
        Node::Null => return,
        Node::Object(members) if level < depth => {
            for (k, v) in members {
                let len = key.len();
                key.push('.');
                push_key_segment(key, k);
                flatten(v, key, level + 1, depth, out, keys);
                key.truncate(len);
            }
            return;
        }
        Node::Object(members) if members.is_empty() => return,
        Node::Object(_) => Value::Json(Text::from(node.to_json())),
        Node::Array(items) if items.is_empty() => return,
        Node::Array(items) if items.iter().all(Node::is_scalar) => Value::List(
            items
                .iter()
                .filter_map(|i| i.scalar_text().map(|t| Text::from(t.as_ref())))
                .collect::<RVec<_>>(),
        ),
        Node::Array(_) => Value::Json(Text::from(node.to_json())),
        Node::Str(s) => Value::Str(Text::from(s.as_ref())),
        Node::Int(i) => Value::Int(*i),
        Node::UInt(u) => Value::Str(Text::from(u.to_string())),
        Node::Float(f) => Value::Float(*f),
        Node::Bool(b) => Value::Bool(*b),
    };
    out.push(Some(Field {
        key: keys.text(key),
        value,
    }));
}

/// Appends a source key as one dotted-key segment: `.` → `_`, empty → `_`.
fn push_key_segment(key: &mut String, seg: &str) {
    if seg.is_empty() {
        key.push('_');
    } else if find_byte(seg.as_bytes(), 0, b'.').is_some() {
        // Piece by piece (a claim type like `http://schemas.microsoft.com/…/name` has several
        // dots; pushing it a char at a time cost ≈ 1,400 instructions per key).
        for (n, piece) in seg.split('.').enumerate() {
            if n > 0 {
                key.push('_');
            }
            key.push_str(piece);
        }
    } else {
        key.push_str(seg);
    }
}

/// An embedded document: parsed from a string, or the value itself when it already is an
/// object or array.
enum Emb<'t> {
    Owned(Node<'t>),
    Ref(&'t Node<'t>),
}

/// One record being mapped: its tree plus per-record caches. `'t` is the lifetime of the
/// tree and of the embedded documents parsed from it; `'c` that of the node caches, which
/// are borrowed for the record only (they go back to the thread's scratch afterwards).
struct Doc<'c, 't, 'p> {
    plan: &'p Plan,
    root: &'t Node<'t>,
    embeds: &'t [OnceCell<Option<Emb<'t>>>],
    conds: &'c [OnceCell<Option<&'t Node<'t>>>],
    /// See [`Scratch::roots`].
    roots: &'c [Cell<(u32, u32)>],
    generation: u32,
    notes: RefCell<Vec<String>>,
    /// The last resource id split (by node address) and its parts: the ~5 resource fields
    /// of a record usually read the same id.
    resource: OnceCell<(*const Node<'t>, Option<ResourceParts<'t>>)>,
}

impl<'t> Doc<'_, 't, '_> {
    /// The split resource id of a string node (`Some(None)`: not a resource id; `None`:
    /// not a string). The first node split is cached; other nodes are split each time.
    fn resource_parts(&self, node: &'t Node<'t>) -> Option<Cow<'_, Option<ResourceParts<'t>>>> {
        let text = node.as_str()?;
        let (addr, parts) = self
            .resource
            .get_or_init(|| (node as *const Node<'t>, split_resource_id(text)));
        if std::ptr::eq(*addr, node) {
            Some(Cow::Borrowed(parts))
        } else {
            Some(Cow::Owned(split_resource_id(text)))
        }
    }

    /// Resolves path `id` of [`Plan::flat`].
    #[inline]
    fn resolve_id(&self, id: u32) -> Option<&'t Node<'t>> {
        let flat = &self.plan.flat;
        let path = flat.paths.get(id as usize)?;
        let mut cur: &'t Node<'t> = if path.start != NONE {
            self.embed(path.start as usize)?
        } else if path.root_key != NONE {
            self.root_member(path.root_key as usize)?
        } else {
            self.root
        };
        let (first, n) = (path.step as usize, path.nsteps as usize);
        for &st in flat.steps.get(first..first + n)? {
            cur = match flat.key_bytes(st) {
                Some(k) => cur.get_bytes(k)?,
                None => cur.index(st.off as usize)?,
            };
        }
        Some(cur)
    }

    fn resolve(&self, path: &PathPlan) -> Option<&'t Node<'t>> {
        let mut cur: &'t Node<'t> = match (path.start, path.root_key) {
            (None, Some(k)) => self.root_member(k)?,
            (None, None) => self.root,
            (Some(e), _) => self.embed(e)?,
        };
        for step in &path.steps {
            cur = match step {
                Step::Key(k) => cur.get(k)?,
                Step::Index(i) => cur.index(*i)?,
            };
        }
        Some(cur)
    }

    /// The record's member for [`Plan::root_keys`]`[k]` (matched for every root key when the
    /// record was opened, see [`crate::root_index`]).
    #[inline]
    fn root_member(&self, k: usize) -> Option<&'t Node<'t>> {
        let Node::Object(members) = self.root else {
            return None;
        };
        let at = member_of(self.roots.get(k)?.get(), self.generation)?;
        members.get(at).map(|(_, v)| v)
    }

    fn embed(&self, id: usize) -> Option<&'t Node<'t>> {
        let def = self.plan.embeds.get(id)?;
        let cell: &'t OnceCell<Option<Emb<'t>>> = self.embeds.get(id)?;
        let emb = cell.get_or_init(|| {
            let base = self.resolve_id(
                self.plan
                    .flat
                    .embed_base
                    .saturating_add(u32::try_from(id).ok()?),
            )?;
            match (def.kind, base) {
                (_, Node::Object(_) | Node::Array(_)) if def.kind == EmbedKind::Json => {
                    Some(Emb::Ref(base))
                }
                (EmbedKind::Json, Node::Str(s)) => match Node::parse(s.as_ref()) {
                    Ok(n) => Some(Emb::Owned(n)),
                    Err(e) => {
                        self.note(format!(
                            "{}: embedded JSON does not parse: {e}",
                            def.base.text
                        ));
                        None
                    }
                },
                (EmbedKind::Xml, Node::Str(s)) => {
                    let (n, note) = parse_xml(s.as_ref());
                    if let Some(note) = note {
                        self.note(format!("{}: {note}", def.base.text));
                    }
                    Some(Emb::Owned(n))
                }
                _ => None,
            }
        });
        match emb.as_ref()? {
            Emb::Owned(n) => Some(n),
            Emb::Ref(n) => Some(n),
        }
    }

    fn note(&self, msg: String) {
        self.notes.borrow_mut().push(msg);
    }

    fn cond_node(&self, id: usize) -> Option<&'t Node<'t>> {
        let id32 = u32::try_from(id).ok()?;
        *self.conds.get(id)?.get_or_init(|| self.resolve_id(id32))
    }

    fn test(&self, cond: &Cond) -> bool {
        let node = self.cond_node(cond.path);
        match &cond.test {
            Test::Exists(want) => node.is_some_and(|n| !matches!(n, Node::Null)) == *want,
            Test::Equals(vals) => any_equal(node, vals, &cond.ints),
            Test::NotEquals(vals) => !any_equal(node, vals, &cond.ints),
            Test::Contains(vals) => any_text(node, |t| vals.iter().any(|v| contains_ci(t, v))),
            Test::StartsWith(vals) => any_text(node, |t| {
                vals.iter().any(|v| {
                    t.len() >= v.len() && t.as_bytes()[..v.len()].eq_ignore_ascii_case(v.as_bytes())
                })
            }),
        }
    }
}

/// True when the text of the node (a scalar, or any scalar element of an array) equals one
/// of `vals` (lower-case) ignoring ASCII case. Integers compare with `ints`, the values that
/// are canonical integers (the only ones an integer's text can equal), without formatting.
fn any_equal(node: Option<&Node<'_>>, vals: &[Box<str>], ints: &[i64]) -> bool {
    let one = |n: &Node<'_>| match n {
        Node::Int(i) => ints.contains(i),
        Node::Str(s) => vals.iter().any(|v| s.eq_ignore_ascii_case(v)),
        other => {
            let mut buf = [0u8; 24];
            other
                .scalar_text_in(&mut buf)
                .is_some_and(|t| vals.iter().any(|v| t.eq_ignore_ascii_case(v)))
        }
    };
    match node {
        None => false,
        Some(Node::Array(items)) => items.iter().any(one),
        Some(n) => one(n),
    }
}

/// True when the node (a scalar, or any scalar element of an array) satisfies `pred`.
fn any_text(node: Option<&Node<'_>>, pred: impl Fn(&str) -> bool) -> bool {
    let mut buf = [0u8; 24];
    match node {
        None => false,
        Some(Node::Array(items)) => items
            .iter()
            .any(|i| i.scalar_text_in(&mut buf).is_some_and(|t| pred(&t))),
        Some(n) => n.scalar_text_in(&mut buf).is_some_and(|t| pred(&t)),
    }
}

/// ASCII case-insensitive substring test; `needle` is already lower-case. Candidate
/// positions are found by searching for the needle's first byte in both cases.
fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some(&first) = n.first() else {
        return true;
    };
    let Some(last_start) = h.len().checked_sub(n.len()) else {
        return false;
    };
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    let mut from = 0;
    while from <= last_start {
        let Some(off) = memchr::memchr2(lower, upper, &h[from..=last_start]) else {
            return false;
        };
        let i = from + off;
        if h[i..i + n.len()].eq_ignore_ascii_case(n) {
            return true;
        }
        from = i + 1;
    }
    false
}

fn parse_xml(s: &str) -> (Node<'_>, Option<String>) {
    crate::winxml::parse_event_tree(s)
}

#[cfg(test)]
#[path = "mapper_tests.rs"]
mod tests;
