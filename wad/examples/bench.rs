//! WAD poller benchmark against Azurite: rows/s polled, mapped and CEF-encoded, and where the
//! time goes (HTTP incl. the server, page splitting, XML, the rest of mapping, CEF).
//!
//! ```text
//! bash scripts/azurite-start.sh
//! cargo run --release -p azlog-wad --example bench -- [--rows 20000] [--page-size 1000]
//! ```
//! Rows are real Windows Security events (../shared/samples/windows-security-xml) when present,
//! else the repo's WAD fixtures, wrapped in the WADWindowsEventLogsTable row shape and spread
//! over the last 10 minutes' partitions.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azlog_azure_storage::{StorageCredential, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use azlog_codecs::cef::{self, CefConfig};
use azlog_mapper::Mapper;
use azlog_wad::ticks::{floor_minute, partition_key, ticks_from_unix_ns, TICKS_PER_MINUTE};
use azlog_wad::{
    MemoryWatermarkStore, PollOptions, Query, RecordExtras, TableClient, TableClientOptions,
    TableSpec, WadSource,
};
use reqwest::Url;
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn events() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/samples/windows-security-xml/from-omerbenamram-evtx-samples");
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let mut rest = text.as_str();
            while let (Some(s), Some(e)) = (rest.find("<Event "), rest.find("</Event>")) {
                if e < s {
                    rest = &rest[e + 8..];
                    continue;
                }
                out.push(rest[s..e + 8].to_owned());
                rest = &rest[e + 8..];
            }
        }
    }
    if out.is_empty() {
        let fixture = root.join("tests/fixtures/records/windows.wad.json");
        if let Ok(bytes) = std::fs::read(fixture) {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                for r in v["records"].as_array().into_iter().flatten() {
                    if let Some(x) = r["RawXml"].as_str() {
                        out.push(x.to_owned());
                    }
                }
            }
        }
    }
    out
}

fn entity(xml: &str, pk_ticks: i64, rk: &str) -> Value {
    let (tree, _) = azlog_mapper::winxml::parse_event(xml);
    let s = |p: &[&str]| {
        let mut v = &tree;
        for k in p {
            v = &v[*k];
        }
        v.as_str().unwrap_or("").to_owned()
    };
    let n = |p: &[&str]| s(p).trim().parse::<i64>().unwrap_or(0);
    let when = azlog_wad::ticks::rfc3339_of_ticks(pk_ticks);
    json!({
        "PartitionKey": partition_key(pk_ticks), "RowKey": rk,
        "PreciseTimeStamp": when, "PreciseTimeStamp@odata.type": "Edm.DateTime",
        "TIMESTAMP": when, "TIMESTAMP@odata.type": "Edm.DateTime",
        "EventTickCount": pk_ticks.to_string(), "EventTickCount@odata.type": "Edm.Int64",
        "DeploymentId": "d3c4b5a6e7f8", "Role": "IaaS", "RoleInstance": "_DC01",
        "ProviderGuid": s(&["System", "Provider", "Guid"]),
        "ProviderName": s(&["System", "Provider", "Name"]),
        "EventId": n(&["System", "EventID"]), "Level": n(&["System", "Level"]),
        "Pid": n(&["System", "Execution", "ProcessID"]), "Tid": n(&["System", "Execution", "ThreadID"]),
        "Opcode": n(&["System", "Opcode"]), "Task": n(&["System", "Task"]),
        "Channel": s(&["System", "Channel"]), "Description": "", "RawXml": xml,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let rows = arg("--rows", 20_000);
    let page_size = arg("--page-size", 1000) as u32;
    let endpoint = std::env::var("AZLOG_AZURITE_TABLE")
        .unwrap_or_else(|_| "http://127.0.0.1:10002/devstoreaccount1".into());
    let client = TableClient::new(
        Url::parse(&endpoint)?,
        DEV_ACCOUNT_NAME,
        StorageCredential::shared_key(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY)?,
        TableClientOptions::default(),
    )?;
    let xml = events();
    if xml.is_empty() {
        return Err("no event XML found (samples or fixtures)".into());
    }
    let table = format!("wadbench{:08x}", fastrand::u32(..));
    client.create_table(&table).await?;

    // Fill: 10 minute partitions, entity group transactions of 100, 4 in parallel.
    let now = floor_minute(ticks_from_unix_ns(azlog_mapper::deadletter::now_ns()));
    let mut groups: Vec<Vec<String>> = Vec::new();
    let per_minute = rows.div_ceil(10);
    for m in 0..10 {
        let pk = now - (9 - m as i64) * TICKS_PER_MINUTE;
        let start = m * per_minute;
        let end = ((m + 1) * per_minute).min(rows);
        let ents: Vec<String> = (start..end)
            .map(|i| entity(&xml[i % xml.len()], pk, &format!("d3c4___DC01___{i:010}")).to_string())
            .collect();
        groups.extend(ents.chunks(100).map(<[String]>::to_vec));
    }
    let bytes: usize = groups.iter().flatten().map(String::len).sum();
    let t = Instant::now();
    let groups = Arc::new(tokio::sync::Mutex::new(groups));
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let (c, g, tb) = (client.clone(), groups.clone(), table.clone());
        fillers.push(tokio::spawn(async move {
            loop {
                let next = g.lock().await.pop();
                let Some(chunk) = next else {
                    return Ok::<(), azlog_wad::TableError>(());
                };
                c.insert_batch(&tb, &chunk).await?;
            }
        }));
    }
    for f in fillers {
        f.await??;
    }
    let fill = t.elapsed();
    println!(
        "fill: {rows} rows ({:.1} MB JSON, {} distinct events) in {:.2}s = {:.0} rows/s",
        bytes as f64 / 1e6,
        xml.len(),
        fill.as_secs_f64(),
        rows as f64 / fill.as_secs_f64()
    );

    // 1. The Table client alone: pages, HTTP + split, no mapping.
    let query = Query {
        filter: Some(format!(
            "PartitionKey ge '{}' and PartitionKey lt '{}'",
            partition_key(now - 20 * TICKS_PER_MINUTE),
            partition_key(now + TICKS_PER_MINUTE)
        )),
        select: None,
        top: Some(page_size),
    };
    let t = Instant::now();
    let (mut n, mut pages, mut http, mut split) = (0usize, 0usize, Duration::ZERO, Duration::ZERO);
    let mut raw_xml: Vec<String> = Vec::with_capacity(rows);
    let mut cont = None;
    loop {
        let page = client.query_page(&table, &query, cont.as_ref()).await?;
        http += page.http_time;
        let s = Instant::now();
        let got = azlog_wad::row::parse_page(&page.body)?;
        split += s.elapsed();
        n += got.len();
        pages += 1;
        for r in &got {
            if let Ok(v) = serde_json::from_str::<Value>(&r.json) {
                raw_xml.push(v["RawXml"].as_str().unwrap_or("").to_owned());
            }
        }
        match page.continuation {
            Some(c) => cont = Some(c),
            None => break,
        }
    }
    let scan = t.elapsed();
    println!(
        "scan: {n} rows in {pages} pages, {:.2}s = {:.0} rows/s (HTTP {:.2}s incl. server, split {:.3}s)",
        scan.as_secs_f64(),
        n as f64 / scan.as_secs_f64(),
        http.as_secs_f64(),
        split.as_secs_f64()
    );

    // 2. XML alone, on the same RawXml strings.
    let t = Instant::now();
    let mut nodes = 0usize;
    for x in &raw_xml {
        let (tree, _) = azlog_mapper::winxml::parse_event_tree(x);
        nodes += usize::from(matches!(tree, azlog_mapper::path::Node::Object(_)));
    }
    let xml_time = t.elapsed();

    // 3. The whole poller: poll, map, CEF-encode, acknowledge.
    let mapper = Mapper::builtin()?;
    let cef_cfg = CefConfig::builtin()?;
    let spec = TableSpec {
        client: client.clone(),
        table: table.clone(),
        extras: RecordExtras::default(),
    };
    let options = PollOptions {
        page_size,
        initial_lookback: Duration::from_secs(900),
        poll_interval: Duration::from_secs(3600),
        ..PollOptions::default()
    };
    let t = Instant::now();
    let mut source = WadSource::start(vec![spec], Arc::new(MemoryWatermarkStore::new()), options);
    let (mut delivered, mut dead, mut cef_bytes) = (0usize, 0usize, 0usize);
    let (mut map_time, mut cef_time) = (Duration::ZERO, Duration::ZERO);
    let mut line = String::with_capacity(4096);
    while delivered + dead < rows {
        let Some(batch) =
            tokio::time::timeout(Duration::from_secs(60), source.next_batch()).await?
        else {
            break;
        };
        let s = Instant::now();
        let (records, dl) = batch.map(&mapper, azlog_mapper::deadletter::now_ns());
        map_time += s.elapsed();
        let s = Instant::now();
        for r in &records {
            line.clear();
            cef::encode(r, &cef_cfg, &mut line);
            cef_bytes += line.len();
        }
        cef_time += s.elapsed();
        delivered += records.len();
        dead += dl.len();
        batch.ack();
    }
    let total = t.elapsed();
    let st = source.stats()[0].1.clone();
    source.shutdown().await;
    let us = |d: Duration| d.as_secs_f64() * 1e6 / rows as f64;
    println!(
        "poller: {delivered} records + {dead} dead letters in {:.2}s = {:.0} rows/s polled, mapped and CEF-encoded ({:.1} MB CEF)",
        total.as_secs_f64(),
        (delivered + dead) as f64 / total.as_secs_f64(),
        cef_bytes as f64 / 1e6
    );
    let http_p = Duration::from_micros(st.http_us.load(Ordering::Relaxed));
    let split_p = Duration::from_micros(st.parse_us.load(Ordering::Relaxed));
    println!("per row (µs): HTTP+server {:.1} | page split {:.2} | map {:.1} (of which XML ≈{:.1}, {} trees) | CEF {:.1}",
        us(http_p), us(split_p), us(map_time), us(xml_time), nodes, us(cef_time));
    println!(
        "poller pages: {}, rows read {}, duplicates skipped {}",
        st.pages.load(Ordering::Relaxed),
        st.rows_read.load(Ordering::Relaxed),
        st.duplicates_skipped.load(Ordering::Relaxed)
    );
    client.delete_table(&table).await?;
    Ok(())
}
