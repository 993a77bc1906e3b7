//! How fast event bodies split into records, as the service splits each Event Hubs or Kafka
//! message ([`split_body`]): the NDJSON records of FILE are wrapped, N at a time, in
//! `{"records":[...]}` envelopes (the shape Azure Monitor sends), and every envelope is
//! split PASSES times. Prints `records bytes seconds` for the splitting alone (building the
//! envelopes is not timed).
//!
//! Usage: `split_only FILE [N] [PASSES]` (defaults: 100 records per envelope, 5 passes).
use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

use azlog_mapper::envelope::{split_body, EnvelopeConfig, EnvelopeStats};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or("usage: split_only FILE [N] [PASSES]")?;
    let per: usize = args.get(1).map_or(Ok(100), |a| a.parse())?;
    let passes: usize = args.get(2).map_or(Ok(5), |a| a.parse())?;
    let input = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut bodies = Vec::new();
    let mut body = Vec::new();
    let mut in_body = 0;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        body.extend_from_slice(if in_body == 0 {
            b"{\"records\":["
        } else {
            b","
        });
        body.extend_from_slice(line.as_bytes());
        in_body += 1;
        if in_body == per.max(1) {
            body.extend_from_slice(b"]}");
            bodies.push(std::mem::take(&mut body));
            in_body = 0;
        }
    }
    if in_body > 0 {
        body.extend_from_slice(b"]}");
        bodies.push(body);
    }
    let cfg = EnvelopeConfig::default();
    let stats = Arc::new(EnvelopeStats::default());
    let (mut records, mut bytes) = (0usize, 0usize);
    let start = Instant::now();
    for _ in 0..passes {
        for b in &bodies {
            records += split_body(b, &cfg, stats.clone()).len();
            bytes += b.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "split_only: {records} records in {} envelopes × {passes} passes, {:.0} MB/s",
        bodies.len(),
        bytes as f64 / 1e6 / secs
    );
    println!("{records} {bytes} {secs:.3}");
    Ok(())
}
