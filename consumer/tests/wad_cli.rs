//! The `azlog-hub` binary with a configuration whose only source is `[source.wad]`:
//! `check-config` describes it (and reports a broken one with what to fix), `run` polls the
//! table (Azurite) into a file sink and stops on SIGTERM with exit 0. Needs Azurite
//! (scripts/azurite-start.sh); AZLOG_SKIP_AZURITE=1 skips.
mod pipeline_support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use azlog_azure_storage::{StorageCredential, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use azlog_wad::ticks::{floor_minute, partition_key, rfc3339_of_ticks, ticks_from_unix_ns};
use azlog_wad::{TableClient, TableClientOptions};
use pipeline_support::*;
use reqwest::Url;
use serde_json::{json, Value};

fn azurite_table() -> Option<String> {
    let endpoint = std::env::var("AZLOG_AZURITE_TABLE")
        .unwrap_or_else(|_| "http://127.0.0.1:10002/devstoreaccount1".to_owned());
    let url = Url::parse(&endpoint).expect("url");
    let addr = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().unwrap_or(10002)
    );
    if TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_secs(2)).is_ok() {
        return Some(endpoint);
    }
    if std::env::var("AZLOG_SKIP_AZURITE").as_deref() == Ok("1") {
        eprintln!("SKIPPED: Azurite not reachable and AZLOG_SKIP_AZURITE=1");
        return None;
    }
    panic!("Azurite is not reachable at {endpoint}; run `bash scripts/azurite-start.sh` or set AZLOG_SKIP_AZURITE=1");
}

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

/// `[source.wad]` reading `table` on Azurite with the development account.
fn wad_section(endpoint: &str, table: &str) -> String {
    format!(
        "[checkpoint]\nevery_ms = 1000\nevery_events = 0\n\n[source.wad]\npoll_interval_secs = 1\ncheckpoint_every_ms = 0\ninitial_lookback_secs = 900\n\n[[source.wad.account]]\nname = \"lab\"\nconnection_string = \"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};TableEndpoint={endpoint};\"\ntables = [\"{table}\"]\n"
    )
}

/// A WAD Windows event row whose EventData carries `marker`.
fn row(pk_ticks: i64, i: usize, marker: &str) -> String {
    let xml = format!(
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing'/><EventID>4624</EventID><Level>0</Level><Channel>Security</Channel><Computer>DC01.lab.local</Computer><TimeCreated SystemTime='{}'/></System><EventData><Data Name='TargetUserName'>{marker}</Data><Data Name='IpAddress'>10.0.0.{}</Data></EventData></Event>",
        rfc3339_of_ticks(pk_ticks),
        i % 250 + 1
    );
    json!({
        "PartitionKey": partition_key(pk_ticks), "RowKey": format!("r___{i:06}"),
        "PreciseTimeStamp": rfc3339_of_ticks(pk_ticks),
        "PreciseTimeStamp@odata.type": "Edm.DateTime",
        "DeploymentId": "d3c4b5a6e7f8", "Role": "IaaS", "RoleInstance": "_DC01",
        "EventId": 4624, "Level": 0, "Channel": "Security",
        "Description": "", "RawXml": xml,
    })
    .to_string()
}

/// Lines of the file sink naming `marker`.
fn lines_with(path: &Path, marker: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(marker))
        .map(|l| serde_json::from_str(l).expect("sink lines are JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_only_a_wad_source_polls_the_table_into_the_sinks() {
    let Some(endpoint) = azurite_table() else {
        return;
    };
    let client = TableClient::new(
        Url::parse(&endpoint).expect("url"),
        DEV_ACCOUNT_NAME,
        StorageCredential::shared_key(DEV_ACCOUNT_NAME, DEV_ACCOUNT_KEY).expect("key"),
        TableClientOptions::default(),
    )
    .expect("client");
    let table = format!("wadcli{}x{:08x}", std::process::id(), fastrand::u32(..));
    client.create_table(&table).await.expect("table");
    let marker = format!("wadcliuser{:08x}", fastrand::u32(..));
    let now = floor_minute(ticks_from_unix_ns(azlog_mapper::deadletter::now_ns()));
    let n = 40;
    let rows: Vec<String> = (0..n)
        .map(|i| row(now - (i % 3) as i64 * 600_000_000, i, &marker))
        .collect();
    client.insert_batch(&table, &rows).await.expect("insert");

    let dir = tempfile::tempdir().expect("tempdir");
    let (path, out) = write_raw_file_config(
        dir.path(),
        &wad_section(&endpoint, &table),
        PLACEHOLDER_EVENTHUBS,
    );
    let text = std::fs::read_to_string(&path).expect("config");
    assert!(
        !text.contains("[source.eventhubs]"),
        "WAD-only configuration"
    );

    // check-config: the WAD source described, the key never printed, nothing contacted.
    let checked = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(stdout.contains("source      wad"), "{stdout}");
    assert!(
        stdout.contains(&format!("wad account lab tables {table}")),
        "{stdout}"
    );
    assert!(!stdout.contains(DEV_ACCOUNT_KEY), "key printed: {stdout}");
    assert!(
        stdout.contains("checkpoint  WAD watermarks, every"),
        "the unused [checkpoint] store is not described: {stdout}"
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("AZLOG_PLUGIN_DIR")
        .env_remove("AZLOG_EVENTHUBS_CONNECTION_STRING")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let arrived = wait_until(Duration::from_secs(60), || {
        lines_with(&out, &marker).len() >= n
    })
    .await;
    // A few more poll cycles: nothing may arrive twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        arrived,
        "{} of {n} rows arrived\n{stderr}",
        lines_with(&out, &marker).len()
    );
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("\"wad\""), "{stderr}");
    let got = lines_with(&out, &marker);
    assert_eq!(got.len(), n, "every row exactly once");
    let mut keys: Vec<String> = got
        .iter()
        .map(|v| v["RowKey"].as_str().expect("RowKey").to_owned())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "distinct rows");
    // The final checkpoint acknowledged the batches: the watermark was saved.
    let wm = dir.path().join("state/wad");
    assert_eq!(
        std::fs::read_dir(&wm).expect("watermark dir").count(),
        1,
        "one watermark file"
    );
    client.delete_table(&table).await.expect("delete");
}

#[test]
fn check_config_reports_a_broken_wad_source_and_what_to_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = stage_plugins(dir.path());
    let sink = raw_file_sink("files", &dir.path().join("out.ndjson"));

    // overlap below the minimum, and an account whose key variable is not set.
    let bad = "[source.wad]\noverlap_secs = 10\n\n[[source.wad.account]]\nname = \"lab\"\naccount = \"devstoreaccount1\"\nkey_env = \"AZLOG_TEST_WAD_KEY_THAT_IS_NOT_SET\"\ntables = [\"WADWindowsEventLogsTable\"]\n";
    let path = write_config(dir.path(), &plugins, &sink, bad);
    let out = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("[source.wad]"), "{stdout}");
    assert!(stdout.contains("overlap_secs"), "{stdout}");

    let path = write_config(
        dir.path(),
        &plugins,
        &sink,
        "[source.wad]\n\n[[source.wad.account]]\nname = \"lab\"\naccount = \"devstoreaccount1\"\nkey_env = \"AZLOG_TEST_WAD_KEY_THAT_IS_NOT_SET\"\ntables = [\"WADWindowsEventLogsTable\"]\n",
    );
    let out = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("AZLOG_TEST_WAD_KEY_THAT_IS_NOT_SET"),
        "names the missing variable: {stdout}"
    );

    // An unknown key in [source.wad].
    let path = write_config(
        dir.path(),
        &plugins,
        &sink,
        "[source.wad]\npoll_intervall_secs = 5\n",
    );
    let out = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("poll_intervall_secs"), "{stdout}");

    // Both sources: one must go.
    let path = write_config(dir.path(), &plugins, &sink, "");
    let both = std::fs::read_to_string(&path).expect("config")
        + "\n[source.wad]\n\n[[source.wad.account]]\nname = \"lab\"\nconnection_string = \"UseDevelopmentStorage=true\"\ntables = [\"T1\"]\n";
    std::fs::write(&path, both).expect("write");
    let out = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("two sources"), "{stdout}");

    // Neither.
    std::fs::write(
        &path,
        format!("plugin_dir = \"{}\"\n\n{sink}", plugins.display()),
    )
    .expect("write");
    let out = hub(&["check-config"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no source"), "{stdout}");
    assert!(stdout.contains("[source.wad]"), "{stdout}");
}
