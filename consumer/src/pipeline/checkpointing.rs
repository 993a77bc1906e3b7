//! Writes each partition's done position to the checkpoint store on cadence (every N completed
//! events or T), after making sure what it covers is durable: the dead-letter file is synced and,
//! unless disabled, every sink is flushed first (a barrier through the sink queues).
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use crate::checkpoint::{Checkpoint, CheckpointCadence, CheckpointKey, CheckpointStore};

use super::dead_letters::DeadLetters;
use super::metrics::Metrics;
use super::partition_state::PartitionState;
use super::sink_worker::SinkMsg;

/// Where and how often checkpoints are written.
#[derive(Debug, Clone)]
pub struct CheckpointTarget {
    /// The store.
    pub store: Arc<dyn CheckpointStore>,
    /// Namespace, hub, consumer group.
    pub key: CheckpointKey,
    /// Cadence.
    pub cadence: CheckpointCadence,
    /// Flush sinks before writing.
    pub flush_sinks: bool,
}

pub(crate) struct Checkpointing {
    pub target: CheckpointTarget,
    pub partitions: Vec<Arc<PartitionState>>,
    pub dead: Arc<DeadLetters>,
    pub metrics: Arc<Metrics>,
}

/// How long a flush barrier may take before the round is skipped.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(60);

impl Checkpointing {
    /// Runs until `stop` turns true; `sinks` are the sink queues for flush barriers.
    pub async fn run(&self, sinks: Vec<mpsc::Sender<SinkMsg>>, mut stop: watch::Receiver<bool>) {
        let tick = if self.target.cadence.every.is_zero() {
            Duration::from_millis(200)
        } else {
            (self.target.cadence.every / 4).clamp(Duration::from_millis(20), Duration::from_secs(1))
        };
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = interval.tick() => {}
            }
            let due = self.due(false);
            if due.is_empty() {
                continue;
            }
            if self.target.flush_sinks {
                if let Err(e) = barrier(&sinks).await {
                    tracing::warn!(error = %e, "sink flush before checkpoint failed; checkpoint postponed");
                    continue;
                }
            }
            self.save(due).await;
        }
    }

    /// Writes every pending checkpoint now (end of run; sinks are closed by then).
    pub async fn final_save(&self) -> usize {
        let due = self.due(true);
        let n = due.len();
        self.save(due).await;
        n
    }

    /// Partitions whose checkpoint is due: (partition, position, events it covers).
    fn due(&self, force: bool) -> Vec<(Arc<PartitionState>, Checkpoint, u64)> {
        let now = Instant::now();
        let c = self.target.cadence;
        self.partitions
            .iter()
            .filter_map(|p| {
                let t = p.lock();
                if !t.dirty {
                    return None;
                }
                let by_count = c.every_events > 0 && t.unsaved_events >= c.every_events;
                let by_time = !c.every.is_zero() && now.duration_since(t.last_save) >= c.every;
                let cp = t.done.clone()?;
                (force || by_count || by_time).then(|| (p.clone(), cp, t.unsaved_events))
            })
            .collect()
    }

    async fn save(&self, due: Vec<(Arc<PartitionState>, Checkpoint, u64)>) {
        if due.is_empty() {
            return;
        }
        if let Err(e) = self.dead.sync() {
            self.metrics
                .checkpoint_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(path = %self.dead.path().display(), error = %e, "syncing the dead-letter file failed; checkpoints postponed");
            return;
        }
        for (p, cp, events) in due {
            match self.target.store.save(&self.target.key, &cp).await {
                Ok(()) => {
                    self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
                    p.checkpoint_sequence.store(cp.sequence, Ordering::Relaxed);
                    let mut t = p.lock();
                    t.unsaved_events = t.unsaved_events.saturating_sub(events);
                    if t.done.as_ref() == Some(&cp) {
                        t.dirty = false;
                    }
                    t.last_save = Instant::now();
                    drop(t);
                    tracing::debug!(partition = %cp.partition, sequence = cp.sequence, offset = ?cp.offset, "checkpoint written");
                }
                Err(e) => {
                    self.metrics
                        .checkpoint_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(partition = %cp.partition, store = %self.target.store.describe(), error = %e, "writing a checkpoint failed; retrying on the next round");
                }
            }
        }
    }
}

/// Sends a flush to every sink and waits for all of them.
async fn barrier(sinks: &[mpsc::Sender<SinkMsg>]) -> Result<(), String> {
    let mut replies = Vec::with_capacity(sinks.len());
    let deadline = tokio::time::Instant::now() + BARRIER_TIMEOUT;
    for s in sinks {
        let (tx, rx) = oneshot::channel();
        match tokio::time::timeout_at(deadline, s.send(SinkMsg::Flush(tx))).await {
            Ok(Ok(())) => replies.push(rx),
            Ok(Err(_)) => return Err("a sink worker has stopped".into()),
            Err(_) => return Err("sink queues stayed full".into()),
        }
    }
    for rx in replies {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(e),
            Ok(Err(_)) => return Err("a sink worker has stopped".into()),
            Err(_) => return Err("a sink did not flush in time".into()),
        }
    }
    Ok(())
}
