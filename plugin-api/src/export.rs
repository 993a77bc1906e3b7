//! The panic guard and the [`export_sink_plugin!`](crate::export_sink_plugin) macro.
//!
//! `abi_stable`'s generated FFI shims abort the process if a panic reaches them. The guard
//! runs every plugin call inside `catch_unwind`, so a panic never crosses the boundary: it
//! becomes a [`SinkError`] of kind [`ErrorKind::Panicked`](crate::ErrorKind::Panicked), the
//! sink instance is poisoned (every later call returns the same kind of error), and the host
//! closes and re-opens it.
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};

use crate::record::Record;
use crate::sink::{BatchReport, FfiSink, FfiSink_TO, Health, Sink, SinkBox, SinkError};

/// Wraps a plugin's [`Sink`] so that no call unwinds across FFI.
pub struct Guarded<S: Sink> {
    plugin: &'static str,
    inner: Option<S>,
}

impl<S: Sink> Guarded<S> {
    /// Guards `inner`; `plugin` names the plugin in error messages.
    pub fn new(plugin: &'static str, inner: S) -> Self {
        Guarded {
            plugin,
            inner: Some(inner),
        }
    }

    fn poisoned(&self) -> SinkError {
        SinkError::panicked(format!(
            "sink of plugin `{}` is poisoned by an earlier panic; it must be re-opened",
            self.plugin
        ))
    }

    fn call<T>(
        &mut self,
        op: &str,
        f: impl FnOnce(&mut S) -> Result<T, SinkError>,
    ) -> RResult<T, SinkError> {
        let Some(inner) = self.inner.as_mut() else {
            return RResult::RErr(self.poisoned());
        };
        match catch_unwind(AssertUnwindSafe(|| f(inner))) {
            Ok(Ok(v)) => RResult::ROk(v),
            Ok(Err(e)) => RResult::RErr(e),
            Err(payload) => {
                let msg = panic_message(payload);
                // The instance may be half-updated: drop it (guarded too) and poison.
                let inner = self.inner.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
                RResult::RErr(SinkError::panicked(format!(
                    "plugin `{}` panicked in {op}: {msg}",
                    self.plugin
                )))
            }
        }
    }
}

impl<S: Sink> FfiSink for Guarded<S> {
    fn write_batch(&mut self, records: RSlice<'_, Record>) -> RResult<BatchReport, SinkError> {
        self.call("write_batch", |s| s.write_batch(records.as_slice()))
    }

    fn flush(&mut self) -> RResult<(), SinkError> {
        self.call("flush", |s| s.flush())
    }

    fn health(&self) -> Health {
        let Some(inner) = self.inner.as_ref() else {
            return Health::failed(self.poisoned().message.to_string());
        };
        match catch_unwind(AssertUnwindSafe(|| inner.health())) {
            Ok(h) => h,
            Err(payload) => Health::failed(format!(
                "plugin `{}` panicked in health: {}",
                self.plugin,
                panic_message(payload)
            )),
        }
    }

    fn close(&mut self) -> RResult<(), SinkError> {
        let r = self.call("close", |s| s.close());
        let inner = self.inner.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
        r
    }
}

impl<S: Sink> Drop for Guarded<S> {
    fn drop(&mut self) {
        // The host drops the sink through an FFI shim: a panicking Drop must not unwind.
        let inner = self.inner.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
    }
}

/// Extracts the message of a panic payload, and forgets the payload (its destructor could
/// panic again).
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    };
    std::mem::forget(payload);
    msg
}

/// Runs `f` with the parsed settings JSON under `catch_unwind`; `op` names the entry point
/// in error messages.
fn guarded<T>(
    plugin: &'static str,
    op: &str,
    config_json: RStr<'_>,
    f: impl FnOnce(serde_json::Value) -> Result<T, SinkError>,
) -> RResult<T, SinkError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let config: serde_json::Value =
            serde_json::from_str(config_json.as_str()).map_err(|e| {
                SinkError::permanent(format!(
                    "plugin `{plugin}`: settings are not valid JSON: {e}"
                ))
            })?;
        f(config)
    }));
    match result {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e),
        Err(payload) => RResult::RErr(SinkError::panicked(format!(
            "plugin `{plugin}` panicked in {op}: {}",
            panic_message(payload)
        ))),
    }
}

/// Parses the settings JSON and calls the plugin's `open` under `catch_unwind`. Used by
/// [`export_sink_plugin!`](crate::export_sink_plugin); not meant to be called directly.
pub fn open_guarded<S, F>(
    plugin: &'static str,
    config_json: RStr<'_>,
    open: F,
) -> RResult<SinkBox, SinkError>
where
    S: Sink,
    F: FnOnce(serde_json::Value) -> Result<S, SinkError>,
{
    guarded(plugin, "open", config_json, |config| {
        let sink = open(config)?;
        Ok(FfiSink_TO::from_value(
            Guarded::new(plugin, sink),
            TD_Opaque,
        ))
    })
}

/// Parses the settings JSON and calls the plugin's settings check under `catch_unwind`:
/// `Ok` with no notes when the check passes. Used by
/// [`export_sink_plugin!`](crate::export_sink_plugin); not meant to be called directly.
pub fn check_guarded<F>(
    plugin: &'static str,
    config_json: RStr<'_>,
    check: F,
) -> RResult<RVec<RString>, SinkError>
where
    F: FnOnce(serde_json::Value) -> Result<(), SinkError>,
{
    guarded(plugin, "check", config_json, |config| {
        check(config).map(|()| RVec::new())
    })
}

/// The `check` of a plugin exported with `open` alone (no `settings:` nor `check:`): the
/// settings must be JSON, and a note says the plugin's own keys are checked only when it
/// opens. Used by [`export_sink_plugin!`](crate::export_sink_plugin).
pub fn check_undeclared(
    plugin: &'static str,
    config_json: RStr<'_>,
) -> RResult<RVec<RString>, SinkError> {
    guarded(plugin, "check", config_json, |_config| {
        Ok(RVec::from(vec![RString::from(format!(
            "plugin `{plugin}` exports no settings check (export_sink_plugin! with `open` \
             only): only the JSON was checked here, its own keys are checked when the sink opens"
        ))]))
    })
}

/// Exports a sink plugin's root module. Use it once, at the root of a `cdylib` crate that
/// depends on `azlog-plugin-api` and `abi_stable = "0.11"`. The recommended form gives the
/// settings parser and the opener separately, so that `check-config` and start-up run the
/// very same parsing and can never disagree:
///
/// ```ignore
/// azlog_plugin_api::export_sink_plugin!(
///     name: "my-sink",                     // what `[[sink]] plugin = "..."` names
///     version: env!("CARGO_PKG_VERSION"),
///     settings: my_settings,               // fn(serde_json::Value) -> Result<P, SinkError>
///     open: my_open,                       // fn(P) -> Result<impl Sink, SinkError>
/// );
/// ```
///
/// `settings` parses and validates everything that can be checked without connecting:
/// unknown keys (`#[serde(deny_unknown_fields)]`), types and ranges, files the settings
/// name (read them), secrets from `_env`/`_file` (resolve them). It must not connect, open
/// sockets, or log secret values. `open` then connects (or not: sinks may connect lazily).
/// The root module's `open` runs `my_open(my_settings(json)?)`, its `check` runs
/// `my_settings(json)` and drops the result.
///
/// Settings that hold file paths are listed in a last argument, `paths`, in every form:
///
/// ```ignore
///     open: my_open,
///     paths: ["path", "tls.ca_file", "token_file"],   // dotted keys of `[[sink]]` settings
/// ```
///
/// The host then makes a relative path at one of those keys absolute, against the folder of
/// the configuration file, before `settings`, `open` or `check` see it (ABI 2.2
/// [`SinkPlugin::path_keys`](crate::SinkPlugin::path_keys)). Without `paths`, relative paths
/// reach the plugin as written and are read from the process's working directory.
///
/// Two other forms exist:
///
/// * `open: my_open, check: my_check` with `my_open: fn(serde_json::Value) -> Result<impl
///   Sink, SinkError>` and `my_check: fn(serde_json::Value) -> Result<(), SinkError>`, for
///   plugins whose opening does not split that way (keep both on one parser).
/// * `open: my_open` alone (the ABI 2.0 form): still accepted; `check` then only checks that
///   the settings are JSON and returns a note saying the keys are checked at open.
///
/// `open` and `check` receive the sink's own settings (its `[[sink]]` table without the
/// host keys `name`, `plugin`, `filter`, `batch`, `retry`) as a `serde_json::Value`. Every
/// call into the plugin (open, check, write_batch, flush, health, close, drop) runs under
/// `catch_unwind`.
#[macro_export]
macro_rules! export_sink_plugin {
    (name: $name:expr, version: $version:expr, settings: $settings:path, open: $open:path
     $(, paths: [$($key:expr),* $(,)?])? $(,)?) => {
        $crate::export_sink_plugin!(@export $name, $version,
            open: |config| $open($settings(config)?),
            check: |json| $crate::export::check_guarded($name, json, |config| {
                $settings(config).map(::std::mem::drop)
            }),
            paths: [$($($key),*)?]);
    };
    (name: $name:expr, version: $version:expr, open: $open:path, check: $check:path
     $(, paths: [$($key:expr),* $(,)?])? $(,)?) => {
        $crate::export_sink_plugin!(@export $name, $version,
            open: $open,
            check: |json| $crate::export::check_guarded($name, json, $check),
            paths: [$($($key),*)?]);
    };
    (name: $name:expr, version: $version:expr, open: $open:path
     $(, paths: [$($key:expr),* $(,)?])? $(,)?) => {
        $crate::export_sink_plugin!(@export $name, $version,
            open: $open,
            check: |json| $crate::export::check_undeclared($name, json),
            paths: [$($($key),*)?]);
    };
    (@export $name:expr, $version:expr, open: $open:expr, check: $check:expr,
     paths: [$($key:expr),*]) => {
        $crate::export_sink_plugin!(@root $name, $version, [$($key),*]);

        extern "C" fn __azlog_sink_plugin_open(
            config_json: $crate::__private::abi_stable::std_types::RStr<'_>,
        ) -> $crate::__private::abi_stable::std_types::RResult<
            $crate::sink::SinkBox,
            $crate::SinkError,
        > {
            $crate::export::open_guarded($name, config_json, $open)
        }

        extern "C" fn __azlog_sink_plugin_check(
            config_json: $crate::__private::abi_stable::std_types::RStr<'_>,
        ) -> $crate::__private::abi_stable::std_types::RResult<
            $crate::__private::abi_stable::std_types::RVec<
                $crate::__private::abi_stable::std_types::RString,
            >,
            $crate::SinkError,
        > {
            ($check)(config_json)
        }
    };
    (@root $name:expr, $version:expr, [$($key:expr),*]) => {
        #[::abi_stable::export_root_module]
        pub fn azlog_sink_plugin_root_module() -> $crate::SinkPluginRef {
            use $crate::__private::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::SinkPlugin {
                abi_version: $crate::__private::abi_stable::std_types::RStr::from_str(
                    $crate::ABI_VERSION,
                ),
                name: $crate::__private::abi_stable::std_types::RStr::from_str($name),
                version: $crate::__private::abi_stable::std_types::RStr::from_str($version),
                open: __azlog_sink_plugin_open,
                check: __azlog_sink_plugin_check,
                path_keys: {
                    const KEYS: &[$crate::__private::abi_stable::std_types::RStr<'static>] = &[
                        $($crate::__private::abi_stable::std_types::RStr::from_str($key)),*
                    ];
                    $crate::__private::abi_stable::std_types::RSlice::from_slice(KEYS)
                },
            }
            .leak_into_prefix()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn json(s: &str) -> RStr<'_> {
        RStr::from_str(s)
    }

    #[test]
    fn check_guard_passes_results_through() {
        let ok = check_guarded("p", json(r#"{"port": 1}"#), |v| {
            assert_eq!(v["port"], 1);
            Ok(())
        });
        assert_eq!(ok.into_result().expect("ok").len(), 0, "no notes");
        let err = check_guarded("p", json("{}"), |_| {
            Err(SinkError::permanent("p settings: unknown field `prot`"))
        })
        .into_result()
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Permanent);
        assert_eq!(err.message.as_str(), "p settings: unknown field `prot`");
    }

    #[test]
    fn check_guard_turns_a_panic_into_an_error() {
        let err = check_guarded("boom", json("{}"), |_| -> Result<(), SinkError> {
            panic!("settings parser blew up")
        })
        .into_result()
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Panicked);
        assert!(
            err.message.contains("plugin `boom` panicked in check")
                && err.message.contains("settings parser blew up"),
            "{}",
            err.message
        );
    }

    #[test]
    fn check_guard_refuses_invalid_json_without_calling_the_plugin() {
        let err = check_guarded("p", json("{not json"), |_| -> Result<(), SinkError> {
            panic!("must not be called")
        })
        .into_result()
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Permanent);
        assert!(err.message.contains("not valid JSON"), "{}", err.message);
    }

    #[test]
    fn undeclared_check_returns_a_note_not_a_pass() {
        let notes = check_undeclared("legacy", json(r#"{"anything": 1}"#))
            .into_result()
            .expect("ok");
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("legacy")
                && notes[0].contains("only the JSON was checked")
                && notes[0].contains("checked when the sink opens"),
            "{}",
            notes[0]
        );
        assert!(check_undeclared("legacy", json("nope")).is_err());
    }

    #[test]
    fn open_guard_still_catches_panics() {
        struct Never;
        impl Sink for Never {
            fn write_batch(&mut self, _: &[Record]) -> Result<BatchReport, SinkError> {
                Ok(BatchReport::all_accepted(0))
            }
        }
        let err = open_guarded("p", json("{}"), |_| -> Result<Never, SinkError> {
            panic!("open blew up")
        })
        .into_result()
        .err()
        .expect("error");
        assert_eq!(err.kind, ErrorKind::Panicked);
        assert!(err.message.contains("panicked in open"), "{}", err.message);
    }
}
