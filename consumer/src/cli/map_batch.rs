//! One batch of `azlog-hub map`: the records split from one read of an input, parsed,
//! mapped and rendered family by family, their lines put back in input order. A batch is
//! mapped whole on one thread ([`BatchMapper`]); the thread that writes the output takes its
//! [`BatchOutput`]s in input order ([`super::map_jobs`] when several threads map).
use std::io;
use std::ops::Range;
use std::sync::Arc;

use azlog_mapper::deadletter::{now_ns, DeadLetter};
use azlog_mapper::envelope::RawRecord;
use azlog_mapper::mapper::MapOptions;
use azlog_mapper::{MapInput, Mapper};
use azlog_plugin_api::Position;

use crate::render::Renderer;

/// The records split from one read of one input.
pub struct Batch {
    /// Where they come from, for dead letters (`file:<path>` or `file:stdin`).
    pub source: Arc<str>,
    pub records: Vec<RawRecord>,
}

/// What one batch gave, in input order.
#[derive(Default)]
pub struct BatchOutput {
    /// The rendered lines of the records that mapped (all of them, or those before the first
    /// record that failed to render).
    pub lines: Vec<u8>,
    /// The records that could not be parsed or mapped.
    pub dead: Vec<DeadLetter>,
    /// How many records `lines` holds.
    pub mapped: u64,
    /// The first record (in input order) that failed to render, and why.
    pub failed: Option<io::Error>,
}

impl BatchOutput {
    fn clear(&mut self) {
        self.lines.clear();
        self.dead.clear();
        self.mapped = 0;
        self.failed = None;
    }
}

/// Maps batches on one thread: the mapper (shared), this thread's renderer and buffers.
pub struct BatchMapper<'m> {
    pub mapper: &'m Mapper,
    pub renderer: Renderer,
    pub options: MapOptions,
    /// `spans[i]`: where the line(s) of record `i` are held in `renderer`.
    spans: Vec<Option<Range<usize>>>,
}

impl<'m> BatchMapper<'m> {
    pub fn new(mapper: &'m Mapper, renderer: Renderer, options: MapOptions) -> Self {
        BatchMapper {
            mapper,
            renderer,
            options,
            spans: Vec::new(),
        }
    }

    /// Maps and renders `batch` into `out` (cleared first).
    ///
    /// The records are parsed in input order (bad ones become dead letters), then mapped and
    /// rendered family by family: records of one family mapped one after another share the
    /// branch history, caches and code of that family (docs/benchmarks.md: 12 % faster over
    /// the fixture mix). The lines are then copied out in input order.
    pub fn map(&mut self, batch: &Batch, out: &mut BatchOutput) {
        out.clear();
        let BatchMapper {
            mapper,
            ref mut renderer,
            options,
            ref mut spans,
        } = *self;
        let records = &batch.records;
        spans.clear();
        spans.resize(records.len(), None);
        let mut digits = itoa::Buffer::new();
        // One ingest time for the batch (the records of one read, mapped within milliseconds).
        let now = coarse_now_ns();
        let mut parsed = Vec::with_capacity(records.len());
        for (i, raw) in records.iter().enumerate() {
            let failure = match (&raw.error, std::str::from_utf8(&raw.json)) {
                (Some(reason), _) => Some(("envelope", reason.clone())),
                (None, Err(e)) => Some(("envelope", format!("record is not valid UTF-8: {e}"))),
                (None, Ok(json)) => match mapper.parse(json) {
                    Ok(p) => {
                        parsed.push((p, i, json));
                        None
                    }
                    Err(e) => Some(("map", e.to_string())),
                },
            };
            if let Some((stage, reason)) = failure {
                let position = Position {
                    source: batch.source.as_ref().into(),
                    partition: "".into(),
                    offset: digits.format(raw.line).into(),
                    sequence: line_sequence(raw),
                    index: raw.index,
                };
                out.dead
                    .push(DeadLetter::new(stage, &reason, &position, &raw.json));
            }
        }
        // The first record (in input order) that failed to render.
        let mut failed_at: Option<usize> = None;
        for (p, i, json) in by_family(&parsed, |(p, _, _)| p.family()) {
            if failed_at.is_some_and(|at| *i > at) {
                continue; // After a failure only the records before it are written.
            }
            let Some(raw) = records.get(*i) else { continue };
            // No output format of `map` shows a record's position, so mapped records carry
            // only its numbers; the texts (two allocations per record) are written for dead
            // letters.
            let input = MapInput {
                json,
                position: Position {
                    sequence: line_sequence(raw),
                    index: raw.index,
                    ..Position::default()
                },
                enqueued_ns: None,
            };
            let record = mapper.map_parsed(p, input, now, options);
            match renderer.hold(&record) {
                Ok(span) => {
                    if let Some(slot) = spans.get_mut(*i) {
                        *slot = Some(span);
                    }
                }
                Err(e) => {
                    failed_at = Some(*i);
                    out.failed = Some(e);
                }
            }
            mapper.recycle(record);
        }
        if let Some(at) = failed_at {
            spans.truncate(at);
        }
        out.mapped = spans.iter().flatten().count() as u64;
        // Sized first: a buffer that grows while it is written copies itself along (a new
        // output of a mapping thread starts empty).
        out.lines
            .reserve(spans.iter().flatten().map(|span| span.len()).sum());
        // Writing into a Vec cannot fail.
        let _ = renderer.write_held(spans.iter().flatten(), &mut out.lines);
    }
}

/// The items family by family (families in index order, items in their order within one):
/// a counting sort of references, as the family indexes are small (moving the parsed
/// records themselves in a comparison sort took 1 % of `map`'s instructions).
fn by_family<T>(items: &[T], family: impl Fn(&T) -> usize) -> Vec<&T> {
    let families = items.iter().map(&family).max().map_or(0, |f| f + 1);
    // `next[f]`: where the next item of family `f` goes.
    let mut next = vec![0usize; families + 1];
    for item in items {
        if let Some(n) = next.get_mut(family(item) + 1) {
            *n += 1;
        }
    }
    for f in 1..next.len() {
        next[f] += next[f - 1];
    }
    let mut out: Vec<Option<&T>> = vec![None; items.len()];
    for item in items {
        if let Some(at) = next.get_mut(family(item)) {
            if let Some(slot) = out.get_mut(*at) {
                *slot = Some(item);
            }
            *at += 1;
        }
    }
    out.into_iter().flatten().collect()
}

/// A record's line number as its position's sequence number.
fn line_sequence(raw: &RawRecord) -> i64 {
    i64::try_from(raw.line).unwrap_or(i64::MAX)
}

/// The time for `event.ingested`, from the kernel's coarse real-time clock on Linux: it costs
/// ≈ 6 ns instead of ≈ 40 ns, and its resolution (one scheduler tick, 1–4 ms) is ample for an
/// ingest time. It is read once per batch (the records of one read, mapped within a few
/// milliseconds), so the batch shares the time and its text is formatted once.
#[cfg(target_os = "linux")]
// `time_t` and `c_long` are `i64` only on 64-bit targets.
#[allow(clippy::useless_conversion)]
fn coarse_now_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; CLOCK_REALTIME_COARSE exists since Linux
    // 2.6.32. On failure `ts` is untouched and the precise clock is read instead.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return now_ns();
    }
    i64::from(ts.tv_sec)
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(ts.tv_nsec))
}

#[cfg(not(target_os = "linux"))]
fn coarse_now_ns() -> i64 {
    now_ns()
}

#[cfg(test)]
mod tests {
    use super::by_family;

    #[test]
    fn by_family_groups_in_family_order_keeping_the_order_within_each() {
        // (family, input position)
        let items: Vec<(usize, usize)> = [3, 0, 3, 7, 0, 0, 3, 7, 1]
            .into_iter()
            .enumerate()
            .map(|(i, f)| (f, i))
            .collect();
        let grouped: Vec<(usize, usize)> = by_family(&items, |&(f, _)| f)
            .into_iter()
            .copied()
            .collect();
        let mut want = items.clone();
        want.sort_by_key(|&(f, i)| (f, i));
        assert_eq!(grouped, want);
        assert!(by_family(&[] as &[(usize, usize)], |&(f, _)| f).is_empty());
    }
}
