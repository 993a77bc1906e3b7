//! The sink's settings (its `[[sink]]` table minus the host keys), checked at open, and the
//! librdkafka client configuration they build.
use std::collections::BTreeMap;
use std::path::PathBuf;

use azlog_plugin_api::SinkError;
use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::topic::TopicTemplate;

/// What goes into a Kafka message value.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The ECS JSON rendering (the same bytes as the file sink's `format = "ecs"`).
    Ecs,
    /// The original Azure record JSON (ECS when a record has no original).
    Raw,
}

/// What keys a record when its `key_field` is missing.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyFallback {
    /// The source partition id (keeps one source partition's order inside one Kafka partition).
    Partition,
    /// No key: librdkafka's partitioner spreads the records.
    None,
}

/// A free-form librdkafka property value (TOML strings, integers and booleans).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PropValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
}

impl PropValue {
    fn render(&self) -> String {
        match self {
            PropValue::Str(s) => s.clone(),
            PropValue::Int(i) => i.to_string(),
            PropValue::Bool(b) => b.to_string(),
            PropValue::Float(f) => f.to_string(),
        }
    }
}

/// Kafka sink settings. See the crate docs for the table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `host:port[,host:port...]` (a TOML list works too).
    pub brokers: Brokers,
    /// Topic template: `{dataset}` (event.dataset) and `{category}` (azure.category), sanitized.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Record field whose value keys the message.
    #[serde(default = "default_key_field")]
    pub key_field: String,
    /// Key used when `key_field` is missing.
    #[serde(default = "default_key_fallback")]
    pub key_fallback: KeyFallback,
    /// `ecs` (default) or `raw`.
    #[serde(default = "default_format")]
    pub format: Format,
    /// ECS only: include `event.original`.
    #[serde(default = "default_true")]
    pub include_original: bool,
    /// Add the source-position and dataset headers.
    #[serde(default = "default_true")]
    pub headers: bool,
    /// librdkafka `client.id`.
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// librdkafka `message.timeout.ms`: a record not acknowledged by the broker within this
    /// time fails its batch with a retryable error.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// librdkafka `linger.ms`.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// librdkafka `queue.buffering.max.messages`.
    #[serde(default = "default_queue_max_messages")]
    pub queue_max_messages: u64,
    /// librdkafka `queue.buffering.max.kbytes`.
    #[serde(default = "default_queue_max_kbytes")]
    pub queue_max_kbytes: u64,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default = "default_security_protocol")]
    pub security_protocol: String,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    /// SASL user name (`$ConnectionString` for the Event Hubs Kafka endpoint).
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password inline (a secret: prefer `_env` or `_file`).
    #[serde(default)]
    pub sasl_password: Option<String>,
    /// Name of an environment variable holding the SASL password.
    #[serde(default)]
    pub sasl_password_env: Option<String>,
    /// File holding the SASL password (trailing whitespace trimmed).
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// PEM CA bundle to verify the brokers (default: the system store).
    #[serde(default)]
    pub ssl_ca_file: Option<PathBuf>,
    /// PEM client certificate (mutual TLS).
    #[serde(default)]
    pub ssl_cert_file: Option<PathBuf>,
    /// PEM client key (mutual TLS).
    #[serde(default)]
    pub ssl_key_file: Option<PathBuf>,
    /// Extra librdkafka properties, applied last.
    #[serde(default)]
    pub properties: BTreeMap<String, PropValue>,
}

/// `brokers` as a string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Brokers {
    One(String),
    Many(Vec<String>),
}

impl Brokers {
    fn joined(&self) -> String {
        match self {
            Brokers::One(s) => s.trim().to_string(),
            Brokers::Many(v) => v.iter().map(|s| s.trim()).collect::<Vec<_>>().join(","),
        }
    }
}

fn default_topic() -> String {
    "{dataset}".into()
}
fn default_key_field() -> String {
    "azure.resource.id".into()
}
fn default_key_fallback() -> KeyFallback {
    KeyFallback::Partition
}
fn default_format() -> Format {
    Format::Ecs
}
fn default_true() -> bool {
    true
}
fn default_client_id() -> String {
    "azlog-hub".into()
}
fn default_compression() -> String {
    "none".into()
}
fn default_message_timeout_ms() -> u64 {
    30_000
}
fn default_linger_ms() -> u64 {
    5
}
fn default_queue_max_messages() -> u64 {
    100_000
}
fn default_queue_max_kbytes() -> u64 {
    1_048_576
}
fn default_security_protocol() -> String {
    "plaintext".into()
}

/// Properties the sink sets itself because its delivery guarantee depends on them.
const RESERVED: [&str; 9] = [
    "bootstrap.servers",
    "metadata.broker.list",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

/// Properties that hold secrets: they must come through the `_env`/`_file` keys, never inline
/// in `properties`, so that they are never echoed in errors.
const SECRET_PROPS: [&str; 4] = [
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "sasl.oauthbearer.client.secret",
];

pub(crate) fn bad(msg: impl Into<String>) -> SinkError {
    SinkError::permanent(format!("kafka sink settings: {}", msg.into()))
}

impl Settings {
    /// Parses and checks the settings JSON.
    pub fn from_json(v: serde_json::Value) -> Result<Settings, SinkError> {
        let s: Settings = azlog_plugin_api::settings::parse(v).map_err(bad)?;
        if s.brokers.joined().is_empty() {
            return Err(bad("`brokers` is empty"));
        }
        TopicTemplate::parse(&s.topic)?;
        if s.key_field.trim().is_empty() {
            return Err(bad("`key_field` is empty"));
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&s.compression.as_str()) {
            return Err(bad(format!(
                "`compression` must be none, gzip, snappy, lz4 or zstd, not {:?}",
                s.compression
            )));
        }
        if s.message_timeout_ms == 0 {
            return Err(bad("`message_timeout_ms` must be at least 1"));
        }
        let proto = s.security_protocol.to_ascii_lowercase();
        if !["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(&proto.as_str()) {
            return Err(bad(format!(
                "`security_protocol` must be plaintext, ssl, sasl_plaintext or sasl_ssl, not {:?}",
                s.security_protocol
            )));
        }
        let sasl = proto.starts_with("sasl_");
        if sasl {
            let mech = s.sasl_mechanism.as_deref().unwrap_or("PLAIN");
            if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mech) {
                return Err(bad(format!(
                    "`sasl_mechanism` must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, not {mech:?}"
                )));
            }
            if s.sasl_username.as_deref().is_none_or(str::is_empty) {
                return Err(bad(
                    "`sasl_username` is required with a sasl_* security_protocol",
                ));
            }
        } else if let Some(key) = [
            ("sasl_mechanism", s.sasl_mechanism.is_some()),
            ("sasl_username", s.sasl_username.is_some()),
            ("sasl_password", s.sasl_password.is_some()),
            ("sasl_password_env", s.sasl_password_env.is_some()),
            ("sasl_password_file", s.sasl_password_file.is_some()),
        ]
        .iter()
        .find_map(|(k, set)| set.then_some(*k))
        {
            // As the Kafka source: a SASL key without SASL would be ignored silently.
            return Err(bad(format!(
                "`{key}` is used only with security_protocol = \"sasl_plaintext\" or \"sasl_ssl\" (it is {:?})",
                s.security_protocol
            )));
        }
        for key in s.properties.keys() {
            if RESERVED.contains(&key.as_str()) {
                return Err(bad(format!(
                    "`properties.{key}` is set by the sink itself (idempotent producer, acks=all, \
                     bounded delivery time; use `brokers` / `message_timeout_ms`)"
                )));
            }
            if SECRET_PROPS.contains(&key.as_str()) {
                return Err(bad(format!(
                    "`properties.{key}` holds a secret: use `sasl_password_env` / `sasl_password_file`"
                )));
            }
        }
        Ok(s)
    }

    /// Resolves the SASL password from `sasl_password`, `_env` or `_file` (at most one).
    pub fn sasl_password(&self) -> Result<Option<String>, SinkError> {
        let given = [
            self.sasl_password.is_some(),
            self.sasl_password_env.is_some(),
            self.sasl_password_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given > 1 {
            return Err(bad(
                "set at most one of `sasl_password`, `sasl_password_env`, `sasl_password_file`",
            ));
        }
        let pw = if let Some(p) = &self.sasl_password {
            p.clone()
        } else if let Some(var) = &self.sasl_password_env {
            std::env::var(var)
                .map_err(|_| bad(format!("environment variable {var} is not set")))?
                .trim()
                .to_string()
        } else if let Some(path) = &self.sasl_password_file {
            std::fs::read_to_string(path)
                .map_err(|e| {
                    bad(format!(
                        "cannot read sasl_password_file {}: {e}",
                        path.display()
                    ))
                })?
                .trim()
                .to_string()
        } else {
            return Ok(None);
        };
        if pw.is_empty() {
            return Err(bad("the SASL password is empty"));
        }
        Ok(Some(pw))
    }

    /// The librdkafka producer configuration: the user's `properties` first, then the
    /// settings the delivery guarantee depends on (which `properties` may not override).
    pub fn client_config(&self) -> Result<ClientConfig, SinkError> {
        let mut c = ClientConfig::new();
        for (k, v) in &self.properties {
            c.set(k.as_str(), v.render());
        }
        c.set("bootstrap.servers", self.brokers.joined())
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "5")
            .set("message.timeout.ms", self.message_timeout_ms.to_string())
            .set("linger.ms", self.linger_ms.to_string())
            .set(
                "queue.buffering.max.messages",
                self.queue_max_messages.to_string(),
            )
            .set(
                "queue.buffering.max.kbytes",
                self.queue_max_kbytes.to_string(),
            )
            .set("compression.codec", &self.compression)
            .set(
                "security.protocol",
                self.security_protocol.to_ascii_lowercase(),
            );
        if self
            .security_protocol
            .to_ascii_lowercase()
            .starts_with("sasl_")
        {
            c.set(
                "sasl.mechanism",
                self.sasl_mechanism.as_deref().unwrap_or("PLAIN"),
            );
            if let Some(u) = &self.sasl_username {
                c.set("sasl.username", u);
            }
            if let Some(pw) = self.sasl_password()? {
                c.set("sasl.password", pw);
            }
        }
        for (key, path) in [
            ("ssl.ca.location", &self.ssl_ca_file),
            ("ssl.certificate.location", &self.ssl_cert_file),
            ("ssl.key.location", &self.ssl_key_file),
        ] {
            if let Some(p) = path {
                let setting = match key {
                    "ssl.ca.location" => "ssl_ca_file",
                    "ssl.certificate.location" => "ssl_cert_file",
                    _ => "ssl_key_file",
                };
                std::fs::File::open(p).map_err(|e| {
                    bad(format!("`{setting}` {}: cannot read it: {e}", p.display()))
                })?;
                c.set(key, p.display().to_string());
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_forced_guarantees() {
        let s = Settings::from_json(json!({"brokers": "127.0.0.1:9092"})).expect("ok");
        assert_eq!(s.topic, "{dataset}");
        assert_eq!(s.key_field, "azure.resource.id");
        assert_eq!(s.key_fallback, KeyFallback::Partition);
        assert_eq!(s.format, Format::Ecs);
        let c = s.client_config().expect("config");
        assert_eq!(c.get("enable.idempotence"), Some("true"));
        assert_eq!(c.get("acks"), Some("all"));
        assert_eq!(c.get("message.timeout.ms"), Some("30000"));
        let s = Settings::from_json(json!({"brokers": ["a:1", " b:2"], "properties": {"linger.ms": 50, "socket.nagle.disable": true, "batch.size": "100000"}})).expect("ok");
        let c = s.client_config().expect("config");
        assert_eq!(c.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(c.get("socket.nagle.disable"), Some("true"));
        assert_eq!(c.get("batch.size"), Some("100000"));
        // The typed key wins over the same property.
        assert_eq!(c.get("linger.ms"), Some("5"));
    }

    #[test]
    fn bad_settings_are_permanent_and_name_the_key() {
        for (cfg, needle) in [
            (json!({}), "brokers"),
            (json!({"brokers": ""}), "brokers"),
            (json!({"brokers": "a:1", "bogus": 1}), "bogus"),
            (json!({"brokers": "a:1", "format": "xml"}), "xml"),
            (json!({"brokers": "a:1", "topic": "{nope}"}), "{nope}"),
            (
                json!({"brokers": "a:1", "compression": "brotli"}),
                "compression",
            ),
            (
                json!({"brokers": "a:1", "security_protocol": "tls"}),
                "security_protocol",
            ),
            (
                json!({"brokers": "a:1", "security_protocol": "sasl_ssl"}),
                "sasl_username",
            ),
            (
                json!({"brokers": "a:1", "properties": {"acks": "1"}}),
                "properties.acks",
            ),
            (
                json!({"brokers": "a:1", "sasl_mechanism": "BOGUS"}),
                "sasl_mechanism",
            ),
            (
                json!({"brokers": "a:1", "security_protocol": "ssl", "sasl_password": "hunter2"}),
                "sasl_password",
            ),
            (
                json!({"brokers": "a:1", "properties": {"sasl.password": "hunter2"}}),
                "sasl_password_env",
            ),
        ] {
            let e = Settings::from_json(cfg.clone())
                .err()
                .unwrap_or_else(|| panic!("{cfg} accepted"));
            assert_eq!(e.kind, azlog_plugin_api::ErrorKind::Permanent);
            assert!(e.message.contains(needle), "{cfg}: {}", e.message);
            assert!(
                !e.message.contains("hunter2"),
                "secret echoed: {}",
                e.message
            );
        }
    }

    #[test]
    fn sasl_password_from_env_or_file_never_in_errors() {
        std::env::set_var("AZLOG_KAFKA_TEST_PW", "s3cret-env\n");
        let s = Settings::from_json(json!({"brokers": "a:1", "security_protocol": "SASL_SSL",
            "sasl_username": "$ConnectionString", "sasl_password_env": "AZLOG_KAFKA_TEST_PW"}))
        .expect("ok");
        let c = s.client_config().expect("config");
        assert_eq!(c.get("sasl.password"), Some("s3cret-env"));
        assert_eq!(c.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(c.get("security.protocol"), Some("sasl_ssl"));
        let dir = std::env::temp_dir().join(format!("azlog-kafka-pw-{}", std::process::id()));
        std::fs::write(&dir, "s3cret-file\n").expect("write");
        let s = Settings::from_json(
            json!({"brokers": "a:1", "security_protocol": "sasl_plaintext",
            "sasl_username": "u", "sasl_password_file": dir}),
        )
        .expect("ok");
        assert_eq!(
            s.sasl_password().expect("pw").as_deref(),
            Some("s3cret-file")
        );
        let _ = std::fs::remove_file(&dir);
        let s = Settings::from_json(
            json!({"brokers": "a:1", "security_protocol": "sasl_plaintext",
            "sasl_username": "u", "sasl_password_env": "AZLOG_KAFKA_TEST_UNSET_VAR"}),
        )
        .expect("ok");
        let e = s.client_config().expect_err("unset env");
        assert!(
            e.message.contains("AZLOG_KAFKA_TEST_UNSET_VAR"),
            "{}",
            e.message
        );
        let s =
            Settings::from_json(json!({"brokers": "a:1", "ssl_ca_file": "/nonexistent/ca.pem"}))
                .expect("ok");
        assert!(s.client_config().is_err());
    }

    #[test]
    fn the_example_bridge_config_is_accepted() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/bridge-eventhubs-to-kafka.toml"
        ))
        .expect("read example");
        let doc: toml::Value = toml::from_str(&text).expect("TOML");
        let mut sink = doc["sink"][0].as_table().expect("[[sink]]").clone();
        assert_eq!(sink["plugin"].as_str(), Some("kafka"));
        // The host keeps its own keys; the rest reaches the plugin as JSON.
        for host_key in ["name", "plugin", "filter", "batch", "retry"] {
            sink.remove(host_key);
        }
        let json = serde_json::to_value(&sink).expect("JSON");
        let s = Settings::from_json(json).expect("the example's sink settings");
        assert_eq!(s.topic, "azlog.{dataset}");
        let c = s.client_config().expect("client config");
        assert_eq!(c.get("compression.codec"), Some("zstd"));
        assert_eq!(c.get("batch.size"), Some("1000000"));
    }
}
