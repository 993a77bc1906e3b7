//! The sink host against real, built plugin libraries (`.so`): loading and refusal rules,
//! panics, retries, parking, filtering and batching, and the file and Splunk HEC plugins
//! end to end (HEC against the test receiver).
//!
//! The plugin crates are built by this test (`cargo build -p ...`, same target dir) unless
//! `AZLOG_PLUGIN_DIR` points at a directory that already holds them.
mod pipeline_support;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use abi_stable::std_types::RString;
use azlog_hec_receiver::{Fault, HecReceiver, TokenConfig};
use azlog_hub::sink_host::{
    HostError, LoadError, LoadedPlugin, Offered, PluginRegistry, SinkConfig, SinkHost, SinksFile,
};
use azlog_plugin_api::{ErrorKind, Field, HealthState, Position, Record, Text, Value, ABI_VERSION};
use pipeline_support::{copy_plugins, lib_file};

/// A fresh 0755 plugin dir holding copies (0644) of the given plugin crates' libraries.
fn stage(crates: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_plugins(dir.path(), crates);
    dir
}

fn registry() -> &'static PluginRegistry {
    static REG: OnceLock<(tempfile::TempDir, PluginRegistry)> = OnceLock::new();
    &REG.get_or_init(|| {
        let dir = stage(&[
            "azlog-test-sink",
            "azlog-sink-file",
            "azlog-sink-splunk-hec",
        ]);
        let reg = PluginRegistry::load_dir(dir.path()).expect("load plugin dir");
        (dir, reg)
    })
    .1
}

fn rec(i: usize) -> Record {
    rec_with(i, vec![])
}

fn rec_with(i: usize, extra: Vec<(&str, Value)>) -> Record {
    let mut fields = vec![
        Field {
            key: Text::from("event.id"),
            value: Value::from(format!("id-{i}")),
        },
        Field {
            key: Text::from("event.dataset"),
            value: Value::from("azure.signinlogs"),
        },
    ];
    fields.extend(extra.into_iter().map(|(k, v)| Field {
        key: Text::from(k),
        value: v,
    }));
    Record::from_fields(
        1_718_000_000_000_000_000 + i as i64,
        fields,
        RString::from(format!("{{\"n\":{i}}}")),
        Position {
            source: RString::from("test"),
            sequence: i as i64,
            ..Position::default()
        },
    )
}

fn sink_config(toml_text: &str) -> SinkConfig {
    SinksFile::parse(toml_text)
        .expect("sink config")
        .sink
        .pop()
        .expect("one sink")
}

#[test]
fn loads_every_plugin_with_name_version_and_abi() {
    let reg = registry();
    assert_eq!(reg.names(), ["file", "splunk-hec", "test-sink"]);
    let p = reg.get("splunk-hec").expect("splunk-hec");
    assert_eq!(p.abi_version, ABI_VERSION);
    assert_eq!(p.version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn plugin_built_against_another_abi_is_refused_by_name_and_versions() {
    let dir = stage(&["azlog-test-abi-mismatch", "azlog-test-sink"]);
    let err = PluginRegistry::load_dir(dir.path()).expect_err("must refuse");
    let LoadError::AbiMismatch {
        path,
        plugin_abi,
        host_abi,
    } = &err
    else {
        panic!("expected an ABI mismatch, got {err}");
    };
    assert_eq!(plugin_abi, "3.0.0");
    assert_eq!(host_abi, ABI_VERSION);
    assert!(path.ends_with(lib_file("azlog-test-abi-mismatch")));
    let msg = err.to_string();
    assert!(msg.contains(&lib_file("azlog-test-abi-mismatch")), "{msg}");
    assert!(
        msg.contains("ABI 3.0.0") && msg.contains(&format!("ABI {ABI_VERSION}")),
        "{msg}"
    );
}

#[test]
fn world_writable_plugin_dir_or_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = stage(&["azlog-test-sink"]);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let err = PluginRegistry::load_dir(dir.path()).expect_err("must refuse dir");
    assert!(
        matches!(err, LoadError::WorldWritable { ref path, .. } if path == dir.path()),
        "{err}"
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let lib = dir.path().join(lib_file("azlog-test-sink"));
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o646)).expect("chmod");
    let err = PluginRegistry::load_dir(dir.path()).expect_err("must refuse file");
    assert!(
        matches!(err, LoadError::WorldWritable { ref path, .. } if path == &lib),
        "{err}"
    );
    assert!(LoadedPlugin::load(&lib).is_err());
}

#[test]
fn panicking_plugin_is_restarted_and_the_poison_record_rejected() {
    let out = tempfile::NamedTempFile::new().expect("tmp");
    let cfg = sink_config(&format!(
        "[[sink]]\nname='p'\nplugin='test-sink'\npanic_on_field='test.panic'\nout='{}'\n\
         [sink.retry]\ninitial_backoff_ms=1\nmax_backoff_ms=5\n",
        out.path().display()
    ));
    let mut host = SinkHost::new(&cfg, registry()).expect("open");
    let mut batch: Vec<Record> = (0..5).map(rec).collect();
    batch[2] = rec_with(2, vec![("test.panic", Value::Bool(true))]);
    let o = host.deliver(batch);
    assert!(o.is_complete(), "{o:?}");
    assert_eq!(o.rejected.len(), 1);
    assert_eq!(o.rejected[0].index, 2);
    assert!(
        o.rejected[0].reason.contains("poison record"),
        "{}",
        o.rejected[0].reason
    );
    assert!(
        o.rejected[0].reason.contains("panicked in write_batch"),
        "{}",
        o.rejected[0].reason
    );
    assert_eq!(o.accepted_indices(), [0, 1, 3, 4]);
    assert!(o.restarts >= 2, "{o:?}");
    // The host survived and the re-opened sink keeps working.
    let o = host.deliver((5..8).map(rec).collect());
    assert_eq!(o.accepted_indices(), [0, 1, 2]);
    let written = std::fs::read_to_string(out.path()).expect("read");
    let ids: Vec<&str> = written.lines().collect();
    assert_eq!(
        ids,
        ["id-0", "id-1", "id-3", "id-4", "id-5", "id-6", "id-7"]
    );
    assert!(host.stats().panics >= 3);
    assert!(host.stats().restarts >= 2);
    assert_eq!(host.health().state, HealthState::Healthy);
}

#[test]
fn panic_in_open_is_an_error_not_a_crash() {
    let cfg = sink_config("[[sink]]\nname='p'\nplugin='test-sink'\npanic_in_open=true\n");
    let Err(err) = SinkHost::new(&cfg, registry()) else {
        panic!("open must fail");
    };
    let HostError::Open { error, .. } = &err else {
        panic!("expected an open error, got {err}");
    };
    assert_eq!(error.kind, ErrorKind::Panicked);
    assert!(error.message.contains("panic in open"), "{err}");
}

#[test]
fn retryable_errors_are_retried_with_backoff() {
    let cfg = sink_config(
        "[[sink]]\nname='r'\nplugin='test-sink'\nretryable_failures=2\n\
         [sink.retry]\ninitial_backoff_ms=20\nmax_backoff_ms=40\n",
    );
    let mut host = SinkHost::new(&cfg, registry()).expect("open");
    let t = Instant::now();
    let o = host.deliver((0..4).map(rec).collect());
    assert!(o.is_complete(), "{o:?}");
    assert_eq!(o.accepted_indices().len(), 4);
    assert_eq!(o.attempts, 3);
    assert_eq!(host.stats().retries, 2);
    assert!(
        t.elapsed() >= Duration::from_millis(10 + 20),
        "backoff waited {:?}",
        t.elapsed()
    );
}

#[test]
fn retries_give_up_after_max_attempts_leaving_records_undelivered() {
    let cfg = sink_config(
        "[[sink]]\nname='r'\nplugin='test-sink'\nretryable_failures=100\n\
         [sink.retry]\ninitial_backoff_ms=1\nmax_backoff_ms=2\nmax_attempts=3\n",
    );
    let mut host = SinkHost::new(&cfg, registry()).expect("open");
    let o = host.deliver((0..2).map(rec).collect());
    let u = o.undelivered.as_ref().expect("undelivered");
    assert_eq!(u.from, 0);
    assert!(!u.sink_parked);
    assert!(
        u.reason.contains("gave up after 3 attempts"),
        "{}",
        u.reason
    );
    assert!(o.accepted_indices().is_empty());
}

#[test]
fn permanent_error_parks_the_sink() {
    let cfg =
        sink_config("[[sink]]\nname='x'\nplugin='test-sink'\npermanent_error='bad credentials'\n");
    let mut host = SinkHost::new(&cfg, registry()).expect("open");
    let o = host.deliver((0..3).map(rec).collect());
    let u = o.undelivered.as_ref().expect("undelivered");
    assert!(
        u.sink_parked && u.from == 0 && u.reason.contains("bad credentials"),
        "{u:?}"
    );
    let o = host.deliver(vec![rec(9)]);
    assert_eq!(o.attempts, 0, "a parked sink is not called again");
    assert!(o.undelivered.expect("undelivered").sink_parked);
    assert_eq!(host.health().state, HealthState::Failed);
}

#[test]
fn filter_count_and_linger_batching() {
    let cfg = sink_config(
        "[[sink]]\nname='b'\nplugin='test-sink'\n[sink.filter]\nmin_severity=5\n\
         [sink.batch]\nmax_records=3\nlinger_ms=50\n",
    );
    let mut host = SinkHost::new(&cfg, registry()).expect("open");
    let sev = |i: usize, s: i64| rec_with(i, vec![("event.severity", Value::Int(s))]);
    assert!(
        matches!(host.offer(sev(0, 1)), Offered::Filtered(r) if r.get_str("event.id") == Some("id-0"))
    );
    assert!(matches!(host.offer(sev(1, 5)), Offered::Queued));
    assert!(matches!(host.offer(sev(2, 9)), Offered::Queued));
    let Offered::Delivered(o) = host.offer(sev(3, 7)) else {
        panic!("third wanted record fills the batch");
    };
    let ids: Vec<_> = o.records.iter().map(|r| r.get_str("event.id")).collect();
    assert_eq!(ids, [Some("id-1"), Some("id-2"), Some("id-3")]);
    assert!(matches!(host.offer(sev(4, 6)), Offered::Queued));
    assert!(host.poll(Instant::now()).is_none(), "linger not over yet");
    let deadline = host.next_deadline().expect("deadline");
    let o = host.poll(deadline).expect("linger delivery");
    assert_eq!(o.records.len(), 1);
    assert_eq!(host.pending_len(), 0);
    let (_, closed) = host.close();
    assert!(closed.is_ok());
}

#[test]
fn file_plugin_writes_ndjson_through_the_host() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("azure.ndjson");
    let cfg = sink_config(&format!(
        "[[sink]]\nname='f'\nplugin='file'\npath='{}'\nformat='raw'\n",
        path.display()
    ));
    let mut host = SinkHost::new(&cfg, registry()).expect("open");
    let o = host.deliver((0..3).map(rec).collect());
    assert_eq!(o.accepted_indices(), [0, 1, 2]);
    let (_, flushed) = host.flush();
    assert!(flushed.is_ok());
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"
    );
}

#[test]
fn a_relative_file_path_is_opened_beside_the_configuration() {
    let config_dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(config_dir.path().join("out")).expect("mkdir");
    let mut cfg =
        sink_config("[[sink]]\nname='f'\nplugin='file'\npath='out/azure.ndjson'\nformat='raw'\n");
    assert_eq!(registry().get("file").expect("file").path_keys, ["path"]);
    // What a configuration file's table carries (`HubConfig` sets it for every sink).
    cfg.config_dir = Some(config_dir.path().to_path_buf());
    let mut host = SinkHost::new(&cfg, registry()).expect("open");
    let o = host.deliver((0..2).map(rec).collect());
    assert_eq!(o.accepted_indices(), [0, 1]);
    let (_, flushed) = host.flush();
    assert!(flushed.is_ok());
    let written = config_dir.path().join("out/azure.ndjson");
    assert_eq!(
        std::fs::read_to_string(&written).expect("read"),
        "{\"n\":0}\n{\"n\":1}\n"
    );
    assert!(
        !std::path::Path::new("out/azure.ndjson").exists(),
        "nothing written relative to the working directory"
    );
}

const TOKEN: &str = "0a1b2c3d-0000-4000-8000-00000000abcd";

fn hec_host(rx: &HecReceiver, extra: &str) -> SinkHost {
    let cfg = sink_config(&format!(
        "[[sink]]\nname='splunk'\nplugin='splunk-hec'\nurl='{}'\ntoken_env='AZLOG_TEST_HEC_TOKEN'\n{extra}\n\
         [sink.retry]\ninitial_backoff_ms=10\nmax_backoff_ms=20\n",
        rx.url()
    ));
    std::env::set_var("AZLOG_TEST_HEC_TOKEN", TOKEN);
    SinkHost::new(&cfg, registry()).expect("open splunk-hec")
}

#[test]
fn hec_503_is_retried_by_the_host_until_delivered() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    rx.inject([Fault::busy(), Fault::queues_full()]);
    let mut host = hec_host(&rx, "");
    let o = host.deliver((0..4).map(rec).collect());
    assert!(o.is_complete(), "{o:?}");
    assert_eq!(o.accepted_indices().len(), 4);
    assert_eq!(o.attempts, 3);
    // Event posts answered 503 code 9, 503 code 18, then success; before each retry the
    // plugin probed /services/collector/health (code 17).
    let log: Vec<(String, u32)> = rx
        .requests()
        .iter()
        .map(|r| (r.path.rsplit('/').next().unwrap_or("").to_string(), r.code))
        .collect();
    let want = [
        ("event", 9),
        ("health", 17),
        ("event", 18),
        ("health", 17),
        ("event", 0),
    ];
    let want: Vec<(String, u32)> = want.iter().map(|(p, c)| (p.to_string(), *c)).collect();
    assert_eq!(log, want);
    assert_eq!(rx.events().len(), 4);
}

#[test]
fn hec_403_stops_the_sink_without_retrying() {
    let rx = HecReceiver::start(vec![TokenConfig::new(
        "ffffffff-0000-4000-8000-000000000000",
    )])
    .expect("receiver");
    let mut host = hec_host(&rx, "");
    let o = host.deliver((0..2).map(rec).collect());
    let u = o.undelivered.as_ref().expect("undelivered");
    assert!(u.sink_parked, "{u:?}");
    assert!(
        u.reason.contains("HTTP 403") && u.reason.contains("token"),
        "{}",
        u.reason
    );
    assert!(!u.reason.contains(TOKEN), "token leaked into the reason");
    assert_eq!(o.attempts, 1);
    assert_eq!(rx.requests().len(), 1, "no retry after 403");
}

#[test]
fn hec_partial_batch_rejects_one_record_for_dead_lettering() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN).with_ack()]).expect("receiver");
    rx.set_poison(Some("\"n\":3}"));
    let mut host = hec_host(&rx, "ack=true\nack_poll_interval_ms=10\n");
    let o = host.deliver((0..6).map(rec).collect());
    assert!(o.is_complete(), "{o:?}");
    assert_eq!(o.rejected.len(), 1);
    assert_eq!(o.rejected[0].index, 3);
    assert_eq!(o.accepted_indices(), [0, 1, 2, 4, 5]);
    let got: Vec<u64> = rx
        .events()
        .iter()
        .map(|e| e.envelope["event"]["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(got, [0, 1, 2, 4, 5]);
}
