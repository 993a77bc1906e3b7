//! `[[sink]]` configuration tables.
//!
//! ```toml
//! [[sink]]
//! name = "splunk"                 # unique; used in logs, metrics and dead letters
//! plugin = "splunk-hec"           # the plugin's declared name (check-config lists it)
//! [sink.filter]                   # all optional; an empty filter passes everything
//! datasets = ["azure.signinlogs", "azure.activity*"]   # event.dataset; `*` suffix = prefix
//! categories = ["authentication", "SignInLogs"]        # any event.category value or azure.category
//! min_severity = 3                # event.severity >= 3; records without a severity fail it
//! [sink.batch]
//! max_records = 500
//! max_bytes = 1048576             # estimated in-memory size of the batch
//! linger_ms = 1000                # deliver a partial batch after this long
//! [sink.retry]
//! initial_backoff_ms = 200
//! max_backoff_ms = 30000
//! max_attempts = 0                # 0 = retry retryable errors until shutdown
//! # every other key is the plugin's own setting and reaches it as JSON:
//! url = "https://splunk.example:8088"
//! token_env = "SPLUNK_HEC_TOKEN"
//! ca_file = "splunk-ca.pem"       # a path key of the plugin: relative to this file's folder
//! ```
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::host::HostError;

/// One `[[sink]]` table. Its `Debug` shows plugin settings whose names suggest a secret
/// (token, password, key, secret, connection string, SAS) as `"<redacted>"`.
#[derive(Clone, Deserialize)]
pub struct SinkConfig {
    /// Unique sink name.
    pub name: String,
    /// Name of the plugin that implements it.
    pub plugin: String,
    /// Which records the sink receives.
    #[serde(default)]
    pub filter: FilterConfig,
    /// How records are grouped into `write_batch` calls.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Retries of retryable errors.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Every other key: the plugin's own settings, passed to the plugin's `open` as JSON.
    #[serde(flatten)]
    pub settings: Map<String, Json>,
    /// The folder of the configuration file the table was read from (absolute), when there is
    /// one: relative paths at the plugin's path keys are made absolute against it
    /// ([`SinkConfig::settings_json_for`]).
    #[serde(skip)]
    pub config_dir: Option<PathBuf>,
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: Map<String, Json> = self
            .settings
            .iter()
            .map(|(k, v)| {
                let shown = if is_secret_setting(k) {
                    Json::String("<redacted>".into())
                } else {
                    v.clone()
                };
                (k.clone(), shown)
            })
            .collect();
        f.debug_struct("SinkConfig")
            .field("name", &self.name)
            .field("plugin", &self.plugin)
            .field("filter", &self.filter)
            .field("batch", &self.batch)
            .field("retry", &self.retry)
            .field("settings", &settings)
            .finish()
    }
}

/// True for a plugin setting that holds a secret value (not the name of a variable or file that
/// holds one: `token_env`, `password_file` … stay visible).
pub(crate) fn is_secret_setting(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    if k.ends_with("_env") || k.ends_with("_file") || k.ends_with("_path") {
        return false;
    }
    [
        "token",
        "password",
        "secret",
        "key",
        "connection_string",
        "sas",
    ]
    .iter()
    .any(|w| k.contains(w))
        && !matches!(k.as_str(), "key_field" | "partition_key" | "key_from")
}

/// Record filter of a sink. Empty lists match everything.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// `event.dataset` values; an entry ending in `*` matches by prefix.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Values of `event.category` (ECS list) or `azure.category` (Azure's category name).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Minimum `event.severity` (0–10); records without a severity do not pass.
    #[serde(default)]
    pub min_severity: Option<i64>,
}

/// Batching of a sink: a batch is delivered when any limit is reached.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Records per batch.
    pub max_records: usize,
    /// Estimated bytes per batch (record text sizes).
    pub max_bytes: usize,
    /// Longest time the first record of a batch waits, in milliseconds.
    pub linger_ms: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_records: 500,
            max_bytes: 1 << 20,
            linger_ms: 1000,
        }
    }
}

/// Retry policy for retryable errors.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First delay, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Largest delay, in milliseconds.
    pub max_backoff_ms: u64,
    /// Attempts per batch before giving up (records stay unacked); 0 = until shutdown.
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff_ms: 200,
            max_backoff_ms: 30_000,
            max_attempts: 0,
        }
    }
}

/// A config file (or fragment) holding `[[sink]]` tables.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SinksFile {
    /// The `[[sink]]` tables.
    #[serde(default)]
    pub sink: Vec<SinkConfig>,
}

impl SinksFile {
    /// Parses TOML text; other top-level keys are ignored. Validates every sink and checks
    /// that names are unique.
    pub fn parse(text: &str) -> Result<Self, HostError> {
        let file: SinksFile = toml::from_str(text).map_err(|e| HostError::Config {
            sink: String::new(),
            message: e.to_string(),
        })?;
        let mut seen = std::collections::HashSet::new();
        for s in &file.sink {
            s.validate()?;
            if !seen.insert(s.name.as_str()) {
                return Err(HostError::Config {
                    sink: s.name.clone(),
                    message: "duplicate sink name".into(),
                });
            }
        }
        Ok(file)
    }
}

impl SinkConfig {
    /// Checks names and limits.
    pub fn validate(&self) -> Result<(), HostError> {
        let err = |message: &str| HostError::Config {
            sink: self.name.clone(),
            message: message.to_string(),
        };
        if self.name.trim().is_empty() {
            return Err(err("`name` must not be empty"));
        }
        if self.plugin.trim().is_empty() {
            return Err(err("`plugin` must not be empty"));
        }
        if self.batch.max_records == 0 || self.batch.max_bytes == 0 {
            return Err(err(
                "batch.max_records and batch.max_bytes must be at least 1",
            ));
        }
        if self.retry.initial_backoff_ms == 0
            || self.retry.max_backoff_ms < self.retry.initial_backoff_ms
        {
            return Err(err(
                "retry.initial_backoff_ms must be >= 1 and <= retry.max_backoff_ms",
            ));
        }
        if let Some(s) = self.filter.min_severity {
            if !(0..=10).contains(&s) {
                return Err(err("filter.min_severity must be within 0..=10"));
            }
        }
        Ok(())
    }

    /// The plugin settings as JSON text, as written.
    pub fn settings_json(&self) -> String {
        Json::Object(self.settings.clone()).to_string()
    }

    /// The plugin settings as JSON text, as the plugin's `open` and `check` receive them: a
    /// relative path at one of `path_keys` (the plugin's declared path settings, dotted) is
    /// joined to [`SinkConfig::config_dir`], the folder the host's own relative paths start
    /// from. Without a configuration folder, or for keys not listed, values pass as written.
    pub fn settings_json_for(&self, path_keys: &[String]) -> String {
        self.anchored_settings_json(path_keys).0
    }

    /// [`SinkConfig::settings_json_for`], and which of `path_keys` it made absolute (those
    /// that hold a relative path), in the order given.
    pub fn anchored_settings_json<'k>(&self, path_keys: &'k [String]) -> (String, Vec<&'k str>) {
        let mut settings = self.settings.clone();
        let mut keys = Vec::new();
        if let Some(dir) = &self.config_dir {
            for key in path_keys {
                if let Some(Json::String(text)) = lookup_mut(&mut settings, key) {
                    if let Some(absolute) = anchored(dir, text) {
                        *text = absolute;
                        keys.push(key.as_str());
                    }
                }
            }
        }
        (Json::Object(settings).to_string(), keys)
    }
}

/// The value at dotted `key` (`tls.ca_file`) of `settings`.
fn lookup_mut<'a>(settings: &'a mut Map<String, Json>, key: &str) -> Option<&'a mut Json> {
    let mut parts = key.split('.');
    let mut value = settings.get_mut(parts.next()?)?;
    for part in parts {
        value = value.as_object_mut()?.get_mut(part)?;
    }
    Some(value)
}

/// `text` joined to `dir` when it is a relative path, else `None`. An empty text stays as it
/// is (the plugin reports it as empty, not as the folder).
fn anchored(dir: &Path, text: &str) -> Option<String> {
    let path = Path::new(text);
    if text.is_empty() || !path.is_relative() {
        return None;
    }
    Some(dir.join(path).to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secret_settings_but_not_where_they_come_from() {
        let file: SinksFile = toml::from_str(
            r#"
            [[sink]]
            name = "splunk"
            plugin = "splunk-hec"
            url = "https://hec.example:8088"
            token = "11111111-2222-3333-4444-555555555555"
            token_env = "SPLUNK_HEC_TOKEN"
            sasl_password = "Endpoint=sb://ns/;SharedAccessKey=abc="
            tls_key_file = "/etc/key.pem"
            "#,
        )
        .expect("parse");
        let shown = format!("{:?}", file.sink[0]);
        assert!(!shown.contains("11111111"), "{shown}");
        assert!(!shown.contains("SharedAccessKey=abc"), "{shown}");
        assert!(shown.contains("SPLUNK_HEC_TOKEN"), "{shown}");
        assert!(shown.contains("/etc/key.pem"), "{shown}");
        assert!(shown.contains("https://hec.example:8088"), "{shown}");
        // The plugin still receives the real value.
        assert!(file.sink[0].settings_json().contains("11111111"));
    }

    #[test]
    fn parses_sink_tables_with_plugin_settings_as_json() {
        let f = SinksFile::parse(
            r#"
            log_level = "info"
            [[sink]]
            name = "splunk"
            plugin = "splunk-hec"
            url = "http://127.0.0.1:8088"
            gzip = true
            max_event_bytes = 100000
            [sink.filter]
            datasets = ["azure.signinlogs"]
            min_severity = 2
            [sink.batch]
            max_records = 10
            [sink.tls]
            ca_file = "/etc/ca.pem"

            [[sink]]
            name = "files"
            plugin = "file"
            path = "/tmp/out.ndjson"
            "#,
        )
        .expect("parse");
        assert_eq!(f.sink.len(), 2);
        let s = &f.sink[0];
        assert_eq!(s.filter.datasets, ["azure.signinlogs"]);
        assert_eq!(s.filter.min_severity, Some(2));
        assert_eq!(s.batch.max_records, 10);
        assert_eq!(s.batch.linger_ms, 1000, "unset batch keys keep defaults");
        let settings: Json = serde_json::from_str(&s.settings_json()).expect("json");
        assert_eq!(
            settings,
            serde_json::json!({"url": "http://127.0.0.1:8088", "gzip": true,
                "max_event_bytes": 100000, "tls": {"ca_file": "/etc/ca.pem"}})
        );
        assert_eq!(f.sink[1].filter, FilterConfig::default());
    }

    #[test]
    fn relative_paths_at_path_keys_start_from_the_configuration_folder() {
        let mut f = SinksFile::parse(
            r#"
            [[sink]]
            name = "siem"
            plugin = "cef"
            host = "relative/host"
            field_map = "maps/cef.toml"
            empty_file = ""
            [sink.tls]
            ca_file = "../pki/ca.pem"
            client_cert = "/etc/azlog-hub/client.pem"
            client_key = 5
            "#,
        )
        .expect("parse");
        let keys: Vec<String> = [
            "field_map",
            "tls.ca_file",
            "tls.client_cert",
            "tls.client_key",
            "empty_file",
            "tls.missing",
            "missing.deeper",
            "host.deeper",
        ]
        .map(String::from)
        .to_vec();
        let s = &mut f.sink[0];
        let as_written = serde_json::json!({"host": "relative/host",
            "field_map": "maps/cef.toml", "empty_file": "",
            "tls": {"ca_file": "../pki/ca.pem", "client_cert": "/etc/azlog-hub/client.pem",
                    "client_key": 5}});
        let parse = |text: String| -> Json { serde_json::from_str(&text).expect("json") };
        // No configuration folder (a table built in code): everything as written.
        assert_eq!(parse(s.settings_json_for(&keys)), as_written);
        s.config_dir = Some(PathBuf::from("/etc/azlog-hub"));
        // Listed relative strings are joined to the folder; absolute ones, non-strings, empty
        // strings, unlisted keys (`host`) and missing keys are left alone.
        assert_eq!(
            parse(s.settings_json_for(&keys)),
            serde_json::json!({"host": "relative/host",
                "field_map": "/etc/azlog-hub/maps/cef.toml", "empty_file": "",
                "tls": {"ca_file": "/etc/azlog-hub/../pki/ca.pem",
                        "client_cert": "/etc/azlog-hub/client.pem", "client_key": 5}})
        );
        assert_eq!(
            s.anchored_settings_json(&keys).1,
            ["field_map", "tls.ca_file"]
        );
        // A plugin that declares no path keys gets its settings as written.
        assert_eq!(parse(s.settings_json_for(&[])), as_written);
        assert_eq!(parse(s.settings_json()), as_written);
    }

    #[test]
    fn rejects_bad_tables() {
        let dup = "[[sink]]\nname='a'\nplugin='p'\n[[sink]]\nname='a'\nplugin='q'\n";
        assert!(SinksFile::parse(dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate"));
        let zero = "[[sink]]\nname='a'\nplugin='p'\n[sink.batch]\nmax_records=0\n";
        assert!(SinksFile::parse(zero).is_err());
        let typo = "[[sink]]\nname='a'\nplugin='p'\n[sink.filter]\ndataset=['x']\n";
        assert!(
            SinksFile::parse(typo).is_err(),
            "unknown filter keys are errors"
        );
        let sev = "[[sink]]\nname='a'\nplugin='p'\n[sink.filter]\nmin_severity=11\n";
        assert!(SinksFile::parse(sev).is_err());
    }
}
