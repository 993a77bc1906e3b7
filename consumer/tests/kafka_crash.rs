//! Crash recovery with the Kafka source: `azlog-hub run` (the real binary) consumes ≥ 20 000
//! records from a real broker (tansu) into a file sink and is killed with SIGKILL at random
//! moments while records are still being produced, then restarted (≥ 3 kills). Every record
//! must reach the sink at least once (0 lost: offsets are committed only for acknowledged
//! records); duplicates are reported.
mod kafka_support;
mod pipeline_support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_support::*;
use pipeline_support::*;
use rdkafka::producer::FutureRecord;

const PARTITIONS: i32 = 3;
const MESSAGES: usize = 2_000;
const PER_MESSAGE: usize = 10;
const KILLS: usize = 4;

/// Every `"azlogTestId":"…"` in the sink file (robust to a torn last line after SIGKILL).
fn scan_ids(path: &Path) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(i) = rest.find("\"azlogTestId\":\"") {
            rest = &rest[i + 15..];
            let end = rest.find('"').unwrap_or(rest.len());
            *counts.entry(rest[..end].to_owned()).or_default() += 1;
            rest = &rest[end..];
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_consumption_loses_no_record() {
    let brokers = brokers();
    let topic = unique("azcrash");
    let group = unique("azcrash-g");
    let cc = client(&brokers, &[]);
    create_topic(&cc, &topic, PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, out) = write_raw_file_config(
        dir.path(),
        &format!(
            "{}\n[checkpoint]\nevery_events = 100\nevery_ms = 250\n[pipeline]\ndrain_timeout_secs = 5\n",
            source_section(&brokers, &topic, &group)
        ),
        PLACEHOLDER_EVENTHUBS,
    );
    let log = dir.path().join("azlog-hub.log");

    // 2 000 messages of 10 records (20 000 records) over ~20 s while the consumer is killed.
    let publisher = {
        let producer = producer(&cc);
        let topic = topic.clone();
        tokio::spawn(async move {
            let mut id = 0;
            for chunk in 0..MESSAGES / 50 {
                let mut sends = Vec::new();
                for m in 0..50 {
                    let recs: Vec<String> = (0..PER_MESSAGE)
                        .map(|_| {
                            id += 1;
                            crash_record(id - 1)
                        })
                        .collect();
                    let body = envelope(&recs);
                    let p = ((chunk * 50 + m) % PARTITIONS as usize) as i32;
                    let producer = producer.clone();
                    let topic = topic.clone();
                    sends.push(async move {
                        producer
                            .send(
                                FutureRecord::<(), _>::to(&topic)
                                    .partition(p)
                                    .payload(&body),
                                Duration::from_secs(30),
                            )
                            .await
                            .map(|_| ())
                            .map_err(|(e, _)| e.to_string())
                    });
                }
                for r in futures::future::join_all(sends).await {
                    r.expect("produce");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    let mut rng = fastrand::Rng::with_seed(0x6b61);
    let started = Instant::now();
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        let mut child = spawn_run(&path, &log, "warn,azlog_hub::source::kafka=info");
        // Kill once it made progress (joining the group takes a few seconds), at a random moment.
        let before = scan_ids(&out).len();
        let progressed =
            wait_until(Duration::from_secs(20), || scan_ids(&out).len() > before).await;
        tokio::time::sleep(Duration::from_millis(rng.u64(200..1500))).await;
        let delivered = scan_ids(&out).len();
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        kills.push((started.elapsed(), progressed, delivered));
    }
    publisher.await.expect("publisher");

    // Final run until every record is there, then a graceful stop.
    let total = MESSAGES * PER_MESSAGE;
    let mut child = spawn_run(&path, &log, "warn,azlog_hub::source::kafka=info");
    let done = wait_until(Duration::from_secs(180), || scan_ids(&out).len() >= total).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    let counts = scan_ids(&out);
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let missing: Vec<usize> = (0..total)
        .filter(|i| !counts.contains_key(&format!("id{i}")))
        .take(10)
        .collect();
    eprintln!(
        "kafka crash test: {KILLS} kills at {kills:?} (elapsed, progressed, unique ids delivered); {total} records, {} unique delivered, {duplicates} duplicates ({:.2}%), final exit {status:?}",
        counts.len(),
        duplicates as f64 * 100.0 / total as f64
    );
    if !done || !missing.is_empty() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: String = tail.lines().rev().take(40).collect::<Vec<_>>().join("\n");
        panic!("lost records (first missing {missing:?}); azlog-hub log (last lines, reversed):\n{tail}");
    }
    assert!(
        kills.iter().filter(|k| k.1).count() >= 3,
        "at least 3 kills happened during consumption: {kills:?}"
    );
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    assert_eq!(counts.len(), total, "0 lost");
}
