//! Runs the compiled plan over one raw record and builds the canonical record.
use azlog_plugin_api::{Position, Record};

/// One raw record to map.
#[derive(Debug, Clone)]
pub struct MapInput<'a> {
    /// The record's JSON text (one object), already split from its envelope and sanitized.
    pub json: &'a str,
    /// Where it came from.
    pub position: Position,
    /// The source's enqueued time (Event Hubs `x-opt-enqueued-time`), ns since the epoch.
    pub enqueued_ns: Option<i64>,
}

/// Why a record could not be mapped (it then goes to the dead-letter store).
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("record is not a JSON object (found {0})")]
    NotAnObject(&'static str),
}

/// The compiled schema tables.
pub struct Mapper {}

impl Mapper {
    /// Maps one record. `ingested_ns` is the mapping time (`event.ingested`).
    pub fn map(&self, _input: MapInput<'_>, _ingested_ns: i64) -> Result<Record, MapError> {
        Err(MapError::NotAnObject("unimplemented"))
    }
}
