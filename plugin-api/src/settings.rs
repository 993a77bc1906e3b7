//! Deserializing a sink's settings with errors that name the key.
//!
//! `serde_json` names the key of an unknown or missing field, but not of a value of the wrong
//! type (`invalid type: string "514", expected u16`). [`parse`] finds that key, so a plugin's
//! `check` (and `open`) can say `` `port`: invalid type ... `` or `` `tls.ca_file`: ... ``.
//! Plugins use it in the settings parser they give [`crate::export_sink_plugin!`].
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Deserializes `value` into `T`. On a type or value error the message is prefixed with the
/// dotted path of the key holding the bad value (when it can be found).
///
/// The key is found by elimination: serde stops at the first bad value while it walks the
/// table, so removing that key (and only that key) changes the error; tables are searched
/// the same way one level down. Settings tables are small, so the extra attempts are cheap,
/// and they happen only on error.
pub fn parse<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    let original = match serde_json::from_value::<T>(value.clone()) {
        Ok(t) => return Ok(t),
        Err(e) => e.to_string(),
    };
    if let (Some(key), Value::Object(root)) = (unknown_field(&original), &value) {
        // serde names an unknown key but not the table it sits in.
        if !root.contains_key(key) {
            if let Some(path) = find_key(root, key) {
                return Err(format!("`{}`: {original}", path.join(".")));
            }
        }
        return Err(original);
    }
    let locatable = [
        "invalid type",
        "invalid value",
        "invalid length",
        "data did not match any variant",
    ]
    .iter()
    .any(|p| original.starts_with(p));
    if !locatable {
        return Err(original);
    }
    let Value::Object(root) = value else {
        return Err(original);
    };
    let mut path = Vec::new();
    if locate::<T>(&root, &mut Vec::new(), &original, &mut path) {
        Err(format!("`{}`: {original}", path.join(".")))
    } else {
        Err(original)
    }
}

/// True (with `found` set) when removing some key under `prefix` changes the error.
fn locate<T: DeserializeOwned>(
    root: &Map<String, Value>,
    prefix: &mut Vec<String>,
    original: &str,
    found: &mut Vec<String>,
) -> bool {
    let Some(table) = lookup(root, prefix) else {
        return false;
    };
    let keys: Vec<(String, bool)> = table
        .iter()
        .map(|(k, v)| (k.clone(), v.is_object()))
        .collect();
    for (key, is_table) in keys {
        let mut without = root.clone();
        if let Some(t) = lookup_mut(&mut without, prefix) {
            t.remove(&key);
        }
        let changed = match serde_json::from_value::<T>(Value::Object(without)) {
            Ok(_) => true,
            Err(e) => e.to_string() != original,
        };
        if changed {
            prefix.push(key);
            if is_table && locate::<T>(root, prefix, original, found) {
                return true;
            }
            *found = prefix.clone();
            return true;
        }
    }
    false
}

/// The key of serde's "unknown field `key`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key)
}

/// The dotted path of the first nested table holding `key`.
fn find_key(table: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    for (k, v) in table {
        if let Value::Object(inner) = v {
            if inner.contains_key(key) {
                return Some(vec![k.clone()]);
            }
            if let Some(mut path) = find_key(inner, key) {
                path.insert(0, k.clone());
                return Some(path);
            }
        }
    }
    None
}

fn lookup<'a>(root: &'a Map<String, Value>, path: &[String]) -> Option<&'a Map<String, Value>> {
    let mut t = root;
    for k in path {
        t = t.get(k)?.as_object()?;
    }
    Some(t)
}

fn lookup_mut<'a>(
    root: &'a mut Map<String, Value>,
    path: &[String],
) -> Option<&'a mut Map<String, Value>> {
    let mut t = root;
    for k in path {
        t = t.get_mut(k)?.as_object_mut()?;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tls {
        ca_file: Option<String>,
        #[serde(default)]
        verify: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct S {
        host: String,
        #[serde(default)]
        port: Option<u16>,
        #[serde(default)]
        tls: Option<Tls>,
    }

    #[test]
    fn names_the_key_of_a_bad_value() {
        let e = parse::<S>(json!({"host": "h", "port": "514"})).unwrap_err();
        assert!(e.starts_with("`port`: invalid type: string"), "{e}");
        let e = parse::<S>(json!({"host": "h", "port": 70000})).unwrap_err();
        assert!(e.starts_with("`port`: invalid value"), "{e}");
        // A required key before the bad one is not blamed.
        let e = parse::<S>(json!({"a": 1, "host": 5})).unwrap_err();
        assert!(e.starts_with("unknown field `a`"), "{e}");
        let e = parse::<S>(json!({"host": 5, "port": 1})).unwrap_err();
        assert!(e.starts_with("`host`: invalid type"), "{e}");
        let e =
            parse::<S>(json!({"host": "h", "port": "x", "tls": {"ca_file": "/a"}})).unwrap_err();
        assert!(e.starts_with("`port`:"), "{e}");
    }

    #[test]
    fn names_nested_keys() {
        let e = parse::<S>(json!({"host": "h", "tls": {"ca_file": "/a", "verify": "yes"}}))
            .unwrap_err();
        assert!(e.starts_with("`tls.verify`: invalid type"), "{e}");
        let e = parse::<S>(json!({"host": "h", "tls": {"ca_fil": "/a"}})).unwrap_err();
        assert!(e.starts_with("`tls`: unknown field `ca_fil`"), "{e}");
    }

    #[test]
    fn passes_through_what_serde_already_names() {
        let e = parse::<S>(json!({"port": 1})).unwrap_err();
        assert_eq!(e, "missing field `host`");
        let ok: S = parse(json!({"host": "h", "port": 514})).expect("valid");
        assert_eq!(ok.port, Some(514));
    }
}
