//! `azlog-hub check-config --config FILE`: validates everything that can be checked without
//! connecting (syntax, keys, secrets resolvable, connection strings well-formed, positions,
//! plugins present and ABI-compatible, each sink's own keys as its plugin parses them, schema
//! tables, paths), with messages saying what to fix.
//!
//! Each `[[sink]]`'s own settings (the table minus the host keys, the JSON its plugin's `open`
//! receives) go to the plugin's `check` (plugin ABI 2.1): the plugin parses and validates
//! them exactly as `open` would (unknown keys, types, files it names, secrets from `_env` /
//! `_file`) without connecting. A plugin built against ABI 2.0 has no `check`: the sink is
//! reported as not checkable (rebuild the plugin), which is not a problem.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::config::{CheckpointStoreConfig, HubConfig, SourceConfig};
use crate::sink_host::loader::SettingsCheck;
use crate::sink_host::path_hint::relative_path_hint;
use crate::sink_host::{PluginRegistry, SinkConfig};

/// Arguments of `azlog-hub check-config`.
#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    /// The configuration file.
    #[arg(
        long,
        short,
        value_name = "FILE",
        env = "AZLOG_CONFIG",
        default_value = "azlog-hub.toml"
    )]
    pub config: PathBuf,
}

/// What the checks beyond the file itself found.
#[derive(Debug, Default)]
pub struct LocalChecks {
    /// Problems, one line each, saying what to fix.
    pub problems: Vec<String>,
    /// Per sink name: what its plugin said about its own keys (when they were fine).
    pub sink_keys: BTreeMap<String, String>,
}

/// Problems found beyond the file itself (plugins, each sink's own keys, schemas, paths).
pub fn local_problems(c: &HubConfig) -> Vec<String> {
    local_checks(c).problems
}

/// Checks beyond the file itself: plugins present and loadable, each sink's own keys
/// checked by its plugin, schemas, paths.
pub fn local_checks(c: &HubConfig) -> LocalChecks {
    let mut out = LocalChecks::default();
    let problems = &mut out.problems;
    match PluginRegistry::load_dir(&c.plugin_dir) {
        Ok(reg) => {
            for s in &c.sinks {
                let Some(plugin) = reg.get(&s.plugin) else {
                    problems.push(format!(
                        "[[sink]] name = {:?}: plugin `{}` is not in {} (found: {}); fix `plugin` or `plugin_dir`",
                        s.name,
                        s.plugin,
                        c.plugin_dir.display(),
                        if reg.names().is_empty() { "none".to_owned() } else { reg.names().join(", ") }
                    ));
                    continue;
                };
                let about = format!(
                    "plugin {} {} (ABI {}, {})",
                    plugin.name,
                    plugin.version,
                    plugin.abi_version,
                    plugin.path.display()
                );
                let old_paths = (!plugin.knows_path_keys()).then(|| {
                    format!(
                        "; note: built before plugin ABI 2.2, it reads relative paths in its keys \
                         from the working directory of azlog-hub, not from {}; rebuild it against \
                         ABI {} or write absolute paths",
                        c.folder().display(),
                        azlog_plugin_api::ABI_VERSION
                    )
                });
                let (settings_json, anchored) = s.anchored_settings_json(&plugin.path_keys);
                match plugin.check(&settings_json) {
                    Ok(SettingsCheck::Checked { notes }) => {
                        let mut line = format!("checked by {about}");
                        if !anchored.is_empty() {
                            line.push_str(&format!(
                                "; relative paths read from {}: `{}`",
                                c.folder().display(),
                                anchored.join("`, `")
                            ));
                        }
                        for n in notes {
                            line.push_str("; note: ");
                            line.push_str(&redact(s, &n));
                        }
                        line.extend(old_paths);
                        out.sink_keys.insert(s.name.clone(), line);
                    }
                    Ok(SettingsCheck::Unsupported) => {
                        out.sink_keys.insert(
                            s.name.clone(),
                            format!(
                                "NOT checked: {about} predates plugin ABI 2.1 and cannot check \
                                 its keys before it opens; rebuild it against azlog-plugin-api \
                                 ABI {} to have them checked here{}",
                                azlog_plugin_api::ABI_VERSION,
                                old_paths.unwrap_or_default()
                            ),
                        );
                    }
                    Err(e) => {
                        let mut problem = format!(
                            "[[sink]] name = {:?} (plugin `{}`): {}; fix this sink's own keys",
                            s.name,
                            s.plugin,
                            redact(s, &e.message)
                        );
                        if let Some(hint) = relative_path_hint(s, &plugin.path_keys) {
                            problem.push_str(" (");
                            problem.push_str(&hint);
                            problem.push(')');
                        }
                        problems.push(problem);
                    }
                }
            }
        }
        Err(e) => problems.push(format!("plugin_dir: {e}")),
    }
    if let Err(e) = azlog_mapper::Mapper::load(c.schemas.as_deref()) {
        problems.push(format!("schemas: {e}"));
    }
    problems.extend(dir_problem("state_dir", &c.state_dir));
    if let Some(parent) = c.dead_letter.parent() {
        problems.extend(dir_problem("dead_letter (its folder)", parent));
    }
    if let SourceConfig::Wad(wad) = &c.source {
        let base = c.file.parent().unwrap_or(Path::new("."));
        problems.extend(dir_problem(
            "[source.wad] watermark_dir",
            &wad.watermark_dir(base, &c.state_dir),
        ));
    }
    if let CheckpointStoreConfig::File { dir } = &c.checkpoint.store {
        problems.extend(dir_problem("[checkpoint] dir", dir));
    }
    out
}

/// The secret values a sink's settings hold: values of secret-looking keys (at any depth)
/// and of the environment variables its `*_env` keys name.
fn secret_values(settings: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<String>) {
    use serde_json::Value as J;
    fn leaves(v: &J, out: &mut Vec<String>) {
        match v {
            J::String(s) => out.push(s.clone()),
            J::Number(n) => out.push(n.to_string()),
            J::Array(items) => items.iter().for_each(|i| leaves(i, out)),
            J::Object(m) => m.values().for_each(|i| leaves(i, out)),
            J::Bool(_) | J::Null => {}
        }
    }
    for (k, v) in settings {
        if crate::sink_host::config::is_secret_setting(k) {
            leaves(v, out);
        } else if k.to_ascii_lowercase().ends_with("_env") {
            if let Some(value) = v.as_str().and_then(|var| std::env::var(var).ok()) {
                out.push(value);
            }
        } else if let J::Object(m) = v {
            secret_values(m, out);
        }
    }
}

/// `message` with every secret value of the sink's settings replaced by `<redacted>`: a
/// plugin's parse error may quote a value (serde's "invalid type: string \"...\"").
fn redact(sink: &SinkConfig, message: &str) -> String {
    let mut secrets = Vec::new();
    secret_values(&sink.settings, &mut secrets);
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = message.to_string();
    for s in secrets.iter().filter(|s| s.trim().len() >= 3) {
        text = text.replace(s.as_str(), "<redacted>");
    }
    text
}

/// A directory that exists must be a writable directory; one that does not must be creatable
/// (its nearest existing ancestor is a directory).
fn dir_problem(key: &str, dir: &Path) -> Option<String> {
    if dir.exists() {
        if !dir.is_dir() {
            return Some(format!(
                "{key}: {} exists and is not a directory",
                dir.display()
            ));
        }
        let readonly = std::fs::metadata(dir)
            .map(|m| m.permissions().readonly())
            .unwrap_or(false);
        return readonly.then(|| format!("{key}: {} is read-only", dir.display()));
    }
    let mut ancestor = dir.parent();
    while let Some(a) = ancestor {
        if a.exists() {
            return (!a.is_dir()).then(|| {
                format!(
                    "{key}: cannot create {} ({} is not a directory)",
                    dir.display(),
                    a.display()
                )
            });
        }
        ancestor = a.parent();
    }
    None
}

/// Runs `azlog-hub check-config`: exit 0 when valid, 1 with the list of problems otherwise.
pub fn run(args: CheckConfigArgs) -> Result<ExitCode> {
    let config = match HubConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let LocalChecks {
        problems,
        sink_keys,
    } = local_checks(&config);
    if !problems.is_empty() {
        println!(
            "{}",
            crate::config::ConfigError {
                file: config.file.clone(),
                problems
            }
        );
        return Ok(ExitCode::from(1));
    }
    println!("{}: OK (nothing was contacted)", config.file.display());
    match &config.source {
        SourceConfig::EventHubs(eh) => println!(
            "  source      eventhubs {}/{} consumer group {} partitions {} start {}{}",
            eh.fully_qualified_namespace,
            eh.endpoint.hub,
            eh.endpoint.consumer_group,
            eh.partitions
                .as_ref()
                .map_or("all".to_owned(), |p| p.join(",")),
            eh.start,
            eh.endpoint
                .custom_endpoint
                .as_ref()
                .map_or(String::new(), |u| format!(" via {u}"))
        ),
        SourceConfig::Kafka(k) => {
            println!(
                "  source      kafka {} topics {} group {} start {:?}{}",
                k.bootstrap_servers,
                match &k.topics {
                    crate::config::kafka::KafkaTopics::List(l) => l.join(","),
                    crate::config::kafka::KafkaTopics::Pattern(p) => format!("matching {p}"),
                },
                k.group_id,
                k.start,
                k.event_hubs_namespace
                    .as_ref()
                    .map_or(String::new(), |ns| format!(" (Event Hubs namespace {ns})"))
            );
            println!(
                "  offsets     stored in the Kafka consumer group after every sink acknowledged ([checkpoint] cadence); [checkpoint] store is not used"
            );
        }
        SourceConfig::Wad(wad) => {
            let base = config.file.parent().unwrap_or(Path::new("."));
            println!(
                "  source      wad, poll every {}s, watermarks under {}",
                wad.poll_interval_secs,
                wad.watermark_dir(base, &config.state_dir).display()
            );
            for (i, a) in wad.accounts.iter().enumerate() {
                println!("  wad account {} tables {}", a.label(i), a.tables.join(","));
            }
        }
    }
    let store = match &config.checkpoint.store {
        // These sources keep their positions themselves ([checkpoint] gives the cadence).
        _ if matches!(config.source, SourceConfig::Wad(_)) => "WAD watermarks".to_owned(),
        _ if matches!(config.source, SourceConfig::Kafka(_)) => {
            "Kafka consumer group offsets".to_owned()
        }
        CheckpointStoreConfig::File { dir } => {
            format!("file under {}", dir.join("checkpoints").display())
        }
        CheckpointStoreConfig::Blob { container, .. } => format!("blob container {container}"),
    };
    println!(
        "  checkpoint  {store}, every {} events or {:?}",
        config.checkpoint.cadence.every_events, config.checkpoint.cadence.every
    );
    for s in &config.sinks {
        println!("  sink        {} (plugin {})", s.name, s.plugin);
        if let Some(keys) = sink_keys.get(&s.name) {
            println!("    its keys  {keys}");
        }
    }
    println!("  plugins     {}", config.plugin_dir.display());
    println!("  dead letter {}", config.dead_letter.display());
    if !config.env_overrides.is_empty() {
        println!("  from env    {}", config.env_overrides.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_secret_values_but_not_where_they_come_from() {
        let file = crate::sink_host::SinksFile::parse(
            r#"
            [[sink]]
            name = "splunk"
            plugin = "splunk-hec"
            url = "https://hec.example:8088"
            token = "TOPSECRET-123"
            sasl_password = 987654
            [sink.properties]
            "sasl.password" = "NESTED-SECRET"
            "#,
        )
        .expect("parse");
        let sink = &file.sink[0];
        let msg = "invalid type: string \"TOPSECRET-123\", integer `987654`, NESTED-SECRET, \
                   at https://hec.example:8088 (token_env)";
        let shown = redact(sink, msg);
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(!shown.contains("987654"), "{shown}");
        assert!(!shown.contains("NESTED-SECRET"), "{shown}");
        assert!(shown.contains("https://hec.example:8088"), "{shown}");
        assert!(shown.contains("token_env"), "{shown}");
    }

    #[test]
    fn redaction_hides_the_value_of_a_named_variable() {
        // PATH is set in every test environment; setting a variable here would race with
        // other tests reading the environment.
        let value = std::env::var("PATH").expect("PATH is set");
        let file = crate::sink_host::SinksFile::parse(
            "[[sink]]\nname='s'\nplugin='p'\ntoken_env='PATH'\n",
        )
        .expect("parse");
        let shown = redact(&file.sink[0], &format!("token {value} is bad"));
        assert_eq!(shown, "token <redacted> is bad");
    }
}
