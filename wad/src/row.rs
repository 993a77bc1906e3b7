//! Rows of a query page: each row's raw JSON object text (exactly as the Table service sent it,
//! which is the shape the `windows.wad` schema table expects: `PartitionKey`, `RowKey`,
//! `Timestamp`, `RawXml`, `Description`, `EventId`, `Level`, `Channel`, `Role`, `RoleInstance`,
//! `DeploymentId`, `PreciseTimeStamp`, `TIMESTAMP`, ...) plus the keys the poller dedups on.
//!
//! The page is split without decoding the rows' strings: a row whose text the mapper later
//! refuses (for example a lone UTF-16 surrogate escape, `\ud800`, which real Windows event
//! text can carry) is still a row here, and goes to the dead-letter store with its reason
//! instead of failing the whole page.
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One row as read from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WadRow {
    /// `PartitionKey` (`0` + .NET ticks of the event minute).
    pub partition_key: String,
    /// `RowKey`.
    pub row_key: String,
    /// The row's `Timestamp` (when the Table service stored it), ns since the Unix epoch; the
    /// records' `event.created`.
    pub stored_ns: Option<i64>,
    /// The row as one JSON object (the mapper's input).
    pub json: String,
}

#[derive(Deserialize)]
struct PageBody<'a> {
    #[serde(borrow, default)]
    value: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(rename = "PartitionKey", borrow)]
    partition_key: Option<Cow<'a, str>>,
    #[serde(rename = "RowKey", borrow)]
    row_key: Option<Cow<'a, str>>,
    #[serde(rename = "Timestamp", borrow)]
    timestamp: Option<Cow<'a, str>>,
}

/// Splits a query page body (`{"value":[...]}`) into rows.
pub fn parse_page(body: &str) -> Result<Vec<WadRow>, String> {
    let page: PageBody<'_> =
        serde_json::from_str(body).map_err(|e| format!("query page is not OData JSON: {e}"))?;
    Ok(page.value.into_iter().map(row_of).collect())
}

fn row_of(raw: &RawValue) -> WadRow {
    let text = raw.get();
    match serde_json::from_str::<Keys<'_>>(text) {
        Ok(k) => WadRow {
            partition_key: k.partition_key.map(Cow::into_owned).unwrap_or_default(),
            row_key: k
                .row_key
                .map(Cow::into_owned)
                .unwrap_or_else(|| unreadable_key(text)),
            stored_ns: k
                .timestamp
                .as_deref()
                .and_then(azlog_mapper::convert::time::parse_timestamp),
            json: text.to_owned(),
        },
        // Keys that are not strings or cannot be decoded: the row still goes on (and most
        // likely to the dead-letter store); a content hash stands in for the RowKey so that
        // re-reads inside the overlap are still recognised.
        Err(_) => WadRow {
            partition_key: String::new(),
            row_key: unreadable_key(text),
            stored_ns: None,
            json: text.to_owned(),
        },
    }
}

/// `unreadable:<FNV-1a 64 of the text>`.
fn unreadable_key(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("unreadable:{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_rows_and_keeps_their_text() {
        let body = r#"{"value":[{"PartitionKey":"0638522190000000000","RowKey":"r1","Timestamp":"2024-05-25T07:30:05.1234567Z","EventId":4624,"RawXml":"<Event>\u0001</Event>"},{"PartitionKey":"0638522190000000000","RowKey":"r2"}]}"#;
        let rows = parse_page(body).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].partition_key, "0638522190000000000");
        assert_eq!(rows[0].row_key, "r1");
        assert_eq!(rows[0].stored_ns, Some(1_716_622_205_123_456_700));
        assert_eq!(
            rows[0].json,
            r#"{"PartitionKey":"0638522190000000000","RowKey":"r1","Timestamp":"2024-05-25T07:30:05.1234567Z","EventId":4624,"RawXml":"<Event>\u0001</Event>"}"#
        );
        assert_eq!(rows[1].stored_ns, None);
    }

    #[test]
    fn a_lone_surrogate_does_not_fail_the_page() {
        let body = r#"{"value":[{"PartitionKey":"p","RowKey":"r","RawXml":"bad \ud800 text"}]}"#;
        let rows = parse_page(body).unwrap();
        assert_eq!(rows[0].row_key, "r");
        assert!(rows[0].json.contains(r"\ud800"));
    }

    #[test]
    fn unreadable_keys_get_a_stable_stand_in() {
        let body = r#"{"value":[{"PartitionKey":"p","RowKey":"\udc00x"},{"PartitionKey":5}]}"#;
        let a = parse_page(body).unwrap();
        let b = parse_page(body).unwrap();
        assert!(a[0].row_key.starts_with("unreadable:"));
        assert_eq!(a, b);
        assert_ne!(a[0].row_key, a[1].row_key);
    }

    #[test]
    fn empty_and_invalid_pages() {
        assert!(parse_page(r#"{"value":[]}"#).unwrap().is_empty());
        assert!(parse_page(r#"{}"#).unwrap().is_empty());
        assert!(parse_page("<html>").is_err());
    }
}
