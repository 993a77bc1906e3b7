//! The consumer pipeline: source partitions → envelope → mapper → router → sinks → ack tracker
//! → checkpoint store.
//!
//! ```text
//!  reader task per partition ──▶ mapping jobs (blocking pool, ≤ cores at once)
//!                                   │ results taken in read order
//!  forwarder task per partition ◀───┘ ──(bounded queue per sink)──▶ sink worker thread per sink
//!     │ register(event, acks)                                         │ ack / dead-letter+ack
//!     ▼                                                                ▼
//!  PartitionState (ack tracker, done position, in-flight bound) ◀──────┘
//!     │ done position, on cadence, after a sink flush barrier
//!     ▼
//!  checkpoint store
//! ```
//!
//! * Per-partition order is kept into each sink: events map in parallel, but one forwarder per
//!   partition takes the mapped events in read order and sends them into each sink's FIFO queue.
//! * Backpressure: each partition holds at most `max_in_flight_events` unacknowledged events and
//!   each sink queue is bounded, so a slow or failing sink pauses the readers (memory bounded).
//! * At-least-once: a checkpoint is the last position at or before which every record was
//!   accepted by every sink it was routed to, or dead-lettered.
//! * Shutdown: readers stop, sink queues drain (bounded by `drain_timeout`), sinks are flushed and
//!   closed, final checkpoints are written.
pub mod checkpointing;
pub mod dead_letters;
pub mod delivery;
pub mod metrics;
pub mod partition_state;
pub mod router;

mod reader;
mod sink_worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use azlog_mapper::envelope::{EnvelopeConfig, EnvelopeStats};
use azlog_mapper::Mapper;
use tokio::sync::{mpsc, watch};

use crate::checkpoint::{CheckpointKey, CheckpointStore};
use crate::config::PipelineSettings;
use crate::sink_host::SinkConfig;
use crate::source::{Source, StartFrom, Until};

pub use checkpointing::CheckpointTarget;
pub use dead_letters::DeadLetters;
pub use delivery::DeliverySink;
pub use metrics::{Metrics, SinkMetrics};
pub use partition_state::PartitionState;
pub use router::Router;

/// What to read and where to stop.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Tuning.
    pub settings: PipelineSettings,
    /// Envelope sanitizers.
    pub envelope: EnvelopeConfig,
    /// Partitions to read (`None`: all).
    pub partitions: Option<Vec<String>>,
    /// Start of a partition without a checkpoint (or when checkpoints are ignored).
    pub default_start: StartFrom,
    /// Start every partition here, ignoring checkpoints (replay `--from` other than
    /// `checkpoint`).
    pub start_override: Option<StartFrom>,
    /// Where to read resume checkpoints from (`None`: always `default_start`).
    pub resume_from: Option<(Arc<dyn CheckpointStore>, CheckpointKey)>,
    /// Where to write checkpoints (`None`: never, e.g. a replay without `--commit`).
    pub checkpoints: Option<CheckpointTarget>,
    /// Replay: stop each partition at its newest event as of the start.
    pub stop_at_end: bool,
    /// Replay: inclusive upper bound.
    pub until: Option<Until>,
    /// Replay: end a partition after this long without events.
    pub idle_timeout: Option<Duration>,
    /// Attempts to list partitions at start-up (`None`: until stopped).
    pub connect_attempts: Option<u32>,
}

impl RunOptions {
    /// Options for a live run with default tuning.
    pub fn live(default_start: StartFrom) -> Self {
        RunOptions {
            settings: PipelineSettings::default(),
            envelope: EnvelopeConfig::default(),
            partitions: None,
            default_start,
            start_override: None,
            resume_from: None,
            checkpoints: None,
            stop_at_end: false,
            until: None,
            idle_timeout: None,
            connect_attempts: None,
        }
    }
}

/// Per-partition result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSummary {
    /// Events read.
    pub events: u64,
    /// Sequence number of the last event read (-1: none).
    pub last_sequence: i64,
    /// Last position done (acknowledged by every sink), the final checkpoint if written.
    pub done_sequence: Option<i64>,
    /// Reconnects.
    pub reconnects: u64,
}

/// Per-sink result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSummary {
    /// Records accepted.
    pub accepted: u64,
    /// Records rejected (dead-lettered).
    pub rejected: u64,
    /// Records not delivered.
    pub undelivered: u64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Events read.
    pub events: u64,
    /// Records mapped.
    pub records: u64,
    /// Mapping jobs run (each maps the events that were waiting together, see `reader`).
    pub map_jobs: u64,
    /// Records dead-lettered (all stages).
    pub dead_lettered: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Per partition.
    pub partitions: BTreeMap<String, PartitionSummary>,
    /// Per sink.
    pub sinks: BTreeMap<String, SinkSummary>,
    /// Why the run stopped early, if it failed.
    pub error: Option<String>,
    /// Sink workers that did not finish within the drain timeout.
    pub stuck_sinks: Vec<String>,
}

/// A pipeline ready to run: source, mapper, opened sinks, dead-letter store.
pub struct Pipeline {
    source: Arc<dyn Source>,
    mapper: Arc<Mapper>,
    sinks: Vec<Box<dyn DeliverySink>>,
    router: Arc<Router>,
    dead: Arc<DeadLetters>,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Assembles a pipeline. `sink_configs[i]` must describe `sinks[i]` (its filter routes).
    pub fn new(
        source: Arc<dyn Source>,
        mapper: Arc<Mapper>,
        sink_configs: &[SinkConfig],
        sinks: Vec<Box<dyn DeliverySink>>,
        dead: Arc<DeadLetters>,
    ) -> Self {
        let names: Vec<String> = sinks.iter().map(|s| s.name().to_owned()).collect();
        let metrics = Arc::new(Metrics::new(&names, dead.clone()));
        Pipeline {
            source,
            mapper,
            sinks,
            router: Arc::new(Router::new(sink_configs)),
            dead,
            metrics,
        }
    }

    /// Counts into `metrics` instead of fresh counters (they must name the same sinks, in the
    /// same order): a service that runs several pipelines one after the other (load balancing)
    /// keeps one set of counters for `/metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        debug_assert!(metrics
            .sinks
            .iter()
            .map(|m| m.name.as_str())
            .eq(self.sinks.iter().map(|s| s.name())));
        self.metrics = metrics;
        self
    }

    /// Live counters (for progress output and `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Runs until `stop` turns true, a fatal error occurs, or (replay) every partition reached
    /// its end. Always drains, closes the sinks and writes final checkpoints before returning.
    pub async fn run(
        self,
        opts: RunOptions,
        mut stop: watch::Receiver<bool>,
    ) -> anyhow::Result<RunSummary> {
        let Pipeline {
            source,
            mapper,
            sinks,
            router,
            dead,
            metrics,
        } = self;
        anyhow::ensure!(
            sinks.len() == router.len(),
            "pipeline: {} sinks but {} sink configs",
            sinks.len(),
            router.len()
        );
        let (halt_tx, halt_rx) = watch::channel(false);
        let (fatal_tx, mut fatal_rx) = mpsc::unbounded_channel::<String>();

        // Partitions (retrying while the source is unreachable).
        let ids = match list_partitions(source.as_ref(), &opts, &mut stop).await? {
            Some(ids) => ids,
            None => return Ok(empty_summary(&metrics, None)),
        };

        // Start positions.
        let mut plans = Vec::new();
        for id in &ids {
            let checkpoint = match &opts.resume_from {
                Some((store, key)) => store.load(key, id).await.map_err(|e| {
                    anyhow::anyhow!("loading the checkpoint of partition {id}: {e}")
                })?,
                None => None,
            };
            let start = match (&opts.start_override, &checkpoint) {
                (Some(s), _) => s.clone(),
                (None, Some(cp)) => StartFrom::after(cp),
                (None, None) => opts.default_start.clone(),
            };
            // The done position starts at the checkpoint only when reading resumes from it.
            let done = checkpoint.filter(|_| opts.start_override.is_none());
            let state = Arc::new(PartitionState::new(
                id,
                done,
                opts.settings.max_in_flight_events,
            ));
            let mut end = reader::End {
                sequence: None,
                until: opts.until.clone(),
                idle: opts.idle_timeout,
            };
            let mut finished = false;
            if opts.stop_at_end {
                let info = source
                    .partition_info(id)
                    .await
                    .map_err(|e| anyhow::anyhow!("partition {id}: {}", e.message))?;
                state
                    .end_sequence
                    .store(info.last_sequence, Ordering::Relaxed);
                end.sequence = Some(info.last_sequence);
                finished = nothing_to_read(&start, &info);
            }
            tracing::info!(partition = %id, start = %start, nothing_to_read = finished, "partition planned");
            plans.push((state, start, end, finished));
        }
        if let Ok(mut p) = metrics.partitions.lock() {
            *p = plans.iter().map(|(s, ..)| s.clone()).collect();
        }

        // Sink workers.
        let stopping = Arc::new(AtomicBool::new(false));
        let mut sink_txs = Vec::new();
        let mut workers = Vec::new();
        for (host, m) in sinks.into_iter().zip(metrics.sinks.iter()) {
            let (tx, rx) = mpsc::channel(opts.settings.sink_queue_events.max(1));
            let worker = sink_worker::spawn(
                host,
                rx,
                dead.clone(),
                m.clone(),
                fatal_tx.clone(),
                stopping.clone(),
            )
            .map_err(|e| anyhow::anyhow!("starting a sink thread: {e}"))?;
            sink_txs.push(tx);
            workers.push(worker);
        }

        // Readers, with one mapping stage over all partitions: as many mapping jobs at a time
        // as there are cores.
        let map_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let map = Arc::new(reader::MapStage {
            source_name: Arc::from(source.describe()),
            mapper: mapper.clone(),
            router: router.clone(),
            dead: dead.clone(),
            metrics: metrics.clone(),
            envelope: opts.envelope.clone(),
            envelope_stats: Arc::new(EnvelopeStats::default()),
            slots: Arc::new(tokio::sync::Semaphore::new(map_workers)),
        });
        tracing::debug!(map_workers, "mapping stage");
        let mut readers = tokio::task::JoinSet::new();
        for (state, start, end, finished) in &plans {
            if *finished {
                state.finished.store(true, Ordering::Relaxed);
                continue;
            }
            let r = reader::Reader {
                source: source.clone(),
                state: state.clone(),
                map: map.clone(),
                sinks: sink_txs.clone(),
                metrics: metrics.clone(),
                settings: opts.settings.clone(),
                stop: halt_rx.clone(),
                fatal: fatal_tx.clone(),
                end: end.clone(),
                jobs: None,
                batch: Default::default(),
            };
            readers.spawn(r.run(start.clone()));
        }
        metrics.ready.store(true, Ordering::Relaxed);

        // Checkpoints.
        let checkpointing = opts.checkpoints.clone().map(|target| {
            Arc::new(checkpointing::Checkpointing {
                target,
                partitions: plans.iter().map(|(s, ..)| s.clone()).collect(),
                dead: dead.clone(),
                metrics: metrics.clone(),
            })
        });
        let (cp_stop_tx, cp_stop_rx) = watch::channel(false);
        let cp_task = checkpointing.clone().map(|c| {
            let txs = sink_txs.clone();
            tokio::spawn(async move { c.run(txs, cp_stop_rx).await })
        });
        drop(sink_txs);
        drop(fatal_tx);

        // Wait for: stop, a fatal error, or every reader finished.
        let mut error = None;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => {
                    tracing::info!("shutdown requested: stopping the readers");
                    break;
                }
                Some(e) = fatal_rx.recv() => {
                    tracing::error!(error = %e, "stopping the pipeline");
                    metrics.failed.store(true, Ordering::Relaxed);
                    error = Some(e);
                    break;
                }
                joined = readers.join_next() => {
                    match joined {
                        None => break,
                        Some(Err(e)) => {
                            error = Some(format!("a partition reader failed: {e}"));
                            break;
                        }
                        Some(Ok(())) => {}
                    }
                }
            }
        }

        // Shutdown: readers first, then the sink queues drain, then final checkpoints.
        stopping.store(true, Ordering::Relaxed);
        let _ = halt_tx.send(true);
        while readers.join_next().await.is_some() {}
        let _ = cp_stop_tx.send(true);
        if let Some(mut t) = cp_task {
            // A round may be waiting on a flush barrier behind a stuck sink: give it a moment,
            // then abort it (checkpoint writes are atomic; the final save below covers it).
            if tokio::time::timeout(Duration::from_secs(2), &mut t)
                .await
                .is_err()
            {
                t.abort();
                let _ = t.await;
            }
        }
        let stuck = drain_sinks(workers, opts.settings.drain_timeout).await;
        // Errors reported while draining (other than the first) are logged.
        while let Ok(e) = fatal_rx.try_recv() {
            if error.is_none() {
                error = Some(e);
            } else {
                tracing::warn!(error = %e, "further pipeline error during shutdown");
            }
        }
        if let Some(c) = &checkpointing {
            let n = c.final_save().await;
            tracing::info!(partitions = n, "final checkpoints written");
        } else if let Err(e) = dead.sync() {
            tracing::error!(error = %e, "syncing the dead-letter file failed");
        }
        source.close().await;
        Ok(empty_summary(&metrics, error).with_stuck(stuck))
    }
}

impl RunSummary {
    fn with_stuck(mut self, stuck: Vec<String>) -> Self {
        self.stuck_sinks = stuck;
        self
    }
}

fn empty_summary(metrics: &Metrics, error: Option<String>) -> RunSummary {
    let r = Ordering::Relaxed;
    RunSummary {
        events: metrics.events.load(r),
        records: metrics.records.load(r),
        map_jobs: metrics.map_jobs.load(r),
        dead_lettered: metrics.dead.total(),
        checkpoints: metrics.checkpoints.load(r),
        partitions: metrics
            .partitions()
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    PartitionSummary {
                        events: p.events.load(r),
                        last_sequence: p.last_sequence.load(r),
                        done_sequence: p.done().map(|c| c.sequence),
                        reconnects: p.reconnects.load(r),
                    },
                )
            })
            .collect(),
        sinks: metrics
            .sinks
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    SinkSummary {
                        accepted: s.accepted.load(r),
                        rejected: s.rejected.load(r),
                        undelivered: s.undelivered.load(r),
                    },
                )
            })
            .collect(),
        error,
        stuck_sinks: Vec::new(),
    }
}

/// True when a replay starting at `start` has nothing to read up to the partition's newest event.
fn nothing_to_read(start: &StartFrom, info: &crate::source::PartitionInfo) -> bool {
    use crate::source::position::compare_offsets;
    use std::cmp::Ordering as O;
    if info.is_empty || info.last_sequence < 0 {
        return true;
    }
    match start {
        StartFrom::Earliest => false,
        StartFrom::Latest => true,
        StartFrom::Sequence {
            sequence,
            inclusive,
        } => {
            let first = if *inclusive { *sequence } else { sequence + 1 };
            first > info.last_sequence
        }
        StartFrom::Offset { offset, inclusive } => {
            match compare_offsets(offset, &info.last_offset) {
                Some(O::Greater) => true,
                Some(O::Equal) => !inclusive,
                _ => false,
            }
        }
        StartFrom::EnqueuedTime(t) => info.last_enqueued_ns.is_some_and(|last| *t > last),
    }
}

/// Lists (and filters) the partitions, retrying transient failures. `None` when stopped.
async fn list_partitions(
    source: &dyn Source,
    opts: &RunOptions,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Vec<String>>> {
    let mut attempt = 0u32;
    let all = loop {
        attempt += 1;
        let result = tokio::select! {
            _ = stop.wait_for(|s| *s) => return Ok(None),
            r = source.partitions() => r,
        };
        match result {
            Ok(ids) => break ids,
            Err(e) => {
                let out_of_attempts = opts.connect_attempts.is_some_and(|n| attempt >= n);
                if !e.retryable || out_of_attempts {
                    anyhow::bail!("{}: {}", source.describe(), e.message);
                }
                let wait = opts
                    .settings
                    .reconnect_initial
                    .saturating_mul(1u32 << attempt.min(16))
                    .min(opts.settings.reconnect_max);
                tracing::warn!(source = %source.describe(), error = %e.message, attempt, wait_ms = wait.as_millis() as u64, "cannot list partitions; retrying");
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return Ok(None),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    };
    let ids = match &opts.partitions {
        None => all,
        Some(wanted) => {
            let unknown: Vec<&String> = wanted.iter().filter(|p| !all.contains(p)).collect();
            anyhow::ensure!(
                unknown.is_empty(),
                "partitions {unknown:?} do not exist; the hub has {all:?}"
            );
            wanted.clone()
        }
    };
    Ok(Some(ids))
}

/// Waits for the sink workers to drain their queues and close, up to `timeout`; then cuts their
/// retry waits short and waits a little more. Returns the names of workers still running.
async fn drain_sinks(workers: Vec<sink_worker::SinkWorker>, timeout: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pending = Vec::new();
    for mut w in workers {
        match tokio::time::timeout_at(deadline, &mut w.done).await {
            Ok(_) => {
                let _ = w.thread.join();
            }
            Err(_) => pending.push(w),
        }
    }
    if pending.is_empty() {
        return Vec::new();
    }
    for w in &pending {
        tracing::warn!(sink = %w.name, "drain timeout reached; abandoning retries of this sink");
        w.shutdown_flag.store(true, Ordering::Relaxed);
    }
    let grace = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut stuck = Vec::new();
    for mut w in pending {
        match tokio::time::timeout_at(grace, &mut w.done).await {
            Ok(_) => {
                let _ = w.thread.join();
            }
            Err(_) => {
                tracing::error!(sink = %w.name, "sink did not stop; its unacknowledged records are re-read after restart");
                stuck.push(w.name.clone());
            }
        }
    }
    stuck
}
