//! `azlog-hub demo`: the whole path on one machine, no Azure account, no network.
//!
//! Starts the Event Hubs emulator in-process, publishes the bundled example records (every
//! family) in `{"records":[...]}` envelopes plus one malformed event, and runs the consumer
//! pipeline on it (the same one as `azlog-hub run`: partition readers over AMQP with the
//! official Rust client, envelope, mapper, router, sinks, ack tracker, checkpoints) with four
//! in-process sinks writing ECS, CEF, LEEF and Splunk HEC JSON into the output folder, until
//! every partition is read to its end. Prints what it did.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use azlog_emulator::{EmulatorConfig, HubSpec};
use azlog_mapper::envelope::{EnvelopeConfig, RecordReader};
use azlog_mapper::Mapper;
use azlog_plugin_api::{Record, SinkError};
use bytes::Bytes;
use clap::Args;

use crate::checkpoint::{CheckpointCadence, CheckpointKey, CheckpointStore, MemoryCheckpointStore};
use crate::pipeline::{CheckpointTarget, DeadLetters, DeliverySink, Pipeline, RunOptions};
use crate::render::{Format, Renderer};
use crate::sink_host::{BatchOutcome, Offered, SinksFile, Undelivered};
use crate::source::eventhubs::{Endpoint, EventHubsSource, ReaderOptions};
use crate::source::StartFrom;

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
    /// Final checkpoint (sequence number) per partition.
    pub checkpoints: Vec<(String, i64)>,
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
    let fqns = endpoint.fully_qualified_namespace()?;
    let source = EventHubsSource::connect(endpoint, ReaderOptions::default()).await?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let families = Arc::new(Mutex::new(BTreeMap::new()));
    let mut sinks: Vec<Box<dyn DeliverySink>> = Vec::new();
    let mut configs = Vec::new();
    let mut counters = Vec::new();
    for format in FORMATS {
        let path = args.out.join(format.file_name());
        let lines = Arc::new(AtomicU64::new(0));
        let sink = RenderSink::create(
            format,
            &path,
            lines.clone(),
            (format == Format::Ecs).then(|| families.clone()),
        )?;
        configs.push(
            SinksFile::parse(&format!(
                "[[sink]]\nname = \"{}\"\nplugin = \"builtin\"\n",
                sink.name
            ))?
            .sink
            .remove(0),
        );
        sinks.push(Box::new(sink));
        counters.push((format, lines, path));
    }
    let dead_path = args.out.join("dead-letter.ndjson");
    // A fresh run starts a fresh dead-letter file.
    let _ = std::fs::remove_file(&dead_path);
    let dead = Arc::new(DeadLetters::new(&dead_path));
    let mapper = Mapper::builtin().context("loading the built-in schema tables")?;
    let store = Arc::new(MemoryCheckpointStore::new());
    let key = CheckpointKey::new(fqns, HUB, "$Default");
    let pipeline = Pipeline::new(
        Arc::new(source),
        Arc::new(mapper),
        &configs,
        sinks,
        dead.clone(),
    );
    let opts = RunOptions {
        start_override: Some(StartFrom::Earliest),
        checkpoints: Some(CheckpointTarget {
            store: store.clone(),
            key: key.clone(),
            cadence: CheckpointCadence::default(),
            flush_sinks: true,
        }),
        stop_at_end: true,
        idle_timeout: Some(std::time::Duration::from_secs(20)),
        connect_attempts: Some(3),
        ..RunOptions::live(StartFrom::Earliest)
    };
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let run = pipeline.run(opts, stop_rx).await?;
    if let Some(e) = &run.error {
        anyhow::bail!("the demo pipeline stopped: {e}");
    }
    summary.events_received = run.events;
    summary.records_mapped = run.records;
    summary.dead_lettered = run.dead_lettered;
    summary.families = families.lock().map(|f| f.clone()).unwrap_or_default();
    for (format, lines, path) in counters {
        summary
            .lines_per_format
            .push((format, lines.load(Ordering::Relaxed), path));
    }
    for c in store.list(&key).await? {
        summary.checkpoints.push((c.partition, c.sequence));
    }
    summary.checkpoints.sort();
    emulator.shutdown().await?;
    Ok(summary)
}

/// An in-process sink rendering one format into a file (the demo needs no plugin directory).
struct RenderSink {
    name: String,
    renderer: Renderer,
    out: BufWriter<File>,
    path: PathBuf,
    pending: Vec<Record>,
    oldest: Option<Instant>,
    lines: Arc<AtomicU64>,
    families: Option<Arc<Mutex<BTreeMap<String, u64>>>>,
    shutdown: Arc<AtomicBool>,
}

impl RenderSink {
    fn create(
        format: Format,
        path: &std::path::Path,
        lines: Arc<AtomicU64>,
        families: Option<Arc<Mutex<BTreeMap<String, u64>>>>,
    ) -> Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(RenderSink {
            name: format!("{format:?}").to_lowercase(),
            renderer: Renderer::new(format, true)?,
            out: BufWriter::new(file),
            path: path.to_path_buf(),
            pending: Vec::new(),
            oldest: None,
            lines,
            families,
            shutdown: Arc::new(AtomicBool::new(false)),
        })
    }

    fn deliver(&mut self) -> Option<BatchOutcome> {
        if self.pending.is_empty() {
            return None;
        }
        self.oldest = None;
        let records = std::mem::take(&mut self.pending);
        let mut undelivered = None;
        for (i, r) in records.iter().enumerate() {
            if let Err(e) = self.renderer.write(r, &mut self.out) {
                undelivered = Some(Undelivered {
                    from: i,
                    reason: format!("writing {}: {e}", self.path.display()),
                    sink_parked: false,
                });
                break;
            }
            self.lines.fetch_add(1, Ordering::Relaxed);
            if let Some(f) = &self.families {
                let family = r.get_str("azlog.family").unwrap_or("unknown").to_owned();
                if let Ok(mut f) = f.lock() {
                    *f.entry(family).or_default() += 1;
                }
            }
        }
        Some(BatchOutcome {
            sink: self.name.clone(),
            records,
            rejected: Vec::new(),
            undelivered,
            attempts: 1,
            restarts: 0,
        })
    }
}

impl DeliverySink for RenderSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn shutdown_flag(&self) -> Arc<AtomicBool> {
        self.shutdown.clone()
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.oldest
            .map(|t| t + std::time::Duration::from_millis(50))
    }
    fn offer(&mut self, record: Record) -> Offered {
        self.pending.push(record);
        self.oldest.get_or_insert_with(Instant::now);
        if self.pending.len() >= 200 {
            self.deliver().map_or(Offered::Queued, Offered::Delivered)
        } else {
            Offered::Queued
        }
    }
    fn poll(&mut self, now: Instant) -> Option<BatchOutcome> {
        match self.next_deadline() {
            Some(d) if now >= d => self.deliver(),
            _ => None,
        }
    }
    fn flush(&mut self) -> (Option<BatchOutcome>, Result<(), SinkError>) {
        let outcome = self.deliver();
        let flushed = self
            .out
            .flush()
            .map_err(|e| SinkError::retryable(format!("writing {}: {e}", self.path.display())));
        (outcome, flushed)
    }
    fn close(mut self: Box<Self>) -> (Option<BatchOutcome>, Result<(), SinkError>) {
        self.flush()
    }
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
    if !s.checkpoints.is_empty() {
        let cps: Vec<String> = s
            .checkpoints
            .iter()
            .map(|(p, seq)| format!("partition {p} at sequence {seq}"))
            .collect();
        println!("\n  final checkpoints: {}", cps.join(", "));
    }
}
