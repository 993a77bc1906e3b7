//! A plugin as it was built against azlog-plugin-api ABI 2.0.0, before `check` existed: its
//! root module has the 2.0 fields only (`abi_version`, `name`, `version`, `open`) and declares
//! version 2.0.0. A 2.1 host must load it, run it, and say in `check-config` that its keys
//! cannot be checked (not fail).
#![allow(non_local_definitions)]
use abi_stable::export_root_module;
use abi_stable::std_types::{RResult, RStr};
use azlog_plugin_api::module::v2_0::{SinkPlugin, SinkPluginRef};
use azlog_plugin_api::sink::SinkBox;
use azlog_plugin_api::{BatchReport, Record, Sink, SinkError};

/// Accepts everything.
struct Accept;

impl Sink for Accept {
    fn write_batch(&mut self, records: &[Record]) -> Result<BatchReport, SinkError> {
        Ok(BatchReport::all_accepted(records.len()))
    }
}

extern "C" fn open(config_json: RStr<'_>) -> RResult<SinkBox, SinkError> {
    azlog_plugin_api::export::open_guarded("old-sink", config_json, |_| Ok(Accept))
}

/// Exports the ABI-2.0 root module.
#[export_root_module]
pub fn root_module() -> SinkPluginRef {
    use abi_stable::prefix_type::PrefixTypeTrait;
    SinkPlugin {
        abi_version: RStr::from_str("2.0.0"),
        name: RStr::from_str("old-sink"),
        version: RStr::from_str("0.0.20"),
        open,
    }
    .leak_into_prefix()
}
