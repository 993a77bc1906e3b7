//! Rows → canonical records through the mapper (`windows.wad` / `windows.security` families),
//! or → dead letters with their reason. Nothing is dropped: malformed event XML (control
//! characters, truncation) still maps, with what could be read and the parser's note in
//! `azlog.parse_errors`; a row the mapper cannot read at all becomes a dead letter.
use azlog_mapper::deadletter::DeadLetter;
use azlog_mapper::{MapInput, Mapper, Position, Record, Value};

use crate::row::WadRow;

/// What a table adds to each of its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordExtras {
    /// Azure subscription id (`azure.subscription_id` and `cloud.account.id`), as AzLog's
    /// `NAME.SUBSCRIPTIONID` source names gave it.
    pub subscription_id: Option<String>,
}

/// The position of a row: source `wad:<account>/<table>`, partition = PartitionKey,
/// offset = RowKey, sequence -1.
pub fn position(source: &str, row: &WadRow) -> Position {
    Position {
        source: source.into(),
        partition: row.partition_key.as_str().into(),
        offset: row.row_key.as_str().into(),
        sequence: -1,
        index: 0,
    }
}

/// Maps one row. `Err` is the dead letter (stage `map`) to store.
pub fn map_row(
    mapper: &Mapper,
    source: &str,
    row: &WadRow,
    extras: &RecordExtras,
    ingested_ns: i64,
) -> Result<Record, Box<DeadLetter>> {
    let pos = position(source, row);
    let input = MapInput {
        json: &row.json,
        position: pos.clone(),
        enqueued_ns: row.stored_ns,
    };
    match mapper.map(input, ingested_ns) {
        Ok(mut record) => {
            if let Some(sub) = &extras.subscription_id {
                record.set("azure.subscription_id", Value::from(sub.as_str()));
                record.set("cloud.account.id", Value::from(sub.as_str()));
            }
            Ok(record)
        }
        Err(e) => Err(Box::new(DeadLetter::new(
            "map",
            &format!("WAD row {}/{}: {e}", row.partition_key, row.row_key),
            &pos,
            row.json.as_bytes(),
        ))),
    }
}

/// Maps every row of a batch; records in row order, dead letters aside.
pub fn map_rows(
    mapper: &Mapper,
    source: &str,
    rows: &[WadRow],
    extras: &RecordExtras,
    ingested_ns: i64,
) -> (Vec<Record>, Vec<DeadLetter>) {
    let mut records = Vec::with_capacity(rows.len());
    let mut dead = Vec::new();
    for row in rows {
        match map_row(mapper, source, row, extras, ingested_ns) {
            Ok(r) => records.push(r),
            Err(d) => dead.push(*d),
        }
    }
    (records, dead)
}
