//! Ack tracking: turns out-of-order sink acks into an in-order checkpoint per partition.
//!
//! Each event read from a partition is registered, in partition order, with the number of acks it
//! needs (the sum, over the records split from it, of the sinks each record is routed to; a
//! dead-lettered record counts as acked once it is dead-lettered). Acks arrive in any order. A
//! partition's checkpoint is the last event at or before which every event is fully acked; the
//! tracker reports it each time that contiguous done prefix advances. Events that need 0 acks
//! (filtered out, routed nowhere) are done at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::checkpoint::Checkpoint;

/// Handle for acking one registered event of one partition tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckTicket(u64);

/// The done prefix advanced: `position` is the new checkpoint, `events` how many events it
/// covers beyond the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance<P> {
    /// Position of the last event of the new done prefix.
    pub position: P,
    /// Number of events that became part of the done prefix with this advance.
    pub events: u64,
}

/// Misuse of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The ticket was never issued by this tracker.
    #[error("unknown ack ticket {0}")]
    Unknown(u64),
    /// The event already received all the acks it needed.
    #[error("ack ticket {0} acked more times than it needed")]
    OverAck(u64),
}

#[derive(Debug)]
struct Slot<P> {
    remaining: u64,
    position: P,
}

/// Ack tracker of one partition. `P` is the position type (e.g. [`Checkpoint`]).
#[derive(Debug)]
pub struct PartitionAckTracker<P> {
    /// Ticket number of `slots[0]`.
    base: u64,
    slots: VecDeque<Slot<P>>,
}

impl<P> Default for PartitionAckTracker<P> {
    fn default() -> Self {
        Self {
            base: 0,
            slots: VecDeque::new(),
        }
    }
}

impl<P: Clone> PartitionAckTracker<P> {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the next event of the partition (events must be registered in order) needing
    /// `acks` acks. Returns its ticket and, when the event needs no acks and everything before it
    /// is done, the advance it causes.
    pub fn register(&mut self, position: P, acks: u64) -> (AckTicket, Option<Advance<P>>) {
        let ticket = AckTicket(self.base + self.slots.len() as u64);
        self.slots.push_back(Slot {
            remaining: acks,
            position,
        });
        let advance = if acks == 0 { self.drain() } else { None };
        (ticket, advance)
    }

    /// One ack for `ticket`. Returns the advance when the done prefix moved.
    pub fn ack(&mut self, ticket: AckTicket) -> Result<Option<Advance<P>>, AckError> {
        self.ack_n(ticket, 1)
    }

    /// `n` acks for `ticket` at once.
    pub fn ack_n(&mut self, ticket: AckTicket, n: u64) -> Result<Option<Advance<P>>, AckError> {
        let end = self.base + self.slots.len() as u64;
        if ticket.0 >= end {
            return Err(AckError::Unknown(ticket.0));
        }
        if ticket.0 < self.base {
            // Retired: it was done, so any further ack is one too many.
            return Err(AckError::OverAck(ticket.0));
        }
        let idx = (ticket.0 - self.base) as usize;
        let slot = self.slots.get_mut(idx).ok_or(AckError::Unknown(ticket.0))?;
        if slot.remaining < n {
            return Err(AckError::OverAck(ticket.0));
        }
        slot.remaining -= n;
        if idx == 0 && slot.remaining == 0 {
            Ok(self.drain())
        } else {
            Ok(None)
        }
    }

    /// Pops the done prefix.
    fn drain(&mut self) -> Option<Advance<P>> {
        let mut last = None;
        let mut events = 0;
        while self.slots.front().is_some_and(|s| s.remaining == 0) {
            if let Some(slot) = self.slots.pop_front() {
                self.base += 1;
                events += 1;
                last = Some(slot.position);
            }
        }
        last.map(|position| Advance { position, events })
    }

    /// Events registered but not yet part of the done prefix.
    pub fn in_flight(&self) -> usize {
        self.slots.len()
    }

    /// Acks still outstanding over all in-flight events.
    pub fn outstanding_acks(&self) -> u64 {
        self.slots.iter().map(|s| s.remaining).sum()
    }
}

/// A ticket of [`AckTracker`]: partition + per-partition ticket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionTicket {
    /// Partition id.
    pub partition: Arc<str>,
    /// Ticket within the partition.
    pub ticket: AckTicket,
}

/// Ack trackers for all partitions of a consumer, positions being [`Checkpoint`]s.
#[derive(Debug, Default)]
pub struct AckTracker {
    partitions: HashMap<Arc<str>, PartitionAckTracker<Checkpoint>>,
}

impl AckTracker {
    /// No partitions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the next event of `position.partition`, needing `acks` acks.
    pub fn register(
        &mut self,
        position: Checkpoint,
        acks: u64,
    ) -> (PartitionTicket, Option<Advance<Checkpoint>>) {
        let partition: Arc<str> = match self.partitions.get_key_value(position.partition.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(position.partition.as_str()),
        };
        let tracker = self.partitions.entry(partition.clone()).or_default();
        let (ticket, advance) = tracker.register(position, acks);
        (PartitionTicket { partition, ticket }, advance)
    }

    /// One ack for `ticket`.
    pub fn ack(
        &mut self,
        ticket: &PartitionTicket,
    ) -> Result<Option<Advance<Checkpoint>>, AckError> {
        self.ack_n(ticket, 1)
    }

    /// `n` acks for `ticket`.
    pub fn ack_n(
        &mut self,
        ticket: &PartitionTicket,
        n: u64,
    ) -> Result<Option<Advance<Checkpoint>>, AckError> {
        match self.partitions.get_mut(&ticket.partition) {
            Some(t) => t.ack_n(ticket.ticket, n),
            None => Err(AckError::Unknown(ticket.ticket.0)),
        }
    }

    /// Forgets a partition (ownership lost); later acks for it report [`AckError::Unknown`].
    pub fn remove_partition(&mut self, partition: &str) {
        self.partitions.remove(partition);
    }

    /// In-flight events of one partition.
    pub fn in_flight(&self, partition: &str) -> usize {
        self.partitions.get(partition).map_or(0, |t| t.in_flight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_acks_advance_each_time() {
        let mut t = PartitionAckTracker::new();
        let (a, adv) = t.register(1, 1);
        assert!(adv.is_none());
        let (b, _) = t.register(2, 1);
        assert_eq!(
            t.ack(a).unwrap(),
            Some(Advance {
                position: 1,
                events: 1
            })
        );
        assert_eq!(
            t.ack(b).unwrap(),
            Some(Advance {
                position: 2,
                events: 1
            })
        );
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn out_of_order_waits_for_the_gap() {
        let mut t = PartitionAckTracker::new();
        let (a, _) = t.register("e1", 2);
        let (b, _) = t.register("e2", 1);
        let (c, _) = t.register("e3", 1);
        assert_eq!(t.ack(c).unwrap(), None);
        assert_eq!(t.ack(b).unwrap(), None);
        assert_eq!(t.ack(a).unwrap(), None, "e1 needs two acks");
        assert_eq!(t.outstanding_acks(), 1);
        assert_eq!(
            t.ack(a).unwrap(),
            Some(Advance {
                position: "e3",
                events: 3
            })
        );
    }

    #[test]
    fn zero_ack_events_are_done_at_once() {
        let mut t = PartitionAckTracker::new();
        let (_, adv) = t.register(1, 0);
        assert_eq!(
            adv,
            Some(Advance {
                position: 1,
                events: 1
            })
        );
        let (x, _) = t.register(2, 1);
        let (_, adv) = t.register(3, 0);
        assert_eq!(adv, None, "3 is done but 2 is not");
        assert_eq!(
            t.ack(x).unwrap(),
            Some(Advance {
                position: 3,
                events: 2
            })
        );
    }

    #[test]
    fn misuse_is_reported() {
        let mut t = PartitionAckTracker::new();
        let (a, _) = t.register(1, 1);
        let (b, _) = t.register(2, 1);
        assert_eq!(t.ack(AckTicket(7)), Err(AckError::Unknown(7)));
        t.ack(b).unwrap();
        assert_eq!(t.ack(b), Err(AckError::OverAck(1)));
        t.ack(a).unwrap();
        assert_eq!(t.ack(a), Err(AckError::OverAck(0)), "retired ticket");
        assert_eq!(t.ack_n(AckTicket(2), 1), Err(AckError::Unknown(2)));
    }

    #[test]
    fn multi_partition_tracker_is_independent() {
        let cp = |p: &str, s: i64| Checkpoint {
            partition: p.into(),
            offset: Some(format!("{}", s * 10)),
            sequence: s,
            enqueued_ns: None,
        };
        let mut t = AckTracker::new();
        let (a0, _) = t.register(cp("0", 1), 1);
        let (b0, _) = t.register(cp("1", 5), 1);
        let adv = t.ack(&b0).unwrap().unwrap();
        assert_eq!(adv.position, cp("1", 5));
        assert_eq!(t.in_flight("0"), 1);
        t.remove_partition("0");
        assert!(matches!(t.ack(&a0), Err(AckError::Unknown(_))));
    }

    /// Property-style: random ack needs (incl. 0), random ack order; after every ack the
    /// reported checkpoint must equal the reference "longest fully-acked prefix".
    #[test]
    fn randomized_orders_match_reference_model() {
        for seed in 0..300u64 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let n = rng.usize(1..60);
            let needs: Vec<u64> = (0..n).map(|_| rng.u64(0..4)).collect();
            let mut t = PartitionAckTracker::new();
            let mut acks = Vec::new();
            let mut checkpoint: Option<usize> = None;
            let mut covered = 0u64;
            let mut apply = |adv: Option<Advance<usize>>, checkpoint: &mut Option<usize>| {
                if let Some(a) = adv {
                    assert!(
                        checkpoint.is_none_or(|c| a.position > c),
                        "seed {seed}: must move forward"
                    );
                    *checkpoint = Some(a.position);
                    covered += a.events;
                }
            };
            let mut remaining = needs.clone();
            // Interleave registrations and acks: register everything first in chunks, acking
            // randomly between chunks.
            let mut registered = 0;
            while registered < n || !acks.is_empty() {
                if registered < n && (acks.is_empty() || rng.bool()) {
                    let (ticket, adv) = t.register(registered, needs[registered]);
                    for _ in 0..needs[registered] {
                        acks.push((registered, ticket));
                    }
                    registered += 1;
                    apply(adv, &mut checkpoint);
                } else {
                    let i = rng.usize(0..acks.len());
                    let (idx, ticket) = acks.swap_remove(i);
                    remaining[idx] -= 1;
                    let adv = t.ack(ticket).unwrap();
                    apply(adv, &mut checkpoint);
                }
                let reference = remaining[..registered]
                    .iter()
                    .position(|r| *r > 0)
                    .unwrap_or(registered)
                    .checked_sub(1);
                assert_eq!(checkpoint, reference, "seed {seed}");
            }
            assert_eq!(checkpoint, Some(n - 1), "seed {seed}");
            assert_eq!(covered, n as u64, "seed {seed}");
            assert_eq!(t.in_flight(), 0);
        }
    }
}
