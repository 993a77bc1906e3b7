//! Shared state of one partition: its ack tracker, its done (checkpointable) position, the
//! in-flight bound that holds its reader back, and its gauges.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::ack::{AckTicket, PartitionAckTracker};
use crate::checkpoint::Checkpoint;

/// The tracker and the newest done position, behind one lock.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub tracker: PartitionAckTracker<Checkpoint>,
    /// Last position at or before which everything is done (acked or dead-lettered).
    pub done: Option<Checkpoint>,
    /// Events that became done since the last checkpoint write.
    pub unsaved_events: u64,
    /// `done` differs from what was last written.
    pub dirty: bool,
    /// When the last checkpoint of this partition was written (or the pipeline started).
    pub last_save: Instant,
}

/// One partition of a running pipeline.
#[derive(Debug)]
pub struct PartitionState {
    /// Partition id.
    pub id: String,
    tracked: Mutex<Tracked>,
    permits: Semaphore,
    max_in_flight: u32,
    /// Events read.
    pub events: AtomicU64,
    /// Sequence number of the last event read (-1: none yet).
    pub last_sequence: AtomicI64,
    /// Offset of the last event read, as an integer when numeric (-1 otherwise).
    pub last_offset: AtomicI64,
    /// Enqueued time of the last event read (ns; 0 when unknown).
    pub last_enqueued_ns: AtomicI64,
    /// Sequence number of the last checkpoint written (-1: none).
    pub checkpoint_sequence: AtomicI64,
    /// Newest sequence number in the partition, as last polled (-1: unknown/empty).
    pub end_sequence: AtomicI64,
    /// Enqueued time of the partition's newest event, as last polled (ns; 0 unknown).
    pub end_enqueued_ns: AtomicI64,
    /// Sequence number at which this run started reading (for progress/ETA).
    pub first_sequence: AtomicI64,
    /// Reconnects after link errors.
    pub reconnects: AtomicU64,
    /// The reader finished (replay bound reached or stopped).
    pub finished: AtomicBool,
}

impl PartitionState {
    /// A partition whose done position starts at `done` (its loaded checkpoint), holding at
    /// most `max_in_flight` events in flight.
    pub(crate) fn new(id: &str, done: Option<Checkpoint>, max_in_flight: usize) -> Self {
        let max = u32::try_from(max_in_flight.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        let checkpoint_sequence = done.as_ref().map_or(-1, |c| c.sequence);
        PartitionState {
            id: id.to_owned(),
            tracked: Mutex::new(Tracked {
                tracker: PartitionAckTracker::new(),
                done,
                unsaved_events: 0,
                dirty: false,
                last_save: Instant::now(),
            }),
            permits: Semaphore::new(max as usize),
            max_in_flight: max,
            events: AtomicU64::new(0),
            last_sequence: AtomicI64::new(-1),
            last_offset: AtomicI64::new(-1),
            last_enqueued_ns: AtomicI64::new(0),
            checkpoint_sequence: AtomicI64::new(checkpoint_sequence),
            end_sequence: AtomicI64::new(-1),
            end_enqueued_ns: AtomicI64::new(0),
            first_sequence: AtomicI64::new(-1),
            reconnects: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Tracked> {
        // The tracker stays consistent even if a holder panicked mid-way (each operation is a
        // few field updates), so a poisoned lock is still usable.
        self.tracked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for room for one more in-flight event (backpressure). Returns false if the
    /// semaphore was closed.
    pub(crate) async fn reserve(&self) -> bool {
        match self.permits.acquire().await {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Takes one in-flight slot if one is free now.
    pub(crate) fn try_reserve(&self) -> bool {
        match self.permits.try_acquire() {
            Ok(p) => {
                p.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Waits until no event of this partition is in flight.
    pub(crate) async fn drained(&self) {
        if let Ok(all) = self.permits.acquire_many(self.max_in_flight).await {
            drop(all);
        }
    }

    /// Events in flight (registered, not yet done).
    pub fn in_flight(&self) -> usize {
        self.lock().tracker.in_flight()
    }

    /// The done position (what the next checkpoint would hold).
    pub fn done(&self) -> Option<Checkpoint> {
        self.lock().done.clone()
    }

    /// Registers the next event (in partition order) needing `acks` acks.
    pub(crate) fn register(&self, position: Checkpoint, acks: u64) -> AckTicket {
        let mut t = self.lock();
        let (ticket, advance) = t.tracker.register(position, acks);
        if let Some(adv) = advance {
            Self::apply(&mut t, adv.position, adv.events);
            drop(t);
            self.permits.add_permits(adv.events as usize);
        }
        ticket
    }

    /// `n` acks for `ticket`.
    pub(crate) fn ack(&self, ticket: AckTicket, n: u64) {
        let mut t = self.lock();
        match t.tracker.ack_n(ticket, n) {
            Ok(Some(adv)) => {
                Self::apply(&mut t, adv.position, adv.events);
                drop(t);
                self.permits.add_permits(adv.events as usize);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(partition = %self.id, error = %e, "ack bookkeeping error (bug); the checkpoint of this partition may stall")
            }
        }
    }

    fn apply(t: &mut Tracked, position: Checkpoint, events: u64) {
        t.done = Some(position);
        t.unsaved_events += events;
        t.dirty = true;
    }
}

/// Integer form of an offset for gauges (-1 when not numeric).
pub(crate) fn offset_gauge(offset: &str) -> i64 {
    offset.trim().parse::<i64>().unwrap_or(-1)
}

/// Stores a value in a gauge.
pub(crate) fn set(g: &AtomicI64, v: i64) {
    g.store(v, Ordering::Relaxed);
}
