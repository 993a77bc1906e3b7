//! One sink: filter, batch, deliver through the plugin, retry, restart, report.
//!
//! # Delivery semantics (what the caller acks and dead-letters)
//!
//! Each delivered batch yields a [`BatchOutcome`] holding the batch's records in order:
//!
//! * **accepted** — every record before `undelivered.from` (or all, when `undelivered` is
//!   `None`) that is not in `rejected`: the caller may ack it for this sink;
//! * **rejected** — refused permanently by the destination, or a record the plugin panics on
//!   every time: the caller dead-letters it (with the reason) and then acks it;
//! * **undelivered** — the tail from `undelivered.from` could not be delivered because the
//!   sink failed permanently (it is now *parked*: later batches come straight back
//!   undelivered), retries were exhausted (`retry.max_attempts`), or shutdown was requested
//!   during a retry wait. The caller must **not** ack these; they are re-read after restart.
//!
//! Retryable errors are retried with exponential backoff and jitter, resending only the part
//! of the batch the plugin did not handle. A plugin panic closes and re-opens the sink and
//! resends; if the same batch panics twice, the rest of the batch goes one record at a time
//! and a record that panics on its own is rejected as a poison record.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abi_stable::std_types::{RResult, RSlice};
use azlog_plugin_api::sink::SinkBox;
use azlog_plugin_api::{BatchReport, ErrorKind, Health, Record, SinkError, Value};

use super::backoff;
use super::config::{BatchConfig, RetryConfig, SinkConfig};
use super::filter::RecordFilter;
use super::loader::{LoadedPlugin, PluginRegistry};

/// Host-side errors (configuration, unknown plugin).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A `[[sink]]` table is invalid.
    #[error("sink `{sink}`: {message}")]
    Config {
        /// The sink's name (empty when the file did not parse).
        sink: String,
        /// What is wrong.
        message: String,
    },
    /// The sink names a plugin that is not loaded.
    #[error(
        "sink `{sink}`: no plugin named `{plugin}` in the plugin directory (loaded: {loaded})"
    )]
    UnknownPlugin {
        /// The sink.
        sink: String,
        /// The plugin it asked for.
        plugin: String,
        /// The plugins that are loaded.
        loaded: String,
    },
    /// The plugin refused to open the sink.
    #[error("sink `{sink}` (plugin `{plugin}`) failed to open: {error}")]
    Open {
        /// The sink.
        sink: String,
        /// Its plugin.
        plugin: String,
        /// The plugin's error.
        error: SinkError,
    },
}

/// A record the sink refused for good.
#[derive(Clone, Debug, PartialEq)]
pub struct RejectedRecord {
    /// Index into [`BatchOutcome::records`].
    pub index: usize,
    /// Why (for the dead-letter entry).
    pub reason: String,
}

/// The tail of a batch that was not delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct Undelivered {
    /// First undelivered index; every record from here on is undelivered.
    pub from: usize,
    /// Why.
    pub reason: String,
    /// True when the sink is parked (permanent error), false for exhausted retries or
    /// shutdown.
    pub sink_parked: bool,
}

/// What happened to one batch. See the module docs.
#[derive(Debug)]
pub struct BatchOutcome {
    /// The sink's name.
    pub sink: String,
    /// The batch, in delivery order.
    pub records: Vec<Record>,
    /// Permanently refused records (ascending index).
    pub rejected: Vec<RejectedRecord>,
    /// The undelivered tail, if any.
    pub undelivered: Option<Undelivered>,
    /// `write_batch` calls made for this batch.
    pub attempts: u32,
    /// Sink restarts (after panics) while delivering this batch.
    pub restarts: u32,
}

impl BatchOutcome {
    /// Indexes of accepted records (ackable for this sink).
    pub fn accepted_indices(&self) -> Vec<usize> {
        let end = self
            .undelivered
            .as_ref()
            .map_or(self.records.len(), |u| u.from);
        let mut rej = self.rejected.iter().map(|r| r.index).peekable();
        let mut out = Vec::with_capacity(end);
        for i in 0..end {
            if rej.peek() == Some(&i) {
                rej.next();
                continue;
            }
            out.push(i);
        }
        out
    }

    /// True when every record was accepted or rejected (nothing undelivered).
    pub fn is_complete(&self) -> bool {
        self.undelivered.is_none()
    }
}

/// What [`SinkHost::offer`] did with a record.
#[derive(Debug)]
pub enum Offered {
    /// The sink's filter does not want it; the record is handed back (it counts as done for
    /// this sink).
    Filtered(Record),
    /// Queued for the next batch.
    Queued,
    /// Queued, and the batch was full, so it was delivered.
    Delivered(BatchOutcome),
}

/// Counters of one sink since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Batches delivered (outcomes produced).
    pub batches: u64,
    /// Records accepted.
    pub accepted: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Records returned undelivered.
    pub undelivered: u64,
    /// Retries after retryable errors.
    pub retries: u64,
    /// Panics caught in the plugin.
    pub panics: u64,
    /// Sink restarts (close + open).
    pub restarts: u64,
}

enum State {
    Running,
    Parked(String),
}

/// One configured sink, driven synchronously by its owner thread.
pub struct SinkHost {
    name: String,
    plugin: Arc<LoadedPlugin>,
    settings_json: String,
    filter: RecordFilter,
    batch: BatchConfig,
    retry: RetryConfig,
    sink: Option<SinkBox>,
    pending: Vec<Record>,
    pending_bytes: usize,
    oldest: Option<Instant>,
    state: State,
    stats: SinkStats,
    shutdown: Arc<AtomicBool>,
    /// `stats.retries`, readable from other threads while a batch is being retried.
    live_retries: Arc<AtomicU64>,
}

impl SinkHost {
    /// Resolves the sink's plugin in `registry` and opens the sink.
    pub fn new(config: &SinkConfig, registry: &PluginRegistry) -> Result<SinkHost, HostError> {
        config.validate()?;
        let plugin = registry
            .get(&config.plugin)
            .ok_or_else(|| HostError::UnknownPlugin {
                sink: config.name.clone(),
                plugin: config.plugin.clone(),
                loaded: registry.names().join(", "),
            })?;
        Self::with_plugin(config, plugin)
    }

    /// Opens the sink with an already resolved plugin.
    pub fn with_plugin(
        config: &SinkConfig,
        plugin: Arc<LoadedPlugin>,
    ) -> Result<SinkHost, HostError> {
        config.validate()?;
        let settings_json = config.settings_json_for(&plugin.path_keys);
        let sink = plugin
            .open(&settings_json)
            .map_err(|error| HostError::Open {
                sink: config.name.clone(),
                plugin: plugin.name.clone(),
                error,
            })?;
        tracing::info!(sink = %config.name, plugin = %plugin.name, "sink opened");
        Ok(SinkHost {
            name: config.name.clone(),
            plugin,
            settings_json,
            filter: RecordFilter::new(&config.filter),
            batch: config.batch.clone(),
            retry: config.retry.clone(),
            sink: Some(sink),
            pending: Vec::new(),
            pending_bytes: 0,
            oldest: None,
            state: State::Running,
            stats: SinkStats::default(),
            shutdown: Arc::new(AtomicBool::new(false)),
            live_retries: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Setting this flag cuts retry waits short: the batch comes back with its tail
    /// undelivered (reason "shutdown").
    pub fn shutdown_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shutdown)
    }

    /// The retry counter, updated during a batch's retries (so `/metrics` shows a sink that is
    /// retrying while its worker is busy with it).
    pub fn retry_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.live_retries)
    }

    /// Counters so far.
    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// True when the sink's filter wants the record.
    pub fn wants(&self, record: &Record) -> bool {
        self.filter.matches(record)
    }

    /// Number of records waiting for the next batch.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Filters and queues a record; delivers the batch when a count/byte limit is reached.
    pub fn offer(&mut self, record: Record) -> Offered {
        if !self.filter.matches(&record) {
            return Offered::Filtered(record);
        }
        self.pending_bytes += estimated_size(&record);
        self.pending.push(record);
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        if self.pending.len() >= self.batch.max_records
            || self.pending_bytes >= self.batch.max_bytes
        {
            Offered::Delivered(self.deliver_pending())
        } else {
            Offered::Queued
        }
    }

    /// When the pending batch must be delivered (its linger time), if there is one.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.oldest
            .map(|t| t + Duration::from_millis(self.batch.linger_ms))
    }

    /// Delivers the pending batch if its linger time has passed at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<BatchOutcome> {
        match self.next_deadline() {
            Some(d) if now >= d && !self.pending.is_empty() => Some(self.deliver_pending()),
            _ => None,
        }
    }

    /// Delivers whatever is pending, then asks the plugin to flush (make accepted records
    /// durable). Returns the outcome of the pending batch (if any) and the flush result.
    pub fn flush(&mut self) -> (Option<BatchOutcome>, Result<(), SinkError>) {
        let outcome = (!self.pending.is_empty()).then(|| self.deliver_pending());
        let flushed = match (&self.state, self.sink.as_mut()) {
            (State::Parked(reason), _) => {
                Err(SinkError::permanent(format!("sink parked: {reason}")))
            }
            (State::Running, None) => Err(SinkError::retryable("sink is not open")),
            (State::Running, Some(sink)) => sink.flush().into_result(),
        };
        if let Err(e) = &flushed {
            if e.kind == ErrorKind::Panicked {
                self.stats.panics += 1;
                self.restart();
            }
        }
        (outcome, flushed)
    }

    /// The plugin's health, or failed when the sink is parked.
    pub fn health(&self) -> Health {
        match (&self.state, &self.sink) {
            (State::Parked(reason), _) => Health::failed(format!("parked: {reason}")),
            (State::Running, None) => Health::degraded("sink is being re-opened"),
            (State::Running, Some(sink)) => sink.health(),
        }
    }

    /// Delivers what is pending, flushes and closes the sink.
    pub fn close(mut self) -> (Option<BatchOutcome>, Result<(), SinkError>) {
        let (outcome, flushed) = self.flush();
        let closed = match self.sink.take() {
            Some(mut sink) => match sink.close() {
                RResult::ROk(()) => Ok(()),
                RResult::RErr(e) => Err(e),
            },
            None => Ok(()),
        };
        tracing::info!(sink = %self.name, stats = ?self.stats, "sink closed");
        (outcome, flushed.and(closed))
    }

    /// Delivers a batch right away (bypassing the filter and the pending queue).
    pub fn deliver(&mut self, records: Vec<Record>) -> BatchOutcome {
        let outcome = self.run_delivery(records);
        self.stats.batches += 1;
        self.stats.rejected += outcome.rejected.len() as u64;
        let undelivered = outcome
            .undelivered
            .as_ref()
            .map_or(0, |u| outcome.records.len() - u.from);
        self.stats.undelivered += undelivered as u64;
        self.stats.accepted +=
            (outcome.records.len() - undelivered - outcome.rejected.len()) as u64;
        outcome
    }

    fn deliver_pending(&mut self) -> BatchOutcome {
        let records = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        self.oldest = None;
        self.deliver(records)
    }

    fn run_delivery(&mut self, records: Vec<Record>) -> BatchOutcome {
        let mut out = BatchOutcome {
            sink: self.name.clone(),
            records,
            rejected: Vec::new(),
            undelivered: None,
            attempts: 0,
            restarts: 0,
        };
        let len = out.records.len();
        let mut start = 0usize;
        let mut failures = 0u32; // consecutive failed attempts without progress
        let mut batch_panics = 0u32;
        let mut one_by_one = false;
        while start < len {
            if let State::Parked(reason) = &self.state {
                out.undelivered = Some(Undelivered {
                    from: start,
                    reason: format!("sink parked: {reason}"),
                    sink_parked: true,
                });
                break;
            }
            let end = if one_by_one { start + 1 } else { len };
            let result = self.call_write(&out.records[start..end]);
            out.attempts += 1;
            let error = match result {
                Ok(report) => {
                    let handled = report.handled as usize;
                    for r in report.rejected.iter() {
                        let index = start + r.index as usize;
                        tracing::warn!(sink = %self.name, index, reason = %r.reason, "record rejected by sink");
                        out.rejected.push(RejectedRecord {
                            index,
                            reason: r.reason.to_string(),
                        });
                    }
                    start += handled;
                    if handled > 0 {
                        failures = 0;
                    }
                    report.tail_error.into_option()
                }
                Err(e) => Some(e),
            };
            let Some(error) = error else {
                continue;
            };
            if start >= len {
                break;
            }
            match error.kind {
                ErrorKind::Permanent => {
                    tracing::error!(sink = %self.name, error = %error.message, "sink failed permanently; parking it");
                    self.state = State::Parked(error.message.to_string());
                }
                ErrorKind::Panicked => {
                    self.stats.panics += 1;
                    batch_panics += 1;
                    tracing::error!(sink = %self.name, error = %error.message, "sink plugin panicked; restarting it");
                    if one_by_one {
                        out.rejected.push(RejectedRecord {
                            index: start,
                            reason: format!("poison record: {}", error.message),
                        });
                        start += 1;
                    } else if batch_panics >= 2 {
                        one_by_one = true;
                    }
                    self.restart();
                    out.restarts += 1;
                }
                ErrorKind::Retryable => {
                    failures += 1;
                    if self.retry.max_attempts != 0 && failures >= self.retry.max_attempts {
                        out.undelivered = Some(Undelivered {
                            from: start,
                            reason: format!("gave up after {failures} attempts: {}", error.message),
                            sink_parked: false,
                        });
                        break;
                    }
                    self.stats.retries += 1;
                    self.live_retries.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff::delay(&self.retry, failures);
                    tracing::warn!(sink = %self.name, error = %error.message, attempt = failures, wait_ms = wait.as_millis() as u64, "retryable sink error; backing off");
                    if !self.sleep_unless_shutdown(wait) {
                        out.undelivered = Some(Undelivered {
                            from: start,
                            reason: format!("shutdown while retrying: {}", error.message),
                            sink_parked: false,
                        });
                        break;
                    }
                }
            }
        }
        out.rejected.sort_by_key(|r| r.index);
        out
    }

    /// One `write_batch` call, opening the sink first if needed, with the report checked.
    fn call_write(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        if self.sink.is_none() {
            // A permanent open error parks the sink; anything else (including a panic in
            // `open`) is retried with backoff like any transient failure.
            let sink = self
                .plugin
                .open(&self.settings_json)
                .map_err(|e| match e.kind {
                    ErrorKind::Permanent => e,
                    _ => SinkError::retryable(format!("re-opening the sink failed: {}", e.message)),
                })?;
            self.sink = Some(sink);
            self.stats.restarts += 1;
            tracing::info!(sink = %self.name, "sink re-opened");
        }
        let sink = self
            .sink
            .as_mut()
            .ok_or_else(|| SinkError::retryable("sink is not open"))?;
        match sink.write_batch(RSlice::from_slice(records)) {
            RResult::ROk(report) => {
                check_report(&report, records.len()).map_err(|problem| {
                    SinkError::permanent(format!(
                        "plugin `{}` returned an invalid batch report: {problem}",
                        self.plugin.name
                    ))
                })?;
                Ok(report)
            }
            RResult::RErr(e) => Err(e),
        }
    }

    /// Closes (best effort) and drops the sink; the next call re-opens it.
    fn restart(&mut self) {
        if let Some(mut sink) = self.sink.take() {
            if let RResult::RErr(e) = sink.close() {
                tracing::debug!(sink = %self.name, error = %e, "close after panic failed (expected for a poisoned sink)");
            }
        }
    }

    /// Sleeps in short steps; false when shutdown was requested.
    fn sleep_unless_shutdown(&self, total: Duration) -> bool {
        let deadline = Instant::now() + total;
        loop {
            if self.shutdown.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
        }
    }
}

/// Checks a plugin's report against the contract.
fn check_report(report: &BatchReport, len: usize) -> Result<(), String> {
    let handled = report.handled as usize;
    if handled > len {
        return Err(format!("handled {handled} of a {len}-record batch"));
    }
    if report.tail_error.is_none() && handled != len {
        return Err(format!(
            "handled {handled} of {len} records without a tail error"
        ));
    }
    let mut prev: Option<u64> = None;
    for r in report.rejected.iter() {
        if r.index >= report.handled {
            return Err(format!(
                "rejected index {} is not below handled {handled}",
                r.index
            ));
        }
        if prev.is_some_and(|p| p >= r.index) {
            return Err("rejected indexes are not strictly ascending".into());
        }
        prev = Some(r.index);
    }
    Ok(())
}

/// Rough in-memory size of a record, for `batch.max_bytes`.
pub fn estimated_size(r: &Record) -> usize {
    let fields: usize = r
        .fields
        .iter()
        .map(|f| {
            f.key.len()
                + match &f.value {
                    Value::Str(s) | Value::Json(s) => s.len(),
                    Value::List(items) => items.iter().map(|s| s.len() + 1).sum(),
                    _ => 8,
                }
        })
        .sum();
    64 + r.original.len() + fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::{ROption, RVec};
    use azlog_plugin_api::Rejection;

    #[test]
    fn report_contract_is_enforced() {
        assert!(check_report(&BatchReport::all_accepted(3), 3).is_ok());
        assert!(check_report(&BatchReport::all_accepted(4), 3).is_err());
        let short = BatchReport {
            handled: 2,
            rejected: RVec::new(),
            tail_error: ROption::RNone,
        };
        assert!(check_report(&short, 3).is_err());
        let bad_idx =
            BatchReport::partial(1, vec![Rejection::new(1, "x")], SinkError::retryable("r"));
        assert!(check_report(&bad_idx, 3).is_err());
        let ok =
            BatchReport::with_rejections(3, vec![Rejection::new(2, "b"), Rejection::new(0, "a")]);
        assert!(check_report(&ok, 3).is_ok());
        let dup =
            BatchReport::with_rejections(3, vec![Rejection::new(1, "b"), Rejection::new(1, "a")]);
        assert!(check_report(&dup, 3).is_err());
    }

    #[test]
    fn accepted_indices_skip_rejected_and_undelivered() {
        let o = BatchOutcome {
            sink: "s".into(),
            records: vec![Record::default(); 6],
            rejected: vec![
                RejectedRecord {
                    index: 1,
                    reason: "x".into(),
                },
                RejectedRecord {
                    index: 3,
                    reason: "y".into(),
                },
            ],
            undelivered: Some(Undelivered {
                from: 5,
                reason: "z".into(),
                sink_parked: false,
            }),
            attempts: 1,
            restarts: 0,
        };
        assert_eq!(o.accepted_indices(), vec![0, 2, 4]);
        assert!(!o.is_complete());
    }
}
