//! The root module as ABI 2.0.x declared it: `abi_version`, `name`, `version`, `open` (the
//! last prefix field), no `check`.
//!
//! abi_stable checks a root module's layout against the host's type and refuses a prefix
//! type with *fewer* fields than the host's (`too many fields`, expected 5, found 4): a
//! library may be newer than the interface its loader was built with, not older. So a host
//! that speaks ABI 2.1 or later first checks a plugin against [`crate::SinkPlugin`]; when that fails
//! and the plugin declares ABI 2.0.x, it checks the plugin against this type (same name,
//! package, fields and field types as 2.0's `SinkPlugin`) and uses it without `check`.
//!
//! Also used by the test plugin `tests/plugins/abi-2-0`, which stands in for a plugin built
//! against ABI 2.0. Plugins never export it.
use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr};
use abi_stable::{declare_root_module_statics, StableAbi};

use crate::sink::{SinkBox, SinkError};

/// The ABI version this layout belongs to (the oldest a 2.x host loads).
pub const ABI_VERSION: &str = "2.0.0";

/// ABI 2.0's root module (see the module docs). The name must stay `SinkPlugin`: abi_stable
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
}

impl RootModule for SinkPluginRef {
    declare_root_module_statics! {SinkPluginRef}
    const BASE_NAME: &'static str = "azlog_sink";
    const NAME: &'static str = "azlog sink plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}
