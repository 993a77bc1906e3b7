//! End to end: every family of examples/records/azure-sample.json published to the Event Hubs
//! emulator → `azlog-hub` (AMQP source, mapper) → the real `cef` sink plugin over TCP → a real
//! rsyslog (scripts/syslog-start.sh). Each record must arrive as exactly one syslog message
//! whose CEF header and extensions are those the mapper and CEF codec give for that record
//! (fields intact through the pipeline, the plugin's framing and the daemon). Fails when rsyslog
//! is not running unless AZLOG_SKIP_SYSLOG=1.
#[allow(dead_code)]
#[path = "../../codecs/tests/support/parsers.rs"]
mod parsers;
mod pipeline_support;
mod syslog_support;

use std::collections::BTreeSet;
use std::time::Duration;

use azlog_codecs::cef::{self, CefConfig};
use azlog_emulator::{EmulatorConfig, HubSpec};
use azlog_hub::service;
use azlog_mapper::{MapInput, Mapper, Position};
use bytes::Bytes;
use parsers::{parse_cef, Cef};
use pipeline_support::*;
use syslog_support::{received, syslog_out};
use tokio::sync::watch;

const HUB: &str = "to-rsyslog";

/// What the CEF sink should send for `json`: the line parsed, and the extension keys whose
/// value depends on when or from where the record was mapped (found by mapping it twice with
/// different times and positions), which the comparison leaves out.
fn expected(mapper: &Mapper, cfg: &CefConfig, json: &str) -> (Cef, BTreeSet<String>) {
    let encode = |ingested_ns: i64, position: Position, enqueued_ns: Option<i64>| {
        let record = mapper
            .map(
                MapInput {
                    json,
                    position,
                    enqueued_ns,
                },
                ingested_ns,
            )
            .expect("sample record maps");
        let mut line = String::new();
        cef::encode(&record, cfg, &mut line);
        parse_cef(&line).unwrap_or_else(|e| panic!("local CEF {line:?}: {e}"))
    };
    let a = encode(1_700_000_000_000_000_000, Position::default(), None);
    let b = encode(
        1_800_000_000_000_000_000,
        Position {
            source: "eventhubs:x/y/z".into(),
            partition: "7".into(),
            offset: "12345".into(),
            sequence: 99,
            index: 3,
        },
        Some(1_750_000_000_000_000_000),
    );
    let mut volatile = BTreeSet::new();
    for k in a.ext.keys().chain(b.ext.keys()) {
        if a.ext.get(k) != b.ext.get(k) {
            volatile.insert(k.clone());
        }
    }
    // `b` was mapped as the pipeline maps (with an enqueued time): its keys are the ones to expect.
    (b, volatile)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_reaches_rsyslog_as_one_intact_cef_message() {
    let Some(out) = syslog_out() else { return };
    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(HUB, 1)]))
        .await
        .expect("emulator starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage_plugins(dir.path());
    let app = format!(
        "azehsys{}x{:06x}",
        std::process::id(),
        fastrand::u32(..0xffffff)
    );
    let sink = format!(
        "[[sink]]\nname = \"siem\"\nplugin = \"cef\"\nhost = \"127.0.0.1\"\nport = 15514\nprotocol = \"tcp\"\napp_name = \"{app}\"\n[sink.batch]\nmax_records = 50\nlinger_ms = 20\n"
    );
    let config = load_config(&write_hub_config(
        dir.path(),
        &plugins,
        &sink,
        "",
        &em.connection_string(HUB),
    ));

    // One record per event, all on one partition: the sink sends them in order on one
    // connection, so message i belongs to record i.
    let records = sample_records();
    assert!(records.len() >= 10, "the sample has every family");
    for r in &records {
        em.publish(
            HUB,
            Some("0"),
            None,
            Bytes::from(envelope(std::slice::from_ref(r))),
        )
        .expect("publish");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { service::run(&cfg, stop_rx).await });
    let reached = wait_until(Duration::from_secs(60), || {
        received(&out, &app).len() >= records.len()
    })
    .await;
    // Longer than a few batch lingers: a record split into two messages would show up here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The run may have ended on its own (an error, reported below).
    let _ = stop_tx.send(true);
    let summary = task.await.expect("join").expect("run");
    assert!(
        reached,
        "{} of {} messages; {summary:#?}",
        received(&out, &app).len(),
        records.len()
    );
    assert!(summary.error.is_none(), "{summary:#?}");
    assert_eq!(summary.dead_lettered, 0, "{summary:#?}");
    assert_eq!(summary.records as usize, records.len());

    let got = received(&out, &app);
    assert_eq!(got.len(), records.len(), "exactly one message per record");
    let mapper = Mapper::load(None).expect("mapper");
    let cfg = CefConfig::builtin().expect("cef map");
    let mut names = BTreeSet::new();
    let mut skipped = BTreeSet::new();
    let mut compared = 0;
    for (i, (record, msg)) in records.iter().zip(&got).enumerate() {
        let line = msg["msg"].as_str().expect("msg");
        let line = line.strip_prefix(' ').unwrap_or(line);
        let have = parse_cef(line).unwrap_or_else(|e| panic!("record {i}: received {line:?}: {e}"));
        let (want, volatile) = expected(&mapper, &cfg, record);
        assert_eq!(
            (
                &have.vendor,
                &have.product,
                &have.device_version,
                &have.signature,
                &have.name,
                &have.severity
            ),
            (
                &want.vendor,
                &want.product,
                &want.device_version,
                &want.signature,
                &want.name,
                &want.severity
            ),
            "record {i}: CEF header"
        );
        let have_keys: BTreeSet<&String> = have.ext.keys().collect();
        let want_keys: BTreeSet<&String> = want.ext.keys().collect();
        assert_eq!(have_keys, want_keys, "record {i}: extension keys");
        for (k, v) in &want.ext {
            if volatile.contains(k) {
                skipped.insert(k.clone());
                continue;
            }
            assert_eq!(have.ext.get(k), Some(v), "record {i}: extension {k}");
            compared += 1;
        }
        names.insert(want.signature.clone());
    }
    assert!(
        compared >= records.len() * 3,
        "{compared} extension values compared"
    );
    eprintln!(
        "{} records, {} distinct CEF signatures, {compared} extension values compared (time/position dependent, present but not compared: {skipped:?})",
        records.len(),
        names.len()
    );
    em.shutdown().await.expect("emulator shutdown");
}
