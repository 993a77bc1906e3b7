//! The WAD poller against Azurite's Table service: paging, late rows, restarts, throttling,
//! poisoned rows, several accounts and tables. Needs Azurite (`bash scripts/azurite-start.sh`);
//! AZLOG_SKIP_AZURITE=1 skips.
mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use azlog_azure_storage::{StorageCredential, TableScheme, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use azlog_mapper::deadletter::{read_dead_letters, DeadLetterStore};
use azlog_mapper::Mapper;
use azlog_wad::ticks::partition_key;
use azlog_wad::{
    FileWatermarkStore, MemoryWatermarkStore, PollOptions, Query, RecordExtras, RetryPolicy,
    TableClient, TableClientOptions, TableError, TableSpec, WadSource, WatermarkStore,
};
use support::throttle::{Refusal, ThrottleProxy};
use support::*;

const SECS: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_follows_continuation_tokens_across_pages() {
    let Some(ep) = azurite_table() else { return };
    let c = client(&ep);
    let t = fresh_table(&c, "wadpages").await;
    let xml = fixture_xml();
    let (m1, m2, m3) = (minute_ago(3), minute_ago(2), minute_ago(1));
    let mut entities = wad_rows(&xml, m1, "a", 600);
    entities.extend(wad_rows(&xml, m2, "b", 505));
    entities.extend(wad_rows(&xml, m3, "c", 100));
    insert_all(&c, &t, &entities).await;

    for (top, min_pages) in [(None, 2), (Some(100), 13)] {
        let q = Query {
            filter: Some(format!(
                "PartitionKey ge '{}' and PartitionKey lt '{}'",
                partition_key(m1),
                partition_key(m3 + azlog_wad::ticks::TICKS_PER_MINUTE)
            )),
            select: None,
            top,
        };
        let mut cont = None;
        let mut pages = 0;
        let mut keys = HashSet::new();
        loop {
            let page = c.query_page(&t, &q, cont.as_ref()).await.expect("page");
            let rows = azlog_wad::row::parse_page(&page.body).expect("rows");
            assert!(
                rows.len() <= top.unwrap_or(1000) as usize,
                "page of {}",
                rows.len()
            );
            pages += 1;
            for r in rows {
                assert!(keys.insert((r.partition_key, r.row_key)), "row twice");
            }
            match page.continuation {
                Some(next) => cont = Some(next),
                None => break,
            }
        }
        assert_eq!(keys.len(), 1205, "top {top:?}");
        assert!(pages >= min_pages, "top {top:?}: {pages} pages");
    }
    c.delete_table(&t).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_delivers_every_row_once_across_pages_and_rows_map_like_the_fixtures() {
    let Some(ep) = azurite_table() else { return };
    let c = client(&ep);
    let t = fresh_table(&c, "wadall").await;
    let xml = fixture_xml();
    let mut entities = wad_rows(&xml, minute_ago(5), "a", 700);
    entities.extend(wad_rows(&xml, minute_ago(1), "b", 350));
    insert_all(&c, &t, &entities).await;

    let opts = PollOptions {
        page_size: 100,
        ..fast_options()
    };
    let store = Arc::new(MemoryWatermarkStore::new());
    let mut source = WadSource::start(vec![spec(&c, &t)], store.clone(), opts);
    let mapper = Mapper::builtin().expect("mapper");
    let mut mapped = 0;
    let mut dead = 0;
    let mut rows = Vec::new();
    let deadline = std::time::Instant::now() + 60 * SECS;
    while rows.len() < 1050 && std::time::Instant::now() < deadline {
        let Ok(Some(batch)) = tokio::time::timeout(30 * SECS, source.next_batch()).await else {
            break;
        };
        assert!(batch.rows.len() <= 100);
        let (records, dl) = batch.map(&mapper, now_ns());
        for r in &records {
            assert_eq!(r.get_str("azlog.family"), Some("windows.wad"));
            assert!(r.get_str("event.code").is_some());
            assert_eq!(
                r.position.source.as_str(),
                format!("wad:{DEV_ACCOUNT_NAME}/{t}")
            );
        }
        mapped += records.len();
        dead += dl.len();
        rows.extend(batch.rows.iter().cloned());
        batch.ack();
    }
    let st = stats(&source, 0);
    let cycles = st.cycles.load(Ordering::SeqCst);
    wait_for("two more cycles", 20 * SECS, || {
        st.cycles.load(Ordering::SeqCst) >= cycles + 2
    })
    .await;
    let (extra, _) = collect_until(&mut source, SECS / 2, true, |_| false).await;
    assert!(extra.is_empty(), "{} rows delivered again", extra.len());
    let c2 = counts(&rows);
    assert_eq!(c2.len(), 1050);
    assert!(c2.values().all(|&n| n == 1));
    assert_eq!((mapped, dead), (1050, 0));
    assert!(
        st.duplicates_skipped.load(Ordering::SeqCst) >= 1050,
        "re-reads were skipped"
    );
    source.shutdown().await;

    // The first fixture row (4624) maps to what the golden file says for the same event.
    let row = rows
        .iter()
        .find(|r| r.row_key == "a___000000")
        .expect("row a0");
    let rec = azlog_wad::map_row(&mapper, "wad:x/y", row, &RecordExtras::default(), now_ns())
        .expect("maps");
    assert_eq!(rec.get_str("event.code"), Some("4624"));
    assert_eq!(rec.get_str("event.action"), Some("logged-in"));
    assert_eq!(rec.get_str("user.name"), Some("alice"));
    assert_eq!(rec.get_str("host.name"), Some("DC01.contoso.local"));
    assert_eq!(rec.get_str("source.ip"), Some("203.0.113.45"));
    assert!(
        rec.get_str("event.created").is_some(),
        "Timestamp → event.created"
    );
    c.delete_table(&t).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_row_behind_the_watermark_is_delivered_exactly_once() {
    let Some(ep) = azurite_table() else { return };
    let c = client(&ep);
    let t = fresh_table(&c, "wadlate").await;
    let xml = fixture_xml();
    let mut entities = wad_rows(&xml, minute_ago(2), "early", 3);
    entities.extend(wad_rows(&xml, minute_ago(0), "now", 2));
    insert_all(&c, &t, &entities).await;

    let store = Arc::new(MemoryWatermarkStore::new());
    let key = format!("wad:{DEV_ACCOUNT_NAME}/{t}");
    let mut source = WadSource::start(vec![spec(&c, &t)], store.clone(), fast_options());
    let (mut rows, _) = collect_until(&mut source, 20 * SECS, true, |r| r.len() >= 5).await;
    assert_eq!(rows.len(), 5);
    // The watermark moves past the newest partition once everything is acknowledged.
    let now_minute = minute_ago(0);
    wait_for("the watermark", 20 * SECS, || {
        store
            .get(&key)
            .is_some_and(|w| w.cursor_ticks > now_minute && w.seen_rows() == 5)
    })
    .await;

    // A row of a partition the watermark has passed (4 minutes back, inside the 10 minute
    // overlap), written late like a scale-set VM does; and one too late (beyond the overlap).
    let late = wad_rows(&xml, minute_ago(4), "late", 1);
    let too_late = wad_rows(&xml, minute_ago(25), "toolate", 1);
    insert_all(&c, &t, &late).await;
    insert_all(&c, &t, &too_late).await;
    let (more, _) = collect_until(&mut source, 20 * SECS, true, |r| {
        r.iter().any(|x| x.row_key.starts_with("late"))
    })
    .await;
    rows.extend(more);
    // Several more cycles re-read the overlap: nothing comes twice.
    let st = stats(&source, 0);
    let cycles = st.cycles.load(Ordering::SeqCst);
    wait_for("three more cycles", 20 * SECS, || {
        st.cycles.load(Ordering::SeqCst) >= cycles + 3
    })
    .await;
    let (more, _) = collect_until(&mut source, SECS / 2, true, |_| false).await;
    rows.extend(more);
    source.shutdown().await;

    let n = counts(&rows);
    assert_eq!(n.len(), 6, "{n:?}");
    assert!(n.values().all(|&k| k == 1), "{n:?}");
    assert_eq!(
        rows.iter().filter(|r| r.row_key == "late___000000").count(),
        1
    );
    assert!(
        !rows.iter().any(|r| r.row_key.starts_with("toolate")),
        "beyond the overlap is not read"
    );
    let wm = store.get(&key).expect("watermark");
    assert!(wm.seen.values().flatten().any(|rk| rk == "late___000000"));
    c.delete_table(&t).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_watermark_without_loss_or_repeats() {
    let Some(ep) = azurite_table() else { return };
    let c = client(&ep);
    let t = fresh_table(&c, "wadrestart").await;
    let xml = fixture_xml();
    insert_all(&c, &t, &wad_rows(&xml, minute_ago(1), "first", 50)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FileWatermarkStore::new(dir.path().join("wad")));
    let key = format!("wad:{DEV_ACCOUNT_NAME}/{t}");
    let opts = PollOptions {
        page_size: 10,
        ..fast_options()
    };

    // Run 1: acknowledge two batches (20 rows), keep three unacknowledged, stop.
    let mut source = WadSource::start(vec![spec(&c, &t)], store.clone(), opts.clone());
    let mut acked = HashSet::new();
    let mut unacked = HashSet::new();
    let mut held = Vec::new();
    for i in 0..5 {
        let batch = tokio::time::timeout(20 * SECS, source.next_batch())
            .await
            .expect("batch in time")
            .expect("batch");
        assert_eq!(batch.rows.len(), 10);
        let keys: Vec<String> = batch.rows.iter().map(|r| r.row_key.clone()).collect();
        if i < 2 {
            acked.extend(keys);
            batch.ack();
        } else {
            unacked.extend(keys);
            held.push(batch);
        }
    }
    wait_for(
        "the acknowledged rows in the watermark file",
        20 * SECS,
        || {
            std::fs::read_to_string(store.path_of(&key))
                .ok()
                .and_then(|s| serde_json::from_str::<azlog_wad::Watermark>(&s).ok())
                .is_some_and(|w| w.seen_rows() == 20)
        },
    )
    .await;
    source.shutdown().await;
    drop(held);
    let saved = store.load(&key).await.expect("load").expect("saved");
    assert_eq!(
        saved.seen_rows(),
        20,
        "only acknowledged rows are remembered"
    );

    // While it is down, more rows arrive.
    insert_all(&c, &t, &wad_rows(&xml, minute_ago(0), "second", 25)).await;

    // Run 2 from the same store: the 30 unacknowledged rows and the 25 new ones, once each.
    let mut source = WadSource::start(vec![spec(&c, &t)], store.clone(), opts);
    let (rows, _) = collect_until(&mut source, 30 * SECS, true, |r| r.len() >= 55).await;
    let st = stats(&source, 0);
    let cycles = st.cycles.load(Ordering::SeqCst);
    wait_for("two more cycles", 20 * SECS, || {
        st.cycles.load(Ordering::SeqCst) >= cycles + 2
    })
    .await;
    let (extra, _) = collect_until(&mut source, SECS / 2, true, |_| false).await;
    source.shutdown().await;
    assert!(extra.is_empty(), "{} extra rows", extra.len());
    let got: Vec<&str> = rows.iter().map(|r| r.row_key.as_str()).collect();
    let unique: HashSet<&str> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "no row twice");
    assert_eq!(unique.len(), 55);
    assert!(
        unacked.iter().all(|k| unique.contains(k.as_str())),
        "unacknowledged rows come again"
    );
    assert!(
        acked.iter().all(|k| !unique.contains(k.as_str())),
        "acknowledged rows do not"
    );
    assert_eq!(got.iter().filter(|k| k.starts_with("second")).count(), 25);
    c.delete_table(&t).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_timeouts_are_retried_with_backoff() {
    let Some(ep) = azurite_table() else { return };
    let c = client(&ep);
    let t = fresh_table(&c, "wadthrottle").await;
    let xml = fixture_xml();
    insert_all(&c, &t, &wad_rows(&xml, minute_ago(1), "r", 30)).await;

    let proxy =
        ThrottleProxy::start(&ep, vec![Refusal::ServerBusy, Refusal::OperationTimedOut]).await;
    let quick = TableClientOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
        ..TableClientOptions::default()
    };
    let pc = client_at(proxy.endpoint.clone(), quick.clone());
    let q = Query {
        filter: Some(format!(
            "PartitionKey eq '{}'",
            partition_key(minute_ago(1))
        )),
        ..Query::default()
    };
    let page = pc
        .query_page(&t, &q, None)
        .await
        .expect("retried to success");
    assert_eq!(azlog_wad::row::parse_page(&page.body).unwrap().len(), 30);
    assert_eq!(proxy.refused.load(Ordering::SeqCst), 2);
    assert_eq!(pc.stats().retries.load(Ordering::SeqCst), 2);
    assert_eq!(pc.stats().throttled.load(Ordering::SeqCst), 1);
    assert_eq!(pc.stats().requests.load(Ordering::SeqCst), 3);

    // Still busy after every attempt: the error says so, and is retryable for the poll loop.
    proxy.refuse_next(&[Refusal::ServerBusy; 3]);
    let err = pc.query_page(&t, &q, None).await.expect_err("gives up");
    assert!(
        matches!(&err, TableError::Service { status: 503, code, .. } if code == "ServerBusy"),
        "{err}"
    );
    assert!(err.is_retryable());

    // The poll loop rides through throttling too: every row once.
    proxy.refuse_next(&[
        Refusal::ServerBusy,
        Refusal::ServerBusy,
        Refusal::OperationTimedOut,
        Refusal::ServerBusy,
    ]);
    let spec = TableSpec {
        client: client_at(proxy.endpoint.clone(), quick),
        table: t.clone(),
        extras: RecordExtras::default(),
    };
    let mut source = WadSource::start(
        vec![spec],
        Arc::new(MemoryWatermarkStore::new()),
        fast_options(),
    );
    let (rows, _) = collect_until(&mut source, 30 * SECS, true, |r| r.len() >= 30).await;
    source.shutdown().await;
    assert_eq!(counts(&rows).len(), 30);
    assert_eq!(rows.len(), 30);

    // Authorization failures are not retried.
    let bad = TableClient::new(
        ep.clone(),
        DEV_ACCOUNT_NAME,
        StorageCredential::shared_key(DEV_ACCOUNT_NAME, "a2V5a2V5a2V5").unwrap(),
        TableClientOptions::default(),
    )
    .unwrap();
    let err = bad.query_page(&t, &q, None).await.expect_err("403");
    assert_eq!(err.status(), Some(403), "{err}");
    assert_eq!(bad.stats().requests.load(Ordering::SeqCst), 1);
    c.delete_table(&t).await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_rows_are_dead_lettered_and_malformed_xml_still_maps() {
    let Some(ep) = azurite_table() else { return };
    let c = client(&ep);
    let t = fresh_table(&c, "wadpoison").await;
    let xml = fixture_xml();
    let m = minute_ago(1);
    let good = wad_entity(&xml[0], m, "1good");
    // Real Windows events carry control characters (U+0003 in event 4739 samples).
    let with_controls = wad_entity(
        &xml[0].replace(
            "<Data Name=\"LogonType\">10</Data>",
            "<Data Name=\"LogonType\">1\u{3}0</Data>\u{1}",
        ),
        m,
        "2controls",
    );
    // The agent cuts long RawXml; the start of the event is still readable.
    let cut = xml[0].find("<Data Name=\"IpPort\">").expect("cut point");
    let truncated = wad_entity(&xml[0][..cut], m, "3truncated");
    // A lone UTF-16 surrogate in the event text: valid for the Table service, not for a JSON
    // parser that wants Unicode text.
    let poison = wad_entity(&xml[0], m, "4poison")
        .to_string()
        .replace("alice", "ali\\ud800ce");
    assert!(poison.contains("\\ud800"));
    for e in [&good, &with_controls, &truncated] {
        c.insert_entity(&t, &e.to_string()).await.expect("insert");
    }
    c.insert_entity(&t, &poison)
        .await
        .expect("Azurite takes the row");

    let mut source = WadSource::start(
        vec![spec(&c, &t)],
        Arc::new(MemoryWatermarkStore::new()),
        fast_options(),
    );
    let mapper = Mapper::builtin().expect("mapper");
    let dir = tempfile::tempdir().unwrap();
    let dl_path = dir.path().join("dead-letter.ndjson");
    let mut dl_store = DeadLetterStore::new(&dl_path);
    let mut records = Vec::new();
    let mut seen_rows = 0;
    while seen_rows < 4 {
        let batch = tokio::time::timeout(20 * SECS, source.next_batch())
            .await
            .expect("in time")
            .expect("batch");
        let (recs, dead) = batch.map(&mapper, now_ns());
        for d in &dead {
            dl_store.write(d).expect("dead letter written");
        }
        dl_store.sync().expect("sync");
        seen_rows += batch.rows.len();
        records.extend(recs);
        batch.ack();
    }
    source.shutdown().await;

    // Every row accounted for: three records, one dead letter.
    assert_eq!(records.len(), 3);
    assert_eq!(dl_store.count(), 1);
    let by_rk: HashMap<&str, &azlog_mapper::Record> = records
        .iter()
        .map(|r| (r.position.offset.as_str(), r))
        .collect();
    let ctl = by_rk["2controls"];
    assert_eq!(ctl.get_str("event.code"), Some("4624"));
    assert_eq!(
        ctl.get_str("user.name"),
        Some("alice"),
        "fields after the control chars are read"
    );
    assert!(
        ctl.original.as_str().contains("\\u0003"),
        "the raw row is kept as it came"
    );
    let tr = by_rk["3truncated"];
    assert_eq!(tr.get_str("event.code"), Some("4624"));
    assert_eq!(
        tr.get_str("user.name"),
        Some("alice"),
        "what was read before the cut"
    );
    assert!(
        tr.get("azlog.parse_errors").is_some(),
        "the truncation is noted"
    );
    assert!(by_rk["1good"].get("azlog.parse_errors").is_none());

    let entries: Vec<_> = read_dead_letters(&dl_path)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.stage, "map");
    assert!(
        e.reason.contains("4poison") && e.reason.to_lowercase().contains("json"),
        "{}",
        e.reason
    );
    assert_eq!(e.source, format!("wad:{DEV_ACCOUNT_NAME}/{t}"));
    assert_eq!(e.partition, partition_key(m));
    assert_eq!(e.offset, "4poison");
    assert!(
        e.raw.as_deref().unwrap_or("").contains("ali\\ud800ce"),
        "raw row kept for replay"
    );
    c.delete_table(&t).await.expect("delete");
}

/// An account SAS (version 2019-02-02: read + list on the Table service) signed with `key`.
fn account_sas(account: &str, key_b64: &str) -> String {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .unwrap();
    let (sp, ss, srt, se, spr, sv) = (
        "rl",
        "t",
        "sco",
        "2099-01-01T00:00:00Z",
        "https,http",
        "2019-02-02",
    );
    let to_sign = format!("{account}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n");
    let sig = azlog_azure_storage::auth::hmac_sha256_base64(&key, &to_sign);
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}",
        enc(se),
        enc(spr),
        enc(&sig)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_accounts_and_tables_at_once_with_shared_key_lite_and_sas() {
    let Some(ep) = azurite_table() else { return };
    let c = client(&ep);
    let xml = fixture_xml();
    let mut tables = Vec::new();
    for i in 0..3 {
        let t = fresh_table(&c, &format!("wadmulti{i}")).await;
        insert_all(
            &c,
            &t,
            &wad_rows(&xml, minute_ago(1), &format!("t{i}"), 40 + i * 10),
        )
        .await;
        tables.push(t);
    }
    let lite = client_at(
        ep.clone(),
        TableClientOptions {
            scheme: TableScheme::SharedKeyLite,
            ..TableClientOptions::default()
        },
    );
    let sas = TableClient::new(
        ep.clone(),
        DEV_ACCOUNT_NAME,
        StorageCredential::sas(&account_sas(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)),
        TableClientOptions::default(),
    )
    .unwrap();
    // The SAS is really checked: a wrong signature is refused.
    let forged = TableClient::new(
        ep.clone(),
        DEV_ACCOUNT_NAME,
        StorageCredential::sas(&account_sas(DEV_ACCOUNT_NAME, "a2V5a2V5a2V5")),
        TableClientOptions::default(),
    )
    .unwrap();
    let err = forged
        .query_page(&tables[2], &Query::default(), None)
        .await
        .expect_err("forged SAS");
    assert_eq!(err.status(), Some(403), "{err}");
    let specs = vec![
        TableSpec {
            client: c.clone(),
            table: tables[0].clone(),
            extras: RecordExtras {
                subscription_id: Some("11111111-2222-3333-4444-555555555555".into()),
            },
        },
        spec(&lite, &tables[1]),
        spec(&sas, &tables[2]),
    ];
    let mut source = WadSource::start(specs, Arc::new(MemoryWatermarkStore::new()), fast_options());
    let mapper = Mapper::builtin().unwrap();
    let mut per_source: HashMap<String, HashSet<String>> = HashMap::new();
    let mut total = 0;
    let deadline = std::time::Instant::now() + 30 * SECS;
    while total < 150 && std::time::Instant::now() < deadline {
        let Ok(Some(batch)) = tokio::time::timeout(20 * SECS, source.next_batch()).await else {
            break;
        };
        let (recs, dead) = batch.map(&mapper, now_ns());
        assert!(dead.is_empty());
        if batch.source.ends_with(tables[0].as_str()) {
            assert!(recs.iter().all(|r| r.get_str("azure.subscription_id")
                == Some("11111111-2222-3333-4444-555555555555")));
        } else {
            assert!(recs
                .iter()
                .all(|r| r.get("azure.subscription_id").is_none()));
        }
        let set = per_source.entry(batch.source.to_string()).or_default();
        for r in &batch.rows {
            assert!(set.insert(r.row_key.clone()), "twice: {}", r.row_key);
        }
        total += batch.rows.len();
        batch.ack();
    }
    source.shutdown().await;
    for (i, t) in tables.iter().enumerate() {
        let got = per_source
            .get(&format!("wad:{DEV_ACCOUNT_NAME}/{t}"))
            .map_or(0, HashSet::len);
        assert_eq!(got, 40 + i * 10, "table {t}");
        c.delete_table(t).await.expect("delete");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_security_events_all_accounted_for() {
    let Some(ep) = azurite_table() else { return };
    let samples = sample_xml();
    if samples.is_empty() {
        eprintln!("SKIPPED: ../shared/samples/windows-security-xml not present");
        return;
    }
    let c = client(&ep);
    let t = fresh_table(&c, "wadreal").await;
    let n = samples.len();
    let entities: Vec<_> = samples
        .iter()
        .enumerate()
        .map(|(i, x)| wad_entity(x, minute_ago((i % 5) as i64), &format!("s___{i:06}")))
        .collect();
    insert_all(&c, &t, &entities).await;
    let mut source = WadSource::start(
        vec![spec(&c, &t)],
        Arc::new(MemoryWatermarkStore::new()),
        fast_options(),
    );
    let mapper = Mapper::builtin().unwrap();
    let (mut recs, mut dead, mut rows) = (0, 0, 0);
    let mut with_notes = 0;
    let mut codes = HashSet::new();
    while rows < n {
        let batch = tokio::time::timeout(30 * SECS, source.next_batch())
            .await
            .expect("in time")
            .expect("batch");
        let (r, d) = batch.map(&mapper, now_ns());
        with_notes += r
            .iter()
            .filter(|x| x.get("azlog.parse_errors").is_some())
            .count();
        for x in &r {
            codes.insert(x.get_str("event.code").unwrap_or("").to_owned());
        }
        rows += batch.rows.len();
        recs += r.len();
        dead += d.len();
        batch.ack();
    }
    source.shutdown().await;
    eprintln!("{n} real events: {recs} records ({with_notes} with parse notes), {dead} dead letters, {} event ids", codes.len());
    assert_eq!(rows, n);
    assert_eq!(recs + dead, n, "every row accounted for");
    assert!(
        codes.contains("4624") && codes.contains("4739"),
        "{codes:?}"
    );
    c.delete_table(&t).await.expect("delete");
}
