//! `azlog-hub check-config --config FILE`: validates everything that can be checked without
//! connecting (syntax, keys, secrets resolvable, connection strings well-formed, positions,
//! plugins present and ABI-compatible, schema tables, paths), with messages saying what to fix.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::config::{CheckpointStoreConfig, HubConfig, SourceConfig};
use crate::sink_host::PluginRegistry;

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

/// Problems found beyond the file itself (plugins, schemas, paths).
pub fn local_problems(c: &HubConfig) -> Vec<String> {
    let mut problems = Vec::new();
    match PluginRegistry::load_dir(&c.plugin_dir) {
        Ok(reg) => {
            for s in &c.sinks {
                if reg.get(&s.plugin).is_none() {
                    problems.push(format!(
                        "[[sink]] `{}`: plugin `{}` is not in {} (found: {}); fix `plugin` or `plugin_dir`",
                        s.name,
                        s.plugin,
                        c.plugin_dir.display(),
                        if reg.names().is_empty() { "none".to_owned() } else { reg.names().join(", ") }
                    ));
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
    problems
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
    let problems = local_problems(&config);
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
            for a in &wad.accounts {
                println!(
                    "  wad account {} tables {}",
                    a.name.as_deref().unwrap_or("-"),
                    a.tables.join(",")
                );
            }
        }
    }
    let store = match &config.checkpoint.store {
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
    }
    println!("  plugins     {}", config.plugin_dir.display());
    println!("  dead letter {}", config.dead_letter.display());
    if !config.env_overrides.is_empty() {
        println!("  from env    {}", config.env_overrides.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
