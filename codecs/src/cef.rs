//! ArcSight Common Event Format (`CEF:0`), per the CEF Implementation Standard document v27.
//!
//! [`encode`] renders one canonical [`Record`] as one CEF line (no syslog prefix, no newline)
//! using a compiled field map ([`CefConfig`], from `schemas/sinks/cef.toml` or a user file):
//!
//! `CEF:0|Vendor|Product|Version|Signature|Name|Severity|key=value key=value ...`
//!
//! - Vendor/Product/Version per `event.dataset`; Signature (Device Event Class ID) from
//!   `event.action`; Name; Severity 0–10 from `event.severity` (clamped; string severities
//!   `Unknown|Low|Medium|High|Very-High` pass through).
//! - Extension keys are checked against the v27 dictionary at load time (producer keys only) and
//!   their documented maximum lengths are enforced with a visible truncation marker (`…`).
//! - Escaping per v27 (see [`escape`]); `rt` and other timestamps as epoch milliseconds;
//!   IPv6 values of `src`/`dst`/`dvc` go to `c6a2`/`c6a3`/`c6a1` with their standard labels.
//! - Values that do not fit the key's type (a non-numeric port, garbage in an IP key) are
//!   skipped and counted in [`EncodeStats::skipped`].
pub mod dictionary;
pub mod escape;
pub mod map;
pub mod source;
pub mod text;
pub mod time;

use std::net::IpAddr;

use azlog_plugin_api::{Record, Value};

use escape::{escape_extension, escape_header};
pub use map::{CefOptions, MapError, BUILTIN_CEF_MAP};
use map::{Device, Extension, Render, NAME_MAX, SIGNATURE_MAX};
use source::{Found, KeyTable, Lookup, Slot};
use text::{for_each_piece, write_limited};

/// A compiled CEF field map plus codec options. Build it once with [`CefConfig::load`] or
/// [`CefConfig::builtin`], then call [`encode`] per record.
#[derive(Debug, Clone)]
pub struct CefConfig {
    /// Every field key the map reads, resolved per record in one pass.
    pub(crate) keys: KeyTable,
    /// The slot of `event.dataset` (device per dataset).
    pub(crate) dataset_key: u32,
    pub(crate) default_device: Device,
    pub(crate) datasets: Vec<Device>,
    pub(crate) signature: Vec<Slot>,
    pub(crate) name: Vec<Slot>,
    pub(crate) severity: Vec<Slot>,
    pub(crate) default_severity: String,
    pub(crate) default_signature: String,
    pub(crate) extensions: Vec<Extension>,
    pub(crate) marker: String,
}

/// What happened while encoding one record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodeStats {
    /// Fields cut at their documented maximum length (marked with the truncation marker).
    pub truncated: u32,
    /// Mapped fields whose value did not fit the key's type and were left out.
    pub skipped: u32,
}

impl CefConfig {
    fn device_for(&self, record: &Lookup<'_, '_>) -> &Device {
        if let Some(ds) = record.get(self.dataset_key).and_then(Value::as_str) {
            if let Some(d) = self.datasets.iter().find(|d| d.dataset == ds) {
                return d;
            }
        }
        &self.default_device
    }
}

/// Appends the CEF line for `record` to `out` (no trailing newline).
pub fn encode(record: &Record, cfg: &CefConfig, out: &mut String) -> EncodeStats {
    cfg.keys
        .with_lookup(record, |record| encode_resolved(record, cfg, out))
}

fn encode_resolved(record: &Lookup<'_, '_>, cfg: &CefConfig, out: &mut String) -> EncodeStats {
    let mut stats = EncodeStats::default();
    let marker = cfg.marker.as_str();
    out.push_str("CEF:0|");
    out.push_str(&cfg.device_for(record).escaped);

    match record.first(&cfg.signature) {
        Some(found) => {
            stats.truncated += u32::from(write_found(
                found,
                Some(SIGNATURE_MAX),
                marker,
                &mut escape_header,
                out,
            ))
        }
        None => out.push_str(&cfg.default_signature),
    }
    out.push('|');
    match record
        .first(&cfg.name)
        .or_else(|| record.first(&cfg.signature))
    {
        Some(found) => {
            stats.truncated += u32::from(write_found(
                found,
                Some(NAME_MAX),
                marker,
                &mut escape_header,
                out,
            ))
        }
        None => out.push_str(&cfg.default_signature),
    }
    out.push('|');
    write_severity(record, cfg, out);
    out.push('|');

    let mut first_pair = true;
    for ext in &cfg.extensions {
        let Some(found) = record.first(&ext.sources) else {
            continue;
        };
        let start = out.len();
        let ok = write_extension(ext, found, marker, out, &mut stats);
        if !ok {
            out.truncate(start);
            stats.skipped += 1;
        } else if first_pair {
            // The first pair follows the header's last `|` directly.
            out.remove(start);
            first_pair = false;
        }
    }
    stats
}

fn write_found(
    found: Found<'_>,
    max: Option<u32>,
    marker: &str,
    escape: &mut impl FnMut(&str, &mut String),
    out: &mut String,
) -> bool {
    match found {
        Found::TimestampMs(ms) => {
            out.push_str(itoa::Buffer::new().format(ms));
            false
        }
        Found::Value(v) => write_limited(v, max, marker, escape, out),
    }
}

fn write_severity(record: &Lookup<'_, '_>, cfg: &CefConfig, out: &mut String) {
    let text = match record.first(&cfg.severity) {
        Some(Found::Value(Value::Int(i))) => Some((*i).clamp(0, 10)),
        Some(Found::Value(Value::Float(f))) if f.is_finite() => {
            Some(f.round().clamp(0.0, 10.0) as i64)
        }
        Some(Found::Value(Value::Str(s))) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(i) => Some(i.clamp(0, 10)),
                Err(_) => {
                    if let Some(word) = ["Unknown", "Low", "Medium", "High", "Very-High"]
                        .iter()
                        .find(|w| w.eq_ignore_ascii_case(s))
                    {
                        out.push_str(word);
                        return;
                    }
                    None
                }
            }
        }
        _ => None,
    };
    match text {
        Some(i) => out.push_str(itoa::Buffer::new().format(i)),
        None => out.push_str(&cfg.default_severity),
    }
}

/// Writes ` key=value` for one extension; false when the value does not fit the key's type.
fn write_extension(
    ext: &Extension,
    found: Found<'_>,
    marker: &str,
    out: &mut String,
    stats: &mut EncodeStats,
) -> bool {
    match ext.render {
        Render::Text => {
            out.push_str(&ext.prefix);
            stats.truncated += u32::from(write_found(
                found,
                ext.max_len,
                marker,
                &mut escape_extension,
                out,
            ));
            true
        }
        Render::Timestamp => {
            let ms = match found {
                Found::TimestampMs(ms) => Some(ms),
                Found::Value(Value::Int(i)) => Some(*i),
                Found::Value(Value::Str(s)) => time::parse_rfc3339_ms(s.trim()),
                Found::Value(_) => None,
            };
            let Some(ms) = ms else { return false };
            out.push_str(&ext.prefix);
            out.push_str(itoa::Buffer::new().format(ms));
            true
        }
        Render::Int { min, max } => {
            let i = match found {
                Found::TimestampMs(ms) => Some(ms),
                Found::Value(Value::Int(i)) => Some(*i),
                Found::Value(Value::Str(s)) => s.trim().parse::<i64>().ok(),
                Found::Value(_) => None,
            };
            match i {
                Some(i) if (min..=max).contains(&i) => {
                    out.push_str(&ext.prefix);
                    out.push_str(itoa::Buffer::new().format(i));
                    true
                }
                _ => false,
            }
        }
        Render::Double => {
            let x = match found {
                Found::Value(Value::Float(f)) => Some(*f),
                Found::Value(Value::Int(i)) => Some(*i as f64),
                Found::Value(Value::Str(s)) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match x {
                Some(x) if x.is_finite() => {
                    out.push_str(&ext.prefix);
                    out.push_str(ryu::Buffer::new().format_finite(x));
                    true
                }
                _ => false,
            }
        }
        Render::Ipv4 | Render::Ipv6 | Render::Ip => {
            let Found::Value(Value::Str(s)) = found else {
                return false;
            };
            let Ok(ip) = s.trim().parse::<IpAddr>() else {
                return false;
            };
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            let prefix = match (ext.render, ip) {
                (Render::Ipv4, IpAddr::V4(_)) | (Render::Ip, _) | (Render::Ipv6, IpAddr::V6(_)) => {
                    &ext.prefix
                }
                (Render::Ipv4, IpAddr::V6(_)) => match &ext.v6_prefix {
                    Some(p) => p,
                    None => return false,
                },
                _ => return false,
            };
            out.push_str(prefix);
            push_display(out, &ip);
            true
        }
        Render::Mac => {
            let Found::Value(v) = found else { return false };
            let mut ok = true;
            for_each_piece(v, &mut |p| ok &= is_mac(p));
            if !ok {
                return false;
            }
            out.push_str(&ext.prefix);
            for_each_piece(v, &mut |p| out.push_str(p));
            true
        }
    }
}

fn push_display(out: &mut String, v: &impl std::fmt::Display) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "{v}");
}

/// `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff`.
fn is_mac(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 17
        && b.iter().enumerate().all(|(i, &c)| {
            if i % 3 == 2 {
                c == b':' || c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}
