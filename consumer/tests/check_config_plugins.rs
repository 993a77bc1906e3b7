//! `azlog-hub check-config` checks each `[[sink]]`'s own keys with its real plugin (plugin ABI
//! 2.1 `check`), without connecting: typos, bad types, missing files and unset variables fail
//! with the sink and the key named, secrets never printed; relative paths at a plugin's path
//! keys are read from the configuration's folder; a plugin built against ABI 2.0 still loads
//! and runs, and is reported as unable to check its keys (not a failure), and one built
//! against ABI 2.1 gets its settings as written.
mod pipeline_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use azlog_hub::sink_host::loader::SettingsCheck;
use azlog_hub::sink_host::PluginRegistry;
use pipeline_support::{built_dir, copy_plugins, lib_file, write_config};

/// The real sink plugins plus the configurable test sink.
const PLUGINS: [&str; 6] = [
    "azlog-sink-cef",
    "azlog-sink-leef",
    "azlog-sink-splunk-hec",
    "azlog-sink-file",
    "azlog-sink-kafka",
    "azlog-test-sink",
];

/// The stand-in for a plugin built against ABI 2.0 (root module without `check`).
const OLD_PLUGIN: &str = "azlog-test-abi-2-0";

/// The stand-in for a plugin built against ABI 2.1 (`check`, no `path_keys`).
const PLUGIN_2_1: &str = "azlog-test-abi-2-1";

/// The built plugin dir, with the ABI 2.0 and 2.1 stand-ins built too (they are not in the
/// shared list of `pipeline_support`; with `AZLOG_PLUGIN_DIR` set, the workspace build made
/// them).
fn plugins_built() -> &'static Path {
    static DONE: OnceLock<()> = OnceLock::new();
    let dir = built_dir();
    DONE.get_or_init(|| {
        if std::env::var_os("AZLOG_PLUGIN_DIR").is_some() {
            return;
        }
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", OLD_PLUGIN, "-p", PLUGIN_2_1]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("run cargo build for the ABI 2.0 test plugin");
        assert!(status.success(), "building {OLD_PLUGIN} failed");
    });
    dir
}

/// A private plugin dir (0755) with copies of `crates`.
fn stage(dir: &Path, crates: &[&str]) -> PathBuf {
    plugins_built();
    let out = dir.join("plugins");
    std::fs::create_dir_all(&out).expect("mkdir plugins");
    copy_plugins(&out, crates);
    out
}

fn check_config(config: &Path) -> (Option<i32>, String) {
    check_config_in(config, None)
}

/// [`check_config`] run from `cwd` (else the test's own working directory).
fn check_config_in(config: &Path, cwd: Option<&Path>) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_azlog-hub"));
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out: Output = cmd
        .arg("check-config")
        .arg("--config")
        .arg(config)
        .env_remove("AZLOG_PLUGIN_DIR")
        .env_remove("AZLOG_EVENTHUBS_CONNECTION_STRING")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run azlog-hub check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The problem line naming sink `name`.
fn problem<'a>(out: &'a str, name: &str) -> &'a str {
    let tag = format!("[[sink]] name = \"{name}\"");
    out.lines()
        .find(|l| l.contains(&tag))
        .unwrap_or_else(|| panic!("no problem reported for sink {name}:\n{out}"))
}

#[test]
fn valid_sinks_are_checked_by_their_plugins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage(dir.path(), &PLUGINS);
    let token = dir.path().join("hec.token");
    std::fs::write(&token, "00000000-0000-0000-0000-000000000000\n").expect("token");
    let sinks = format!(
        r#"
[[sink]]
name = "siem"
plugin = "cef"
host = "siem.example"
port = 6514
protocol = "tcp"
[sink.tls]
server_name = "siem.example"

[[sink]]
name = "qradar"
plugin = "leef"
host = "qradar.example"
protocol = "udp"
delimiter = "^"

[[sink]]
name = "splunk"
plugin = "splunk-hec"
url = "https://splunk.example:8088"
token_file = "{token}"
ack = true

[[sink]]
name = "files"
plugin = "file"
path = "{out}"

[[sink]]
name = "bridge"
plugin = "kafka"
brokers = ["kafka.example:9092"]
[sink.properties]
"socket.timeout.ms" = 30000
"#,
        token = token.display(),
        out = dir.path().join("not-yet/out.ndjson").display(),
    );
    let config = write_config(dir.path(), &plugins, &sinks, "");
    let (code, out) = check_config(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("OK (nothing was contacted)"), "{out}");
    for (sink, plugin) in [
        ("siem", "cef"),
        ("qradar", "leef"),
        ("splunk", "splunk-hec"),
        ("files", "file"),
        ("bridge", "kafka"),
    ] {
        let line = format!(
            "sink        {sink} (plugin {plugin})\n    its keys  checked by plugin {plugin} "
        );
        assert!(out.contains(&line), "missing {line:?} in:\n{out}");
    }
    assert!(
        !dir.path().join("not-yet").exists(),
        "checking the file sink must not create its folder"
    );
}

#[test]
fn relative_sink_paths_are_read_from_the_configuration_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage(dir.path(), &["azlog-sink-cef", "azlog-sink-file"]);
    let ca = dir.path().join("siem-ca.pem");
    std::fs::write(&ca, "not a certificate\n").expect("ca file");
    std::fs::create_dir(dir.path().join("logs")).expect("logs dir");
    std::fs::write(dir.path().join("blocker"), "a file, not a folder\n").expect("file");
    let sinks = r#"
[[sink]]
name = "siem-relative-ca"
plugin = "cef"
host = "siem.example"
protocol = "tls"
[sink.tls]
ca_file = "siem-ca.pem"

[[sink]]
name = "archive"
plugin = "file"
path = "logs/azure.ndjson"

[[sink]]
name = "archive-under-a-file"
plugin = "file"
path = "blocker/azure.ndjson"
"#;
    let config = write_config(dir.path(), &plugins, sinks, "");
    // Run from elsewhere (as a service usually is) and from the configuration's folder: the
    // plugins see the same absolute paths, beside the configuration, either way.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    for cwd in [elsewhere.path(), dir.path()] {
        let (code, out) = check_config_in(&config, Some(cwd));
        assert_eq!(code, Some(1), "{out}");
        // The cef plugin read the file beside the configuration (and refused it as no
        // certificate), naming the absolute path; no hint, the path was not the problem.
        let line = problem(&out, "siem-relative-ca");
        assert!(line.contains(&ca.display().to_string()), "{line}");
        assert!(line.contains("certificate"), "{line}");
        assert!(!line.contains("use absolute paths"), "{line}");
        assert!(!out.contains("name = \"archive\""), "{out}");
        // `blocker` is a file beside the configuration (and nothing in `elsewhere`): the file
        // sink cannot make a folder of it, and says so with the absolute path.
        let line = problem(&out, "archive-under-a-file");
        let blocker = dir.path().join("blocker");
        assert!(line.contains(&blocker.display().to_string()), "{line}");
    }
    // The `archive` sink alone: its folder exists beside the configuration only, and it checks
    // from elsewhere.
    let sinks = "[[sink]]\nname = \"archive\"\nplugin = \"file\"\npath = \"logs/azure.ndjson\"\n";
    let config = write_config(dir.path(), &plugins, sinks, "");
    let (code, out) = check_config_in(&config, Some(elsewhere.path()));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("sink        archive (plugin file)\n    its keys  checked by plugin file"),
        "{out}"
    );
    let folder = std::path::absolute(dir.path()).expect("absolute");
    assert!(
        out.contains(&format!(
            "; relative paths read from {}: `path`",
            folder.display()
        )),
        "{out}"
    );
    assert!(!out.contains("built before plugin ABI 2.2"), "{out}");
}

#[test]
fn a_plugin_built_for_abi_2_1_reads_relative_paths_as_written_and_gets_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage(dir.path(), &[PLUGIN_2_1]);
    let beside = dir.path().join("lookup.csv");
    std::fs::write(&beside, "a,b\n").expect("file");

    // In process: the 2.1 plugin loads, has `check`, declares no path keys.
    let reg = PluginRegistry::load_dir(&plugins).expect("a 2.1 plugin must load");
    let old = reg.get("sink-2-1").expect("sink-2-1");
    assert_eq!(old.abi_version, "2.1.0");
    assert!(old.path_keys.is_empty());
    assert_eq!(
        old.check("{}").expect("valid"),
        SettingsCheck::Checked { notes: vec![] }
    );
    let json = format!(r#"{{"file": {:?}}}"#, beside.display().to_string());
    assert!(old.open(&json).is_ok());

    // check-config from elsewhere: the relative `file` reaches the plugin as written, the plugin
    // does not find it in the working directory, and the problem says what to write instead.
    let sinks = "[[sink]]\nname = \"legacy\"\nplugin = \"sink-2-1\"\nfile = \"lookup.csv\"\n";
    let config = write_config(dir.path(), &plugins, sinks, "");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let (code, out) = check_config_in(&config, Some(elsewhere.path()));
    assert_eq!(code, Some(1), "{out}");
    let line = problem(&out, "legacy");
    assert!(line.contains("use absolute paths"), "{line}");
    assert!(
        line.contains(&format!("`file` = {}", beside.display())),
        "{line}"
    );
    // From the configuration's folder the plugin finds it, and the sink's line says how the
    // plugin reads relative paths.
    let (code, out) = check_config_in(&config, Some(dir.path()));
    assert_eq!(code, Some(0), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("checked by plugin sink-2-1"))
        .unwrap_or_else(|| panic!("no line for the 2.1 sink:\n{out}"));
    assert!(
        line.contains("note: built before plugin ABI 2.2")
            && line.contains("from the working directory"),
        "{line}"
    );
}

#[test]
fn broken_plugin_keys_fail_naming_the_sink_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage(dir.path(), &PLUGINS);
    let unset_var = format!("AZLOG_TEST_UNSET_HEC_TOKEN_{}", std::process::id());
    let sinks = format!(
        r#"
[[sink]]
name = "siem-typo"
plugin = "cef"
hots = "siem.example"

[[sink]]
name = "qradar-port"
plugin = "leef"
port = "514"

[[sink]]
name = "siem-tls"
plugin = "cef"
protocol = "tls"
[sink.tls]
ca_file = "{missing}/ca.pem"

[[sink]]
name = "siem-tls-typo"
plugin = "cef"
protocol = "tls"
[sink.tls]
ca_fil = "/etc/ssl/ca.pem"

[[sink]]
name = "splunk-file"
plugin = "splunk-hec"
url = "https://splunk.example:8088"
token_file = "{missing}/hec.token"

[[sink]]
name = "splunk-env"
plugin = "splunk-hec"
url = "https://splunk.example:8088"
token_env = "{unset_var}"

[[sink]]
name = "bridge-ca"
plugin = "kafka"
brokers = "kafka.example:9093"
security_protocol = "ssl"
ssl_ca_file = "{missing}/kafka-ca.pem"

[[sink]]
name = "bridge-prop"
plugin = "kafka"
brokers = "kafka.example:9093"
[sink.properties]
"no.such.property" = "1"

[[sink]]
name = "files-dir"
plugin = "file"
path = "{dir}"

[[sink]]
name = "panics"
plugin = "test-sink"
panic_in_check = true

[[sink]]
name = "not-installed"
plugin = "no-such-plugin"
"#,
        missing = dir.path().join("missing").display(),
        dir = dir.path().display(),
    );
    let config = write_config(dir.path(), &plugins, &sinks, "");
    let (code, out) = check_config(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("OK (nothing was contacted)"), "{out}");
    for (sink, wants) in [
        ("siem-typo", &["plugin `cef`", "unknown field `hots`"][..]),
        (
            "qradar-port",
            &["`port`: invalid type: string \"514\", expected u16"],
        ),
        ("siem-tls", &["`tls.ca_file`", "missing/ca.pem"]),
        ("siem-tls-typo", &["`tls`: unknown field `ca_fil`"]),
        ("splunk-file", &["token_file", "missing/hec.token"]),
        ("splunk-env", &[unset_var.as_str(), "is not set"]),
        ("bridge-ca", &["`ssl_ca_file`", "missing/kafka-ca.pem"]),
        ("bridge-prop", &["no.such.property"]),
        ("files-dir", &["`path`", "is a directory"]),
        ("panics", &["panicked in check"]),
        (
            "not-installed",
            &["plugin `no-such-plugin` is not in", "plugins"],
        ),
    ] {
        let line = problem(&out, sink);
        for want in wants {
            assert!(
                line.contains(want),
                "sink {sink}: missing {want:?} in {line:?}"
            );
        }
    }
    assert!(
        !dir.path().join("missing").exists(),
        "check-config must not create what the settings name"
    );
}

#[test]
fn secrets_given_in_the_file_never_appear_in_the_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage(dir.path(), &PLUGINS);
    let file_secret = "FILE-SECRET-TOKEN with-a-space";
    let token_file = dir.path().join("bad.token");
    std::fs::write(&token_file, file_secret).expect("token file");
    let sinks = format!(
        r#"
[[sink]]
name = "inline-typed"
plugin = "splunk-hec"
url = "https://splunk.example:8088"
token = 4242424242424242

[[sink]]
name = "inline-twice"
plugin = "splunk-hec"
url = "https://splunk.example:8088"
token = "INLINE-SECRET-TOKEN-VALUE"
token_file = "{token_file}"

[[sink]]
name = "bad-file-token"
plugin = "splunk-hec"
url = "https://splunk.example:8088"
token_file = "{token_file}"

[[sink]]
name = "kafka-pw"
plugin = "kafka"
brokers = "kafka.example:9093"
security_protocol = "sasl_ssl"
sasl_username = "$ConnectionString"
sasl_password = ["KAFKA-SECRET-PASSWORD"]
"#,
        token_file = token_file.display(),
    );
    let config = write_config(dir.path(), &plugins, &sinks, "");
    let (code, out) = check_config(&config);
    assert_eq!(code, Some(1), "{out}");
    for sink in ["inline-typed", "inline-twice", "bad-file-token", "kafka-pw"] {
        problem(&out, sink);
    }
    assert!(problem(&out, "inline-typed").contains("`token`"), "{out}");
    assert!(
        problem(&out, "kafka-pw").contains("`sasl_password`"),
        "{out}"
    );
    for secret in [
        "4242424242424242",
        "INLINE-SECRET-TOKEN-VALUE",
        "FILE-SECRET-TOKEN",
        "KAFKA-SECRET-PASSWORD",
    ] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }
}

#[test]
fn a_plugin_built_for_abi_2_0_loads_runs_and_cannot_check_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage(
        dir.path(),
        &[OLD_PLUGIN, "azlog-test-sink", "azlog-sink-file"],
    );
    assert!(plugins.join(lib_file(OLD_PLUGIN)).exists());

    // In process: the 2.0 plugin loads next to 2.1 ones, opens and takes a batch; `check`
    // is absent for it and present for the others.
    let reg = PluginRegistry::load_dir(&plugins).expect("a 2.0 plugin must load");
    assert_eq!(reg.names(), ["file", "old-sink", "test-sink"]);
    let old = reg.get("old-sink").expect("old-sink");
    assert_eq!(old.abi_version, "2.0.0");
    assert_eq!(
        old.check("{}").expect("no error"),
        SettingsCheck::Unsupported
    );
    let mut sink = old.open("{}").expect("open the 2.0 plugin");
    let report = sink
        .write_batch(abi_stable::std_types::RSlice::from_slice(&[]))
        .into_result()
        .expect("write_batch");
    assert_eq!(report.accepted(), 0);
    let new = reg.get("test-sink").expect("test-sink");
    assert_eq!(new.abi_version, azlog_plugin_api::ABI_VERSION);
    assert_eq!(
        new.check("{}").expect("valid"),
        SettingsCheck::Checked { notes: vec![] }
    );
    let err = new.check(r#"{"retryable_failure": 1}"#).unwrap_err();
    assert!(
        err.message.contains("unknown field `retryable_failure`"),
        "{}",
        err.message
    );

    // check-config: the old plugin's sink is reported, not failed.
    let sinks = "[[sink]]\nname = \"legacy\"\nplugin = \"old-sink\"\nanything = 1\n\n\
                 [[sink]]\nname = \"current\"\nplugin = \"test-sink\"\n";
    let config = write_config(dir.path(), &plugins, sinks, "");
    let (code, out) = check_config(&config);
    assert_eq!(code, Some(0), "{out}");
    let legacy = out
        .lines()
        .skip_while(|l| !l.contains("sink        legacy (plugin old-sink)"))
        .nth(1)
        .unwrap_or_else(|| panic!("no line for the legacy sink:\n{out}"));
    assert!(
        legacy.contains("NOT checked")
            && legacy.contains("ABI 2.0.0")
            && legacy.contains("rebuild it"),
        "{legacy}"
    );
    assert!(
        out.contains(
            "sink        current (plugin test-sink)\n    its keys  checked by plugin test-sink"
        ),
        "{out}"
    );
}
