//! The TOML shape of one schema table, as deserialized (spans kept for error lines).
use serde::Deserialize;
use toml::Spanned;

/// One schema table file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    /// `[family]`
    pub family: Spanned<FamilySpec>,
    /// `[[detect]]`
    #[serde(default)]
    pub detect: Vec<Spanned<DetectSpec>>,
    /// `[[field]]`
    #[serde(default)]
    pub field: Vec<Spanned<FieldSpec>>,
    /// `[payload]`
    #[serde(default)]
    pub payload: Option<Spanned<PayloadSpec>>,
}

/// `[family]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySpec {
    /// Unique family id.
    pub name: Spanned<String>,
    /// `event.dataset`.
    pub dataset: Option<Spanned<String>>,
    /// Parent table name.
    pub extends: Option<Spanned<String>>,
    /// Higher is tried first.
    #[serde(default)]
    pub priority: i64,
    /// The table for unmatched records.
    #[serde(default)]
    pub fallback: bool,
    /// Only extended, never detected.
    #[serde(default, rename = "abstract")]
    pub is_abstract: bool,
    /// Free text for humans.
    #[serde(default)]
    pub description: Option<String>,
}

/// `[[detect]]`: all conditions must hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectSpec {
    /// The conditions.
    pub when: Vec<Spanned<CondSpec>>,
}

/// One condition: a path and exactly one test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CondSpec {
    /// Source path.
    pub path: Spanned<String>,
    /// Text equals one of (string or list).
    pub equals: Option<Spanned<toml::Value>>,
    /// Text equals none of (string or list); true when absent.
    pub not_equals: Option<Spanned<toml::Value>>,
    /// Text contains one of.
    pub contains: Option<Spanned<toml::Value>>,
    /// Text starts with one of.
    pub starts_with: Option<Spanned<toml::Value>>,
    /// Present and not null (true) / absent or null (false).
    pub exists: Option<Spanned<bool>>,
}

/// `[[field]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Canonical dotted key.
    pub to: Spanned<String>,
    /// Source path(s), first that yields wins.
    pub from: Option<Spanned<toml::Value>>,
    /// A constant.
    pub value: Option<Spanned<toml::Value>>,
    /// Conversion name.
    pub convert: Option<Spanned<String>>,
    /// Regex applied to the source text before `convert`.
    pub extract: Option<Spanned<String>>,
    /// Value map.
    pub map: Option<Spanned<toml::Table>>,
    /// Result for a present value missing from `map`.
    pub map_default: Option<Spanned<toml::Value>>,
    /// Result when no source yields a value.
    pub default: Option<Spanned<toml::Value>>,
    /// Conditions for this mapping.
    pub when: Option<Vec<Spanned<CondSpec>>>,
}

/// `[payload]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadSpec {
    /// Key prefix.
    pub to: Spanned<String>,
    /// Subtrees to copy.
    #[serde(default)]
    pub copy: Vec<Spanned<String>>,
    /// Object depth kept as dotted keys.
    pub depth: Option<Spanned<i64>>,
}
