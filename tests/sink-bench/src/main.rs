//! Sink benchmarks on the mapped sample mix (single thread, so every figure is per core), each
//! next to the mapping throughput measured in the same run:
//!
//! 1. mapping (envelope split already done; schema mapping into the canonical record) — the baseline;
//! 2. CEF, LEEF and Splunk HEC (original and ECS bodies) encoding of the mapped records;
//! 3. host→plugin batch call overhead: the FFI `write_batch` call into the no-op `test-sink`
//!    plugin, loaded the way the host loads plugins.
//!
//! usage: cargo build --release -p azlog-sink-bench -p azlog-test-sink
//!        target/release/azlog-sink-bench [--input FILE] [--records N] [--batch B]
//!                                         [--ffi-records N] [--plugin-dir DIR]
//! The input defaults to `examples/records/azure-sample.json` (one record of every family); the
//! plugin dir defaults to the directory of this executable (target/release).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{RResult, RSlice, RStr};
use anyhow::{anyhow, bail, Context};
use azlog_codecs::hec::{EventBody, HecEncoder};
use azlog_codecs::{cef, leef};
use azlog_mapper::envelope::{split_body, EnvelopeConfig, EnvelopeStats};
use azlog_mapper::{MapInput, Mapper, Position};
use azlog_plugin_api::{Record, SinkPluginRef};

struct Args {
    input: PathBuf,
    records: usize,
    batch: usize,
    ffi_records: usize,
    plugin_dir: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let default_input =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/records/azure-sample.json");
    Ok(Args {
        input: arg("--input").map_or(default_input, PathBuf::from),
        records: arg("--records").map_or(Ok(200_000), |s| s.parse())?,
        batch: arg("--batch").map_or(Ok(500), |s| s.parse())?,
        ffi_records: arg("--ffi-records").map_or(Ok(20_000_000), |s| s.parse())?,
        plugin_dir: match arg("--plugin-dir") {
            Some(d) => PathBuf::from(d),
            None => std::env::current_exe()?
                .parent()
                .ok_or_else(|| anyhow!("no exe dir"))?
                .to_path_buf(),
        },
    })
}

/// One measured stage: records/s and MB/s of output (or input for mapping).
struct Rate {
    records_per_s: f64,
}

fn report(label: &str, n: usize, bytes: usize, t: Instant, baseline: Option<&Rate>) -> Rate {
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    let rate = n as f64 / secs;
    let ratio = baseline.map_or(String::new(), |b| {
        format!("  {:>6.2}x mapping", rate / b.records_per_s)
    });
    println!(
        "{label:34} {rate:>11.0} records/s {:>8.1} MB/s {:>9.0} ns/record{ratio}",
        bytes as f64 / secs / 1e6,
        secs * 1e9 / n as f64
    );
    Rate {
        records_per_s: rate,
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let body = std::fs::read(&args.input)
        .with_context(|| format!("read input {}", args.input.display()))?;
    let raw = split_body(
        &body,
        &EnvelopeConfig::default(),
        Arc::new(EnvelopeStats::default()),
    );
    let raw: Vec<String> = raw
        .into_iter()
        .filter(|r| r.error.is_none())
        .filter_map(|r| String::from_utf8(r.json).ok())
        .collect();
    if raw.is_empty() {
        bail!("no records in {}", args.input.display());
    }
    let mapper = Mapper::builtin().context("load the built-in schema tables")?;
    let raw_bytes: usize = raw.iter().map(String::len).sum();
    println!(
        "input: {} ({} records, {:.0} bytes per record on average); {} records per stage, batches of {}",
        args.input.display(),
        raw.len(),
        raw_bytes as f64 / raw.len() as f64,
        args.records,
        args.batch
    );
    let rounds = args.records.div_ceil(raw.len());
    let n = rounds * raw.len();

    // 1. Mapping (the baseline every other stage is compared with).
    let mut mapped: Vec<Record> = Vec::with_capacity(raw.len());
    let t = Instant::now();
    for round in 0..rounds {
        for (i, json) in raw.iter().enumerate() {
            let input = MapInput {
                json,
                position: Position::default(),
                enqueued_ns: Some(1_714_564_800_000_000_000),
            };
            let rec = mapper
                .map(input, 1_714_564_800_000_000_000)
                .map_err(|e| anyhow!("record {i} does not map: {e}"))?;
            if round == 0 {
                mapped.push(rec);
            } else {
                std::hint::black_box(rec);
            }
        }
    }
    let map_rate = report("map (schema tables)", n, raw_bytes * rounds, t, None);

    // 2. Encoders, one record at a time into a reused buffer, as the plugins do.
    let cef_cfg = cef::CefConfig::builtin().map_err(|e| anyhow!("CEF config: {e}"))?;
    let mut line = String::with_capacity(8192);
    let mut bytes = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        for r in &mapped {
            line.clear();
            cef::encode(r, &cef_cfg, &mut line);
            bytes += line.len();
        }
    }
    report("CEF encode", n, bytes, t, Some(&map_rate));

    let leef_cfg = leef::LeefConfig::builtin().map_err(|e| anyhow!("LEEF config: {e}"))?;
    let mut bytes = 0usize;
    let t = Instant::now();
    for _ in 0..rounds {
        for r in &mapped {
            line.clear();
            leef::encode(r, &leef_cfg, &mut line);
            bytes += line.len();
        }
    }
    report("LEEF encode", n, bytes, t, Some(&map_rate));

    for (label, body) in [
        ("HEC encode, original body", EventBody::Original),
        (
            "HEC encode, ECS body",
            EventBody::Ecs {
                include_original: false,
            },
        ),
    ] {
        let mut enc = HecEncoder::with_defaults().map_err(|e| anyhow!("HEC encoder: {e}"))?;
        enc.body = body;
        enc.index = Some("azure".into());
        let mut buf = Vec::with_capacity(raw.len() * 8192);
        let mut ends = Vec::with_capacity(raw.len());
        let mut bytes = 0usize;
        let t = Instant::now();
        for _ in 0..rounds {
            buf.clear();
            ends.clear();
            for r in &mapped {
                enc.encode(r, &mut buf, &mut ends)
                    .map_err(|e| anyhow!("HEC encode: {e}"))?;
            }
            bytes += buf.len();
        }
        report(label, n, bytes, t, Some(&map_rate));
    }

    // 3. FFI call overhead: batches of mapped records into the no-op plugin.
    let lib = args.plugin_dir.join(format!(
        "{}azlog_test_sink{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let module = lib_header_from_path(&lib)
        .and_then(|h| h.init_root_module::<SinkPluginRef>())
        .with_context(|| format!("load {} (build it with -p azlog-test-sink)", lib.display()))?;
    let mut sink = match (module.open())(RStr::from_str("{}")) {
        RResult::ROk(s) => s,
        RResult::RErr(e) => bail!("open the test sink: {e}"),
    };
    let batch: Vec<Record> = mapped.iter().cycle().take(args.batch).cloned().collect();
    let calls = args.ffi_records.div_ceil(args.batch);
    let t = Instant::now();
    for _ in 0..calls {
        match sink.write_batch(RSlice::from_slice(&batch)) {
            RResult::ROk(r) if r.accepted() == batch.len() as u64 => {}
            other => bail!("unexpected report {other:?}"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    report(
        "host→plugin write_batch (no-op)",
        calls * batch.len(),
        0,
        t,
        Some(&map_rate),
    );
    println!(
        "{:34} {:>11.0} ns per write_batch call of {} records",
        "",
        secs * 1e9 / calls as f64,
        batch.len()
    );
    Ok(())
}
