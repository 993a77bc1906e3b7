//! Helpers shared by the emulator's integration tests.
#![allow(dead_code)]

use std::{path::PathBuf, time::Duration};

use azlog_emulator::{start, EmulatorConfig, EmulatorHandle, HubSpec};
use fe2o3_amqp::{
    connection::ConnectionHandle, sasl_profile::SaslProfile, session::SessionHandle, Connection,
    Session,
};

/// Starts an emulator on an ephemeral port with the given hubs and consumer group `cg1`.
pub async fn emulator(hubs: &[(&str, u32)]) -> EmulatorHandle {
    init_tracing();
    let mut config =
        EmulatorConfig::ephemeral(hubs.iter().map(|(n, p)| HubSpec::new(*n, *p)).collect());
    config.consumer_groups = vec!["cg1".to_string()];
    start(config).await.expect("emulator starts")
}

/// A raw AMQP connection + session to the emulator (SASL ANONYMOUS, as the SDKs do).
pub async fn raw_session(handle: &EmulatorHandle) -> (ConnectionHandle<()>, SessionHandle<()>) {
    let url = handle.amqp_url();
    let open = Connection::builder()
        .container_id("raw-test-client")
        .sasl_profile(SaslProfile::Anonymous)
        .open(url.as_str());
    let mut connection = tokio::time::timeout(WAIT, open)
        .await
        .expect("connection opens in time")
        .expect("connection opens");
    let session = tokio::time::timeout(WAIT, Session::begin(&mut connection))
        .await
        .expect("session begins in time")
        .expect("session begins");
    (connection, session)
}

/// Upper bound for a whole test: a hang anywhere fails the test instead of stalling the run.
pub const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Runs a test body within [`TEST_LIMIT`].
pub async fn bounded(body: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
        panic!("test made no progress within {TEST_LIMIT:?} (hung network wait?)");
    }
}

/// Test Python interpreter with azure-eventhub: `$AZLOG_PYTHON`, else the venv made by
/// `scripts/python-venv.sh`. `None` (skip) only when `AZLOG_SKIP_PYTHON=1`; panics otherwise.
pub fn python() -> Option<PathBuf> {
    if std::env::var("AZLOG_SKIP_PYTHON").as_deref() == Ok("1") {
        eprintln!("AZLOG_SKIP_PYTHON=1: skipping the Python SDK test");
        return None;
    }
    let path = std::env::var_os("AZLOG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python")
        });
    assert!(
        path.exists(),
        "Python venv not found at {} — run scripts/python-venv.sh (or set AZLOG_PYTHON, or \
         AZLOG_SKIP_PYTHON=1 to skip)",
        path.display()
    );
    Some(path)
}

/// Default timeout for awaiting things in tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// Logs to the test output when `RUST_LOG` is set.
/// Installs rustls' aws-lc-rs provider as the process default before an SDK client connects.
/// A workspace build links both rustls providers (ring comes with the syslog/HEC plugins), and
/// the SDK's TLS setup then finds no single default and panics. Idempotent.
pub fn sdk_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
