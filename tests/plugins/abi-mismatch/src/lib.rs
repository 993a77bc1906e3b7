//! A plugin as it would look if built against a future azlog-plugin-api with ABI 3.0.0:
//! its root module has another shape and declares ABI version 3.0.0. The host must refuse
//! it, naming the file and both versions, without touching the module.
#![allow(non_local_definitions)]
use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::RStr;
use abi_stable::{declare_root_module_statics, export_root_module, StableAbi};

/// The root module of "ABI 3": different fields than the host's ABI 2.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = SinkPluginV2Ref)))]
pub struct SinkPluginV2 {
    /// Declared ABI.
    pub abi_version: RStr<'static>,
    /// Name.
    pub name: RStr<'static>,
    /// A field ABI 2 does not have.
    #[sabi(last_prefix_field)]
    pub capabilities: u64,
}

impl RootModule for SinkPluginV2Ref {
    declare_root_module_statics! {SinkPluginV2Ref}
    const BASE_NAME: &'static str = "azlog_sink";
    const NAME: &'static str = "azlog sink plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("3.0.0");
}

/// Exports the ABI-3 root module.
#[export_root_module]
pub fn root_module() -> SinkPluginV2Ref {
    use abi_stable::prefix_type::PrefixTypeTrait;
    SinkPluginV2 {
        abi_version: RStr::from_str("3.0.0"),
        name: RStr::from_str("future-sink"),
        capabilities: 1,
    }
    .leak_into_prefix()
}
