//! The WAD table poller (`azlog-wad`) as a pipeline [`Source`]: each polled table is one
//! partition (`<account>/<table>`), each row one event (body = the row's JSON, offset =
//! `<PartitionKey>/<RowKey>`, sequence = a counter per table and process).
//!
//! Acknowledgements travel through the pipeline's own checkpointing: [`WadCheckpointBridge`] is
//! the [`CheckpointStore`] of a WAD run. When the pipeline "writes the checkpoint" of a table at
//! sequence S (every record up to S is acknowledged by every sink, the sinks were flushed and
//! the dead-letter file synced), the bridge acknowledges the poller's batches up to S, and the
//! poller saves its own watermark (`[source.wad] watermark_dir`). Where a run starts comes from
//! that watermark, never from the bridge.
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;
use azlog_wad::{BatchAck, FileWatermarkStore, PollOptions, TableSpec, WadConfig, WadSource};
use azlog_wad::{TableStats, WadRow, WatermarkStore};
use tokio::sync::watch;

use super::{PartitionInfo, PartitionReader, RawEvent, Source, SourceError, StartFrom};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointKey, CheckpointStore};
use crate::config::HubConfig;
use crate::pipeline::RunSummary;

/// Batches handed to the pipeline and not yet covered by a checkpoint, per table.
#[derive(Default)]
struct TableAcks {
    next_sequence: i64,
    /// (sequence of the batch's last row, its acknowledgement), oldest first.
    pending: VecDeque<(i64, BatchAck)>,
}

/// Shared between the source (which registers batches) and the bridge (which acknowledges).
#[derive(Default)]
pub struct WadAcks {
    tables: Mutex<HashMap<String, TableAcks>>,
}

impl WadAcks {
    /// Assigns sequence numbers to `n` rows of `partition` and keeps the batch's ack.
    fn register(&self, partition: &str, n: usize, ack: BatchAck) -> i64 {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let t = tables.entry(partition.to_owned()).or_default();
        let first = t.next_sequence;
        t.next_sequence += n as i64;
        t.pending.push_back((t.next_sequence - 1, ack));
        first
    }

    /// Acknowledges every batch of `partition` whose rows are all at or before `sequence`.
    fn ack_through(&self, partition: &str, sequence: i64) -> usize {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = tables.get_mut(partition) else {
            return 0;
        };
        let mut n = 0;
        while t.pending.front().is_some_and(|(last, _)| *last <= sequence) {
            if let Some((_, ack)) = t.pending.pop_front() {
                ack.ack();
                n += 1;
            }
        }
        n
    }

    /// Forgets the unacknowledged batches of a table whose poller stopped (they are read
    /// again from the watermark by the next one).
    fn release(&self, partition: &str) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tables.get_mut(partition) {
            t.pending.clear();
        }
    }

    fn last_sequence(&self, partition: &str) -> i64 {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.get(partition).map_or(-1, |t| t.next_sequence - 1)
    }
}

/// The configured WAD tables as a pipeline source.
pub struct WadPipelineSource {
    /// `<account>/<table>`, the table, and its counters (kept across poller restarts).
    tables: Vec<(String, TableSpec, Arc<TableStats>)>,
    store: Arc<dyn WatermarkStore>,
    options: PollOptions,
    acks: Arc<WadAcks>,
    /// Pollers of closed readers, kept running until the source closes (after the pipeline's
    /// final checkpoints, whose acknowledgements they still have to save) or until their
    /// table is opened again.
    parked: Arc<tokio::sync::Mutex<HashMap<String, WadSource>>>,
}

impl WadPipelineSource {
    /// A source over `specs`, saving watermarks in `store`.
    pub fn new(
        specs: Vec<TableSpec>,
        store: Arc<dyn WatermarkStore>,
        options: PollOptions,
    ) -> Self {
        let tables = specs
            .into_iter()
            .map(|s| {
                let id = format!("{}/{}", s.client.account(), s.table);
                (id, s, Arc::default())
            })
            .collect();
        WadPipelineSource {
            tables,
            store,
            options,
            acks: Arc::new(WadAcks::default()),
            parked: Arc::default(),
        }
    }

    /// The checkpoint store that turns the pipeline's checkpoints into acknowledgements.
    pub fn bridge(&self) -> Arc<WadCheckpointBridge> {
        Arc::new(WadCheckpointBridge {
            acks: self.acks.clone(),
        })
    }
}

#[async_trait]
impl Source for WadPipelineSource {
    fn describe(&self) -> String {
        "wad".into()
    }

    async fn partitions(&self) -> Result<Vec<String>, SourceError> {
        Ok(self.tables.iter().map(|(id, ..)| id.clone()).collect())
    }

    async fn partition_info(&self, partition: &str) -> Result<PartitionInfo, SourceError> {
        let last = self.acks.last_sequence(partition);
        Ok(PartitionInfo {
            id: partition.to_owned(),
            is_empty: last < 0,
            beginning_sequence: 0,
            last_sequence: last,
            last_offset: String::new(),
            last_enqueued_ns: None,
        })
    }

    async fn open(
        &self,
        partition: &str,
        _start: &StartFrom,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let (spec, stats) = self
            .tables
            .iter()
            .find(|(id, ..)| id == partition)
            .map(|(_, spec, stats)| (spec.clone(), stats.clone()))
            .ok_or_else(|| SourceError::fatal(format!("no WAD table {partition} configured")))?;
        // Reopened (after a reconnect): the old poller stops, saving what was acknowledged;
        // its other batches are read again by the new one.
        let old = self.parked.lock().await.remove(partition);
        if let Some(old) = old {
            old.shutdown().await;
            self.acks.release(partition);
        }
        let poller = WadSource::start_with_stats(
            vec![(spec, stats)],
            self.store.clone(),
            self.options.clone(),
        );
        Ok(Box::new(WadReader {
            partition: partition.to_owned(),
            poller,
            acks: self.acks.clone(),
            parked: self.parked.clone(),
            queue: VecDeque::new(),
        }))
    }

    fn write_metrics(&self, out: &mut String) {
        write_table_metrics(&self.tables, out);
    }

    async fn close(&self) {
        let pollers: Vec<WadSource> = self.parked.lock().await.drain().map(|(_, p)| p).collect();
        for p in pollers {
            p.shutdown().await;
        }
    }
}

/// The pollers' and table clients' counters, per table, in Prometheus text format.
fn write_table_metrics(tables: &[(String, TableSpec, Arc<TableStats>)], out: &mut String) {
    use crate::pipeline::metrics::{escape, write_family};
    use std::fmt::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    type Counter = for<'a> fn(&'a TableSpec, &'a TableStats) -> &'a AtomicU64;
    let counters: [(&str, &str, Counter); 12] = [
        (
            "azlog_wad_cycles_total",
            "Poll cycles completed.",
            |_, s| &s.cycles,
        ),
        ("azlog_wad_pages_total", "Table pages read.", |_, s| {
            &s.pages
        }),
        (
            "azlog_wad_rows_read_total",
            "Rows read, re-reads included.",
            |_, s| &s.rows_read,
        ),
        (
            "azlog_wad_rows_delivered_total",
            "Rows handed to the pipeline.",
            |_, s| &s.rows_delivered,
        ),
        (
            "azlog_wad_duplicates_skipped_total",
            "Re-read rows skipped because they were delivered before.",
            |_, s| &s.duplicates_skipped,
        ),
        (
            "azlog_wad_batches_acked_total",
            "Batches acknowledged by every sink.",
            |_, s| &s.batches_acked,
        ),
        (
            "azlog_wad_batches_released_total",
            "Batches released unacknowledged (read again).",
            |_, s| &s.batches_released,
        ),
        (
            "azlog_wad_errors_total",
            "Failed poll cycles and watermark store errors.",
            |_, s| &s.errors,
        ),
        (
            "azlog_wad_watermark_saves_total",
            "Watermarks saved.",
            |_, s| &s.watermark_saves,
        ),
        (
            "azlog_wad_requests_total",
            "Table storage HTTP requests, each attempt counted.",
            |t, _| &t.client.stats().requests,
        ),
        (
            "azlog_wad_retries_total",
            "Table storage requests retried after a retryable error.",
            |t, _| &t.client.stats().retries,
        ),
        (
            "azlog_wad_throttled_total",
            "Table storage responses 503 ServerBusy.",
            |t, _| &t.client.stats().throttled,
        ),
    ];
    for (name, help, get) in counters {
        write_family(out, name, "counter", help);
        for (id, spec, stats) in tables {
            let v = get(spec, stats).load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}{{table=\"{}\"}} {v}", escape(id));
        }
    }
    let name = "azlog_wad_watermark_timestamp_seconds";
    write_family(
        out,
        name,
        "gauge",
        "Unix time of the saved watermark (rows up to it are delivered).",
    );
    for (id, _, stats) in tables {
        let ticks = stats.committed_ticks.load(Ordering::Relaxed);
        if ticks > 0 {
            let secs = azlog_wad::ticks::unix_ns_from_ticks(ticks) / 1_000_000_000;
            let _ = writeln!(out, "{name}{{table=\"{}\"}} {secs}", escape(id));
        }
    }
}

struct WadReader {
    partition: String,
    poller: WadSource,
    acks: Arc<WadAcks>,
    parked: Arc<tokio::sync::Mutex<HashMap<String, WadSource>>>,
    queue: VecDeque<RawEvent>,
}

fn event(partition: &str, row: WadRow, sequence: i64) -> RawEvent {
    RawEvent {
        offset: format!("{}/{}", row.partition_key, row.row_key),
        body: row.json.into_bytes(),
        partition: partition.to_owned(),
        sequence,
        enqueued_ns: row.stored_ns,
    }
}

#[async_trait]
impl PartitionReader for WadReader {
    async fn next(&mut self) -> Option<Result<RawEvent, SourceError>> {
        if self.queue.is_empty() {
            let batch = self.poller.next_batch().await?;
            let (rows, ack) = batch.into_parts();
            let first = self.acks.register(&self.partition, rows.len(), ack);
            for (i, row) in rows.into_iter().enumerate() {
                self.queue
                    .push_back(event(&self.partition, row, first + i as i64));
            }
        }
        self.queue.pop_front().map(Ok)
    }

    /// Rows already fetched (never a new poll).
    fn try_next(&mut self) -> Option<Option<Result<RawEvent, SourceError>>> {
        self.queue.pop_front().map(|e| Some(Ok(e)))
    }

    /// Parks the poller: the pipeline's final checkpoints come after the readers closed, and
    /// their acknowledgements must still reach it. Rows queued here and not handed on are
    /// never covered by a checkpoint, so they are read again after a restart.
    async fn close(self: Box<Self>) {
        let this = *self;
        this.parked.lock().await.insert(this.partition, this.poller);
    }
}

/// The checkpoint store of a WAD run: loads nothing (the poller's watermark says where to
/// start), and a save acknowledges the batches it covers.
pub struct WadCheckpointBridge {
    acks: Arc<WadAcks>,
}

impl std::fmt::Debug for WadCheckpointBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WadCheckpointBridge")
    }
}

#[async_trait]
impl CheckpointStore for WadCheckpointBridge {
    async fn list(&self, _key: &CheckpointKey) -> Result<Vec<Checkpoint>, CheckpointError> {
        Ok(Vec::new())
    }

    async fn load(
        &self,
        _key: &CheckpointKey,
        _partition: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(None)
    }

    async fn save(
        &self,
        _key: &CheckpointKey,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        let n = self
            .acks
            .ack_through(&checkpoint.partition, checkpoint.sequence);
        tracing::debug!(table = %checkpoint.partition, sequence = checkpoint.sequence, batches = n, "WAD batches acknowledged");
        Ok(())
    }

    fn describe(&self) -> String {
        "wad watermarks".into()
    }
}

/// `[source.wad]` of a configuration file, when it has one.
pub fn load_wad_config(file: &Path) -> Result<Option<WadConfig>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let value: toml::Value = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.message()))?;
    let Some(wad) = value.get("source").and_then(|s| s.get("wad")) else {
        return Ok(None);
    };
    let cfg = WadConfig::deserialize(wad.clone())
        .map_err(|e| anyhow::anyhow!("{}: [source.wad]: {}", file.display(), e.message()))?;
    cfg.validate()?;
    Ok(Some(cfg))
}

use serde::Deserialize as _;

/// Runs the WAD tables of `wad` through the pipeline into the configured sinks until `stop`.
pub async fn run_wad(
    config: &HubConfig,
    wad: &WadConfig,
    stop: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let base = config
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let specs = wad.table_specs(&base, &|v| std::env::var(v).ok())?;
    anyhow::ensure!(
        !specs.is_empty(),
        "[source.wad] has no [[source.wad.account]] with tables"
    );
    let watermarks = wad.watermark_dir(&base, &config.state_dir);
    tracing::info!(tables = specs.len(), watermarks = %watermarks.display(), "WAD source");
    let source = WadPipelineSource::new(
        specs,
        Arc::new(FileWatermarkStore::new(watermarks)),
        wad.poll_options(),
    );
    let bridge = source.bridge();
    let source: Arc<dyn Source> = Arc::new(source);
    let key = CheckpointKey::new("wad", "tables", "azlog-hub");
    // Acknowledgements reach the poller only through checkpoints: keep a time cadence.
    let opts =
        crate::service::source_checkpointed(config, bridge, key, std::time::Duration::from_secs(5));
    crate::service::run_live(config, source, opts, stop).await
}
