//! Crash recovery: `azlog-hub run` (the real binary) reads ≥ 100 000 records from the
//! in-process Event Hubs emulator into a file sink and is killed with SIGKILL at random moments,
//! then restarted, at least 10 times. Every record id must reach the sink at least once (0 lost);
//! duplicates are reported (bounded by the checkpoint cadence and the in-flight bound).
mod pipeline_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use azlog_emulator::{EmulatorConfig, HubSpec};
use bytes::Bytes;
use pipeline_support::*;

const HUB: &str = "crash";
const PARTITIONS: u32 = 4;
const EVENTS: usize = 10_000;
const PER_EVENT: usize = 10;
const KILLS: usize = 12;

/// Every `"azlogTestId":"…"` in the sink file (robust to a torn last line after SIGKILL).
fn scan_ids(path: &Path) -> (HashMap<String, usize>, usize, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut torn = 0;
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        if serde_json::from_str::<serde_json::Value>(line).is_err() {
            torn += 1;
        }
        let mut rest = line;
        while let Some(i) = rest.find("\"azlogTestId\":\"") {
            rest = &rest[i + 15..];
            let end = rest.find('"').unwrap_or(rest.len());
            *counts.entry(rest[..end].to_owned()).or_default() += 1;
            rest = &rest[end..];
        }
    }
    (counts, lines, torn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_no_record() {
    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(
        HUB, PARTITIONS,
    )]))
    .await
    .expect("emulator");
    let dir = tempfile::tempdir().unwrap();
    let (path, out) = write_raw_file_config(
        dir.path(),
        "[checkpoint]\nevery_events = 200\nevery_ms = 250\n[pipeline]\ndrain_timeout_secs = 5\n",
        &em.connection_string(HUB),
    );
    let log = dir.path().join("azlog-hub.log");

    // Publish 100 000 records over ~10 s while the consumer is being killed.
    let publisher = {
        let broker = em.broker().clone();
        std::thread::spawn(move || {
            let hub = broker.hub(HUB).expect("hub");
            let mut id = 0;
            for e in 0..EVENTS {
                let recs: Vec<String> = (0..PER_EVENT)
                    .map(|_| {
                        id += 1;
                        crash_record(id - 1)
                    })
                    .collect();
                let body = envelope(&recs);
                let p = (e % PARTITIONS as usize).to_string();
                let idx = hub.route(Some(&p), None).expect("route");
                hub.append(
                    idx,
                    vec![(azlog_emulator::event::data_message(Bytes::from(body)), None)],
                )
                .expect("append");
                if e % 100 == 99 {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };

    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let started = Instant::now();
    let mut kill_times = Vec::new();
    for _ in 0..KILLS {
        let mut child = spawn_run(&path, &log, "warn");
        let wait = Duration::from_millis(rng.u64(300..2500));
        tokio::time::sleep(wait).await;
        let delivered = scan_ids(&out).0.len();
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        kill_times.push((started.elapsed(), delivered));
    }
    publisher.join().expect("publisher");

    // Final run until every record is there, then a graceful stop.
    let total = EVENTS * PER_EVENT;
    let mut child = spawn_run(&path, &log, "warn");
    let done = wait_until(Duration::from_secs(180), || scan_ids(&out).0.len() >= total).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    let (counts, lines, torn) = scan_ids(&out);
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let missing: Vec<usize> = (0..total)
        .filter(|i| !counts.contains_key(&format!("id{i}")))
        .take(10)
        .collect();
    eprintln!(
        "crash test: {KILLS} kills at {kill_times:?} (elapsed, unique ids delivered); {total} records, {} unique delivered, {duplicates} duplicates ({:.2}%), {lines} lines, {torn} torn lines, final exit {status:?}",
        counts.len(),
        duplicates as f64 * 100.0 / total as f64
    );
    if !done || !missing.is_empty() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: String = tail.lines().rev().take(40).collect::<Vec<_>>().join("\n");
        panic!("lost records (first missing {missing:?}); azlog-hub log (last lines, reversed):\n{tail}");
    }
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    assert_eq!(counts.len(), total, "0 lost");
    // Each kill re-delivers at most what was not yet checkpointed: the checkpoint cadence (200
    // events) plus the in-flight bound, per partition, each event holding 10 records.
    let bound = KILLS * PARTITIONS as usize * (200 + 2000) * PER_EVENT;
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");
    em.shutdown().await.unwrap();
}
