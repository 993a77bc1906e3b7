//! When to write checkpoints: every N completed events or every T, whichever comes first, plus
//! an explicit flush (shutdown, partition lost).

use super::{Checkpoint, CheckpointError, CheckpointKey, CheckpointStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Checkpoint cadence. A zero value disables that trigger; with both disabled only
/// [`Checkpointer::flush`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointCadence {
    /// Write after this many events joined the done prefix since the last write.
    pub every_events: u64,
    /// Write when a newer checkpoint has waited this long since the last write.
    pub every: Duration,
}

impl Default for CheckpointCadence {
    /// 1000 events or 5 s.
    fn default() -> Self {
        Self {
            every_events: 1000,
            every: Duration::from_secs(5),
        }
    }
}

#[derive(Debug)]
struct PartitionState {
    pending: Option<Checkpoint>,
    events_since_save: u64,
    last_save: Instant,
}

/// Holds the newest checkpoint of each partition and writes it to a store on cadence.
#[derive(Debug)]
pub struct Checkpointer {
    store: Arc<dyn CheckpointStore>,
    key: CheckpointKey,
    cadence: CheckpointCadence,
    partitions: HashMap<String, PartitionState>,
}

impl Checkpointer {
    /// A checkpointer for `key` writing to `store`.
    pub fn new(
        store: Arc<dyn CheckpointStore>,
        key: CheckpointKey,
        cadence: CheckpointCadence,
    ) -> Self {
        Self {
            store,
            key,
            cadence,
            partitions: HashMap::new(),
        }
    }

    /// The store written to.
    pub fn store(&self) -> &Arc<dyn CheckpointStore> {
        &self.store
    }

    /// The done prefix of `checkpoint.partition` advanced by `events` events to `checkpoint`.
    /// Writes it when the count trigger (or an overdue time trigger) fires; returns whether it
    /// wrote. On a write error the checkpoint stays pending and is retried on the next call.
    pub async fn advance(
        &mut self,
        checkpoint: Checkpoint,
        events: u64,
    ) -> Result<bool, CheckpointError> {
        let now = Instant::now();
        let state = self
            .partitions
            .entry(checkpoint.partition.clone())
            .or_insert_with(|| PartitionState {
                pending: None,
                events_since_save: 0,
                last_save: now,
            });
        state.events_since_save += events;
        let partition = checkpoint.partition.clone();
        state.pending = Some(checkpoint);
        let due_count =
            self.cadence.every_events > 0 && state.events_since_save >= self.cadence.every_events;
        let due_time = !self.cadence.every.is_zero()
            && now.duration_since(state.last_save) >= self.cadence.every;
        if due_count || due_time {
            self.save_partition(&partition, now).await
        } else {
            Ok(false)
        }
    }

    /// Writes every pending checkpoint whose time trigger fired by `now`; call from a timer.
    /// Returns how many were written.
    pub async fn tick(&mut self, now: Instant) -> Result<usize, CheckpointError> {
        if self.cadence.every.is_zero() {
            return Ok(0);
        }
        let due: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, s)| {
                s.pending.is_some() && now.duration_since(s.last_save) >= self.cadence.every
            })
            .map(|(p, _)| p.clone())
            .collect();
        let mut written = 0;
        for p in due {
            if self.save_partition(&p, now).await? {
                written += 1;
            }
        }
        Ok(written)
    }

    /// Writes all pending checkpoints now. Returns how many were written.
    pub async fn flush(&mut self) -> Result<usize, CheckpointError> {
        let now = Instant::now();
        let pending: Vec<String> = self
            .partitions
            .iter()
            .filter(|(_, s)| s.pending.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        let mut written = 0;
        for p in pending {
            if self.save_partition(&p, now).await? {
                written += 1;
            }
        }
        Ok(written)
    }

    /// Flushes one partition's pending checkpoint and forgets it (ownership lost / closed).
    pub async fn release(&mut self, partition: &str) -> Result<(), CheckpointError> {
        self.save_partition(partition, Instant::now()).await?;
        self.partitions.remove(partition);
        Ok(())
    }

    /// Checkpoint waiting to be written for a partition.
    pub fn pending(&self, partition: &str) -> Option<&Checkpoint> {
        self.partitions
            .get(partition)
            .and_then(|s| s.pending.as_ref())
    }

    async fn save_partition(
        &mut self,
        partition: &str,
        now: Instant,
    ) -> Result<bool, CheckpointError> {
        let Some(state) = self.partitions.get_mut(partition) else {
            return Ok(false);
        };
        let Some(cp) = state.pending.clone() else {
            return Ok(false);
        };
        self.store.save(&self.key, &cp).await?;
        tracing::debug!(
            partition = %cp.partition,
            sequence = cp.sequence,
            store = %self.store.describe(),
            "checkpoint written"
        );
        // Only clear if nothing newer arrived meanwhile (cannot under &mut self, kept for clarity).
        if state.pending.as_ref() == Some(&cp) {
            state.pending = None;
        }
        state.events_since_save = 0;
        state.last_save = now;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::MemoryCheckpointStore;

    fn cp(seq: i64) -> Checkpoint {
        Checkpoint {
            partition: "0".into(),
            offset: Some(seq.to_string()),
            sequence: seq,
            enqueued_ns: None,
        }
    }

    #[tokio::test]
    async fn count_trigger() {
        let store = Arc::new(MemoryCheckpointStore::new());
        let key = CheckpointKey::new("ns", "hub", "$Default");
        let mut c = Checkpointer::new(
            store.clone(),
            key.clone(),
            CheckpointCadence {
                every_events: 3,
                every: Duration::ZERO,
            },
        );
        assert!(!c.advance(cp(0), 1).await.unwrap());
        assert!(!c.advance(cp(1), 1).await.unwrap());
        assert_eq!(store.load(&key, "0").await.unwrap(), None);
        assert!(c.advance(cp(4), 3).await.unwrap());
        assert_eq!(store.load(&key, "0").await.unwrap(), Some(cp(4)));
        assert!(!c.advance(cp(5), 1).await.unwrap());
        assert_eq!(c.pending("0"), Some(&cp(5)));
        assert_eq!(
            c.tick(Instant::now()).await.unwrap(),
            0,
            "time trigger disabled"
        );
        assert_eq!(c.flush().await.unwrap(), 1);
        assert_eq!(store.load(&key, "0").await.unwrap(), Some(cp(5)));
        assert_eq!(c.flush().await.unwrap(), 0, "nothing pending");
    }

    #[tokio::test]
    async fn time_trigger() {
        let store = Arc::new(MemoryCheckpointStore::new());
        let key = CheckpointKey::new("ns", "hub", "$Default");
        let mut c = Checkpointer::new(
            store.clone(),
            key.clone(),
            CheckpointCadence {
                every_events: 0,
                every: Duration::from_millis(50),
            },
        );
        assert!(!c.advance(cp(1), 1).await.unwrap());
        assert_eq!(c.tick(Instant::now()).await.unwrap(), 0);
        let later = Instant::now() + Duration::from_millis(60);
        assert_eq!(c.tick(later).await.unwrap(), 1);
        assert_eq!(store.load(&key, "0").await.unwrap(), Some(cp(1)));
        // `later` became last_save; wait until the real clock is 50 ms past it.
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(c.advance(cp(2), 1).await.unwrap(), "overdue on advance");
        c.advance(cp(3), 1).await.unwrap();
        c.release("0").await.unwrap();
        assert_eq!(store.load(&key, "0").await.unwrap(), Some(cp(3)));
        assert!(c.pending("0").is_none());
    }
}
