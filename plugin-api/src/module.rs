//! The root module every sink plugin exports (one per `.so`/`.dll`).
use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, StableAbi};

use crate::sink::{SinkBox, SinkError};

pub mod v2_0;
pub mod v2_1;

/// Version of the host↔plugin ABI (semver). The host refuses a plugin whose ABI major
/// version differs, or (while the major is 0) whose minor differs. Bump the major on any
/// change to the types in `record`, `sink` or `module`; bump the minor when a field is
/// added at the end of [`SinkPlugin`] (after `open`, the last prefix field): a host of a
/// later minor loads plugins of an earlier one and sees the new fields as absent.
///
/// 2.0.0: record keys, string values and list items are [`crate::Text`] (static or owned)
/// instead of `RString`.
///
/// 2.1.0: [`SinkPlugin::check`] validates a sink's settings without connecting (used by
/// `azlog-hub check-config`). Additive: 2.0.x plugins still load (the host checks them
/// against [`v2_0::SinkPlugin`], see there why); they have no `check`.
///
/// 2.2.0: [`SinkPlugin::path_keys`] names the settings that hold file paths; the host makes
/// the relative ones absolute against the configuration file's folder before `open` and
/// `check` see them, as it does for its own paths. Additive: 2.1.x plugins load (checked
/// against [`v2_1::SinkPlugin`]) and keep reading relative paths from the working directory.
pub const ABI_VERSION: &str = "2.2.0";

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
    ///
    /// This is the last field of ABI 2.0.0 (`last_prefix_field`: it never moves). Fields
    /// below it were added in later 2.x minors: their accessors on [`SinkPluginRef`] return
    /// `Option`. A plugin of a *later* minor (more fields) passes the host's layout check;
    /// one of an *earlier* minor does not (abi_stable refuses fewer fields than the host's
    /// type), so the host checks a 2.0.x plugin against [`v2_0::SinkPlugin`] instead.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(config_json: RStr<'_>) -> RResult<SinkBox, SinkError>,
    /// ABI 2.1.0. Checks a sink's settings (the same JSON `open` receives) exactly as `open`
    /// would parse and validate them (unknown keys, types, ranges, files the settings name
    /// exist and are readable, secrets resolvable from `_env`/`_file`), without connecting
    /// anywhere or opening sockets. `Ok` carries notes for the operator (empty when every
    /// key was checked); `Err` says what to fix and never holds a secret value. Never
    /// unwinds: a panic becomes an [`crate::ErrorKind::Panicked`] error.
    pub check: extern "C" fn(config_json: RStr<'_>) -> RResult<RVec<RString>, SinkError>,
    /// ABI 2.2.0. The settings that hold file paths, as dotted keys (`path`, `tls.ca_file`,
    /// `token_file`). Before it calls `open` or `check`, the host replaces a relative string
    /// at one of these keys with that path joined to the configuration file's folder, the
    /// folder its own relative paths (`plugin_dir`, `checkpoint_dir` ...) start from. Keys
    /// not listed here reach the plugin as written.
    pub path_keys: RSlice<'static, RStr<'static>>,
}

impl RootModule for SinkPluginRef {
    declare_root_module_statics! {SinkPluginRef}
    const BASE_NAME: &'static str = "azlog_sink";
    const NAME: &'static str = "azlog sink plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}
