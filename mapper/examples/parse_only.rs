//! Baseline for `scripts/bench-map.sh`: splits the same input with the same envelope reader and
//! parses every record with `serde_json::from_slice::<serde_json::Value>`, nothing else.
//! Prints `records bytes seconds`.
//!
//! It uses mimalloc, the allocator of the `azlog-hub` binary it is compared with: with the
//! system allocator the baseline itself is ≈ 10 % slower and the ratio reads too high.
//! It reads through a buffer of the size `azlog-hub map` uses ([`READ_BUFFER`]; with 64 KiB
//! it takes the same time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::BufReader;
use std::time::Instant;

use azlog_mapper::envelope::{EnvelopeConfig, RecordReader, READ_BUFFER};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_only FILE")?;
    let bytes = std::fs::metadata(&path)?.len();
    let start = Instant::now();
    let reader = RecordReader::new(
        BufReader::with_capacity(READ_BUFFER, std::fs::File::open(&path)?),
        EnvelopeConfig::default(),
    );
    let (mut records, mut keys) = (0u64, 0usize);
    for raw in reader {
        let raw = raw?;
        let v: serde_json::Value = serde_json::from_slice(&raw.json)?;
        keys += v.as_object().map_or(0, |o| o.len());
        records += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("parse_only: {records} records, {keys} top-level keys");
    println!("{records} {bytes} {secs:.3}");
    Ok(())
}
