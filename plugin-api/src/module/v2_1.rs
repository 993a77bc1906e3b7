//! The root module as ABI 2.1.x declared it: `abi_version`, `name`, `version`, `open` (the
//! last prefix field) and `check`; no `path_keys`.
//!
//! A 2.2 host first checks a plugin against [`crate::SinkPlugin`]; abi_stable refuses a 2.1
//! plugin there (fewer fields than the host's type, and an older minor version), so when the
//! plugin declares ABI 2.1.x the host checks it against this type (same name, package,
//! fields and field types as 2.1's `SinkPlugin`) and uses it without `path_keys`: its
//! relative paths are passed as written and read from the working directory, as before.
//!
//! Also used by the test plugin `tests/plugins/abi-2-1`, which stands in for a plugin built
//! against ABI 2.1. Plugins never export it.
use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use abi_stable::{declare_root_module_statics, StableAbi};

use crate::sink::{SinkBox, SinkError};

/// The ABI version this layout belongs to.
pub const ABI_VERSION: &str = "2.1.0";

/// ABI 2.1's root module (see the module docs). The name must stay `SinkPlugin`: abi_stable
/// compares type names.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = SinkPluginRef)))]
pub struct SinkPlugin {
    /// See [`crate::SinkPlugin::abi_version`].
    pub abi_version: RStr<'static>,
    /// See [`crate::SinkPlugin::name`].
    pub name: RStr<'static>,
    /// See [`crate::SinkPlugin::version`].
    pub version: RStr<'static>,
    /// See [`crate::SinkPlugin::open`].
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(config_json: RStr<'_>) -> RResult<SinkBox, SinkError>,
    /// See [`crate::SinkPlugin::check`].
    pub check: extern "C" fn(config_json: RStr<'_>) -> RResult<RVec<RString>, SinkError>,
}

impl RootModule for SinkPluginRef {
    declare_root_module_statics! {SinkPluginRef}
    const BASE_NAME: &'static str = "azlog_sink";
    const NAME: &'static str = "azlog sink plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}
