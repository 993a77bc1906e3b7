//! The Kafka source reads partitions that appear while it runs, without a restart of the
//! service (tansu broker, `scripts/kafka-start.sh`):
//! * partitions added to a topic (admin CreatePartitions) while `azlog-hub run` consumes it;
//! * a second topic matching `topic_pattern`, created while it runs.
//!
//! Records of the new partitions reach the file sink within a bounded time, none is lost, the
//! old partition keeps flowing, the run did not end (the pipeline restarted inside it:
//! `azlog_kafka_new_partitions_total`), and the new partitions' offsets were committed: a
//! second run of the same group reads only what was produced after the first stopped.
mod kafka_support;
mod pipeline_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use azlog_hub::config::HubConfig;
use azlog_hub::service;
use kafka_support::*;
use pipeline_support::*;
use rdkafka::producer::FutureProducer;
use tokio::sync::watch;

/// How long records of a new partition may take to reach the sink.
const NEW_PARTITION_BOUND: Duration = Duration::from_secs(30);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A run configuration: `source` is the `[source.kafka]` section, a raw file sink into
/// `dir/out/raw.ndjson`, checkpoints every 200 ms, `/metrics` on `metrics`.
fn config(dir: &Path, source: &str, metrics: std::net::SocketAddr) -> (HubConfig, PathBuf) {
    let (path, out) = write_raw_file_config(
        dir,
        &format!("{source}\n[checkpoint]\nevery_ms = 200\n"),
        PLACEHOLDER_EVENTHUBS,
    );
    let text = std::fs::read_to_string(&path).expect("config").replace(
        "[metrics]\nlog_interval_secs = 0\n",
        &format!("[metrics]\nlog_interval_secs = 0\nlisten = \"{metrics}\"\n"),
    );
    std::fs::write(&path, text).expect("config");
    (load_config(&path), out)
}

/// [`source_section`] for the noida-db broker, which refuses session timeouts under 6 s
/// (Kafka's `group.min.session.timeout.ms`).
fn noida_section(brokers: &str, topic: &str, group: &str) -> String {
    source_section(brokers, topic, group).replace(
        "\"session.timeout.ms\" = 3000",
        "\"session.timeout.ms\" = 6000",
    )
}

/// `[source.kafka]` on a topic pattern (test settings as in [`source_section`]).
fn pattern_section(brokers: &str, pattern: &str, group: &str) -> String {
    source_section(brokers, "unused", group).replace(
        "topics = [\"unused\"]",
        &format!("topic_pattern = \"{pattern}\""),
    )
}

/// Produces `n` tagged records `<prefix><i>` into `topic`/`partition`; returns their ids.
async fn produce(
    p: &FutureProducer,
    topic: &str,
    partition: i32,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let samples = sample_records();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("{prefix}{i}");
        let body = envelope(&[tag(&samples[i % samples.len()], &id)]);
        send(p, topic, partition, body.as_bytes(), None).await;
        ids.push(id);
    }
    ids
}

/// Waits until every id is in `out`; returns how long that took (`None`: not within `timeout`).
async fn delivered_within(out: &Path, ids: &[String], timeout: Duration) -> Option<Duration> {
    let started = Instant::now();
    wait_until(timeout, || {
        let got: std::collections::BTreeSet<String> = read_ids(out).into_iter().collect();
        ids.iter().all(|id| got.contains(id))
    })
    .await
    .then(|| started.elapsed())
}

/// Ids of `ids` missing from `out`, and how many lines of `out` are duplicates.
fn missing_and_dups(out: &Path, ids: &[String]) -> (Vec<String>, usize) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in read_ids(out) {
        *counts.entry(id).or_default() += 1;
    }
    let missing = ids
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .cloned()
        .collect();
    (missing, counts.values().map(|c| c - 1).sum())
}

type RunHandle = tokio::task::JoinHandle<anyhow::Result<azlog_hub::pipeline::RunSummary>>;

fn start(cfg: &HubConfig) -> (watch::Sender<bool>, RunHandle) {
    let (stop, rx) = watch::channel(false);
    let cfg = cfg.clone();
    (
        stop,
        tokio::spawn(async move { service::run(&cfg, rx).await }),
    )
}

async fn new_partitions_metric(addr: std::net::SocketAddr) -> f64 {
    let page = http_get(addr, "/metrics").await;
    metric(&page, "azlog_kafka_new_partitions_total")
        .first()
        .copied()
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_while_running_are_read_without_a_restart() {
    init_tracing();
    // tansu 0.6 does not implement CreatePartitions (UnsupportedFeature): a private noida-db.
    let data = tempfile::tempdir().expect("tempdir");
    let broker = Noida::start(&data.path().join("noida"));
    let brokers = broker.brokers();
    let topic = unique("aznewp");
    let group = unique("aznewp-g");
    let cc = client(&brokers, &[]);
    create_topic(&cc, &topic, 1).await;
    let producer = producer(&cc);

    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = free_addr();
    // Few events in flight per partition: the reader waits with one in hand, which the
    // pipeline's stop at the restart drops (it must be read again, not lost).
    let section = format!(
        "{}\n[pipeline]\nmax_in_flight_events = 1\n",
        noida_section(&brokers, &topic, &group)
    );
    let (cfg, out) = config(dir.path(), &section, metrics);
    let mut ids = produce(&producer, &topic, 0, "a", 20).await;
    let (stop, run) = start(&cfg);
    assert!(
        delivered_within(&out, &ids, Duration::from_secs(30))
            .await
            .is_some(),
        "the first partition's records never arrived ({} of {})",
        read_ids(&out).len(),
        ids.len()
    );

    // Two partitions more, while the run consumes and the first partition keeps receiving
    // records (some are in the pipeline when it restarts: they must not be lost).
    let steady = {
        let (producer, topic) = (producer.clone(), topic.clone());
        let (done_tx, mut done) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ids = Vec::new();
            while !*done.borrow_and_update() {
                ids.extend(produce(&producer, &topic, 0, &format!("s{}-", ids.len()), 1).await);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            ids
        });
        (done_tx, task)
    };
    add_partitions(&cc, &topic, 3).await;
    let added = Instant::now();
    // A producer that knows the topic's new partition count (the first one's metadata says 1).
    let producer = kafka_support::producer(&cc);
    let mut new_ids = produce(&producer, &topic, 1, "b", 15).await;
    new_ids.extend(produce(&producer, &topic, 2, "c", 15).await);
    let old_ids = produce(&producer, &topic, 0, "d", 10).await;
    ids.extend(new_ids.iter().cloned());
    ids.extend(old_ids.iter().cloned());
    let took = delivered_within(&out, &ids, NEW_PARTITION_BOUND).await;
    let _ = steady.0.send(true);
    let steady_ids = steady.1.await.expect("steady producer");
    ids.extend(steady_ids.iter().cloned());
    let steady_took = delivered_within(&out, &ids, Duration::from_secs(15)).await;
    let (missing, dups) = missing_and_dups(&out, &ids);
    assert!(
        took.is_some() && steady_took.is_some(),
        "records of the new partitions not delivered within {NEW_PARTITION_BOUND:?}: {} missing {:?}; watermarks {:?}",
        missing.len(),
        &missing[..missing.len().min(10)],
        watermarks(&brokers, &topic)
    );
    eprintln!(
        "new partitions: all {} records ({} produced steadily to the old partition meanwhile) delivered {:?} after the partitions were added ({:?} after the last produce), {dups} duplicates",
        ids.len(),
        steady_ids.len(),
        added.elapsed(),
        took.unwrap_or_default()
    );
    assert!(!run.is_finished(), "the run ended");
    assert!(
        new_partitions_metric(metrics).await >= 1.0,
        "the pipeline did not restart on the new partitions"
    );

    // The old partition keeps flowing after the restart.
    let more = produce(&producer, &topic, 0, "e", 5).await;
    ids.extend(more.iter().cloned());
    assert!(
        delivered_within(&out, &more, Duration::from_secs(15))
            .await
            .is_some(),
        "the old partition stopped flowing after the restart"
    );

    let _ = stop.send(true);
    let summary = run.await.expect("join").expect("run");
    assert!(summary.error.is_none(), "{:?}", summary.error);
    let (missing, _) = missing_and_dups(&out, &ids);
    assert!(missing.is_empty(), "lost: {missing:?}");
    let committed = committed_offsets(&brokers, &group, &topic, 3);
    assert_eq!(
        committed,
        vec![Some(35 + steady_ids.len() as i64), Some(15), Some(15)],
        "committed offsets after a graceful stop"
    );

    // A second run of the group reads only what came after.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let (cfg2, out2) = config(
        dir2.path(),
        &noida_section(&brokers, &topic, &group),
        free_addr(),
    );
    let after = produce(&producer, &topic, 1, "f", 5).await;
    let (stop2, run2) = start(&cfg2);
    assert!(
        delivered_within(&out2, &after, Duration::from_secs(30))
            .await
            .is_some(),
        "the second run did not read the new records"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop2.send(true);
    run2.await.expect("join").expect("run 2");
    let second = read_ids(&out2);
    assert_eq!(
        second, after,
        "the second run re-read records the first one committed"
    );
}

/// With `start_position = "latest"` too: a topic created while running has no committed offset,
/// yet its records written before the group noticed it are read (from its beginning), not
/// skipped as "older than the join".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_matching_the_pattern_created_while_running_is_read() {
    init_tracing();
    let brokers = brokers();
    let base = unique("aznewt");
    let (first, second) = (format!("{base}-one"), format!("{base}-two"));
    let group = unique("aznewt-g");
    let cc = client(&brokers, &[]);
    create_topic(&cc, &first, 1).await;
    let producer = producer(&cc);

    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = free_addr();
    let pattern = format!("^{}-.*", regex_escape(&base));
    let section = pattern_section(&brokers, &pattern, &group).replace(
        "start_position = \"earliest\"",
        "start_position = \"latest\"",
    );
    let (cfg, out) = config(dir.path(), &section, metrics);
    let (stop, run) = start(&cfg);
    // `latest`: records written before the group assigned the first topic are not read; keep
    // writing one at a time until one arrives (the consumer is then fetching the topic).
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut warm = 0;
    while read_ids(&out).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing of the first topic arrived"
        );
        produce(&producer, &first, 0, &format!("w{warm}-"), 1).await;
        warm += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut ids = produce(&producer, &first, 0, "a", 10).await;

    create_topic(&cc, &second, 2).await;
    let created = Instant::now();
    let mut new_ids = produce(&producer, &second, 0, "b", 10).await;
    new_ids.extend(produce(&producer, &second, 1, "c", 10).await);
    ids.extend(new_ids.iter().cloned());
    ids.extend(produce(&producer, &first, 0, "d", 5).await);
    let took = delivered_within(&out, &ids, NEW_PARTITION_BOUND).await;
    let (missing, dups) = missing_and_dups(&out, &ids);
    assert!(
        took.is_some(),
        "records of the new topic not delivered within {NEW_PARTITION_BOUND:?}: missing {missing:?}"
    );
    eprintln!(
        "new topic: all {} records delivered {:?} after the topic was created, {dups} duplicates",
        ids.len(),
        created.elapsed()
    );
    assert!(!run.is_finished(), "the run ended");
    assert!(new_partitions_metric(metrics).await >= 1.0);

    let _ = stop.send(true);
    let summary = run.await.expect("join").expect("run");
    assert!(summary.error.is_none(), "{:?}", summary.error);
    assert_eq!(
        committed_offsets(&brokers, &group, &second, 2),
        vec![Some(10), Some(10)],
        "the new topic's offsets were committed"
    );
}

/// `s` with the regex metacharacters escaped (topic names here hold `-` and hex digits).
fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = ".+*?()|[]{}^$\\".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}
