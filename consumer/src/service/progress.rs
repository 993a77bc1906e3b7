//! Progress output: periodic log lines for `run`, a progress line on stderr for `replay`, and
//! the partition-end poller behind the lag gauges.
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::pipeline::Metrics;
use crate::source::Source;

/// Rates since the previous call.
struct Rates {
    at: Instant,
    events: u64,
    records: u64,
}

impl Rates {
    fn new(m: &Metrics) -> Self {
        Rates {
            at: Instant::now(),
            events: m.events.load(Ordering::Relaxed),
            records: m.records.load(Ordering::Relaxed),
        }
    }

    /// (events/s, records/s) since the last call.
    fn step(&mut self, m: &Metrics) -> (f64, f64) {
        let now = Rates::new(m);
        let secs = now.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let r = (
            (now.events - self.events) as f64 / secs,
            (now.records - self.records) as f64 / secs,
        );
        *self = now;
        r
    }
}

/// Logs a progress line every `every` until `stop`.
pub async fn log_progress(metrics: Arc<Metrics>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut rates = Rates::new(&metrics);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (eps, rps) = rates.step(&metrics);
        let sent: u64 = metrics
            .sinks
            .iter()
            .map(|s| s.accepted.load(Ordering::Relaxed))
            .sum();
        let positions: Vec<String> = metrics
            .partitions()
            .iter()
            .map(|p| {
                let end = p.end_sequence.load(Ordering::Relaxed);
                let last = p.last_sequence.load(Ordering::Relaxed);
                let cp = p.checkpoint_sequence.load(Ordering::Relaxed);
                if end >= 0 {
                    format!(
                        "{}:seq={last},checkpoint={cp},lag={}",
                        p.id,
                        (end - last).max(0)
                    )
                } else {
                    format!("{}:seq={last},checkpoint={cp}", p.id)
                }
            })
            .collect();
        tracing::info!(
            events = metrics.events.load(Ordering::Relaxed),
            records = metrics.records.load(Ordering::Relaxed),
            events_per_s = format!("{eps:.0}"),
            records_per_s = format!("{rps:.0}"),
            sent,
            dead_lettered = metrics.dead.total(),
            checkpoints = metrics.checkpoints.load(Ordering::Relaxed),
            partitions = %positions.join(" "),
            "progress"
        );
    }
}

/// Polls each partition's newest sequence number / enqueued time for the lag gauges.
pub async fn poll_partition_ends(
    source: Arc<dyn Source>,
    metrics: Arc<Metrics>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for p in metrics.partitions() {
            let info = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                i = source.partition_info(&p.id) => i,
            };
            match info {
                Ok(info) => {
                    p.end_sequence.store(info.last_sequence, Ordering::Relaxed);
                    p.end_enqueued_ns
                        .store(info.last_enqueued_ns.unwrap_or(0), Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(partition = %p.id, error = %e.message, "partition properties unavailable")
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One replay progress line: records, rate, position per partition, ETA.
pub fn replay_line(metrics: &Metrics, rps: f64, eps: f64) -> String {
    let mut remaining_total = 0i64;
    let mut parts = Vec::new();
    for p in metrics.partitions() {
        let last = p.last_sequence.load(Ordering::Relaxed);
        let end = p.end_sequence.load(Ordering::Relaxed);
        let first = p.first_sequence.load(Ordering::Relaxed);
        if p.finished.load(Ordering::Relaxed) {
            parts.push(format!("p{} done@{last}", p.id));
        } else if end >= 0 && first >= 0 {
            let span = (end - first + 1).max(1);
            let pct = ((last - first + 1).max(0) * 100 / span).min(100);
            remaining_total += (end - last).max(0);
            parts.push(format!("p{} {last}/{end} {pct}%", p.id));
        } else {
            parts.push(format!("p{} seq {last}", p.id));
        }
    }
    let eta = if remaining_total > 0 && eps > 0.5 {
        format!(" ETA {:.0}s", remaining_total as f64 / eps)
    } else {
        String::new()
    };
    format!(
        "replay: {} records ({rps:.0}/s), {} dead-lettered | {}{eta}",
        metrics.records.load(Ordering::Relaxed),
        metrics.dead.total(),
        parts.join(" | ")
    )
}

/// Writes a replay progress line to stderr every `every` (rewriting it in place on a TTY).
pub async fn replay_progress(
    metrics: Arc<Metrics>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut rates = Rates::new(&metrics);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(every) => {}
        }
        let (eps, rps) = rates.step(&metrics);
        let line = replay_line(&metrics, rps, eps);
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}
