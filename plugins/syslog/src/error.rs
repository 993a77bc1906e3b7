//! Transport errors, classified by whether retrying can help.

/// A syslog transport error.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    /// Invalid settings: retrying will not help.
    #[error("syslog configuration: {0}")]
    Config(String),
    /// TLS setup or certificate verification failed: retrying will not help until fixed.
    #[error("syslog TLS: {0}")]
    Tls(String),
    /// Network failure (connect, write, timeout, peer closed): retry with backoff.
    #[error("syslog {context}: {source}")]
    Io {
        /// What was being done (`connect to 10.0.0.1:6514`, `write`, …).
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A reconnect is not due yet.
    #[error("syslog: waiting {wait_ms} ms before reconnecting to {target} (last error: {last})")]
    Backoff {
        /// The receiver.
        target: String,
        /// Time left before the next attempt.
        wait_ms: u64,
        /// The error that started the backoff.
        last: String,
    },
}

impl SyslogError {
    /// True when retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SyslogError::Io { .. } | SyslogError::Backoff { .. })
    }
}
