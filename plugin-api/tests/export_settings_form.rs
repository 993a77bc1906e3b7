//! `export_sink_plugin!` in its `settings:` + `open:` form: the root module's `check` and
//! `open` run the same settings parser, so they accept and refuse the same tables with the
//! same messages, and neither lets a panic unwind.
use std::sync::atomic::{AtomicUsize, Ordering};

use abi_stable::std_types::{RResult, RStr};
use azlog_plugin_api::{
    export_sink_plugin, BatchReport, ErrorKind, Record, Sink, SinkError, ABI_VERSION,
};
use serde::Deserialize;

static OPENED: AtomicUsize = AtomicUsize::new(0);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    port: u16,
    #[serde(default)]
    panic: bool,
}

struct Null;

impl Sink for Null {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        Ok(BatchReport::all_accepted(records.len()))
    }
}

fn settings(v: serde_json::Value) -> Result<Settings, SinkError> {
    let s: Settings = serde_json::from_value(v)
        .map_err(|e| SinkError::permanent(format!("null sink settings: {e}")))?;
    if s.panic {
        panic!("settings parser panicked on purpose");
    }
    if s.port == 0 {
        return Err(SinkError::permanent(
            "null sink settings: `port` must not be 0",
        ));
    }
    Ok(s)
}

fn open(_s: Settings) -> Result<Null, SinkError> {
    // The "connect" part: check must never get here.
    OPENED.fetch_add(1, Ordering::SeqCst);
    Ok(Null)
}

export_sink_plugin!(
    name: "null",
    version: "9.9.9",
    settings: settings,
    open: open,
    paths: ["path", "tls.ca_file"],
);

fn check(json: &str) -> Result<Vec<String>, SinkError> {
    let module = azlog_sink_plugin_root_module();
    let check = module.check().expect("a 2.1 module has `check`");
    match check(RStr::from_str(json)) {
        RResult::ROk(notes) => Ok(notes.into_iter().map(|s| s.into_string()).collect()),
        RResult::RErr(e) => Err(e),
    }
}

fn open_err(json: &str) -> Option<SinkError> {
    let module = azlog_sink_plugin_root_module();
    match (module.open())(RStr::from_str(json)) {
        RResult::ROk(_) => None,
        RResult::RErr(e) => Some(e),
    }
}

#[test]
fn module_declares_abi_2_2_both_entry_points_and_its_path_keys() {
    let module = azlog_sink_plugin_root_module();
    assert_eq!(ABI_VERSION, "2.2.0");
    assert_eq!(module.abi_version().as_str(), "2.2.0");
    assert_eq!(module.name().as_str(), "null");
    assert!(module.check().is_some());
    let keys: Vec<&str> = module
        .path_keys()
        .expect("the 2.2 module has `path_keys`")
        .iter()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["path", "tls.ca_file"]);
}

#[test]
fn check_and_open_agree() {
    let before = OPENED.load(Ordering::SeqCst);
    assert_eq!(
        check(r#"{"port": 514}"#).expect("valid"),
        Vec::<String>::new()
    );
    assert_eq!(
        OPENED.load(Ordering::SeqCst),
        before,
        "check must not run the open part"
    );
    for bad in [
        r#"{"prot": 514}"#,
        r#"{"port": "514"}"#,
        r#"{"port": 70000}"#,
        r#"{"port": 0}"#,
        r#"{}"#,
        r#"{"port": 1, "extra": true}"#,
    ] {
        let from_check = check(bad).expect_err(bad);
        let from_open = open_err(bad).expect(bad);
        assert_eq!(from_check, from_open, "{bad}");
        assert_eq!(from_check.kind, ErrorKind::Permanent, "{bad}");
    }
    let typo = check(r#"{"prot": 514}"#).unwrap_err();
    assert!(
        typo.message.contains("unknown field `prot`"),
        "{}",
        typo.message
    );
    assert!(open_err(r#"{"port": 514}"#).is_none());
}

#[test]
fn a_panicking_settings_parser_does_not_unwind_through_check_or_open() {
    let e = check(r#"{"port": 1, "panic": true}"#).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Panicked);
    assert!(e.message.contains("panicked in check"), "{}", e.message);
    let e = open_err(r#"{"port": 1, "panic": true}"#).expect("error");
    assert_eq!(e.kind, ErrorKind::Panicked);
    assert!(e.message.contains("panicked in open"), "{}", e.message);
}
