//! `export_sink_plugin!` with `open` alone (the ABI 2.0 form) still builds a 2.1 root module:
//! its `check` accepts any JSON settings and says, in a note, that the keys are only checked
//! when the sink opens.
use abi_stable::std_types::{RResult, RStr};
use azlog_plugin_api::{export_sink_plugin, BatchReport, ErrorKind, Record, Sink, SinkError};

struct Null;

impl Sink for Null {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        Ok(BatchReport::all_accepted(records.len()))
    }
}

fn open(config: serde_json::Value) -> Result<Null, SinkError> {
    match config.get("port") {
        Some(p) if !p.is_u64() => Err(SinkError::permanent("old sink: `port` must be a number")),
        _ => Ok(Null),
    }
}

export_sink_plugin!(name: "old-style", version: "1.0.0", open: open);

#[test]
fn check_notes_that_keys_are_checked_at_open() {
    let module = azlog_sink_plugin_root_module();
    let check = module.check().expect("the 2.1 module has `check`");
    let keys = module.path_keys().expect("the 2.2 module has `path_keys`");
    assert!(keys.is_empty(), "no `paths` argument, no path keys");
    let notes = match check(RStr::from_str(r#"{"port": "nope"}"#)) {
        RResult::ROk(notes) => notes,
        RResult::RErr(e) => panic!("check refused what it cannot parse: {e}"),
    };
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("old-style") && notes[0].contains("checked when the sink opens"),
        "{}",
        notes[0]
    );
    let err = match check(RStr::from_str("{broken")) {
        RResult::ROk(_) => panic!("invalid JSON accepted"),
        RResult::RErr(e) => e,
    };
    assert_eq!(err.kind, ErrorKind::Permanent);
    // `open` still does its own checking.
    assert!(matches!(
        (module.open())(RStr::from_str(r#"{"port": "nope"}"#)),
        RResult::RErr(_)
    ));
}
