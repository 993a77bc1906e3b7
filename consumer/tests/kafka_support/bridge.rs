//! Helpers of the Event Hubs → Kafka bridge tests: the in-process emulator hub, a config that
//! reads it into the kafka sink (plus the file sink), tagged sample events, checkpoints.
#![allow(dead_code)]
use std::path::Path;

use azlog_emulator::EmulatorHandle;
use azlog_hub::checkpoint::{CheckpointStore, FileCheckpointStore};
use azlog_hub::config::HubConfig;
use azlog_hub::service;

use super::stage_kafka_plugin;
use crate::pipeline_support::HUB;
use crate::pipeline_support::{copy_plugins, load_config, write_config};

pub fn kafka_sink(brokers: &str, topic: &str, message_timeout_ms: u64) -> String {
    format!(
        r#"[[sink]]
name = "kafka"
plugin = "kafka"
brokers = "{brokers}"
topic = "{topic}"
format = "raw"
message_timeout_ms = {message_timeout_ms}
[sink.properties]
"socket.nagle.disable" = true
"batch.num.messages" = 5000
"reconnect.backoff.max.ms" = 1000
[sink.batch]
max_records = 200
linger_ms = 20
[sink.retry]
initial_backoff_ms = 100
max_backoff_ms = 1000
"#
    )
}

/// A config reading the emulator hub into the kafka sink.
pub fn config(dir: &Path, em: &EmulatorHandle, sinks: &str) -> HubConfig {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    stage_kafka_plugin(&plugins);
    copy_plugins(&plugins, &["azlog-sink-file"]);
    let path = write_config(dir, &plugins, sinks, "[checkpoint]\nevery_ms = 100\n");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "Endpoint=sb://test.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=logs",
        &em.connection_string(HUB),
    );
    std::fs::write(&path, text).unwrap();
    load_config(&path)
}

pub fn checkpoint_seq(config: &HubConfig, partition: &str) -> Option<i64> {
    let store = FileCheckpointStore::new(&config.state_dir);
    let key = service::assemble::checkpoint_key(config.eventhubs().unwrap());
    futures::executor::block_on(store.load(&key, partition))
        .expect("load checkpoint")
        .map(|c| c.sequence)
}

/// True when every partition's checkpoint reached its last event.
pub fn all_checkpointed(cfg: &HubConfig, em: &EmulatorHandle, partitions: u32) -> bool {
    (0..partitions).all(|p| {
        let p = p.to_string();
        let last = em.partition_info(HUB, &p).unwrap().last_seq;
        checkpoint_seq(cfg, &p) == Some(last)
    })
}
