//! The Event Hubs Kafka endpoint shape: SASL_SSL + PLAIN with user `$ConnectionString` and the
//! connection string as password, configured with `[source.kafka] connection_string_file`.
//! A private tansu broker sits behind a test-only TLS + SASL/PLAIN front
//! (tests/python/sasl_plain_tls_proxy.py) with certificates made here by openssl. The right
//! connection string reads every record; a wrong one and a missing CA are rejected with clear
//! errors (`azlog-hub run` stops at start-up with exit status 2).
mod kafka_support;
mod pipeline_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use azlog_hub::service;
use kafka_support::*;
use pipeline_support::*;
use tokio::sync::watch;

/// Runs `azlog-hub run` (output into a file: librdkafka logs every retry, more than a pipe
/// holds) until it exits or 60 s passed; its exit code and output.
fn run_binary(config: &Path) -> (Option<i32>, String) {
    let log_path = config.with_extension("log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("AZLOG_PLUGIN_DIR")
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("spawn azlog-hub run");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if child.try_wait().expect("try_wait").is_none() {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    (
        status.code(),
        std::fs::read_to_string(&log_path).unwrap_or_default(),
    )
}

/// The last lines (why it stopped), for assertion messages.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_plain_with_a_connection_string_and_clear_rejections() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("azsasl");
    let good = connection_string("c2VjcmV0LWtleQ==", &topic);
    let sasl = SaslFront::start(dir.path(), &good);
    let front = sasl.front.clone();
    let ca = sasl.ca.clone();
    let cc = client(
        &front,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "$ConnectionString"),
            ("sasl.password", &good),
            ("ssl.ca.location", ca.to_str().unwrap()),
        ],
    );
    create_topic(&cc, &topic, 1).await;
    let producer = producer(&cc);
    let samples = sample_records();
    for (i, r) in samples.iter().enumerate().take(10) {
        send(
            &producer,
            &topic,
            0,
            envelope(&[tag(r, &format!("t{i}"))]).as_bytes(),
            None,
        )
        .await;
    }

    let plugins = stage_plugins(dir.path());
    let out = dir.path().join("out/raw.ndjson");
    let write = |name: &str, cs: &str, with_ca: bool| -> PathBuf {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("eh-kafka.secret"), cs).unwrap();
        let ca_line = if with_ca {
            format!("ssl_ca_location = \"{}\"\n", ca.display())
        } else {
            String::new()
        };
        let section = format!(
            "[source.kafka]\nconnection_string_file = \"eh-kafka.secret\"\nbootstrap_servers = \"{front}\"\ngroup_id = \"{}\"\n{ca_line}[source.kafka.properties]\n\"session.timeout.ms\" = 3000\n\"heartbeat.interval.ms\" = 500\n",
            unique("azsasl-g")
        );
        write_config(&sub, &plugins, &raw_file_sink("files", &out), &section)
    };

    // The right connection string: every record arrives.
    let config = load_config(&write("good", &good, true));
    let dbg = format!("{config:?}");
    assert!(
        !dbg.contains("c2VjcmV0LWtleQ"),
        "Debug shows the key: {dbg}"
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let cfg = config.clone();
    let task = tokio::spawn(async move { service::run(&cfg, stop_rx).await });
    let reached = wait_until(Duration::from_secs(60), || read_ids(&out).len() >= 10).await;
    let _ = stop_tx.send(true);
    let summary = task.await.expect("join").expect("run");
    assert!(
        reached,
        "{} of 10 over SASL_SSL; {summary:#?}",
        read_ids(&out).len()
    );
    assert!(summary.error.is_none(), "{summary:#?}");
    let want: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    assert_eq!(read_ids(&out), want);

    // A wrong key: authentication fails, the run stops at start-up with a clear error (exit 2).
    let wrong = write("wrong", &connection_string("d3Jvbmc=", &topic), true);
    let (code, text) = run_binary(&wrong);
    assert_eq!(code, Some(2), "{}", tail(&text));
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains("azlog-hub: error:")
            && last.contains("SASL authentication error: bad credentials"),
        "{}",
        tail(&text)
    );
    assert!(
        !text.contains("d3Jvbmc"),
        "the password leaked into the log"
    );

    // No CA (the system store does not know the test CA): TLS verification fails.
    let no_ca = write("noca", &good, false);
    let (code, text) = run_binary(&no_ca);
    assert_eq!(code, Some(2), "{}", tail(&text));
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains("azlog-hub: error:") && last.contains("certificate verify failed"),
        "{}",
        tail(&text)
    );
    assert!(
        !text.contains("c2VjcmV0LWtleQ"),
        "the password leaked into the log"
    );
    assert_eq!(read_ids(&out).len(), 10, "nothing more was read");
}
