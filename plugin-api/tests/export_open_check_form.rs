//! `export_sink_plugin!` with `open` and an explicit `check`: the root module's `check` runs
//! the plugin's function under the panic guard and passes its verdict through.
use abi_stable::std_types::{RResult, RStr};
use azlog_plugin_api::{export_sink_plugin, BatchReport, ErrorKind, Record, Sink, SinkError};

struct Null;

impl Sink for Null {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        Ok(BatchReport::all_accepted(records.len()))
    }
}

fn validate(config: &serde_json::Value) -> Result<(), SinkError> {
    match config.get("mode").and_then(|m| m.as_str()) {
        Some("a" | "b") => Ok(()),
        Some("boom") => panic!("validator panicked"),
        _ => Err(SinkError::permanent("`mode` must be a or b")),
    }
}

fn check(config: serde_json::Value) -> Result<(), SinkError> {
    validate(&config)
}

fn open(config: serde_json::Value) -> Result<Null, SinkError> {
    validate(&config)?;
    Ok(Null)
}

export_sink_plugin!(name: "explicit", version: "1.0.0", open: open, check: check);

fn run_check(json: &str) -> Result<usize, SinkError> {
    let module = azlog_sink_plugin_root_module();
    match (module.check().expect("check"))(RStr::from_str(json)) {
        RResult::ROk(notes) => Ok(notes.len()),
        RResult::RErr(e) => Err(e),
    }
}

#[test]
fn explicit_check_is_called_and_guarded() {
    assert_eq!(run_check(r#"{"mode": "a"}"#).expect("valid"), 0);
    let e = run_check(r#"{"mode": "c"}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("`mode`"), "{}", e.message);
    let e = run_check(r#"{"mode": "boom"}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Panicked);
    assert!(e.message.contains("panicked in check"), "{}", e.message);
}
