//! The sink interface: the [`Sink`] trait plugin authors implement, the FFI-safe
//! [`FfiSink`] trait object the host calls, and the report, error and health types that
//! cross the boundary.
//!
//! # Batch contract
//!
//! The host hands a plugin a batch as `&[Record]` (borrowed for the call, no copy, no
//! re-serialisation). The plugin answers with a [`BatchReport`]:
//!
//! * records `0..handled` were dealt with: each one is **accepted** (delivered, or durably
//!   taken over by the plugin) unless it is listed in `rejected`;
//! * `rejected` lists records the destination refused **permanently** (bad record, not a bad
//!   sink), each with its index in the batch and a reason; the host dead-letters them;
//! * if `handled < records.len()`, `tail_error` says why the remaining records were not
//!   handled and whether retrying them may help ([`ErrorKind::Retryable`]) or not
//!   ([`ErrorKind::Permanent`]: the sink is misconfigured or refused, the host parks it).
//!
//! A plugin that cannot take any of the batch returns `Err(SinkError)` instead, which is
//! the same as a report with `handled == 0`.
use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;

use crate::record::Record;

/// Whether an error is worth retrying.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Transient (timeouts, connection refused, HTTP 503): retry with backoff.
    Retryable = 0,
    /// Retrying will not help (bad credentials, unknown index, bad config). The host stops
    /// sending to the sink and reports the records as undelivered (not dead-lettered).
    Permanent = 1,
    /// The plugin panicked. Produced by the export macro, never by plugin code: the sink
    /// instance is poisoned and the host closes and re-opens it.
    Panicked = 2,
}

/// An error returned by a plugin.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct SinkError {
    /// Retryable, permanent, or a caught panic.
    pub kind: ErrorKind,
    /// Human-readable description. Must never contain secrets (tokens, passwords).
    pub message: RString,
}

impl SinkError {
    /// A transient error: the host retries with backoff.
    pub fn retryable(message: impl Into<String>) -> Self {
        SinkError {
            kind: ErrorKind::Retryable,
            message: RString::from(message.into()),
        }
    }

    /// A permanent error: the host parks the sink.
    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            kind: ErrorKind::Permanent,
            message: RString::from(message.into()),
        }
    }

    /// A caught panic (used by the export macro).
    pub fn panicked(message: impl Into<String>) -> Self {
        SinkError {
            kind: ErrorKind::Panicked,
            message: RString::from(message.into()),
        }
    }

    /// True for [`ErrorKind::Retryable`].
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ErrorKind::Retryable => "retryable",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Panicked => "panic",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for SinkError {}

/// One record the destination refused permanently.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Rejection {
    /// Index of the record in the batch passed to `write_batch`.
    pub index: u64,
    /// Why it was refused (goes into the dead-letter entry).
    pub reason: RString,
}

impl Rejection {
    /// A rejection of record `index` for `reason`.
    pub fn new(index: usize, reason: impl Into<String>) -> Self {
        Rejection {
            index: index as u64,
            reason: RString::from(reason.into()),
        }
    }
}

/// The outcome of one `write_batch` call. See the module docs for the contract.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct BatchReport {
    /// Records `0..handled` were dealt with (accepted unless rejected).
    pub handled: u64,
    /// Permanently refused records, by index (`< handled`), ascending.
    pub rejected: RVec<Rejection>,
    /// Why records `handled..` were not handled; `RNone` when `handled` is the batch size.
    pub tail_error: ROption<SinkError>,
}

impl BatchReport {
    /// Every one of `n` records accepted.
    pub fn all_accepted(n: usize) -> Self {
        BatchReport {
            handled: n as u64,
            rejected: RVec::new(),
            tail_error: ROption::RNone,
        }
    }

    /// All `n` records handled, the listed ones rejected.
    pub fn with_rejections(n: usize, mut rejected: Vec<Rejection>) -> Self {
        rejected.sort_by_key(|r| r.index);
        BatchReport {
            handled: n as u64,
            rejected: RVec::from(rejected),
            tail_error: ROption::RNone,
        }
    }

    /// The first `handled` records handled (some maybe rejected), the rest not, because of
    /// `error`.
    pub fn partial(handled: usize, mut rejected: Vec<Rejection>, error: SinkError) -> Self {
        rejected.sort_by_key(|r| r.index);
        BatchReport {
            handled: handled as u64,
            rejected: RVec::from(rejected),
            tail_error: ROption::RSome(error),
        }
    }

    /// How many records were accepted.
    pub fn accepted(&self) -> u64 {
        self.handled.saturating_sub(self.rejected.len() as u64)
    }
}

/// Coarse health of a sink.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Working.
    Healthy = 0,
    /// Working with problems (retrying, slow destination).
    Degraded = 1,
    /// Not working.
    Failed = 2,
}

/// Health reported by a sink, for `/health` and logs.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Health {
    /// The state.
    pub state: HealthState,
    /// A short explanation (empty when healthy).
    pub message: RString,
}

impl Health {
    /// Healthy, no message.
    pub fn healthy() -> Self {
        Health {
            state: HealthState::Healthy,
            message: RString::new(),
        }
    }

    /// Degraded, with a reason.
    pub fn degraded(message: impl Into<String>) -> Self {
        Health {
            state: HealthState::Degraded,
            message: RString::from(message.into()),
        }
    }

    /// Failed, with a reason.
    pub fn failed(message: impl Into<String>) -> Self {
        Health {
            state: HealthState::Failed,
            message: RString::from(message.into()),
        }
    }
}

/// What a plugin author implements: plain Rust, no FFI types, panics allowed (the export
/// macro turns them into [`ErrorKind::Panicked`] errors).
///
/// Every method is called from one host thread at a time (never concurrently).
pub trait Sink: Send + 'static {
    /// Delivers a batch. See the module docs for what the report must say.
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError>;

    /// Makes everything accepted so far durable (fsync, drain buffers). Called on the
    /// host's flush interval and before shutdown.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Current health; must be cheap (no network round trip required).
    fn health(&self) -> Health {
        Health::healthy()
    }

    /// Flushes and releases resources. No other method is called afterwards.
    fn close(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}

pub use crate::ffi_sink::{FfiSink, FfiSink_TO, SinkBox};
