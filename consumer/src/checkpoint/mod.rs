//! Checkpoint stores: where a partition's resume position is kept.
//!
//! A checkpoint is the **last processed** event of a partition (every record of it and of every
//! earlier event acked by all its sinks or dead-lettered, see [`crate::ack`]). Readers resume
//! **after** it, as the official SDK processors do.
//!
//! Stores:
//! * [`file::FileCheckpointStore`] — the embedded default, one JSON file per partition under the
//!   state directory, written atomically (temp file, fsync, rename, fsync dir).
//! * [`blob::BlobCheckpointStore`] — Azure Blob Storage in the official Event Hubs SDK layout, so
//!   azlog-hub and the official processors can resume from each other's checkpoints.
//! * [`memory::MemoryCheckpointStore`] — in-process, for tests and dry runs.
//!
//! [`ownership`] holds the partition ownership claims that let several consumers share a hub.
//!
//! [`cadence::Checkpointer`] decides *when* to write (every N events or T seconds).

pub mod blob;
mod blob_ownership;
pub mod cadence;
pub mod file;
pub mod memory;
pub mod ownership;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use blob::BlobCheckpointStore;
pub use cadence::{CheckpointCadence, Checkpointer};
pub use file::FileCheckpointStore;
pub use memory::MemoryCheckpointStore;
pub use ownership::{MemoryOwnershipStore, Ownership, OwnershipStore};

/// Identifies a consumer's checkpoints: namespace, hub and consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CheckpointKey {
    /// e.g. `mynamespace.servicebus.windows.net` (the emulator: `localhost`).
    pub fully_qualified_namespace: String,
    /// Event Hub name.
    pub hub: String,
    /// Consumer group, e.g. `$Default`.
    pub consumer_group: String,
}

impl CheckpointKey {
    /// Builds a key.
    pub fn new(
        fully_qualified_namespace: impl Into<String>,
        hub: impl Into<String>,
        consumer_group: impl Into<String>,
    ) -> Self {
        Self {
            fully_qualified_namespace: fully_qualified_namespace.into(),
            hub: hub.into(),
            consumer_group: consumer_group.into(),
        }
    }

    /// `<fqns>/<hub>/<cg>/ownership/`, lowercase (official SDK layout).
    pub fn ownership_prefix(&self) -> String {
        self.verbatim_prefix("ownership").to_lowercase()
    }

    /// `<fqns>/<hub>/<cg>/checkpoint/`, lowercase (official SDK layout).
    pub fn checkpoint_prefix(&self) -> String {
        self.verbatim_prefix("checkpoint").to_lowercase()
    }

    /// `<fqns>/<hub>/<cg>/<kind>/` in the case the names were given in: where the Go, Java and
    /// Rust SDK processors write (they do not lowercase).
    pub fn verbatim_prefix(&self, kind: &str) -> String {
        format!(
            "{}/{}/{}/{kind}/",
            self.fully_qualified_namespace, self.hub, self.consumer_group
        )
    }
}

/// The last processed position of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Partition id.
    pub partition: String,
    /// Event Hubs offset (opaque string); `None` when unknown (an empty stored offset reads as
    /// `None` — never resume from `> ''`).
    pub offset: Option<String>,
    /// Sequence number of the last processed event.
    pub sequence: i64,
    /// Enqueued time of that event, ns since the Unix epoch, when known (azlog-hub only; the
    /// official SDKs do not store it).
    pub enqueued_ns: Option<i64>,
}

/// Errors from checkpoint stores.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Filesystem error.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Transport error talking to storage (the URL is stripped: it may carry a SAS).
    #[error("{op} {blob}: {source}")]
    Http {
        /// Operation, e.g. "set metadata".
        op: &'static str,
        /// Blob or container name.
        blob: String,
        /// Underlying error.
        source: reqwest::Error,
    },
    /// Storage answered with an unexpected status.
    #[error("{op} {blob}: HTTP {status} {code}")]
    Status {
        /// Operation.
        op: &'static str,
        /// Blob or container name.
        blob: String,
        /// HTTP status.
        status: u16,
        /// `x-ms-error-code` (empty if absent).
        code: String,
    },
    /// A stored checkpoint could not be understood.
    #[error("invalid checkpoint {what}: {reason}")]
    Invalid {
        /// Which checkpoint.
        what: String,
        /// Why.
        reason: String,
    },
    /// Storage configuration/authorization problem.
    #[error("checkpoint store configuration: {0}")]
    Config(String),
}

/// A place to load and save checkpoints. Dyn-compatible: use as `Arc<dyn CheckpointStore>`.
#[async_trait]
pub trait CheckpointStore: Send + Sync + std::fmt::Debug {
    /// All checkpoints stored for `key` (any order).
    async fn list(&self, key: &CheckpointKey) -> Result<Vec<Checkpoint>, CheckpointError>;

    /// The checkpoint of one partition, if any.
    async fn load(
        &self,
        key: &CheckpointKey,
        partition: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError>;

    /// Stores (replaces) the checkpoint of `checkpoint.partition`.
    async fn save(
        &self,
        key: &CheckpointKey,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError>;

    /// Short human description for logs (never contains secrets).
    fn describe(&self) -> String;
}
