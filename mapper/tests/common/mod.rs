//! Shared helpers of the golden and conformance tests.
#![allow(dead_code)]
use std::path::PathBuf;

use azlog_mapper::{MapInput, Mapper, Position, Record};
use azlog_plugin_api::ecs::{to_ecs_string, EcsOptions};
use serde::Deserialize;
use serde_json::value::RawValue;

/// `2024-06-01T00:00:00Z`: the fixed enqueued time of fixture records.
pub const ENQUEUED_NS: i64 = 1_717_200_000_000_000_000;
/// `2024-06-01T00:00:05Z`: the fixed mapping time of fixture records.
pub const INGESTED_NS: i64 = 1_717_200_005_000_000_000;

/// The repository's `tests/fixtures/records` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records")
}

/// The built-in tables; a schema error fails the test with its message.
pub fn mapper() -> Mapper {
    match Mapper::builtin() {
        Ok(m) => m,
        Err(e) => panic!("built-in schema tables do not load:\n{e}"),
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

/// The raw JSON text of every record of a `{"records":[...]}` file.
pub fn envelope_records(text: &str) -> Vec<String> {
    let env: Envelope<'_> = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(e) => panic!("not a {{\"records\":[...]}} envelope: {e}"),
    };
    env.records.iter().map(|r| r.get().to_string()).collect()
}

/// Maps one fixture record with the fixed enqueued / ingest times.
pub fn map_fixture(mapper: &Mapper, file: &str, index: usize, json: &str) -> Record {
    let input = MapInput {
        json,
        position: Position {
            source: format!("file:{file}").into(),
            partition: "".into(),
            offset: index.to_string().into(),
            sequence: index as i64,
            index: index as u32,
        },
        enqueued_ns: Some(ENQUEUED_NS),
    };
    match mapper.map(input, INGESTED_NS) {
        Ok(r) => r,
        Err(e) => panic!("{file} record {index} does not map: {e}"),
    }
}

/// The ECS JSON line of a record, without `event.original`.
pub fn ecs_line(record: &Record) -> String {
    to_ecs_string(
        record,
        EcsOptions {
            include_original: false,
        },
    )
}
