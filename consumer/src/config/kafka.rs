//! `[source.kafka]`: any Kafka endpoint, including the Event Hubs Kafka endpoint
//! (`<namespace>.servicebus.windows.net:9093`) from a portal connection string.
//!
//! Everything here is checked without connecting. The librdkafka settings the source uses are
//! built by [`KafkaConfig::client_settings`]; secrets stay in [`Secret`]s until then, and
//! `Debug` of the config never shows them.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::secret::{Secret, SecretSpec};

/// `[source.kafka]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKafka {
    /// `host:port[,host:port...]` (not with `connection_string`).
    pub bootstrap_servers: Option<String>,
    /// Topics to subscribe to.
    pub topics: Option<Vec<String>>,
    /// A regular expression of topics (librdkafka wants it to start with `^`).
    pub topic_pattern: Option<String>,
    /// Consumer group id.
    pub group_id: Option<String>,
    /// Where a partition without a committed offset starts: `earliest` or `latest`.
    pub start_position: Option<String>,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password (inline; prefer `_env` or `_file`).
    pub sasl_password: Option<Secret>,
    /// Environment variable holding the SASL password.
    pub sasl_password_env: Option<String>,
    /// File holding the SASL password.
    pub sasl_password_file: Option<PathBuf>,
    /// CA bundle (PEM) to verify the brokers (default: the system store).
    pub ssl_ca_location: Option<PathBuf>,
    /// Event Hubs connection string as copied from the portal (inline; prefer `_env`/`_file`).
    pub connection_string: Option<Secret>,
    /// Environment variable holding the connection string.
    pub connection_string_env: Option<String>,
    /// File holding the connection string.
    pub connection_string_file: Option<PathBuf>,
    /// How long a rebalance waits for the records of revoked partitions to be acknowledged.
    pub rebalance_drain_timeout_ms: Option<u64>,
    /// Extra librdkafka settings, passed as given (they override the ones derived above).
    pub properties: Option<BTreeMap<String, toml::Value>>,
}

/// What to subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaTopics {
    /// These topics.
    List(Vec<String>),
    /// Topics matching this regex (starts with `^`).
    Pattern(String),
}

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaStart {
    /// The oldest retained record.
    Earliest,
    /// Only records produced after the consumer joined.
    Latest,
}

/// A validated `[source.kafka]`.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers.
    pub bootstrap_servers: String,
    /// Topics or pattern.
    pub topics: KafkaTopics,
    /// Consumer group id.
    pub group_id: String,
    /// Start without a committed offset.
    pub start: KafkaStart,
    /// Security protocol (upper case), if set.
    pub security_protocol: Option<String>,
    /// SASL mechanism (upper case), if set.
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<Secret>,
    /// CA bundle.
    pub ssl_ca_location: Option<PathBuf>,
    /// Settings derived from an Event Hubs connection string (`Some(namespace)` when used).
    pub event_hubs_namespace: Option<String>,
    /// Rebalance drain timeout.
    pub rebalance_drain_timeout: Duration,
    /// Extra librdkafka settings (values as strings). Values of keys that look secret are
    /// redacted by `Debug`.
    pub properties: BTreeMap<String, PropertyValue>,
}

/// A `[source.kafka.properties]` value; `Debug` redacts values of secret-looking keys.
#[derive(Clone, PartialEq, Eq)]
pub struct PropertyValue {
    key_is_secret: bool,
    value: String,
}

impl PropertyValue {
    fn new(key: &str, value: String) -> Self {
        let k = key.to_ascii_lowercase();
        PropertyValue {
            key_is_secret: k.contains("password")
                || k.contains("secret")
                || k.contains("key")
                || k.contains("jaas"),
            value,
        }
    }

    /// The value.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl std::fmt::Debug for PropertyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key_is_secret {
            f.write_str("<redacted>")
        } else {
            write!(f, "{:?}", self.value)
        }
    }
}

/// The librdkafka settings Microsoft documents for clients of the Event Hubs Kafka endpoint
/// ("Apache Kafka client configurations for Azure Event Hubs", librdkafka section).
pub const EVENT_HUBS_SETTINGS: &[(&str, &str)] = &[
    ("request.timeout.ms", "60000"),
    ("session.timeout.ms", "30000"),
    ("metadata.max.age.ms", "180000"),
    ("socket.keepalive.enable", "true"),
    ("connections.max.idle.ms", "180000"),
];

/// Keys the source sets itself; `properties` may not change them (the delivery guarantee
/// depends on them).
const RESERVED: &[&str] = &["enable.auto.offset.store", "enable.auto.commit", "group.id"];

/// Parses an Event Hubs connection string: (namespace host, entity path).
fn event_hubs_namespace(cs: &str) -> Result<(String, Option<String>), String> {
    let mut endpoint = None;
    let mut entity = None;
    let mut has_key = false;
    for part in cs.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "endpoint" => endpoint = Some(v.trim().to_owned()),
            "entitypath" => entity = Some(v.trim().to_owned()).filter(|e| !e.is_empty()),
            "sharedaccesskey" | "sharedaccesssignature" => has_key = true,
            _ => {}
        }
    }
    let endpoint = endpoint.ok_or("it has no Endpoint=sb://<namespace>.servicebus.windows.net/")?;
    let host = endpoint
        .strip_prefix("sb://")
        .ok_or("its Endpoint must start with sb://")?
        .trim_end_matches('/');
    let host = host.split(':').next().unwrap_or(host);
    if host.is_empty() {
        return Err("its Endpoint has no host".into());
    }
    if !has_key {
        return Err("it has no SharedAccessKey (copy the whole string from the portal)".into());
    }
    Ok((host.to_owned(), entity))
}

fn value_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

/// Validates `[source.kafka]` (no connection is made).
pub fn resolve(
    value: &toml::Value,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> Option<KafkaConfig> {
    let raw = match RawKafka::deserialize(value.clone()) {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("[source.kafka]: {}", e.message().trim()));
            return None;
        }
    };
    let before = problems.len();
    let key = |k: &str| format!("[source.kafka] {k}");
    let cs_spec = SecretSpec {
        inline: raw.connection_string.clone(),
        env: raw.connection_string_env.clone(),
        file: raw.connection_string_file.clone(),
    };
    let pw_spec = SecretSpec {
        inline: raw.sasl_password.clone(),
        env: raw.sasl_password_env.clone(),
        file: raw.sasl_password_file.clone(),
    };
    let connection_string = cs_spec
        .resolve(&key("connection_string"), base, env)
        .map_err(|e| problems.push(e))
        .ok()
        .flatten();
    let mut password = pw_spec
        .resolve(&key("sasl_password"), base, env)
        .map_err(|e| problems.push(e))
        .ok()
        .flatten();

    let mut bootstrap = raw
        .bootstrap_servers
        .clone()
        .filter(|s| !s.trim().is_empty());
    let mut security_protocol = raw
        .security_protocol
        .as_deref()
        .map(|s| s.trim().to_ascii_uppercase());
    let mut sasl_mechanism = raw
        .sasl_mechanism
        .as_deref()
        .map(|s| s.trim().to_ascii_uppercase());
    let mut sasl_username = raw.sasl_username.clone();
    let mut topics_from_cs = None;
    let mut event_hubs_ns = None;
    if let Some(cs) = &connection_string {
        match event_hubs_namespace(cs.expose()) {
            Ok((ns, entity)) => {
                if raw.sasl_username.is_some() || !pw_spec.is_empty() {
                    problems.push(format!(
                        "{}: the connection string is the credential; remove sasl_username/sasl_password",
                        key("connection_string")
                    ));
                }
                if bootstrap.is_none() {
                    bootstrap = Some(format!("{ns}:9093"));
                }
                security_protocol.get_or_insert_with(|| "SASL_SSL".to_owned());
                sasl_mechanism.get_or_insert_with(|| "PLAIN".to_owned());
                sasl_username = Some("$ConnectionString".to_owned());
                password = Some(cs.clone());
                topics_from_cs = entity;
                event_hubs_ns = Some(ns);
            }
            Err(e) => problems.push(format!(
                "{}: not an Event Hubs connection string: {e}",
                key("connection_string")
            )),
        }
    }

    let bootstrap = match bootstrap {
        Some(b) => {
            for server in b.split(',') {
                let s = server.trim();
                let ok = s
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !ok {
                    problems.push(format!(
                        "{}: `{s}` is not host:port",
                        key("bootstrap_servers")
                    ));
                }
            }
            b
        }
        None => {
            if connection_string.is_none() {
                problems.push(format!(
                    "{}: missing; give host:port of the brokers (or an Event Hubs connection_string)",
                    key("bootstrap_servers")
                ));
            }
            String::new()
        }
    };

    let topics = match (&raw.topics, &raw.topic_pattern) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{}: give `topics` or `topic_pattern`, not both",
                key("topics")
            ));
            None
        }
        (Some(list), None) => {
            let list: Vec<String> = list
                .iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect();
            if list.is_empty() {
                problems.push(format!("{}: the list is empty", key("topics")));
            }
            for t in &list {
                if t.starts_with('^') {
                    problems.push(format!(
                        "{}: `{t}` looks like a pattern; use topic_pattern for regular expressions",
                        key("topics")
                    ));
                }
            }
            Some(KafkaTopics::List(list))
        }
        (None, Some(p)) => {
            let p = p.trim();
            if !p.starts_with('^') {
                problems.push(format!(
                    "{}: `{p}` must start with `^` (librdkafka treats only such names as regular expressions)",
                    key("topic_pattern")
                ));
            } else if let Err(e) = regex::Regex::new(p) {
                problems.push(format!(
                    "{}: not a regular expression: {e}",
                    key("topic_pattern")
                ));
            }
            Some(KafkaTopics::Pattern(p.to_owned()))
        }
        (None, None) => match topics_from_cs {
            Some(hub) => Some(KafkaTopics::List(vec![hub])),
            None => {
                problems.push(format!(
                    "{}: missing; give `topics = [\"...\"]` or `topic_pattern = \"^...\"` (with an Event Hubs connection string, its EntityPath is the topic)",
                    key("topics")
                ));
                None
            }
        },
    };

    let group_id = match raw.group_id.as_deref().map(str::trim) {
        Some(g) if !g.is_empty() => g.to_owned(),
        _ => {
            problems.push(format!(
                "{}: missing; the consumer group keeps the committed offsets (e.g. \"azlog-hub\")",
                key("group_id")
            ));
            String::new()
        }
    };

    let start = match raw
        .start_position
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("earliest") => KafkaStart::Earliest,
        Some("latest") => KafkaStart::Latest,
        Some(other) => {
            problems.push(format!(
                "{}: `{other}` is not earliest or latest",
                key("start_position")
            ));
            KafkaStart::Earliest
        }
    };

    if let Some(p) = &security_protocol {
        if !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&p.as_str()) {
            problems.push(format!(
                "{}: `{p}` is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                key("security_protocol")
            ));
        }
    }
    let uses_sasl = security_protocol
        .as_deref()
        .is_some_and(|p| p.starts_with("SASL"));
    if let Some(m) = &sasl_mechanism {
        if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"].contains(&m.as_str()) {
            problems.push(format!(
                "{}: `{m}` is not PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
                key("sasl_mechanism")
            ));
        }
        if !uses_sasl {
            problems.push(format!(
                "{}: set security_protocol to SASL_SSL (or SASL_PLAINTEXT) to use SASL",
                key("sasl_mechanism")
            ));
        }
    }
    if uses_sasl && sasl_mechanism.as_deref() != Some("OAUTHBEARER") {
        if sasl_username.is_none() {
            problems.push(format!(
                "{}: missing; {} needs a user name",
                key("sasl_username"),
                security_protocol.as_deref().unwrap_or_default()
            ));
        }
        if password.is_none() {
            problems.push(format!(
                "{}: missing; give sasl_password_env or sasl_password_file",
                key("sasl_password")
            ));
        }
    }
    let ssl_ca_location = raw.ssl_ca_location.as_ref().map(|p| {
        if p.is_absolute() {
            p.clone()
        } else {
            base.join(p)
        }
    });
    if let Some(ca) = &ssl_ca_location {
        if !ca.is_file() {
            problems.push(format!(
                "{}: {} is not a readable file",
                key("ssl_ca_location"),
                ca.display()
            ));
        }
    }

    let mut properties = BTreeMap::new();
    for (k, v) in raw.properties.iter().flatten() {
        if RESERVED.contains(&k.as_str()) {
            problems.push(format!(
                "[source.kafka.properties] {k}: set by azlog-hub (offsets are stored only after every sink acknowledged); remove it{}",
                if k == "group.id" { " and use group_id" } else { "" }
            ));
            continue;
        }
        match value_text(v) {
            Some(text) => {
                properties.insert(k.clone(), PropertyValue::new(k, text));
            }
            None => problems.push(format!(
                "[source.kafka.properties] {k}: use a string, number or boolean"
            )),
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(KafkaConfig {
        bootstrap_servers: bootstrap,
        topics: topics?,
        group_id,
        start,
        security_protocol,
        sasl_mechanism,
        sasl_username,
        sasl_password: password,
        ssl_ca_location,
        event_hubs_namespace: event_hubs_ns,
        rebalance_drain_timeout: Duration::from_millis(
            raw.rebalance_drain_timeout_ms.unwrap_or(20_000),
        ),
        properties,
    })
}

impl KafkaConfig {
    /// The librdkafka settings (key, value, is-secret), in the order they are applied: derived
    /// settings, then the Event Hubs ones, then `[source.kafka.properties]`.
    pub fn client_settings(&self) -> Vec<(String, String, bool)> {
        let mut out: Vec<(String, String, bool)> = Vec::new();
        let mut set = |k: &str, v: &str, secret: bool| {
            out.retain(|(key, ..)| key != k);
            out.push((k.to_owned(), v.to_owned(), secret));
        };
        set("bootstrap.servers", &self.bootstrap_servers, false);
        set("group.id", &self.group_id, false);
        // Stored (acknowledged) offsets reach the group within a second; a crash re-delivers
        // at most about that much.
        set("auto.commit.interval.ms", "1000", false);
        // New partitions, and new topics matching the pattern, are seen at the next metadata
        // refresh (librdkafka's default is 5 minutes); the run then reads them at once.
        set("topic.metadata.refresh.interval.ms", "5000", false);
        set(
            "auto.offset.reset",
            match self.start {
                KafkaStart::Earliest => "earliest",
                KafkaStart::Latest => "latest",
            },
            false,
        );
        if let Some(p) = &self.security_protocol {
            set("security.protocol", p, false);
        }
        if let Some(m) = &self.sasl_mechanism {
            set("sasl.mechanism", m, false);
        }
        if let Some(u) = &self.sasl_username {
            set("sasl.username", u, false);
        }
        if let Some(p) = &self.sasl_password {
            set("sasl.password", p.expose(), true);
        }
        if let Some(ca) = &self.ssl_ca_location {
            set("ssl.ca.location", &ca.to_string_lossy(), false);
        }
        if self.event_hubs_namespace.is_some() {
            for (k, v) in EVENT_HUBS_SETTINGS {
                set(k, v, false);
            }
        }
        for (k, v) in &self.properties {
            set(k, v.expose(), v.key_is_secret);
        }
        out
    }

    /// `kafka:<bootstrap>/<topics>/<group>` (never a secret).
    pub fn describe(&self) -> String {
        let topics = match &self.topics {
            KafkaTopics::List(l) => l.join(","),
            KafkaTopics::Pattern(p) => p.clone(),
        };
        format!(
            "kafka:{}/{}/{}",
            self.bootstrap_servers, topics, self.group_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<KafkaConfig, Vec<String>> {
        let v: toml::Value = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let c = resolve(&v, Path::new("/etc/azlog"), env, &mut problems);
        match c {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(problems),
        }
    }

    const CS: &str = "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=TOPSECRET=;EntityPath=insights-logs";

    #[test]
    fn plain_brokers_and_topics() {
        let c = parse(
            "bootstrap_servers = \"127.0.0.1:9092,b2:9092\"\ntopics = [\"a\", \"b\"]\ngroup_id = \"g\"\nstart_position = \"latest\"\n[properties]\n\"fetch.min.bytes\" = 1\n\"ssl.key.password\" = \"KEYPW\"\n",
            &|_| None,
        )
        .unwrap();
        assert_eq!(c.topics, KafkaTopics::List(vec!["a".into(), "b".into()]));
        assert_eq!(c.start, KafkaStart::Latest);
        let s = c.client_settings();
        assert!(s.contains(&("auto.offset.reset".into(), "latest".into(), false)));
        assert!(s.contains(&("fetch.min.bytes".into(), "1".into(), false)));
        assert!(s.contains(&(
            "topic.metadata.refresh.interval.ms".into(),
            "5000".into(),
            false
        )));
        assert!(!format!("{c:?}").contains("KEYPW"), "{c:?}");
    }

    #[test]
    fn event_hubs_connection_string_shortcut() {
        let env = |k: &str| (k == "EH_KAFKA").then(|| CS.to_owned());
        let c = parse(
            "connection_string_env = \"EH_KAFKA\"\ngroup_id = \"$Default\"\n",
            &env,
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers, "myns.servicebus.windows.net:9093");
        assert_eq!(c.topics, KafkaTopics::List(vec!["insights-logs".into()]));
        let s = c.client_settings();
        let get = |k: &str| {
            s.iter()
                .find(|(key, ..)| key == k)
                .map(|(_, v, _)| v.clone())
        };
        assert_eq!(get("security.protocol").as_deref(), Some("SASL_SSL"));
        assert_eq!(get("sasl.mechanism").as_deref(), Some("PLAIN"));
        assert_eq!(get("sasl.username").as_deref(), Some("$ConnectionString"));
        assert_eq!(get("sasl.password").as_deref(), Some(CS));
        assert_eq!(get("session.timeout.ms").as_deref(), Some("30000"));
        assert_eq!(get("request.timeout.ms").as_deref(), Some("60000"));
        assert_eq!(get("metadata.max.age.ms").as_deref(), Some("180000"));
        assert_eq!(get("connections.max.idle.ms").as_deref(), Some("180000"));
        assert_eq!(get("socket.keepalive.enable").as_deref(), Some("true"));
        assert!(!format!("{c:?}").contains("TOPSECRET"));
    }

    #[test]
    fn properties_override_event_hubs_defaults() {
        let env = |_: &str| Some(CS.to_owned());
        let c = parse(
            "connection_string_env = \"X\"\ngroup_id = \"g\"\n[properties]\n\"session.timeout.ms\" = 6000\n",
            &env,
        )
        .unwrap();
        let s = c.client_settings();
        let all: Vec<_> = s
            .iter()
            .filter(|(k, ..)| k == "session.timeout.ms")
            .collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1, "6000");
    }

    #[test]
    fn problems_say_what_to_fix() {
        let e = parse("topic_pattern = \"logs.*\"\n", &|_| None).unwrap_err();
        let all = e.join("\n");
        for want in [
            "bootstrap_servers: missing",
            "must start with `^`",
            "group_id: missing",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
        let e = parse(
            "bootstrap_servers = \"h\"\ntopics = []\ngroup_id = \"g\"\nsecurity_protocol = \"SASL_SSL\"\nsasl_mechanism = \"PLAIN\"\nsasl_password_env = \"NOPE\"\nssl_ca_location = \"missing-ca.pem\"\n[properties]\n\"enable.auto.commit\" = false\n",
            &|_| None,
        )
        .unwrap_err()
        .join("\n");
        for want in [
            "`h` is not host:port",
            "topics: the list is empty",
            "NOPE is not set",
            "sasl_username: missing",
            "missing-ca.pem is not a readable file",
            "enable.auto.commit: set by azlog-hub",
        ] {
            assert!(e.contains(want), "missing {want:?} in\n{e}");
        }
        let e = parse(
            "connection_string = \"Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=a\"\ngroup_id = \"g\"\ntopics = [\"t\"]\n",
            &|_| None,
        )
        .unwrap_err()
        .join("\n");
        assert!(e.contains("no SharedAccessKey"), "{e}");
        let e = parse("bogus = 1\n", &|_| None).unwrap_err().join("\n");
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }
}
