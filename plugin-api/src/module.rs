//! The root module every sink plugin exports (one per `.so`/`.dll`).
use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr};
use abi_stable::{declare_root_module_statics, StableAbi};

use crate::sink::{SinkBox, SinkError};

/// Version of the host↔plugin ABI (semver). The host refuses a plugin whose ABI major
/// version differs, or (while the major is 0) whose minor differs. Bump the major on any
/// change to the types in `record`, `sink` or `module`.
///
/// 2.0.0: record keys, string values and list items are [`crate::Text`] (static or owned)
/// instead of `RString`.
pub const ABI_VERSION: &str = "2.0.0";

/// The root module of a sink plugin. Plugins build it with
/// [`crate::export_sink_plugin!`]; the host reads it once at load time.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = SinkPluginRef)))]
pub struct SinkPlugin {
    /// The plugin-api ABI version the plugin was built against ([`ABI_VERSION`]).
    pub abi_version: RStr<'static>,
    /// The plugin's name, as `[[sink]] plugin = "..."` refers to it (e.g. `splunk-hec`).
    pub name: RStr<'static>,
    /// The plugin's own version (its crate version).
    pub version: RStr<'static>,
    /// Opens a sink from its settings (the `[[sink]]` table minus host keys, as JSON text).
    /// Never unwinds: a panic becomes an [`crate::ErrorKind::Panicked`] error.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(config_json: RStr<'_>) -> RResult<SinkBox, SinkError>,
}

impl RootModule for SinkPluginRef {
    declare_root_module_statics! {SinkPluginRef}
    const BASE_NAME: &'static str = "azlog_sink";
    const NAME: &'static str = "azlog sink plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}
