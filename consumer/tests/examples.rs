//! Keeps `examples/` from rotting: every `examples/*.toml` passes `azlog-hub check-config` (the
//! binary, with the built sink plugins checking each sink's own keys, harmless values for the
//! environment variables it names and stand-ins for the files it names), none holds an inline
//! secret, `examples/producer.py` (official Python SDK) puts the
//! events it says into the in-process emulator, and the custom sink plugin of
//! `examples/custom-sink` receives what the producer sent through `azlog-hub run`.
mod checkpoint_support;
mod pipeline_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use pipeline_support::{emulator, lib_file, HUB};

/// The sink plugins the examples use (the ABI-mismatch test plugin is left out: check-config
/// refuses a plugin dir holding it).
const PLUGINS: [&str; 5] = [
    "azlog-sink-cef",
    "azlog-sink-leef",
    "azlog-sink-splunk-hec",
    "azlog-sink-file",
    "azlog-sink-kafka",
];

/// The custom sink plugin of `examples/custom-sink`.
const EXAMPLE_PLUGIN: &str = "azlog-example-sink";

/// The examples the docs and README promise; deleting or renaming one fails here.
const PROMISED: [&str; 7] = [
    "arcsight-cef.toml",
    "qradar-leef.toml",
    "splunk-hec.toml",
    "eventhubs-load-balanced.toml",
    "kafka-eventhubs-endpoint.toml",
    "wad-legacy-vm-events.toml",
    "bridge-eventhubs-to-kafka.toml",
];

const EH_CS: &str = "Endpoint=sb://example-ns.servicebus.windows.net/;SharedAccessKeyName=azlog-listen;SharedAccessKey=ZHVtbXkta2V5;EntityPath=insights-logs";
const EH_NS_CS: &str = "Endpoint=sb://example-ns.servicebus.windows.net/;SharedAccessKeyName=azlog-listen;SharedAccessKey=ZHVtbXkta2V5";
const STORAGE_CS: &str = "DefaultEndpointsProtocol=https;AccountName=examplestorage;AccountKey=ZHVtbXkta2V5;EndpointSuffix=core.windows.net";

/// Harmless, well-formed values for every environment variable an example names (`*_env = "NAME"`).
/// An example naming a variable missing here fails the test: add its dummy value.
const DUMMY_ENV: &[(&str, &str)] = &[
    ("AZLOG_EH_CONNECTION_STRING", EH_CS),
    ("AZLOG_EH_KAFKA_CONNECTION_STRING", EH_NS_CS),
    ("AZLOG_BLOB_CONNECTION_STRING", STORAGE_CS),
    ("AZLOG_WAD_PROD_CONNECTION_STRING", STORAGE_CS),
    ("AZLOG_WAD_LEGACY_KEY", "ZHVtbXkta2V5"),
    (
        "AZLOG_SPLUNK_HEC_TOKEN",
        "00000000-0000-0000-0000-000000000000",
    ),
    ("AZLOG_KAFKA_PASSWORD", EH_CS),
];

/// A self-signed CA certificate (EC P-256, valid until 2126) standing in for the CA files the
/// examples name: check-config has each sink's plugin read the files its settings name.
const STAND_IN_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBqTCCAU+gAwIBAgIUI6obeljjhYgwkS2nVk6u0kFF4bowCgYIKoZIzj0EAwIw
KTEnMCUGA1UEAwweYXpsb2ctaHViIGV4YW1wbGVzIHN0YW5kLWluIENBMCAXDTI2
MTEzMDAxNTA0M1oYDzIxMjYxMTA2MDE1MDQzWjApMScwJQYDVQQDDB5hemxvZy1o
dWIgZXhhbXBsZXMgc3RhbmQtaW4gQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AATr2XU3ZDgPYbTsFZsvFMzy6CEikDx6np3uq49b7GUSLffmtmtaxw+tFF4jGfCK
3TYBKqGBGqp2wBsBUm3F0BkIo1MwUTAdBgNVHQ4EFgQUux9D7phamsJG+Sh4SaYs
VHEMIrswHwYDVR0jBBgwFoAUux9D7phamsJG+Sh4SaYsVHEMIrswDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAF/MuyQqgtlVk4QcKw1c8l54GKjZ3L
aTSu+Okp3JmtjQIhALa+u04l4sA/n5/rJMbA1coqhMmgKzKDQQgJnLumzDf9
-----END CERTIFICATE-----
";

/// Stand-ins for the files the examples name (`*_file = "/etc/azlog-hub/..."`); the example is
/// checked with each path pointing at a copy in a temporary folder. An example naming a file
/// missing here (and absent on this machine) fails the test: add its stand-in.
const STAND_IN_FILES: &[(&str, &str)] = &[
    ("/etc/azlog-hub/arcsight-ca.pem", STAND_IN_CA),
    ("/etc/azlog-hub/qradar-ca.pem", STAND_IN_CA),
    ("/etc/azlog-hub/splunk-ca.pem", STAND_IN_CA),
];

/// Keys holding a secret inline; examples must use the `_env` / `_file` forms.
const INLINE_SECRET_KEYS: [&str; 7] = [
    "connection_string",
    "shared_access_key",
    "token",
    "sasl_password",
    "key",
    "sas",
    "password",
];

fn examples_dir() -> PathBuf {
    checkpoint_support::repo_root().join("examples")
}

/// The directory holding the built plugin libraries (see `pipeline_support::built_dir`).
fn built_plugins() -> &'static Path {
    pipeline_support::built_dir()
}

/// A private 0755 plugin dir holding copies (0644) of the real sink plugins only.
fn stage_real_plugins(dir: &Path) -> PathBuf {
    stage(dir, &PLUGINS)
}

/// A private 0755 plugin dir holding copies (0644) of the given plugin crates' libraries.
fn stage(dir: &Path, crates: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let out = dir.join("plugins");
    std::fs::create_dir_all(&out).expect("mkdir plugins");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for c in crates {
        let name = lib_file(c);
        let src = built_plugins().join(&name);
        assert!(src.exists(), "{} is missing; was it built?", src.display());
        let dst = out.join(&name);
        std::fs::copy(&src, &dst).expect("copy plugin");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    out
}

/// Every `(dotted key, value)` of a TOML document whose key satisfies `want`.
fn keys_where(
    v: &toml::Value,
    path: &str,
    want: &dyn Fn(&str) -> bool,
    out: &mut Vec<(String, toml::Value)>,
) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if want(k) {
                    out.push((p.clone(), v.clone()));
                }
                keys_where(v, &p, want, out);
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                keys_where(v, &format!("{path}[{i}]"), want, out);
            }
        }
        _ => {}
    }
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("read examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_config_passes_check_config() {
    let files = example_files();
    let names: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for promised in PROMISED {
        assert!(
            names.contains(promised),
            "examples/{promised} is gone (README and docs point at it)"
        );
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let plugins = stage_real_plugins(tmp.path());
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().expect("file name").to_string_lossy();
        let text = std::fs::read_to_string(file).expect("read example");
        let doc: toml::Value = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("examples/{name} is not valid TOML: {e}"));

        // Secrets only through the environment or files.
        let mut inline = Vec::new();
        keys_where(&doc, "", &|k| INLINE_SECRET_KEYS.contains(&k), &mut inline);
        assert!(
            inline.is_empty(),
            "examples/{name} holds secrets inline ({}): use the `_env` or `_file` form",
            inline
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );

        // The files it names, each replaced by a stand-in (a missing one fails loudly).
        let mut file_keys = Vec::new();
        keys_where(&doc, "", &|k| k.ends_with("_file"), &mut file_keys);
        let mut checked_text = text.clone();
        let stand_ins = tmp.path().join("files").join(&*name);
        for (key, value) in &file_keys {
            let named = value
                .as_str()
                .unwrap_or_else(|| panic!("examples/{name}: {key} must be a path"));
            if Path::new(named).exists() {
                continue;
            }
            let content = STAND_IN_FILES
                .iter()
                .find(|(p, _)| *p == named)
                .map(|(_, c)| *c)
                .unwrap_or_else(|| {
                    panic!(
                        "examples/{name}: {key} names {named}, which does not exist here and \
                         this test has no stand-in for: add it to STAND_IN_FILES in {}",
                        file!()
                    )
                });
            std::fs::create_dir_all(&stand_ins).expect("mkdir stand-ins");
            let copy = stand_ins.join(Path::new(named).file_name().expect("file name"));
            std::fs::write(&copy, content).expect("write stand-in");
            checked_text = checked_text.replace(
                &format!("\"{named}\""),
                &format!("{:?}", copy.display().to_string()),
            );
        }
        let checked_file = if checked_text == text {
            file.clone()
        } else {
            let f = stand_ins.join(&*name);
            std::fs::write(&f, &checked_text).expect("write the example with stand-ins");
            f
        };

        // The variables it names, each with a dummy value (a missing one fails loudly).
        let mut env_keys = Vec::new();
        keys_where(&doc, "", &|k| k.ends_with("_env"), &mut env_keys);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_azlog-hub"));
        cmd.env_clear()
            .env("AZLOG_PLUGIN_DIR", &plugins)
            .env("AZLOG_STATE_DIR", tmp.path().join("state").join(&*name))
            .env("RUST_LOG", "warn")
            .arg("check-config")
            .arg("--config")
            .arg(&checked_file);
        for (key, value) in &env_keys {
            let var = value
                .as_str()
                .unwrap_or_else(|| panic!("examples/{name}: {key} must be a variable name"));
            let dummy = DUMMY_ENV
                .iter()
                .find(|(n, _)| *n == var)
                .map(|(_, v)| *v)
                .unwrap_or_else(|| {
                    panic!(
                        "examples/{name}: {key} names the environment variable {var}, which \
                         this test has no dummy value for: add it to DUMMY_ENV in {}",
                        file!()
                    )
                });
            cmd.env(var, dummy);
        }
        let out = cmd.output().expect("run azlog-hub check-config");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let sinks = doc
            .get("sink")
            .and_then(toml::Value::as_array)
            .map_or(0, Vec::len);
        let sink_lines = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("sink "))
            .count();
        // Every sink's own keys were checked by its plugin (ABI 2.1), not just listed.
        let checked_lines = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("its keys  checked by plugin "))
            .count();
        if !out.status.success()
            || !stdout.contains("OK (nothing was contacted)")
            || sink_lines != sinks
            || checked_lines != sinks
        {
            failures.push(format!(
                "examples/{name}: check-config exit {:?}, {sink_lines} of {sinks} sinks listed, \
                 {checked_lines} with their keys checked\n{stdout}{stderr}",
                out.status.code()
            ));
        } else {
            eprintln!(
                "ok: examples/{name} ({} env vars, {sinks} sinks)",
                env_keys.len()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_config_naming_an_unset_variable_fails_check_config() {
    // The other test relies on check-config resolving the named variables; prove it does.
    let tmp = tempfile::tempdir().expect("tempdir");
    let plugins = stage_real_plugins(tmp.path());
    let out = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .env_clear()
        .env("AZLOG_PLUGIN_DIR", &plugins)
        .env("AZLOG_STATE_DIR", tmp.path().join("state"))
        .arg("check-config")
        .arg("--config")
        .arg(examples_dir().join("arcsight-cef.toml"))
        .output()
        .expect("run azlog-hub check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("AZLOG_EH_CONNECTION_STRING"), "{stdout}");
}

/// Runs examples/producer.py with the test venv's python against `conn`.
fn producer(python: &Path, conn: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(examples_dir().join("producer.py"))
        .args(args)
        .env("EVENTHUB_CONNECTION_STRING", conn)
        .output()
        .expect("run examples/producer.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "producer.py {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `sent N events, R records, B bytes...` → B.
fn sent_bytes(summary: &str) -> u64 {
    summary
        .split(", ")
        .find_map(|p| p.split_once(" bytes").map(|(n, _)| n))
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {summary:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_producer_sends_record_envelopes_to_the_hub() {
    let Some(python) = checkpoint_support::venv_python() else {
        return;
    };
    let em = emulator(4).await;
    let conn = em.connection_string(HUB);
    let counts = |em: &azlog_emulator::EmulatorHandle| -> Vec<(u64, u64)> {
        (0..4)
            .map(|p| {
                let i = em.partition_info(HUB, &p.to_string()).expect("partition");
                (i.retained_events, i.retained_bytes)
            })
            .collect()
    };

    // Pinned to one partition: 5 events of 3 records each, nothing elsewhere.
    let c = conn.clone();
    let py = python.clone();
    let summary = tokio::task::spawn_blocking(move || {
        producer(
            &py,
            &c,
            &["--count", "5", "--per-event", "3", "--partition", "2"],
        )
    })
    .await
    .expect("producer task");
    assert!(summary.contains("sent 5 events, 15 records"), "{summary}");
    let after = counts(&em);
    assert_eq!(
        after.iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![0, 0, 5, 0],
        "{summary}"
    );
    assert!(
        after[2].1 >= sent_bytes(&summary),
        "partition 2 holds {} bytes, the bodies alone were {}",
        after[2].1,
        sent_bytes(&summary)
    );

    // Unpinned, a whole file per event (the default), another file given: 7 more events.
    let records = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(
        records.path(),
        "{\"time\":\"2024-05-14T09:12:31Z\",\"category\":\"Administrative\",\"operationName\":\"X\"}\n\
         {\"time\":\"2024-05-14T09:12:32Z\",\"category\":\"Administrative\",\"operationName\":\"Y\"}\n",
    )
    .expect("write records");
    let c = conn.clone();
    let py = python.clone();
    let file = records.path().to_path_buf();
    let summary = tokio::task::spawn_blocking(move || {
        producer(
            &py,
            &c,
            &["--count", "7", file.to_str().expect("utf-8 path")],
        )
    })
    .await
    .expect("producer task");
    assert!(summary.contains("sent 7 events, 14 records"), "{summary}");
    let total: u64 = counts(&em).iter().map(|c| c.0).sum();
    assert_eq!(total, 12, "{:?}", counts(&em));
    em.shutdown().await.expect("emulator shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_to_custom_sink_plugin_through_the_service() {
    let Some(python) = checkpoint_support::venv_python() else {
        return;
    };
    let em = emulator(2).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let plugins = stage(tmp.path(), &[EXAMPLE_PLUGIN]);
    let lines_path = tmp.path().join("lines.txt");
    let config = tmp.path().join("azlog-hub.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "{state}"
plugin_dir = "{plugins}"
[source.eventhubs]
connection_string_env = "EVENTHUB_CONNECTION_STRING"
start_position = "earliest"
[checkpoint]
every_ms = 200
[metrics]
log_interval_secs = 0
[[sink]]
name = "lines"
plugin = "example-sink"
path = "{lines}"
fields = ["event.dataset", "azure.category", "correlation"]
[sink.batch]
linger_ms = 50
"#,
            state = tmp.path().join("state").display(),
            plugins = plugins.display(),
            lines = lines_path.display(),
        ),
    )
    .expect("write config");

    // 6 events × 4 records (8 distinct activity-log records, cycled) from the producer.
    let records = tmp.path().join("records.ndjson");
    let ndjson: String = (0..8)
        .map(|i| pipeline_support::crash_record(i) + "\n")
        .collect();
    std::fs::write(&records, ndjson).expect("write records");
    let conn = em.connection_string(HUB);
    let c = conn.clone();
    let file = records.clone();
    let summary = tokio::task::spawn_blocking(move || {
        producer(
            &python,
            &c,
            &[
                "--count",
                "6",
                "--per-event",
                "4",
                file.to_str().expect("utf-8 path"),
            ],
        )
    })
    .await
    .expect("producer task");
    assert!(summary.contains("sent 6 events, 24 records"), "{summary}");

    let log = tmp.path().join("run.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("AZLOG_PLUGIN_DIR")
        .env("EVENTHUB_CONNECTION_STRING", &conn)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn azlog-hub run");
    let read_lines = || {
        std::fs::read_to_string(&lines_path)
            .map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let done = pipeline_support::wait_until(std::time::Duration::from_secs(60), || {
        read_lines().len() >= 24
    })
    .await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait for azlog-hub");
    let lines = read_lines();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        done && lines.len() == 24,
        "{} lines from the example sink:\n{}\nlog:\n{log_text}",
        lines.len(),
        lines.join("\n")
    );
    assert!(
        status.success(),
        "azlog-hub run exit {status:?}\n{log_text}"
    );
    eprintln!("example sink, first line: {}", lines[0]);
    for line in &lines {
        let (position, rest) = line.split_once(' ').expect("position first");
        let (partition, sequence) = position.split_once('/').expect("partition/sequence");
        assert!(partition == "0" || partition == "1", "{line}");
        assert!(sequence.parse::<i64>().is_ok(), "{line}");
        assert!(
            rest.starts_with("event.dataset=azure.activitylogs azure.category=Administrative ("),
            "{line}"
        );
        assert!(rest.ends_with(" azure.*)"), "{line}");
    }
    em.shutdown().await.expect("emulator shutdown");
}
