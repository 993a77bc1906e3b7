//! An in-process partitioned source: append events, read them back from any position, and
//! inject faults (link detach, failing opens). Used by the pipeline tests and dry runs; it
//! behaves like an Event Hub partition (ordered, sequence numbers from 0, byte offsets,
//! enqueued times, live tail).
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{PartitionInfo, PartitionReader, RawEvent, Source, SourceError, StartFrom};

#[derive(Debug, Default)]
struct Log {
    events: Vec<RawEvent>,
    next_offset: u64,
}

#[derive(Debug, Default)]
struct Partition {
    id: String,
    log: Mutex<Log>,
    notify: Notify,
    /// Bumped by [`MemorySource::detach`]; readers opened under an older value fail.
    generation: AtomicU64,
}

impl Partition {
    fn lock(&self) -> MutexGuard<'_, Log> {
        // A poisoned log only means a panicking test thread; the data is still consistent.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// In-memory partitions. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct MemorySource {
    name: String,
    partitions: Arc<Vec<Arc<Partition>>>,
    failing_opens: Arc<AtomicUsize>,
    opens: Arc<Mutex<Vec<(String, StartFrom)>>>,
}

impl MemorySource {
    /// A source named `name` with partitions `"0"`..`"n-1"`.
    pub fn new(name: &str, partitions: usize) -> Self {
        let partitions = (0..partitions.max(1))
            .map(|i| {
                Arc::new(Partition {
                    id: i.to_string(),
                    ..Default::default()
                })
            })
            .collect();
        MemorySource {
            name: name.to_owned(),
            partitions: Arc::new(partitions),
            failing_opens: Arc::new(AtomicUsize::new(0)),
            opens: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn partition(&self, id: &str) -> Result<&Arc<Partition>, SourceError> {
        self.partitions
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| SourceError::fatal(format!("partition {id} does not exist")))
    }

    /// Appends an event enqueued now. Returns its sequence number.
    pub fn append(&self, partition: &str, body: impl Into<Vec<u8>>) -> Result<i64, SourceError> {
        self.append_at(partition, body, azlog_mapper::deadletter::now_ns())
    }

    /// Appends an event with a given enqueued time (ns since the epoch). Returns its sequence.
    pub fn append_at(
        &self,
        partition: &str,
        body: impl Into<Vec<u8>>,
        enqueued_ns: i64,
    ) -> Result<i64, SourceError> {
        let p = self.partition(partition)?;
        let body = body.into();
        let sequence = {
            let mut log = p.lock();
            let sequence = log.events.len() as i64;
            let offset = log.next_offset;
            log.next_offset += body.len().max(1) as u64;
            log.events.push(RawEvent {
                partition: p.id.clone(),
                offset: offset.to_string(),
                sequence,
                enqueued_ns: Some(enqueued_ns),
                body,
            });
            sequence
        };
        p.notify.notify_waiters();
        Ok(sequence)
    }

    /// Detaches every open reader of `partition` (their next read fails, as a link error).
    pub fn detach(&self, partition: &str) -> Result<(), SourceError> {
        let p = self.partition(partition)?;
        p.generation.fetch_add(1, Ordering::SeqCst);
        p.notify.notify_waiters();
        Ok(())
    }

    /// The next `n` calls to [`Source::open`] fail with a retryable error.
    pub fn fail_next_opens(&self, n: usize) {
        self.failing_opens.store(n, Ordering::SeqCst);
    }

    /// Every successful `open` so far: (partition, start position).
    pub fn opens(&self) -> Vec<(String, StartFrom)> {
        self.opens.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// Events stored in a partition.
    pub fn len(&self, partition: &str) -> usize {
        self.partition(partition)
            .map(|p| p.lock().events.len())
            .unwrap_or(0)
    }

    /// True when no partition holds an event.
    pub fn is_empty(&self) -> bool {
        self.partitions.iter().all(|p| p.lock().events.is_empty())
    }

    /// A copy of the events of a partition.
    pub fn events(&self, partition: &str) -> Vec<RawEvent> {
        self.partition(partition)
            .map(|p| p.lock().events.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Source for MemorySource {
    fn describe(&self) -> String {
        format!("memory:{}", self.name)
    }

    async fn partitions(&self) -> Result<Vec<String>, SourceError> {
        Ok(self.partitions.iter().map(|p| p.id.clone()).collect())
    }

    async fn partition_info(&self, partition: &str) -> Result<PartitionInfo, SourceError> {
        let p = self.partition(partition)?;
        let log = p.lock();
        let last = log.events.last();
        Ok(PartitionInfo {
            id: p.id.clone(),
            is_empty: log.events.is_empty(),
            beginning_sequence: 0,
            last_sequence: last.map_or(-1, |e| e.sequence),
            last_offset: last.map(|e| e.offset.clone()).unwrap_or_default(),
            last_enqueued_ns: last.and_then(|e| e.enqueued_ns),
        })
    }

    async fn open(
        &self,
        partition: &str,
        start: &StartFrom,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let failing = self
            .failing_opens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(SourceError::retryable(format!(
                "partition {partition}: injected open failure"
            )));
        }
        let p = Arc::clone(self.partition(partition)?);
        let cursor = {
            let log = p.lock();
            match start {
                StartFrom::Latest => log.events.len(),
                s => log
                    .events
                    .iter()
                    .position(|e| s.admits(e))
                    .unwrap_or(log.events.len()),
            }
        };
        if let Ok(mut opens) = self.opens.lock() {
            opens.push((partition.to_owned(), start.clone()));
        }
        let generation = p.generation.load(Ordering::SeqCst);
        Ok(Box::new(MemoryReader {
            partition: p,
            cursor,
            generation,
        }))
    }
}

struct MemoryReader {
    partition: Arc<Partition>,
    cursor: usize,
    generation: u64,
}

#[async_trait]
impl PartitionReader for MemoryReader {
    async fn next(&mut self) -> Option<Result<RawEvent, SourceError>> {
        loop {
            let notified = self.partition.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.partition.generation.load(Ordering::SeqCst) != self.generation {
                return Some(Err(SourceError::retryable(format!(
                    "partition {}: link detached (injected)",
                    self.partition.id
                ))));
            }
            if let Some(e) = self.partition.lock().events.get(self.cursor) {
                self.cursor += 1;
                return Some(Ok(e.clone()));
            }
            notified.await;
        }
    }

    fn try_next(&mut self) -> Option<Option<Result<RawEvent, SourceError>>> {
        if self.partition.generation.load(Ordering::SeqCst) != self.generation {
            return None; // `next` reports the detach
        }
        let e = self.partition.lock().events.get(self.cursor).cloned()?;
        self.cursor += 1;
        Some(Some(Ok(e)))
    }

    async fn close(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_from_positions_and_tails() {
        let s = MemorySource::new("t", 2);
        for i in 0..5 {
            s.append_at("1", format!("e{i}"), 1000 + i).unwrap();
        }
        let info = s.partition_info("1").await.unwrap();
        assert_eq!(info.last_sequence, 4);
        let mut r = s
            .open(
                "1",
                &StartFrom::Sequence {
                    sequence: 2,
                    inclusive: false,
                },
            )
            .await
            .unwrap();
        let e = r.next().await.unwrap().unwrap();
        assert_eq!((e.sequence, e.body.as_slice()), (3, b"e3".as_slice()));
        let mut t = s.open("1", &StartFrom::EnqueuedTime(1004)).await.unwrap();
        assert_eq!(t.next().await.unwrap().unwrap().sequence, 4);
        // Live tail: the reader waits for the next append.
        let s2 = s.clone();
        let h = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            s2.append("1", "late").unwrap();
        });
        assert_eq!(r.next().await.unwrap().unwrap().sequence, 4);
        assert_eq!(r.next().await.unwrap().unwrap().body, b"late");
        h.await.unwrap();
        s.detach("1").unwrap();
        assert!(r.next().await.unwrap().is_err());
        s.fail_next_opens(1);
        assert!(s.open("0", &StartFrom::Earliest).await.is_err());
        assert!(s.open("0", &StartFrom::Earliest).await.is_ok());
        assert!(s.open("9", &StartFrom::Earliest).await.is_err());
    }
}
