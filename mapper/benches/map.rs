//! Mapping throughput vs serde_json parse-only of the same bytes, in the same run.
//!
//! Records come from the inputs in `tests/fixtures/records/` (every `*.json` / `*.ndjson` file:
//! envelopes, arrays, bare objects or NDJSON; not the `*.ecs.ndjson` golden outputs, which are
//! the mapper's output, not Azure input), or a few built-in records when that folder is absent.
//! Besides criterion's own report, a direct timing prints records/s, MB/s and the ratio
//! (the issue's target: mapping ≥ 50 % of parse-only).
//!
//! Both sides run on mimalloc, the allocator of the `azlog-hub` binary, so the ratio compares
//! the same allocator with itself.
//!
//! `AZLOG_BENCH_COPIES=N` runs over N copies of the records (each its own allocation), for a
//! working set beyond the caches: with 1,000 copies (73 MB) the ratio is the same as with one.
//! `AZLOG_BENCH_ORDER=runs` repeats each fixture file's records 10 times in a row (see
//! `records`). The bench profile has one codegen unit, so that serde_json's loop, compiled in
//! this crate, does not change with the harness's code (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::time::{Duration, Instant};

use azlog_mapper::mapper::MapOptions;
use azlog_mapper::path::Node;
use azlog_mapper::{MapInput, Mapper, Position};
use criterion::{black_box, Criterion, Throughput};

const FALLBACK_RECORDS: &[&str] = &[
    r#"{"time":"2022-08-22T18:07:16.1234567Z","resourceId":"/SUBSCRIPTIONS/S1/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV1","operationName":"SecretGet","category":"AuditEvent","resultType":"Success","resultSignature":"OK","durationMs":"12","callerIpAddress":"10.0.0.4:51234","correlationId":"a6a2f0a8-1111-2222-3333-444455556666","identity":{"claim":{"http://schemas.microsoft.com/identity/claims/objectidentifier":"oid-1","appid":"app-1","upn":"alice@contoso.com"}},"properties":{"id":"https://kv1.vault.azure.net/secrets/s1","clientInfo":"azsdk","httpStatusCode":200,"requestUri":"https://kv1.vault.azure.net/secrets/s1?api-version=7.3","isAccessPolicyMatch":true},"level":"Informational","location":"westeurope"}"#,
    r#"{"time":"8/22/2022 6:07:16 PM","resourceId":"/subscriptions/s1/providers/Microsoft.Authorization/policyAssignments/p","operationName":{"value":"Microsoft.Compute/virtualMachines/write","localizedValue":"Create or Update Virtual Machine"},"category":{"value":"Administrative"},"resultType":"Success","level":"Informational","callerIpAddress":"<CALLER IP ADDRESS>","caller":"bob@contoso.com","properties":{"statusCode":"Created","serviceRequestId":"x","eventCategory":"Administrative","entity":"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1","message":"Microsoft.Compute/virtualMachines/write","hierarchy":"t/s1"}}"#,
    r#"{"time":"2022-08-22T18:07:16Z","category":"SignInLogs","operationName":"Sign-in activity","resultType":"50126","resultSignature":"None","durationMs":0,"callerIpAddress":"203.0.113.9","identity":"Alice","Level":4,"location":"DE","properties":{"id":"s1","createdDateTime":"2022-08-22T18:07:16.000Z","userDisplayName":"Alice","userPrincipalName":"alice@contoso.com","appDisplayName":"Azure Portal","ipAddress":"203.0.113.9","status":{"errorCode":50126,"failureReason":"Invalid username or password"},"deviceDetail":{"operatingSystem":"Windows 10","browser":"Edge 104"},"location":{"city":"Berlin","countryOrRegion":"DE","geoCoordinates":{"latitude":52.5,"longitude":13.4}},"riskLevelAggregated":"none","authenticationDetails":[{"authenticationMethod":"Password","succeeded":false}]}}"#,
];

/// The input records of every fixture file under `dir`, one group per file.
fn collect_records(dir: &Path, out: &mut Vec<Vec<String>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            collect_records(&p, out);
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let input = name.ends_with(".json") || name.ends_with(".ndjson");
        if !input || name.ends_with(".ecs.ndjson") {
            continue;
        }
        // `AZLOG_BENCH_FILTER=windows.` keeps the fixture files whose name contains it.
        if let Ok(filter) = std::env::var("AZLOG_BENCH_FILTER") {
            if !name.contains(filter.as_str()) {
                continue;
            }
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let text = text.trim_start_matches('\u{feff}');
        let mut file: Vec<String> = Vec::new();
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(mut o)) => match o.remove("records") {
                Some(serde_json::Value::Array(items)) => {
                    file.extend(items.iter().map(|i| i.to_string()))
                }
                Some(other) => {
                    o.insert("records".into(), other);
                    file.push(serde_json::Value::Object(o).to_string());
                }
                None => file.push(serde_json::Value::Object(o).to_string()),
            },
            Ok(serde_json::Value::Array(items)) => file.extend(items.iter().map(|i| i.to_string())),
            Ok(_) => {}
            Err(_) => file.extend(
                text.lines()
                    .filter(|l| l.trim_start().starts_with('{'))
                    .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
                    .map(str::to_owned),
            ),
        }
        file.retain(|r| r.starts_with('{'));
        if !file.is_empty() {
            out.push(file);
        }
    }
}

/// The bench input: every fixture record once, file after file (a family's records come 1-6
/// at a time: the figure the issue's target is judged on). With `AZLOG_BENCH_ORDER=runs`,
/// each file's records are repeated 10 times in a row instead (same weights; runs of 10-60,
/// as Event Hubs events carry a batch of one category; with 1-6 distinct fixtures per family
/// the branch predictor learns them, so that is an optimistic bound for that shape).
///
/// `AZLOG_BENCH_RECORDS=<dir>` reads the inputs from another folder instead, for example the
/// real public samples in `../shared/samples` (outside the repo).
fn records() -> Vec<String> {
    let dir = match std::env::var_os("AZLOG_BENCH_RECORDS") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records"),
    };
    let mut groups = Vec::new();
    collect_records(&dir, &mut groups);
    let runs = std::env::var("AZLOG_BENCH_ORDER").is_ok_and(|o| o == "runs");
    let mut out: Vec<String> = Vec::new();
    for group in groups {
        for _ in 0..if runs { 10 } else { 1 } {
            out.extend(group.iter().cloned());
        }
    }
    if out.is_empty() {
        eprintln!("no fixtures in {}: using built-in records", dir.display());
        out = FALLBACK_RECORDS.iter().map(|s| (*s).to_owned()).collect();
    }
    out
}

#[inline(never)]
fn parse_all(recs: &[String]) -> usize {
    let mut n = 0;
    for r in recs {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(r) {
            n += usize::from(v.is_object());
            black_box(v);
        }
    }
    n
}

/// The mapping time every bench record gets (`event.ingested`).
const INGESTED_NS: i64 = 1_661_191_800_000_000_000;

/// A bench record as the mapper's input, with a fixed enqueued time.
fn bench_input(json: &str) -> MapInput<'_> {
    MapInput {
        json,
        position: Position::default(),
        enqueued_ns: Some(1_661_191_700_000_000_000),
    }
}

#[inline(never)]
fn map_all(mapper: &Mapper, recs: &[String]) -> usize {
    let mut n = 0;
    for r in recs {
        if let Ok(rec) = mapper.map(bench_input(r), INGESTED_NS) {
            n += 1;
            black_box(rec);
        }
    }
    n
}

/// What `azlog-hub map` does with the records of one read: every record parsed and its family
/// detected first, then mapped family by family (`Mapper::parse`, `Mapper::map_parsed`), the
/// pass being one batch. The records are dropped, as in `map_all`.
#[inline(never)]
fn map_grouped_all(mapper: &Mapper, recs: &[String]) -> usize {
    let mut parsed: Vec<_> = recs
        .iter()
        .filter_map(|r| mapper.parse(r).ok().map(|p| (p, r.as_str())))
        .collect();
    parsed.sort_by_key(|(p, _)| p.family());
    for (p, json) in &parsed {
        let rec = mapper.map_parsed(p, bench_input(json), INGESTED_NS, MapOptions::default());
        black_box(rec);
    }
    parsed.len()
}

/// The first step of `map_all` alone: each record's tree (`Node::parse`), dropped again.
#[inline(never)]
fn tree_all(recs: &[String]) -> usize {
    recs.iter()
        .filter(|r| black_box(Node::parse(r.as_str())).is_ok())
        .count()
}

/// Runs `f` repeatedly for about `budget`; returns passes per second.
fn rate(budget: Duration, mut f: impl FnMut() -> usize) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut passes = 0u64;
    while start.elapsed() < budget {
        black_box(f());
        passes += 1;
    }
    passes as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mapper = match Mapper::builtin() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut recs = records();
    // `AZLOG_BENCH_COPIES=N`: N copies of every record, each its own allocation, interleaved
    // as in the scripted run's file (a working set beyond the caches, like a stream).
    if let Some(n) = std::env::var("AZLOG_BENCH_COPIES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let one: Vec<String> = std::mem::take(&mut recs);
        for _ in 0..n {
            recs.extend(one.iter().cloned());
        }
    }
    let bytes: usize = recs.iter().map(String::len).sum();
    let n = recs.len();
    // Ratios differ between CPU models (mapping gains less than parsing from a wider core).
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
                .unwrap_or_default()
        };
        eprintln!("cpu: {} (model {})", field("model name"), field("model"));
    }
    let mapped = map_all(&mapper, &recs);
    eprintln!("{n} records, {bytes} bytes, {mapped} map without error");

    // For instruction counters (`valgrind --tool=callgrind --toggle-collect='*map_all*'`):
    // `AZLOG_BENCH_PASSES=map:N` / `parse:N` / `tree:N` / `grouped:N` runs N passes of one
    // loop and exits.
    // `map_all` has run once already (the check above), so under `'*map_all*'` callgrind counts
    // N + 1 map passes, the first one cold: take `map:N` minus `map:0` for N steady passes
    // (`mapper/benches/callgrind-ratio.sh` does).
    if let Ok(spec) = std::env::var("AZLOG_BENCH_PASSES") {
        let (what, count) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
        let count: usize = count.parse().unwrap_or(1);
        for _ in 0..count {
            match what {
                "parse" => black_box(parse_all(&recs)),
                "tree" => black_box(tree_all(&recs)),
                "grouped" => black_box(map_grouped_all(&mapper, &recs)),
                _ => black_box(map_all(&mapper, &recs)),
            };
        }
        return;
    }
    if std::env::var("AZLOG_BENCH_PROFILE_MAP").is_ok() {
        // For profilers: only the mapping loop.
        rate(Duration::from_secs(10), || map_all(&mapper, &recs));
        return;
    }
    // Alternate short rounds and keep each side's best, so load from other processes on a
    // shared machine distorts the ratio less.
    let (mut parse, mut map, mut tree, mut grouped) = (0f64, 0f64, 0f64, 0f64);
    for _ in 0..5 {
        parse = parse.max(rate(Duration::from_millis(600), || parse_all(&recs)));
        map = map.max(rate(Duration::from_millis(600), || map_all(&mapper, &recs)));
        tree = tree.max(rate(Duration::from_millis(200), || tree_all(&recs)));
        grouped = grouped.max(rate(Duration::from_millis(300), || {
            map_grouped_all(&mapper, &recs)
        }));
    }
    let mb = bytes as f64 / 1e6;
    println!(
        "parse-only (serde_json::Value): {:>10.0} records/s {:>8.1} MB/s",
        parse * n as f64,
        parse * mb
    );
    println!(
        "map (parse+detect+fields+Record): {:>8.0} records/s {:>8.1} MB/s",
        map * n as f64,
        map * mb
    );
    println!("ratio map/parse-only: {:.0} %", 100.0 * map / parse);
    println!(
        "  the pass as one batch, family by family, as azlog-hub map does: {:>8.0} records/s, {:.0} % of parse-only",
        grouped * n as f64,
        100.0 * grouped / parse
    );
    // Where the mapping time goes: its first step, the record's tree, measured alone.
    println!(
        "  of which the tree (Node::parse): {:>8.0} records/s, {:.0} % of the map time",
        tree * n as f64,
        100.0 * map / tree
    );

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("records");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("serde_json_parse_only", |b| b.iter(|| parse_all(&recs)));
    g.bench_function("map", |b| b.iter(|| map_all(&mapper, &recs)));
    g.finish();
    c.final_summary();
}
