//! IBM QRadar Log Event Extended Format (LEEF 2.0 by default, 1.0 selectable).
//!
//! [`encode`] renders one canonical [`Record`] as one LEEF line (no syslog prefix, no newline):
//!
//! - 2.0: `LEEF:2.0|Vendor|Product|Version|EventID|<delimiter>|key=value<delimiter>key=value…`
//! - 1.0: `LEEF:1.0|Vendor|Product|Version|EventID|key=value<TAB>key=value…`
//!
//! The delimiter (2.0) is configurable: tab (default, written as `x09` in the header), `^`, or
//! any character given literally or in hex (`x5E`, `0x7C` is refused). LEEF defines no escape
//! syntax, so the delimiter, CR and LF in values and `|` in header fields are replaced (see
//! [`sanitize`]). `devTime` is epoch milliseconds (13 digits, which needs no `devTimeFormat`);
//! an instant whose epoch-ms form is not 13 digits long is written as
//! `yyyy-MM-dd'T'HH:mm:ss.SSSZ` with a matching `devTimeFormat`. Attributes come from
//! `schemas/sinks/leef.toml` (checked against the predefined attributes: `cat`, `sev`, `src`,
//! `dst`, `usrName`, `identSrc` …); documented lengths are enforced with a truncation marker.
pub mod attributes;
pub mod map;
pub mod sanitize;

use std::net::IpAddr;

use azlog_plugin_api::{Record, Value};

use crate::cef::source::{Found, KeyTable, Lookup, Slot};
use crate::cef::text::{for_each_piece, write_limited};
use crate::cef::time::{parse_rfc3339_ms, Civil};
pub use crate::cef::EncodeStats;
pub use map::{parse_delimiter, LeefOptions, BUILTIN_LEEF_MAP};
use map::{Attribute, Device, Render, EVENT_ID_MAX};
use sanitize::{sanitize_header, Sanitizer};

/// The LEEF version written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeefVersion {
    /// `LEEF:1.0`: tab-separated attributes, no delimiter field.
    V1,
    /// `LEEF:2.0`: the header names the attribute delimiter.
    V2,
}

/// A compiled LEEF field map plus codec options. Build it once, then call [`encode`] per record.
#[derive(Debug, Clone)]
pub struct LeefConfig {
    /// Every field key the map reads, resolved per record in one pass.
    pub(crate) keys: KeyTable,
    /// The slot of `event.dataset` (device per dataset).
    pub(crate) dataset_key: u32,
    pub(crate) version: LeefVersion,
    pub(crate) delimiter: char,
    pub(crate) header_start: String,
    pub(crate) delimiter_field: String,
    pub(crate) default_device: Device,
    pub(crate) datasets: Vec<Device>,
    pub(crate) event_id: Vec<Slot>,
    pub(crate) default_event_id: String,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) sanitizer: Sanitizer,
    pub(crate) replacement: String,
    pub(crate) marker: String,
}

impl LeefConfig {
    /// The LEEF version this configuration writes.
    pub fn version(&self) -> LeefVersion {
        self.version
    }

    /// The attribute delimiter.
    pub fn delimiter(&self) -> char {
        self.delimiter
    }

    fn device_for(&self, record: &Lookup<'_, '_>) -> &Device {
        if let Some(ds) = record.get(self.dataset_key).and_then(Value::as_str) {
            if let Some(d) = self.datasets.iter().find(|d| d.dataset == ds) {
                return d;
            }
        }
        &self.default_device
    }
}

/// Appends the LEEF line for `record` to `out` (no trailing newline).
pub fn encode(record: &Record, cfg: &LeefConfig, out: &mut String) -> EncodeStats {
    cfg.keys
        .with_lookup(record, |record| encode_resolved(record, cfg, out))
}

fn encode_resolved(record: &Lookup<'_, '_>, cfg: &LeefConfig, out: &mut String) -> EncodeStats {
    let mut stats = EncodeStats::default();
    out.push_str(&cfg.header_start);
    out.push_str(&cfg.device_for(record).sanitized);
    match record.first(&cfg.event_id) {
        Some(Found::Value(v)) => {
            let repl = cfg.replacement.as_str();
            stats.truncated += u32::from(write_limited(
                v,
                Some(EVENT_ID_MAX),
                &cfg.marker,
                &mut |s: &str, o: &mut String| sanitize_header(s, repl, o),
                out,
            ));
        }
        Some(Found::TimestampMs(ms)) => out.push_str(itoa::Buffer::new().format(ms)),
        None => out.push_str(&cfg.default_event_id),
    }
    out.push('|');
    out.push_str(&cfg.delimiter_field);

    let mut first_attr = true;
    for attr in &cfg.attributes {
        let Some(found) = record.first(&attr.sources) else {
            continue;
        };
        let start = out.len();
        if !first_attr {
            out.push(cfg.delimiter);
        }
        if write_attribute(attr, found, cfg, out, &mut stats) {
            first_attr = false;
        } else {
            out.truncate(start);
            stats.skipped += 1;
        }
    }
    stats
}

fn write_attribute(
    attr: &Attribute,
    found: Found<'_>,
    cfg: &LeefConfig,
    out: &mut String,
    stats: &mut EncodeStats,
) -> bool {
    let int_of = |found: Found<'_>| match found {
        Found::TimestampMs(ms) => Some(ms),
        Found::Value(Value::Int(i)) => Some(*i),
        Found::Value(Value::Str(s)) => s.trim().parse::<i64>().ok(),
        Found::Value(Value::Float(f)) if f.is_finite() => Some(f.round() as i64),
        Found::Value(_) => None,
    };
    match attr.render {
        Render::Text | Render::IntOrKeyword => {
            out.push_str(&attr.prefix);
            match found {
                Found::TimestampMs(ms) => out.push_str(itoa::Buffer::new().format(ms)),
                Found::Value(v) => {
                    let san = &cfg.sanitizer;
                    stats.truncated += u32::from(write_limited(
                        v,
                        attr.max_len,
                        &cfg.marker,
                        &mut |s: &str, o: &mut String| san.value(s, o),
                        out,
                    ));
                }
            }
            true
        }
        Render::Date => {
            let ms = match found {
                Found::TimestampMs(ms) => Some(ms),
                Found::Value(Value::Int(i)) => Some(*i),
                Found::Value(Value::Str(s)) => parse_rfc3339_ms(s.trim()),
                Found::Value(_) => None,
            };
            let Some(ms) = ms else { return false };
            out.push_str(&attr.prefix);
            if (1_000_000_000_000..10_000_000_000_000).contains(&ms) {
                out.push_str(itoa::Buffer::new().format(ms));
            } else {
                write_iso_date(ms, out);
                out.push(cfg.delimiter);
                out.push_str("devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ");
            }
            true
        }
        Render::Int { min, max } => match int_of(found) {
            Some(i) if (min..=max).contains(&i) => {
                out.push_str(&attr.prefix);
                out.push_str(itoa::Buffer::new().format(i));
                true
            }
            _ => false,
        },
        Render::Severity => match int_of(found) {
            Some(i) => {
                out.push_str(&attr.prefix);
                out.push_str(itoa::Buffer::new().format(i.clamp(1, 10)));
                true
            }
            None => false,
        },
        Render::Ip => {
            let Found::Value(Value::Str(s)) = found else {
                return false;
            };
            match s.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    let ip = match ip {
                        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                        v4 => v4,
                    };
                    out.push_str(&attr.prefix);
                    use std::fmt::Write;
                    // Writing into a String cannot fail.
                    let _ = write!(out, "{ip}");
                    true
                }
                Err(_) => false,
            }
        }
        Render::Mac => {
            let Found::Value(v) = found else { return false };
            let mut ok = true;
            for_each_piece(v, &mut |p| {
                ok &= p.len() == 17
                    && p.bytes().enumerate().all(|(i, c)| {
                        if i % 3 == 2 {
                            c == b':' || c == b'-'
                        } else {
                            c.is_ascii_hexdigit()
                        }
                    })
            });
            if !ok {
                return false;
            }
            out.push_str(&attr.prefix);
            for_each_piece(v, &mut |p| out.push_str(p));
            true
        }
        Render::Bool => {
            let b = match found {
                Found::Value(Value::Bool(b)) => *b,
                Found::Value(Value::Str(s)) if s.trim().eq_ignore_ascii_case("true") => true,
                Found::Value(Value::Str(s)) if s.trim().eq_ignore_ascii_case("false") => false,
                _ => return false,
            };
            out.push_str(&attr.prefix);
            out.push_str(if b { "true" } else { "false" });
            true
        }
    }
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSS+0000` for instants whose epoch ms is not 13 digits long.
fn write_iso_date(ms: i64, out: &mut String) {
    use std::fmt::Write;
    let c = Civil::from_epoch_ms(ms);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.milli
    );
}
