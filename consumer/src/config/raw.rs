//! The `azlog-hub.toml` file as written (before env overrides, secrets and validation).
use std::path::PathBuf;

use serde::Deserialize;

use crate::sink_host::SinkConfig;

use super::secret::{Secret, SecretSpec};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// State directory (checkpoints, dead letters).
    pub state_dir: Option<PathBuf>,
    /// Sink plugin directory.
    pub plugin_dir: Option<PathBuf>,
    /// Schema tables overlaying the built-in ones.
    pub schemas: Option<PathBuf>,
    /// Dead-letter file.
    pub dead_letter: Option<PathBuf>,
    /// `[source.*]`.
    #[serde(default)]
    pub source: RawSource,
    /// `[checkpoint]`.
    #[serde(default)]
    pub checkpoint: RawCheckpoint,
    /// `[pipeline]`.
    #[serde(default)]
    pub pipeline: RawPipeline,
    /// `[envelope]`.
    #[serde(default)]
    pub envelope: RawEnvelope,
    /// `[metrics]`.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// `[[sink]]`.
    #[serde(default)]
    pub sink: Vec<SinkConfig>,
}

/// `[source]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// `[source.eventhubs]`.
    pub eventhubs: Option<RawEventHubs>,
    /// `[source.wad]` (read by `crate::source::wad::load_wad_config`).
    pub wad: Option<toml::Value>,
    /// `[source.kafka]` (validated by `super::kafka::resolve`).
    pub kafka: Option<toml::Value>,
}

/// `partitions = "all"` or a list of ids.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPartitions {
    /// `"all"` (or a comma-separated list, from the environment).
    Word(String),
    /// Partition ids.
    List(Vec<String>),
}

/// `[source.eventhubs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEventHubs {
    /// Connection string as copied from the portal (inline; prefer `_env` or `_file`).
    pub connection_string: Option<Secret>,
    /// Environment variable holding the connection string.
    pub connection_string_env: Option<String>,
    /// File holding the connection string.
    pub connection_string_file: Option<PathBuf>,
    /// Namespace host (instead of a connection string).
    pub namespace: Option<String>,
    /// SAS policy name (with `namespace`).
    pub shared_access_key_name: Option<String>,
    /// SAS key (with `namespace`).
    pub shared_access_key: Option<Secret>,
    /// Environment variable holding the SAS key.
    pub shared_access_key_env: Option<String>,
    /// File holding the SAS key.
    pub shared_access_key_file: Option<PathBuf>,
    /// Event hub name (or `EntityPath` in the connection string).
    pub hub: Option<String>,
    /// Consumer group.
    pub consumer_group: Option<String>,
    /// `"all"` or a list of partition ids.
    pub partitions: Option<RawPartitions>,
    /// Where to start a partition that has no checkpoint.
    pub start_position: Option<String>,
    /// Prefetch (AMQP credit) per partition.
    pub prefetch: Option<u32>,
    /// Owner level (epoch) of the receivers.
    pub owner_level: Option<i64>,
    /// `amqp://host:port` / `amqps://host:port` socket endpoint override.
    pub custom_endpoint: Option<String>,
    /// Share the partitions with the other consumers of the group through ownership claims.
    pub load_balancing: Option<bool>,
    /// Seconds between two load-balancing rounds.
    pub load_balancing_interval_secs: Option<f64>,
    /// Seconds after which a claim that was not renewed counts as released.
    pub ownership_expiration_secs: Option<f64>,
    /// This instance's owner id in the claims (default: a random UUID per process).
    pub owner_id: Option<String>,
}

impl RawEventHubs {
    /// The connection string forms.
    pub fn connection_string_spec(&self) -> SecretSpec {
        SecretSpec {
            inline: self.connection_string.clone(),
            env: self.connection_string_env.clone(),
            file: self.connection_string_file.clone(),
        }
    }

    /// The SAS key forms.
    pub fn key_spec(&self) -> SecretSpec {
        SecretSpec {
            inline: self.shared_access_key.clone(),
            env: self.shared_access_key_env.clone(),
            file: self.shared_access_key_file.clone(),
        }
    }
}

/// `[checkpoint]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheckpoint {
    /// `"file"` (default) or `"blob"`.
    pub store: Option<String>,
    /// File store root (default: the state dir).
    pub dir: Option<PathBuf>,
    /// Storage connection string (blob store).
    pub connection_string: Option<Secret>,
    /// Environment variable holding it.
    pub connection_string_env: Option<String>,
    /// File holding it.
    pub connection_string_file: Option<PathBuf>,
    /// Blob container.
    pub container: Option<String>,
    /// Create the container at start-up when missing.
    pub create_container: Option<bool>,
    /// Write after this many events completed (0 = off).
    pub every_events: Option<u64>,
    /// Write at least this often, in ms, while events complete (0 = off).
    pub every_ms: Option<u64>,
    /// Flush every sink before writing a checkpoint.
    pub flush_sinks: Option<bool>,
}

impl RawCheckpoint {
    /// The connection string forms.
    pub fn connection_string_spec(&self) -> SecretSpec {
        SecretSpec {
            inline: self.connection_string.clone(),
            env: self.connection_string_env.clone(),
            file: self.connection_string_file.clone(),
        }
    }
}

/// `[pipeline]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// Events per partition read but not yet acknowledged before the reader pauses.
    pub max_in_flight_events: Option<usize>,
    /// Events queued per sink.
    pub sink_queue_events: Option<usize>,
    /// How long shutdown waits for in-flight batches, in seconds.
    pub drain_timeout_secs: Option<u64>,
    /// First reconnect delay, in ms.
    pub reconnect_initial_ms: Option<u64>,
    /// Largest reconnect delay, in ms.
    pub reconnect_max_ms: Option<u64>,
}

/// `[envelope]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvelope {
    /// Escape raw control characters inside JSON strings.
    pub fix_control_chars: Option<bool>,
    /// Rewrite single-quoted pseudo-JSON.
    pub fix_single_quotes: Option<bool>,
    /// Largest record, in bytes.
    pub max_record_bytes: Option<usize>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `host:port` for `/metrics`, `/health`, `/ready` (off when absent).
    pub listen: Option<String>,
    /// Seconds between progress log lines (0 = off).
    pub log_interval_secs: Option<u64>,
}
