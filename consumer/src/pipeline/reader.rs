//! Per partition: a reader task (read → reserve an in-flight slot → hand the event to a mapping
//! job), mapping jobs on the blocking pool (split the envelope → map → route; at most
//! `map_workers` at a time over all partitions), and a forwarder task that takes the jobs'
//! results **in read order**, registers each event with the partition's ack tracker and hands
//! its records to the sink queues. Events already waiting when one arrives go into the same
//! job (up to [`BATCH_EVENTS`] events or [`BATCH_BYTES`] of bodies), so a stream of small
//! events does not pay a job, a thread wake-up and a hand-off per event. So consecutive events of one partition map in parallel on
//! every core while registration and the order into each sink stay the partition's order.
//! Malformed records are dead-lettered with their position and the partition keeps flowing.
//! Link errors reconnect with backoff and resume after the last acknowledged position.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use abi_stable::std_types::RString;
use azlog_mapper::deadletter::now_ns;
use azlog_mapper::envelope::{split_body, EnvelopeConfig, EnvelopeStats};
use azlog_mapper::{MapInput, Mapper};
use azlog_plugin_api::{Position, Record};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::checkpoint::Checkpoint;
use crate::config::PipelineSettings;
use crate::source::{RawEvent, Source, StartFrom, Until};

use super::dead_letters::DeadLetters;
use super::metrics::Metrics;
use super::partition_state::{offset_gauge, set, PartitionState};
use super::router::Router;
use super::sink_worker::SinkMsg;

/// Where a replay of one partition ends.
#[derive(Debug, Clone, Default)]
pub(crate) struct End {
    /// Stop after this sequence number (the partition's newest event when the run started).
    pub sequence: Option<i64>,
    /// Stop before the first event past this bound.
    pub until: Option<Until>,
    /// Stop when no event arrives for this long.
    pub idle: Option<Duration>,
}

/// What a mapping job needs; one per pipeline, shared by every partition.
pub(crate) struct MapStage {
    pub source_name: Arc<str>,
    pub mapper: Arc<Mapper>,
    pub router: Arc<Router>,
    pub dead: Arc<DeadLetters>,
    pub metrics: Arc<Metrics>,
    pub envelope: EnvelopeConfig,
    pub envelope_stats: Arc<EnvelopeStats>,
    /// Mapping jobs running at once, over all partitions (`map_workers`).
    pub slots: Arc<Semaphore>,
}

/// One event, mapped and routed: what the forwarder registers and sends.
pub(crate) struct Mapped {
    checkpoint: Checkpoint,
    /// Records per sink, in record order.
    per_sink: Vec<Vec<Record>>,
    /// Acks the event needs (records × the sinks each was routed to).
    acks: u64,
}

/// Mapping jobs of one partition waiting for the forwarder, in read order.
const FORWARD_DEPTH: usize = 8;
/// At most this many events per mapping job.
pub(crate) const BATCH_EVENTS: usize = 64;
/// A job takes no further event once its bodies reach this many bytes (large events are
/// mapped one per job, in parallel).
pub(crate) const BATCH_BYTES: usize = 256 * 1024;

/// The events of one mapping job, in read order, each mapped or the error that stops the
/// partition.
type MapJob = JoinHandle<Vec<Result<Mapped, String>>>;

/// Events admitted (in-flight slot taken) and not yet handed to a mapping job.
#[derive(Default)]
pub(crate) struct Batch {
    events: Vec<RawEvent>,
    bytes: usize,
}

impl Batch {
    fn full(&self) -> bool {
        self.events.len() >= BATCH_EVENTS || self.bytes >= BATCH_BYTES
    }
}

pub(crate) struct Reader {
    pub source: Arc<dyn Source>,
    pub state: Arc<PartitionState>,
    pub map: Arc<MapStage>,
    pub sinks: Vec<mpsc::Sender<SinkMsg>>,
    pub metrics: Arc<Metrics>,
    pub settings: PipelineSettings,
    pub stop: watch::Receiver<bool>,
    pub fatal: mpsc::UnboundedSender<String>,
    pub end: End,
    /// The forwarder's queue (set while `run` reads).
    pub jobs: Option<mpsc::Sender<MapJob>>,
    /// Events waiting for the next mapping job.
    pub batch: Batch,
}

enum Flow {
    /// Keep reading.
    Next,
    /// This partition is finished (bound reached).
    Finished,
    /// Shutdown requested.
    Stopped,
}

impl Reader {
    /// Reads from `start` until stopped (or, for a replay, until the end bound), then waits
    /// until the forwarder has handed on every mapped event (or stopped).
    pub async fn run(mut self, start: StartFrom) {
        let (jobs_tx, jobs_rx) = mpsc::channel(FORWARD_DEPTH);
        let forwarder = Forwarder {
            state: self.state.clone(),
            sinks: std::mem::take(&mut self.sinks),
            stop: self.stop.clone(),
            fatal: self.fatal.clone(),
        };
        let forwarding = tokio::spawn(forwarder.run(jobs_rx));
        self.jobs = Some(jobs_tx);
        self.read(start).await;
        self.jobs = None; // the forwarder ends after the last job
        if let Err(e) = forwarding.await {
            let _ = self.fatal.send(format!(
                "partition {}: the forwarder failed: {e}",
                self.state.id
            ));
        }
        self.state.finished.store(true, Ordering::Relaxed);
    }

    async fn read(&mut self, start: StartFrom) {
        let pid = self.state.id.clone();
        let mut next_start = start;
        let mut failures: u32 = 0;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let reader = tokio::select! {
                _ = self.stop.wait_for(|s| *s) => break,
                r = self.source.open(&pid, &next_start) => r,
            };
            let mut reader = match reader {
                Ok(r) => {
                    tracing::info!(partition = %pid, start = %next_start, "partition reader attached");
                    r
                }
                Err(e) if !e.retryable => {
                    let _ = self.fatal.send(format!("partition {pid}: {}", e.message));
                    break;
                }
                Err(e) => {
                    failures += 1;
                    if !self.backoff(failures, &e.message).await {
                        break;
                    }
                    continue;
                }
            };
            // An item taken while batching that is not an event: handled on the next turn.
            let mut stashed = None;
            let flow = loop {
                let item = match stashed.take() {
                    Some(item) => Idle::Item(item),
                    None => tokio::select! {
                        _ = self.stop.wait_for(|s| *s) => break Flow::Stopped,
                        item = next_with_idle(&mut *reader, self.end.idle) => item,
                    },
                };
                match item {
                    Idle::Idle => {
                        tracing::warn!(partition = %pid, idle = ?self.end.idle, "no event arrived within the idle timeout; ending this partition's replay");
                        break Flow::Finished;
                    }
                    Idle::Item(None) => {
                        failures += 1;
                        tracing::warn!(partition = %pid, "the partition link closed");
                        break Flow::Next;
                    }
                    Idle::Item(Some(Err(e))) => {
                        failures += 1;
                        tracing::warn!(partition = %pid, error = %e.message, "partition link error");
                        if !e.retryable {
                            let _ = self.fatal.send(format!("partition {pid}: {}", e.message));
                            break Flow::Stopped;
                        }
                        break Flow::Next;
                    }
                    Idle::Item(Some(Ok(event))) => {
                        failures = 0;
                        let mut flow = self.admit(event).await;
                        // The events already waiting join the same mapping job.
                        while matches!(flow, Flow::Next) && !self.batch.full() {
                            match reader.try_next() {
                                Some(Some(Ok(event))) => flow = self.admit(event).await,
                                Some(other) => {
                                    stashed = Some(other);
                                    break;
                                }
                                None => break,
                            }
                        }
                        let flushed = self.flush().await;
                        match (flow, flushed) {
                            (_, Flow::Stopped) | (Flow::Stopped, _) => break Flow::Stopped,
                            (Flow::Finished, _) => break Flow::Finished,
                            _ => {}
                        }
                    }
                }
            };
            reader.close().await;
            match flow {
                Flow::Finished | Flow::Stopped => break,
                Flow::Next => {}
            }
            // Reconnect: wait until everything handed on is acknowledged, then resume after the
            // last acknowledged position (never after one merely received).
            self.state.reconnects.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = self.stop.wait_for(|s| *s) => break,
                _ = self.state.drained() => {}
            }
            if let Some(done) = self.state.done() {
                next_start = StartFrom::after(&done);
            }
            if !self.backoff(failures, "reconnecting").await {
                break;
            }
        }
    }

    /// Sleeps the reconnect delay for `attempt`; false when stopped meanwhile.
    async fn backoff(&mut self, attempt: u32, why: &str) -> bool {
        let base = self
            .settings
            .reconnect_initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.settings.reconnect_max);
        let half = base / 2;
        let wait = half + base.mul_f64(fastrand::f64() * 0.5);
        tracing::warn!(partition = %self.state.id, attempt, wait_ms = wait.as_millis() as u64, reason = why, "partition reader backing off");
        tokio::select! {
            _ = self.stop.wait_for(|s| *s) => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// Admits one event into the batch: checks the replay bound, takes an in-flight slot
    /// (this is where a slow sink holds the reader back; the batch is handed on first, so the
    /// events it holds can complete) and counts it. `Finished` when this event ends a replay
    /// (it is in the batch) or lies past its bound (it is not).
    async fn admit(&mut self, event: RawEvent) -> Flow {
        if let Some(until) = &self.end.until {
            if until.is_past(&event) {
                return Flow::Finished;
            }
        }
        if !self.state.try_reserve() {
            if let Flow::Stopped = self.flush().await {
                return Flow::Stopped;
            }
            let reserved = tokio::select! {
                _ = self.stop.wait_for(|s| *s) => return Flow::Stopped,
                ok = self.state.reserve() => ok,
            };
            if !reserved {
                return Flow::Stopped;
            }
        }
        let st = &self.state;
        st.events.fetch_add(1, Ordering::Relaxed);
        set(&st.last_sequence, event.sequence);
        set(&st.last_offset, offset_gauge(&event.offset));
        set(&st.last_enqueued_ns, event.enqueued_ns.unwrap_or(0));
        let _ = st.first_sequence.compare_exchange(
            -1,
            event.sequence,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.metrics.events.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .bytes
            .fetch_add(event.body.len() as u64, Ordering::Relaxed);
        let sequence = event.sequence;
        self.batch.bytes += event.body.len();
        self.batch.events.push(event);
        match self.end.sequence {
            Some(last) if sequence >= last => Flow::Finished,
            _ => Flow::Next,
        }
    }

    /// Hands the batch to one mapping job (after a mapping slot, which bounds the CPU work in
    /// flight over all partitions) and the job to the forwarder.
    async fn flush(&mut self) -> Flow {
        if self.batch.events.is_empty() {
            return Flow::Next;
        }
        let events = std::mem::take(&mut self.batch).events;
        let slot = tokio::select! {
            _ = self.stop.wait_for(|s| *s) => return Flow::Stopped,
            slot = self.map.slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else {
            return Flow::Stopped;
        };
        self.metrics.map_jobs.fetch_add(1, Ordering::Relaxed);
        let map = self.map.clone();
        let job = tokio::task::spawn_blocking(move || {
            let mut mapped = Vec::with_capacity(events.len());
            for event in events {
                let m = map.map_event(event);
                let failed = m.is_err();
                mapped.push(m);
                if failed {
                    break; // the forwarder stops at the error
                }
            }
            drop(slot);
            mapped
        });
        let Some(jobs) = self.jobs.clone() else {
            return Flow::Stopped;
        };
        let sent = tokio::select! {
            _ = self.stop.wait_for(|s| *s) => return Flow::Stopped,
            r = jobs.send(job) => r,
        };
        if sent.is_err() {
            // The forwarder stopped (it reported why).
            return Flow::Stopped;
        }
        Flow::Next
    }
}

/// Takes a partition's mapping jobs in read order, registers each event with the ack tracker
/// and hands its records to the sink queues.
struct Forwarder {
    state: Arc<PartitionState>,
    sinks: Vec<mpsc::Sender<SinkMsg>>,
    stop: watch::Receiver<bool>,
    fatal: mpsc::UnboundedSender<String>,
}

impl Forwarder {
    async fn run(mut self, mut jobs: mpsc::Receiver<MapJob>) {
        loop {
            let job = tokio::select! {
                _ = self.stop.wait_for(|s| *s) => return,
                job = jobs.recv() => job,
            };
            let Some(job) = job else {
                return;
            };
            let joined = tokio::select! {
                _ = self.stop.wait_for(|s| *s) => return,
                joined = job => joined,
            };
            let batch = match joined {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = self.fatal.send(format!(
                        "partition {}: a mapping job failed: {e}",
                        self.state.id
                    ));
                    return;
                }
            };
            for mapped in batch {
                match mapped {
                    Ok(m) => {
                        if !self.forward(m).await {
                            return;
                        }
                    }
                    Err(e) => {
                        // The event is not registered: the checkpoint can never pass it.
                        let _ = self.fatal.send(e);
                        return;
                    }
                }
            }
        }
    }

    /// Registers one mapped event and sends its records to the sinks; false when stopped.
    async fn forward(&mut self, mapped: Mapped) -> bool {
        let ticket = self.state.register(mapped.checkpoint, mapped.acks);
        for (i, records) in mapped.per_sink.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let msg = SinkMsg::Event {
                partition: self.state.clone(),
                ticket,
                records,
            };
            let sent = tokio::select! {
                _ = self.stop.wait_for(|s| *s) => return false,
                r = self.sinks[i].send(msg) => r,
            };
            if sent.is_err() {
                let _ = self.fatal.send(format!(
                    "partition {}: a sink worker stopped",
                    self.state.id
                ));
                return false;
            }
        }
        true
    }
}

impl MapStage {
    /// Splits and maps one event; routes good records into per-sink lists, dead-letters the
    /// rest. Errs only when a dead letter cannot be written (the record would vanish).
    fn map_event(&self, event: RawEvent) -> Result<Mapped, String> {
        let mut per_sink: Vec<Vec<Record>> = vec![Vec::new(); self.router.len()];
        let mut acks = 0u64;
        let mut mapped = 0u64;
        let ingested = now_ns();
        let raws = split_body(&event.body, &self.envelope, self.envelope_stats.clone());
        if let Some(first) = per_sink.first_mut() {
            first.reserve_exact(raws.len());
        }
        let source = RString::from(self.source_name.as_ref());
        let partition = RString::from(event.partition.as_str());
        let offset = RString::from(event.offset.as_str());
        let position = |index: u32| Position {
            source: source.clone(),
            partition: partition.clone(),
            offset: offset.clone(),
            sequence: event.sequence,
            index,
        };
        for raw in raws {
            let result = match (&raw.error, std::str::from_utf8(&raw.json)) {
                (Some(reason), _) => Err(("envelope", reason.clone())),
                (None, Err(e)) => Err(("envelope", format!("record is not valid UTF-8: {e}"))),
                (None, Ok(json)) => self
                    .mapper
                    .map(
                        MapInput {
                            json,
                            position: position(raw.index),
                            enqueued_ns: event.enqueued_ns,
                        },
                        ingested,
                    )
                    .map_err(|e| ("map", e.to_string())),
            };
            match result {
                Ok(record) => {
                    mapped += 1;
                    acks += self.router.route(record, &mut per_sink);
                }
                Err((stage, reason)) => {
                    self.dead
                        .write(stage, &reason, &position(raw.index), &raw.json)
                        .map_err(|e| {
                            format!(
                                "writing a dead letter to {} failed: {e}",
                                self.dead.path().display()
                            )
                        })?;
                }
            }
        }
        self.metrics.records.fetch_add(mapped, Ordering::Relaxed);
        let checkpoint = Checkpoint {
            offset: (!event.offset.is_empty()).then_some(event.offset),
            partition: event.partition,
            sequence: event.sequence,
            enqueued_ns: event.enqueued_ns,
        };
        Ok(Mapped {
            checkpoint,
            per_sink,
            acks,
        })
    }
}

enum Idle<T> {
    Item(T),
    Idle,
}

async fn next_with_idle(
    reader: &mut dyn crate::source::PartitionReader,
    idle: Option<Duration>,
) -> Idle<Option<Result<RawEvent, crate::source::SourceError>>> {
    match idle {
        None => Idle::Item(reader.next().await),
        Some(d) => match tokio::time::timeout(d, reader.next()).await {
            Ok(item) => Idle::Item(item),
            Err(_) => Idle::Idle,
        },
    }
}
