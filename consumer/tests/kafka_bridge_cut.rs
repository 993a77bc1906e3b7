//! The Event Hubs → Kafka bridge with the connection to the broker cut while batches are in
//! flight: does the kafka sink acknowledge (let the host checkpoint) records that never
//! reached the broker?
//!
//! A private tansu (memory storage: durable for the life of the process, it is never stopped)
//! is advertised behind an in-test TCP forwarder ([`Forwarder`]); the test cuts the forwarder
//! (every live connection dropped, new ones refused) as soon as the first checkpoint exists,
//! while the first wave is still being produced, keeps publishing while cut, waits longer than
//! `message_timeout_ms`, restores it, publishes a last wave and waits until everything is
//! checkpointed. Then every record id must be in the topic (read from tansu directly);
//! duplicates are allowed (retries after a lost acknowledgement) and reported.
//!
//! This separates the two explanations of the losses of the earlier noida-db restart test
//! (kafka_bridge.rs): here the broker never loses anything it wrote, so a missing record is
//! one the sink acknowledged without the broker having it.
mod kafka_support;
mod pipeline_support;

use std::time::{Duration, Instant};

use azlog_emulator::EmulatorHandle;
use azlog_hub::config::HubConfig;
use azlog_hub::service;
use kafka_support::bridge::*;
use kafka_support::*;
use pipeline_support::*;
use tokio::sync::watch;

const PARTITIONS: u32 = 2;
const MESSAGE_TIMEOUT_MS: u64 = 2000;

fn checkpoints(cfg: &HubConfig) -> Vec<Option<i64>> {
    (0..PARTITIONS)
        .map(|p| checkpoint_seq(cfg, &p.to_string()))
        .collect()
}

fn last_seqs(em: &EmulatorHandle) -> Vec<i64> {
    (0..PARTITIONS)
        .map(|p| em.partition_info(HUB, &p.to_string()).unwrap().last_seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_mid_produce_loses_no_acknowledged_record() {
    let work = tempfile::tempdir().unwrap();
    let tansu_port = free_port();
    let fwd = Forwarder::start(tansu_port).await;
    let _tansu = Tansu::start(tansu_port, fwd.port, &work.path().join("tansu.log"));
    // The sink only knows the forwarder; the test reads tansu through the forwarder while it is
    // open (tansu advertises the forwarder's port).
    let brokers = format!("127.0.0.1:{}", fwd.port);
    let topic = unique("cut");
    create_topic(&client(&brokers, &[]), &topic, 2).await;
    let em = emulator(PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("out/side.ndjson");
    let sinks = format!(
        "{}\n{}",
        kafka_sink(&brokers, &topic, MESSAGE_TIMEOUT_MS),
        raw_file_sink("side", &side)
    );
    let cfg = config(dir.path(), &em, &sinks);
    let t0 = Instant::now();
    let mut expected = publish(&em, "a", 300, 10, PARTITIONS);
    let (stop_tx, stop_rx) = watch::channel(false);
    let run_cfg = cfg.clone();
    let task = tokio::spawn(async move { service::run(&run_cfg, stop_rx).await });

    // Cut as soon as anything is checkpointed: the first wave is still being produced.
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoints(&cfg).iter().all(Option::is_none) {
        assert!(Instant::now() < deadline, "nothing checkpointed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fwd.cut();
    let cp_at_cut = checkpoints(&cfg);
    let last_at_cut = last_seqs(&em);
    expected.extend(publish(&em, "c", 40, 10, PARTITIONS));
    // Longer than message_timeout_ms: whatever was in flight is reported failed (or delivered).
    tokio::time::sleep(Duration::from_millis(MESSAGE_TIMEOUT_MS + 2000)).await;
    let cp_while_cut = checkpoints(&cfg);
    fwd.restore();
    expected.extend(publish(&em, "d", 20, 10, PARTITIONS));
    let reached = wait_until(Duration::from_secs(60), || {
        all_checkpointed(&cfg, &em, PARTITIONS)
    })
    .await;
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    assert!(reached, "checkpoints did not reach the end: {summary:#?}");
    assert_eq!(summary.error, None, "{summary:#?}");
    eprintln!(
        "cut: checkpoints at the cut {cp_at_cut:?} of {last_at_cut:?} (first wave still in flight), \
         at the end of the cut {cp_while_cut:?}, all checkpointed after {:?}",
        t0.elapsed()
    );

    // Everything is checkpointed, so everything was acknowledged to the host: all must be there.
    let (counts, got) = read_back(&brokers, &topic, &expected, Duration::from_secs(20)).await;
    let (missing, dups) = missing_and_duplicates(&expected, &counts);
    eprintln!(
        "cut: {} records published, {} read back, {} missing, {dups} duplicates ({:?} in all)",
        expected.len(),
        got.len(),
        missing.len(),
        t0.elapsed()
    );
    if !missing.is_empty() {
        let (marks, missing_in_file) = loss_evidence(&brokers, &topic, &side, &missing).await;
        panic!(
            "{} acknowledged records are not in kafka, e.g. {:?} ({missing_in_file} of them missing in the file sink too); broker watermarks (partition, low, high) {marks:?}",
            missing.len(),
            &missing[..missing.len().min(5)],
        );
    }
    em.shutdown().await.unwrap();
}
