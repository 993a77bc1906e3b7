//! Sources: where raw events come from. Each yields [`RawEvent`]s with their position.
pub mod eventhubs;

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
