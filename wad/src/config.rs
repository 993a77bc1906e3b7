//! `[source.wad]`: the poller settings and the storage accounts to read (documented in
//! docs/configuration.md). Secrets (connection strings, account keys, SAS tokens) are given
//! inline, by environment variable (`<key>_env`) or by file (`<key>_file`), and never printed.
use std::path::{Path, PathBuf};
use std::time::Duration;

use azlog_azure_storage::{StorageConnection, StorageCredential, TableScheme};
use reqwest::Url;
use serde::Deserialize;

use crate::poller::{PollOptions, TableSpec};
use crate::records::RecordExtras;
use crate::retry::RetryPolicy;
use crate::table::{check_table_name, TableClient, TableClientOptions};

/// The table Azure Diagnostics writes Windows event logs to.
pub const DEFAULT_TABLE: &str = "WADWindowsEventLogsTable";

/// A secret string: `Debug` shows `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A configuration error (names the setting; never contains a secret).
#[derive(Debug, thiserror::Error)]
#[error("[source.wad] {0}")]
pub struct ConfigError(pub String);

fn d_poll() -> u64 {
    30
}
fn d_overlap() -> u64 {
    600
}
fn d_window() -> u64 {
    3600
}
fn d_lookback() -> u64 {
    3600
}
fn d_page() -> u32 {
    1000
}
fn d_in_flight() -> usize {
    16
}
fn d_checkpoint() -> u64 {
    5000
}
fn d_timeout() -> u64 {
    45
}
fn d_attempts() -> u32 {
    6
}
fn d_retry_initial() -> u64 {
    200
}
fn d_retry_max() -> u64 {
    10_000
}
fn d_tables() -> Vec<String> {
    vec![DEFAULT_TABLE.to_owned()]
}

/// `[source.wad]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WadConfig {
    /// Seconds between cycles once caught up.
    #[serde(default = "d_poll")]
    pub poll_interval_secs: u64,
    /// The newest partition read is the minute of now minus this many seconds.
    #[serde(default)]
    pub lag_secs: u64,
    /// Each cycle reads this many seconds below the watermark again (late rows); >= 60.
    #[serde(default = "d_overlap")]
    pub overlap_secs: u64,
    /// Widest PartitionKey range of one cycle, seconds.
    #[serde(default = "d_window")]
    pub max_window_secs: u64,
    /// A table without a watermark starts this many seconds back (plus the overlap).
    #[serde(default = "d_lookback")]
    pub initial_lookback_secs: u64,
    /// Rows per page (`$top`), 1-1000.
    #[serde(default = "d_page")]
    pub page_size: u32,
    /// Batches per table delivered and not yet acknowledged, at most.
    #[serde(default = "d_in_flight")]
    pub max_in_flight_batches: usize,
    /// Save a changed watermark at most this often (ms; 0 = at every change).
    #[serde(default = "d_checkpoint")]
    pub checkpoint_every_ms: u64,
    /// Timeout of one HTTP request, seconds.
    #[serde(default = "d_timeout")]
    pub request_timeout_secs: u64,
    /// Attempts per request for throttling / timeouts / 5xx / transport errors.
    #[serde(default = "d_attempts")]
    pub retry_max_attempts: u32,
    /// First retry delay (ms; exponential, jittered).
    #[serde(default = "d_retry_initial")]
    pub retry_initial_ms: u64,
    /// Largest retry delay (ms).
    #[serde(default = "d_retry_max")]
    pub retry_max_ms: u64,
    /// Folder of the file watermark store (default `<state_dir>/wad`).
    #[serde(default)]
    pub watermark_dir: Option<PathBuf>,
    /// Where `azlog-hub source add` stores account keys, one file per source (default
    /// `<state_dir>/secrets`).
    #[serde(default)]
    pub secrets_dir: Option<PathBuf>,
    /// `[[source.wad.account]]`.
    #[serde(default, rename = "account")]
    pub accounts: Vec<WadAccountConfig>,
}

/// `[[source.wad.account]]`: one storage account and its tables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WadAccountConfig {
    /// A label for logs (AzLog's source name); defaults to the account name.
    #[serde(default)]
    pub name: Option<String>,
    /// Storage connection string (inline).
    #[serde(default)]
    pub connection_string: Option<SecretString>,
    /// Environment variable holding the connection string.
    #[serde(default)]
    pub connection_string_env: Option<String>,
    /// File holding the connection string.
    #[serde(default)]
    pub connection_string_file: Option<PathBuf>,
    /// Storage account name (with a key or SAS instead of a connection string).
    #[serde(default)]
    pub account: Option<String>,
    /// Account key (base64).
    #[serde(default)]
    pub key: Option<SecretString>,
    /// Environment variable holding the account key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// File holding the account key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// SAS token (needs read and list on the tables).
    #[serde(default)]
    pub sas: Option<SecretString>,
    /// Environment variable holding the SAS token.
    #[serde(default)]
    pub sas_env: Option<String>,
    /// File holding the SAS token.
    #[serde(default)]
    pub sas_file: Option<PathBuf>,
    /// Table endpoint (default `https://<account>.table.core.windows.net`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `SharedKey` (default) or `SharedKeyLite`.
    #[serde(default)]
    pub auth_scheme: Option<String>,
    /// Tables to poll.
    #[serde(default = "d_tables")]
    pub tables: Vec<String>,
    /// Subscription id put into the records (`azure.subscription_id`, `cloud.account.id`).
    #[serde(default)]
    pub subscription_id: Option<String>,
}

impl Default for WadConfig {
    /// The same as an empty `[source.wad]` table.
    fn default() -> Self {
        WadConfig {
            poll_interval_secs: d_poll(),
            lag_secs: 0,
            overlap_secs: d_overlap(),
            max_window_secs: d_window(),
            initial_lookback_secs: d_lookback(),
            page_size: d_page(),
            max_in_flight_batches: d_in_flight(),
            checkpoint_every_ms: d_checkpoint(),
            request_timeout_secs: d_timeout(),
            retry_max_attempts: d_attempts(),
            retry_initial_ms: d_retry_initial(),
            retry_max_ms: d_retry_max(),
            watermark_dir: None,
            secrets_dir: None,
            accounts: Vec::new(),
        }
    }
}

impl WadConfig {
    /// Checks the values (not the secrets' presence; see [`WadConfig::table_specs`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.overlap_secs < 60 {
            return Err(ConfigError(format!(
                "overlap_secs = {}: at least 60 (the newest partition is still filling when it is read)",
                self.overlap_secs
            )));
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(ConfigError(format!(
                "page_size = {}: 1 to 1000",
                self.page_size
            )));
        }
        if self.max_window_secs < 60 {
            return Err(ConfigError(format!(
                "max_window_secs = {}: at least 60",
                self.max_window_secs
            )));
        }
        if self.poll_interval_secs == 0 {
            return Err(ConfigError("poll_interval_secs must be at least 1".into()));
        }
        if self.retry_max_attempts == 0 {
            return Err(ConfigError("retry_max_attempts must be at least 1".into()));
        }
        for (i, a) in self.accounts.iter().enumerate() {
            let label = a.label(i);
            if a.tables.is_empty() {
                return Err(ConfigError(format!("account {label}: tables is empty")));
            }
            for t in &a.tables {
                check_table_name(t).map_err(|e| ConfigError(format!("account {label}: {e}")))?;
            }
            if let Some(s) = &a.auth_scheme {
                parse_scheme(s).map_err(|e| ConfigError(format!("account {label}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The poll loop settings.
    pub fn poll_options(&self) -> PollOptions {
        PollOptions {
            poll_interval: Duration::from_secs(self.poll_interval_secs),
            lag: Duration::from_secs(self.lag_secs),
            overlap: Duration::from_secs(self.overlap_secs),
            max_window: Duration::from_secs(self.max_window_secs),
            initial_lookback: Duration::from_secs(self.initial_lookback_secs),
            page_size: self.page_size,
            max_in_flight_batches: self.max_in_flight_batches.max(1),
            checkpoint_interval: Duration::from_millis(self.checkpoint_every_ms),
            ..PollOptions::default()
        }
    }

    /// The HTTP client settings.
    pub fn client_options(&self) -> TableClientOptions {
        TableClientOptions {
            retry: RetryPolicy {
                max_attempts: self.retry_max_attempts.max(1),
                initial_delay: Duration::from_millis(self.retry_initial_ms),
                max_delay: Duration::from_millis(self.retry_max_ms),
            },
            request_timeout: Duration::from_secs(self.request_timeout_secs.max(1)),
            ..TableClientOptions::default()
        }
    }

    /// The watermark folder: `watermark_dir` (relative to `base`) or `<state_dir>/wad`.
    pub fn watermark_dir(&self, base: &Path, state_dir: &Path) -> PathBuf {
        match &self.watermark_dir {
            Some(d) => base.join(d),
            None => state_dir.join("wad"),
        }
    }

    /// Resolves every account's credentials and builds one [`TableSpec`] per table.
    /// `base` resolves relative secret files; `env` looks environment variables up.
    pub fn table_specs(
        &self,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<TableSpec>, ConfigError> {
        self.validate()?;
        let mut specs = Vec::new();
        for (i, a) in self.accounts.iter().enumerate() {
            let client = a.client(i, base, env, self.client_options())?;
            for t in &a.tables {
                specs.push(TableSpec {
                    client: client.clone(),
                    table: t.clone(),
                    extras: RecordExtras {
                        subscription_id: a.subscription_id.clone(),
                    },
                });
            }
        }
        Ok(specs)
    }
}

fn parse_scheme(s: &str) -> Result<TableScheme, String> {
    match s.to_ascii_lowercase().as_str() {
        "sharedkey" => Ok(TableScheme::SharedKey),
        "sharedkeylite" => Ok(TableScheme::SharedKeyLite),
        _ => Err(format!(
            "auth_scheme = {s:?}: \"SharedKey\" or \"SharedKeyLite\""
        )),
    }
}

/// One of `<key>`, `<key>_env`, `<key>_file`, resolved; `Ok(None)` when none is given.
fn resolve_secret(
    name: &str,
    inline: &Option<SecretString>,
    env_name: &Option<String>,
    file: &Option<PathBuf>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    let given = usize::from(inline.is_some())
        + usize::from(env_name.is_some())
        + usize::from(file.is_some());
    if given > 1 {
        return Err(format!(
            "give one of {name}, {name}_env and {name}_file, not several"
        ));
    }
    if let Some(v) = inline {
        return Ok(Some(v.0.trim().to_owned()));
    }
    if let Some(var) = env_name {
        return match env(var) {
            Some(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
            _ => Err(format!("{name}_env: environment variable {var} is not set")),
        };
    }
    if let Some(f) = file {
        let path = base.join(f);
        return std::fs::read_to_string(&path)
            .map(|s| Some(s.trim_end().to_owned()))
            .map_err(|e| format!("{name}_file: reading {}: {e}", path.display()));
    }
    Ok(None)
}

impl WadAccountConfig {
    /// The account's name in logs: `name`, else the storage account name given, else its
    /// position (`#1`) when only a connection string names it.
    pub fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .or_else(|| self.account.clone())
            .unwrap_or_else(|| format!("#{}", index + 1))
    }

    fn client(
        &self,
        index: usize,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        mut options: TableClientOptions,
    ) -> Result<TableClient, ConfigError> {
        let label = self.label(index);
        let err = |m: String| ConfigError(format!("account {label}: {m}"));
        if let Some(s) = &self.auth_scheme {
            options.scheme = parse_scheme(s).map_err(err)?;
        }
        let conn = resolve_secret(
            "connection_string",
            &self.connection_string,
            &self.connection_string_env,
            &self.connection_string_file,
            base,
            env,
        )
        .map_err(err)?;
        let key = resolve_secret("key", &self.key, &self.key_env, &self.key_file, base, env)
            .map_err(err)?;
        let sas = resolve_secret("sas", &self.sas, &self.sas_env, &self.sas_file, base, env)
            .map_err(err)?;
        let endpoint = self
            .endpoint
            .as_deref()
            .map(|e| {
                Url::parse(e.trim_end_matches('/')).map_err(|x| err(format!("endpoint {e:?}: {x}")))
            })
            .transpose()?;
        match (conn, key, sas) {
            (Some(cs), None, None) => {
                let mut parsed = StorageConnection::parse(&cs)
                    .map_err(|e| err(format!("connection string: {e}")))?;
                if let Some(ep) = endpoint {
                    parsed.table_endpoint = Some(ep);
                }
                TableClient::from_connection(&parsed, options).map_err(|e| err(e.to_string()))
            }
            (None, key, sas) if key.is_some() != sas.is_some() => {
                let account = self
                    .account
                    .clone()
                    .ok_or_else(|| err("account is required with a key or a SAS".into()))?;
                let credential = match (key, sas) {
                    (Some(k), _) => StorageCredential::shared_key(account.clone(), &k)
                        .map_err(|e| err(format!("key: {e}")))?,
                    (_, Some(s)) => StorageCredential::sas(&s),
                    _ => return Err(err("a key or a SAS is required".into())),
                };
                let endpoint = match endpoint {
                    Some(e) => e,
                    None => Url::parse(&format!("https://{account}.table.core.windows.net"))
                        .map_err(|e| err(format!("account name {account:?}: {e}")))?,
                };
                TableClient::new(endpoint, account, credential, options)
                    .map_err(|e| err(e.to_string()))
            }
            (None, None, None) => Err(err(
                "no credentials: give a connection string, or account with key or sas".into(),
            )),
            _ => Err(err(
                "give exactly one of: a connection string, a key, a sas".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_and_options() {
        let c: WadConfig = toml::from_str("").unwrap();
        assert_eq!(c.overlap_secs, 600);
        assert_eq!(c.poll_interval_secs, 30);
        assert!(c.validate().is_ok());
        let p = c.poll_options();
        assert_eq!(p.overlap, Duration::from_secs(600));
        assert_eq!(p.page_size, 1000);
        assert_eq!(WadConfig::default(), c);
    }

    #[test]
    fn accounts_resolve_each_credential_form() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.txt"), "a2V5\n").unwrap();
        let c: WadConfig = toml::from_str(
            r#"
            overlap_secs = 120
            [[account]]
            connection_string = "UseDevelopmentStorage=true"
            tables = ["WADWindowsEventLogsTable", "WADOtherTable"]
            subscription_id = "sub-1"
            [[account]]
            account = "prodlogs"
            key_file = "key.txt"
            auth_scheme = "SharedKeyLite"
            [[account]]
            account = "other"
            sas_env = "WAD_SAS"
            endpoint = "https://other.table.core.usgovcloudapi.net/"
            "#,
        )
        .unwrap();
        let env = |v: &str| (v == "WAD_SAS").then(|| "?sv=1&sig=SECRET".to_owned());
        let specs = c.table_specs(dir.path(), &env).unwrap();
        let ids: Vec<_> = specs.iter().map(TableSpec::source_id).collect();
        assert_eq!(
            ids,
            vec![
                "wad:devstoreaccount1/WADWindowsEventLogsTable",
                "wad:devstoreaccount1/WADOtherTable",
                "wad:prodlogs/WADWindowsEventLogsTable",
                "wad:other/WADWindowsEventLogsTable"
            ]
        );
        assert_eq!(specs[0].extras.subscription_id.as_deref(), Some("sub-1"));
        assert_eq!(
            specs[2].client.endpoint().as_str(),
            "https://prodlogs.table.core.windows.net/"
        );
        assert_eq!(
            specs[3].client.endpoint().host_str(),
            Some("other.table.core.usgovcloudapi.net")
        );
        let shown = format!("{c:?} {:?}", specs[3].client);
        assert!(
            !shown.contains("SECRET") && !shown.contains("a2V5"),
            "{shown}"
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let bad = |text: &str| {
            let c: WadConfig = toml::from_str(text).unwrap();
            c.table_specs(Path::new("."), &no_env)
                .unwrap_err()
                .to_string()
        };
        assert!(bad("overlap_secs = 10").contains("overlap_secs"));
        assert!(bad("page_size = 5000").contains("page_size"));
        assert!(bad("[[account]]\naccount = \"a\"").contains("no credentials"));
        assert!(
            bad("[[account]]\naccount = \"a\"\nkey = \"a2V5\"\nsas = \"s\"")
                .contains("exactly one")
        );
        assert!(bad("[[account]]\nkey = \"a2V5\"").contains("account is required"));
        assert!(bad("[[account]]\naccount = \"a\"\nkey_env = \"NOPE\"").contains("NOPE"));
        assert!(
            bad("[[account]]\naccount = \"a\"\nkey = \"a2V5\"\ntables = [\"bad-name\"]")
                .contains("table")
        );
        assert!(toml::from_str::<WadConfig>("unknown = 1").is_err());
    }
}
