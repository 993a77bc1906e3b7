//! `azlog-hub map`: records from files or stdin → the mapper → one rendered record per line on
//! stdout. Bad input is dead-lettered, never dropped. This output is a contract other tools
//! script against: one document per record per line, stable key order.
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use azlog_mapper::deadletter::{now_ns, DeadLetter, DeadLetterStore};
use azlog_mapper::envelope::{EnvelopeConfig, EnvelopeStats, RawRecord, RecordReader, READ_BUFFER};
use azlog_mapper::mapper::MapOptions;
use azlog_mapper::{MapInput, Mapper};
use azlog_plugin_api::Position;
use clap::Args;

use crate::render::{Format, Renderer};

/// Arguments of `azlog-hub map`.
#[derive(Args, Debug)]
pub struct MapArgs {
    /// Folder of schema tables overlaying the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub schemas: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Ecs)]
    pub format: Format,
    /// Where dead letters go (created only when one occurs).
    #[arg(long, value_name = "FILE", default_value = "dead-letter.ndjson")]
    pub dead_letter: PathBuf,
    /// Leave `event.original` out of ECS output.
    #[arg(long)]
    pub no_original: bool,
    /// Switch off the sanitizer that escapes raw control characters inside strings.
    #[arg(long)]
    pub no_fix_control_chars: bool,
    /// Switch off the sanitizer that converts single-quoted pseudo-JSON.
    #[arg(long)]
    pub no_fix_single_quotes: bool,
    /// Input files (`-` or none: stdin). Envelopes, NDJSON, arrays or bare objects.
    #[arg(value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
}

/// Counts of one `map` run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MapSummary {
    pub mapped: u64,
    pub dead_lettered: u64,
}

/// Runs `azlog-hub map`.
pub fn run(args: MapArgs) -> Result<ExitCode> {
    let mapper = Mapper::load(args.schemas.as_deref()).context("loading schema tables")?;
    let env_cfg = EnvelopeConfig {
        fix_control_chars: !args.no_fix_control_chars,
        fix_single_quotes: !args.no_fix_single_quotes,
        ..Default::default()
    };
    let stats = Arc::new(EnvelopeStats::default());
    let mut dead = DeadLetterStore::new(&args.dead_letter);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut renderer = Renderer::new(args.format, !args.no_original)?;
    // Only ECS output can leave the original out; then the mapper need not copy it.
    let options = MapOptions {
        keep_original: !(args.no_original && args.format == Format::Ecs),
    };
    let mut summary = MapSummary::default();
    let inputs = if args.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.inputs.clone()
    };
    for input in &inputs {
        let (reader, source): (Box<dyn BufRead>, String) = if input.as_os_str() == "-" {
            (
                Box::new(BufReader::with_capacity(READ_BUFFER, io::stdin())),
                "stdin".to_owned(),
            )
        } else {
            let f = File::open(input).with_context(|| format!("opening {}", input.display()))?;
            (
                Box::new(BufReader::with_capacity(READ_BUFFER, f)),
                input.display().to_string(),
            )
        };
        let records = RecordReader::with_stats(reader, env_cfg.clone(), stats.clone());
        let mut cx = MapContext {
            source: &format!("file:{source}"),
            mapper: &mapper,
            options,
            dead: &mut dead,
            summary: &mut summary,
            renderer: &mut renderer,
        };
        let result =
            map_stream(records, &mut cx, &mut out).with_context(|| format!("reading {source}"));
        if let Err(e) = result {
            if is_broken_pipe(&e) {
                // The reader of our output went away (`map ... | head`): stop quietly.
                dead.sync().ok();
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e);
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::new(e).context("writing to stdout"));
        }
    }
    dead.sync()
        .with_context(|| format!("writing {}", args.dead_letter.display()))?;
    report(&summary, &stats, &dead);
    Ok(ExitCode::SUCCESS)
}

/// At most this many records in one batch of [`map_stream`]: a read of tiny records (`{}`
/// lines: 350,000 per MiB) would otherwise hold the output of all of them at once, about a
/// hundred times the input. The bench input has about 1,000 records per read.
const MAX_BATCH: usize = 4096;

/// What [`map_stream`] needs besides the records and the output.
pub struct MapContext<'a> {
    /// Where the records come from, for dead letters (`file:<path>`).
    pub source: &'a str,
    pub mapper: &'a Mapper,
    pub options: MapOptions,
    pub dead: &'a mut DeadLetterStore,
    pub summary: &'a mut MapSummary,
    pub renderer: &'a mut Renderer,
}

/// Splits, maps and writes every record of one input, in input order; bad ones go to `dead`.
///
/// The records come in batches: those split from one read of the input (up to
/// [`READ_BUFFER`] bytes of a file; a pipe gives what it holds, so a slow stream is never
/// waited for), at most [`MAX_BATCH`] at a time. A batch is mapped and rendered family by
/// family, then written in input order; the records of one family mapped one after another
/// share the branch history, caches and code of that family (docs/benchmarks.md: 12 % faster
/// over the fixture mix).
/// Lines of a batch before a record that fails to render are written before the error
/// returns.
pub fn map_stream<R: BufRead>(
    mut records: RecordReader<R>,
    cx: &mut MapContext<'_>,
    out: &mut impl Write,
) -> Result<()> {
    let mut batch = Vec::new();
    let mut spans = Vec::new();
    while let Some(first) = records.next() {
        batch.clear();
        batch.push(first?);
        while batch.len() < MAX_BATCH {
            let Some(raw) = records.next_ready() else {
                break;
            };
            batch.push(raw);
        }
        let mapped = map_batch(&batch, cx, &mut spans);
        // What mapped goes out even when a record failed to render.
        cx.renderer
            .write_held(spans.iter().flatten(), out)
            .context("writing output")?;
        mapped?;
    }
    Ok(())
}

/// Maps and renders one batch ([`map_stream`]): `spans[i]` is where the line(s) of
/// `batch[i]` are held in `renderer` (`None` for a dead letter). On a render error, the
/// spans (and the count of mapped records) are those before the failing record.
fn map_batch(
    batch: &[RawRecord],
    cx: &mut MapContext<'_>,
    spans: &mut Vec<Option<Range<usize>>>,
) -> Result<()> {
    let MapContext {
        source,
        mapper,
        options,
        ref mut dead,
        ref mut summary,
        ref mut renderer,
    } = *cx;
    spans.clear();
    spans.resize(batch.len(), None);
    let mut digits = itoa::Buffer::new();
    // One ingest time for the batch (the records of one read, mapped within milliseconds).
    let now = coarse_now_ns();
    // Parsed and detected, in input order; dead letters are written as they are met.
    let mut parsed = Vec::with_capacity(batch.len());
    for (i, raw) in batch.iter().enumerate() {
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
                source: source.into(),
                partition: "".into(),
                offset: digits.format(raw.line).into(),
                sequence: line_sequence(raw),
                index: raw.index,
            };
            dead.write(&DeadLetter::new(stage, &reason, &position, &raw.json))
                .with_context(|| format!("writing dead letter to {}", dead.path().display()))?;
            summary.dead_lettered += 1;
        }
    }
    // The first record (in input order) that failed to render, and why.
    let mut failed: Option<(usize, std::io::Error)> = None;
    for (p, i, json) in by_family(&parsed, |(p, _, _)| p.family()) {
        if failed.as_ref().is_some_and(|(at, _)| i > at) {
            continue; // After a failure only the records before it are written.
        }
        let Some(raw) = batch.get(*i) else { continue };
        // No output format of `map` shows a record's position, so mapped records carry only
        // its numbers; the texts (two allocations per record) are written for dead letters.
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
            Err(e) => failed = Some((*i, e)),
        }
        mapper.recycle(record);
    }
    if let Some((at, _)) = &failed {
        spans.truncate(*at);
    }
    summary.mapped += spans.iter().flatten().count() as u64;
    match failed {
        Some((_, e)) => Err(anyhow::Error::new(e).context("writing output")),
        None => Ok(()),
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn report(summary: &MapSummary, stats: &EnvelopeStats, dead: &DeadLetterStore) {
    use std::sync::atomic::Ordering::Relaxed;
    let fixed = stats.fixed_control_chars.load(Relaxed) + stats.fixed_single_quotes.load(Relaxed);
    eprintln!(
        "azlog-hub map: {} mapped, {} dead-lettered{}, {} sanitized (control chars {}, single quotes {})",
        summary.mapped,
        summary.dead_lettered,
        if summary.dead_lettered > 0 {
            format!(" → {}", dead.path().display())
        } else {
            String::new()
        },
        fixed,
        stats.fixed_control_chars.load(Relaxed),
        stats.fixed_single_quotes.load(Relaxed),
    );
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
