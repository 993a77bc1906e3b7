//! Sources: where raw events come from. Each yields [`RawEvent`]s with their position.
//!
//! The pipeline (see [`crate::pipeline`]) only talks to the [`Source`] trait: a list of
//! partitions, their properties, and one [`PartitionReader`] per partition opened at a
//! [`StartFrom`] position. Implementations:
//!
//! * [`eventhubs::EventHubsSource`] — Azure Event Hubs over AMQP (official SDK);
//! * `kafka::KafkaSource` — any Kafka endpoint (feature `kafka`, on by default);
//! * [`memory::MemorySource`] — in-process partitions, for tests, with fault injection.
pub mod eventhubs;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;
pub mod position;
pub mod wad;

use async_trait::async_trait;

pub use position::{StartFrom, Until};

/// One event as a source delivers it: a body holding one or many records, and its position.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    /// The event body (an `{"records":[...]}` envelope, a bare record, NDJSON ...).
    pub body: Vec<u8>,
    /// Partition id.
    pub partition: String,
    /// Offset as the source spells it.
    pub offset: String,
    /// Sequence number (-1 when unknown).
    pub sequence: i64,
    /// Enqueued time, ns since the Unix epoch.
    pub enqueued_ns: Option<i64>,
}

/// What a source knows about one partition right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionInfo {
    /// Partition id.
    pub id: String,
    /// True when the partition holds no event.
    pub is_empty: bool,
    /// Sequence number of the oldest retained event.
    pub beginning_sequence: i64,
    /// Sequence number of the newest event (-1 when empty).
    pub last_sequence: i64,
    /// Offset of the newest event.
    pub last_offset: String,
    /// Enqueued time of the newest event, ns since the Unix epoch.
    pub last_enqueued_ns: Option<i64>,
}

/// Errors from a source. `retryable` says whether reconnecting may help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// What failed, with context (never a secret).
    pub message: String,
    /// True for link/connection/timeouts; false for "hub does not exist", "unauthorized".
    pub retryable: bool,
}

impl SourceError {
    /// A transient error (reconnect with backoff).
    pub fn retryable(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            retryable: true,
        }
    }

    /// An error reconnecting will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// An open reader on one partition.
#[async_trait]
pub trait PartitionReader: Send {
    /// The next event; `None` when the reader ended (link closed, stolen): the pipeline reopens
    /// it. An `Err` also ends the reader.
    async fn next(&mut self) -> Option<Result<RawEvent, SourceError>>;

    /// The next item if it is ready now, without waiting or starting any I/O: `Some(item)`
    /// with what [`PartitionReader::next`] would have returned, `None` when nothing is ready
    /// (or the reader cannot tell). The pipeline hands the events that are already waiting to
    /// one mapping job instead of one job each. The default never has one ready.
    fn try_next(&mut self) -> Option<Option<Result<RawEvent, SourceError>>> {
        None
    }

    /// Detaches from the partition.
    async fn close(self: Box<Self>);
}

/// A partitioned event source.
#[async_trait]
pub trait Source: Send + Sync {
    /// Names the source in record positions and logs (never a secret), e.g.
    /// `eventhubs:ns.servicebus.windows.net/hub/$Default`.
    fn describe(&self) -> String;

    /// Partition ids.
    async fn partitions(&self) -> Result<Vec<String>, SourceError>;

    /// Current properties of a partition.
    async fn partition_info(&self, partition: &str) -> Result<PartitionInfo, SourceError>;

    /// Opens a reader on `partition` starting at `start`.
    async fn open(
        &self,
        partition: &str,
        start: &StartFrom,
    ) -> Result<Box<dyn PartitionReader>, SourceError>;

    /// Releases connections (best effort).
    async fn close(&self) {}

    /// Appends the source's own counters to the `/metrics` page (Prometheus text format,
    /// `# HELP`/`# TYPE` lines included). Sources without counters of their own add nothing.
    fn write_metrics(&self, _out: &mut String) {}
}
