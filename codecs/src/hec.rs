//! Splunk HTTP Event Collector (HEC) JSON events, as pure functions over the canonical record.
//!
//! One record becomes one HEC event object (or several, when an oversize record is split):
//!
//! ```json
//! {"time":1718000000.123,"host":"h","source":"azlog","sourcetype":"azure:monitor:aad",
//!  "index":"azure","fields":{"tenant_id":"..."},"event":{...original Azure record...}}
//! ```
//!
//! * `time` is epoch seconds with a millisecond fraction, from `@timestamp`.
//! * `sourcetype` comes from `schemas/sinks/splunk.toml` (embedded; see [`SourcetypeTable`]):
//!   by `event.dataset`, then `azure.category`, then the table's default.
//! * `event` is the original Azure JSON (default, so the Splunk add-ons' search-time
//!   extractions apply) or the ECS rendering.
//! * An event larger than `max_event_bytes` is truncated, split or rejected according to
//!   [`OversizePolicy`]; truncated and split events carry indexed fields saying so
//!   (`azlog_truncated`, `azlog_original_bytes`, `azlog_part`, `azlog_split_id`), and the
//!   encoder reports what it did, so it never happens silently.
//!
//! Events are written back to back, each followed by `\n` (HEC accepts concatenated JSON
//! objects in one request body).
use std::collections::HashMap;

use azlog_plugin_api::ecs::{write_ecs_json, write_json_str, EcsOptions};
use azlog_plugin_api::{Record, Value};
use serde::Deserialize;

/// The built-in sourcetype table (`schemas/sinks/splunk.toml`).
pub const BUILTIN_SOURCETYPES: &str = include_str!("../../schemas/sinks/splunk.toml");

/// Errors building a HEC encoder.
#[derive(Debug, thiserror::Error)]
pub enum HecError {
    /// The sourcetype table does not parse or is inconsistent.
    #[error("sourcetype table {origin}: {message}")]
    Table {
        /// Where the table came from (file path or `built-in`).
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A setting is out of range.
    #[error("HEC setting `{setting}`: {message}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    version: u32,
    default: String,
    #[serde(default)]
    dataset: HashMap<String, String>,
    #[serde(default)]
    category: HashMap<String, String>,
    #[serde(default)]
    indexed_fields: HashMap<String, String>,
}

/// Sourcetype per dataset/category and the indexed-field map, from `splunk.toml`.
#[derive(Clone, Debug)]
pub struct SourcetypeTable {
    default: String,
    by_dataset: HashMap<String, String>,
    by_category: HashMap<String, String>,
    /// (canonical key, HEC field name), sorted by HEC name for a stable output.
    indexed_fields: Vec<(String, String)>,
}

impl SourcetypeTable {
    /// The table embedded from `schemas/sinks/splunk.toml`.
    pub fn builtin() -> Result<Self, HecError> {
        Self::from_toml(BUILTIN_SOURCETYPES, "built-in schemas/sinks/splunk.toml")
    }

    /// Parses a table; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, HecError> {
        let table_err = |message: String| HecError::Table {
            origin: origin.to_string(),
            message,
        };
        let file: TableFile = toml::from_str(text).map_err(|e| table_err(e.to_string()))?;
        if file.version != 1 {
            return Err(table_err(format!(
                "unsupported version {} (expected 1)",
                file.version
            )));
        }
        let all = std::iter::once(&file.default)
            .chain(file.dataset.values())
            .chain(file.category.values());
        for st in all {
            if st.is_empty() || st.chars().any(|c| c.is_control()) {
                return Err(table_err(format!("invalid sourcetype {st:?}")));
            }
        }
        let mut indexed_fields: Vec<(String, String)> = file.indexed_fields.into_iter().collect();
        indexed_fields.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(SourcetypeTable {
            default: file.default,
            by_dataset: file.dataset,
            by_category: file.category,
            indexed_fields,
        })
    }

    /// The sourcetype for a record: by `event.dataset`, then `azure.category`, then default.
    pub fn sourcetype_for<'a>(&'a self, record: &Record) -> &'a str {
        if let Some(st) = record
            .get_str("event.dataset")
            .and_then(|d| self.by_dataset.get(d))
        {
            return st;
        }
        if let Some(st) = record
            .get_str("azure.category")
            .and_then(|c| self.by_category.get(c))
        {
            return st;
        }
        &self.default
    }
}

/// What goes into the HEC `event` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// The original Azure record JSON (falls back to ECS when a record has no original).
    Original,
    /// The ECS rendering of the record.
    Ecs {
        /// Also include `event.original` inside the ECS object.
        include_original: bool,
    },
}

/// What to do with an event larger than `max_event_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OversizePolicy {
    /// Send the body as a JSON string cut to fit, marked `azlog_truncated=true`.
    Truncate,
    /// Send the body as several string events `azlog_part=i/n` sharing an `azlog_split_id`.
    Split,
    /// Refuse the record (the host dead-letters it).
    Reject,
}

/// Where the HEC `host` member comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostSource {
    /// Leave `host` out (Splunk uses the HEC input's default).
    Omit,
    /// A fixed value.
    Fixed(String),
    /// A record field (e.g. `host.name`), omitted when the record lacks it.
    Field(String),
}

/// HEC encoder settings and the sourcetype table.
#[derive(Clone, Debug)]
pub struct HecEncoder {
    /// Sourcetype table.
    pub table: SourcetypeTable,
    /// A sourcetype forced for every event (overrides the table).
    pub sourcetype: Option<String>,
    /// `index` member (must be allowed for the token), or none for the token's default.
    pub index: Option<String>,
    /// `source` member.
    pub source: Option<String>,
    /// `host` member.
    pub host: HostSource,
    /// `event` member.
    pub body: EventBody,
    /// Maximum size of one encoded event, in bytes, including the envelope.
    pub max_event_bytes: usize,
    /// What to do with larger events.
    pub oversize: OversizePolicy,
}

/// The smallest `max_event_bytes` the encoder accepts: room for the envelope and a body.
pub const MIN_EVENT_BYTES: usize = 1024;

/// What happened to one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// One event, complete.
    Whole,
    /// One event whose body was cut from `original_bytes` to `kept_bytes` (of body text).
    Truncated {
        /// Size of the full body.
        original_bytes: usize,
        /// Body bytes kept.
        kept_bytes: usize,
    },
    /// `parts` events, each holding a piece of the body.
    Split {
        /// Number of events written.
        parts: usize,
    },
}

impl HecEncoder {
    /// An encoder with the built-in table and defaults: original body, no index/source/host,
    /// 1 MB events, truncate oversize events.
    pub fn with_defaults() -> Result<Self, HecError> {
        Ok(HecEncoder {
            table: SourcetypeTable::builtin()?,
            sourcetype: None,
            index: None,
            source: None,
            host: HostSource::Omit,
            body: EventBody::Original,
            max_event_bytes: 1_000_000,
            oversize: OversizePolicy::Truncate,
        })
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), HecError> {
        if self.max_event_bytes < MIN_EVENT_BYTES {
            return Err(HecError::Setting {
                setting: "max_event_bytes",
                message: format!(
                    "{} is below the minimum of {MIN_EVENT_BYTES}",
                    self.max_event_bytes
                ),
            });
        }
        Ok(())
    }

    /// Appends the event(s) for `record` to `out`, each followed by `\n`, and pushes the end
    /// offset (in `out`, after the newline) of each event onto `ends`. On `Err` (policy
    /// `Reject`), `out` and `ends` are left as they were and the error is the reason.
    pub fn encode(
        &self,
        record: &Record,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> Result<Encoded, String> {
        let start = out.len();
        let mut body = Vec::new();
        self.write_body(record, &mut body);
        self.write_envelope(record, &[], out);
        out.extend_from_slice(&body);
        out.extend_from_slice(b"}\n");
        if out.len() - start <= self.max_event_bytes {
            ends.push(out.len());
            return Ok(Encoded::Whole);
        }
        out.truncate(start);
        match self.oversize {
            OversizePolicy::Reject => Err(format!(
                "event of {} bytes exceeds max_event_bytes {} (oversize policy: reject)",
                body.len(),
                self.max_event_bytes
            )),
            OversizePolicy::Truncate => {
                let body_text = String::from_utf8_lossy(&body);
                let total = body_text.len().to_string();
                let extra = [
                    ("azlog_original_bytes", total.as_str()),
                    ("azlog_truncated", "true"),
                ];
                let budget = self.body_budget(record, &extra);
                let kept = prefix_within(&body_text, budget);
                self.write_envelope(record, &extra, out);
                write_json_str(&body_text[..kept], out);
                out.extend_from_slice(b"}\n");
                ends.push(out.len());
                Ok(Encoded::Truncated {
                    original_bytes: body_text.len(),
                    kept_bytes: kept,
                })
            }
            OversizePolicy::Split => {
                let body_text = String::from_utf8_lossy(&body);
                let split_id = format!("{:016x}", fnv1a(&body, record.timestamp_ns));
                // Budget with the widest possible part label (n/n with n up to 6 digits).
                let label_room = "999999/999999";
                let extra = [("azlog_part", label_room), ("azlog_split_id", &split_id)];
                let budget = self.body_budget(record, &extra);
                let mut pieces = Vec::new();
                let mut rest: &str = &body_text;
                while !rest.is_empty() {
                    let n = prefix_within(rest, budget).max(first_char_len(rest));
                    pieces.push(&rest[..n]);
                    rest = &rest[n..];
                }
                let parts = pieces.len();
                for (i, piece) in pieces.iter().enumerate() {
                    let label = format!("{}/{parts}", i + 1);
                    let extra = [
                        ("azlog_part", label.as_str()),
                        ("azlog_split_id", &split_id),
                    ];
                    self.write_envelope(record, &extra, out);
                    write_json_str(piece, out);
                    out.extend_from_slice(b"}\n");
                    ends.push(out.len());
                }
                Ok(Encoded::Split { parts })
            }
        }
    }

    /// Bytes of escaped body text that fit next to the envelope (with `extra` fields).
    fn body_budget(&self, record: &Record, extra: &[(&str, &str)]) -> usize {
        let mut env = Vec::new();
        self.write_envelope(record, extra, &mut env);
        // + `""` around the string body + `}\n`.
        self.max_event_bytes.saturating_sub(env.len() + 4).max(64)
    }

    /// Writes the event body (JSON) into `out`.
    fn write_body(&self, record: &Record, out: &mut Vec<u8>) {
        match self.body {
            EventBody::Original if !record.original.trim().is_empty() => {
                out.extend_from_slice(record.original.trim().as_bytes())
            }
            EventBody::Original => write_ecs_json(
                record,
                EcsOptions {
                    include_original: false,
                },
                out,
            ),
            EventBody::Ecs { include_original } => {
                write_ecs_json(record, EcsOptions { include_original }, out)
            }
        }
    }

    /// Writes `{"time":..,...,"fields":{..},"event":` (everything before the body).
    fn write_envelope(&self, record: &Record, extra: &[(&str, &str)], out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":");
        write_epoch_seconds_ms(record.timestamp_ns, out);
        let host = match &self.host {
            HostSource::Omit => None,
            HostSource::Fixed(h) => Some(h.as_str()),
            HostSource::Field(key) => record.get(key).and_then(|v| match v {
                Value::Str(s) if !s.is_empty() => Some(s.as_str()),
                _ => None,
            }),
        };
        if let Some(h) = host {
            out.extend_from_slice(b",\"host\":");
            write_json_str(h, out);
        }
        if let Some(s) = &self.source {
            out.extend_from_slice(b",\"source\":");
            write_json_str(s, out);
        }
        out.extend_from_slice(b",\"sourcetype\":");
        let st = match &self.sourcetype {
            Some(s) => s.as_str(),
            None => self.table.sourcetype_for(record),
        };
        write_json_str(st, out);
        if let Some(i) = &self.index {
            out.extend_from_slice(b",\"index\":");
            write_json_str(i, out);
        }
        let mut first = true;
        let mut open_fields = |out: &mut Vec<u8>| {
            out.extend_from_slice(if first { b",\"fields\":{" } else { b"," });
            first = false;
        };
        for (key, name) in &self.table.indexed_fields {
            let Some(value) = record.get(key) else {
                continue;
            };
            match value {
                Value::Null | Value::Json(_) => continue,
                Value::List(items) => {
                    open_fields(out);
                    write_json_str(name, out);
                    out.extend_from_slice(b":[");
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_json_str(item, out);
                    }
                    out.push(b']');
                }
                other => {
                    open_fields(out);
                    write_json_str(name, out);
                    out.push(b':');
                    write_json_str(&other.to_text(), out);
                }
            }
        }
        for (name, value) in extra {
            open_fields(out);
            write_json_str(name, out);
            out.push(b':');
            write_json_str(value, out);
        }
        if !first {
            out.push(b'}');
        }
        out.extend_from_slice(b",\"event\":");
    }
}

/// Appends epoch seconds with a 3-digit millisecond fraction (`1718000000.123`).
pub fn write_epoch_seconds_ms(ns: i64, out: &mut Vec<u8>) {
    let ms = ns.div_euclid(1_000_000);
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    out.extend_from_slice(format!("{secs}.{frac:03}").as_bytes());
}

/// Length of `c` once JSON-escaped by [`write_json_str`].
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' => 2,
        '\u{0}'..='\u{1f}' | '\u{7f}' => 6,
        _ => c.len_utf8(),
    }
}

/// The longest prefix of `s` (in bytes, on a char boundary) whose escaped form fits `budget`.
fn prefix_within(s: &str, budget: usize) -> usize {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        let l = escaped_len(c);
        if used + l > budget {
            return i;
        }
        used += l;
    }
    s.len()
}

fn first_char_len(s: &str) -> usize {
    s.chars().next().map_or(0, char::len_utf8)
}

/// FNV-1a over the body and timestamp: a stable id tying split parts together.
fn fnv1a(bytes: &[u8], ts: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes.iter().chain(ts.to_le_bytes().iter()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{RString, RVec};
    use azlog_plugin_api::{Field, Position, Text};

    fn rec(fields: Vec<(&str, Value)>, original: &str) -> Record {
        Record::from_fields(
            1_718_000_000_123_456_789,
            fields
                .into_iter()
                .map(|(k, v)| Field {
                    key: Text::from(k),
                    value: v,
                })
                .collect(),
            RString::from(original),
            Position::default(),
        )
    }

    fn events(enc: &HecEncoder, r: &Record) -> (Result<Encoded, String>, Vec<serde_json::Value>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        let res = enc.encode(r, &mut out, &mut ends);
        let mut evs = Vec::new();
        let mut start = 0;
        for end in ends {
            assert_eq!(out[end - 1], b'\n');
            evs.push(serde_json::from_slice(&out[start..end]).expect("each event is valid JSON"));
            start = end;
        }
        assert_eq!(start, out.len());
        (res, evs)
    }

    #[test]
    fn envelope_time_sourcetype_fields_and_original_body() {
        let mut enc = HecEncoder::with_defaults().expect("builtin table");
        enc.index = Some("azure".into());
        enc.source = Some("azlog:eh/ns/hub".into());
        enc.host = HostSource::Field("host.name".into());
        let r = rec(
            vec![
                ("event.dataset", "azure.signinlogs".into()),
                ("azure.tenant_id", "t-1".into()),
                ("host.name", "h1".into()),
                (
                    "event.category",
                    Value::List(RVec::from(vec![Text::from("authentication")])),
                ),
            ],
            r#"{"category":"SignInLogs","properties":{"x":1}}"#,
        );
        let (res, evs) = events(&enc, &r);
        assert_eq!(res, Ok(Encoded::Whole));
        assert_eq!(evs.len(), 1);
        let e = &evs[0];
        assert_eq!(e["time"].as_f64(), Some(1_718_000_000.123));
        assert_eq!(e["sourcetype"], "azure:monitor:aad");
        assert_eq!(e["index"], "azure");
        assert_eq!(e["source"], "azlog:eh/ns/hub");
        assert_eq!(e["host"], "h1");
        assert_eq!(e["fields"]["tenant_id"], "t-1");
        assert_eq!(e["fields"]["event_dataset"], "azure.signinlogs");
        assert_eq!(e["event"]["properties"]["x"], 1);
    }

    #[test]
    fn time_text_has_exactly_three_fraction_digits() {
        let mut out = Vec::new();
        write_epoch_seconds_ms(1_433_188_255_500_000_000, &mut out);
        assert_eq!(out, b"1433188255.500");
        out.clear();
        write_epoch_seconds_ms(-1, &mut out);
        assert_eq!(out, b"-1.999");
    }

    #[test]
    fn sourcetype_by_dataset_then_category_then_default() {
        let t = SourcetypeTable::builtin().expect("builtin");
        let by_ds = rec(vec![("event.dataset", "azure.activitylogs".into())], "{}");
        assert_eq!(t.sourcetype_for(&by_ds), "azure:monitor:activity");
        let by_cat = rec(vec![("azure.category", "SecurityAlert".into())], "{}");
        assert_eq!(t.sourcetype_for(&by_cat), "mscs:azure:security:alert");
        let neither = rec(vec![("event.dataset", "something.else".into())], "{}");
        assert_eq!(t.sourcetype_for(&neither), "mscs:azure:eventhub");
        assert!(SourcetypeTable::from_toml("version = 2\ndefault = \"x\"", "t").is_err());
        assert!(SourcetypeTable::from_toml("version = 1\ndefault = \"\"", "t").is_err());
    }

    #[test]
    fn ecs_body_when_asked_or_when_no_original() {
        let mut enc = HecEncoder::with_defaults().expect("builtin");
        let r = rec(vec![("user.name", "bob".into())], "");
        let (_, evs) = events(&enc, &r);
        assert_eq!(evs[0]["event"]["user"]["name"], "bob");
        enc.body = EventBody::Ecs {
            include_original: false,
        };
        let r = rec(vec![("user.name", "al\"ice".into())], r#"{"a":1}"#);
        let (_, evs) = events(&enc, &r);
        assert_eq!(evs[0]["event"]["user"]["name"], "al\"ice");
        assert!(evs[0]["event"].get("a").is_none());
    }

    fn big_record() -> Record {
        let payload: String = "ü\"x\n".repeat(1500); // 7500 bytes, escapes inflate it
        rec(
            vec![("event.dataset", "azure.auditlogs".into())],
            &format!("{{\"p\":{}}}", serde_json::Value::String(payload)),
        )
    }

    #[test]
    fn oversize_truncate_is_marked_and_fits() {
        let mut enc = HecEncoder::with_defaults().expect("builtin");
        enc.max_event_bytes = 2048;
        let r = big_record();
        let mut out = Vec::new();
        let mut ends = Vec::new();
        let res = enc.encode(&r, &mut out, &mut ends).expect("truncate");
        assert!(out.len() <= 2048, "{} bytes", out.len());
        let Encoded::Truncated {
            original_bytes,
            kept_bytes,
        } = res
        else {
            panic!("expected truncation, got {res:?}");
        };
        assert_eq!(original_bytes, r.original.len());
        let e: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(e["fields"]["azlog_truncated"], "true");
        assert_eq!(
            e["fields"]["azlog_original_bytes"],
            r.original.len().to_string()
        );
        let body = e["event"].as_str().expect("string body");
        assert_eq!(body.len(), kept_bytes);
        assert!(r.original.starts_with(body));
        assert!(
            kept_bytes > 1000,
            "should use most of the budget: {kept_bytes}"
        );
    }

    #[test]
    fn oversize_split_reassembles_and_every_part_fits() {
        let mut enc = HecEncoder::with_defaults().expect("builtin");
        enc.max_event_bytes = 2048;
        enc.oversize = OversizePolicy::Split;
        let r = big_record();
        let (res, evs) = events(&enc, &r);
        let Ok(Encoded::Split { parts }) = res else {
            panic!("expected split, got {res:?}");
        };
        assert_eq!(parts, evs.len());
        assert!(parts > 3);
        let mut joined = String::new();
        let id = evs[0]["fields"]["azlog_split_id"].clone();
        for (i, e) in evs.iter().enumerate() {
            assert!(serde_json::to_vec(e).expect("ser").len() <= 2048);
            assert_eq!(e["fields"]["azlog_part"], format!("{}/{parts}", i + 1));
            assert_eq!(e["fields"]["azlog_split_id"], id);
            assert_eq!(e["sourcetype"], "azure:monitor:aad");
            joined.push_str(e["event"].as_str().expect("string part"));
        }
        assert_eq!(joined, r.original.as_str());
    }

    #[test]
    fn oversize_reject_leaves_output_untouched() {
        let mut enc = HecEncoder::with_defaults().expect("builtin");
        enc.max_event_bytes = 2048;
        enc.oversize = OversizePolicy::Reject;
        let mut out = b"prev\n".to_vec();
        let mut ends = vec![5];
        let err = enc
            .encode(&big_record(), &mut out, &mut ends)
            .expect_err("reject");
        assert!(err.contains("exceeds max_event_bytes 2048"), "{err}");
        assert_eq!(out, b"prev\n");
        assert_eq!(ends, vec![5]);
        enc.max_event_bytes = 10;
        assert!(enc.validate().is_err());
    }
}
