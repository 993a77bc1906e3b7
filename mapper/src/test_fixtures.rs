//! The record fixtures (`tests/fixtures/records`) for the crate's unit tests.

/// Every JSON object in the record fixtures (`tests/fixtures/records`), or none when that
/// folder is absent.
pub(crate) fn fixture_records() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/records");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let records: Vec<String> = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(o)) => match o.get("records") {
                Some(serde_json::Value::Array(items)) => {
                    items.iter().map(|i| i.to_string()).collect()
                }
                _ => vec![serde_json::Value::Object(o).to_string()],
            },
            Ok(serde_json::Value::Array(items)) => items.iter().map(|i| i.to_string()).collect(),
            _ => text
                .lines()
                .filter(|l| l.trim_start().starts_with('{'))
                .map(str::to_owned)
                .collect(),
        };
        out.extend(
            records
                .into_iter()
                .filter(|r| serde_json::from_str::<serde_json::Value>(r).is_ok()),
        );
    }
    out
}
