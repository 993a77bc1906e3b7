//! Shared helpers for the checkpoint integration tests (Azurite, Python venv).
#![allow(dead_code)]

use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use azlog_hub::azure_storage::{StorageConnection, DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME};
use reqwest::Url;

/// The Azurite blob endpoint, or None when the test should be skipped (AZLOG_SKIP_AZURITE=1).
/// Panics when Azurite is required but not reachable.
pub fn azurite_blob() -> Option<String> {
    let endpoint = std::env::var("AZLOG_AZURITE_BLOB")
        .unwrap_or_else(|_| "http://127.0.0.1:10000/devstoreaccount1".to_owned());
    let url = Url::parse(&endpoint).expect("AZLOG_AZURITE_BLOB is a URL");
    let host = url.host_str().expect("host").to_owned();
    let port = url.port_or_known_default().expect("port");
    let reachable = (host.as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if reachable {
        return Some(endpoint);
    }
    if std::env::var("AZLOG_SKIP_AZURITE").as_deref() == Ok("1") {
        eprintln!("SKIPPED: Azurite not reachable at {endpoint} and AZLOG_SKIP_AZURITE=1");
        return None;
    }
    panic!(
        "Azurite is not reachable at {endpoint}; run `bash scripts/azurite-start.sh` \
         (and source .tools/azurite/env.sh) or set AZLOG_SKIP_AZURITE=1"
    );
}

/// Storage connection string the Python SDK accepts for the Azurite endpoint.
pub fn azurite_connection_string(blob_endpoint: &str) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={blob_endpoint};"
    )
}

pub fn azurite_connection(blob_endpoint: &str) -> StorageConnection {
    StorageConnection::parse(&azurite_connection_string(blob_endpoint)).expect("azurite connection")
}

/// A fresh, valid container name.
pub fn unique_container(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The test venv's python (scripts/python-venv.sh), or None when AZLOG_SKIP_PYTHON=1.
/// Panics when it is missing or lacks the Event Hubs packages.
pub fn venv_python() -> Option<PathBuf> {
    let python = std::env::var("AZLOG_VENV")
        .map(|v| PathBuf::from(v).join("bin/python"))
        .unwrap_or_else(|_| repo_root().join(".tools/venv/bin/python"));
    let ok = std::process::Command::new(&python)
        .args(["-c", "import azure.eventhub.extensions.checkpointstoreblob"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    if std::env::var("AZLOG_SKIP_PYTHON").as_deref() == Ok("1") {
        eprintln!("SKIPPED: python venv with azure-eventhub-checkpointstoreblob missing and AZLOG_SKIP_PYTHON=1");
        return None;
    }
    panic!(
        "{} cannot import azure-eventhub-checkpointstoreblob; run `bash scripts/python-venv.sh` \
         or set AZLOG_SKIP_PYTHON=1",
        python.display()
    );
}

/// Runs `python script args...` (blocking, off the async runtime), asserts it succeeded and
/// parses the last line of its stdout as JSON.
pub async fn python_json(
    python: &std::path::Path,
    script: &std::path::Path,
    args: Vec<String>,
) -> serde_json::Value {
    let (python, script) = (python.to_path_buf(), script.to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .args(&args)
            .output()
    })
    .await
    .unwrap()
    .expect("running python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "bad python output ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
