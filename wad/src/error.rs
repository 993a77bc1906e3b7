//! Errors of the Table client and the poller.

/// An error talking to the Table service.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The service answered with an error status.
    #[error("{operation}: HTTP {status} {code}: {message}")]
    Service {
        /// What was attempted (`query WADWindowsEventLogsTable`, `insert entity`, ...).
        operation: String,
        /// HTTP status.
        status: u16,
        /// The storage error code (`ServerBusy`, `OperationTimedOut`, `TableNotFound`, ...),
        /// empty when the body had none.
        code: String,
        /// The service's message (first line), empty when none.
        message: String,
    },
    /// The request did not complete (connect, timeout, reset, body read).
    #[error("{operation}: {source}")]
    Transport {
        /// What was attempted.
        operation: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The response was not the JSON the protocol promises.
    #[error("{operation}: unexpected response: {reason}")]
    Protocol {
        /// What was attempted.
        operation: String,
        /// What was wrong.
        reason: String,
    },
    /// The request could not be built or signed (bad table name, bad header value).
    #[error("{operation}: {reason}")]
    Request {
        /// What was attempted.
        operation: String,
        /// What was wrong.
        reason: String,
    },
}

impl TableError {
    /// Whether trying again later may succeed: throttling (503 `ServerBusy`), server
    /// timeouts (500 `OperationTimedOut`, 504), other 5xx, 408, 429 and transport failures.
    /// Authorization, missing tables and bad requests are not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            TableError::Service { status, .. } => {
                matches!(*status, 408 | 429) || (500..600).contains(status)
            }
            TableError::Transport { .. } => true,
            TableError::Protocol { .. } | TableError::Request { .. } => false,
        }
    }

    /// HTTP status, when the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            TableError::Service { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The storage error code, when the service answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            TableError::Service { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }
}

/// A watermark store failure.
#[derive(Debug, thiserror::Error)]
#[error("watermark store: {0}")]
pub struct StoreError(pub String);
