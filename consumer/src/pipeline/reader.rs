//! One reader task per partition: read → split the envelope → map → route → hand to the sink
//! queues, registering each event with the partition's ack tracker first. Malformed records are
//! dead-lettered with their position and the partition keeps flowing. Link errors reconnect with
//! backoff and resume after the last acknowledged position.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use azlog_mapper::deadletter::now_ns;
use azlog_mapper::envelope::{split_body, EnvelopeConfig, EnvelopeStats};
use azlog_mapper::{MapInput, Mapper};
use azlog_plugin_api::{Position, Record};
use tokio::sync::{mpsc, watch};

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

pub(crate) struct Reader {
    pub source: Arc<dyn Source>,
    pub source_name: Arc<str>,
    pub state: Arc<PartitionState>,
    pub mapper: Arc<Mapper>,
    pub router: Arc<Router>,
    pub sinks: Vec<mpsc::Sender<SinkMsg>>,
    pub dead: Arc<DeadLetters>,
    pub metrics: Arc<Metrics>,
    pub envelope: EnvelopeConfig,
    pub envelope_stats: Arc<EnvelopeStats>,
    pub settings: PipelineSettings,
    pub stop: watch::Receiver<bool>,
    pub fatal: mpsc::UnboundedSender<String>,
    pub end: End,
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
    /// Reads from `start` until stopped (or, for a replay, until the end bound).
    pub async fn run(mut self, start: StartFrom) {
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
            let flow = loop {
                let item = tokio::select! {
                    _ = self.stop.wait_for(|s| *s) => break Flow::Stopped,
                    item = next_with_idle(&mut *reader, self.end.idle) => item,
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
                        match self.handle(event).await {
                            Flow::Next => {}
                            other => break other,
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
        self.state.finished.store(true, Ordering::Relaxed);
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

    async fn handle(&mut self, event: RawEvent) -> Flow {
        if let Some(until) = &self.end.until {
            if until.is_past(&event) {
                return Flow::Finished;
            }
        }
        // Room for one more in-flight event: this is where a slow sink holds the reader back.
        let reserved = tokio::select! {
            _ = self.stop.wait_for(|s| *s) => return Flow::Stopped,
            ok = self.state.reserve() => ok,
        };
        if !reserved {
            return Flow::Stopped;
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

        let mut per_sink: Vec<Vec<Record>> = vec![Vec::new(); self.router.len()];
        let acks = match self.map_event(&event, &mut per_sink) {
            Ok(n) => n,
            Err(e) => {
                // The event is not registered: the checkpoint can never pass it.
                let _ = self.fatal.send(e);
                return Flow::Stopped;
            }
        };
        let checkpoint = Checkpoint {
            partition: event.partition.clone(),
            offset: (!event.offset.is_empty()).then(|| event.offset.clone()),
            sequence: event.sequence,
            enqueued_ns: event.enqueued_ns,
        };
        let ticket = self.state.register(checkpoint, acks);
        for (i, records) in per_sink.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let msg = SinkMsg::Event {
                partition: self.state.clone(),
                ticket,
                records,
            };
            let sent = tokio::select! {
                _ = self.stop.wait_for(|s| *s) => return Flow::Stopped,
                r = self.sinks[i].send(msg) => r,
            };
            if sent.is_err() {
                let _ = self.fatal.send(format!(
                    "partition {}: a sink worker stopped",
                    self.state.id
                ));
                return Flow::Stopped;
            }
        }
        match self.end.sequence {
            Some(last) if event.sequence >= last => Flow::Finished,
            _ => Flow::Next,
        }
    }

    /// Splits and maps one event; routes good records into `per_sink`, dead-letters the rest.
    /// Returns the number of acks the event needs. Errs only when a dead letter cannot be
    /// written (the record would vanish).
    fn map_event(&self, event: &RawEvent, per_sink: &mut [Vec<Record>]) -> Result<u64, String> {
        let mut acks = 0u64;
        let ingested = now_ns();
        for raw in split_body(&event.body, &self.envelope, self.envelope_stats.clone()) {
            let position = Position {
                source: self.source_name.as_ref().into(),
                partition: event.partition.as_str().into(),
                offset: event.offset.as_str().into(),
                sequence: event.sequence,
                index: raw.index,
            };
            let mapped = match (&raw.error, std::str::from_utf8(&raw.json)) {
                (Some(reason), _) => Err(("envelope", reason.clone())),
                (None, Err(e)) => Err(("envelope", format!("record is not valid UTF-8: {e}"))),
                (None, Ok(json)) => self
                    .mapper
                    .map(
                        MapInput {
                            json,
                            position: position.clone(),
                            enqueued_ns: event.enqueued_ns,
                        },
                        ingested,
                    )
                    .map_err(|e| ("map", e.to_string())),
            };
            match mapped {
                Ok(record) => {
                    self.metrics.records.fetch_add(1, Ordering::Relaxed);
                    acks += self.router.route(record, per_sink);
                }
                Err((stage, reason)) => {
                    self.dead
                        .write(stage, &reason, &position, &raw.json)
                        .map_err(|e| {
                            format!(
                                "writing a dead letter to {} failed: {e}",
                                self.dead.path().display()
                            )
                        })?;
                }
            }
        }
        Ok(acks)
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
