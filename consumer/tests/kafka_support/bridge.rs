//! Helpers of the Event Hubs → Kafka bridge tests: the in-process emulator hub, a config that
//! reads it into the kafka sink (plus the file sink), tagged sample events, checkpoints.
#![allow(dead_code)]
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use azlog_emulator::EmulatorHandle;
use azlog_hub::checkpoint::{CheckpointStore, FileCheckpointStore};
use azlog_hub::config::HubConfig;
use azlog_hub::service;

use super::{read_topic, stage_kafka_plugin, watermarks, Got};
use crate::pipeline_support::HUB;
use crate::pipeline_support::{copy_plugins, id_of, load_config, read_ids, write_hub_config};

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
    load_config(&write_hub_config(
        dir,
        &plugins,
        sinks,
        "[checkpoint]\nevery_ms = 100\n",
        &em.connection_string(HUB),
    ))
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

/// Reads `topic` back until every expected id was seen (or `timeout`); returns how often each
/// id was read and the records. Incremental: duplicates would otherwise make every further
/// poll re-parse everything read so far.
pub async fn read_back(
    brokers: &str,
    topic: &str,
    expected: &BTreeSet<String>,
    timeout: Duration,
) -> (BTreeMap<String, usize>, Vec<Got>) {
    let (b, t, want) = (brokers.to_owned(), topic.to_owned(), expected.clone());
    let got = tokio::task::spawn_blocking(move || {
        let (mut seen, mut upto) = (BTreeSet::new(), 0);
        read_topic(&b, &t, timeout, |read| {
            for g in &read[upto..] {
                seen.insert(id_of(&g.value));
            }
            upto = read.len();
            seen.len() >= want.len() && want.is_subset(&seen)
        })
    })
    .await
    .unwrap();
    let mut counts = BTreeMap::new();
    for g in &got {
        *counts.entry(id_of(&g.value)).or_insert(0) += 1;
    }
    (counts, got)
}

/// The expected ids never read back, and the number of extra copies read.
pub fn missing_and_duplicates<'a>(
    expected: &'a BTreeSet<String>,
    counts: &BTreeMap<String, usize>,
) -> (Vec<&'a String>, usize) {
    let missing = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    (missing, counts.values().map(|c| c - 1).sum())
}

/// For a failure message: the broker's watermarks (partition, low, high) and how many of the
/// `missing` ids the side file sink (`side`) lacks too.
pub async fn loss_evidence(
    brokers: &str,
    topic: &str,
    side: &Path,
    missing: &[&String],
) -> (Vec<(i32, i64, i64)>, usize) {
    let (b, t) = (brokers.to_owned(), topic.to_owned());
    let marks = tokio::task::spawn_blocking(move || watermarks(&b, &t))
        .await
        .unwrap();
    let side_ids: BTreeSet<String> = read_ids(side).into_iter().collect();
    let in_neither = missing.iter().filter(|id| !side_ids.contains(**id)).count();
    (marks, in_neither)
}
