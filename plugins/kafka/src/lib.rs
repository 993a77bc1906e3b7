//! azlog-sink-kafka: writes records into Kafka (the Event Hubs → Kafka bridge), through an
//! idempotent librdkafka producer with `acks=all`. A batch is acknowledged to the host only
//! once the brokers acknowledged every record of it.
//!
//! Settings (the `[[sink]]` table's own keys):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `brokers` | required | `host:port[,host:port]` or a list |
//! | `topic` | `"{dataset}"` | topic template: `{dataset}` = `event.dataset`, `{category}` = `azure.category`, lower-cased, other characters → `_` (missing → `unknown`) |
//! | `key_field` | `"azure.resource.id"` | record field whose value is the message key |
//! | `key_fallback` | `"partition"` | key when `key_field` is missing: `"partition"` (the source partition id) or `"none"` |
//! | `format` | `"ecs"` | value: `"ecs"` (ECS JSON) or `"raw"` (the original Azure record JSON) |
//! | `include_original` | `true` | ECS only: include `event.original` |
//! | `headers` | `true` | add `azlog.source`, `azlog.partition`, `azlog.offset`, `azlog.sequence`, `azlog.index`, `azlog.dataset` |
//! | `client_id` | `"azlog-hub"` | librdkafka `client.id` |
//! | `compression` | `"none"` | `none`, `gzip`, `snappy`, `lz4`, `zstd` |
//! | `message_timeout_ms` | `30000` | a record not acknowledged within this time fails its batch (retryable) |
//! | `linger_ms` | `5` | librdkafka `linger.ms` |
//! | `queue_max_messages` / `queue_max_kbytes` | `100000` / `1048576` | librdkafka's producer queue bounds |
//! | `security_protocol` | `"plaintext"` | `plaintext`, `ssl`, `sasl_plaintext`, `sasl_ssl` |
//! | `sasl_mechanism` | `"PLAIN"` | `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` |
//! | `sasl_username` | | required with SASL (`$ConnectionString` for Event Hubs) |
//! | `sasl_password` / `sasl_password_env` / `sasl_password_file` | | the password, at most one form |
//! | `ssl_ca_file` / `ssl_cert_file` / `ssl_key_file` | system store / none | PEM files |
//! | `properties` | `{}` | any other librdkafka producer property; the delivery settings (`acks`, `enable.idempotence`, `message.timeout.ms`, ...) and secrets are refused here |
//!
//! Errors: a record the brokers refuse for good (too large, invalid) is reported rejected
//! (dead-lettered by the host); authorization failures are permanent (the host parks the
//! sink); everything else (brokers down, timeouts, leader changes) is retryable, and the
//! records from the first undelivered one on are retried by the host.
mod producer;
mod settings;
mod topic;

use azlog_plugin_api::{export_sink_plugin, SinkError};

pub use producer::KafkaSink;

/// Parses and checks the settings as both `check` and `open` see them: the keys, the
/// password resolved (`sasl_password_env` / `_file`), the TLS files readable, and every
/// librdkafka property accepted by librdkafka's own configuration parser. Creates no
/// producer, so nothing connects.
fn settings(config: serde_json::Value) -> Result<settings::Settings, SinkError> {
    let s = settings::Settings::from_json(config)?;
    s.client_config()?
        .create_native_config()
        .map_err(|e| settings::bad(format!("librdkafka refuses the configuration: {e}")))?;
    Ok(s)
}

fn open(settings: settings::Settings) -> Result<KafkaSink, SinkError> {
    KafkaSink::open(settings)
}

export_sink_plugin!(
    name: "kafka",
    version: env!("CARGO_PKG_VERSION"),
    settings: settings,
    open: open,
    paths: [
        "sasl_password_file",
        "ssl_ca_file",
        "ssl_cert_file",
        "ssl_key_file",
    ],
);

#[cfg(test)]
mod tests;
