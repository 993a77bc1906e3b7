//! The Kafka source against a real broker (tansu, `scripts/kafka-start.sh`):
//! records produced into Kafka (one-record and multi-record envelopes of every sample family,
//! and a malformed one) go through envelope → mapper → sinks into the file sink and rsyslog;
//! the malformed one is dead-lettered with its topic/partition/offset; offsets are committed to
//! the group only for acknowledged records; `azlog-hub replay` from an offset and from a time
//! delivers exactly the expected records.
mod kafka_support;
mod pipeline_support;
mod syslog_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use azlog_hub::service;
use kafka_support::*;
use pipeline_support::*;
use syslog_support::{received, syslog_out};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_kafka_reach_the_file_sink_and_rsyslog() {
    let brokers = brokers();
    let syslog = syslog_out();
    let topic = unique("azsrc");
    let group = unique("azsrc-g");
    let cc = client(&brokers, &[]);
    create_topic(&cc, &topic, 2).await;
    let producer = producer(&cc);

    // Every sample family, one record per message, alternating partitions; one envelope of
    // three records; one malformed message.
    let samples = sample_records();
    assert!(samples.len() >= 10);
    let mut ids = BTreeSet::new();
    for (i, r) in samples.iter().enumerate() {
        let id = format!("s{i}");
        ids.insert(id.clone());
        let body = envelope(&[tag(r, &id)]);
        send(&producer, &topic, (i % 2) as i32, body.as_bytes(), None).await;
    }
    let multi: Vec<String> = (0..3)
        .map(|i| {
            let id = format!("m{i}");
            ids.insert(id.clone());
            tag(&samples[i], &id)
        })
        .collect();
    send(&producer, &topic, 0, envelope(&multi).as_bytes(), None).await;
    let bad_offset = send(&producer, &topic, 1, b"{\"records\":[{\"time\": nope", None).await;

    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let out = dir.path().join("out/raw.ndjson");
    let app = format!(
        "azkafka{}x{:06x}",
        std::process::id(),
        fastrand::u32(..0xffffff)
    );
    let mut sinks = raw_file_sink("files", &out);
    if syslog.is_some() {
        sinks.push_str(&format!(
            "[[sink]]\nname = \"siem\"\nplugin = \"cef\"\nhost = \"127.0.0.1\"\nport = 15514\nprotocol = \"tcp\"\napp_name = \"{app}\"\n[sink.batch]\nmax_records = 50\nlinger_ms = 20\n"
        ));
    }
    let path = write_config(
        dir.path(),
        &plugins,
        &sinks,
        &format!(
            "{}\n[checkpoint]\nevery_ms = 200\n",
            source_section(&brokers, &topic, &group)
        ),
    );
    let config = load_config(&path);
    let mut first = config.clone();
    let metrics_addr = free_addr();
    first.metrics.listen = Some(metrics_addr);

    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move { service::run(&first, stop_rx).await });
    let want = ids.len();
    let reached = wait_until(Duration::from_secs(90), || {
        let files = read_ids(&out).len() >= want;
        let sys = syslog
            .as_ref()
            .is_none_or(|o| received(o, &app).len() >= want);
        files && sys
    })
    .await;
    // Offsets are committed once acknowledged (auto-commit every 5 s; the final commit at stop).
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The consumer's own counters: both partitions assigned, offsets committed, no errors.
    let page = http_get(metrics_addr, "/metrics").await;
    let one = |name: &str| match metric(&page, &format!("{name} "))[..] {
        [v] => v,
        _ => panic!("{name}: not once on the page:\n{page}"),
    };
    assert_eq!(one("azlog_kafka_assigned_partitions"), 2.0);
    assert!(one("azlog_kafka_rebalance_assigns_total") >= 1.0);
    assert!(one("azlog_kafka_commits_total") >= 1.0, "{page}");
    assert_eq!(one("azlog_kafka_commit_errors_total"), 0.0);
    assert_eq!(one("azlog_kafka_rebalance_drain_timeouts_total"), 0.0);
    let _ = stop_tx.send(true);
    let summary = task.await.expect("join").expect("run");
    assert!(
        reached,
        "{} of {want} in the file; {summary:#?}",
        read_ids(&out).len()
    );
    assert!(summary.error.is_none(), "{summary:#?}");

    let got: Vec<String> = read_ids(&out);
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got_set, ids, "every record reached the file sink");
    assert_eq!(got.len(), ids.len(), "no duplicates in a clean run");
    if let Some(o) = &syslog {
        let msgs = received(o, &app);
        assert_eq!(msgs.len(), ids.len(), "one syslog message per record");
        for m in &msgs {
            let text = m.to_string();
            assert!(text.contains("CEF:0|"), "{text}");
        }
    }
    assert_eq!(summary.dead_lettered, 1, "{summary:#?}");
    let dl = std::fs::read_to_string(&config.dead_letter).expect("dead-letter file");
    let entry: serde_json::Value =
        serde_json::from_str(dl.lines().next().expect("one entry")).expect("JSON");
    assert_eq!(entry["partition"], format!("{topic}/1"));
    assert_eq!(entry["offset"], bad_offset.to_string());
    assert_eq!(entry["sequence"], bad_offset);
    assert!(
        entry["source"].as_str().unwrap().starts_with("kafka:"),
        "{entry}"
    );
    assert!(entry["raw"].as_str().unwrap().contains("nope"), "{entry}");

    // The group's committed offsets cover everything (offset of the last record + 1).
    let per_partition = [samples.len().div_ceil(2) + 1, samples.len() / 2 + 1];
    let c = committed_offsets(&brokers, &group, &topic, 2);
    assert_eq!(
        c,
        vec![Some(per_partition[0] as i64), Some(per_partition[1] as i64)],
        "committed offsets"
    );

    // A second run with the same group reads nothing again.
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { service::run(&cfg, stop_rx).await });
    tokio::time::sleep(Duration::from_secs(6)).await;
    let _ = stop_tx.send(true);
    let again = task.await.expect("join").expect("run");
    assert_eq!(
        again.events, 0,
        "resumed after the committed offsets: {again:#?}"
    );
    assert_eq!(read_ids(&out).len(), ids.len());
}

fn replay(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .arg("replay")
        .arg("--config")
        .arg(config)
        .args(args)
        .args(["--quiet", "--idle-timeout", "5"])
        .env_remove("AZLOG_PLUGIN_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run azlog-hub replay");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_an_offset_or_a_time_delivers_exactly_that_range() {
    let brokers = brokers();
    let topic = unique("azreplay");
    let group = unique("azreplay-g");
    let cc = client(&brokers, &[]);
    create_topic(&cc, &topic, 2).await;
    let producer = producer(&cc);
    let samples = sample_records();
    // 20 records on partition 0, one per message, timestamps one minute apart; 5 on partition 1.
    let base_ms: i64 = 1_714_557_600_000; // 2024-05-01T10:00:00Z
    for i in 0..20i64 {
        let body = envelope(&[tag(
            &samples[i as usize % samples.len()],
            &format!("p0-{i}"),
        )]);
        let off = send(
            &producer,
            &topic,
            0,
            body.as_bytes(),
            Some(base_ms + i * 60_000),
        )
        .await;
        assert_eq!(off, i);
    }
    for i in 0..5i64 {
        let body = envelope(&[tag(&samples[0], &format!("p1-{i}"))]);
        send(
            &producer,
            &topic,
            1,
            body.as_bytes(),
            Some(base_ms + i * 60_000),
        )
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, out) = write_raw_file_config(
        dir.path(),
        &source_section(&brokers, &topic, &group),
        PLACEHOLDER_EVENTHUBS,
    );

    // By offset, bounded, one partition.
    let p0 = format!("{topic}/0");
    let (ok, text) = replay(
        &path,
        &[
            "--from",
            "offset:3",
            "--until",
            "offset:7",
            "--partition",
            &p0,
        ],
    );
    assert!(ok, "{text}");
    let want: Vec<String> = (3..=7).map(|i| format!("p0-{i}")).collect();
    assert_eq!(read_ids(&out), want, "{text}");
    assert!(text.contains("live checkpoint untouched"), "{text}");
    assert_eq!(
        committed_offsets(&brokers, &group, &topic, 2),
        vec![None, None]
    );

    // By time (10:15 → offset 15 on partition 0, nothing on partition 1), to each end.
    std::fs::remove_file(&out).unwrap();
    let (ok, text) = replay(&path, &["--from", "time:2024-05-01T10:15:00Z"]);
    assert!(ok, "{text}");
    let got: BTreeSet<String> = read_ids(&out).into_iter().collect();
    let want: BTreeSet<String> = (15..20).map(|i| format!("p0-{i}")).collect();
    assert_eq!(got, want, "{text}");

    // Earliest with --commit: everything, and the group's offsets move to the end.
    std::fs::remove_file(&out).unwrap();
    let (ok, text) = replay(&path, &["--from", "earliest", "--commit"]);
    assert!(ok, "{text}");
    assert_eq!(read_ids(&out).len(), 25, "{text}");
    assert_eq!(
        committed_offsets(&brokers, &group, &topic, 2),
        vec![Some(20), Some(5)]
    );
    // From the group's offsets now: nothing left.
    std::fs::remove_file(&out).unwrap();
    let (ok, text) = replay(&path, &["--from", "checkpoint"]);
    assert!(ok, "{text}");
    assert_eq!(read_ids(&out).len(), 0, "{text}");
}

#[test]
fn check_config_validates_a_kafka_source_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let secret = dir.path().join("eh.secret");
    std::fs::write(
        &secret,
        "Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=S3CRET=;EntityPath=insights-logs",
    )
    .unwrap();
    let good = write_config(
        dir.path(),
        &plugins,
        &raw_file_sink("files", &dir.path().join("out.ndjson")),
        &format!(
            "[source.kafka]\nconnection_string_file = \"{}\"\ngroup_id = \"azlog\"\n",
            secret.display()
        ),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["check-config", "--config"])
        .arg(&good)
        .env_remove("AZLOG_PLUGIN_DIR")
        .output()
        .expect("check-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "source      kafka myns.servicebus.windows.net:9093 topics insights-logs group azlog"
        ),
        "{text}"
    );
    assert!(!text.contains("S3CRET"), "{text}");

    let bad_dir = dir.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = write_config(
        &bad_dir,
        &plugins,
        &raw_file_sink("files", &dir.path().join("out.ndjson")),
        "[source.kafka]\nbootstrap_servers = \"broker\"\ntopic_pattern = \"logs.*\"\n[source.kafka.properties]\n\"enable.auto.commit\" = true\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["check-config", "--config"])
        .arg(&bad)
        .env_remove("AZLOG_PLUGIN_DIR")
        .output()
        .expect("check-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for want in [
        "`broker` is not host:port",
        "must start with `^`",
        "group_id: missing",
        "enable.auto.commit: set by azlog-hub",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
}
