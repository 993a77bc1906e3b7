//! Broker restart during consumption: the Kafka source reads from noida-db (a Kafka-protocol
//! broker that keeps its data in a directory; tansu here only has memory storage, which a
//! restart would empty), the broker is killed (SIGKILL) mid-way while more records wait to be
//! produced, restarted on the same port and data dir, and every record still reaches the file
//! sink (0 lost; duplicates reported: noida re-delivers around rebalances).
mod kafka_support;
mod pipeline_support;

use std::collections::BTreeMap;
use std::time::Duration;

use azlog_hub::service;
use kafka_support::*;
use pipeline_support::*;
use tokio::sync::watch;

async fn produce_wave(brokers: &str, topic: &str, prefix: &str, messages: usize) -> Vec<String> {
    // The broker may just have been (re)started: wait until its metadata has the topic with
    // both partitions (send() also retries UnknownPartition/UnknownTopic within a deadline).
    wait_topic_ready(&client(brokers, &[]), topic, 2, Duration::from_secs(60)).await;
    let p = producer(&client(brokers, &[]));
    let samples = sample_records();
    let mut ids = Vec::new();
    for m in 0..messages {
        let recs: Vec<String> = (0..10)
            .map(|i| {
                let id = format!("{prefix}{}", m * 10 + i);
                ids.push(id.clone());
                tag(&samples[(m + i) % samples.len()], &id)
            })
            .collect();
        let body = envelope(&recs);
        send(&p, topic, (m % 2) as i32, body.as_bytes(), None).await;
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_during_consumption_loses_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut broker = Noida::start(&data.path().join("noida"));
    let brokers = broker.brokers();
    let topic = unique("azrestart");
    let group = unique("azrestart-g");
    create_topic(&client(&brokers, &[]), &topic, 2).await;
    let mut expected = produce_wave(&brokers, &topic, "a", 100).await;
    // noida-db writes its state to disk about once a second (no log per write): a SIGKILL
    // before that snapshot has the topic and wave a would make the *broker* lose them (after
    // the restart the topic is unknown: UnknownPartition on produce). Wait for the snapshot so
    // that every loss this test can see is the consumer's.
    broker
        .wait_persisted(&topic, &[(0, 50), (1, 50)], Duration::from_secs(60))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let (path, out) = write_raw_file_config(
        dir.path(),
        &format!(
            "{}\n[checkpoint]\nevery_ms = 200\n",
            // noida-db refuses session timeouts under 6 s (Kafka's group.min.session.timeout.ms).
            source_section(&brokers, &topic, &group).replace(
                "\"session.timeout.ms\" = 3000",
                "\"session.timeout.ms\" = 6000"
            )
        ),
        PLACEHOLDER_EVENTHUBS,
    );
    let config = load_config(&path);
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { service::run(&cfg, stop_rx).await });

    // Some records through, then the broker goes away for 3 s.
    let some = wait_until(Duration::from_secs(60), || !read_ids(&out).is_empty()).await;
    assert!(some, "nothing consumed before the restart");
    broker.kill();
    let while_down = read_ids(&out).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.up();
    expected.extend(produce_wave(&brokers, &topic, "b", 100).await);

    let want = expected.len();
    let done = wait_until(Duration::from_secs(120), || {
        let got: std::collections::BTreeSet<String> = read_ids(&out).into_iter().collect();
        expected.iter().all(|id| got.contains(id))
    })
    .await;
    let _ = stop_tx.send(true);
    let summary = task.await.expect("join").expect("run");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in read_ids(&out) {
        *counts.entry(id).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "broker restart: {want} records, {} unique delivered ({while_down} before the broker went down), {} missing, {duplicates} duplicates",
        counts.len(),
        missing.len()
    );
    assert!(
        done && missing.is_empty(),
        "lost {} records, e.g. {:?}; {summary:#?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(summary.error.is_none(), "{summary:#?}");
}
