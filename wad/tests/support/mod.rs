//! Shared helpers of the Azurite tests: the Azurite endpoint, a client, WAD rows built from
//! Windows event XML, inserting them, and collecting what the poller delivers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azlog_azure_storage::{StorageCredential, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use azlog_wad::ticks::{floor_minute, partition_key, ticks_from_unix_ns, TICKS_PER_MINUTE};
use azlog_wad::{
    PollOptions, TableClient, TableClientOptions, TableSpec, WadBatch, WadRow, WadSource,
};
use reqwest::Url;
use serde_json::{json, Value};

/// The Azurite Table endpoint, or None when the test should be skipped (AZLOG_SKIP_AZURITE=1).
/// Panics when Azurite is required but not reachable.
pub fn azurite_table() -> Option<Url> {
    let endpoint = std::env::var("AZLOG_AZURITE_TABLE")
        .unwrap_or_else(|_| "http://127.0.0.1:10002/devstoreaccount1".to_owned());
    let url = Url::parse(&endpoint).expect("AZLOG_AZURITE_TABLE is a URL");
    let host = url.host_str().expect("host").to_owned();
    let port = url.port_or_known_default().expect("port");
    let reachable = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(url);
    }
    if std::env::var("AZLOG_SKIP_AZURITE").as_deref() == Ok("1") {
        eprintln!("SKIPPED: Azurite not reachable at {endpoint} and AZLOG_SKIP_AZURITE=1");
        return None;
    }
    panic!(
        "Azurite is not reachable at {endpoint}; run `bash scripts/azurite-start.sh` \
         (and source .tools/azurite/env.sh) or set AZLOG_SKIP_AZURITE=1"
    );
}

pub fn dev_credential() -> StorageCredential {
    StorageCredential::shared_key(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY).expect("dev key")
}

pub fn client_at(endpoint: Url, options: TableClientOptions) -> TableClient {
    TableClient::new(endpoint, DEV_ACCOUNT_NAME, dev_credential(), options).expect("client")
}

pub fn client(endpoint: &Url) -> TableClient {
    client_at(endpoint.clone(), TableClientOptions::default())
}

/// A fresh table name.
pub fn unique_table(prefix: &str) -> String {
    format!("{prefix}{}x{:08x}", std::process::id(), fastrand::u32(..))
}

pub async fn fresh_table(client: &TableClient, prefix: &str) -> String {
    let name = unique_table(prefix);
    assert!(client.create_table(&name).await.expect("create table"));
    name
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The `RawXml` of the repo's WAD fixture rows (tests/fixtures/records/windows.wad.json).
pub fn fixture_xml() -> Vec<String> {
    let path = repo_root().join("tests/fixtures/records/windows.wad.json");
    let v: Value = serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json");
    v["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["RawXml"].as_str().expect("RawXml").to_owned())
        .collect()
}

/// Real Windows Security events (../shared/samples/windows-security-xml/), when present:
/// each `<Event>...</Event>` of the sample files, as rendered.
pub fn sample_xml() -> Vec<String> {
    let dir =
        repo_root().join("../shared/samples/windows-security-xml/from-omerbenamram-evtx-samples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut rest = text.as_str();
        while let Some(start) = rest.find("<Event ") {
            let Some(len) = rest[start..].find("</Event>") else {
                break;
            };
            let end = start + len + "</Event>".len();
            out.push(rest[start..end].to_owned());
            rest = &rest[end..];
        }
    }
    out
}

/// The PartitionKey ticks of the minute `minutes_ago` minutes before now.
pub fn minute_ago(minutes_ago: i64) -> i64 {
    floor_minute(ticks_from_unix_ns(now_ns())) - minutes_ago * TICKS_PER_MINUTE
}

pub fn now_ns() -> i64 {
    azlog_mapper::deadletter::now_ns()
}

fn text<'a>(tree: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = tree;
    for p in path {
        v = v.get(*p)?;
    }
    v.as_str()
}

fn int(tree: &Value, path: &[&str]) -> i64 {
    text(tree, path)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A WADWindowsEventLogsTable row, as the Azure Diagnostics agent writes it, around `xml`.
pub fn wad_entity(xml: &str, pk_ticks: i64, row_key: &str) -> Value {
    let (tree, _) = azlog_mapper::winxml::parse_event(xml);
    let pk = partition_key(pk_ticks);
    let when = azlog_wad::ticks::rfc3339_of_ticks(pk_ticks);
    json!({
        "PartitionKey": pk,
        "RowKey": row_key,
        "PreciseTimeStamp": when,
        "PreciseTimeStamp@odata.type": "Edm.DateTime",
        "TIMESTAMP": when,
        "TIMESTAMP@odata.type": "Edm.DateTime",
        "EventTickCount": pk_ticks.to_string(),
        "EventTickCount@odata.type": "Edm.Int64",
        "DeploymentId": "d3c4b5a6e7f8",
        "Role": "IaaS",
        "RoleInstance": "_DC01",
        "ProviderGuid": text(&tree, &["System", "Provider", "Guid"]).unwrap_or(""),
        "ProviderName": text(&tree, &["System", "Provider", "Name"]).unwrap_or(""),
        "EventId": int(&tree, &["System", "EventID"]),
        "Level": int(&tree, &["System", "Level"]),
        "Pid": int(&tree, &["System", "Execution", "ProcessID"]),
        "Tid": int(&tree, &["System", "Execution", "ThreadID"]),
        "Opcode": int(&tree, &["System", "Opcode"]),
        "Task": int(&tree, &["System", "Task"]),
        "Channel": text(&tree, &["System", "Channel"]).unwrap_or("Security"),
        "Description": text(&tree, &["RenderingInfo", "Message"]).unwrap_or(""),
        "RawXml": xml,
    })
}

/// `n` WAD rows in the minute `pk_ticks`, cycling through `xml`; RowKeys `<tag>___<i>`.
pub fn wad_rows(xml: &[String], pk_ticks: i64, tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| wad_entity(&xml[i % xml.len()], pk_ticks, &format!("{tag}___{i:06}")))
        .collect()
}

/// Inserts entities in entity group transactions (100 per PartitionKey and request).
pub async fn insert_all(client: &TableClient, table: &str, entities: &[Value]) {
    let mut by_pk: HashMap<String, Vec<String>> = HashMap::new();
    for e in entities {
        by_pk
            .entry(e["PartitionKey"].as_str().expect("pk").to_owned())
            .or_default()
            .push(e.to_string());
    }
    for (_, rows) in by_pk {
        for chunk in rows.chunks(100) {
            client
                .insert_batch(table, chunk)
                .await
                .expect("batch insert");
        }
    }
}

/// Poll options for tests: fast cycles, saves at every change.
pub fn fast_options() -> PollOptions {
    PollOptions {
        poll_interval: Duration::from_millis(150),
        overlap: Duration::from_secs(600),
        initial_lookback: Duration::from_secs(600),
        checkpoint_interval: Duration::ZERO,
        max_in_flight_batches: 1000,
        channel_capacity: 64,
        ..PollOptions::default()
    }
}

pub fn spec(client: &TableClient, table: &str) -> TableSpec {
    TableSpec {
        client: client.clone(),
        table: table.to_owned(),
        extras: Default::default(),
    }
}

/// Receives batches until `done(rows so far)` or the timeout; acknowledges each batch when
/// `ack` is true (otherwise keeps them, unacknowledged, in the result).
pub async fn collect_until(
    source: &mut WadSource,
    timeout: Duration,
    ack: bool,
    mut done: impl FnMut(&[WadRow]) -> bool,
) -> (Vec<WadRow>, Vec<WadBatch>) {
    let deadline = Instant::now() + timeout;
    let mut rows = Vec::new();
    let mut held = Vec::new();
    while !done(&rows) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, source.next_batch()).await {
            Ok(Some(batch)) => {
                rows.extend(batch.rows.iter().cloned());
                if ack {
                    batch.ack();
                } else {
                    held.push(batch);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    (rows, held)
}

/// Waits until `cond` holds (checked every 20 ms) or panics after the timeout.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts of RowKeys delivered.
pub fn counts(rows: &[WadRow]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in rows {
        *m.entry(format!("{}/{}", r.partition_key, r.row_key))
            .or_insert(0) += 1;
    }
    m
}

pub fn stats(source: &WadSource, i: usize) -> Arc<azlog_wad::TableStats> {
    source.stats()[i].1.clone()
}
pub mod throttle;
