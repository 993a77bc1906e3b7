//! The service configuration, `azlog-hub.toml`: parsing, environment overrides, secrets and
//! validation. Every key is documented in docs/configuration.md.
//!
//! [`HubConfig::load`] reads the file, applies the `AZLOG_*` overrides ([`env::OVERRIDES`]),
//! resolves secrets (inline, `_env` or `_file`) and checks everything that can be checked
//! without connecting. All problems are collected and reported together, each saying what to
//! fix ([`ConfigError`]). Relative paths are relative to the config file's directory.
pub mod checkpoint;
pub mod env;
pub mod eventhubs;
pub mod kafka;
pub mod raw;
pub mod secret;

use std::path::{Path, PathBuf};
use std::time::Duration;

use azlog_mapper::envelope::EnvelopeConfig;

use crate::sink_host::SinkConfig;

pub use checkpoint::{CheckpointConfig, CheckpointStoreConfig};
pub use eventhubs::EventHubsConfig;
pub use kafka::KafkaConfig;
pub use secret::{Secret, SecretSpec};

use azlog_wad::WadConfig;
use serde::Deserialize as _;

/// The one source of a configuration: `[source.eventhubs]` or `[source.wad]`.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// Azure Event Hubs.
    EventHubs(EventHubsConfig),
    /// WAD tables (Azure Table storage), polled.
    Wad(WadConfig),
    /// A Kafka endpoint (including the Event Hubs Kafka endpoint).
    Kafka(KafkaConfig),
}

impl SourceConfig {
    /// `eventhubs` or `wad`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::EventHubs(_) => "eventhubs",
            SourceConfig::Wad(_) => "wad",
            SourceConfig::Kafka(_) => "kafka",
        }
    }
}

/// Everything wrong with a configuration, one line per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", format_problems(.file, .problems))]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong and how to fix it.
    pub problems: Vec<String>,
}

fn format_problems(file: &Path, problems: &[String]) -> String {
    let mut s = format!(
        "{} has {} problem{}:",
        file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  - ");
        s.push_str(p);
    }
    s
}

/// `[pipeline]` tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineSettings {
    /// Events per partition read but not yet acknowledged by every sink before the partition's
    /// reader pauses (backpressure bound).
    pub max_in_flight_events: usize,
    /// Events queued in front of each sink.
    pub sink_queue_events: usize,
    /// How long shutdown waits for in-flight batches.
    pub drain_timeout: Duration,
    /// First reconnect delay after a link/connection error.
    pub reconnect_initial: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            max_in_flight_events: 2000,
            sink_queue_events: 256,
            drain_timeout: Duration::from_secs(30),
            reconnect_initial: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `/metrics`, `/health`, `/ready` listen address (off when `None`).
    pub listen: Option<std::net::SocketAddr>,
    /// Seconds between progress log lines (`None` = off).
    pub log_interval: Option<Duration>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            log_interval: Some(Duration::from_secs(60)),
        }
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// State directory (checkpoints, dead letters).
    pub state_dir: PathBuf,
    /// Sink plugin directory.
    pub plugin_dir: PathBuf,
    /// Schema tables overlaying the built-in ones.
    pub schemas: Option<PathBuf>,
    /// Dead-letter file.
    pub dead_letter: PathBuf,
    /// The source (exactly one of `[source.eventhubs]` and `[source.wad]`).
    pub source: SourceConfig,
    /// Checkpoints.
    pub checkpoint: CheckpointConfig,
    /// Pipeline tuning.
    pub pipeline: PipelineSettings,
    /// Envelope sanitizers.
    pub envelope: EnvelopeConfig,
    /// Metrics endpoint and progress logs.
    pub metrics: MetricsConfig,
    /// The sinks.
    pub sinks: Vec<SinkConfig>,
    /// Environment overrides that were applied (names only).
    pub env_overrides: Vec<&'static str>,
}

/// Default plugin directory: the directory holding the executable.
fn default_plugin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A TOML error as `line L, column C: message`, without the source snippet the default
/// rendering quotes (the offending line may hold a connection string or key).
fn toml_problem(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// The absolute folder of a configuration file: what the host's relative paths are relative to.
fn folder_of(file: &Path) -> PathBuf {
    let base = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&base).unwrap_or(base)
}

impl HubConfig {
    /// The configuration file's folder (absolute): the host's relative paths are relative to it.
    pub fn folder(&self) -> PathBuf {
        folder_of(&self.file)
    }

    /// The Event Hubs source; an error naming `what` when the configuration has another source.
    pub fn eventhubs_for(&self, what: &str) -> anyhow::Result<&EventHubsConfig> {
        match &self.source {
            SourceConfig::EventHubs(eh) => Ok(eh),
            other => anyhow::bail!(
                "{what} needs an Event Hubs source ([source.eventhubs]); {} has [source.{}]",
                self.file.display(),
                other.kind()
            ),
        }
    }

    /// The Event Hubs source (an error when the configuration has another source).
    pub fn eventhubs(&self) -> anyhow::Result<&EventHubsConfig> {
        self.eventhubs_for("this command")
    }

    /// The Event Hubs source, mutable (an error when the configuration has another source).
    pub fn eventhubs_mut(&mut self) -> anyhow::Result<&mut EventHubsConfig> {
        let file = self.file.display().to_string();
        match &mut self.source {
            SourceConfig::EventHubs(eh) => Ok(eh),
            other => anyhow::bail!(
                "this command needs an Event Hubs source ([source.eventhubs]); {file} has [source.{}]",
                other.kind()
            ),
        }
    }

    /// The WAD source, when the configuration has one.
    pub fn wad(&self) -> Option<&WadConfig> {
        match &self.source {
            SourceConfig::Wad(w) => Some(w),
            SourceConfig::EventHubs(_) | SourceConfig::Kafka(_) => None,
        }
    }

    /// The Kafka source, when the configuration has one.
    pub fn kafka(&self) -> Option<&KafkaConfig> {
        match &self.source {
            SourceConfig::Kafka(k) => Some(k),
            _ => None,
        }
    }

    /// Reads and validates `path`, with overrides from the process environment.
    pub fn load(path: &Path) -> Result<HubConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            problems: vec![format!("cannot read the file: {e}")],
        })?;
        Self::parse(&text, path, &|k| std::env::var(k).ok())
    }

    /// Validates config text as if read from `path` (relative paths are resolved against its
    /// directory), looking environment variables up with `env`.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HubConfig, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            file: path.to_path_buf(),
            problems,
        };
        let mut raw: raw::RawConfig =
            toml::from_str(text).map_err(|e| fail(vec![toml_problem(text, &e)]))?;
        let env_overrides = env::apply(&mut raw, env);
        let base = folder_of(path);
        let mut problems = Vec::new();

        let state_dir = absolute(
            &base,
            raw.state_dir
                .as_deref()
                .unwrap_or_else(|| Path::new("state")),
        );
        let plugin_dir = raw
            .plugin_dir
            .as_deref()
            .map(|p| absolute(&base, p))
            .unwrap_or_else(default_plugin_dir);
        let schemas = raw.schemas.as_deref().map(|p| absolute(&base, p));
        let dead_letter = raw
            .dead_letter
            .as_deref()
            .map(|p| absolute(&base, p))
            .unwrap_or_else(|| state_dir.join("dead-letter").join("dead-letter.ndjson"));

        let given: Vec<&str> = [
            raw.source.eventhubs.as_ref().map(|_| "[source.eventhubs]"),
            raw.source.wad.as_ref().map(|_| "[source.wad]"),
            raw.source.kafka.as_ref().map(|_| "[source.kafka]"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let source = if given.len() > 1 {
            let from_env = raw.source.eventhubs.is_some()
                && env_overrides
                    .iter()
                    .any(|n| n.starts_with("AZLOG_EVENTHUBS_"));
            problems.push(format!(
                "two sources: {} are given{}; keep one (a process runs one source)",
                given.join(" and "),
                if from_env {
                    " ([source.eventhubs] made by AZLOG_EVENTHUBS_* environment variables)"
                } else {
                    ""
                }
            ));
            None
        } else if let Some(eh) = &raw.source.eventhubs {
            eventhubs::resolve(eh, &base, env, &mut problems).map(SourceConfig::EventHubs)
        } else if let Some(w) = &raw.source.wad {
            resolve_wad(w, &base, env, &mut problems).map(SourceConfig::Wad)
        } else if let Some(k) = &raw.source.kafka {
            kafka::resolve(k, &base, env, &mut problems).map(SourceConfig::Kafka)
        } else {
            problems.push(
                "no source: add a [source.eventhubs] table (or set AZLOG_EVENTHUBS_CONNECTION_STRING), a [source.kafka] table or a [source.wad] table with [[source.wad.account]]"
                    .to_owned(),
            );
            None
        };
        let checkpoint =
            checkpoint::resolve(&raw.checkpoint, &state_dir, &base, env, &mut problems);
        if let (Some(SourceConfig::EventHubs(eh)), Some(cp)) = (&source, &checkpoint) {
            if eh.balance.is_some() && matches!(cp.store, CheckpointStoreConfig::File { .. }) {
                problems.push(
                    "[source.eventhubs] load_balancing: the ownership claims live next to the checkpoints, which every instance must share; set [checkpoint] store = \"blob\" (the official SDKs' layout)".to_owned(),
                );
            }
        }

        let d = PipelineSettings::default();
        let p = &raw.pipeline;
        let pipeline = PipelineSettings {
            max_in_flight_events: p.max_in_flight_events.unwrap_or(d.max_in_flight_events),
            sink_queue_events: p.sink_queue_events.unwrap_or(d.sink_queue_events),
            drain_timeout: p
                .drain_timeout_secs
                .map_or(d.drain_timeout, Duration::from_secs),
            reconnect_initial: p
                .reconnect_initial_ms
                .map_or(d.reconnect_initial, Duration::from_millis),
            reconnect_max: p
                .reconnect_max_ms
                .map_or(d.reconnect_max, Duration::from_millis),
        };
        if pipeline.max_in_flight_events == 0 {
            problems.push("[pipeline] max_in_flight_events: must be at least 1".to_owned());
        }
        if pipeline.sink_queue_events == 0 {
            problems.push("[pipeline] sink_queue_events: must be at least 1".to_owned());
        }
        if pipeline.reconnect_initial.is_zero()
            || pipeline.reconnect_max < pipeline.reconnect_initial
        {
            problems.push(
                "[pipeline] reconnect_initial_ms must be >= 1 and <= reconnect_max_ms".to_owned(),
            );
        }

        let de = EnvelopeConfig::default();
        let envelope = EnvelopeConfig {
            fix_control_chars: raw
                .envelope
                .fix_control_chars
                .unwrap_or(de.fix_control_chars),
            fix_single_quotes: raw
                .envelope
                .fix_single_quotes
                .unwrap_or(de.fix_single_quotes),
            max_record_bytes: raw.envelope.max_record_bytes.unwrap_or(de.max_record_bytes),
        };
        if envelope.max_record_bytes < 1024 {
            problems.push("[envelope] max_record_bytes: must be at least 1024".to_owned());
        }

        let dm = MetricsConfig::default();
        let metrics = MetricsConfig {
            listen: match raw.metrics.listen.as_deref() {
                None => None,
                Some(l) => match l.parse() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        problems.push(format!(
                            "[metrics] listen: `{l}` is not an address; use host:port such as 127.0.0.1:9464"
                        ));
                        None
                    }
                },
            },
            log_interval: match raw.metrics.log_interval_secs {
                None => dm.log_interval,
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
            },
        };

        if raw.sink.is_empty() {
            problems.push(
                "no sinks: add at least one [[sink]] table (name, plugin and the plugin's settings)"
                    .to_owned(),
            );
        }
        let mut names = std::collections::HashSet::new();
        for s in &raw.sink {
            if let Err(e) = s.validate() {
                problems.push(format!("[[sink]] {e}"));
            }
            if !names.insert(s.name.as_str()) {
                problems.push(format!(
                    "[[sink]] `{}`: the name is used twice; sink names must be unique",
                    s.name
                ));
            }
        }

        if !problems.is_empty() {
            return Err(fail(problems));
        }
        match (source, checkpoint) {
            (Some(source), Some(checkpoint)) => Ok(HubConfig {
                file: path.to_path_buf(),
                state_dir,
                plugin_dir,
                schemas,
                dead_letter,
                source,
                checkpoint,
                pipeline,
                envelope,
                metrics,
                sinks: {
                    let folder = folder_of(path);
                    raw.sink
                        .into_iter()
                        .map(|mut s| {
                            s.config_dir = Some(folder.clone());
                            s
                        })
                        .collect()
                },
                env_overrides,
            }),
            _ => Err(fail(vec!["incomplete configuration".to_owned()])),
        }
    }
}

/// `[source.wad]`: its keys, its checks and its credentials (secrets resolvable, connection
/// strings well-formed, at least one table), without connecting.
fn resolve_wad(
    value: &toml::Value,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<WadConfig> {
    let wad = match WadConfig::deserialize(value.clone()) {
        Ok(w) => w,
        Err(e) => {
            problems.push(format!("[source.wad]: {}", e.message().trim()));
            return None;
        }
    };
    match wad.table_specs(base, env) {
        Ok(specs) if specs.is_empty() => {
            problems.push(
                "[source.wad]: no tables to read; add a [[source.wad.account]] (name, credentials, tables), e.g. with `azlog-hub source add`"
                    .to_owned(),
            );
            None
        }
        Ok(_) => Some(wad),
        Err(e) => {
            problems.push(format!("[source.wad]: {}", e.0));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
state_dir = "/var/lib/azlog-hub"
plugin_dir = "plugins"

[source.eventhubs]
connection_string_env = "EH_CS"
consumer_group = "azlog"
partitions = "all"
start_position = "latest"

[checkpoint]
every_events = 500
every_ms = 2000

[[sink]]
name = "files"
plugin = "file"
path = "/var/log/azure.ndjson"
"#;

    fn env(k: &str) -> Option<String> {
        (k == "EH_CS").then(|| {
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey=TOPSECRET;EntityPath=logs".to_owned()
        })
    }

    #[test]
    fn parses_a_good_file() {
        let c = HubConfig::parse(GOOD, Path::new("/etc/azlog/azlog-hub.toml"), &env).unwrap();
        assert_eq!(c.state_dir, Path::new("/var/lib/azlog-hub"));
        assert_eq!(c.plugin_dir, Path::new("/etc/azlog/plugins"));
        assert_eq!(
            c.dead_letter,
            Path::new("/var/lib/azlog-hub/dead-letter/dead-letter.ndjson")
        );
        assert_eq!(c.eventhubs().unwrap().endpoint.hub, "logs");
        assert_eq!(c.eventhubs().unwrap().endpoint.consumer_group, "azlog");
        assert_eq!(c.checkpoint.cadence.every_events, 500);
        assert_eq!(c.sinks.len(), 1);
        // The sinks' relative path keys start from the configuration's folder too.
        assert_eq!(
            c.sinks[0].config_dir.as_deref(),
            Some(Path::new("/etc/azlog"))
        );
        assert!(
            !format!("{c:?}").contains("TOPSECRET"),
            "Debug must redact secrets"
        );
    }

    #[test]
    fn environment_overrides() {
        let env = |k: &str| {
            match k {
            "AZLOG_EVENTHUBS_CONNECTION_STRING" => Some(
                "Endpoint=sb://other.servicebus.windows.net/;SharedAccessKeyName=l;SharedAccessKey=K".to_owned(),
            ),
            "AZLOG_EVENTHUBS_HUB" => Some("hub2".to_owned()),
            "AZLOG_STATE_DIR" => Some("/tmp/st".to_owned()),
            "AZLOG_EVENTHUBS_PARTITIONS" => Some("1, 2".to_owned()),
            _ => None,
        }
        };
        let c = HubConfig::parse(GOOD, Path::new("/etc/azlog/azlog-hub.toml"), &env).unwrap();
        assert_eq!(
            c.eventhubs().unwrap().fully_qualified_namespace,
            "other.servicebus.windows.net"
        );
        assert_eq!(c.eventhubs().unwrap().endpoint.hub, "hub2");
        assert_eq!(c.state_dir, Path::new("/tmp/st"));
        assert_eq!(
            c.eventhubs().unwrap().partitions,
            Some(vec!["1".into(), "2".into()])
        );
        assert!(c
            .env_overrides
            .contains(&"AZLOG_EVENTHUBS_CONNECTION_STRING"));
    }

    #[test]
    fn collects_every_problem() {
        let text = r#"
[source.eventhubs]
connection_string_env = "MISSING"
[checkpoint]
store = "blob"
[pipeline]
max_in_flight_events = 0
[metrics]
listen = "everywhere"
"#;
        let e = HubConfig::parse(text, Path::new("x.toml"), &|_| None).unwrap_err();
        let all = e.to_string();
        for want in [
            "MISSING is not set",
            "needs a storage connection string",
            "max_in_flight_events",
            "[metrics] listen",
            "no sinks",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
        let e = HubConfig::parse("[sourse.eventhubs]\n", Path::new("x.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 1, column 2: unknown field `sourse`"),
            "{e}"
        );
        // A syntax error on a line holding a secret does not quote the line.
        let broken = "[source.eventhubs]\nconnection_string = \"Endpoint=sb://x/;SharedAccessKey=TOPSECRET\nhub = 1\n";
        let e = HubConfig::parse(broken, Path::new("x.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("TOPSECRET"), "{e}");
    }

    #[test]
    fn load_balancing_needs_the_blob_checkpoint_store() {
        let text = GOOD.replace("partitions = \"all\"\n", "load_balancing = true\n");
        let e = HubConfig::parse(&text, Path::new("x.toml"), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("set [checkpoint] store = \"blob\""), "{e}");
        let blob = text.replace(
            "[checkpoint]\n",
            "[checkpoint]\nstore = \"blob\"\nconnection_string = \"UseDevelopmentStorage=true\"\ncontainer = \"checkpoints\"\n",
        );
        let c =
            HubConfig::parse(&blob, Path::new("x.toml"), &env).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.eventhubs().unwrap().balance.is_some());
    }

    const WAD: &str = r#"
[source.wad]
poll_interval_secs = 5

[[source.wad.account]]
name = "prod"
account = "vmdiag"
key_env = "WAD_KEY"
tables = ["WADWindowsEventLogsTable"]

[[sink]]
name = "files"
plugin = "file"
path = "/var/log/azure.ndjson"
"#;

    fn wad_env(k: &str) -> Option<String> {
        (k == "WAD_KEY").then(|| "a2V5a2V5a2V5".to_owned())
    }

    #[test]
    fn a_wad_only_file_has_the_wad_source() {
        let c = HubConfig::parse(WAD, Path::new("/etc/azlog/azlog-hub.toml"), &wad_env)
            .unwrap_or_else(|e| panic!("{e}"));
        let wad = c.wad().expect("WAD source");
        assert_eq!(wad.poll_interval_secs, 5);
        assert_eq!(wad.accounts.len(), 1);
        let e = c.eventhubs_for("replay").unwrap_err().to_string();
        assert!(e.contains("replay needs an Event Hubs source"), "{e}");
        assert!(e.contains("[source.wad]"), "{e}");
    }

    #[test]
    fn wad_problems_say_what_to_fix() {
        // The key variable is not set.
        let e = HubConfig::parse(WAD, Path::new("x.toml"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("[source.wad]") && e.contains("WAD_KEY"), "{e}");
        // No account: nothing to read.
        let e = HubConfig::parse(
            "[source.wad]\n[[sink]]\nname = \"f\"\nplugin = \"file\"\n",
            Path::new("x.toml"),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no tables to read"), "{e}");
        // Both sources, one of them made by an environment variable.
        let e = HubConfig::parse(WAD, Path::new("x.toml"), &|k| {
            if k == "AZLOG_EVENTHUBS_CONNECTION_STRING" {
                env("EH_CS")
            } else {
                wad_env(k)
            }
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("two sources"), "{e}");
        assert!(e.contains("AZLOG_EVENTHUBS_"), "{e}");
        // Neither.
        let e = HubConfig::parse(
            "[[sink]]\nname = \"f\"\nplugin = \"file\"\n",
            Path::new("x.toml"),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no source") && e.contains("[source.wad]"), "{e}");
    }
}
