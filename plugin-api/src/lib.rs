//! The stable ABI between the azlog-hub host and its sink plugins.
//!
//! `record` holds the canonical record every stage speaks; `sink` holds the sink interface
//! (the [`Sink`] trait plugin authors implement and its FFI-safe report and error types),
//! `module` the root module every plugin exports, and `export` the
//! [`export_sink_plugin!`] macro that ties them together and keeps panics on the plugin's
//! side of the boundary.
//!
//! # Writing a sink plugin
//!
//! ```ignore
//! use azlog_plugin_api::{export_sink_plugin, BatchReport, Health, Record, Sink, SinkError};
//!
//! struct Stdout;
//!
//! impl Sink for Stdout {
//!     fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
//!         for r in records {
//!             println!("{}", r.original);
//!         }
//!         Ok(BatchReport::all_accepted(records.len()))
//!     }
//! }
//!
//! fn open(config: serde_json::Value) -> Result<Stdout, SinkError> {
//!     Ok(Stdout)
//! }
//!
//! export_sink_plugin!(name: "stdout", version: env!("CARGO_PKG_VERSION"), open: open);
//! ```
//!
//! Build it as a `cdylib` against the same `azlog-plugin-api` ABI version as the host
//! ([`ABI_VERSION`]) and drop the `.so`/`.dll`/`.dylib` into the host's plugin directory.
pub mod ecs;
pub mod export;
pub mod ffi_sink;
pub mod module;
pub mod record;
pub mod settings;
pub mod sink;
pub mod text;

pub use module::{SinkPlugin, SinkPluginRef, ABI_VERSION};
pub use record::{Field, Position, Record, Value};
pub use sink::{BatchReport, ErrorKind, FfiSink, Health, HealthState, Rejection, Sink, SinkError};
pub use text::{intern, Text};

/// Re-exports the export macro needs; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
    pub use serde_json;
}
