//! The consumer pipeline end to end on the in-process partitioned source (`MemorySource`) with
//! the real file and test sink plugins (`.so`): every family to a file sink, malformed events
//! dead-lettered with their position while the partition keeps flowing, restart from the
//! checkpoint, reconnects after link errors, backpressure from a failing sink, permanent
//! rejections and their dead-letter replay, and a time-range replay.
mod pipeline_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use azlog_hub::checkpoint::{CheckpointStore, FileCheckpointStore};
use azlog_hub::config::HubConfig;
use azlog_hub::pipeline::RunSummary;
use azlog_hub::service::{self, dead_letter_replay, ReplayFrom, ReplayRequest};
use azlog_hub::source::memory::MemorySource;
use azlog_hub::source::{Source, StartFrom, Until};
use azlog_mapper::deadletter::read_dead_letters;
use pipeline_support::*;
use tokio::sync::watch;

const MALFORMED: &str = "{\"records\":[{\"time\":\"2024-05-01T10:00:00Z\",\"category\":";

fn load(path: &Path) -> HubConfig {
    load_config(path)
}

/// Runs the service on `source` until `until` holds, then stops it gracefully.
async fn run_until(
    config: &HubConfig,
    source: &MemorySource,
    timeout: Duration,
    until: impl FnMut() -> bool,
) -> RunSummary {
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let src: Arc<dyn Source> = Arc::new(source.clone());
    let task = tokio::spawn(async move { service::run_with_source(&cfg, src, stop_rx).await });
    let reached = wait_until(timeout, until).await;
    stop_tx.send(true).expect("stop");
    let summary = task.await.expect("join").expect("run");
    assert!(
        reached,
        "condition not reached within {timeout:?}; summary {summary:#?}"
    );
    summary
}

/// A configuration with one raw file sink `files` into `dir/out/raw.ndjson` and `extra`
/// appended; returns it and the sink's file.
fn raw_file_config(dir: &Path, extra: &str) -> (HubConfig, std::path::PathBuf) {
    let (path, out) = write_raw_file_config(dir, extra, PLACEHOLDER_EVENTHUBS);
    (load(&path), out)
}

fn checkpoint_seq(config: &HubConfig, partition: &str) -> Option<i64> {
    let store = FileCheckpointStore::new(&config.state_dir);
    let key = azlog_hub::service::assemble::checkpoint_key(config.eventhubs().unwrap());
    futures::executor::block_on(store.load(&key, partition))
        .expect("load checkpoint")
        .map(|c| c.sequence)
}

fn family_of(line: &serde_json::Value) -> Option<String> {
    line.get("azlog.family")
        .or_else(|| line.pointer("/azlog/family"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_reaches_the_file_sink_and_malformed_events_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let ecs = dir.path().join("out/ecs.ndjson");
    let sink = format!(
        "[[sink]]\nname = \"ecs\"\nplugin = \"file\"\npath = \"{}\"\n[sink.batch]\nlinger_ms = 20\n",
        ecs.display()
    );
    let config = load(&write_config(dir.path(), &plugins, &sink, ""));
    let records = sample_records();
    assert!(records.len() >= 30, "sample has {} records", records.len());
    let source = MemorySource::new("t", 2);
    let mut expected = Vec::new();
    let mut malformed_offset = None;
    for (i, chunk) in records.chunks(3).enumerate() {
        let p = (i % 2).to_string();
        let tagged: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(j, r)| {
                let id = format!("e{i}-r{j}");
                expected.push(id.clone());
                tag(r, &id)
            })
            .collect();
        source.append(&p, envelope(&tagged)).unwrap();
        if i == 2 {
            // A malformed event in the middle of partition 0; later events must still flow.
            let seq = source.append("0", MALFORMED).unwrap();
            malformed_offset = Some((seq, source.events("0")[seq as usize].offset.clone()));
        }
    }
    let total = expected.len();
    let last: Vec<i64> = ["0", "1"]
        .iter()
        .map(|p| source.len(p) as i64 - 1)
        .collect();
    let summary = run_until(&config, &source, Duration::from_secs(30), || {
        read_ids(&ecs).len() >= total
            && checkpoint_seq(&config, "0") == Some(last[0])
            && checkpoint_seq(&config, "1") == Some(last[1])
    })
    .await;
    assert_eq!(summary.error, None);

    // Every record once, every family present in the ECS output.
    let ids = read_ids(&ecs);
    assert_eq!(ids.len(), total);
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect::<BTreeSet<_>>()
    );
    let mapper = azlog_mapper::Mapper::builtin().unwrap();
    let expected_families: BTreeSet<String> = records
        .iter()
        .map(|r| {
            let rec = mapper
                .map(
                    azlog_mapper::MapInput {
                        json: r,
                        position: Default::default(),
                        enqueued_ns: None,
                    },
                    0,
                )
                .unwrap();
            rec.get_str("azlog.family").unwrap().to_owned()
        })
        .collect();
    let text = std::fs::read_to_string(&ecs).unwrap();
    let got_families: BTreeSet<String> = text
        .lines()
        .map(|l| family_of(&serde_json::from_str(l).unwrap()).expect("azlog.family"))
        .collect();
    assert_eq!(got_families, expected_families);
    assert!(expected_families.len() >= 20, "{expected_families:?}");

    // The malformed event is dead-lettered with its partition and offset.
    let (seq, offset) = malformed_offset.unwrap();
    let dead: Vec<_> = read_dead_letters(&config.dead_letter)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].partition, "0");
    assert_eq!(dead[0].offset, offset);
    assert_eq!(dead[0].sequence, seq);
    assert_eq!(dead[0].stage, "envelope");
    assert_eq!(summary.dead_lettered, 1);
    // ...and partition 0 kept flowing past it.
    assert!(summary.partitions["0"].last_sequence > seq);
    assert_eq!(summary.sinks["ecs"].accepted, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_after_the_checkpoint_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (config, out) = raw_file_config(
        dir.path(),
        "[checkpoint]\nevery_events = 5\nevery_ms = 50\n",
    );
    let records = sample_records();
    let source = MemorySource::new("t", 3);
    let mut n = 0;
    let mut publish = |count: usize| {
        for _ in 0..count {
            let p = (n % 3).to_string();
            let r = tag(&records[n % records.len()], &format!("id{n}"));
            source.append(&p, envelope(&[r])).unwrap();
            n += 1;
        }
    };
    publish(120);
    run_until(&config, &source, Duration::from_secs(30), || {
        read_ids(&out).len() >= 120
    })
    .await;
    let first_run: Vec<i64> = ["0", "1", "2"]
        .iter()
        .map(|p| checkpoint_seq(&config, p).expect("final checkpoint"))
        .collect();
    assert_eq!(
        first_run,
        vec![39, 39, 39],
        "final checkpoints cover everything"
    );
    publish(60);
    let opens_before = source.opens().len();
    run_until(&config, &source, Duration::from_secs(30), || {
        read_ids(&out).len() >= 180
    })
    .await;
    // The second run resumed after each checkpoint (exclusive), by offset.
    let resumed: Vec<_> = source.opens()[opens_before..].to_vec();
    assert_eq!(resumed.len(), 3);
    for (p, start) in resumed {
        let cp_offset = source.events(&p)[39].offset.clone();
        assert_eq!(
            start,
            StartFrom::Offset {
                offset: cp_offset,
                inclusive: false
            }
        );
    }
    let ids = read_ids(&out);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), 180, "no record lost");
    assert!(
        counts.values().all(|c| *c == 1),
        "graceful stops leave no duplicates"
    );
}

/// Events already waiting are mapped together (a job per batch, not per event), and records
/// still reach the sink in each partition's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_events_are_mapped_in_batches_in_partition_order() {
    let dir = tempfile::tempdir().unwrap();
    let (config, out) = raw_file_config(dir.path(), "");
    let records = sample_records();
    let source = MemorySource::new("t", 2);
    let n = 600;
    for i in 0..n {
        let r = tag(&records[i % records.len()], &format!("id{i}"));
        source.append(&(i % 2).to_string(), envelope(&[r])).unwrap();
    }
    let summary = run_until(&config, &source, Duration::from_secs(30), || {
        read_ids(&out).len() >= n
    })
    .await;
    assert_eq!(summary.events, n as u64);
    assert!(
        summary.map_jobs * 4 <= summary.events,
        "{} jobs for {} waiting events: not batched",
        summary.map_jobs,
        summary.events
    );
    let ids = read_ids(&out);
    assert_eq!(ids.len(), n, "each record exactly once");
    for p in 0..2 {
        let order: Vec<usize> = ids
            .iter()
            .filter_map(|id| id.strip_prefix("id")?.parse::<usize>().ok())
            .filter(|i| i % 2 == p)
            .collect();
        let expected: Vec<usize> = (0..n).filter(|i| i % 2 == p).collect();
        assert_eq!(order, expected, "partition {p} out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_errors_reconnect_and_resume_after_the_last_acknowledged_position() {
    let dir = tempfile::tempdir().unwrap();
    let (config, out) = raw_file_config(
        dir.path(),
        "[pipeline]\nreconnect_initial_ms = 10\nreconnect_max_ms = 50\n",
    );
    let records = sample_records();
    let source = MemorySource::new("t", 1);
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let src: Arc<dyn Source> = Arc::new(source.clone());
    let task = tokio::spawn(async move { service::run_with_source(&cfg, src, stop_rx).await });
    let mut n = 0;
    for round in 0..5 {
        for _ in 0..40 {
            let r = tag(&records[n % records.len()], &format!("id{n}"));
            source.append("0", envelope(&[r])).unwrap();
            n += 1;
        }
        assert!(
            wait_until(Duration::from_secs(20), || read_ids(&out).len() >= n).await,
            "round {round}: {} of {n}",
            read_ids(&out).len()
        );
        source.detach("0").unwrap();
        if round == 2 {
            source.fail_next_opens(2);
        }
    }
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    // Five detaches; the last may race with the stop.
    assert!(summary.partitions["0"].reconnects >= 4, "{summary:#?}");
    // Each reopen started right after the last acknowledged event (all were acked first).
    let events = source.events("0");
    for (_, start) in source.opens().iter().skip(1) {
        let StartFrom::Offset { offset, inclusive } = start else {
            panic!("resume by offset, got {start:?}");
        };
        assert!(!inclusive);
        assert!(events.iter().any(|e| &e.offset == offset));
    }
    let ids = read_ids(&out);
    assert_eq!(ids.len(), n, "no loss and no duplicates across reconnects");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sink_holds_the_readers_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let out = dir.path().join("out/raw.ndjson");
    // The test sink fails its first 12 batches (retryable), so the readers must wait.
    let flaky = format!(
        "{}\n[[sink]]\nname = \"flaky\"\nplugin = \"test-sink\"\nretryable_failures = 12\n[sink.batch]\nmax_records = 10\nlinger_ms = 10\n[sink.retry]\ninitial_backoff_ms = 20\nmax_backoff_ms = 60\n",
        raw_file_sink("files", &out)
    );
    let config = load(&write_config(
        dir.path(),
        &plugins,
        &flaky,
        "[pipeline]\nmax_in_flight_events = 16\nsink_queue_events = 4\n",
    ));
    let records = sample_records();
    let source = MemorySource::new("t", 2);
    for n in 0..300 {
        let r = tag(&records[n % records.len()], &format!("id{n}"));
        source.append(&(n % 2).to_string(), envelope(&[r])).unwrap();
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let src: Arc<dyn Source> = Arc::new(source.clone());
    let (mtx, mrx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let _ = mtx.send(());
        service::run_with_source(&cfg, src, stop_rx).await
    });
    mrx.await.unwrap();
    // While the flaky sink is failing, the partitions read at most the in-flight bound.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = read_ids(&out).len();
    assert!(
        early <= 2 * 16 + 10,
        "readers ran ahead of the failing sink: {early}"
    );
    assert!(
        wait_until(Duration::from_secs(30), || read_ids(&out).len() >= 300
            && checkpoint_seq(&config, "0") == Some(149)
            && checkpoint_seq(&config, "1") == Some(149))
        .await,
        "delivered {}",
        read_ids(&out).len()
    );
    stop_tx.send(true).unwrap();
    let summary = task.await.unwrap().unwrap();
    assert_eq!(summary.error, None);
    assert_eq!(summary.sinks["flaky"].accepted, 300);
    assert_eq!(read_ids(&out).len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_rejections_are_dead_lettered_and_replayed_after_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let all = dir.path().join("out/all.ndjson");
    // `strict` refuses every record with a source IP.
    let sinks = format!(
        "{}\n[[sink]]\nname = \"strict\"\nplugin = \"test-sink\"\nreject_field = \"source.ip\"\n[sink.batch]\nlinger_ms = 10\n",
        raw_file_sink("all", &all)
    );
    let config = load(&write_config(dir.path(), &plugins, &sinks, ""));
    let records = sample_records();
    let source = MemorySource::new("t", 1);
    let tagged: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(i, r)| tag(r, &format!("id{i}")))
        .collect();
    for chunk in tagged.chunks(5) {
        source.append("0", envelope(chunk)).unwrap();
    }
    let last = source.len("0") as i64 - 1;
    let summary = run_until(&config, &source, Duration::from_secs(30), || {
        checkpoint_seq(&config, "0") == Some(last)
    })
    .await;
    let rejected = summary.sinks["strict"].rejected;
    assert!(rejected > 0, "some sample records have a source IP");
    assert_eq!(
        summary.sinks["strict"].accepted + rejected,
        records.len() as u64
    );
    assert_eq!(
        read_ids(&all).len(),
        records.len(),
        "the other sink got everything"
    );
    let dead: Vec<_> = read_dead_letters(&config.dead_letter)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(dead.len() as u64, rejected);
    assert!(dead
        .iter()
        .all(|d| d.stage == "sink:strict" && d.partition == "0"));
    let dead_ids: BTreeSet<String> = dead
        .iter()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_str(d.raw.as_deref().unwrap()).unwrap();
            v["azlogTestId"].as_str().unwrap().to_owned()
        })
        .collect();

    // The fix: `strict` now delivers (a file sink under the same name). Replay the dead letters.
    let fixed_out = dir.path().join("out/strict.ndjson");
    let fixed_dir = dir.path().join("fixed");
    std::fs::create_dir_all(&fixed_dir).unwrap();
    let fixed = load(&write_config(
        &fixed_dir,
        &plugins,
        &format!(
            "{}\n{}",
            raw_file_sink("all", &all),
            raw_file_sink("strict", &fixed_out)
        ),
        "",
    ));
    let rejects = dir.path().join("rejects.ndjson");
    let input = config.dead_letter.clone();
    let s = tokio::task::spawn_blocking(move || {
        dead_letter_replay::replay_dead_letters(&fixed, &input, None, &rejects)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(s.entries, rejected);
    assert_eq!(s.delivered, rejected, "{s:?}");
    assert_eq!(s.failed, 0);
    let replayed: BTreeSet<String> = read_ids(&fixed_out).into_iter().collect();
    assert_eq!(
        replayed, dead_ids,
        "exactly the dead-lettered records, only to `strict`"
    );
    assert_eq!(
        read_ids(&all).len(),
        records.len(),
        "`all` did not get them again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_a_time_range_delivers_exactly_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let out = dir.path().join("out/replay.ndjson");
    let other = dir.path().join("out/other.ndjson");
    let sinks = format!(
        "{}\n{}",
        raw_file_sink("replayed", &out),
        raw_file_sink("other", &other)
    );
    let config = load(&write_config(dir.path(), &plugins, &sinks, ""));
    let records = sample_records();
    let source = MemorySource::new("t", 2);
    let t0: i64 = 1_714_557_600_000_000_000; // 2024-05-01T10:00:00Z
    let sec = 1_000_000_000;
    let mut by_time: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for i in 0..100i64 {
        let t = t0 + i * sec;
        let ids: Vec<String> = (0..2).map(|j| format!("t{i}-{j}")).collect();
        let body: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(j, id)| tag(&records[(2 * i as usize + j) % records.len()], id))
            .collect();
        source
            .append_at(&(i % 2).to_string(), envelope(&body), t)
            .unwrap();
        by_time.insert(t, ids);
    }
    let from = t0 + 20 * sec;
    let until = t0 + 59 * sec;
    let expected: BTreeSet<String> = by_time
        .range(from..=until)
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    assert_eq!(expected.len(), 80);
    let req = ReplayRequest {
        from: ReplayFrom::parse("time:2024-05-01T10:00:20Z").unwrap(),
        until: Some(Until::parse("time:2024-05-01T10:00:59Z").unwrap()),
        partitions: None,
        sinks: Some(vec!["replayed".into()]),
        commit: false,
        idle_timeout: Duration::from_secs(5),
        progress: false,
        dead_letter: None,
    };
    let (_stop_tx, stop_rx) = watch::channel(false);
    let src: Arc<dyn Source> = Arc::new(source.clone());
    let summary = service::replay_with_source(&config, src.clone(), &req, stop_rx)
        .await
        .unwrap();
    assert_eq!(summary.error, None);
    let got: Vec<String> = read_ids(&out);
    assert_eq!(got.len(), expected.len(), "no duplicates");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    assert!(read_ids(&other).is_empty(), "--sink limits the replay");
    assert_eq!(
        checkpoint_seq(&config, "0"),
        None,
        "live checkpoint untouched"
    );
    assert_eq!(checkpoint_seq(&config, "1"), None);

    // With --commit the checkpoint moves to where the replay ended; a replay to the end of
    // the partitions from `checkpoint` then delivers exactly the rest.
    let commit = ReplayRequest {
        commit: true,
        ..req.clone()
    };
    let (_stop_tx, stop_rx) = watch::channel(false);
    service::replay_with_source(&config, src.clone(), &commit, stop_rx)
        .await
        .unwrap();
    assert_eq!(
        checkpoint_seq(&config, "0"),
        Some(29),
        "t58 is seq 29 of partition 0"
    );
    assert_eq!(
        checkpoint_seq(&config, "1"),
        Some(29),
        "t59 is seq 29 of partition 1"
    );
    let rest_out = dir.path().join("out/rest.ndjson");
    let rest_dir = dir.path().join("rest");
    std::fs::create_dir_all(&rest_dir).unwrap();
    // Same state dir (checkpoints), different sink file.
    let mut rest_cfg = load(&write_config(
        &rest_dir,
        &plugins,
        &raw_file_sink("replayed", &rest_out),
        "",
    ));
    rest_cfg.state_dir = config.state_dir.clone();
    rest_cfg.checkpoint = config.checkpoint.clone();
    let to_end = ReplayRequest {
        from: ReplayFrom::Checkpoint,
        until: None,
        sinks: None,
        ..req.clone()
    };
    let (_stop_tx, stop_rx) = watch::channel(false);
    let s = service::replay_with_source(&rest_cfg, src, &to_end, stop_rx)
        .await
        .unwrap();
    let rest: BTreeSet<String> = read_ids(&rest_out).into_iter().collect();
    let expected_rest: BTreeSet<String> = by_time
        .range(until + 1..)
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    assert_eq!(rest, expected_rest);
    assert_eq!(s.events, 40);
    assert!(s.partitions.values().all(|p| p.events == 20));
}
