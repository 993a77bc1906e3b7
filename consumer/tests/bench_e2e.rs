//! End-to-end throughput (ignored by default; run in release):
//! `cargo test --release -p azlog-hub --test bench_e2e -- --ignored --nocapture`.
//! A backlog of `AZLOG_BENCH_RECORDS` records (default 200 000; the sample mix, 20 records per
//! event, 4 partitions) in the in-process emulator is drained by the service over AMQP into a
//! file sink writing ECS JSON; the clock stops when every partition's checkpoint reached its
//! last event (so the figure includes mapping, delivery, acks and checkpoints).
mod pipeline_support;

use std::time::{Duration, Instant};

use azlog_emulator::{EmulatorConfig, HubSpec};
use azlog_hub::checkpoint::{CheckpointKey, CheckpointStore, FileCheckpointStore};
use azlog_hub::config::HubConfig;
use azlog_hub::service;
use bytes::Bytes;
use pipeline_support::*;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
async fn drain_a_backlog_into_a_file_sink() {
    let total: usize = std::env::var("AZLOG_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    const PER_EVENT: usize = 20;
    const PARTITIONS: u32 = 4;
    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(
        "bench", PARTITIONS,
    )]))
    .await
    .unwrap();
    let records = sample_records();
    let mut bytes = 0usize;
    let mut n = 0;
    let mut e = 0;
    while n < total {
        let chunk: Vec<String> = (0..PER_EVENT.min(total - n))
            .map(|i| records[(n + i) % records.len()].clone())
            .collect();
        n += chunk.len();
        let body = envelope(&chunk);
        bytes += body.len();
        em.publish(
            "bench",
            Some(&(e % PARTITIONS as usize).to_string()),
            None,
            Bytes::from(body),
        )
        .unwrap();
        e += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let out = dir.path().join("out/ecs.ndjson");
    // AZLOG_BENCH_DISCARD=1: the sink's filter wants nothing (measures reading and mapping).
    let filter = if std::env::var("AZLOG_BENCH_DISCARD").is_ok_and(|v| v == "1") {
        "[sink.filter]\ndatasets = [\"none\"]\n"
    } else {
        ""
    };
    let sink = format!(
        "[[sink]]\nname = \"ecs\"\nplugin = \"file\"\npath = \"{}\"\nrotate_bytes = 0\n{filter}",
        out.display()
    );
    let path = write_hub_config(
        dir.path(),
        &plugins,
        &sink,
        "",
        &em.connection_string("bench"),
    );
    let cfg = HubConfig::load(&path).unwrap();
    let store = FileCheckpointStore::new(&cfg.state_dir);
    let key = CheckpointKey::new("localhost", "bench", "$Default");
    let last: Vec<i64> = (0..PARTITIONS)
        .map(|p| em.partition_info("bench", &p.to_string()).unwrap().last_seq)
        .collect();

    let (stop_tx, stop_rx) = watch::channel(false);
    let c = cfg.clone();
    let started = Instant::now();
    let task = tokio::spawn(async move { service::run(&c, stop_rx).await });
    loop {
        let mut done = true;
        for (p, l) in last.iter().enumerate() {
            let cp = store.load(&key, &p.to_string()).await.unwrap();
            done &= cp.is_some_and(|c| c.sequence == *l);
        }
        if done {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "too slow");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    assert_eq!(summary.records as usize, total);
    let out_bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "bench e2e: {total} records in {e} events ({:.1} MB of event bodies) drained in {secs:.2} s: {:.0} records/s, {:.1} MB/s in, {:.1} MB/s ECS out",
        bytes as f64 / 1e6,
        total as f64 / secs,
        bytes as f64 / 1e6 / secs,
        out_bytes as f64 / 1e6 / secs
    );
    em.shutdown().await.unwrap();
}
