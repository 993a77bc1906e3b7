//! One partition's event log: retained events in memory (optionally mirrored on disk), sequence
//! numbers, offsets, retention and a change signal for waiting receivers.

use std::{
    collections::VecDeque,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use tokio::sync::watch;

use crate::{
    config::Retention,
    disk::PartitionDisk,
    event::{self, EventMessage, StoredEvent},
    filter::StartPosition,
};

/// Snapshot of a partition, as `$management` READ `com.microsoft:partition` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Sequence number of the oldest retained event (next one when empty).
    pub begin_seq: i64,
    /// Sequence number of the newest event, -1 when nothing was ever enqueued.
    pub last_seq: i64,
    /// Offset of the newest event, -1 when nothing was ever enqueued.
    pub last_offset: i64,
    /// Enqueued time of the newest event (ms since epoch), 0 when nothing was ever enqueued.
    pub last_enqueued_ms: i64,
    /// Whether no event is retained.
    pub is_empty: bool,
    /// Number of retained events.
    pub retained_events: u64,
    /// Bytes of retained events.
    pub retained_bytes: u64,
}

/// Where a receiver is: the next sequence number to deliver, plus the start condition still to be
/// met when the receiver attached before any matching event existed.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    /// Next sequence number to look at.
    pub next_seq: i64,
    /// Start position not yet satisfied (events before the first match are skipped).
    pub pending: Option<StartPosition>,
}

#[derive(Debug)]
struct LogState {
    events: VecDeque<Arc<StoredEvent>>,
    next_seq: i64,
    next_offset: i64,
    last_enqueued_ms: i64,
    bytes: u64,
    disk: Option<PartitionDisk>,
}

/// A partition log. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct PartitionLog {
    state: Mutex<LogState>,
    retention: Retention,
    changed: watch::Sender<i64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl PartitionLog {
    /// An empty in-memory log.
    pub fn in_memory(retention: Retention) -> Self {
        Self::from_parts(retention, VecDeque::new(), None)
    }

    /// A log persisted under `dir`, reloading what is there.
    pub fn persistent(retention: Retention, dir: &Path) -> anyhow::Result<Self> {
        let (disk, events) = PartitionDisk::open(dir)?;
        let events = events.into_iter().map(Arc::new).collect();
        let log = Self::from_parts(retention, events, Some(disk));
        {
            let mut state = log.lock();
            log.evict(&mut state)?;
        }
        Ok(log)
    }

    fn from_parts(
        retention: Retention,
        events: VecDeque<Arc<StoredEvent>>,
        disk: Option<PartitionDisk>,
    ) -> Self {
        let (next_seq, next_offset, last_enqueued_ms) = match events.back() {
            Some(e) => (e.seq + 1, e.offset + e.size as i64, e.enqueued_ms),
            None => (0, 0, 0),
        };
        let bytes = events.iter().map(|e| e.size).sum();
        let (changed, _) = watch::channel(next_seq);
        Self {
            state: Mutex::new(LogState {
                events,
                next_seq,
                next_offset,
                last_enqueued_ms,
                bytes,
                disk,
            }),
            retention,
            changed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the log half-updated in a way that matters
        // more than losing the emulator; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends events (all get the same enqueued time). Returns the sequence number of the first.
    pub fn append(&self, messages: Vec<(EventMessage, Option<String>)>) -> anyhow::Result<i64> {
        let mut state = self.lock();
        let enqueued_ms = now_ms().max(state.last_enqueued_ms);
        let first_seq = state.next_seq;
        for (mut message, key) in messages {
            let size = event::encoded_size(&message).context("sizing event")?;
            let seq = state.next_seq;
            let offset = state.next_offset;
            event::stamp(&mut message, seq, offset, enqueued_ms, key.as_deref());
            let stored = StoredEvent {
                seq,
                offset,
                enqueued_ms,
                size,
                message,
            };
            if let Some(disk) = state.disk.as_mut() {
                disk.append(&stored)?;
            }
            state.events.push_back(Arc::new(stored));
            state.next_seq += 1;
            state.next_offset += size as i64;
            state.bytes += size;
            state.last_enqueued_ms = enqueued_ms;
        }
        if let Some(disk) = state.disk.as_mut() {
            disk.flush()?;
        }
        self.evict(&mut state)?;
        let next = state.next_seq;
        drop(state);
        self.changed.send_replace(next);
        Ok(first_seq)
    }

    /// Applies retention; never evicts the newest event.
    fn evict(&self, state: &mut LogState) -> anyhow::Result<()> {
        let mut evicted = false;
        while state.events.len() > 1
            && (state.events.len() as u64 > self.retention.max_events
                || state.bytes > self.retention.max_bytes)
        {
            if let Some(old) = state.events.pop_front() {
                state.bytes -= old.size;
                evicted = true;
            }
        }
        if evicted {
            let begin = state.events.front().map_or(state.next_seq, |e| e.seq);
            if let Some(disk) = state.disk.as_mut() {
                disk.evict_before(begin)?;
            }
        }
        Ok(())
    }

    /// Current partition properties.
    pub fn info(&self) -> PartitionInfo {
        let state = self.lock();
        let last = state.events.back();
        PartitionInfo {
            begin_seq: state.events.front().map_or(state.next_seq, |e| e.seq),
            last_seq: state.next_seq - 1,
            last_offset: last.map_or(-1, |e| e.offset),
            last_enqueued_ms: state.last_enqueued_ms,
            is_empty: state.events.is_empty(),
            retained_events: state.events.len() as u64,
            retained_bytes: state.bytes,
        }
    }

    /// Resolves a start position into a cursor, at the time of the call.
    pub fn cursor(&self, position: StartPosition) -> Cursor {
        let state = self.lock();
        let begin = state.events.front().map_or(state.next_seq, |e| e.seq);
        match position {
            StartPosition::Earliest => Cursor {
                next_seq: begin,
                pending: None,
            },
            StartPosition::Latest => Cursor {
                next_seq: state.next_seq,
                pending: None,
            },
            other => {
                // Events are ordered by seq, offset and enqueued time alike: binary search.
                let idx = state
                    .events
                    .partition_point(|e| !other.matches(e.seq, e.offset, e.enqueued_ms));
                match state.events.get(idx) {
                    Some(e) => Cursor {
                        next_seq: e.seq,
                        pending: None,
                    },
                    None => Cursor {
                        next_seq: state.next_seq,
                        pending: Some(other),
                    },
                }
            }
        }
    }

    /// Up to `max` events from the cursor on, advancing it. Events evicted before the receiver
    /// got to them are skipped (as on the service: the receiver continues at the oldest retained
    /// event); the number skipped is returned.
    pub fn read(&self, cursor: &mut Cursor, max: usize) -> (Vec<Arc<StoredEvent>>, u64) {
        let state = self.lock();
        let begin = state.events.front().map_or(state.next_seq, |e| e.seq);
        let mut skipped = 0;
        if cursor.next_seq < begin {
            skipped = (begin - cursor.next_seq) as u64;
            cursor.next_seq = begin;
        }
        let mut out = Vec::new();
        let start = (cursor.next_seq - begin) as usize;
        for e in state.events.iter().skip(start) {
            if out.len() >= max {
                break;
            }
            cursor.next_seq = e.seq + 1;
            if let Some(pending) = cursor.pending {
                if !pending.matches(e.seq, e.offset, e.enqueued_ms) {
                    continue;
                }
                cursor.pending = None;
            }
            out.push(e.clone());
        }
        (out, skipped)
    }

    /// A receiver of "next sequence number" changes, to wait for new events.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(n: usize) -> (EventMessage, Option<String>) {
        (event::data_message(Bytes::from(vec![b'x'; n])), None)
    }

    #[test]
    fn sequence_numbers_offsets_and_positions() {
        let log = PartitionLog::in_memory(Retention::default());
        assert_eq!(log.append(vec![msg(10), msg(20)]).unwrap(), 0);
        assert_eq!(log.append(vec![msg(30)]).unwrap(), 2);
        let mut c = log.cursor(StartPosition::Earliest);
        let (events, _) = log.read(&mut c, 10);
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(events[0].offset, 0);
        assert_eq!(events[1].offset, events[0].size as i64);
        let off1 = events[1].offset;
        let mut c = log.cursor(StartPosition::Offset {
            offset: off1,
            inclusive: false,
        });
        assert_eq!(log.read(&mut c, 10).0[0].seq, 2);
        let mut c = log.cursor(StartPosition::Offset {
            offset: off1,
            inclusive: true,
        });
        assert_eq!(log.read(&mut c, 10).0[0].seq, 1);
        let mut c = log.cursor(StartPosition::Latest);
        assert!(log.read(&mut c, 10).0.is_empty());
        log.append(vec![msg(1)]).unwrap();
        assert_eq!(log.read(&mut c, 10).0[0].seq, 3);
    }

    #[test]
    fn future_position_is_applied_to_later_events() {
        let log = PartitionLog::in_memory(Retention::default());
        log.append(vec![msg(1)]).unwrap();
        let mut c = log.cursor(StartPosition::SequenceNumber {
            seq: 2,
            inclusive: true,
        });
        log.append(vec![msg(1), msg(1), msg(1)]).unwrap();
        let (events, _) = log.read(&mut c, 10);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn retention_evicts_oldest_and_moves_begin() {
        let log = PartitionLog::in_memory(Retention {
            max_events: 3,
            max_bytes: u64::MAX,
        });
        for _ in 0..5 {
            log.append(vec![msg(5)]).unwrap();
        }
        let info = log.info();
        assert_eq!(
            (info.begin_seq, info.last_seq, info.retained_events),
            (2, 4, 3)
        );
        let mut stale = Cursor {
            next_seq: 0,
            pending: None,
        };
        let (events, skipped) = log.read(&mut stale, 10);
        assert_eq!(skipped, 2);
        assert_eq!(events[0].seq, 2);
    }
}
