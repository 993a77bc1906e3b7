//! `azlog-hub demo`: the whole path on one machine, no Azure account, no network.
//!
//! Starts the Event Hubs emulator in-process, publishes the bundled example records (every
//! family) in `{"records":[...]}` envelopes plus one malformed event, reads them back through
//! the official Rust Event Hubs client over AMQP, splits, maps, and writes ECS, CEF, LEEF and
//! Splunk HEC JSON into the output folder. Prints what it did.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use azlog_emulator::{EmulatorConfig, HubSpec};
use azlog_mapper::deadletter::{now_ns, DeadLetter, DeadLetterStore};
use azlog_mapper::envelope::{split_body, EnvelopeConfig, EnvelopeStats, RecordReader};
use azlog_mapper::{MapInput, Mapper};
use azlog_plugin_api::Position;
use azure_messaging_eventhubs::StartLocation;
use bytes::Bytes;
use clap::Args;
use tokio::sync::mpsc;

use crate::render::{Format, Renderer};
use crate::source::eventhubs::{self, Endpoint};
use crate::source::RawEvent;

/// The example records bundled into the binary.
pub const SAMPLE_RECORDS: &str = include_str!("../../../examples/records/azure-sample.json");

/// Arguments of `azlog-hub demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "demo-out")]
    pub out: PathBuf,
    /// Records to publish instead of the bundled examples (any envelope form).
    #[arg(long, value_name = "FILE")]
    pub records: Option<PathBuf>,
    /// Partitions of the demo hub.
    #[arg(long, default_value_t = 2)]
    pub partitions: u32,
    /// Records per published event.
    #[arg(long, default_value_t = 4)]
    pub per_event: usize,
}

/// What a demo run did.
#[derive(Debug, Default)]
pub struct DemoSummary {
    pub events_published: u64,
    pub events_received: u64,
    pub records_mapped: u64,
    pub dead_lettered: u64,
    pub families: BTreeMap<String, u64>,
    pub lines_per_format: Vec<(Format, u64, PathBuf)>,
}

const HUB: &str = "azure-logs";
const FORMATS: [Format; 4] = [Format::Ecs, Format::Cef, Format::Leef, Format::Splunk];

/// Runs `azlog-hub demo`.
pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = rt.block_on(run_demo(&args))?;
    print_summary(&args, &summary);
    Ok(ExitCode::SUCCESS)
}

/// The demo itself, reusable from tests.
pub async fn run_demo(args: &DemoArgs) -> Result<DemoSummary> {
    let sample = match &args.records {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => SAMPLE_RECORDS.to_owned(),
    };
    let records: Vec<String> = RecordReader::new(sample.as_bytes(), EnvelopeConfig::default())
        .filter_map(|r| r.ok())
        .filter(|r| r.error.is_none())
        .map(|r| String::from_utf8_lossy(&r.json).into_owned())
        .collect();
    anyhow::ensure!(!records.is_empty(), "no records to publish");

    let emulator = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(
        HUB,
        args.partitions.max(1),
    )]))
    .await
    .context("starting the Event Hubs emulator")?;
    let mut summary = DemoSummary::default();
    let partitions: Vec<String> = (0..args.partitions.max(1)).map(|p| p.to_string()).collect();
    for (i, chunk) in records.chunks(args.per_event.max(1)).enumerate() {
        let body = format!("{{\"records\":[{}]}}", chunk.join(","));
        let partition = &partitions[i % partitions.len()];
        emulator
            .publish(HUB, Some(partition), None, Bytes::from(body))
            .context("publishing to the emulator")?;
        summary.events_published += 1;
    }
    // One malformed event, to show that it is dead-lettered with its position, not lost.
    emulator
        .publish(
            HUB,
            Some(&partitions[0]),
            None,
            Bytes::from_static(b"{\"records\":[{\"time\":\"2024-05-01T10:00:00Z\",\"category\":"),
        )
        .context("publishing to the emulator")?;
    summary.events_published += 1;

    let endpoint = Endpoint {
        connection_string: emulator.connection_string(HUB),
        hub: HUB.to_owned(),
        consumer_group: "$Default".to_owned(),
        custom_endpoint: Some(emulator.amqp_url()),
    };
    let client = eventhubs::connect(&endpoint).await?;
    let ids = eventhubs::partition_ids(&client).await?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut outputs = Vec::new();
    for format in FORMATS {
        let path = args.out.join(format.file_name());
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        outputs.push((
            Renderer::new(format, true)?,
            BufWriter::new(file),
            0u64,
            format,
            path,
        ));
    }
    let dead_path = args.out.join("dead-letter.ndjson");
    // A fresh run starts a fresh dead-letter file.
    let _ = std::fs::remove_file(&dead_path);
    let mut dead = DeadLetterStore::new(&dead_path);
    let mapper = Mapper::builtin().context("loading the built-in schema tables")?;
    let env_cfg = EnvelopeConfig::default();
    let stats = Arc::new(EnvelopeStats::default());
    let source = format!("eventhubs:{}/{HUB}/$Default", emulator.local_addr());

    let (tx, mut rx) = mpsc::channel::<RawEvent>(64);
    let reader = async {
        let mut n = 0;
        for id in &ids {
            n += eventhubs::read_partition_to_end(
                &client,
                id,
                StartLocation::Earliest,
                300,
                std::time::Duration::from_secs(20),
                &tx,
            )
            .await?;
        }
        drop(tx);
        anyhow::Ok(n)
    };
    let process = async {
        while let Some(event) = rx.recv().await {
            summary.events_received += 1;
            for raw in split_body(&event.body, &env_cfg, stats.clone()) {
                let position = Position {
                    source: source.as_str().into(),
                    partition: event.partition.as_str().into(),
                    offset: event.offset.as_str().into(),
                    sequence: event.sequence,
                    index: raw.index,
                };
                let mapped = match (&raw.error, std::str::from_utf8(&raw.json)) {
                    (Some(reason), _) => Err(("envelope", reason.clone())),
                    (None, Err(e)) => Err(("envelope", format!("record is not valid UTF-8: {e}"))),
                    (None, Ok(json)) => mapper
                        .map(
                            MapInput {
                                json,
                                position: position.clone(),
                                enqueued_ns: event.enqueued_ns,
                            },
                            now_ns(),
                        )
                        .map_err(|e| ("map", e.to_string())),
                };
                match mapped {
                    Ok(record) => {
                        summary.records_mapped += 1;
                        let family = record
                            .get_str("azlog.family")
                            .unwrap_or("unknown")
                            .to_owned();
                        *summary.families.entry(family).or_default() += 1;
                        for (renderer, out, lines, _, path) in outputs.iter_mut() {
                            renderer
                                .write(&record, out)
                                .with_context(|| format!("writing {}", path.display()))?;
                            *lines += 1;
                        }
                    }
                    Err((stage, reason)) => {
                        dead.write(&DeadLetter::new(stage, &reason, &position, &raw.json))
                            .context("writing a dead letter")?;
                        summary.dead_lettered += 1;
                    }
                }
            }
        }
        anyhow::Ok(())
    };
    let (read, processed) = tokio::join!(reader, process);
    read?;
    processed?;
    for (_, mut out, lines, format, path) in outputs {
        out.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        summary.lines_per_format.push((format, lines, path));
    }
    dead.sync().context("writing the dead-letter file")?;
    client.close().await.ok();
    emulator.shutdown().await?;
    Ok(summary)
}

fn print_summary(args: &DemoArgs, s: &DemoSummary) {
    println!(
        "azlog-hub demo: Event Hubs emulator → azlog-hub → SIEM formats (no Azure account used)"
    );
    println!(
        "  published {} events to hub {HUB:?} ({} partitions), received {} over AMQP",
        s.events_published, args.partitions, s.events_received
    );
    println!(
        "  mapped {} records, dead-lettered {}",
        s.records_mapped, s.dead_lettered
    );
    println!("\n  records per family:");
    for (family, n) in &s.families {
        println!("    {family:<40} {n:>5}");
    }
    println!("\n  lines per sink:");
    for (format, n, path) in &s.lines_per_format {
        println!(
            "    {:<8} {n:>5}  {}",
            format!("{format:?}").to_lowercase(),
            path.display()
        );
    }
    if s.dead_lettered > 0 {
        println!(
            "    {:<8} {:>5}  {}",
            "dead",
            s.dead_lettered,
            args.out.join("dead-letter.ndjson").display()
        );
    }
}
