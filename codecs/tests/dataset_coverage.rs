//! Every dataset a schema table can produce has its own entry in each sink map: a CEF and a LEEF
//! header product and a Splunk sourcetype. A dataset added to `schemas/` without them would
//! silently fall back to the generic defaults.
use std::collections::BTreeSet;
use std::path::Path;

fn schemas_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas"))
}

/// The `dataset = "..."` values of every schema table.
fn table_datasets() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let entries = std::fs::read_dir(schemas_dir()).expect("read schemas/");
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read table");
        let doc: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
        collect_datasets(&toml::Value::Table(doc), &mut out);
    }
    out
}

fn collect_datasets(v: &toml::Value, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                if k == "dataset" {
                    if let toml::Value::String(s) = v {
                        out.insert(s.clone());
                    }
                }
                collect_datasets(v, out);
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| collect_datasets(v, out)),
        _ => {}
    }
}

fn sink_map(name: &str) -> toml::Table {
    let path = schemas_dir().join("sinks").join(name);
    let text = std::fs::read_to_string(&path).expect("read sink map");
    toml::from_str(&text).expect("sink map is TOML")
}

fn keys<'a>(t: &'a toml::Table, path: &[&str]) -> BTreeSet<&'a str> {
    let mut cur = t;
    for p in path {
        cur = cur
            .get(*p)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("missing table {path:?}"));
    }
    cur.keys().map(String::as_str).collect()
}

#[test]
fn every_table_dataset_has_a_cef_leef_and_splunk_entry() {
    let datasets = table_datasets();
    assert!(
        datasets.len() >= 8,
        "expected the built-in datasets, found {datasets:?}"
    );
    let cef = sink_map("cef.toml");
    let leef = sink_map("leef.toml");
    let splunk = sink_map("splunk.toml");
    let cef_keys = keys(&cef, &["header", "dataset"]);
    let leef_keys = keys(&leef, &["header", "dataset"]);
    let splunk_keys = keys(&splunk, &["dataset"]);
    for ds in &datasets {
        assert!(
            cef_keys.contains(ds.as_str()),
            "cef.toml lacks [header.dataset.\"{ds}\"]"
        );
        assert!(
            leef_keys.contains(ds.as_str()),
            "leef.toml lacks [header.dataset.\"{ds}\"]"
        );
        assert!(
            splunk_keys.contains(ds.as_str()),
            "splunk.toml [dataset] lacks \"{ds}\""
        );
    }
    // And no sink entry names a dataset no table produces (a typo would never match).
    for (file, ks) in [
        ("cef", &cef_keys),
        ("leef", &leef_keys),
        ("splunk", &splunk_keys),
    ] {
        for k in ks.iter() {
            assert!(datasets.contains(*k), "{file} names unknown dataset {k:?}");
        }
    }
}
