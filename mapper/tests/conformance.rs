//! Conformance over the real public samples in `../shared/samples/` (outside the repo; the
//! test prints a note and passes when the folder is absent). Every JSON record found there
//! must map or be reported unmappable with a reason, nothing may panic, and a coverage table
//! per sample file and per detected family is printed (`cargo test --test conformance --
//! --nocapture`): share of records with a real `@timestamp`, with `event.action`, with
//! `event.outcome` other than `unknown`, and detected as a specific (non-generic) family.
//!
//! Shapes handled: `{"records":[...]}` envelopes, JSON arrays, bare objects, NDJSON (Panther
//! test lines carry the record under `log`), and Windows `<Event>` XML files, each event
//! wrapped into a WAD-table-like row (`RawXml` + `EventId`). CSV, query-API responses and
//! binary EVTX are listed as skipped.
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use azlog_mapper::winxml::parse_event;
use azlog_mapper::{Mapper, Record};
use common::{map_fixture, mapper};
use serde_json::{json, Value};

const SAMPLES: &str = "../../shared/samples";

#[derive(Default, Clone)]
struct Tally {
    records: usize,
    unmappable: usize,
    real_ts: usize,
    action: usize,
    outcome: usize,
    specific: usize,
}

impl Tally {
    fn add(&mut self, r: &Record, fallback: &str) {
        self.records += 1;
        if r.get("azlog.timestamp_fallback").is_none() {
            self.real_ts += 1;
        }
        if r.get("event.action").is_some() {
            self.action += 1;
        }
        if r.get_str("event.outcome").is_some_and(|o| o != "unknown") {
            self.outcome += 1;
        }
        if r.get_str("azlog.family") != Some(fallback) {
            self.specific += 1;
        }
    }

    fn row(&self, name: &str) -> String {
        let pct = |n: usize| {
            if self.records == 0 {
                "-".to_string()
            } else {
                format!("{:.0}%", 100.0 * n as f64 / self.records as f64)
            }
        };
        format!(
            "{name:<58} {:>6} {:>5} {:>6} {:>6} {:>7} {:>8}",
            self.records,
            self.unmappable,
            pct(self.real_ts),
            pct(self.action),
            pct(self.outcome),
            pct(self.specific)
        )
    }
}

fn header(title: &str) -> String {
    format!(
        "{title:<58} {:>6} {:>5} {:>6} {:>6} {:>7} {:>8}",
        "recs", "dead", "time", "action", "outcome", "specific"
    )
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
    out.sort();
}

/// The raw records of one sample file, or why it is skipped.
fn records_of(path: &Path) -> Result<Vec<String>, String> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    if name.ends_with(".ndjson") {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        return Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match serde_json::from_str::<Value>(l) {
                // Panther rule tests: {"_panther_rule":..,"log":{record}}
                Ok(Value::Object(o)) if o.contains_key("_panther_rule") => o
                    .get("log")
                    .map(Value::to_string)
                    .unwrap_or_else(|| l.to_string()),
                _ => l.to_string(),
            })
            .collect());
    }
    if name.ends_with(".xml") {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        return Ok(text
            .split("<Event ")
            .skip(1)
            .map(|chunk| {
                let end = chunk.find("</Event>").map(|i| i + 8).unwrap_or(chunk.len());
                let xml = format!("<Event {}", &chunk[..end]);
                let (tree, _) = parse_event(&xml);
                let id = tree["System"]["EventID"].as_str().unwrap_or("").to_string();
                json!({"EventId": id, "Channel": "Security", "RawXml": xml}).to_string()
            })
            .collect());
    }
    if !name.ends_with(".json") {
        return Err("not JSON/NDJSON/XML (CSV, EVTX, snapshot or text)".into());
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("not JSON: {e}"))?;
    match v {
        Value::Object(o) if o.get("records").is_some_and(Value::is_array) => Ok(o["records"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect()),
        Value::Object(o) if o.contains_key("tables") || o.contains_key("Tables") => {
            Err("Log Analytics / Kusto query-API response (tables of rows), not records".into())
        }
        Value::Array(items) => Ok(items.iter().map(Value::to_string).collect()),
        other => Ok(vec![other.to_string()]),
    }
}

#[test]
fn shared_samples_map_with_coverage() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SAMPLES);
    if !root.is_dir() {
        println!(
            "note: {} not present; conformance over real samples skipped",
            root.display()
        );
        return;
    }
    let m: Mapper = mapper();
    let fallback = m.fallback_name().to_string();
    let mut files = Vec::new();
    walk(&root, &mut files);

    let mut per_file: BTreeMap<String, Tally> = BTreeMap::new();
    let mut per_family: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let mut skipped = Vec::new();
    let mut reasons = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let records = match records_of(path) {
            Ok(r) => r,
            Err(why) => {
                skipped.push(format!("{rel}: {why}"));
                continue;
            }
        };
        let tally = per_file.entry(rel.clone()).or_default();
        for (i, json) in records.iter().enumerate() {
            let input = azlog_mapper::MapInput {
                json,
                position: Default::default(),
                enqueued_ns: Some(common::ENQUEUED_NS),
            };
            match m.map(input, common::INGESTED_NS) {
                Ok(r) => {
                    tally.add(&r, &fallback);
                    total.add(&r, &fallback);
                    let fam = r.get_str("azlog.family").unwrap_or("?").to_string();
                    per_family.entry(fam).or_default().add(&r, &fallback);
                    // Everything the record gives must also render.
                    assert!(common::ecs_line(&r).starts_with("{\"@timestamp\":"));
                }
                Err(e) => {
                    let reason = e.to_string();
                    assert!(
                        !reason.is_empty(),
                        "{rel}[{i}]: unmappable without a reason"
                    );
                    tally.records += 1;
                    tally.unmappable += 1;
                    total.records += 1;
                    total.unmappable += 1;
                    reasons.push(format!("{rel}[{i}]: {reason}"));
                }
            }
        }
    }
    let mut report = String::new();
    let _ = writeln!(report, "\n{}", header("sample file"));
    for (name, t) in &per_file {
        let _ = writeln!(report, "{}", t.row(name));
    }
    let _ = writeln!(report, "{}", total.row("TOTAL"));
    let _ = writeln!(report, "\n{}", header("detected family"));
    for (name, t) in &per_family {
        let _ = writeln!(report, "{}", t.row(name));
    }
    let _ = writeln!(report, "\nskipped files:");
    for s in &skipped {
        let _ = writeln!(report, "  {s}");
    }
    let _ = writeln!(report, "unmappable records: {}", reasons.len());
    for r in reasons.iter().take(20) {
        let _ = writeln!(report, "  {r}");
    }
    println!("{report}");

    // Baselines measured on the shared samples (see the report above): regressions fail.
    assert!(total.records > 2000, "{report}");
    let share = |t: &Tally, n: usize| n as f64 / t.records.max(1) as f64;
    assert!(
        share(&total, total.real_ts) >= 0.95,
        "real @timestamp share fell\n{report}"
    );
    assert!(
        share(&total, total.specific) >= 0.90,
        "specific family share fell\n{report}"
    );
    let fam = |name: &str| per_family.get(name).cloned().unwrap_or_default();
    assert!(
        fam("windows.security").records >= 1000,
        "SecurityEvent rows not detected\n{report}"
    );
    assert!(
        fam("windows.wad").records >= 700,
        "WAD RawXml rows not detected\n{report}"
    );
    assert!(
        fam("entra.signin").records >= 80,
        "SigninLogs rows not detected\n{report}"
    );
    assert!(
        fam("defender.alert").records >= 25,
        "SecurityAlert rows not detected\n{report}"
    );
    assert!(
        fam("activity.administrative").records >= 150,
        "activity log not detected\n{report}"
    );
}

#[test]
fn fixture_helper_maps() {
    // Keeps `map_fixture` exercised in this test binary too (shared helper module).
    let m = mapper();
    let r = map_fixture(
        &m,
        "inline",
        0,
        r#"{"category":"X","time":"2024-01-01T00:00:00Z"}"#,
    );
    assert_eq!(r.get_str("azlog.family"), Some(m.fallback_name()));
}
