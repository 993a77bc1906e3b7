//! Counters and gauges of a running pipeline, readable at any time (progress lines, the
//! Prometheus `/metrics` endpoint, the final summary).
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::dead_letters::DeadLetters;
use super::partition_state::PartitionState;

/// Counters of one sink.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Sink name.
    pub name: String,
    /// Records the sink accepted.
    pub accepted: AtomicU64,
    /// Records the sink refused permanently (dead-lettered).
    pub rejected: AtomicU64,
    /// Records left undelivered (parked sink, exhausted retries, shutdown).
    pub undelivered: AtomicU64,
    /// Batches delivered.
    pub batches: AtomicU64,
    /// Retries after retryable errors (as of the last delivered batch).
    pub retries: AtomicU64,
    /// The sink's own retry counter, live during a batch's retries (set when the worker starts).
    pub live_retries: std::sync::OnceLock<Arc<AtomicU64>>,
    /// Plugin restarts after panics.
    pub restarts: AtomicU64,
    /// The sink is parked (failed permanently).
    pub parked: AtomicBool,
}

/// Everything counted by one pipeline run.
#[derive(Debug)]
pub struct Metrics {
    /// Events read from the source.
    pub events: AtomicU64,
    /// Event body bytes read.
    pub bytes: AtomicU64,
    /// Records mapped.
    pub records: AtomicU64,
    /// Mapping jobs run (one per batch of events that were waiting together).
    pub map_jobs: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// Checkpoint writes that failed.
    pub checkpoint_errors: AtomicU64,
    /// Readers are attached (all partitions started).
    pub ready: AtomicBool,
    /// A fatal error stopped (or is stopping) the pipeline.
    pub failed: AtomicBool,
    /// Per sink.
    pub sinks: Vec<Arc<SinkMetrics>>,
    /// Per partition (filled when the run starts).
    pub partitions: Mutex<Vec<Arc<PartitionState>>>,
    /// Dead letters.
    pub dead: Arc<DeadLetters>,
}

impl Metrics {
    /// Zeroed counters for the named sinks.
    pub fn new(sink_names: &[String], dead: Arc<DeadLetters>) -> Self {
        Metrics {
            events: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            records: AtomicU64::new(0),
            map_jobs: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_errors: AtomicU64::new(0),
            ready: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            sinks: sink_names
                .iter()
                .map(|n| {
                    Arc::new(SinkMetrics {
                        name: n.clone(),
                        ..Default::default()
                    })
                })
                .collect(),
            partitions: Mutex::new(Vec::new()),
            dead,
        }
    }

    /// The partitions of the run.
    pub fn partitions(&self) -> Vec<Arc<PartitionState>> {
        self.partitions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let r = Ordering::Relaxed;
        let mut s = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, v: u64| {
            write_family(&mut s, name, "counter", help);
            let _ = writeln!(s, "{name} {v}");
        };
        counter(
            "azlog_events_received_total",
            "Events read from the source.",
            self.events.load(r),
        );
        counter(
            "azlog_event_bytes_received_total",
            "Event body bytes read from the source.",
            self.bytes.load(r),
        );
        counter(
            "azlog_records_mapped_total",
            "Records mapped to the canonical schema.",
            self.records.load(r),
        );
        counter(
            "azlog_map_jobs_total",
            "Mapping jobs run; each maps the events of a partition that were waiting together.",
            self.map_jobs.load(r),
        );
        counter(
            "azlog_checkpoints_written_total",
            "Checkpoints written.",
            self.checkpoints.load(r),
        );
        counter(
            "azlog_checkpoint_errors_total",
            "Checkpoint writes that failed.",
            self.checkpoint_errors.load(r),
        );
        write_family(
            &mut s,
            "azlog_dead_lettered_total",
            "counter",
            "Records written to the dead-letter store.",
        );
        for (stage, v) in [
            ("envelope", &self.dead.envelope),
            ("map", &self.dead.map),
            ("sink", &self.dead.sink),
        ] {
            let _ = writeln!(
                s,
                "azlog_dead_lettered_total{{stage=\"{stage}\"}} {}",
                v.load(r)
            );
        }
        type Field = fn(&SinkMetrics) -> &AtomicU64;
        let sink_counters: [(&str, &str, Field); 5] = [
            (
                "azlog_sink_records_sent_total",
                "Records accepted by the sink.",
                |m| &m.accepted,
            ),
            (
                "azlog_sink_records_rejected_total",
                "Records the sink refused permanently (dead-lettered).",
                |m| &m.rejected,
            ),
            (
                "azlog_sink_records_failed_total",
                "Records the sink could not deliver (parked, retries exhausted, shutdown).",
                |m| &m.undelivered,
            ),
            (
                "azlog_sink_batches_total",
                "Batches delivered to the sink.",
                |m| &m.batches,
            ),
            (
                "azlog_sink_retries_total",
                "Retries after retryable sink errors.",
                |m| m.live_retries.get().map_or(&m.retries, |c| c.as_ref()),
            ),
        ];
        for (name, help, get) in sink_counters {
            write_family(&mut s, name, "counter", help);
            for m in &self.sinks {
                let _ = writeln!(
                    s,
                    "{name}{{sink=\"{}\"}} {}",
                    escape(&m.name),
                    get(m).load(r)
                );
            }
        }
        let parts = self.partitions();
        let now_ns = azlog_mapper::deadletter::now_ns();
        type Gauge = fn(&PartitionState, i64) -> Option<i64>;
        let gauges: [(&str, &str, Gauge); 5] = [
            ("azlog_partition_events_total", "Events read from the partition.", |p, _| {
                Some(p.events.load(Ordering::Relaxed) as i64)
            }),
            ("azlog_partition_last_sequence", "Sequence number of the last event read.", |p, _| {
                Some(p.last_sequence.load(Ordering::Relaxed))
            }),
            ("azlog_partition_checkpoint_sequence", "Sequence number of the last checkpoint written.", |p, _| {
                Some(p.checkpoint_sequence.load(Ordering::Relaxed))
            }),
            ("azlog_partition_lag_events", "Newest sequence number in the partition minus the last one read.", |p, _| {
                let end = p.end_sequence.load(Ordering::Relaxed);
                (end >= 0).then(|| (end - p.last_sequence.load(Ordering::Relaxed)).max(0))
            }),
            ("azlog_partition_lag_seconds", "Enqueued time of the newest event in the partition minus that of the last event read.", |p, _| {
                let end = p.end_enqueued_ns.load(Ordering::Relaxed);
                let last = p.last_enqueued_ns.load(Ordering::Relaxed);
                (end > 0 && last > 0).then(|| ((end - last).max(0)) / 1_000_000_000)
            }),
        ];
        for (name, help, get) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            write_family(&mut s, name, kind, help);
            for p in &parts {
                if let Some(v) = get(p, now_ns) {
                    let _ = writeln!(s, "{name}{{partition=\"{}\"}} {v}", escape(&p.id));
                }
            }
        }
        write_family(
            &mut s,
            "azlog_partition_in_flight_events",
            "gauge",
            "Events read but not yet acknowledged by every sink.",
        );
        for p in &parts {
            let _ = writeln!(
                s,
                "azlog_partition_in_flight_events{{partition=\"{}\"}} {}",
                escape(&p.id),
                p.in_flight()
            );
        }
        s
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family (`kind`: `counter` or `gauge`).
pub(crate) fn write_family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A Prometheus label value, escaped.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
