//! A hint for a sink that failed to open or to check its keys. The host makes relative paths
//! absolute against the configuration file's folder at the keys a plugin declares as paths
//! (plugin ABI 2.2 `path_keys`); at any other key (every key of a plugin built against ABI
//! 2.0 or 2.1, or a path setting the plugin did not declare) a relative path reaches the
//! plugin as written and is read from the process's working directory. When such a path
//! names nothing from the working directory but something from the configuration's folder,
//! that is almost surely why the sink failed, and the hint says so, with the absolute path to
//! use.
use std::path::Path;

use serde_json::Value as Json;

use super::config::{is_secret_setting, SinkConfig};

/// The hint for `sink`, or `None` when none of its relative paths is in that situation (or the
/// sink was not read from a configuration file, [`SinkConfig::config_dir`]). `resolved` are the
/// plugin's path keys (the host already anchored those).
pub fn relative_path_hint(sink: &SinkConfig, resolved: &[String]) -> Option<String> {
    let config_dir = sink.config_dir.as_deref()?;
    let cwd = std::env::current_dir().unwrap_or_default();
    hint_from(sink, resolved, config_dir, &cwd)
}

/// [`relative_path_hint`] with the working directory given.
fn hint_from(
    sink: &SinkConfig,
    resolved: &[String],
    config_dir: &Path,
    cwd: &Path,
) -> Option<String> {
    let mut found = Vec::new();
    for (key, value) in &sink.settings {
        collect(key, value, config_dir, cwd, &mut found);
    }
    found.retain(|(key, _)| !resolved.contains(key));
    let found: Vec<String> = found
        .into_iter()
        .map(|(key, path)| format!("`{key}` = {path}"))
        .collect();
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "relative paths at keys the plugin does not declare as paths (ABI 2.2 `path_keys`) are \
         read from the working directory {}, not from the configuration's folder; use absolute \
         paths: {}",
        cwd.display(),
        found.join(", ")
    ))
}

/// Every relative string setting (dotted key, absolute path beside the configuration) that is
/// missing from the working directory but present beside the configuration.
fn collect(
    key: &str,
    value: &Json,
    config_dir: &Path,
    cwd: &Path,
    found: &mut Vec<(String, String)>,
) {
    match value {
        Json::Object(table) => {
            for (k, v) in table {
                collect(&format!("{key}.{k}"), v, config_dir, cwd, found);
            }
        }
        Json::String(text) => {
            let leaf = key.rsplit('.').next().unwrap_or(key);
            let path = Path::new(text);
            if text.is_empty() || !path.is_relative() || is_secret_setting(leaf) {
                return;
            }
            let beside_config = config_dir.join(path);
            if !cwd.join(path).exists() && beside_config.exists() {
                found.push((key.to_owned(), beside_config.display().to_string()));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(settings: serde_json::Value) -> SinkConfig {
        let mut table = serde_json::json!({"name": "siem", "plugin": "cef"});
        if let (Some(t), Json::Object(s)) = (table.as_object_mut(), settings) {
            t.extend(s);
        }
        serde_json::from_value(table).expect("sink table")
    }

    #[test]
    fn names_relative_paths_found_only_beside_the_configuration() {
        let config_dir = tempfile::tempdir().expect("dir");
        let cwd = tempfile::tempdir().expect("dir");
        std::fs::write(config_dir.path().join("ca.pem"), "x").expect("write");
        std::fs::write(config_dir.path().join("map.toml"), "x").expect("write");
        std::fs::write(cwd.path().join("map.toml"), "x").expect("write");
        std::fs::write(config_dir.path().join("hunter2"), "x").expect("write");
        let s = sink(serde_json::json!({
            "host": "siem.example",
            "tls": {"ca_file": "ca.pem", "server_name": "siem.example"},
            "field_map": "map.toml",
            "token": "hunter2",
            "absolute": config_dir.path().join("ca.pem"),
        }));
        let hint = hint_from(&s, &[], config_dir.path(), cwd.path()).expect("a hint");
        // Only `tls.ca_file`: `field_map` is found from the working directory too, the token is
        // a secret (its value is never shown), the absolute path is not relative.
        let want = format!(
            "`tls.ca_file` = {}",
            config_dir.path().join("ca.pem").display()
        );
        assert!(hint.ends_with(&want), "{hint}");
        assert!(hint.contains(&cwd.path().display().to_string()), "{hint}");
        assert!(
            !hint.contains("hunter2") && !hint.contains("field_map"),
            "{hint}"
        );
        // Nothing beside the configuration: no hint.
        assert_eq!(hint_from(&s, &[], cwd.path(), config_dir.path()), None);
        // A key the plugin declares as a path was anchored by the host: no hint for it.
        let declared = ["tls.ca_file".to_owned()];
        assert_eq!(
            hint_from(&s, &declared, config_dir.path(), cwd.path()),
            None
        );
    }
}
