//! Rebalance with the Kafka source: a second `azlog-hub run` joins the consumer group while the
//! first is consuming (its partitions are revoked: pending acknowledgements are drained and the
//! stored offsets committed before they are released), then the first stops (its partitions move
//! to the second). Every record reaches one of the two file sinks (0 lost) and, thanks to the
//! drain before release, without duplicates across the hand-overs.
mod kafka_support;
mod pipeline_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use azlog_hub::config::HubConfig;
use azlog_hub::service;
use kafka_support::*;
use pipeline_support::*;
use tokio::sync::watch;

fn config(dir: &Path, brokers: &str, topic: &str, group: &str) -> HubConfig {
    let (path, _) = write_raw_file_config(
        dir,
        &format!(
            "{}\n[checkpoint]\nevery_ms = 200\n",
            source_section(brokers, topic, group)
        ),
        PLACEHOLDER_EVENTHUBS,
    );
    load_config(&path)
}

/// Whether every id in `ids` is in one of the `outs` files.
fn all_delivered(ids: &[String], outs: &[&Path]) -> bool {
    let got: BTreeSet<String> = outs.iter().flat_map(|o| read_ids(o)).collect();
    ids.iter().all(|id| got.contains(id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_between_instances_without_loss_or_duplicates() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let brokers = brokers();
    let topic = unique("azrebal");
    let group = unique("azrebal-g");
    let cc = client(&brokers, &[]);
    create_topic(&cc, &topic, 4).await;
    let producer = producer(&cc);
    let samples = sample_records();
    let mut ids = Vec::new();
    let produce = |ids: &mut Vec<String>, from: usize, n: usize| {
        let bodies: Vec<(i32, String)> = (from..from + n)
            .map(|i| {
                let id = format!("r{i}");
                ids.push(id.clone());
                (
                    (i % 4) as i32,
                    envelope(&[tag(&samples[i % samples.len()], &id)]),
                )
            })
            .collect();
        bodies
    };

    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_cfg, b_cfg) = (
        config(a_dir.path(), &brokers, &topic, &group),
        config(b_dir.path(), &brokers, &topic, &group),
    );
    let a_out = a_dir.path().join("out/raw.ndjson");
    let b_out = b_dir.path().join("out/raw.ndjson");

    for (p, body) in produce(&mut ids, 0, 200) {
        send(&producer, &topic, p, body.as_bytes(), None).await;
    }
    let (a_stop, a_rx) = watch::channel(false);
    let cfg = a_cfg.clone();
    let a = tokio::spawn(tracing::Instrument::instrument(
        async move { service::run(&cfg, a_rx).await },
        tracing::info_span!("A"),
    ));
    assert!(wait_until(Duration::from_secs(60), || read_ids(&a_out).len() >= 200).await);

    // B joins: A's partitions are revoked (drained, committed), then split between A and B.
    let (b_stop, b_rx) = watch::channel(false);
    let cfg = b_cfg.clone();
    let b = tokio::spawn(tracing::Instrument::instrument(
        async move { service::run(&cfg, b_rx).await },
        tracing::info_span!("B"),
    ));
    for (p, body) in produce(&mut ids, 200, 200) {
        send(&producer, &topic, p, body.as_bytes(), None).await;
    }
    // A may consume all of that wave before the group has rebalanced (tansu answers a join
    // after session.timeout.ms / 2, and later under load; A keeps reading until its
    // partitions are revoked), leaving B nothing new to read on the partitions it gets. So
    // keep producing a little (5 records per partition) until B has written something: every
    // record produced after B owns a partition is B's to deliver.
    let mut next = 400;
    let deadline = Instant::now() + Duration::from_secs(180);
    while !wait_until(Duration::from_secs(2), || !read_ids(&b_out).is_empty()).await {
        assert!(
            Instant::now() < deadline,
            "B never got a partition (A {}, B {}, {} produced)",
            read_ids(&a_out).len(),
            read_ids(&b_out).len(),
            ids.len()
        );
        for (p, body) in produce(&mut ids, next, 20) {
            send(&producer, &topic, p, body.as_bytes(), None).await;
        }
        next += 20;
    }
    let both = wait_until(Duration::from_secs(120), || {
        all_delivered(&ids, &[&a_out, &b_out])
    })
    .await;
    assert!(
        both,
        "not everything delivered while A and B shared the partitions (A {}, B {}, {} produced)",
        read_ids(&a_out).len(),
        read_ids(&b_out).len(),
        ids.len()
    );

    // A leaves: B takes everything.
    let _ = a_stop.send(true);
    let a_sum = a.await.expect("join").expect("run A");
    for (p, body) in produce(&mut ids, next, 200) {
        send(&producer, &topic, p, body.as_bytes(), None).await;
    }
    let all = wait_until(Duration::from_secs(120), || {
        all_delivered(&ids, &[&a_out, &b_out])
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = b_stop.send(true);
    let b_sum = b.await.expect("join").expect("run B");

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in read_ids(&a_out).into_iter().chain(read_ids(&b_out)) {
        *counts.entry(id).or_default() += 1;
    }
    let missing: Vec<&String> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "rebalance: {} records, A wrote {}, B wrote {}, {} missing, {duplicates} duplicates",
        ids.len(),
        read_ids(&a_out).len(),
        read_ids(&b_out).len(),
        missing.len()
    );
    assert!(
        all && missing.is_empty(),
        "lost {:?}; A {a_sum:#?} B {b_sum:#?}",
        &missing[..missing.len().min(5)]
    );
    assert!(a_sum.error.is_none() && b_sum.error.is_none());
    assert_eq!(
        duplicates, 0,
        "partitions were handed over after draining and committing"
    );
}
