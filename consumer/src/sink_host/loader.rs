//! Plugin discovery and loading.
//!
//! Every file with the platform's library extension (`.so`, `.dylib`, `.dll`) in the plugin
//! directory is loaded. Loading is refused, with an error naming the file, when:
//!
//! * the directory or the file is world-writable (anyone could swap in code the host runs);
//! * the plugin was built against another plugin ABI version ([`ABI_VERSION`]); the error
//!   names the plugin file and both versions;
//! * its root module's layout differs from the host's (abi_stable's layout check), or the
//!   file is not an azlog sink plugin at all;
//! * two plugins declare the same name.
//!
//! A plugin built against an earlier minor of the same ABI major loads too. ABI 2.1 added
//! [`SinkPlugin::check`](azlog_plugin_api::SinkPlugin::check) after the last prefix field,
//! ABI 2.2 [`SinkPlugin::path_keys`](azlog_plugin_api::SinkPlugin::path_keys). abi_stable
//! accepts a root module with *more* fields than the host's type but refuses one with fewer
//! ("too many fields") or of an earlier minor version, so a 2.0.x or 2.1.x plugin fails the
//! check against the current layout; the loader then checks it against the layout of the
//! minor it declares ([`azlog_plugin_api::module::v2_0::SinkPlugin`],
//! [`azlog_plugin_api::module::v2_1::SinkPlugin`]) and holds it without the later fields: a
//! 2.0 plugin has no `check` ([`LoadedPlugin::check`] answers [`SettingsCheck::Unsupported`]),
//! a 2.0 or 2.1 plugin no path keys ([`LoadedPlugin::path_keys`] is empty).
//!
//! Libraries are never unloaded (abi_stable keeps them mapped for the process lifetime).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr};
use azlog_plugin_api::module::{v2_0, v2_1};
use azlog_plugin_api::sink::SinkBox;
use azlog_plugin_api::{SinkError, SinkPluginRef, ABI_VERSION};

/// Why a plugin (directory) was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory cannot be read.
    #[error("plugin directory {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The directory or file is writable by everyone.
    #[error("refusing {path}: it is world-writable (mode {mode:o}); remove o+w (chmod o-w)")]
    WorldWritable {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Built against another plugin ABI.
    #[error(
        "refusing plugin {path}: it was built against azlog plugin ABI {plugin_abi}, \
         this host speaks ABI {host_abi}; rebuild it against azlog-plugin-api with ABI {host_abi}"
    )]
    AbiMismatch {
        /// The plugin file.
        path: PathBuf,
        /// The plugin's ABI version.
        plugin_abi: String,
        /// The host's ABI version.
        host_abi: String,
    },
    /// Not loadable as an azlog sink plugin (no root module, bad layout, ...).
    #[error("refusing plugin {path}: {message}")]
    Invalid {
        /// The plugin file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Two plugins declare the same name.
    #[error("plugins {first} and {second} both declare the name `{name}`")]
    DuplicateName {
        /// The declared name.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
}

/// What a plugin's settings check found, when it did not find a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsCheck {
    /// The plugin parsed and validated the settings as its `open` would; `notes` are
    /// remarks for the operator (empty when every key was checked).
    Checked {
        /// Remarks from the plugin.
        notes: Vec<String>,
    },
    /// The plugin was built against an ABI without `check` (2.0.x): its keys cannot be
    /// checked before it opens.
    Unsupported,
}

/// A plugin's root module, as the layout it passed.
#[derive(Clone, Copy)]
enum Module {
    /// ABI 2.2 or a later 2.x (checked against this host's layout).
    Current(SinkPluginRef),
    /// ABI 2.1.x (checked against the 2.1 layout): no `path_keys`.
    V2_1(v2_1::SinkPluginRef),
    /// ABI 2.0.x (checked against the 2.0 layout): no `check`.
    V2_0(v2_0::SinkPluginRef),
}

impl Module {
    fn name(self) -> RStr<'static> {
        match self {
            Module::Current(m) => m.name(),
            Module::V2_1(m) => m.name(),
            Module::V2_0(m) => m.name(),
        }
    }

    fn version(self) -> RStr<'static> {
        match self {
            Module::Current(m) => m.version(),
            Module::V2_1(m) => m.version(),
            Module::V2_0(m) => m.version(),
        }
    }

    fn abi_version(self) -> RStr<'static> {
        match self {
            Module::Current(m) => m.abi_version(),
            Module::V2_1(m) => m.abi_version(),
            Module::V2_0(m) => m.abi_version(),
        }
    }

    fn open(self) -> extern "C" fn(RStr<'_>) -> RResult<SinkBox, SinkError> {
        match self {
            Module::Current(m) => m.open(),
            Module::V2_1(m) => m.open(),
            Module::V2_0(m) => m.open(),
        }
    }
}

/// A loaded plugin: its identity and its root module.
pub struct LoadedPlugin {
    /// Declared name (what `[[sink]] plugin = ...` refers to).
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The ABI version it was built against.
    pub abi_version: String,
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The settings that hold file paths (ABI 2.2 `path_keys`, dotted): the host makes
    /// relative paths there absolute against the configuration's folder. Empty for plugins
    /// of ABI 2.0 and 2.1, which read relative paths from the working directory.
    pub path_keys: Vec<String>,
    module: Module,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("abi_version", &self.abi_version)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// Loads one plugin file (permission, ABI and layout checks included).
    pub fn load(path: &Path) -> Result<LoadedPlugin, LoadError> {
        check_not_world_writable(path)?;
        let invalid = |message: String| LoadError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let header = lib_header_from_path(path).map_err(|e| match e {
            LibraryError::GetSymbolError { .. } => {
                invalid("not an azlog sink plugin (no abi_stable root module exported)".into())
            }
            other => invalid(other.to_string()),
        })?;
        check_abi(path, header.version_strings())?;
        let module = match header.init_root_module::<SinkPluginRef>() {
            Ok(m) => Module::Current(m),
            // A 2.0.x or 2.1.x plugin lacks the later fields: abi_stable refuses it against
            // the current layout; check it against the layout of the minor it declares.
            Err(current) if declares_minor(header.version_strings(), v2_1::ABI_VERSION) => header
                .init_root_module::<v2_1::SinkPluginRef>()
                .map(Module::V2_1)
                .map_err(|_| invalid(format!("root module check failed: {current}")))?,
            Err(current) if declares_minor(header.version_strings(), v2_0::ABI_VERSION) => header
                .init_root_module::<v2_0::SinkPluginRef>()
                .map(Module::V2_0)
                .map_err(|_| invalid(format!("root module check failed: {current}")))?,
            Err(e) => return Err(invalid(format!("root module check failed: {e}"))),
        };
        let plugin = LoadedPlugin {
            name: module.name().to_string(),
            version: module.version().to_string(),
            abi_version: module.abi_version().to_string(),
            path: path.to_path_buf(),
            path_keys: match module {
                Module::Current(m) => m
                    .path_keys()
                    .map(|keys| keys.iter().map(|k| k.to_string()).collect())
                    .unwrap_or_default(),
                Module::V2_1(_) | Module::V2_0(_) => Vec::new(),
            },
            module,
        };
        if plugin.name.trim().is_empty() {
            return Err(invalid("the plugin declares an empty name".into()));
        }
        tracing::info!(
            plugin = %plugin.name,
            version = %plugin.version,
            abi = %plugin.abi_version,
            path = %path.display(),
            "loaded sink plugin"
        );
        Ok(plugin)
    }

    /// Whether the plugin was built against ABI 2.2 or later, so that it can declare path keys
    /// (it may declare none). Plugins of ABI 2.0 and 2.1 read relative paths in their keys from
    /// the working directory.
    pub fn knows_path_keys(&self) -> bool {
        matches!(self.module, Module::Current(_))
    }

    /// Opens a sink with its settings (JSON text). Never unwinds: a panic in the plugin's
    /// `open` arrives as an error of kind `Panicked`.
    pub fn open(&self, settings_json: &str) -> Result<SinkBox, SinkError> {
        match (self.module.open())(RStr::from_str(settings_json)) {
            RResult::ROk(sink) => Ok(sink),
            RResult::RErr(e) => Err(e),
        }
    }

    /// Checks a sink's settings (JSON text, the same `open` receives) without connecting:
    /// the plugin parses and validates them as its `open` would. A plugin built against
    /// ABI 2.0.x has no `check` entry and gives [`SettingsCheck::Unsupported`]. Never
    /// unwinds: a panic in the plugin's check arrives as an error of kind `Panicked`.
    pub fn check(&self, settings_json: &str) -> Result<SettingsCheck, SinkError> {
        let check = match self.module {
            Module::Current(m) => m.check(),
            Module::V2_1(m) => m.check(),
            Module::V2_0(_) => None,
        };
        let Some(check) = check else {
            return Ok(SettingsCheck::Unsupported);
        };
        match check(RStr::from_str(settings_json)) {
            RResult::ROk(notes) => Ok(SettingsCheck::Checked {
                notes: notes.into_iter().map(|n| n.into_string()).collect(),
            }),
            RResult::RErr(e) => Err(e),
        }
    }
}

/// True when the plugin declares the major and minor of `version` (one of the earlier minors
/// this host still loads).
fn declares_minor(theirs: VersionStrings, version: &'static str) -> bool {
    let ours = VersionStrings::new(version).parsed();
    matches!((theirs.parsed(), ours), (Ok(t), Ok(o)) if t.major == o.major && t.minor == o.minor)
}

/// Compares the plugin's ABI version with the host's: same major, and for 0.x the same
/// minor (semver for 0.x).
fn check_abi(path: &Path, theirs: VersionStrings) -> Result<(), LoadError> {
    let mismatch = |plugin_abi: String| LoadError::AbiMismatch {
        path: path.to_path_buf(),
        plugin_abi,
        host_abi: ABI_VERSION.to_string(),
    };
    let theirs_text = theirs.version.as_str().to_string();
    let ours = VersionStrings::new(ABI_VERSION)
        .parsed()
        .map_err(|e| mismatch(format!("{theirs_text} (host version unparsable: {e})")))?;
    let theirs = theirs
        .parsed()
        .map_err(|_| mismatch(format!("{theirs_text:?} (unparsable)")))?;
    let compatible = if ours.major == 0 {
        theirs.major == 0 && theirs.minor == ours.minor
    } else {
        theirs.major == ours.major
    };
    if compatible {
        Ok(())
    } else {
        Err(mismatch(theirs_text))
    }
}

#[cfg(unix)]
fn check_not_world_writable(path: &Path) -> Result<(), LoadError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(LoadError::WorldWritable {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_not_world_writable(_path: &Path) -> Result<(), LoadError> {
    Ok(())
}

/// Every plugin of the plugin directory, by declared name.
#[derive(Debug, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
}

impl PluginRegistry {
    /// Loads every library in `dir`. Any refused file fails the whole load: a plugin
    /// directory with a bad file in it is a configuration error to fix, not to skip.
    pub fn load_dir(dir: &Path) -> Result<PluginRegistry, LoadError> {
        check_not_world_writable(dir)?;
        let io = |source| LoadError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_lib = path
                .extension()
                .is_some_and(|e| e == std::env::consts::DLL_EXTENSION);
            if is_lib && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut reg = PluginRegistry::default();
        for path in files {
            let plugin = LoadedPlugin::load(&path)?;
            if let Some(first) = reg.plugins.get(&plugin.name) {
                return Err(LoadError::DuplicateName {
                    name: plugin.name.clone(),
                    first: first.path.clone(),
                    second: path,
                });
            }
            reg.plugins.insert(plugin.name.clone(), Arc::new(plugin));
        }
        Ok(reg)
    }

    /// The plugin declared as `name`.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.get(name).cloned()
    }

    /// Declared names of all loaded plugins, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.plugins.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_compatibility_rules() {
        let p = Path::new("/x/libp.so");
        assert!(check_abi(p, VersionStrings::new(ABI_VERSION)).is_ok());
        assert!(check_abi(p, VersionStrings::new("2.7.3")).is_ok());
        // ABI 2.1 is additive: plugins built against 2.0.x still load (without `check`).
        assert!(check_abi(p, VersionStrings::new("2.0.0")).is_ok());
        assert!(check_abi(p, VersionStrings::new("2.0.5")).is_ok());
        let err = check_abi(p, VersionStrings::new("3.0.0"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/x/libp.so"), "{err}");
        assert!(err.contains("ABI 3.0.0"), "{err}");
        assert!(err.contains(&format!("ABI {ABI_VERSION}")), "{err}");
        // A plugin built before record strings became `Text` (ABI 1: `RString` keys and
        // values) is refused and told to rebuild.
        let err = check_abi(p, VersionStrings::new("1.0.0"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ABI 1.0.0") && err.contains("rebuild"),
            "{err}"
        );
        assert!(check_abi(p, VersionStrings::new("banana")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn world_writable_directory_and_file_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let err = PluginRegistry::load_dir(dir.path()).unwrap_err();
        assert!(matches!(err, LoadError::WorldWritable { .. }), "{err}");
        assert!(err.to_string().contains("world-writable"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let lib = dir
            .path()
            .join(format!("libx.{}", std::env::consts::DLL_EXTENSION));
        std::fs::write(&lib, b"not a library").expect("write");
        std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let err = PluginRegistry::load_dir(dir.path()).unwrap_err();
        assert!(
            matches!(err, LoadError::WorldWritable { ref path, .. } if path == &lib),
            "{err}"
        );
        std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = PluginRegistry::load_dir(dir.path()).unwrap_err();
        assert!(matches!(err, LoadError::Invalid { .. }), "{err}");
    }

    #[test]
    fn empty_directory_loads_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = PluginRegistry::load_dir(dir.path()).expect("load");
        assert!(reg.names().is_empty());
    }
}
