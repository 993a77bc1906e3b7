//! The sink host: loads sink plugins (`.so`/`.dll`/`.dylib`) from the plugin directory and
//! drives one [`SinkHost`] per configured `[[sink]]`.
//!
//! * [`loader`] — plugin discovery and loading: refuses world-writable directories and files,
//!   and plugins built against another ABI (naming the plugin file and both versions).
//! * [`config`] — the `[[sink]]` tables (name, plugin, filter, batch, retry, plugin settings).
//! * [`filter`] — which records a sink wants (datasets, categories, minimum severity).
//! * [`host`] — batching, delivery, retries with backoff and jitter, restart after a plugin
//!   panic, and the per-batch [`BatchOutcome`] the caller acks and dead-letters from.
//! * [`backoff`] — exponential backoff with jitter.
//! * [`path_hint`] — what to say when a sink's relative path is only found beside the
//!   configuration file (plugins read it from the working directory).
//!
//! # Threading model
//!
//! The host API is synchronous and runtime-agnostic: plugin calls block (HTTP, fsync), so a
//! [`SinkHost`] belongs on its own thread (or inside `tokio::task::spawn_blocking`), fed by a
//! bounded channel from the router. The caller drives it with [`SinkHost::offer`],
//! [`SinkHost::poll`] at [`SinkHost::next_deadline`], [`SinkHost::flush`] and
//! [`SinkHost::close`]; every delivered batch comes back as a [`BatchOutcome`]. Retry sleeps
//! happen on that thread and can be cut short with the shutdown flag
//! ([`SinkHost::shutdown_flag`]).
pub mod backoff;
pub mod config;
pub mod filter;
pub mod host;
pub mod loader;
pub mod path_hint;

pub use config::{BatchConfig, FilterConfig, RetryConfig, SinkConfig, SinksFile};
pub use filter::RecordFilter;
pub use host::{
    BatchOutcome, HostError, Offered, RejectedRecord, SinkHost, SinkStats, Undelivered,
};
pub use loader::{LoadError, LoadedPlugin, PluginRegistry};
