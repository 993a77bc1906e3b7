//! Environment overrides: each variable replaces one setting of the file (documented in
//! docs/configuration.md; keep [`OVERRIDES`] and that table in step).
use std::path::PathBuf;

use super::raw::{RawConfig, RawEventHubs, RawPartitions};
use super::secret::Secret;

/// Every variable read, with the setting it overrides.
pub const OVERRIDES: &[(&str, &str)] = &[
    ("AZLOG_STATE_DIR", "state_dir"),
    ("AZLOG_PLUGIN_DIR", "plugin_dir"),
    ("AZLOG_SCHEMAS_DIR", "schemas"),
    ("AZLOG_DEAD_LETTER", "dead_letter"),
    (
        "AZLOG_EVENTHUBS_CONNECTION_STRING",
        "[source.eventhubs] connection_string (replaces every other credential form)",
    ),
    ("AZLOG_EVENTHUBS_HUB", "[source.eventhubs] hub"),
    (
        "AZLOG_EVENTHUBS_CONSUMER_GROUP",
        "[source.eventhubs] consumer_group",
    ),
    (
        "AZLOG_EVENTHUBS_PARTITIONS",
        "[source.eventhubs] partitions (`all` or `0,1,2`)",
    ),
    (
        "AZLOG_EVENTHUBS_START_POSITION",
        "[source.eventhubs] start_position",
    ),
    (
        "AZLOG_EVENTHUBS_CUSTOM_ENDPOINT",
        "[source.eventhubs] custom_endpoint",
    ),
    ("AZLOG_CHECKPOINT_STORE", "[checkpoint] store"),
    (
        "AZLOG_CHECKPOINT_CONNECTION_STRING",
        "[checkpoint] connection_string (replaces the other forms)",
    ),
    ("AZLOG_CHECKPOINT_CONTAINER", "[checkpoint] container"),
    ("AZLOG_METRICS_LISTEN", "[metrics] listen"),
];

/// Applies the overrides to a parsed file. Returns the names of the variables used (for the
/// `check-config` report; values are never reported).
pub fn apply(raw: &mut RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Vec<&'static str> {
    let mut used = Vec::new();
    let mut get = |name: &'static str| {
        let v = env(name).filter(|v| !v.trim().is_empty());
        if v.is_some() {
            used.push(name);
        }
        v
    };
    if let Some(v) = get("AZLOG_STATE_DIR") {
        raw.state_dir = Some(PathBuf::from(v));
    }
    if let Some(v) = get("AZLOG_PLUGIN_DIR") {
        raw.plugin_dir = Some(PathBuf::from(v));
    }
    if let Some(v) = get("AZLOG_SCHEMAS_DIR") {
        raw.schemas = Some(PathBuf::from(v));
    }
    if let Some(v) = get("AZLOG_DEAD_LETTER") {
        raw.dead_letter = Some(PathBuf::from(v));
    }
    let eh_vars = [
        "AZLOG_EVENTHUBS_CONNECTION_STRING",
        "AZLOG_EVENTHUBS_HUB",
        "AZLOG_EVENTHUBS_CONSUMER_GROUP",
        "AZLOG_EVENTHUBS_PARTITIONS",
        "AZLOG_EVENTHUBS_START_POSITION",
        "AZLOG_EVENTHUBS_CUSTOM_ENDPOINT",
    ];
    let eh_values: Vec<Option<String>> = eh_vars.iter().map(|n| get(n)).collect();
    if eh_values.iter().any(Option::is_some) {
        let eh = raw
            .source
            .eventhubs
            .get_or_insert_with(RawEventHubs::default);
        if let Some(v) = &eh_values[0] {
            eh.connection_string = Some(Secret::new(v.trim()));
            eh.connection_string_env = None;
            eh.connection_string_file = None;
            eh.namespace = None;
            eh.shared_access_key_name = None;
            eh.shared_access_key = None;
            eh.shared_access_key_env = None;
            eh.shared_access_key_file = None;
        }
        if let Some(v) = &eh_values[1] {
            eh.hub = Some(v.trim().to_owned());
        }
        if let Some(v) = &eh_values[2] {
            eh.consumer_group = Some(v.trim().to_owned());
        }
        if let Some(v) = &eh_values[3] {
            eh.partitions = Some(RawPartitions::Word(v.trim().to_owned()));
        }
        if let Some(v) = &eh_values[4] {
            eh.start_position = Some(v.trim().to_owned());
        }
        if let Some(v) = &eh_values[5] {
            eh.custom_endpoint = Some(v.trim().to_owned());
        }
    }
    if let Some(v) = get("AZLOG_CHECKPOINT_STORE") {
        raw.checkpoint.store = Some(v.trim().to_owned());
    }
    if let Some(v) = get("AZLOG_CHECKPOINT_CONNECTION_STRING") {
        raw.checkpoint.connection_string = Some(Secret::new(v.trim()));
        raw.checkpoint.connection_string_env = None;
        raw.checkpoint.connection_string_file = None;
    }
    if let Some(v) = get("AZLOG_CHECKPOINT_CONTAINER") {
        raw.checkpoint.container = Some(v.trim().to_owned());
    }
    if let Some(v) = get("AZLOG_METRICS_LISTEN") {
        raw.metrics.listen = Some(v.trim().to_owned());
    }
    used
}
