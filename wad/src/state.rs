//! The poll window and delivery bookkeeping of one table, without any I/O.
//!
//! * `cursor`: exclusive upper PartitionKey bound (ticks) of what has been read. A cycle reads
//!   `[cursor - overlap, hi)` with `hi = min(cursor + max_window, minute(now - lag) + 1 min)`:
//!   partitions still filling and rows that arrived late inside the overlap are read again.
//! * `seen`: every row delivered whose partition can be read again, with whether the sinks
//!   acknowledged it; a re-read row found there is skipped (dedup by (PartitionKey, RowKey)).
//! * batches carry sequence numbers; a cycle's end is a mark `(batches sent, hi)`. Once every
//!   batch up to a mark is acknowledged, `committed` moves to its `hi`: the watermark stored
//!   is `committed` plus the acknowledged rows at or above `committed - overlap`. After a
//!   crash, unacknowledged rows are read and delivered again (at least once), acknowledged
//!   ones are not.
//! * a batch released without an acknowledgement (its ack handle dropped) rewinds the reader
//!   to `committed`, forgetting every unacknowledged row, so that they are delivered again.
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::row::WadRow;
use crate::ticks::{floor_minute, partition_key, rfc3339_of_ticks, TICKS_PER_MINUTE};
use crate::watermark::Watermark;

/// Window settings in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTicks {
    /// How far behind now the newest partition read is.
    pub lag: i64,
    /// How far below the cursor each cycle reads again (at least one minute).
    pub overlap: i64,
    /// The widest PartitionKey range one cycle reads (catch-up happens in steps of this).
    pub max_window: i64,
}

/// The PartitionKey range of one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Inclusive lower bound (ticks).
    pub lo: i64,
    /// Exclusive upper bound (ticks).
    pub hi: i64,
    /// False when `max_window` cut the range short of now (more to read at once).
    pub caught_up: bool,
}

impl Window {
    /// `$filter` of the window.
    pub fn filter(&self) -> String {
        format!(
            "PartitionKey ge '{}' and PartitionKey lt '{}'",
            partition_key(self.lo),
            partition_key(self.hi)
        )
    }
}

/// Delivery state of one table.
#[derive(Debug)]
pub struct PollState {
    win: WindowTicks,
    cursor: i64,
    committed: i64,
    seen: BTreeMap<String, HashMap<String, bool>>,
    epoch: u64,
    next_seq: u64,
    acked_prefix: u64,
    resolved_ahead: BTreeSet<u64>,
    pending: HashMap<u64, Vec<(String, String)>>,
    marks: VecDeque<(u64, i64)>,
    dirty: bool,
}

impl PollState {
    /// Starts from a stored watermark, or `initial_lookback` ticks before now.
    pub fn new(
        watermark: Option<Watermark>,
        now_ticks: i64,
        win: WindowTicks,
        initial_lookback: i64,
    ) -> PollState {
        let win = WindowTicks {
            overlap: win.overlap.max(TICKS_PER_MINUTE),
            max_window: win.max_window.max(TICKS_PER_MINUTE),
            lag: win.lag.max(0),
        };
        let (cursor, seen) = match watermark {
            Some(wm) => {
                let seen = wm
                    .seen
                    .into_iter()
                    .map(|(pk, rks)| (pk, rks.into_iter().map(|rk| (rk, true)).collect()))
                    .collect();
                (wm.cursor_ticks, seen)
            }
            None => (
                floor_minute(now_ticks - initial_lookback.max(0)),
                BTreeMap::new(),
            ),
        };
        PollState {
            win,
            cursor,
            committed: cursor,
            seen,
            epoch: 0,
            next_seq: 0,
            acked_prefix: 0,
            resolved_ahead: BTreeSet::new(),
            pending: HashMap::new(),
            marks: VecDeque::new(),
            dirty: false,
        }
    }

    /// The range the next cycle reads.
    pub fn plan(&self, now_ticks: i64) -> Window {
        let live_hi = floor_minute(now_ticks - self.win.lag) + TICKS_PER_MINUTE;
        let hi = (self.cursor.saturating_add(self.win.max_window))
            .min(live_hi)
            .max(self.cursor);
        Window {
            lo: self.cursor - self.win.overlap,
            hi,
            caught_up: hi >= live_hi,
        }
    }

    /// Keeps the rows not delivered before (and not twice within `rows`), registering them as
    /// delivered and unacknowledged. Returns them and the number skipped.
    pub fn accept(&mut self, rows: Vec<WadRow>) -> (Vec<WadRow>, usize) {
        let mut fresh = Vec::with_capacity(rows.len());
        let mut skipped = 0;
        for row in rows {
            let part = match self.seen.get_mut(&row.partition_key) {
                Some(p) => p,
                None => self.seen.entry(row.partition_key.clone()).or_default(),
            };
            if part.contains_key(&row.row_key) {
                skipped += 1;
            } else {
                part.insert(row.row_key.clone(), false);
                fresh.push(row);
            }
        }
        (fresh, skipped)
    }

    /// Registers a batch of accepted rows; returns its `(epoch, seq)`.
    pub fn register(&mut self, rows: &[WadRow]) -> (u64, u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(
            seq,
            rows.iter()
                .map(|r| (r.partition_key.clone(), r.row_key.clone()))
                .collect(),
        );
        (self.epoch, seq)
    }

    /// Ends a cycle that read everything up to `hi`.
    pub fn finish_cycle(&mut self, hi: i64) {
        self.cursor = self.cursor.max(hi);
        self.marks.push_back((self.next_seq, self.cursor));
        self.advance();
    }

    /// The sinks acknowledged batch `seq`.
    pub fn ack(&mut self, epoch: u64, seq: u64) {
        if epoch != self.epoch {
            return;
        }
        if let Some(keys) = self.pending.remove(&seq) {
            for (pk, rk) in keys {
                if let Some(flag) = self.seen.get_mut(&pk).and_then(|p| p.get_mut(&rk)) {
                    *flag = true;
                }
            }
            self.dirty = true;
            self.resolve(seq);
        }
    }

    /// Batch `seq` was released unacknowledged: rewind to the committed watermark and forget
    /// every unacknowledged row, so they are read and delivered again.
    pub fn nack(&mut self, epoch: u64, seq: u64) {
        if epoch != self.epoch || !self.pending.contains_key(&seq) {
            return;
        }
        for (_, keys) in self.pending.drain() {
            for (pk, rk) in keys {
                if let Some(part) = self.seen.get_mut(&pk) {
                    if part.get(&rk) == Some(&false) {
                        part.remove(&rk);
                    }
                }
            }
        }
        self.marks.clear();
        self.resolved_ahead.clear();
        self.acked_prefix = self.next_seq;
        self.epoch += 1;
        self.cursor = self.committed;
    }

    fn resolve(&mut self, seq: u64) {
        if seq == self.acked_prefix {
            self.acked_prefix += 1;
            while self.resolved_ahead.remove(&self.acked_prefix) {
                self.acked_prefix += 1;
            }
        } else if seq > self.acked_prefix {
            self.resolved_ahead.insert(seq);
        }
        self.advance();
    }

    fn advance(&mut self) {
        while let Some(&(sent, hi)) = self.marks.front() {
            if sent > self.acked_prefix {
                break;
            }
            self.marks.pop_front();
            if hi > self.committed {
                self.committed = hi;
                self.dirty = true;
            }
        }
        self.prune();
    }

    /// Forgets partitions below `committed - overlap`: no read reaches them any more, and no
    /// unacknowledged row lives there (its cycle started at or above that bound).
    fn prune(&mut self) {
        let bound = partition_key(self.committed - self.win.overlap);
        let unreadable = self.seen.remove("");
        let kept = self.seen.split_off(&bound);
        self.seen = kept;
        if let Some(u) = unreadable {
            self.seen.insert(String::new(), u);
        }
    }

    /// Batches sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// The in-memory read cursor.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The acknowledged watermark.
    pub fn committed(&self) -> i64 {
        self.committed
    }

    /// Rows remembered for dedup.
    pub fn seen_rows(&self) -> usize {
        self.seen.values().map(HashMap::len).sum()
    }

    /// The delivery epoch (it changes when a released batch rewinds the state).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether the watermark changed since it was last taken.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// True (once) when the watermark changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Marks the watermark as changed (a save failed and must be tried again).
    pub fn set_dirty(&mut self) {
        self.dirty = true;
    }

    /// The watermark to store.
    pub fn watermark(&self) -> Watermark {
        let seen = self
            .seen
            .iter()
            .filter_map(|(pk, rows)| {
                let mut acked: Vec<String> = rows
                    .iter()
                    .filter(|(_, &a)| a)
                    .map(|(rk, _)| rk.clone())
                    .collect();
                if acked.is_empty() {
                    return None;
                }
                acked.sort_unstable();
                Some((pk.clone(), acked))
            })
            .collect();
        Watermark {
            version: 1,
            cursor_ticks: self.committed,
            cursor: rfc3339_of_ticks(self.committed),
            seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = TICKS_PER_MINUTE;
    const T0: i64 = 638_522_190_000_000_000; // 2024-05-25T07:30:00Z

    fn win() -> WindowTicks {
        WindowTicks {
            lag: 0,
            overlap: 5 * M,
            max_window: 60 * M,
        }
    }

    fn row(min: i64, rk: &str) -> WadRow {
        WadRow {
            partition_key: partition_key(T0 + min * M),
            row_key: rk.into(),
            stored_ns: None,
            json: format!("{{\"RowKey\":\"{rk}\"}}"),
        }
    }

    fn keys(rows: &[WadRow]) -> Vec<&str> {
        rows.iter().map(|r| r.row_key.as_str()).collect()
    }

    #[test]
    fn windows_follow_the_clock_lag_and_max_window() {
        let s = PollState::new(None, T0 + 30 * 10_000_000, win(), 10 * M);
        assert_eq!(s.cursor(), T0 - 10 * M);
        let w = s.plan(T0 + 30 * 10_000_000);
        assert_eq!((w.lo, w.hi, w.caught_up), (T0 - 15 * M, T0 + M, true));
        assert_eq!(
            w.filter(),
            format!(
                "PartitionKey ge '{}' and PartitionKey lt '{}'",
                partition_key(T0 - 15 * M),
                partition_key(T0 + M)
            )
        );
        // Far behind: catch up in max_window steps.
        let s = PollState::new(None, T0, win(), 300 * M);
        let w = s.plan(T0);
        assert_eq!((w.hi - s.cursor(), w.caught_up), (60 * M, false));
        // Lag keeps the newest partitions out.
        let lagged = WindowTicks {
            lag: 3 * M,
            ..win()
        };
        let s = PollState::new(None, T0, lagged, 10 * M);
        assert_eq!(s.plan(T0 + 59 * 10_000_000).hi, T0 - 2 * M);
    }

    #[test]
    fn rereads_are_skipped_and_acks_commit_in_order() {
        let mut s = PollState::new(None, T0, win(), 2 * M);
        let (fresh, skipped) = s.accept(vec![row(-1, "a"), row(0, "b"), row(0, "b")]);
        assert_eq!((keys(&fresh), skipped), (vec!["a", "b"], 1));
        let (e, b0) = s.register(&fresh);
        s.finish_cycle(T0 + M);
        // Second cycle re-reads the same rows plus a late one.
        let (fresh, skipped) = s.accept(vec![row(-1, "a"), row(-1, "late"), row(0, "b")]);
        assert_eq!((keys(&fresh), skipped), (vec!["late"], 2));
        let (_, b1) = s.register(&fresh);
        s.finish_cycle(T0 + 2 * M);
        assert_eq!(s.committed(), T0 - 2 * M);
        // Out-of-order acks: nothing commits until the first batch is acknowledged.
        s.ack(e, b1);
        assert_eq!(s.committed(), T0 - 2 * M);
        assert_eq!(s.in_flight(), 1);
        s.ack(e, b0);
        assert_eq!(s.committed(), T0 + 2 * M);
        assert!(s.take_dirty());
        assert!(!s.take_dirty());
        let wm = s.watermark();
        assert_eq!(wm.cursor_ticks, T0 + 2 * M);
        assert_eq!(wm.seen_rows(), 3);
        assert_eq!(wm.seen[&partition_key(T0 - M)], vec!["a", "late"]);
    }

    #[test]
    fn restart_from_the_watermark_skips_acked_rows_only() {
        let mut s = PollState::new(None, T0, win(), 2 * M);
        let (fresh, _) = s.accept(vec![row(0, "a"), row(0, "b")]);
        let (e, b0) = s.register(&fresh[..1]);
        let (_, _b1) = s.register(&fresh[1..]);
        s.finish_cycle(T0 + M);
        s.ack(e, b0);
        // Crash: batch b1 never acknowledged, the cycle never committed.
        let wm = s.watermark();
        assert_eq!(wm.cursor_ticks, T0 - 2 * M);
        let mut r = PollState::new(Some(wm), T0 + 10 * M, win(), 0);
        assert_eq!(r.plan(T0 + M).lo, T0 - 7 * M);
        let (fresh, skipped) = r.accept(vec![row(0, "a"), row(0, "b")]);
        assert_eq!((keys(&fresh), skipped), (vec!["b"], 1));
    }

    #[test]
    fn empty_cycles_advance_the_watermark() {
        let mut s = PollState::new(None, T0, win(), 2 * M);
        s.finish_cycle(T0 + M);
        assert_eq!(s.committed(), T0 + M);
        assert!(s.take_dirty());
    }

    #[test]
    fn pruning_keeps_only_the_overlap() {
        let mut s = PollState::new(None, T0, win(), 0);
        let (fresh, _) = s.accept(vec![row(-5, "old"), row(0, "new")]);
        let (e, b) = s.register(&fresh);
        s.finish_cycle(T0 + M);
        s.ack(e, b);
        // committed = T0 + 1m, bound = T0 - 4m: the -5 minute partition is forgotten.
        assert_eq!(s.seen_rows(), 1);
        assert_eq!(s.watermark().seen.len(), 1);
    }

    #[test]
    fn a_released_batch_rewinds_and_is_delivered_again() {
        let mut s = PollState::new(None, T0, win(), 2 * M);
        s.finish_cycle(T0 - M);
        let (fresh, _) = s.accept(vec![row(0, "a")]);
        let (e, b0) = s.register(&fresh);
        let (fresh, _) = s.accept(vec![row(0, "b")]);
        let (_, b1) = s.register(&fresh);
        s.finish_cycle(T0 + M);
        s.ack(e, b1);
        s.nack(e, b0);
        assert_eq!(s.cursor(), T0 - M);
        assert_eq!(s.in_flight(), 0);
        // a is forgotten (delivered again), b was acknowledged (not again).
        let (fresh, skipped) = s.accept(vec![row(0, "a"), row(0, "b")]);
        assert_eq!((keys(&fresh), skipped), (vec!["a"], 1));
        // Stale acks of the old epoch change nothing.
        s.ack(e, b0);
        assert_eq!(s.committed(), T0 - M);
    }
}
