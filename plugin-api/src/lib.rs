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
//! ```no_run
//! use azlog_plugin_api::{export_sink_plugin, BatchReport, Record, Sink, SinkError};
//! use serde::Deserialize;
//!
//! struct Stdout {
//!     prefix: String,
//! }
//!
//! impl Sink for Stdout {
//!     fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
//!         for r in records {
//!             println!("{}{}", self.prefix, r.original);
//!         }
//!         Ok(BatchReport::all_accepted(records.len()))
//!     }
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     #[serde(default)]
//!     prefix: String,
//! }
//!
//! /// Parses and validates the settings; never connects (check-config runs it alone).
//! fn settings(config: serde_json::Value) -> Result<Settings, SinkError> {
//!     azlog_plugin_api::settings::parse(config)
//!         .map_err(|e| SinkError::permanent(format!("stdout sink settings: {e}")))
//! }
//!
//! /// Builds the sink from checked settings (connects, opens files ...).
//! fn open(s: Settings) -> Result<Stdout, SinkError> {
//!     Ok(Stdout { prefix: s.prefix })
//! }
//!
//! export_sink_plugin!(
//!     name: "stdout",
//!     version: env!("CARGO_PKG_VERSION"),
//!     settings: settings,
//!     open: open,
//! );
//! ```
//!
//! Build it as a `cdylib` against an `azlog-plugin-api` of the host's ABI major version
//! ([`ABI_VERSION`]) and drop the `.so`/`.dll`/`.dylib` into the host's plugin directory.
//!
//! # Checking settings without connecting (ABI 2.1)
//!
//! The root module's [`SinkPlugin::check`] validates a sink's settings exactly as `open`
//! would, without connecting: `azlog-hub check-config` calls it for every `[[sink]]`. With the
//! `settings:` form above the macro builds `check` from the same parser `open` uses, so the
//! two cannot disagree. Put in that parser everything that can fail without a connection:
//! unknown keys (`deny_unknown_fields`), types and ranges ([`settings::parse`] names the key
//! of a bad value), files the settings name (read them), secrets from `_env` / `_file`
//! (resolve them; never put their values in messages). Leave connecting, creating files and
//! logging "opened" to `open`. See [`export_sink_plugin!`] for the other two forms.
//!
//! # ABI versions
//!
//! A host loads plugins of its own ABI major version. Minor versions add fields at the end
//! of [`SinkPlugin`] (after `open`, its last prefix field): a 2.2 host loads 2.0.x and 2.1.x
//! plugins (checking them against [`module::v2_0::SinkPlugin`] or [`module::v2_1::SinkPlugin`],
//! since abi_stable refuses a root module with fewer fields than the host's type) and treats
//! them as having no `check` (2.0) and no `path_keys` (2.0, 2.1); an older 2.x host loads
//! newer plugins and ignores the fields it does not know.
//!
//! # Paths in settings (ABI 2.2)
//!
//! List the settings that hold file paths with `paths: ["path", "tls.ca_file"]` in
//! [`export_sink_plugin!`]: the host makes a relative path at those keys absolute against the
//! configuration file's folder before your `settings`, `open` or `check` see it, so the
//! operator's relative paths mean the same in every key of the configuration file.
pub mod byte_search;
pub mod ecs;
mod ecs_skeleton;
mod ecs_transitions;
pub mod export;
pub mod ffi_sink;
pub mod module;
pub mod record;
pub mod set_table;
pub mod settings;
mod short_copy;
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
