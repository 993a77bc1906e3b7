//! Shared helpers of the pipeline/service tests: built plugins staged into a private plugin
//! dir, sample records tagged with ids, configs, and file-sink readers.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use azlog_mapper::envelope::{EnvelopeConfig, RecordReader};

/// Plugin crates the pipeline tests load.
pub const PLUGIN_CRATES: [&str; 3] = ["azlog-sink-file", "azlog-test-sink", "azlog-sink-cef"];

/// Every plugin crate any consumer test loads (built when `AZLOG_PLUGIN_DIR` is not set).
const BUILT_CRATES: [&str; 8] = [
    "azlog-sink-file",
    "azlog-test-sink",
    "azlog-sink-cef",
    "azlog-sink-leef",
    "azlog-sink-splunk-hec",
    "azlog-sink-kafka",
    "azlog-test-abi-mismatch",
    "azlog-example-sink",
];

/// Directory holding the built plugin libraries (`AZLOG_PLUGIN_DIR`, else builds them).
pub fn built_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(d) = std::env::var("AZLOG_PLUGIN_DIR") {
            return PathBuf::from(d);
        }
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.arg("build").arg("--quiet");
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        for c in BUILT_CRATES {
            cmd.args(["-p", c]);
        }
        let status = cmd
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("run cargo build for the plugin crates");
        assert!(status.success(), "building the plugin crates failed");
        let exe = std::env::current_exe().expect("current exe");
        exe.parent()
            .and_then(Path::parent)
            .expect("target profile dir")
            .to_path_buf()
    })
}

/// The library file name a plugin crate builds (`libazlog_sink_file.so` on Linux).
pub fn lib_file(krate: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        krate.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Copies the test plugins into `dir/plugins` (0755/0644) and returns that path.
pub fn stage_plugins(dir: &Path) -> PathBuf {
    let out = dir.join("plugins");
    std::fs::create_dir_all(&out).expect("mkdir plugins");
    copy_plugins(&out, &PLUGIN_CRATES);
    out
}

/// Makes `out` a 0755 plugin dir holding copies (0644) of the given plugin crates' libraries.
pub fn copy_plugins(out: &Path, crates: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for c in crates {
        let name = lib_file(c);
        let src = built_dir().join(&name);
        assert!(src.exists(), "{} is missing; was it built?", src.display());
        let dst = out.join(&name);
        std::fs::copy(&src, &dst).expect("copy plugin");
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
}

/// The bundled example records (one per family), compact JSON.
pub fn sample_records() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/records/azure-sample.json"
    ))
    .expect("read sample");
    RecordReader::new(text.as_bytes(), EnvelopeConfig::default())
        .map(|r| r.expect("split"))
        .filter(|r| r.error.is_none())
        .map(|r| String::from_utf8(r.json).expect("utf8"))
        .collect()
}

/// Adds `"azlogTestId": id` as the first key of a record object.
pub fn tag(record: &str, id: &str) -> String {
    let rest = record
        .trim_start()
        .strip_prefix('{')
        .expect("a JSON object");
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!("{{\"azlogTestId\":\"{id}\"{sep}{rest}")
}

/// `{"records":[...]}` of the given records.
pub fn envelope(records: &[String]) -> String {
    format!("{{\"records\":[{}]}}", records.join(","))
}

/// The Event Hubs connection string [`write_config`] writes: valid, never contacted.
pub const PLACEHOLDER_EVENTHUBS: &str = "Endpoint=sb://test.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=logs";

/// Writes `azlog-hub.toml` into `dir` and returns its path. `sinks` are `[[sink]]` tables;
/// `extra` is appended (e.g. `[checkpoint]` overrides).
pub fn write_config(dir: &Path, plugin_dir: &Path, sinks: &str, extra: &str) -> PathBuf {
    write_hub_config(dir, plugin_dir, sinks, extra, PLACEHOLDER_EVENTHUBS)
}

/// [`write_config`] with the Event Hubs source reading `connection_string` (an emulator's).
pub fn write_hub_config(
    dir: &Path,
    plugin_dir: &Path,
    sinks: &str,
    extra: &str,
    connection_string: &str,
) -> PathBuf {
    // One source per configuration: `extra` with a [source.wad] replaces the Event Hubs one.
    let eventhubs = if extra.contains("[source.wad]") || extra.contains("[source.kafka]") {
        String::new()
    } else {
        format!("[source.eventhubs]\nconnection_string = \"{connection_string}\"\nstart_position = \"earliest\"\n")
    };
    let text = format!(
        r#"state_dir = "{state}"
plugin_dir = "{plugins}"

{eventhubs}
[metrics]
log_interval_secs = 0

{extra}

{sinks}
"#,
        state = dir.join("state").display(),
        plugins = plugin_dir.display(),
    );
    let path = dir.join("azlog-hub.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Stages the plugins in `dir` and writes a configuration (see [`write_hub_config`]) with one
/// raw file sink `files` into `dir/out/raw.ndjson`; returns the configuration's path and the
/// sink's file.
pub fn write_raw_file_config(
    dir: &Path,
    extra: &str,
    connection_string: &str,
) -> (PathBuf, PathBuf) {
    let plugins = stage_plugins(dir);
    let out = dir.join("out/raw.ndjson");
    let sinks = raw_file_sink("files", &out);
    (
        write_hub_config(dir, &plugins, &sinks, extra, connection_string),
        out,
    )
}

/// A file sink writing the original records, one per line.
pub fn raw_file_sink(name: &str, path: &Path) -> String {
    format!(
        r#"[[sink]]
name = "{name}"
plugin = "file"
path = "{}"
format = "raw"
[sink.batch]
max_records = 100
linger_ms = 20
"#,
        path.display()
    )
}

/// The `azlogTestId` of each line of a raw (or ECS, via event.original) file-sink file.
/// A last line without its newline is one the sink is still writing (a test polling while the
/// service runs can read it half-written): it is left for the next read.
pub fn read_ids(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("sink line is JSON");
            let id = v
                .get("azlogTestId")
                .and_then(|x| x.as_str())
                .map(str::to_owned)
                .or_else(|| {
                    let orig = v.pointer("/event/original").and_then(|o| o.as_str())?;
                    let o: serde_json::Value = serde_json::from_str(orig).ok()?;
                    o.get("azlogTestId")?.as_str().map(str::to_owned)
                });
            id.unwrap_or_else(|| panic!("line without azlogTestId: {l}"))
        })
        .collect()
}

/// Polls `cond` until true or `timeout`.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Loads a test configuration with the process environment, except AZLOG_PLUGIN_DIR: the
/// configuration names the staged plugins (a build folder may also hold test plugins the host
/// refuses, such as the ABI-mismatch one).
pub fn load_config(path: &Path) -> azlog_hub::config::HubConfig {
    let text = std::fs::read_to_string(path).expect("read config");
    azlog_hub::config::HubConfig::parse(&text, path, &|k| {
        (k != "AZLOG_PLUGIN_DIR")
            .then(|| std::env::var(k).ok())
            .flatten()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Record `id` of the crash tests: a small activity-log record tagged `id<id>`.
pub fn crash_record(id: usize) -> String {
    format!(
        r#"{{"azlogTestId":"id{id}","time":"2024-05-01T10:00:00Z","resourceId":"/SUBSCRIPTIONS/6D3B/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.WEB/SITES/APP{p}","operationName":"MICROSOFT.WEB/SITES/WRITE","category":"Administrative","resultType":"Success","callerIpAddress":"203.0.113.9","correlationId":"c{id}","level":"Information"}}"#,
        p = id % 7
    )
}

/// Starts `azlog-hub run --config <config>` (the binary under test) with `RUST_LOG=<rust_log>`,
/// its stderr appended to `log`, plugins from the config only.
pub fn spawn_run(config: &Path, log: &Path, rust_log: &str) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    std::process::Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("AZLOG_PLUGIN_DIR")
        .env("RUST_LOG", rust_log)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn azlog-hub run")
}

/// A free local address (bound once, then released) for an endpoint a test starts.
pub fn free_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// `GET path` on the service's metrics endpoint; asserts a 200 and returns the whole response.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("metrics");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("response");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// The values of every sample on a `/metrics` page whose line starts with `name` (a metric
/// name, or a name with its labels, e.g. `azlog_wad_pages_total{table="a/t"}`).
pub fn metric(page: &str, name: &str) -> Vec<f64> {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// The hub of [`emulator`].
pub const HUB: &str = "azure-logs";

/// An in-process emulator serving [`HUB`] with `partitions` partitions.
pub async fn emulator(partitions: u32) -> azlog_emulator::EmulatorHandle {
    azlog_emulator::start(azlog_emulator::EmulatorConfig::ephemeral(vec![
        azlog_emulator::HubSpec::new(HUB, partitions),
    ]))
    .await
    .expect("emulator starts")
}

/// Publishes `events` events of `per_event` tagged sample records, round-robin over the
/// partitions; returns the ids.
pub fn publish(
    em: &azlog_emulator::EmulatorHandle,
    prefix: &str,
    events: usize,
    per_event: usize,
    partitions: u32,
) -> std::collections::BTreeSet<String> {
    let records = sample_records();
    let mut ids = std::collections::BTreeSet::new();
    let mut n = 0;
    for e in 0..events {
        let body: Vec<String> = (0..per_event)
            .map(|_| {
                let id = format!("{prefix}{n}");
                n += 1;
                ids.insert(id.clone());
                tag(&records[n % records.len()], &id)
            })
            .collect();
        let p = (e % partitions as usize).to_string();
        em.publish(HUB, Some(&p), None, bytes::Bytes::from(envelope(&body)))
            .unwrap();
    }
    ids
}

/// The `azlogTestId` of a record's JSON.
pub fn id_of(value: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(value).expect("value is JSON");
    v["azlogTestId"].as_str().expect("azlogTestId").to_owned()
}
