//! Builds the running parts from a [`HubConfig`]: the Event Hubs source, the checkpoint store,
//! the plugin registry and the opened sinks.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use azlog_plugin_api::ErrorKind;
use tokio::sync::watch;

use crate::checkpoint::{
    BlobCheckpointStore, CheckpointKey, CheckpointStore, FileCheckpointStore, OwnershipStore,
};
use crate::config::{CheckpointConfig, CheckpointStoreConfig, EventHubsConfig};
use crate::sink_host::path_hint::relative_path_hint;
use crate::sink_host::{HostError, PluginRegistry, SinkConfig, SinkHost};
use crate::source::eventhubs::EventHubsSource;

/// The checkpoint key of an Event Hubs source (namespace host, hub, consumer group).
pub fn checkpoint_key(eh: &EventHubsConfig) -> CheckpointKey {
    CheckpointKey::new(
        eh.fully_qualified_namespace.clone(),
        eh.endpoint.hub.clone(),
        eh.endpoint.consumer_group.clone(),
    )
}

/// Opens the configured checkpoint store (creating the blob container when asked to).
pub async fn checkpoint_store(cfg: &CheckpointConfig) -> Result<Arc<dyn CheckpointStore>> {
    Ok(checkpoint_stores(cfg).await?.0)
}

/// The checkpoint store and, when it can keep them (blob), the store of the ownership claims
/// for load balancing (the same blob container, as the official SDKs do).
pub async fn checkpoint_stores(
    cfg: &CheckpointConfig,
) -> Result<(Arc<dyn CheckpointStore>, Option<Arc<dyn OwnershipStore>>)> {
    match &cfg.store {
        CheckpointStoreConfig::File { dir } => Ok((Arc::new(FileCheckpointStore::new(dir)), None)),
        CheckpointStoreConfig::Blob {
            connection_string,
            container,
            create_container,
        } => {
            let store =
                BlobCheckpointStore::from_connection_string(connection_string.expose(), container)
                    .context("opening the blob checkpoint store")?;
            if *create_container {
                store
                    .ensure_container()
                    .await
                    .with_context(|| format!("creating blob container {container}"))?;
            }
            let store = Arc::new(store);
            Ok((store.clone(), Some(store)))
        }
    }
}

/// Loads the sink plugins.
pub fn plugins(dir: &Path) -> Result<PluginRegistry> {
    PluginRegistry::load_dir(dir).with_context(|| {
        format!(
            "loading sink plugins from {} (set plugin_dir or AZLOG_PLUGIN_DIR)",
            dir.display()
        )
    })
}

/// Opens every sink, retrying retryable open errors with backoff until `stop`. Permanent
/// errors (bad settings, unknown plugin) fail at once.
/// A permanent error of a sink whose relative path (at a key its plugin does not declare as a
/// path) is only found beside the configuration file says so ([`relative_path_hint`]).
pub async fn open_sinks(
    configs: &[SinkConfig],
    registry: &PluginRegistry,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<Vec<SinkHost>>> {
    let mut hosts = Vec::with_capacity(configs.len());
    for cfg in configs {
        let mut attempt = 0u32;
        let host = loop {
            attempt += 1;
            match SinkHost::new(cfg, registry) {
                Ok(h) => break h,
                Err(HostError::Open { error, .. }) if error.kind != ErrorKind::Permanent => {
                    let wait = Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)))
                        .min(Duration::from_secs(30));
                    tracing::warn!(sink = %cfg.name, error = %error, attempt, wait_ms = wait.as_millis() as u64, "sink failed to open; retrying");
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return Ok(None),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    let plugin = registry.get(&cfg.plugin);
                    let resolved = plugin.as_ref().map(|p| p.path_keys.as_slice());
                    return Err(
                        match relative_path_hint(cfg, resolved.unwrap_or_default()) {
                            Some(hint) => anyhow::anyhow!("{e} ({hint})"),
                            None => e.into(),
                        },
                    );
                }
            }
        };
        hosts.push(host);
    }
    Ok(Some(hosts))
}

/// Connects to Event Hubs, retrying until `stop` (or `attempts` failures).
pub async fn eventhubs_source(
    eh: &EventHubsConfig,
    attempts: Option<u32>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<EventHubsSource>> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let r = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(None),
            r = EventHubsSource::connect(eh.endpoint.clone(), eh.reader.clone()) => r,
        };
        match r {
            Ok(s) => return Ok(Some(s)),
            Err(e) if attempts.is_some_and(|n| attempt >= n) => return Err(e),
            Err(e) => {
                let wait = Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6)))
                    .min(Duration::from_secs(30));
                tracing::warn!(error = %format!("{e:#}"), attempt, wait_ms = wait.as_millis() as u64, "cannot connect to Event Hubs; retrying");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return Ok(None),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}
