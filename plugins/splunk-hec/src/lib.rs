//! azlog-sink-splunk-hec: sends records to a Splunk HTTP Event Collector.
//!
//! * `POST <url>/services/collector/event` with `Authorization: Splunk <token>` and an
//!   `X-Splunk-Request-Channel` GUID; events are batched back to back (HEC's concatenated
//!   JSON), gzip-compressed by default, and cut into requests by `max_request_bytes` and
//!   `max_events_per_request`. Event encoding (time, sourcetype per dataset, index, source,
//!   host, indexed fields, oversize policy) is `azlog_codecs::hec`.
//! * Indexer acknowledgement (`ack = true`): each request's `ackId` is polled on
//!   `/services/collector/ack` until true; a request not acknowledged within
//!   `ack_timeout_ms` is resent (`ack_resends` times, then a retryable error). Resending is
//!   at-least-once: Splunk may index a resent request twice.
//! * `400` with `invalid-event-number` (codes 6, 12, 13, 15): the events before it were
//!   accepted, the bad record is rejected (dead-lettered by the host), the rest is resent.
//! * `503`/`500`, codes 8, 9, 18–20, 429 and transport errors: retryable (the host backs off).
//! * `401`/`403` and codes 1–4: permanent, with a message naming the token problem (never
//!   the token). Code 7 (index), 10/11/14 (channel/ack), 413: permanent, with the setting
//!   to fix.
//!
//! Settings: `url` (required), one of `token`/`token_env`/`token_file`, `index`, `source`
//! (default `azlog-hub`), `host` or `host_field`, `sourcetype` (force one), `sourcetypes_file`,
//! `event` (`original`|`ecs`), `include_original`, `gzip` (true), `max_event_bytes`
//! (1000000), `oversize` (`truncate`|`split`|`reject`), `max_request_bytes` (1000000),
//! `max_events_per_request` (500), `ack` (false), `channel`, `ack_timeout_ms` (30000),
//! `ack_poll_interval_ms` (500), `ack_resends` (1), `timeout_ms` (30000), `ca_file`.
mod client;
mod hec_sink;
mod settings;

use azlog_plugin_api::{export_sink_plugin, SinkError};

use hec_sink::HecSink;
use settings::{Checked, Settings};

/// Opens the sink from settings [`Settings::check`] accepted (the root module's `check` runs
/// that same function alone).
fn open_checked(checked: Checked) -> Result<HecSink, SinkError> {
    HecSink::open(checked)
}

/// `open` as the root module runs it: check, then open.
#[cfg(test)]
fn open(config: serde_json::Value) -> Result<HecSink, SinkError> {
    open_checked(Settings::check(config)?)
}

export_sink_plugin!(
    name: "splunk-hec",
    version: env!("CARGO_PKG_VERSION"),
    settings: Settings::check,
    open: open_checked,
    paths: ["token_file", "sourcetypes_file", "ca_file"],
);

#[cfg(test)]
mod tests;
