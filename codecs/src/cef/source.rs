//! Where a sink field takes its value from: `@timestamp` (the record time) or a dotted ECS key,
//! tried in order of preference. Shared by the CEF and LEEF field maps.
use azlog_plugin_api::{Record, Value};

use super::text::is_blank;

/// One source of a sink field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The record's `@timestamp`.
    Timestamp,
    /// A field by dotted ECS key.
    Field(String),
}

impl Source {
    /// Parses a source name as written in a sink map (`@timestamp` or a dotted key).
    pub fn parse(name: &str) -> Result<Source, String> {
        let name = name.trim();
        if name == "@timestamp" {
            return Ok(Source::Timestamp);
        }
        if name.is_empty()
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!("`{name}` is not a dotted field key"));
        }
        Ok(Source::Field(name.to_string()))
    }
}

/// A value found for a sink field.
#[derive(Debug, Clone, Copy)]
pub enum Found<'r> {
    /// The record time, epoch milliseconds.
    TimestampMs(i64),
    /// A field value (never blank).
    Value(&'r Value),
}

/// The first source in `sources` that yields a present, non-blank value.
pub fn first<'r>(record: &'r Record, sources: &[Source]) -> Option<Found<'r>> {
    sources.iter().find_map(|s| match s {
        Source::Timestamp => Some(Found::TimestampMs(
            record.timestamp_ns.div_euclid(1_000_000),
        )),
        Source::Field(key) => record.get(key).filter(|v| !is_blank(v)).map(Found::Value),
    })
}

/// Parses a list of source names, with the field name for error messages.
pub fn parse_all(names: &[String], what: &str) -> Result<Vec<Source>, String> {
    if names.is_empty() {
        return Err(format!(
            "{what}: `from` must name at least one source field"
        ));
    }
    names
        .iter()
        .map(|n| Source::parse(n).map_err(|e| format!("{what}: {e}")))
        .collect()
}
