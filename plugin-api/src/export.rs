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
use abi_stable::std_types::{RResult, RSlice, RStr};

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
    let result = catch_unwind(AssertUnwindSafe(|| {
        let config: serde_json::Value =
            serde_json::from_str(config_json.as_str()).map_err(|e| {
                SinkError::permanent(format!(
                    "plugin `{plugin}`: settings are not valid JSON: {e}"
                ))
            })?;
        let sink = open(config)?;
        Ok(FfiSink_TO::from_value(
            Guarded::new(plugin, sink),
            TD_Opaque,
        ))
    }));
    match result {
        Ok(Ok(sink)) => RResult::ROk(sink),
        Ok(Err(e)) => RResult::RErr(e),
        Err(payload) => RResult::RErr(SinkError::panicked(format!(
            "plugin `{plugin}` panicked in open: {}",
            panic_message(payload)
        ))),
    }
}

/// Exports a sink plugin's root module. Use it once, at the root of a `cdylib` crate that
/// depends on `azlog-plugin-api` and `abi_stable = "0.11"`:
///
/// ```ignore
/// azlog_plugin_api::export_sink_plugin!(
///     name: "my-sink",                     // what `[[sink]] plugin = "..."` names
///     version: env!("CARGO_PKG_VERSION"),
///     open: my_open,                       // fn(serde_json::Value) -> Result<impl Sink, SinkError>
/// );
/// ```
///
/// `open` receives the sink's own settings (its `[[sink]]` table without the host keys
/// `name`, `plugin`, `filter`, `batch`, `retry`) as a `serde_json::Value`. Every call into
/// the plugin (open, write_batch, flush, health, close, drop) runs under `catch_unwind`.
#[macro_export]
macro_rules! export_sink_plugin {
    (name: $name:expr, version: $version:expr, open: $open:path $(,)?) => {
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
            }
            .leak_into_prefix()
        }

        extern "C" fn __azlog_sink_plugin_open(
            config_json: $crate::__private::abi_stable::std_types::RStr<'_>,
        ) -> $crate::__private::abi_stable::std_types::RResult<
            $crate::sink::SinkBox,
            $crate::SinkError,
        > {
            $crate::export::open_guarded($name, config_json, $open)
        }
    };
}
