//! The LEEF field map (`schemas/sinks/leef.toml`) and codec options: header sources, per-dataset
//! vendor/product, canonical dotted ECS key → LEEF attribute. Checked against the predefined LEEF
//! attributes at load time and compiled into a [`LeefConfig`].
use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::attributes::{self, AttrType};
use super::sanitize::{sanitize_header, Sanitizer};
use crate::cef::map::{field_map_text, MapError};
use crate::cef::source::{parse_all, KeyTable, Slot};
use crate::cef::text::{write_str_limited, DEFAULT_TRUNCATION_MARKER};
use crate::leef::{LeefConfig, LeefVersion};

/// The built-in LEEF field map, embedded at compile time.
pub const BUILTIN_LEEF_MAP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../schemas/sinks/leef.toml"
));

/// EventID is at most 255 characters (IBM "LEEF event components").
pub(crate) const EVENT_ID_MAX: u32 = 255;

/// Options of the LEEF codec as they appear in a sink's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeefOptions {
    /// `"2.0"` (default) or `"1.0"`.
    pub version: Option<String>,
    /// LEEF 2.0 attribute delimiter: one character (`^`), `tab`, or hex `x09` / `0x5E`
    /// (default tab). LEEF 1.0 always uses tab.
    pub delimiter: Option<String>,
    /// What replaces the delimiter, CR and LF in values and `|` in header fields (default one
    /// space). LEEF has no escape syntax, so these characters cannot be carried.
    pub replacement: Option<String>,
    /// A field map file replacing the built-in `schemas/sinks/leef.toml`.
    pub field_map: Option<String>,
    /// The marker appended to values cut at their documented maximum length (default `…`).
    pub truncation_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    header: HeaderFile,
    #[serde(default)]
    attribute: Vec<AttributeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderFile {
    vendor: String,
    product: String,
    version: String,
    event_id: Vec<String>,
    #[serde(default = "unknown")]
    default_event_id: String,
    #[serde(default)]
    dataset: BTreeMap<String, DeviceFile>,
}

fn unknown() -> String {
    "unknown".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceFile {
    vendor: Option<String>,
    product: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeFile {
    key: String,
    from: Vec<String>,
    #[serde(default)]
    custom: bool,
}

/// How an attribute value is checked and rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Render {
    Text,
    /// `devTime`-style: epoch milliseconds.
    Date,
    Int {
        min: i64,
        max: i64,
    },
    /// `sev`: clamped to 1–10 rather than refused.
    Severity,
    IntOrKeyword,
    Ip,
    Mac,
    Bool,
}

/// One compiled attribute mapping.
#[derive(Debug, Clone)]
pub(crate) struct Attribute {
    /// `key=` (the delimiter is written before it, except for the first attribute).
    pub(crate) prefix: String,
    pub(crate) render: Render,
    pub(crate) max_len: Option<u32>,
    pub(crate) sources: Vec<Slot>,
}

/// The pre-sanitized `Vendor|Product|Version|` part of the header for one dataset.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) dataset: String,
    pub(crate) sanitized: String,
}

/// Parses a delimiter setting: one character, `tab`, `\t`, or `x`/`0x` + 1–4 hex digits.
pub fn parse_delimiter(s: &str) -> Result<char, String> {
    let lower = s.to_ascii_lowercase();
    let c = if lower == "tab" || s == "\\t" {
        '\t'
    } else if let Some(hex) = lower
        .strip_prefix("0x")
        .or_else(|| lower.strip_prefix('x'))
        .filter(|h| (1..=4).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        let code = u32::from_str_radix(hex, 16).map_err(|e| format!("bad hex delimiter: {e}"))?;
        char::from_u32(code).ok_or_else(|| format!("delimiter {s}: not a character"))?
    } else {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => c,
            _ => {
                return Err(format!(
                    "delimiter `{s}`: expected one character, `tab`, or hex like x09 / 0x5E"
                ))
            }
        }
    };
    if c == '=' || c == '|' || c == '\r' || c == '\n' || c == '\0' || c.is_alphanumeric() {
        return Err(format!(
            "delimiter {c:?} cannot separate LEEF attributes (it is `=`, `|`, a line break, NUL or \
             alphanumeric)"
        ));
    }
    Ok(c)
}

impl LeefConfig {
    /// The built-in field map with default options (LEEF 2.0, tab delimiter).
    pub fn builtin() -> Result<LeefConfig, MapError> {
        LeefConfig::from_toml_str(
            BUILTIN_LEEF_MAP,
            "built-in leef.toml",
            &LeefOptions::default(),
        )
    }

    /// Loads the field map named in `options` (or the built-in one) and applies the options.
    pub fn load(options: &LeefOptions) -> Result<LeefConfig, MapError> {
        let (text, origin) = field_map_text(
            options.field_map.as_deref(),
            BUILTIN_LEEF_MAP,
            "built-in leef.toml",
        )?;
        LeefConfig::from_toml_str(&text, &origin, options)
    }

    /// Compiles a field map from TOML text; `origin` names it in error messages.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        options: &LeefOptions,
    ) -> Result<LeefConfig, MapError> {
        let invalid = |message: String| MapError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let version = match options.version.as_deref().map(str::trim) {
            None | Some("2.0") | Some("2") => LeefVersion::V2,
            Some("1.0") | Some("1") => LeefVersion::V1,
            Some(other) => {
                return Err(invalid(format!(
                    "LEEF version `{other}`: expected \"1.0\" or \"2.0\""
                )))
            }
        };
        let delimiter = match options.delimiter.as_deref() {
            None => '\t',
            Some(d) => parse_delimiter(d).map_err(invalid)?,
        };
        if version == LeefVersion::V1 && delimiter != '\t' {
            return Err(invalid(
                "LEEF 1.0 has no delimiter field and always separates attributes with a tab; \
                 use version \"2.0\" for another delimiter"
                    .to_string(),
            ));
        }
        let replacement = options
            .replacement
            .clone()
            .unwrap_or_else(|| " ".to_string());
        if replacement
            .chars()
            .any(|c| c == delimiter || c == '|' || c.is_control())
        {
            return Err(invalid(format!(
                "replacement {replacement:?} must not contain the delimiter, `|` or control characters"
            )));
        }
        let marker = options
            .truncation_marker
            .clone()
            .unwrap_or_else(|| DEFAULT_TRUNCATION_MARKER.to_string());
        let sanitizer = Sanitizer::new(delimiter, &replacement);

        let file: MapFile = toml::from_str(text).map_err(|source| MapError::Toml {
            origin: origin.to_string(),
            source,
        })?;
        let h = &file.header;
        let device = |dataset: &str, d: Option<&DeviceFile>| {
            let vendor = d.and_then(|d| d.vendor.as_deref()).unwrap_or(&h.vendor);
            let product = d.and_then(|d| d.product.as_deref()).unwrap_or(&h.product);
            let version = d.and_then(|d| d.version.as_deref()).unwrap_or(&h.version);
            let mut sanitized = String::new();
            for v in [vendor, product, version] {
                sanitize_header(v.trim(), &replacement, &mut sanitized);
                sanitized.push('|');
            }
            Device {
                dataset: dataset.to_string(),
                sanitized,
            }
        };
        let default_device = device("", None);
        let datasets = h
            .dataset
            .iter()
            .map(|(name, d)| device(name, Some(d)))
            .collect();
        let mut keys = KeyTable::default();
        let dataset_key = keys.slot("event.dataset");
        let event_id = keys.compile(&parse_all(&h.event_id, "header.event_id").map_err(invalid)?);
        let mut default_event_id = String::new();
        write_str_limited(
            &h.default_event_id,
            Some(EVENT_ID_MAX),
            &marker,
            &mut |s: &str, out: &mut String| sanitize_header(s, &replacement, out),
            &mut default_event_id,
        );

        let mut used = BTreeSet::new();
        let mut attrs = Vec::with_capacity(file.attribute.len());
        for (i, a) in file.attribute.iter().enumerate() {
            let what = format!("[[attribute]] #{} (key `{}`)", i + 1, a.key);
            if a.key.is_empty()
                || !a
                    .key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(invalid(format!(
                    "{what}: LEEF keys are single alphanumeric words"
                )));
            }
            if !used.insert(a.key.clone()) {
                return Err(invalid(format!("{what}: key mapped twice")));
            }
            let sources = keys.compile(&parse_all(&a.from, &what).map_err(invalid)?);
            let (render, max_len) = match attributes::lookup(&a.key) {
                Some(def) => {
                    if a.custom {
                        return Err(invalid(format!(
                            "{what}: `custom = true` but `{}` is a predefined LEEF attribute",
                            a.key
                        )));
                    }
                    if def.reserved {
                        return Err(invalid(format!(
                            "{what}: `{}` is reserved by the LEEF spec and not implemented by QRadar",
                            a.key
                        )));
                    }
                    let render = match def.ty {
                        AttrType::Str => Render::Text,
                        AttrType::Date => Render::Date,
                        AttrType::Int if a.key == "sev" => Render::Severity,
                        AttrType::Int => {
                            let (min, max) = def.range.unwrap_or((0, i64::MAX));
                            Render::Int { min, max }
                        }
                        AttrType::IntOrKeyword => Render::IntOrKeyword,
                        AttrType::Ip => Render::Ip,
                        AttrType::Mac => Render::Mac,
                        AttrType::Bool => Render::Bool,
                    };
                    (render, def.max_len)
                }
                None if a.custom => (Render::Text, None),
                None => {
                    return Err(invalid(format!(
                        "{what}: `{}` is not a predefined LEEF attribute \
                         (set `custom = true` for a custom key)",
                        a.key
                    )))
                }
            };
            attrs.push(Attribute {
                prefix: format!("{}=", a.key),
                render,
                max_len,
                sources,
            });
        }

        let mut header_start = String::from(match version {
            LeefVersion::V1 => "LEEF:1.0|",
            LeefVersion::V2 => "LEEF:2.0|",
        });
        header_start.shrink_to_fit();
        let delimiter_field = match version {
            LeefVersion::V1 => String::new(),
            LeefVersion::V2 if delimiter.is_ascii_graphic() => format!("{delimiter}|"),
            LeefVersion::V2 => format!("x{:02X}|", u32::from(delimiter)),
        };

        Ok(LeefConfig {
            keys,
            dataset_key,
            version,
            delimiter,
            header_start,
            delimiter_field,
            default_device,
            datasets,
            event_id,
            default_event_id,
            attributes: attrs,
            sanitizer,
            replacement,
            marker,
        })
    }
}
