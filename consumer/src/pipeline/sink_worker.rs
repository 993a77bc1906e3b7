//! One thread per sink: takes routed records from a bounded channel (per-partition order is
//! the channel order), batches and delivers them through its [`SinkHost`], and turns every
//! [`BatchOutcome`] into acks (accepted), dead letters + acks (rejected) or nothing
//! (undelivered: re-read after restart).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use azlog_plugin_api::Record;
use tokio::sync::{mpsc, oneshot};

use crate::ack::AckTicket;
use crate::sink_host::{BatchOutcome, Offered};

use super::delivery::DeliverySink;

use super::dead_letters::DeadLetters;
use super::metrics::SinkMetrics;
use super::partition_state::PartitionState;

/// A message to a sink worker.
pub(crate) enum SinkMsg {
    /// The records of one event routed to this sink.
    Event {
        partition: Arc<PartitionState>,
        ticket: AckTicket,
        records: Vec<Record>,
    },
    /// Deliver what is pending and flush the plugin; reply when done.
    Flush(oneshot::Sender<Result<(), String>>),
}

/// A running sink worker.
pub(crate) struct SinkWorker {
    pub name: String,
    pub thread: std::thread::JoinHandle<()>,
    /// Cuts retry waits short (set after the drain timeout).
    pub shutdown_flag: Arc<AtomicBool>,
    /// Fires when the thread ends.
    pub done: oneshot::Receiver<()>,
}

/// Starts the worker thread for `host`.
pub(crate) fn spawn(
    host: Box<dyn DeliverySink>,
    rx: mpsc::Receiver<SinkMsg>,
    dead: Arc<DeadLetters>,
    metrics: Arc<SinkMetrics>,
    fatal: mpsc::UnboundedSender<String>,
    stopping: Arc<AtomicBool>,
) -> std::io::Result<SinkWorker> {
    let name = host.name().to_owned();
    let shutdown_flag = host.shutdown_flag();
    if let Some(counter) = host.retry_counter() {
        let _ = metrics.live_retries.set(counter);
    }
    let (done_tx, done) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("sink-{name}"))
        .spawn(move || {
            let mut w = Worker {
                host: Some(host),
                queue: VecDeque::new(),
                queued: 0,
                dead,
                metrics,
                fatal,
                stopping,
            };
            w.run(rx);
            let _ = done_tx.send(());
        })?;
    Ok(SinkWorker {
        name,
        thread,
        shutdown_flag,
        done,
    })
}

struct Worker {
    host: Option<Box<dyn DeliverySink>>,
    /// (partition, ticket, records) runs of the queued records, in offer order (consecutive
    /// records of one event share a run).
    queue: VecDeque<Run>,
    /// Records in `queue`.
    queued: usize,
    dead: Arc<DeadLetters>,
    metrics: Arc<SinkMetrics>,
    fatal: mpsc::UnboundedSender<String>,
    stopping: Arc<AtomicBool>,
}

/// Consecutive queued records of one event.
struct Run {
    partition: Arc<PartitionState>,
    ticket: AckTicket,
    records: usize,
}

enum Next {
    Msg(SinkMsg),
    Timeout,
    Closed,
}

impl Worker {
    fn run(&mut self, mut rx: mpsc::Receiver<SinkMsg>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = self
                    .fatal
                    .send(format!("sink worker: cannot start a timer runtime: {e}"));
                return;
            }
        };
        loop {
            let Some(host) = self.host.as_ref() else {
                return;
            };
            let deadline = host.next_deadline();
            let next = rt.block_on(async {
                match deadline {
                    Some(d) => {
                        match tokio::time::timeout_at(tokio::time::Instant::from_std(d), rx.recv())
                            .await
                        {
                            Ok(Some(m)) => Next::Msg(m),
                            Ok(None) => Next::Closed,
                            Err(_) => Next::Timeout,
                        }
                    }
                    None => match rx.recv().await {
                        Some(m) => Next::Msg(m),
                        None => Next::Closed,
                    },
                }
            });
            match next {
                Next::Msg(SinkMsg::Event {
                    partition,
                    ticket,
                    records,
                }) => self.offer(partition, ticket, records),
                Next::Msg(SinkMsg::Flush(reply)) => {
                    let result = self.flush();
                    let _ = reply.send(result);
                }
                Next::Timeout => {
                    let outcome = self.host.as_mut().and_then(|h| h.poll(Instant::now()));
                    if let Some(o) = outcome {
                        self.handle(o);
                    }
                }
                Next::Closed => {
                    self.close();
                    return;
                }
            }
        }
    }

    fn offer(&mut self, partition: Arc<PartitionState>, ticket: AckTicket, records: Vec<Record>) {
        for record in records {
            let Some(host) = self.host.as_mut() else {
                return;
            };
            match host.offer(record) {
                Offered::Filtered(_) => partition.ack(ticket, 1),
                Offered::Queued => self.push(&partition, ticket),
                Offered::Delivered(outcome) => {
                    self.push(&partition, ticket);
                    self.handle(outcome);
                }
            }
        }
    }

    /// Queues one record of `ticket`.
    fn push(&mut self, partition: &Arc<PartitionState>, ticket: AckTicket) {
        self.queued += 1;
        if let Some(run) = self.queue.back_mut() {
            if run.ticket == ticket && Arc::ptr_eq(&run.partition, partition) {
                run.records += 1;
                return;
            }
        }
        self.queue.push_back(Run {
            partition: partition.clone(),
            ticket,
            records: 1,
        });
    }

    /// Takes the owners of the next `n` queued records, one entry per run piece.
    fn take(&mut self, mut n: usize) -> Vec<Run> {
        let mut out = Vec::new();
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                break;
            };
            let k = front.records.min(n);
            out.push(Run {
                partition: front.partition.clone(),
                ticket: front.ticket,
                records: k,
            });
            front.records -= k;
            if front.records == 0 {
                self.queue.pop_front();
            }
            n -= k;
            self.queued -= k;
        }
        out
    }

    fn flush(&mut self) -> Result<(), String> {
        let Some(host) = self.host.as_mut() else {
            return Ok(());
        };
        let (outcome, flushed) = host.flush();
        if let Some(o) = outcome {
            self.handle(o);
        }
        flushed.map_err(|e| e.to_string())
    }

    fn close(&mut self) {
        let Some(host) = self.host.take() else {
            return;
        };
        let (outcome, closed) = host.close();
        if let Some(o) = outcome {
            self.handle(o);
        }
        if let Err(e) = closed {
            tracing::warn!(sink = %self.metrics.name, error = %e, "closing the sink reported an error");
        }
        if self.queued > 0 {
            tracing::warn!(sink = %self.metrics.name, records = self.queued, "records left unacknowledged at close; they are re-read after restart");
        }
    }

    /// Acks, dead-letters or leaves unacked each record of a delivered batch.
    fn handle(&mut self, outcome: BatchOutcome) {
        let n = outcome.records.len();
        if self.queued < n {
            tracing::error!(sink = %outcome.sink, batch = n, queued = self.queued, "batch larger than the records queued (bug)");
        }
        let runs = self.take(n);
        let owned: usize = runs.iter().map(|r| r.records).sum();
        let until = outcome
            .undelivered
            .as_ref()
            .map_or(n, |u| u.from)
            .min(owned);
        let stage = format!("sink:{}", outcome.sink);
        let mut rejected = outcome.rejected.iter().peekable();
        let (mut accepted, mut refused) = (0u64, 0u64);
        // Records of one run are acked together.
        let mut i = 0usize;
        for run in &runs {
            let mut acks = 0u64;
            for _ in 0..run.records {
                if i >= until {
                    break;
                }
                let index = i;
                i += 1;
                if rejected.peek().is_some_and(|r| r.index == index) {
                    let reason = rejected.next().map(|r| r.reason.as_str()).unwrap_or("");
                    let record = &outcome.records[index];
                    if let Err(e) = self.dead.write(
                        &stage,
                        reason,
                        &record.position,
                        record.original.as_bytes(),
                    ) {
                        // Not acked: the record must not vanish; it is re-read after restart.
                        let _ = self.fatal.send(format!(
                            "writing a dead letter to {} failed: {e}",
                            self.dead.path().display()
                        ));
                        continue;
                    }
                    refused += 1;
                } else {
                    accepted += 1;
                }
                acks += 1;
            }
            if acks > 0 {
                run.partition.ack(run.ticket, acks);
            }
            if i >= until {
                break;
            }
        }
        let m = &self.metrics;
        m.accepted.fetch_add(accepted, Ordering::Relaxed);
        m.rejected.fetch_add(refused, Ordering::Relaxed);
        m.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(host) = &self.host {
            m.retries.store(host.retries(), Ordering::Relaxed);
            m.restarts.store(host.restarts(), Ordering::Relaxed);
        }
        if let Some(u) = &outcome.undelivered {
            let left = (n - u.from.min(n)) as u64;
            m.undelivered.fetch_add(left, Ordering::Relaxed);
            if u.sink_parked {
                m.parked.store(true, Ordering::Relaxed);
            }
            if self.stopping.load(Ordering::Relaxed) {
                tracing::info!(sink = %outcome.sink, records = left, reason = %u.reason, "undelivered at shutdown; re-read after restart");
            } else {
                let _ = self.fatal.send(format!(
                    "sink `{}` could not deliver {left} records ({}); stopping so that they are re-read from the last checkpoint after the sink is fixed",
                    outcome.sink, u.reason
                ));
            }
        }
    }
}
