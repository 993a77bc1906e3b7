//! Sink outage with the real syslog receiver: emulator → `azlog-hub run` (the real binary) →
//! the cef plugin over TCP → **rsyslog**. The test runs its own rsyslog (scripts/syslog-start.sh
//! in a temp dir, on free ports), stops it for a few seconds while events keep arriving in the
//! hub, and starts it again on the same port. Asserted:
//! * 0 lost: every record id reaches rsyslog's output at least once after the restart;
//! * readers held back: while rsyslog is down, `azlog_events_received_total` and
//!   `azlog_sink_records_sent_total` (from `/metrics`) stall, each partition holds at most
//!   `max_in_flight_events`, and the sink keeps retrying (`azlog_sink_retries_total` grows, live
//!   while the batch is retried; the log says so too);
//! * memory bounded: the service's peak resident set stays below 100 MB, and it grows by less
//!   than a quarter of the ≈ 32 MB of events published during the outage (those stay in the hub).
mod pipeline_support;
mod syslog_support;

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use azlog_emulator::{EmulatorConfig, HubSpec};
use bytes::Bytes;
use pipeline_support::*;
use syslog_support::OwnRsyslog;

const HUB: &str = "outage";
const PARTITIONS: usize = 2;
const PER_EVENT: usize = 10;
/// Events published before the outage (all delivered before rsyslog stops).
const EVENTS_BEFORE: usize = 400;
/// Events published while rsyslog is down.
const EVENTS_DURING: usize = 1600;
/// Bytes of padding per record, so that the outage leaves ≈ 32 MB of event bodies in the hub.
const PAD: usize = 1700;
const MAX_IN_FLIGHT: usize = 20;
/// The bound on the service's resident set (VmHWM, peak) over the whole run.
const RSS_BOUND_MB: f64 = 100.0;

fn record(id: usize) -> String {
    format!(
        r#"{{"time":"2024-05-01T10:00:00Z","resourceId":"/SUBSCRIPTIONS/6D3B/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.WEB/SITES/APP","operationName":"MICROSOFT.WEB/SITES/WRITE","category":"Administrative","resultType":"Success","callerIpAddress":"203.0.113.9","correlationId":"c{id}","level":"Information","properties":{{"pad":"{pad}"}}}}"#,
        pad = "p".repeat(PAD)
    )
}

/// Record ids (`cs2=c<N>`) in rsyslog's output file, read incrementally (complete lines only).
struct Seen {
    path: PathBuf,
    offset: u64,
    ids: HashSet<usize>,
    messages: usize,
}

impl Seen {
    fn new(path: PathBuf) -> Self {
        Seen {
            path,
            offset: 0,
            ids: HashSet::new(),
            messages: 0,
        }
    }

    fn refresh(&mut self) -> usize {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return self.ids.len();
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut buf).is_err() {
            return self.ids.len();
        }
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            return self.ids.len();
        };
        self.offset += end as u64 + 1;
        for line in String::from_utf8_lossy(&buf[..end]).lines() {
            self.messages += 1;
            if let Some(i) = line.find(" cs2=c") {
                let digits: String = line[i + 6..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(id) = digits.parse() {
                    self.ids.insert(id);
                }
            }
        }
        self.ids.len()
    }
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_azlog-hub"))
        .args(["run", "--config"])
        .arg(config)
        .env_remove("AZLOG_PLUGIN_DIR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn azlog-hub run")
}

/// Kills the service if the test fails before stopping it.
struct Service(Option<Child>);

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_outage_loses_nothing_holds_the_readers_back_and_bounds_memory() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let syslog = OwnRsyslog::start(&dir.path().join("rsyslog"));
    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(
        HUB,
        PARTITIONS as u32,
    )]))
    .await
    .expect("emulator");
    let metrics_addr = free_addr();
    let plugins = stage_plugins(dir.path());
    let sink = format!(
        r#"[[sink]]
name = "siem"
plugin = "cef"
host = "127.0.0.1"
port = {port}
protocol = "tcp"
framing = "octet-counting"
app_name = "azoutage"
reconnect_initial_ms = 50
reconnect_max_ms = 200
[sink.batch]
max_records = 200
linger_ms = 20
[sink.retry]
initial_backoff_ms = 50
max_backoff_ms = 300
"#,
        port = syslog.port
    );
    let extra = format!(
        "[pipeline]\nmax_in_flight_events = {MAX_IN_FLIGHT}\nsink_queue_events = 4\n[metrics]\nlisten = \"{metrics_addr}\"\n"
    );
    let path = write_config(dir.path(), &plugins, &sink, "");
    let text = std::fs::read_to_string(&path)
        .expect("config")
        .replace(
            &format!("{PLACEHOLDER_EVENTHUBS}\""),
            &format!("{}\"\nprefetch = 20", em.connection_string(HUB)),
        )
        .replace("[metrics]\nlog_interval_secs = 0\n", &extra);
    std::fs::write(&path, text).expect("config");
    load_config(&path); // valid before the service sees it

    let log = dir.path().join("azlog-hub.log");
    let mut service = Service(Some(spawn(&path, &log)));
    let pid = service.0.as_ref().map(Child::id).expect("pid");
    let log_tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };

    let mut next_id = 0usize;
    let mut publish = |events: usize| {
        let mut bytes = 0;
        for e in 0..events {
            let recs: Vec<String> = (0..PER_EVENT)
                .map(|_| {
                    next_id += 1;
                    record(next_id - 1)
                })
                .collect();
            let body = envelope(&recs);
            bytes += body.len();
            em.publish(
                HUB,
                Some(&(e % PARTITIONS).to_string()),
                None,
                Bytes::from(body),
            )
            .expect("publish");
        }
        bytes
    };
    let mut seen = Seen::new(syslog.out());

    // 1. Flowing: everything published so far reaches rsyslog.
    publish(EVENTS_BEFORE);
    let before = EVENTS_BEFORE * PER_EVENT;
    let delivered = wait_until(Duration::from_secs(30), || seen.refresh() >= before).await;
    assert!(
        delivered,
        "{} of {before} records before the outage; service log:\n{}",
        seen.ids.len(),
        log_tail()
    );
    let (rss_flowing, _) = rss_mb(pid);

    // 2. Outage: rsyslog stops; the hub fills with ≈ 32 MB of new events.
    syslog.stop();
    assert!(!syslog.is_up(), "rsyslog is down");
    let outage_bytes = publish(EVENTS_DURING);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let a = http_get(metrics_addr, "/metrics").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = http_get(metrics_addr, "/metrics").await;
    let (rss_outage, _) = rss_mb(pid);
    let read_a = metric(&a, "azlog_events_received_total")[0];
    let read_b = metric(&b, "azlog_events_received_total")[0];
    assert_eq!(
        read_a, read_b,
        "readers must be held back during the outage"
    );
    let bound = (EVENTS_BEFORE + PARTITIONS * MAX_IN_FLIGHT) as f64;
    assert!(
        read_b <= bound,
        "read {read_b} events; at most {bound} (delivered + in-flight bound) while down"
    );
    let in_flight = metric(&b, "azlog_partition_in_flight_events");
    assert_eq!(in_flight.len(), PARTITIONS, "{b}");
    for v in &in_flight {
        assert!(*v <= MAX_IN_FLIGHT as f64, "in-flight bounded: {v}");
    }
    let sent_a = metric(&a, "azlog_sink_records_sent_total")[0];
    let sent_b = metric(&b, "azlog_sink_records_sent_total")[0];
    assert_eq!(sent_a, sent_b, "nothing is accepted while rsyslog is down");
    assert!(
        in_flight.iter().sum::<f64>() > 0.0,
        "events wait in flight while rsyslog is down:\n{b}"
    );
    assert!(
        metric(&b, "azlog_sink_retries_total")[0] > metric(&a, "azlog_sink_retries_total")[0],
        "the sink keeps retrying while rsyslog is down:\n{a}\n{b}"
    );
    assert!(
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("retryable sink error; backing off"),
        "the sink retries while rsyslog is down; service log:\n{}",
        log_tail()
    );
    let messages_down = seen.messages;
    seen.refresh();
    assert_eq!(
        seen.messages, messages_down,
        "nothing reaches rsyslog's output while it is down"
    );

    // 3. Recovery: rsyslog back on the same port; every record arrives.
    syslog.restart();
    let total = (EVENTS_BEFORE + EVENTS_DURING) * PER_EVENT;
    let got_all = wait_until(Duration::from_secs(60), || seen.refresh() >= total).await;
    let (rss_end, hwm) = rss_mb(pid);
    let after = http_get(metrics_addr, "/metrics").await;

    let mut child = service.0.take().expect("child");
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    let missing: Vec<usize> = (0..total)
        .filter(|i| !seen.ids.contains(i))
        .take(10)
        .collect();
    eprintln!(
        "rsyslog outage: {total} records, {} unique at rsyslog, {} duplicates; events read \
         {read_b} of {} while down (≈ {:.1} MB published during the outage); RSS MB: flowing \
         {rss_flowing:.1}, down {rss_outage:.1}, end {rss_end:.1}, peak {hwm:.1} (bound \
         {RSS_BOUND_MB}); sink retries {:?}; {:.1} s",
        seen.ids.len(),
        seen.messages - seen.ids.len(),
        EVENTS_BEFORE + EVENTS_DURING,
        outage_bytes as f64 / 1e6,
        metric(&after, "azlog_sink_retries_total"),
        started.elapsed().as_secs_f64()
    );
    assert!(
        got_all && missing.is_empty(),
        "lost records, first missing {missing:?}; service log:\n{}",
        log_tail()
    );
    assert!(status.success(), "azlog-hub run exited with {status}");
    assert!(
        hwm < RSS_BOUND_MB,
        "peak RSS {hwm:.1} MB over the bound {RSS_BOUND_MB} MB"
    );
    // What the outage left in the hub must stay there, not in the service: the resident set
    // grows by far less than it while rsyslog is down.
    let outage_mb = outage_bytes as f64 / 1e6;
    assert!(
        outage_mb > 25.0,
        "the outage leaves {outage_mb:.1} MB behind"
    );
    assert!(
        rss_outage - rss_flowing < outage_mb / 4.0,
        "RSS grew {:.1} MB during the outage ({outage_mb:.1} MB published)",
        rss_outage - rss_flowing
    );
    em.shutdown().await.expect("emulator shutdown");
}
