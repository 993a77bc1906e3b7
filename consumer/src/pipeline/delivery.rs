//! What the pipeline needs from a sink: [`SinkHost`] (a loaded plugin) implements it, and so can
//! an in-process sink (the demo's renderers).
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Instant;

use azlog_plugin_api::{Record, SinkError};

use crate::sink_host::{BatchOutcome, Offered, SinkHost};

/// A batching sink driven by one sink worker thread. The contract is [`SinkHost`]'s: `offer`
/// queues (or hands back a filtered record), every delivered batch comes back as a
/// [`BatchOutcome`] holding the records in offer order.
pub trait DeliverySink: Send {
    /// The sink's name (dead letters use `sink:<name>`).
    fn name(&self) -> &str;
    /// Setting it cuts retry waits short.
    fn shutdown_flag(&self) -> Arc<AtomicBool>;
    /// When the pending batch must be delivered.
    fn next_deadline(&self) -> Option<Instant>;
    /// Queues a record; delivers when the batch is full.
    fn offer(&mut self, record: Record) -> Offered;
    /// Delivers the pending batch if its linger time passed.
    fn poll(&mut self, now: Instant) -> Option<BatchOutcome>;
    /// Delivers what is pending and makes accepted records durable.
    fn flush(&mut self) -> (Option<BatchOutcome>, Result<(), SinkError>);
    /// Delivers, flushes and closes.
    fn close(self: Box<Self>) -> (Option<BatchOutcome>, Result<(), SinkError>);
    /// Retries so far.
    fn retries(&self) -> u64 {
        0
    }
    /// Restarts so far.
    fn restarts(&self) -> u64 {
        0
    }
    /// A retry counter updated while a batch is being retried, if the sink has one.
    fn retry_counter(&self) -> Option<Arc<AtomicU64>> {
        None
    }
}

impl DeliverySink for SinkHost {
    fn name(&self) -> &str {
        SinkHost::name(self)
    }
    fn shutdown_flag(&self) -> Arc<AtomicBool> {
        SinkHost::shutdown_flag(self)
    }
    fn next_deadline(&self) -> Option<Instant> {
        SinkHost::next_deadline(self)
    }
    fn offer(&mut self, record: Record) -> Offered {
        SinkHost::offer(self, record)
    }
    fn poll(&mut self, now: Instant) -> Option<BatchOutcome> {
        SinkHost::poll(self, now)
    }
    fn flush(&mut self) -> (Option<BatchOutcome>, Result<(), SinkError>) {
        SinkHost::flush(self)
    }
    fn close(self: Box<Self>) -> (Option<BatchOutcome>, Result<(), SinkError>) {
        SinkHost::close(*self)
    }
    fn retries(&self) -> u64 {
        self.stats().retries
    }
    fn restarts(&self) -> u64 {
        self.stats().restarts
    }
    fn retry_counter(&self) -> Option<Arc<AtomicU64>> {
        Some(SinkHost::retry_counter(self))
    }
}
