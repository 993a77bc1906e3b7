//! The CEF field map (`schemas/sinks/cef.toml`): header sources, per-dataset device vendor and
//! product, and canonical dotted ECS key → CEF extension key. Checked against the CEF v27
//! dictionary at load time and compiled into a [`CefConfig`] whose hot path does no lookups it
//! can avoid (key prefixes, labels and device header fields are pre-escaped).
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use super::dictionary::{self, Audience, KeyType};
use super::escape::{escape_extension, escape_header};
use super::source::{parse_all, KeyTable, Slot};
use super::text::{write_str_limited, DEFAULT_TRUNCATION_MARKER};
use crate::cef::CefConfig;

/// The built-in CEF field map, embedded at compile time.
pub const BUILTIN_CEF_MAP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../schemas/sinks/cef.toml"
));

/// Documented header lengths (CEF v27 "Header Field Definitions").
pub(crate) const VENDOR_MAX: u32 = 63;
pub(crate) const PRODUCT_MAX: u32 = 63;
pub(crate) const VERSION_MAX: u32 = 31;
pub(crate) const SIGNATURE_MAX: u32 = 1023;
pub(crate) const NAME_MAX: u32 = 512;

/// A field map that could not be loaded; says which file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The file could not be read.
    #[error("cannot read sink field map {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not have the expected shape.
    #[error("sink field map {origin}: {source}")]
    Toml {
        /// The file (or `built-in cef.toml`).
        origin: String,
        /// The parser error, with line and column.
        source: toml::de::Error,
    },
    /// The file parses but a mapping is invalid.
    #[error("sink field map {origin}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// Options of the CEF codec as they appear in a sink's configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CefOptions {
    /// A field map file replacing the built-in `schemas/sinks/cef.toml`.
    pub field_map: Option<String>,
    /// The marker appended to values cut at their documented maximum length (default `…`).
    pub truncation_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    header: HeaderFile,
    #[serde(default)]
    extension: Vec<ExtensionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderFile {
    vendor: String,
    product: String,
    version: String,
    signature: Vec<String>,
    name: Vec<String>,
    severity: Vec<String>,
    #[serde(default = "unknown_severity")]
    default_severity: String,
    #[serde(default = "unknown_signature")]
    default_signature: String,
    #[serde(default)]
    dataset: BTreeMap<String, DeviceFile>,
}

fn unknown_severity() -> String {
    "Unknown".to_string()
}

fn unknown_signature() -> String {
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
struct ExtensionFile {
    key: String,
    from: Vec<String>,
    label: Option<String>,
    #[serde(default)]
    custom: bool,
}

/// The pre-escaped `Vendor|Product|Version|` part of the header for one dataset.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) dataset: String,
    pub(crate) escaped: String,
}

/// How an extension value is checked and rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Render {
    Text,
    Timestamp,
    Int { min: i64, max: i64 },
    Double,
    Ipv4,
    Ipv6,
    Ip,
    Mac,
}

/// One compiled extension mapping.
#[derive(Debug, Clone)]
pub(crate) struct Extension {
    /// ` [labelKey=label ]key=` with the label pre-escaped.
    pub(crate) prefix: String,
    /// For `src`/`dst`/`dvc`: the prefix used when the value is IPv6 (`c6a2`/`c6a3`/`c6a1` + label).
    pub(crate) v6_prefix: Option<String>,
    pub(crate) render: Render,
    pub(crate) max_len: Option<u32>,
    pub(crate) sources: Vec<Slot>,
}

/// CEF "Special Mappings": IPv6 addresses of these IPv4 keys go to a custom IPv6 key + label.
const IPV6_SPECIAL: &[(&str, &str, &str)] = &[
    ("dvc", "c6a1", "Device IPv6 Address"),
    ("src", "c6a2", "Source IPv6 Address"),
    ("dst", "c6a3", "Destination IPv6 Address"),
];

/// Keys that carry a `<key>Label` companion.
fn is_labelled(key: &str) -> bool {
    const LABELLED: &[&str] = &[
        "cs1",
        "cs2",
        "cs3",
        "cs4",
        "cs5",
        "cs6",
        "cn1",
        "cn2",
        "cn3",
        "cfp1",
        "cfp2",
        "cfp3",
        "cfp4",
        "c6a1",
        "c6a2",
        "c6a3",
        "c6a4",
        "deviceCustomDate1",
        "deviceCustomDate2",
        "flexString1",
        "flexString2",
        "flexDate1",
        "flexNumber1",
        "flexNumber2",
    ];
    LABELLED.contains(&key)
}

fn is_port_key(key: &str) -> bool {
    matches!(
        key,
        "spt" | "dpt" | "sourceTranslatedPort" | "destinationTranslatedPort"
    )
}

/// The text of a sink field map and the name errors give it: the file at `path`, or the
/// built-in copy when no path is configured. Shared by the CEF and LEEF loaders.
pub(crate) fn field_map_text(
    path: Option<&str>,
    builtin: &'static str,
    builtin_origin: &'static str,
) -> Result<(std::borrow::Cow<'static, str>, String), MapError> {
    match path {
        None => Ok((builtin.into(), builtin_origin.to_string())),
        Some(path) => {
            let text = std::fs::read_to_string(Path::new(path)).map_err(|source| MapError::Io {
                path: path.to_string(),
                source,
            })?;
            Ok((text.into(), path.to_string()))
        }
    }
}

fn valid_key_chars(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl CefConfig {
    /// The built-in field map with default options.
    pub fn builtin() -> Result<CefConfig, MapError> {
        CefConfig::from_toml_str(BUILTIN_CEF_MAP, "built-in cef.toml", &CefOptions::default())
    }

    /// Loads the field map named in `options` (or the built-in one) and applies the options.
    pub fn load(options: &CefOptions) -> Result<CefConfig, MapError> {
        let (text, origin) = field_map_text(
            options.field_map.as_deref(),
            BUILTIN_CEF_MAP,
            "built-in cef.toml",
        )?;
        CefConfig::from_toml_str(&text, &origin, options)
    }

    /// Compiles a field map from TOML text; `origin` names it in error messages.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        options: &CefOptions,
    ) -> Result<CefConfig, MapError> {
        let file: MapFile = toml::from_str(text).map_err(|source| MapError::Toml {
            origin: origin.to_string(),
            source,
        })?;
        let invalid = |message: String| MapError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let marker = options
            .truncation_marker
            .clone()
            .unwrap_or_else(|| DEFAULT_TRUNCATION_MARKER.to_string());

        let h = &file.header;
        let device = |dataset: &str, d: Option<&DeviceFile>| {
            let vendor = d.and_then(|d| d.vendor.as_deref()).unwrap_or(&h.vendor);
            let product = d.and_then(|d| d.product.as_deref()).unwrap_or(&h.product);
            let version = d.and_then(|d| d.version.as_deref()).unwrap_or(&h.version);
            let mut escaped = String::new();
            for (v, max) in [
                (vendor, VENDOR_MAX),
                (product, PRODUCT_MAX),
                (version, VERSION_MAX),
            ] {
                write_str_limited(v, Some(max), &marker, &mut escape_header, &mut escaped);
                escaped.push('|');
            }
            Device {
                dataset: dataset.to_string(),
                escaped,
            }
        };
        let default_device = device("", None);
        let datasets: Vec<Device> = h
            .dataset
            .iter()
            .map(|(name, d)| device(name, Some(d)))
            .collect();

        let mut keys = KeyTable::default();
        let dataset_key = keys.slot("event.dataset");
        let signature =
            keys.compile(&parse_all(&h.signature, "header.signature").map_err(invalid)?);
        let name = keys.compile(&parse_all(&h.name, "header.name").map_err(invalid)?);
        let severity = keys.compile(&parse_all(&h.severity, "header.severity").map_err(invalid)?);
        let mut default_severity = String::new();
        escape_header(&h.default_severity, &mut default_severity);
        let mut default_signature = String::new();
        write_str_limited(
            &h.default_signature,
            Some(SIGNATURE_MAX),
            &marker,
            &mut escape_header,
            &mut default_signature,
        );

        let mut used: BTreeSet<String> = BTreeSet::new();
        let mut claim = |key: &str| -> Result<(), MapError> {
            if used.insert(key.to_string()) {
                Ok(())
            } else {
                Err(invalid(format!(
                    "CEF key `{key}` is produced by more than one [[extension]]"
                )))
            }
        };
        let mut extensions = Vec::with_capacity(file.extension.len());
        for (i, e) in file.extension.iter().enumerate() {
            let what = format!("[[extension]] #{} (key `{}`)", i + 1, e.key);
            if !valid_key_chars(&e.key) {
                return Err(invalid(format!(
                    "{what}: CEF keys are single alphanumeric words"
                )));
            }
            let sources = keys.compile(&parse_all(&e.from, &what).map_err(invalid)?);
            let (render, max_len) = match dictionary::lookup(&e.key) {
                Some(def) => {
                    if e.custom {
                        return Err(invalid(format!(
                            "{what}: `custom = true` but `{}` is a CEF dictionary key ({})",
                            e.key, def.full_name
                        )));
                    }
                    if def.audience == Audience::Consumer {
                        return Err(invalid(format!(
                            "{what}: `{}` ({}) is set by ArcSight itself; producers must not set it",
                            e.key, def.full_name
                        )));
                    }
                    let render = match def.ty {
                        KeyType::Str => Render::Text,
                        KeyType::Timestamp => Render::Timestamp,
                        KeyType::Int if is_port_key(&e.key) => Render::Int {
                            min: 0,
                            max: 65_535,
                        },
                        KeyType::Int => Render::Int {
                            min: i64::from(i32::MIN),
                            max: i64::from(i32::MAX),
                        },
                        KeyType::Long => Render::Int {
                            min: i64::MIN,
                            max: i64::MAX,
                        },
                        KeyType::Double => Render::Double,
                        KeyType::Ipv4 => Render::Ipv4,
                        KeyType::Ipv6 => Render::Ipv6,
                        KeyType::Ip => Render::Ip,
                        KeyType::Mac => Render::Mac,
                    };
                    (render, def.max_len)
                }
                None if e.custom => (Render::Text, Some(1023)),
                None => {
                    return Err(invalid(format!(
                        "{what}: `{}` is not in the CEF v27 extension dictionary \
                         (set `custom = true` for a user-defined key)",
                        e.key
                    )))
                }
            };
            claim(&e.key)?;
            let mut prefix = String::from(" ");
            match (&e.label, is_labelled(&e.key)) {
                (Some(label), true) => {
                    claim(&format!("{}Label", e.key))?;
                    prefix.push_str(&e.key);
                    prefix.push_str("Label=");
                    write_str_limited(
                        label,
                        Some(1023),
                        &marker,
                        &mut escape_extension,
                        &mut prefix,
                    );
                    prefix.push(' ');
                }
                (None, true) => {
                    return Err(invalid(format!(
                        "{what}: `{}` needs a `label` (it is sent as {}Label)",
                        e.key, e.key
                    )))
                }
                (Some(_), false) => {
                    return Err(invalid(format!(
                        "{what}: `{}` has no label companion; remove `label`",
                        e.key
                    )))
                }
                (None, false) => {}
            }
            prefix.push_str(&e.key);
            prefix.push('=');
            let v6_prefix = match IPV6_SPECIAL.iter().find(|(k, _, _)| *k == e.key) {
                Some((_, v6key, label)) => {
                    claim(v6key)?;
                    claim(&format!("{v6key}Label"))?;
                    Some(format!(" {v6key}Label={label} {v6key}="))
                }
                None => None,
            };
            extensions.push(Extension {
                prefix,
                v6_prefix,
                render,
                max_len,
                sources,
            });
        }

        Ok(CefConfig {
            keys,
            dataset_key,
            default_device,
            datasets,
            signature,
            name,
            severity,
            default_severity,
            default_signature,
            extensions,
            marker,
        })
    }
}
