//! End to end against the in-process Event Hubs emulator over AMQP, through the official Rust SDK
//! (`EventHubsSource`): every family to a file sink with dead letters and a restart from the
//! checkpoint, a time-range replay, and (in `eventhubs_crash.rs`) kill -9 crash recovery.
mod pipeline_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use azlog_emulator::{EmulatorConfig, EmulatorHandle, HubSpec};
use azlog_hub::checkpoint::{CheckpointStore, FileCheckpointStore};
use azlog_hub::config::HubConfig;
use azlog_hub::service::{self, ReplayFrom, ReplayRequest};
use azlog_hub::source::position::format_time;
use azlog_hub::source::Until;
use azlog_mapper::deadletter::{now_ns, read_dead_letters};
use bytes::Bytes;
use pipeline_support::*;
use tokio::sync::watch;

const HUB: &str = "azure-logs";

async fn emulator(partitions: u32) -> EmulatorHandle {
    azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(
        HUB, partitions,
    )]))
    .await
    .expect("emulator starts")
}

/// A config reading the emulator hub (its connection string as users paste it; the custom
/// endpoint is derived from `UseDevelopmentEmulator=true`).
fn config(dir: &Path, emulator: &EmulatorHandle, sinks: &str, extra: &str) -> HubConfig {
    let plugins = stage_plugins(dir);
    load_config(&write_hub_config(
        dir,
        &plugins,
        sinks,
        extra,
        &emulator.connection_string(HUB),
    ))
}

fn checkpoint_seq(config: &HubConfig, partition: &str) -> Option<i64> {
    let store = FileCheckpointStore::new(&config.state_dir);
    let key = service::assemble::checkpoint_key(config.eventhubs().unwrap());
    futures::executor::block_on(store.load(&key, partition))
        .expect("load checkpoint")
        .map(|c| c.sequence)
}

/// Runs the service against the emulator until `cond`, then stops it gracefully.
async fn run_until(config: &HubConfig, timeout: Duration, cond: impl FnMut() -> bool) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { service::run(&cfg, stop_rx).await });
    let reached = wait_until(timeout, cond).await;
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    assert!(reached, "not reached in {timeout:?}: {summary:#?}");
    assert_eq!(summary.error, None, "{summary:#?}");
}

/// Publishes the sample records, 4 per event over 2 partitions, plus one malformed event as the
/// 2nd event of partition 0 in round 0.
fn publish(
    em: &EmulatorHandle,
    records: &[String],
    round: usize,
    expected: &mut BTreeSet<String>,
    n: &mut usize,
) {
    for (i, chunk) in records.chunks(4).enumerate() {
        let body: Vec<String> = chunk
            .iter()
            .map(|r| {
                let id = format!("r{round}-{n}");
                *n += 1;
                expected.insert(id.clone());
                tag(r, &id)
            })
            .collect();
        let p = (i % 2).to_string();
        em.publish(HUB, Some(&p), None, Bytes::from(envelope(&body)))
            .unwrap();
        if i == 0 && round == 0 {
            em.publish(
                HUB,
                Some("0"),
                None,
                Bytes::from_static(
                    b"{\"records\":[{\"time\":\"2024-05-01T10:00:00Z\",\"category\":",
                ),
            )
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_every_family_dead_letters_and_restart_from_checkpoint() {
    let em = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/raw.ndjson");
    let ecs = dir.path().join("out/ecs.ndjson");
    let sinks = format!(
        "{}\n[[sink]]\nname = \"ecs\"\nplugin = \"file\"\npath = \"{}\"\n[sink.batch]\nlinger_ms = 20\n",
        raw_file_sink("raw", &out),
        ecs.display()
    );
    let cfg = config(dir.path(), &em, &sinks, "[checkpoint]\nevery_ms = 100\n");
    let records = sample_records();
    let mut expected = BTreeSet::new();
    let mut n = 0;
    publish(&em, &records, 0, &mut expected, &mut n);
    let want = expected.len();
    run_until(&cfg, Duration::from_secs(60), || {
        read_ids(&out).len() >= want
    })
    .await;
    let families: BTreeSet<String> = std::fs::read_to_string(&ecs)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.get("azlog.family")
                .or_else(|| v.pointer("/azlog/family"))
                .and_then(|f| f.as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(families.len() >= 20, "{families:?}");
    let dead: Vec<_> = read_dead_letters(&cfg.dead_letter)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].partition, "0");
    assert_eq!(
        dead[0].sequence, 1,
        "the malformed event is the 2nd of partition 0"
    );
    assert!(!dead[0].offset.is_empty(), "the offset is recorded");
    let p0 = em.partition_info(HUB, "0").unwrap();
    assert_eq!(checkpoint_seq(&cfg, "0"), Some(p0.last_seq));

    // Restart: only the new events are delivered.
    publish(&em, &records, 1, &mut expected, &mut n);
    let want = expected.len();
    run_until(&cfg, Duration::from_secs(60), || {
        read_ids(&out).len() >= want
    })
    .await;
    let ids = read_ids(&out);
    assert_eq!(ids.len(), want, "no duplicates after a graceful restart");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    em.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_replay_of_a_time_range() {
    let em = emulator(2).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out/replay.ndjson");
    let cfg = config(dir.path(), &em, &raw_file_sink("replayed", &out), "");
    let records = sample_records();
    let batch = |name: &str| -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for (i, record) in records.iter().take(10).enumerate() {
            let id = format!("{name}{i}");
            let body = envelope(&[tag(record, &id)]);
            em.publish(HUB, Some(&(i % 2).to_string()), None, Bytes::from(body))
                .unwrap();
            ids.insert(id);
        }
        ids
    };
    let pause = || std::thread::sleep(Duration::from_millis(30));
    batch("a");
    pause();
    let from = now_ns();
    pause();
    let b = batch("b");
    pause();
    let until = now_ns();
    pause();
    batch("c");
    let req = ReplayRequest {
        from: ReplayFrom::parse(&format!("time:{}", format_time(from))).unwrap(),
        until: Some(Until::parse(&format!("time:{}", format_time(until))).unwrap()),
        partitions: None,
        sinks: None,
        commit: false,
        idle_timeout: Duration::from_secs(10),
        progress: false,
        dead_letter: None,
    };
    let (_tx, rx) = watch::channel(false);
    let summary = service::replay(&cfg, &req, rx).await.unwrap();
    assert_eq!(summary.error, None, "{summary:#?}");
    let got = read_ids(&out);
    assert_eq!(got.len(), b.len(), "{got:?}");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), b);
    assert_eq!(checkpoint_seq(&cfg, "0"), None, "live checkpoint untouched");
    em.shutdown().await.unwrap();
}
