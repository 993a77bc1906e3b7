//! End to end: rows in a WADWindowsEventLogsTable (Azurite) → the WAD source → mapper → CEF sink
//! plugin → rsyslog over TCP; every row arrives once, a restart sends nothing again, rows added
//! while stopped arrive after the restart. Needs Azurite (scripts/azurite-start.sh) and rsyslog
//! (scripts/syslog-start.sh); AZLOG_SKIP_AZURITE=1 / AZLOG_SKIP_SYSLOG=1 skip.
#[path = "pipeline_support/mod.rs"]
mod support;
mod syslog_support;

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use azlog_azure_storage::{StorageCredential, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use azlog_hub::config::HubConfig;
use azlog_hub::source::wad::{load_wad_config, run_wad};
use azlog_wad::ticks::{floor_minute, partition_key, ticks_from_unix_ns, TICKS_PER_MINUTE};
use azlog_wad::{TableClient, TableClientOptions};
use reqwest::Url;
use serde_json::{json, Value};
use support::{free_addr, http_get, load_config, metric, stage_plugins, wait_until, write_config};
use syslog_support::{received, syslog_out};
use tokio::sync::watch;

fn azurite_table() -> Option<String> {
    let endpoint = std::env::var("AZLOG_AZURITE_TABLE")
        .unwrap_or_else(|_| "http://127.0.0.1:10002/devstoreaccount1".to_owned());
    let url = Url::parse(&endpoint).expect("url");
    let addr = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(10002)
    );
    if TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok() {
        return Some(endpoint);
    }
    if std::env::var("AZLOG_SKIP_AZURITE").as_deref() == Ok("1") {
        eprintln!("SKIPPED: Azurite not reachable and AZLOG_SKIP_AZURITE=1");
        return None;
    }
    panic!("Azurite is not reachable at {endpoint}; run `bash scripts/azurite-start.sh` or set AZLOG_SKIP_AZURITE=1");
}

/// Windows event XML: the real samples when present, else the repo's WAD fixtures.
fn events() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/samples/windows-security-xml/from-omerbenamram-evtx-samples");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        let mut files: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let mut rest = text.as_str();
            while let Some(s) = rest.find("<Event ") {
                let Some(len) = rest[s..].find("</Event>") else {
                    break;
                };
                out.push(rest[s..s + len + 8].to_owned());
                rest = &rest[s + len + 8..];
            }
        }
    }
    if out.is_empty() {
        let v: Value = serde_json::from_slice(
            &std::fs::read(root.join("tests/fixtures/records/windows.wad.json")).unwrap(),
        )
        .unwrap();
        for r in v["records"].as_array().unwrap() {
            out.push(r["RawXml"].as_str().unwrap().to_owned());
        }
    }
    out
}

fn entity(xml: &str, pk_ticks: i64, rk: &str) -> String {
    let (tree, _) = azlog_mapper::winxml::parse_event(xml);
    let n = |a: &str, b: &str| {
        tree[a][b]
            .as_str()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0)
    };
    json!({
        "PartitionKey": partition_key(pk_ticks), "RowKey": rk,
        "PreciseTimeStamp": azlog_wad::ticks::rfc3339_of_ticks(pk_ticks),
        "PreciseTimeStamp@odata.type": "Edm.DateTime",
        "DeploymentId": "d3c4b5a6e7f8", "Role": "IaaS", "RoleInstance": "_DC01",
        "EventId": n("System", "EventID"), "Level": n("System", "Level"),
        "Channel": tree["System"]["Channel"].as_str().unwrap_or("Security"),
        "Description": "", "RawXml": xml,
    })
    .to_string()
}

async fn insert(client: &TableClient, table: &str, rows: Vec<String>) {
    for chunk in rows.chunks(100) {
        client.insert_batch(table, chunk).await.expect("insert");
    }
}

/// Runs the WAD source until `want` messages arrived (plus `settle`); returns the records the
/// run delivered and, when the config has a metrics endpoint, its `/metrics` page read then.
async fn run_for(
    cfg: &HubConfig,
    out: &Path,
    app: &str,
    want: usize,
    settle: Duration,
) -> (usize, Option<String>) {
    let wad = load_wad_config(&cfg.file)
        .expect("wad config")
        .expect("[source.wad]");
    let (stop_tx, stop_rx) = watch::channel(false);
    let c = cfg.clone();
    let task = tokio::spawn(async move { run_wad(&c, &wad, stop_rx).await });
    let reached = wait_until(Duration::from_secs(60), || received(out, app).len() >= want).await;
    // Long enough for further poll cycles (1 s). Checkpoints are written only at the end of a
    // run (every_ms = 60000): the acknowledgements all come from the final checkpoint.
    tokio::time::sleep(settle).await;
    let metrics = match cfg.metrics.listen {
        Some(addr) => Some(http_get(addr, "/metrics").await),
        None => None,
    };
    stop_tx.send(true).expect("stop");
    let summary = task.await.expect("join").expect("run");
    assert!(
        reached,
        "{} of {want} messages; {summary:#?}",
        received(out, app).len()
    );
    assert!(summary.error.is_none(), "{summary:#?}");
    assert_eq!(summary.dead_lettered, 0);
    (summary.records as usize, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wad_rows_reach_rsyslog_as_cef_exactly_once_across_restarts() {
    let Some(endpoint) = azurite_table() else {
        return;
    };
    let Some(out) = syslog_out() else { return };
    let client = TableClient::new(
        Url::parse(&endpoint).unwrap(),
        DEV_ACCOUNT_NAME,
        StorageCredential::shared_key(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY).unwrap(),
        TableClientOptions::default(),
    )
    .unwrap();
    let table = format!("wade2e{}x{:08x}", std::process::id(), fastrand::u32(..));
    client.create_table(&table).await.expect("table");
    let xml = events();
    let now = floor_minute(ticks_from_unix_ns(azlog_mapper::deadletter::now_ns()));
    let first: Vec<String> = xml
        .iter()
        .enumerate()
        .map(|(i, x)| {
            entity(
                x,
                now - (i % 4) as i64 * TICKS_PER_MINUTE,
                &format!("a___{i:06}"),
            )
        })
        .collect();
    let n = first.len();
    insert(&client, &table, first).await;

    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let app = format!(
        "azwad{}x{:06x}",
        std::process::id(),
        fastrand::u32(..0xffffff)
    );
    let sink = format!(
        "[[sink]]\nname = \"siem\"\nplugin = \"cef\"\nhost = \"127.0.0.1\"\nport = 15514\nprotocol = \"tcp\"\napp_name = \"{app}\"\n[sink.batch]\nmax_records = 200\nlinger_ms = 50\n"
    );
    let wad = format!(
        "[checkpoint]\nevery_ms = 60000\nevery_events = 0\n\n[source.wad]\npoll_interval_secs = 1\ncheckpoint_every_ms = 0\ninitial_lookback_secs = 900\n\n[[source.wad.account]]\nname = \"lab\"\nconnection_string = \"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};TableEndpoint={endpoint};\"\ntables = [\"{table}\"]\nsubscription_id = \"11111111-2222-3333-4444-555555555555\"\n"
    );
    let path = write_config(dir.path(), &plugins, &sink, &wad);
    let cfg = load_config(&path);

    // Run 1: every row once; stopped as soon as the last message arrived (the final
    // checkpoint's acknowledgements still reach the watermark).
    let mut first_cfg = cfg.clone();
    first_cfg.metrics.listen = Some(free_addr());
    let (records, page) = run_for(&first_cfg, &out, &app, n, Duration::ZERO).await;
    // The poller's counters are on /metrics, labelled with <account>/<table>.
    let page = page.expect("metrics page");
    let id = format!("{DEV_ACCOUNT_NAME}/{table}");
    let m = |name: &str| match metric(&page, &format!("{name}{{table=\"{id}\"}} "))[..] {
        [v] => v,
        _ => panic!("{name} of {id}: not once on the page:\n{page}"),
    };
    assert_eq!(m("azlog_wad_rows_delivered_total"), n as f64);
    assert!(m("azlog_wad_rows_read_total") >= n as f64);
    assert!(m("azlog_wad_pages_total") >= 1.0);
    assert!(m("azlog_wad_requests_total") >= 1.0);
    assert_eq!(m("azlog_wad_errors_total"), 0.0);
    let got = received(&out, &app);
    assert_eq!(got.len(), n, "one message per row");
    assert_eq!(records, n);
    assert!(got
        .iter()
        .all(|m| m["msg"].as_str().unwrap_or("").starts_with("CEF:0|")));
    let watermark_dir = cfg.state_dir.join("wad");
    assert!(
        std::fs::read_dir(&watermark_dir).unwrap().count() == 1,
        "one watermark file"
    );

    // Run 2: nothing new, nothing again.
    let (records, _) = run_for(&cfg, &out, &app, n, Duration::from_secs(3)).await;
    assert_eq!(records, 0, "nothing delivered twice after a restart");
    assert_eq!(received(&out, &app).len(), n);

    // Rows written while stopped (one of them late, behind the watermark) arrive in run 3.
    let more: Vec<String> = (0..20)
        .map(|i| {
            entity(
                &xml[i % xml.len()],
                now - (i % 3) as i64 * TICKS_PER_MINUTE,
                &format!("b___{i:06}"),
            )
        })
        .collect();
    insert(&client, &table, more).await;
    let (records, _) = run_for(&cfg, &out, &app, n + 20, Duration::from_secs(3)).await;
    assert_eq!(records, 20);
    assert_eq!(received(&out, &app).len(), n + 20);
    client.delete_table(&table).await.expect("delete");
}
