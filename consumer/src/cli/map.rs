//! `azlog-hub map`: records from files or stdin → the mapper → one rendered record per line on
//! stdout. Bad input is dead-lettered, never dropped. This output is a contract other tools
//! script against: one document per record per line, stable key order.
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use azlog_mapper::deadletter::DeadLetterStore;
use azlog_mapper::envelope::{EnvelopeConfig, EnvelopeStats, RecordReader, READ_BUFFER};
use azlog_mapper::mapper::MapOptions;
use azlog_mapper::Mapper;
use clap::Args;

use super::map_batch::{Batch, BatchMapper, BatchOutput};
use super::map_jobs;
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
    /// Threads that map (default: one per core). Output is in input order whatever the
    /// number; with 1 the thread that reads and writes also maps.
    #[arg(long, value_name = "N")]
    pub jobs: Option<NonZeroUsize>,
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
    let mapper = Arc::new(Mapper::load(args.schemas.as_deref()).context("loading schema tables")?);
    let env_cfg = EnvelopeConfig {
        fix_control_chars: !args.no_fix_control_chars,
        fix_single_quotes: !args.no_fix_single_quotes,
        ..Default::default()
    };
    let stats = Arc::new(EnvelopeStats::default());
    // Only ECS output can leave the original out; then the mapper need not copy it.
    let options = MapOptions {
        keep_original: !(args.no_original && args.format == Format::Ecs),
    };
    let jobs = args.jobs.map_or_else(default_jobs, NonZeroUsize::get);
    let renderers = (0..jobs)
        .map(|_| Renderer::new(args.format, !args.no_original))
        .collect::<Result<Vec<_>>>()?;
    let inputs = if args.inputs.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.inputs.clone()
    };
    let batches = Batches::new(inputs, env_cfg, stats.clone());
    let stdout = io::stdout();
    let mut emit = Emit {
        out: BufWriter::with_capacity(1 << 16, stdout.lock()),
        dead: DeadLetterStore::new(&args.dead_letter),
        summary: MapSummary::default(),
    };
    let result = if jobs == 1 {
        map_on_this_thread(&mapper, renderers, options, batches, &mut emit)
    } else {
        map_jobs::map_in_parallel(mapper, renderers, options, batches, |batch| {
            emit.batch(batch)
        })
    };
    let Emit {
        mut out,
        mut dead,
        summary,
    } = emit;
    if let Err(e) = result {
        if is_broken_pipe(&e) {
            // The reader of our output went away (`map ... | head`): stop quietly.
            dead.sync().ok();
            return Ok(ExitCode::SUCCESS);
        }
        return Err(e);
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

/// Threads that map when `--jobs` is not given: one per core the process may use.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// `--jobs 1`: every batch mapped on the thread that reads the input and writes the output.
fn map_on_this_thread(
    mapper: &Mapper,
    renderers: Vec<Renderer>,
    options: MapOptions,
    batches: Batches,
    emit: &mut Emit<impl Write>,
) -> Result<()> {
    let renderer = renderers
        .into_iter()
        .next()
        .context("no renderer for the mapping thread")?;
    let mut mapper = BatchMapper::new(mapper, renderer, options);
    let mut output = BatchOutput::default();
    for batch in batches {
        mapper.map(&batch?, &mut output);
        emit.batch(&mut output)?;
    }
    Ok(())
}

/// Where mapped batches go, in input order: lines to the output, dead letters to their
/// store, counts to the summary.
struct Emit<W: Write> {
    out: W,
    dead: DeadLetterStore,
    summary: MapSummary,
}

impl<W: Write> Emit<W> {
    /// Writes one batch's dead letters, then its lines; a record that failed to render
    /// becomes the error, after the lines before it were written.
    fn batch(&mut self, batch: &mut BatchOutput) -> Result<()> {
        for dead in &batch.dead {
            self.dead.write(dead).with_context(|| {
                format!("writing dead letter to {}", self.dead.path().display())
            })?;
        }
        self.summary.dead_lettered += batch.dead.len() as u64;
        // Flushed batch by batch: the lines of a live stream (`tail -f … | azlog-hub map`)
        // come out as soon as they map. A batch is up to one read of the input, so this
        // costs at most one more write per read.
        self.out
            .write_all(&batch.lines)
            .and_then(|()| self.out.flush())
            .context("writing output")?;
        self.summary.mapped += batch.mapped;
        match batch.failed.take() {
            Some(e) => Err(anyhow::Error::new(e).context("writing output")),
            None => Ok(()),
        }
    }
}

/// At most this many records in one batch: a read of tiny records (`{}` lines: 350,000 per
/// MiB) would otherwise hold the output of all of them at once, about a hundred times the
/// input. The bench input has about 1,000 records per read.
const MAX_BATCH: usize = 4096;

/// The batches of every input, one input after another: the records split from one read of
/// the input (up to [`READ_BUFFER`] bytes of a file; a pipe gives what it holds, so a slow
/// stream is never waited for), at most [`MAX_BATCH`] at a time. After an error (an input
/// that cannot be opened or read) there are no more batches.
pub struct Batches {
    inputs: std::vec::IntoIter<PathBuf>,
    current: Option<Input>,
    env: EnvelopeConfig,
    stats: Arc<EnvelopeStats>,
}

/// The input being read.
struct Input {
    records: RecordReader<Box<dyn BufRead + Send>>,
    /// `file:<path>` (or `file:stdin`), for dead letters.
    source: Arc<str>,
    /// The path (or `stdin`), for errors.
    name: String,
}

impl Batches {
    pub fn new(inputs: Vec<PathBuf>, env: EnvelopeConfig, stats: Arc<EnvelopeStats>) -> Self {
        Batches {
            inputs: inputs.into_iter(),
            current: None,
            env,
            stats,
        }
    }

    fn open(&self, input: &Path) -> Result<Input> {
        let (reader, name): (Box<dyn BufRead + Send>, String) = if input.as_os_str() == "-" {
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
        Ok(Input {
            records: RecordReader::with_stats(reader, self.env.clone(), self.stats.clone()),
            source: Arc::from(format!("file:{name}")),
            name,
        })
    }

    /// No more batches after an error.
    fn fail(&mut self, e: anyhow::Error) -> Option<Result<Batch>> {
        self.inputs = Vec::new().into_iter();
        self.current = None;
        Some(Err(e))
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        loop {
            let input = match self.current.take() {
                Some(input) => input,
                None => {
                    let path = self.inputs.next()?;
                    match self.open(&path) {
                        Ok(input) => input,
                        Err(e) => return self.fail(e),
                    }
                }
            };
            let input = self.current.insert(input);
            let first = match input.records.next() {
                None => {
                    self.current = None;
                    continue;
                }
                Some(Err(e)) => {
                    let e = anyhow::Error::new(e).context(format!("reading {}", input.name));
                    return self.fail(e);
                }
                Some(Ok(first)) => first,
            };
            let mut records = vec![first];
            while records.len() < MAX_BATCH {
                let Some(raw) = input.records.next_ready() else {
                    break;
                };
                records.push(raw);
            }
            return Some(Ok(Batch {
                source: input.source.clone(),
                records,
            }));
        }
    }
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
