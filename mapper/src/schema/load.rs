//! Loading: built-in and overlay sources → parsed tables → checks → compiled [`Plan`].
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use crate::extract::Extractor;
use abi_stable::std_types::RVec;
use azlog_plugin_api::{intern, Text, Value};
use toml::Spanned;

use super::error::{Issue, LineIndex, SchemaError};
use super::file::{CondSpec, FieldSpec, TableFile};
use super::plan::{
    Cond, FamilyPlan, FieldPlan, Interner, MapPlan, PayloadPlan, Plan, Slot, Source, Target, Test,
};
use crate::convert::{Conversion, NAMES};
use crate::path::{parse_path, Seg};

/// Keys the mapper sets itself; tables may not write them.
pub const RESERVED_KEYS: &[&str] = &[
    "event.created",
    "event.ingested",
    "event.original",
    "azlog.family",
    "azlog.timestamp_fallback",
    "azlog.timestamp_raw",
    "azlog.parse_errors",
];

/// Keys the mapper sets by default; tables may override them.
pub const DEFAULT_KEYS: &[&str] = &["event.kind", "event.dataset"];

/// The table used when no loaded table is a fallback.
const MINIMAL_FALLBACK: &str = r#"
[family]
name = "unmatched"
dataset = "azure.unknown"
fallback = true
priority = -1000000

[[field]]
to = "@timestamp"
from = ["time", "timeStamp", "timestamp", "TimeGenerated", "EventTimeString", "createdDateTime", "activityDateTime", "eventTimestamp"]
convert = "timestamp"

[[field]]
to = "azure.category"
from = ["category", "Category", "Type"]
"#;

/// One table's text and where it came from.
#[derive(Debug, Clone)]
pub struct TableSource {
    /// Display name: `schemas/<file>` for built-ins, the path for overlays.
    pub file: String,
    /// TOML text.
    pub text: Cow<'static, str>,
    /// From `--schemas DIR` (replaces a built-in family of the same name).
    pub overlay: bool,
}

/// The built-in tables embedded at compile time.
pub fn builtin_sources() -> Vec<TableSource> {
    super::builtin::BUILTIN_TABLES
        .iter()
        .map(|(name, text)| TableSource {
            file: format!("schemas/{name}"),
            text: Cow::Borrowed(*text),
            overlay: false,
        })
        .collect()
}

/// The `*.toml` files directly in `dir` (sorted by name; subdirectories are not read).
pub fn overlay_sources(dir: &Path) -> Result<Vec<TableSource>, SchemaError> {
    let fail = |file: String, message: String| SchemaError {
        issues: vec![Issue {
            file,
            line: 0,
            message,
        }],
    };
    let shown = dir.display().to_string();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| fail(shown.clone(), format!("cannot read directory: {e}")))?;
    let mut paths = Vec::new();
    for entry in rd {
        let entry =
            entry.map_err(|e| fail(shown.clone(), format!("cannot read directory: {e}")))?;
        let p = entry.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "toml") {
            paths.push(p);
        }
    }
    paths.sort();
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let file = p.display().to_string();
        let text = std::fs::read_to_string(&p)
            .map_err(|e| fail(file.clone(), format!("cannot read: {e}")))?;
        out.push(TableSource {
            file,
            text: Cow::Owned(text),
            overlay: true,
        });
    }
    Ok(out)
}

/// A parsed table with what error messages need.
struct Parsed {
    file: String,
    lines: LineIndex,
    table: TableFile,
    overlay: bool,
}

impl Parsed {
    fn line(&self, span: Range<usize>) -> usize {
        self.lines.line(span.start)
    }
}

/// A table's own compiled parts (before `extends`).
struct Own {
    parsed: usize,
    name: String,
    dataset: Option<String>,
    extends: Option<(String, usize)>,
    priority: i64,
    fallback: bool,
    is_abstract: bool,
    family_line: usize,
    detect: Vec<Vec<Cond>>,
    fields: Vec<(FieldPlan, usize)>,
    payload: Option<(PayloadPlan, usize)>,
}

struct Compiler {
    interner: Interner,
    issues: Vec<Issue>,
}

impl Compiler {
    fn issue(&mut self, p: &Parsed, line: usize, message: impl Into<String>) {
        self.issues.push(Issue {
            file: p.file.clone(),
            line,
            message: message.into(),
        });
    }
}

/// Parses, checks and compiles the tables. Overlay tables replace built-in tables with the
/// same family name. Every problem found is reported, not just the first.
pub fn compile(sources: Vec<TableSource>) -> Result<Plan, SchemaError> {
    let mut c = Compiler {
        interner: Interner::default(),
        issues: Vec::new(),
    };
    let mut parsed: Vec<Parsed> = Vec::new();
    for src in &sources {
        parse_source(&mut c, src, &mut parsed);
    }

    // Names: unique per layer; an overlay replaces a built-in of the same name.
    let mut active: Vec<usize> = Vec::new();
    let mut by_name: HashMap<String, (usize, bool)> = HashMap::new();
    for (i, p) in parsed.iter().enumerate() {
        let name = p.table.family.get_ref().name.get_ref().clone();
        let line = p.line(p.table.family.get_ref().name.span());
        match by_name.get(&name).copied() {
            Some((j, overlay)) if overlay == p.overlay => {
                let other = &parsed[j];
                let msg = format!(
                    "two tables with the same name `{name}` (also in {}:{})",
                    other.file,
                    other.line(other.table.family.get_ref().name.span())
                );
                c.issue(p, line, msg);
            }
            Some((j, _)) => {
                // Overlay replaces the built-in.
                tracing::info!(family = %name, file = %p.file, "overlay table replaces built-in");
                if let Some(slot) = active.iter_mut().find(|a| **a == j) {
                    *slot = i;
                }
                by_name.insert(name, (i, true));
            }
            None => {
                active.push(i);
                by_name.insert(name, (i, p.overlay));
            }
        }
    }

    // Fallback: exactly zero or one among the active tables; none → the minimal one.
    let fallbacks: Vec<usize> = active
        .iter()
        .copied()
        .filter(|&i| parsed[i].table.family.get_ref().fallback)
        .collect();
    for &i in fallbacks.iter().skip(1) {
        let first = &parsed[fallbacks[0]];
        let msg = format!(
            "two fallback tables (the other is `{}` in {})",
            first.table.family.get_ref().name.get_ref(),
            first.file
        );
        let line = parsed[i].line(parsed[i].table.family.span());
        c.issue(&parsed[i], line, msg);
    }
    if fallbacks.is_empty() {
        let before = parsed.len();
        parse_source(
            &mut c,
            &TableSource {
                file: "<built-in minimal fallback>".into(),
                text: Cow::Borrowed(MINIMAL_FALLBACK),
                overlay: false,
            },
            &mut parsed,
        );
        if parsed.len() > before {
            active.push(before);
        }
    }

    // Each table's own parts.
    let owns: Vec<Own> = active
        .iter()
        .map(|&i| compile_own(&mut c, &parsed, i))
        .collect();
    let index: HashMap<&str, usize> = owns
        .iter()
        .enumerate()
        .map(|(k, o)| (o.name.as_str(), k))
        .collect();

    // Resolve extends and assemble families.
    let mut families = Vec::new();
    let mut fallback = None;
    for (k, own) in owns.iter().enumerate() {
        let p = &parsed[own.parsed];
        let Some(chain) = extends_chain(&mut c, &parsed, &owns, &index, k) else {
            continue;
        };
        if own.is_abstract {
            continue;
        }
        // Fold fields from the root ancestor down: a child's `to` replaces all inherited ones.
        let mut fields: Vec<(FieldPlan, usize, usize)> = Vec::new(); // (field, line, owner)
        let mut payload: Option<(PayloadPlan, usize, usize)> = None;
        let mut dataset: Option<String> = None;
        for &anc in chain.iter().rev() {
            let a = &owns[anc];
            let own_targets: HashSet<&Target> = a.fields.iter().map(|(f, _)| &f.target).collect();
            fields.retain(|(f, _, _)| !own_targets.contains(&f.target));
            fields.extend(a.fields.iter().map(|(f, l)| (f.clone(), *l, anc)));
            if let Some((pp, l)) = &a.payload {
                payload = Some((pp.clone(), *l, anc));
            }
            if a.dataset.is_some() {
                dataset = a.dataset.clone();
            }
        }
        if dataset.is_none() {
            c.issue(
                p,
                own.family_line,
                format!("table `{}` has no `dataset` (nor inherits one)", own.name),
            );
        }
        check_keys(&mut c, &parsed, &owns, &fields, payload.as_ref());
        // Same-target fields: remember the first index of each target.
        let mut first: HashMap<Target, usize> = HashMap::new();
        let mut plans: Vec<FieldPlan> = Vec::with_capacity(fields.len());
        for (i, (mut f, _, _)) in fields.into_iter().enumerate() {
            f.group = *first.entry(f.target.clone()).or_insert(i);
            plans.push(f);
        }
        let mut emit_order: Vec<usize> = plans
            .iter()
            .enumerate()
            .filter(|(i, f)| f.group == *i && matches!(f.target, Target::Key(_)))
            .map(|(i, _)| i)
            .collect();
        emit_order.sort_by(|&a, &b| plans[a].target.as_str().cmp(plans[b].target.as_str()));
        let static_order = Slot::order(&plans, &emit_order);
        let fam = FamilyPlan {
            static_order,
            emit_order,
            // Interned: the mapper emits the name and dataset without copying them.
            name: intern(&own.name),
            dataset: dataset.as_deref().map(intern),
            detect: own.detect.clone(),
            fields: plans,
            payload: payload.map(|(pp, _, _)| pp),
            priority: own.priority,
            hot: Vec::new(),
            when: Vec::new(),
            static_keys: Vec::new(),
            cond_slots: 0,
        };
        if own.fallback {
            fallback = Some(fam.clone());
        } else if own.detect.is_empty() {
            tracing::warn!(family = %own.name, file = %p.file, "table has no [[detect]] and is not abstract or fallback: it never matches");
        }
        if !own.detect.is_empty() {
            families.push(fam);
        }
    }

    if !c.issues.is_empty() {
        c.issues
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        c.issues.dedup();
        return Err(SchemaError { issues: c.issues });
    }
    let Some(fallback) = fallback else {
        return Err(SchemaError {
            issues: vec![Issue {
                file: "<schemas>".into(),
                line: 0,
                message: "no fallback table could be built".into(),
            }],
        });
    };
    families.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(b.name)));
    let mut names: Vec<String> = families.iter().map(|f| f.name.to_owned()).collect();
    if !names.iter().any(|n| n == fallback.name) {
        names.push(fallback.name.to_owned());
    }
    let detect_index = super::detect_index::DetectIndex::build(&families);
    let mut plan = Plan {
        detect_index,
        families,
        fallback,
        cond_paths: c.interner.cond_paths,
        embeds: c.interner.embeds,
        root_keys: c.interner.root_keys,
        names,
        flat: Default::default(),
    };
    plan.flatten();
    Ok(plan)
}

fn parse_source(c: &mut Compiler, src: &TableSource, parsed: &mut Vec<Parsed>) {
    let lines = LineIndex::new(&src.text);
    match toml::from_str::<TableFile>(&src.text) {
        Ok(table) => parsed.push(Parsed {
            file: src.file.clone(),
            lines,
            table,
            overlay: src.overlay,
        }),
        Err(e) => c.issues.push(Issue {
            file: src.file.clone(),
            line: e.span().map_or(0, |s| lines.line(s.start)),
            message: e.message().trim().to_owned(),
        }),
    }
}

/// The chain `[k, parent, grandparent, ...]`, or `None` (after reporting) on a missing
/// parent or a cycle.
fn extends_chain(
    c: &mut Compiler,
    parsed: &[Parsed],
    owns: &[Own],
    index: &HashMap<&str, usize>,
    k: usize,
) -> Option<Vec<usize>> {
    let mut chain = vec![k];
    let mut cur = k;
    while let Some((parent, line)) = &owns[cur].extends {
        let p = &parsed[owns[cur].parsed];
        let Some(&next) = index.get(parent.as_str()) else {
            if cur == k {
                c.issue(p, *line, format!("`extends = \"{parent}\"` names no table"));
            }
            return None;
        };
        if chain.contains(&next) {
            let names: Vec<&str> = chain.iter().map(|&i| owns[i].name.as_str()).collect();
            let own_line = owns[k]
                .extends
                .as_ref()
                .map_or(owns[k].family_line, |e| e.1);
            c.issue(
                &parsed[owns[k].parsed],
                own_line,
                format!("cycle in `extends`: {} -> {parent}", names.join(" -> ")),
            );
            return None;
        }
        chain.push(next);
        cur = next;
    }
    Some(chain)
}

fn compile_own(c: &mut Compiler, parsed: &[Parsed], i: usize) -> Own {
    let p = &parsed[i];
    let fam = p.table.family.get_ref();
    let family_line = p.line(p.table.family.span());
    let name = fam.name.get_ref().clone();
    if name.trim().is_empty() {
        c.issue(p, p.line(fam.name.span()), "family `name` is empty");
    }
    if fam.is_abstract && fam.fallback {
        c.issue(
            p,
            family_line,
            "a table cannot be both `abstract` and `fallback`",
        );
    }
    if let Some(ds) = &fam.dataset {
        if ds.get_ref().trim().is_empty() {
            c.issue(p, p.line(ds.span()), "`dataset` is empty");
        }
    }
    let detect = p
        .table
        .detect
        .iter()
        .map(|block| {
            if block.get_ref().when.is_empty() {
                c.issue(
                    p,
                    p.line(block.span()),
                    "[[detect]] block with no conditions (it would match everything)",
                );
            }
            block
                .get_ref()
                .when
                .iter()
                .filter_map(|cond| compile_cond(c, p, cond))
                .collect()
        })
        .collect();
    let fields = p
        .table
        .field
        .iter()
        .filter_map(|f| {
            let line = p.line(f.span());
            compile_field(c, p, f.get_ref(), line).map(|fp| (fp, line))
        })
        .collect();
    let payload = p.table.payload.as_ref().and_then(|pl| {
        let line = p.line(pl.span());
        compile_payload(c, p, pl.get_ref(), line).map(|pp| (pp, line))
    });
    Own {
        parsed: i,
        name,
        dataset: fam.dataset.as_ref().map(|d| d.get_ref().clone()),
        extends: fam
            .extends
            .as_ref()
            .map(|e| (e.get_ref().clone(), p.line(e.span()))),
        priority: fam.priority,
        fallback: fam.fallback,
        is_abstract: fam.is_abstract,
        family_line,
        detect,
        fields,
        payload,
    }
}

fn compile_path(c: &mut Compiler, p: &Parsed, text: &str, line: usize) -> Option<Vec<Seg>> {
    match parse_path(text) {
        Ok(segs) => Some(segs),
        Err(e) => {
            c.issue(p, line, e.to_string());
            None
        }
    }
}

/// A string or a list of strings (numbers and bools taken as text).
fn string_list(v: &toml::Value) -> Option<Vec<String>> {
    fn one(v: &toml::Value) -> Option<String> {
        match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match v {
        toml::Value::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

fn compile_cond(c: &mut Compiler, p: &Parsed, cond: &Spanned<CondSpec>) -> Option<Cond> {
    let line = p.line(cond.span());
    let spec = cond.get_ref();
    let path_line = p.line(spec.path.span());
    let segs = compile_path(c, p, spec.path.get_ref(), path_line);
    let lists = [
        ("equals", &spec.equals),
        ("not_equals", &spec.not_equals),
        ("contains", &spec.contains),
        ("starts_with", &spec.starts_with),
    ];
    let given =
        lists.iter().filter(|(_, v)| v.is_some()).count() + usize::from(spec.exists.is_some());
    if given != 1 {
        c.issue(
            p,
            line,
            format!(
                "condition on `{}` needs exactly one of equals, not_equals, contains, starts_with, exists (found {given})",
                spec.path.get_ref()
            ),
        );
        return None;
    }
    let test = if let Some(e) = &spec.exists {
        Test::Exists(*e.get_ref())
    } else {
        let (kind, value) = lists
            .iter()
            .find_map(|(k, v)| v.as_ref().map(|v| (*k, v)))?;
        let Some(values) = string_list(value.get_ref()) else {
            c.issue(
                p,
                p.line(value.span()),
                format!("`{kind}` takes a string or a list of strings"),
            );
            return None;
        };
        if values.is_empty() || values.iter().any(String::is_empty) {
            c.issue(
                p,
                p.line(value.span()),
                format!("`{kind}` has an empty list or an empty string"),
            );
            return None;
        }
        let lowered: Vec<Box<str>> = values
            .iter()
            .map(|s| s.to_ascii_lowercase().into_boxed_str())
            .collect();
        match kind {
            "equals" => Test::Equals(lowered),
            "not_equals" => Test::NotEquals(lowered),
            "contains" => Test::Contains(lowered),
            _ => Test::StartsWith(lowered),
        }
    };
    let segs = segs?;
    let path = c.interner.cond_path(spec.path.get_ref(), &segs);
    Some(Cond::new(path, test))
}

/// Schema text as a [`Text`] that costs no allocation when emitted (interned: schema text
/// only, see [`intern`]).
fn schema_text(s: &str) -> Text {
    Text::from_static(intern(s))
}

/// A TOML value as a canonical value (constants, defaults, map results). Strings are
/// interned, so emitting (cloning) the value copies no text.
fn const_value(v: &toml::Value) -> Result<Value, &'static str> {
    Ok(match v {
        toml::Value::String(s) => Value::Str(schema_text(s)),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Str(schema_text(&d.to_string())),
        toml::Value::Array(items) => {
            let mut out = RVec::new();
            for it in items {
                match it {
                    toml::Value::String(s) => out.push(schema_text(s)),
                    toml::Value::Integer(i) => out.push(schema_text(&i.to_string())),
                    toml::Value::Boolean(b) => out.push(schema_text(&b.to_string())),
                    _ => return Err("a list may hold only strings, integers and booleans"),
                }
            }
            Value::List(out)
        }
        toml::Value::Table(_) => return Err("a table is not a field value"),
    })
}

/// A `map` result: strings that parse as integers become integers.
fn map_value(v: &toml::Value) -> Result<Value, &'static str> {
    match v {
        toml::Value::String(s) => Ok(match s.trim().parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Str(schema_text(s)),
        }),
        other => const_value(other),
    }
}

const OUTCOMES: [&str; 3] = ["success", "failure", "unknown"];

fn check_outcome(c: &mut Compiler, p: &Parsed, line: usize, what: &str, v: &Value) {
    let ok = matches!(v, Value::Str(s) if OUTCOMES.contains(&s.as_str()));
    if !ok {
        c.issue(
            p,
            line,
            format!(
                "event.outcome {what} must be success, failure or unknown (found {})",
                v.to_text()
            ),
        );
    }
}

/// Checks a dotted destination key's syntax.
fn key_syntax(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("is empty");
    }
    if key.split('.').any(str::is_empty) {
        return Err("has an empty segment");
    }
    if key
        .chars()
        .any(|ch| ch.is_whitespace() || matches!(ch, '[' | ']' | '"' | '$'))
    {
        return Err("may not contain whitespace, brackets, quotes or `$`");
    }
    Ok(())
}

fn compile_field(c: &mut Compiler, p: &Parsed, f: &FieldSpec, line: usize) -> Option<FieldPlan> {
    let to = f.to.get_ref().as_str();
    let to_line = p.line(f.to.span());
    let target = if to == "@timestamp" {
        Target::Timestamp
    } else {
        if let Err(why) = key_syntax(to) {
            c.issue(p, to_line, format!("`to = \"{to}\"` {why}"));
            return None;
        }
        if RESERVED_KEYS.contains(&to) {
            c.issue(
                p,
                to_line,
                format!("`{to}` is set by the mapper itself; tables may not write it"),
            );
            return None;
        }
        // Interned: the mapper emits the key without copying it.
        Target::Key(intern(to))
    };
    let mut ok = true;

    let convert = match &f.convert {
        None => Conversion::String,
        Some(name) => match Conversion::from_name(name.get_ref()) {
            Some(conv) => conv,
            None => {
                c.issue(
                    p,
                    p.line(name.span()),
                    format!(
                        "unknown conversion `{}` (known: {})",
                        name.get_ref(),
                        NAMES.join(", ")
                    ),
                );
                ok = false;
                Conversion::String
            }
        },
    };
    let convert = if target == Target::Timestamp {
        if f.convert.is_some() && convert != Conversion::Timestamp {
            c.issue(
                p,
                to_line,
                "`@timestamp` takes `convert = \"timestamp\"` (or none)",
            );
            ok = false;
        }
        Conversion::Timestamp
    } else {
        convert
    };

    let source = match (&f.from, &f.value) {
        (Some(_), Some(_)) => {
            c.issue(p, line, format!("field `{to}` has both `from` and `value`"));
            return None;
        }
        (None, None) => {
            c.issue(
                p,
                line,
                format!("field `{to}` needs `from` (source paths) or `value` (a constant)"),
            );
            return None;
        }
        (Some(from), None) => {
            let from_line = p.line(from.span());
            let Some(texts) = string_list(from.get_ref()).filter(|v| !v.is_empty()) else {
                c.issue(p, from_line, "`from` takes a path or a list of paths");
                return None;
            };
            let mut paths = Vec::new();
            for t in &texts {
                if let Some(segs) = compile_path(c, p, t, from_line) {
                    paths.push(c.interner.path(t, &segs));
                } else {
                    ok = false;
                }
            }
            Source::Paths(paths)
        }
        (None, Some(v)) => match const_value(v.get_ref()) {
            Ok(val) => Source::Const(val),
            Err(why) => {
                c.issue(p, p.line(v.span()), format!("`value`: {why}"));
                return None;
            }
        },
    };

    let extract = match &f.extract {
        None => None,
        Some(re) => {
            if matches!(source, Source::Const(_)) {
                c.issue(p, p.line(re.span()), "`extract` needs `from`");
                ok = false;
            }
            match Extractor::new(re.get_ref()) {
                Ok(r) => Some(r),
                Err(e) => {
                    c.issue(p, p.line(re.span()), format!("bad `extract` regex: {e}"));
                    ok = false;
                    None
                }
            }
        }
    };

    let is_outcome = to == "event.outcome";
    let map = match &f.map {
        None => {
            if f.map_default.is_some() {
                c.issue(p, line, "`map_default` without `map`");
                ok = false;
            }
            if is_outcome && matches!(source, Source::Paths(_)) {
                c.issue(
                    p,
                    line,
                    "event.outcome from a source needs a `map` to success, failure or unknown",
                );
                ok = false;
            }
            None
        }
        Some(m) => {
            let m_line = p.line(m.span());
            let mut entries = HashMap::default();
            for (k, v) in m.get_ref() {
                let key = k.to_ascii_lowercase().into_boxed_str();
                match map_value(v) {
                    Ok(val) => {
                        if is_outcome {
                            check_outcome(c, p, m_line, "map value", &val);
                        }
                        if entries.insert(key, val).is_some() {
                            c.issue(
                                p,
                                m_line,
                                format!(
                                    "`map` key `{k}` appears twice (keys are case-insensitive)"
                                ),
                            );
                            ok = false;
                        }
                    }
                    Err(why) => {
                        c.issue(p, m_line, format!("`map` value for `{k}`: {why}"));
                        ok = false;
                    }
                }
            }
            let default = match &f.map_default {
                Some(d) => match map_value(d.get_ref()) {
                    Ok(val) => {
                        if is_outcome {
                            check_outcome(c, p, p.line(d.span()), "map_default", &val);
                        }
                        Some(val)
                    }
                    Err(why) => {
                        c.issue(p, p.line(d.span()), format!("`map_default`: {why}"));
                        ok = false;
                        None
                    }
                },
                // event.outcome never carries a raw source word.
                None if is_outcome => Some(Value::from_static("unknown")),
                None => None,
            };
            Some(MapPlan { entries, default })
        }
    };

    let default = match &f.default {
        None => None,
        Some(d) => match const_value(d.get_ref()) {
            Ok(val) => {
                if is_outcome {
                    check_outcome(c, p, p.line(d.span()), "default", &val);
                }
                if target == Target::Timestamp {
                    c.issue(p, p.line(d.span()), "`@timestamp` has no `default` (the mapper falls back to the enqueued time)");
                    ok = false;
                }
                Some(val)
            }
            Err(why) => {
                c.issue(p, p.line(d.span()), format!("`default`: {why}"));
                ok = false;
                None
            }
        },
    };
    if is_outcome {
        if let Source::Const(v) = &source {
            check_outcome(c, p, line, "value", v);
        }
    }

    let mut when = Vec::new();
    for cond in f.when.iter().flatten() {
        match compile_cond(c, p, cond) {
            Some(cd) => when.push(cd),
            None => ok = false,
        }
    }
    ok.then_some(FieldPlan {
        target,
        when,
        source,
        extract,
        convert,
        map,
        default,
        group: 0,
    })
}

fn compile_payload(
    c: &mut Compiler,
    p: &Parsed,
    pl: &super::file::PayloadSpec,
    line: usize,
) -> Option<PayloadPlan> {
    let to = pl.to.get_ref();
    if let Err(why) = key_syntax(to) {
        c.issue(
            p,
            p.line(pl.to.span()),
            format!("payload `to = \"{to}\"` {why}"),
        );
        return None;
    }
    let depth = match &pl.depth {
        None => 3,
        Some(d) => match usize::try_from(*d.get_ref()) {
            Ok(v) if v <= 32 => v,
            _ => {
                c.issue(p, p.line(d.span()), "payload `depth` must be 0–32");
                return None;
            }
        },
    };
    if pl.copy.is_empty() {
        c.issue(p, line, "[payload] with an empty `copy` list");
    }
    let mut copies = Vec::new();
    let mut seen = HashSet::new();
    for item in &pl.copy {
        let item_line = p.line(item.span());
        let Some(segs) = compile_path(c, p, item.get_ref(), item_line) else {
            continue;
        };
        let Some(name) = segs.iter().rev().find_map(|s| match s {
            Seg::Key(k) => Some(k.replace('.', "_")),
            _ => None,
        }) else {
            c.issue(
                p,
                item_line,
                format!("payload copy `{}` has no key to name it by", item.get_ref()),
            );
            continue;
        };
        let key = format!("{to}.{name}");
        if !seen.insert(key.clone()) {
            c.issue(
                p,
                item_line,
                format!("payload copies two sources to `{key}`"),
            );
            continue;
        }
        copies.push((c.interner.path(item.get_ref(), &segs), key));
    }
    Some(PayloadPlan { depth, copies })
}

/// `to` keys of one resolved family: none may be a dotted prefix of another (or of a built-in
/// key, or of a payload destination).
fn check_keys(
    c: &mut Compiler,
    parsed: &[Parsed],
    owns: &[Own],
    fields: &[(FieldPlan, usize, usize)],
    payload: Option<&(PayloadPlan, usize, usize)>,
) {
    // key → (owner table index or usize::MAX for built-ins, line)
    let mut keys: HashMap<&str, (usize, usize)> = HashMap::new();
    for k in RESERVED_KEYS.iter().chain(DEFAULT_KEYS) {
        keys.insert(k, (usize::MAX, 0));
    }
    for (f, line, owner) in fields {
        if let Target::Key(k) = &f.target {
            keys.entry(*k).or_insert((*owner, *line));
        }
    }
    let describe = |owner: usize, line: usize| -> String {
        if owner == usize::MAX {
            "a built-in key".to_owned()
        } else {
            let p = &parsed[owns[owner].parsed];
            format!("{}:{}", p.file, line)
        }
    };
    let mut found: Vec<(usize, usize, String)> = Vec::new();
    for (&k, &(owner, line)) in &keys {
        for (i, _) in k.match_indices('.') {
            let prefix = &k[..i];
            if let Some(&(o2, l2)) = keys.get(prefix) {
                if owner == usize::MAX && o2 == usize::MAX {
                    continue;
                }
                let (report_owner, report_line) = if o2 == usize::MAX {
                    (owner, line)
                } else {
                    (o2, l2)
                };
                found.push((
                    report_owner,
                    report_line,
                    format!(
                        "`to = \"{prefix}\"` is a dotted prefix of `{k}` ({})",
                        describe(owner, line)
                    ),
                ));
            }
        }
        if owner == usize::MAX {
            continue;
        }
        if let Some((pp, _, _)) = payload {
            for (_, base) in &pp.copies {
                if base == k || (base.starts_with(k) && base.as_bytes().get(k.len()) == Some(&b'.'))
                {
                    found.push((
                        owner,
                        line,
                        format!("`to = \"{k}\"` collides with the payload destination `{base}.*`"),
                    ));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    for (owner, line, msg) in found {
        let p = &parsed[owns[owner].parsed];
        c.issue(p, line, msg);
    }
}
