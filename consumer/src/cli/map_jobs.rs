//! `azlog-hub map` on several threads: one reads the inputs into batches, each of N mapping
//! threads maps whole batches ([`BatchMapper`]), and the calling thread writes what they
//! give in input order.
//!
//! ```text
//! reader ──batch──▶ mapper w (round robin) ──output──▶ caller: emit, in input order
//!    └──── w, in input order (bounded) ───────────────────▲
//! ```
//!
//! The reader sends each batch to the next mapping thread in turn and then, on a bounded
//! channel, the number of that thread: the caller takes those numbers in order and waits for
//! that thread's next output, so lines, dead letters and errors come out exactly as `--jobs
//! 1` writes them. The bound (two batches per mapping thread) keeps memory flat: the reader
//! waits while the caller is that far behind. Each output goes back to the thread that
//! filled it, which reuses its buffers.
//!
//! The threads are not scoped: when the caller stops early (a closed stdout, a failed write)
//! it returns at once, even while the reader waits on a slow stdin; the process exits after.
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use anyhow::{anyhow, Context, Result};
use azlog_mapper::mapper::MapOptions;
use azlog_mapper::Mapper;

use super::map_batch::{Batch, BatchMapper, BatchOutput};
use crate::render::Renderer;

/// Batches the reader may be ahead of the caller, per mapping thread.
const AHEAD_PER_THREAD: usize = 2;

/// One mapping thread as the caller sees it.
struct Worker {
    /// Its outputs, in the order its batches were sent.
    done: Receiver<BatchOutput>,
    /// Outputs given back for reuse.
    spare: Sender<BatchOutput>,
    handle: JoinHandle<()>,
}

/// Maps `batches` on one thread per renderer and hands each output to `emit`, in input
/// order. An error from `batches` (after the outputs before it) or from `emit` ends the run.
pub fn map_in_parallel<I>(
    mapper: Arc<Mapper>,
    renderers: Vec<Renderer>,
    options: MapOptions,
    batches: I,
    mut emit: impl FnMut(&mut BatchOutput) -> Result<()>,
) -> Result<()>
where
    I: Iterator<Item = Result<Batch>> + Send + 'static,
{
    let threads = renderers.len();
    let mut workers = Vec::with_capacity(threads);
    let mut jobs = Vec::with_capacity(threads);
    for (n, renderer) in renderers.into_iter().enumerate() {
        let (job_tx, job_rx) = channel::<Batch>();
        let (done_tx, done) = channel();
        let (spare, spare_rx) = channel();
        let mapper = mapper.clone();
        let handle = thread::Builder::new()
            .name(format!("map-{n}"))
            .spawn(move || {
                let mut batch_mapper = BatchMapper::new(&mapper, renderer, options);
                for batch in job_rx {
                    let mut out = spare_rx.try_recv().unwrap_or_default();
                    batch_mapper.map(&batch, &mut out);
                    if done_tx.send(out).is_err() {
                        return; // The caller stopped.
                    }
                }
            })
            .context("starting a mapping thread")?;
        workers.push(Worker {
            done,
            spare,
            handle,
        });
        jobs.push(job_tx);
    }
    // The number of the thread that holds each next batch, in input order; or the error.
    let (order_tx, order) = sync_channel::<Result<usize>>(AHEAD_PER_THREAD * threads);
    let reader = thread::Builder::new()
        .name("map-reader".into())
        .spawn(move || {
            for (batch, n) in batches.zip((0..threads).cycle()) {
                let item = match batch {
                    Ok(batch) => match jobs.get(n).map(|job| job.send(batch)) {
                        Some(Ok(())) => Ok(n),
                        _ => return, // That thread ended: the caller sees it stop.
                    },
                    Err(e) => Err(e),
                };
                let last = item.is_err();
                if order_tx.send(item).is_err() || last {
                    return;
                }
            }
        })
        .context("starting the reading thread")?;

    for item in order {
        let n = item?;
        let worker = workers
            .get(n)
            .ok_or_else(|| anyhow!("no mapping thread {n}"))?;
        let mut out = worker
            .done
            .recv()
            .map_err(|_| anyhow!("mapping thread {n} stopped (it panicked)"))?;
        let emitted = emit(&mut out);
        // A thread that already ended does not need it back.
        let _ = worker.spare.send(out);
        emitted?;
    }
    // The reader finished (it dropped the order channel), and with it the job channels, so
    // every mapping thread ends too.
    reader
        .join()
        .map_err(|_| anyhow!("the reading thread panicked"))?;
    for (n, worker) in workers.into_iter().enumerate() {
        worker
            .handle
            .join()
            .map_err(|_| anyhow!("mapping thread {n} panicked"))?;
    }
    Ok(())
}
