//! The `azlog-hub` binary: `check-config` (valid and invalid files, secrets never printed),
//! `run` stopped by SIGTERM (drains, final checkpoints, exit 0) and `replay` against the
//! in-process emulator.
mod pipeline_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use azlog_emulator::{EmulatorConfig, HubSpec};
use azlog_hub::checkpoint::{CheckpointKey, CheckpointStore, FileCheckpointStore};
use bytes::Bytes;
use pipeline_support::*;

fn hub(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("AZLOG_PLUGIN_DIR")
        .env_remove("AZLOG_EVENTHUBS_CONNECTION_STRING")
        .output()
        .expect("run azlog-hub")
}

#[test]
fn check_config_accepts_a_valid_file_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let path = write_config(
        dir.path(),
        &plugins,
        &raw_file_sink("files", &dir.path().join("out.ndjson")),
        "",
    );
    let out = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("OK (nothing was contacted)"), "{stdout}");
    assert!(
        stdout.contains("test.servicebus.windows.net/logs"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sink        files (plugin file)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("a2V5"),
        "the key must never be printed: {stdout}"
    );
}

#[test]
fn check_config_lists_every_problem_and_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let text = format!(
        r#"plugin_dir = "{}"
[source.eventhubs]
connection_string = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=TOPSECRETKEY"
start_position = "yesterday"
prefetch = 0
[checkpoint]
store = "blob"
connection_string_env = "AZLOG_TEST_UNSET_VARIABLE"
container = "Bad_Container"
[[sink]]
name = "siem"
plugin = "cef"
[[sink]]
name = "siem"
plugin = "file"
"#,
        plugins.display()
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let out = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for want in [
        "hub: missing; set `hub = ",
        "start_position: invalid position `yesterday`",
        "prefetch: 0 is out of range",
        "AZLOG_TEST_UNSET_VARIABLE is not set",
        "`Bad_Container` is not a valid container name",
        "the name is used twice",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("TOPSECRETKEY"),
        "secret printed:\n{stdout}"
    );

    // A file that parses but names a plugin that is not installed.
    let good = write_config(
        dir.path(),
        &plugins,
        "[[sink]]\nname = \"x\"\nplugin = \"no-such-plugin\"\n",
        "",
    );
    let out = hub(&["check-config"], &good);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("plugin `no-such-plugin` is not in"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_on_sigterm_with_final_checkpoints_and_replay_leaves_them_alone() {
    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new("cli", 2)]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Checkpoints only on shutdown: the final checkpoint must be written by the SIGTERM path.
    let (path, out) = write_raw_file_config(
        dir.path(),
        "[checkpoint]\nevery_events = 0\nevery_ms = 0\n",
        &em.connection_string("cli"),
    );
    let records = sample_records();
    for (i, r) in records.iter().enumerate() {
        let body = envelope(&[tag(r, &format!("id{i}"))]);
        em.publish("cli", Some(&(i % 2).to_string()), None, Bytes::from(body))
            .unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("AZLOG_PLUGIN_DIR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || read_ids(&out).len()
            >= records.len())
        .await
    );
    let store = FileCheckpointStore::new(dir.path().join("state"));
    let key = CheckpointKey::new("localhost", "cli", "$Default");
    assert!(
        store.list(&key).await.unwrap().is_empty(),
        "no checkpoint before shutdown"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("stopping: draining"), "{stderr}");
    for p in ["0", "1"] {
        let cp = store
            .load(&key, p)
            .await
            .unwrap()
            .expect("final checkpoint");
        let info = em.partition_info("cli", p).unwrap();
        assert_eq!(cp.sequence, info.last_seq, "partition {p}");
    }

    // Replay everything into the same sink without --commit: the checkpoints stay.
    let before = store.list(&key).await.unwrap();
    let out2 = hub(&["replay", "--from", "earliest", "--quiet"], &path);
    let stdout = String::from_utf8_lossy(&out2.stdout);
    assert!(
        out2.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    assert!(stdout.contains("live checkpoint untouched"), "{stdout}");
    assert_eq!(
        read_ids(&out).len(),
        2 * records.len(),
        "replayed once more"
    );
    let mut after = store.list(&key).await.unwrap();
    let mut before = before;
    before.sort_by(|a, b| a.partition.cmp(&b.partition));
    after.sort_by(|a, b| a.partition.cmp(&b.partition));
    assert_eq!(before, after);
    em.shutdown().await.unwrap();
}

#[test]
fn demo_runs_the_whole_path_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo-out");
    let out = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["demo", "--out"])
        .arg(&out_dir)
        .output()
        .expect("run demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = sample_records().len();
    assert!(
        stdout.contains(&format!("mapped {records} records, dead-lettered 1")),
        "{stdout}"
    );
    assert!(
        stdout.contains("final checkpoints: partition 0 at sequence"),
        "{stdout}"
    );
    for file in [
        "ecs.ndjson",
        "arcsight.cef",
        "qradar.leef",
        "splunk-hec.json",
    ] {
        let text = std::fs::read_to_string(out_dir.join(file)).unwrap();
        assert_eq!(text.lines().count(), records, "{file}");
    }
    let dead = std::fs::read_to_string(out_dir.join("dead-letter.ndjson")).unwrap();
    assert_eq!(dead.lines().count(), 1);
    assert!(dead.contains("\"partition\":\"0\""), "{dead}");
}
