//! A plugin as it was built against azlog-plugin-api ABI 2.1.0, before `path_keys` existed: its
//! root module has `abi_version`, `name`, `version`, `open` and `check`, and declares version
//! 2.1.0. A 2.2 host must load it, check and open it, and pass its settings as written: it
//! reads a relative `file` from the working directory, as 2.1 plugins did.
#![allow(non_local_definitions)]
use abi_stable::export_root_module;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use azlog_plugin_api::module::v2_1::{SinkPlugin, SinkPluginRef};
use azlog_plugin_api::sink::SinkBox;
use azlog_plugin_api::{BatchReport, Record, Sink, SinkError};

/// Accepts everything.
struct Accept;

impl Sink for Accept {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        Ok(BatchReport::all_accepted(records.len()))
    }
}

/// The settings: an optional `file` that must be readable.
fn settings(config: serde_json::Value) -> Result<(), SinkError> {
    match config.get("file") {
        None => Ok(()),
        Some(serde_json::Value::String(path)) => std::fs::metadata(path)
            .map(drop)
            .map_err(|e| SinkError::permanent(format!("`file` {path}: {e}"))),
        Some(_) => Err(SinkError::permanent("`file` must be a string")),
    }
}

extern "C" fn open(config_json: RStr<'_>) -> RResult<SinkBox, SinkError> {
    azlog_plugin_api::export::open_guarded("sink-2-1", config_json, |config| {
        settings(config).map(|()| Accept)
    })
}

extern "C" fn check(config_json: RStr<'_>) -> RResult<RVec<RString>, SinkError> {
    azlog_plugin_api::export::check_guarded("sink-2-1", config_json, settings)
}

/// Exports the ABI-2.1 root module.
#[export_root_module]
pub fn root_module() -> SinkPluginRef {
    use abi_stable::prefix_type::PrefixTypeTrait;
    SinkPlugin {
        abi_version: RStr::from_str("2.1.0"),
        name: RStr::from_str("sink-2-1"),
        version: RStr::from_str("0.0.21"),
        open,
        check,
    }
    .leak_into_prefix()
}
