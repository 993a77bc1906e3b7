//! Baseline for `scripts/bench-map.sh`: splits the same input with the same envelope reader and
//! parses every record with `serde_json::from_slice::<serde_json::Value>`, nothing else.
//! Prints `records bytes seconds`.
//!
//! With `--lines`, serde_json alone: each line of the file (NDJSON only) is parsed as it is,
//! split at `\n` by `BufRead::read_until`, without the envelope reader (which finds records
//! that span lines, unwraps envelopes and sanitizes; over the 100 MB bench input it takes a
//! quarter of the default baseline's time, and took 40 % before its quick route for whole
//! objects). The strictest reading of "serde_json parse-only of the same bytes";
//! `bench-map.sh` reports the ratio against both.
//!
//! It uses mimalloc, the allocator of the `azlog-hub` binary it is compared with: with the
//! system allocator the baseline itself is ≈ 10 % slower and the ratio reads too high.
//! It reads through a buffer of the size `azlog-hub map` uses ([`READ_BUFFER`]; with 64 KiB
//! it takes the same time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader};
use std::time::Instant;

use azlog_mapper::envelope::{EnvelopeConfig, RecordReader, READ_BUFFER};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let lines = args.first().is_some_and(|a| a == "--lines");
    if lines {
        args.remove(0);
    }
    let path = args.first().ok_or("usage: parse_only [--lines] FILE")?;
    let bytes = std::fs::metadata(path)?.len();
    let start = Instant::now();
    let mut input = BufReader::with_capacity(READ_BUFFER, std::fs::File::open(path)?);
    let (mut records, mut keys) = (0u64, 0usize);
    let mut count = |v: serde_json::Value| {
        keys += v.as_object().map_or(0, |o| o.len());
        records += 1;
    };
    if lines {
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            count(serde_json::from_slice(&line)?);
        }
    } else {
        for raw in RecordReader::new(input, EnvelopeConfig::default()) {
            count(serde_json::from_slice(&raw?.json)?);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("parse_only: {records} records, {keys} top-level keys");
    println!("{records} {bytes} {secs:.3}");
    Ok(())
}
