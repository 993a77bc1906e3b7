//! Sink outage: emulator → azlog-hub → CEF over TCP to a syslog receiver that stops for a few
//! seconds and comes back on the same port. Nothing is lost, the readers are held back while the
//! receiver is down (in-flight bounded, nothing more read), as seen on the `/metrics` endpoint.
mod pipeline_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azlog_emulator::{EmulatorConfig, HubSpec};
use azlog_hub::service;
use bytes::Bytes;
use pipeline_support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

const HUB: &str = "outage";

/// A newline-framed syslog receiver collecting the `cs2=` (correlation id) of each CEF line.
/// `stop()` closes its write side (the sender sees the close before its next write), reads what
/// is still in flight to EOF and stops listening.
struct Receiver {
    ids: Arc<Mutex<Vec<String>>>,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start(addr: SocketAddr, ids: Arc<Mutex<Vec<String>>>) -> Receiver {
        let listener = TcpListener::bind(addr).await.expect("bind receiver");
        let (tx, rx) = watch::channel(false);
        let ids2 = ids.clone();
        let task = tokio::spawn(async move {
            let mut conns = Vec::new();
            let mut stop = rx.clone();
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    a = listener.accept() => {
                        let Ok((stream, _)) = a else { continue };
                        let ids = ids2.clone();
                        let mut stop = rx.clone();
                        conns.push(tokio::spawn(async move {
                            let (read, mut write) = stream.into_split();
                            let mut lines = BufReader::new(read).lines();
                            let mut closing = false;
                            loop {
                                tokio::select! {
                                    _ = async { let _ = stop.wait_for(|s| *s).await; }, if !closing => {
                                        closing = true;
                                        let _ = write.shutdown().await;
                                    }
                                    l = lines.next_line() => match l {
                                        Ok(Some(line)) => {
                                            if let Some(i) = line.find(" cs2=") {
                                                let id = line[i + 5..].split(' ').next().unwrap_or("");
                                                ids.lock().unwrap().push(id.to_owned());
                                            }
                                        }
                                        _ => break,
                                    }
                                }
                            }
                        }));
                    }
                }
            }
            drop(listener);
            for c in conns {
                let _ = c.await;
            }
        });
        Receiver {
            ids,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    fn count(&self) -> usize {
        self.ids.lock().unwrap().len()
    }
}

fn record(id: usize) -> String {
    format!(
        r#"{{"time":"2024-05-01T10:00:00Z","resourceId":"/SUBSCRIPTIONS/6D3B/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.WEB/SITES/APP","operationName":"MICROSOFT.WEB/SITES/WRITE","category":"Administrative","resultType":"Success","callerIpAddress":"203.0.113.9","correlationId":"c{id}","level":"Information"}}"#
    )
}

async fn scrape(addr: SocketAddr) -> String {
    get(addr, "/metrics").await
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("metrics");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut body)
        .await
        .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

fn metric(body: &str, name: &str) -> Vec<f64> {
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_outage_loses_nothing_and_holds_the_readers_back() {
    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(HUB, 2)]))
        .await
        .unwrap();
    let recv_addr = free_port();
    let metrics_addr = free_port();
    let dir = tempfile::tempdir().unwrap();
    let plugins = stage_plugins(dir.path());
    let sink = format!(
        r#"[[sink]]
name = "siem"
plugin = "cef"
host = "127.0.0.1"
port = {port}
protocol = "tcp"
framing = "newline"
header = "none"
reconnect_initial_ms = 50
reconnect_max_ms = 200
[sink.batch]
max_records = 50
linger_ms = 20
[sink.retry]
initial_backoff_ms = 50
max_backoff_ms = 200
"#,
        port = recv_addr.port()
    );
    let extra = format!(
        "[pipeline]\nmax_in_flight_events = 20\nsink_queue_events = 4\n[metrics]\nlisten = \"{metrics_addr}\"\n"
    );
    let path = write_config(dir.path(), &plugins, &sink, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "Endpoint=sb://test.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=logs",
            &em.connection_string(HUB),
        )
        .replace("[metrics]\nlog_interval_secs = 0\n", &extra);
    std::fs::write(&path, text).unwrap();
    let cfg = load_config(&path);

    let ids = Arc::new(Mutex::new(Vec::new()));
    let receiver = Receiver::start(recv_addr, ids.clone()).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let c = cfg.clone();
    let run = tokio::spawn(async move { service::run(&c, stop_rx).await });

    const EVENTS: usize = 2000;
    const PER_EVENT: usize = 5;
    let mut n = 0;
    let mut publish = |events: usize| {
        for e in 0..events {
            let recs: Vec<String> = (0..PER_EVENT)
                .map(|_| {
                    n += 1;
                    record(n - 1)
                })
                .collect();
            em.publish(
                HUB,
                Some(&(e % 2).to_string()),
                None,
                Bytes::from(envelope(&recs)),
            )
            .unwrap();
        }
    };
    publish(EVENTS / 2);
    assert!(wait_until(Duration::from_secs(60), || receiver.count() >= 2000).await);
    assert!(get(metrics_addr, "/ready").await.ends_with("ready\n"));
    assert!(get(metrics_addr, "/health").await.ends_with("ok\n"));

    // Outage.
    receiver.stop().await;
    publish(EVENTS / 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let a = scrape(metrics_addr).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = scrape(metrics_addr).await;
    let read_a = metric(&a, "azlog_events_received_total")[0];
    let read_b = metric(&b, "azlog_events_received_total")[0];
    assert_eq!(
        read_a, read_b,
        "readers must be held back during the outage"
    );
    assert!(read_b < EVENTS as f64, "not everything was read: {read_b}");
    for v in metric(&b, "azlog_partition_in_flight_events") {
        assert!(v <= 20.0, "in-flight bounded: {v}");
    }
    assert!(
        metric(&b, "azlog_sink_retries_total")[0] > 0.0
            || metric(&b, "azlog_sink_batches_total")[0] > 0.0
    );

    // Recovery on the same port.
    let receiver = Receiver::start(recv_addr, ids.clone()).await;
    let total = EVENTS * PER_EVENT;
    let got_all = wait_until(Duration::from_secs(60), || {
        ids.lock().unwrap().iter().collect::<HashSet<_>>().len() >= total
    })
    .await;
    stop_tx.send(true).unwrap();
    let summary = run.await.unwrap().unwrap();
    receiver.stop().await;
    let got: HashSet<String> = ids.lock().unwrap().iter().cloned().collect();
    let missing: Vec<usize> = (0..total)
        .filter(|i| !got.contains(&format!("c{i}")))
        .take(10)
        .collect();
    let delivered = ids.lock().unwrap().len();
    eprintln!(
        "sink outage: {total} records, {} unique received, {} duplicates, events read during outage {read_b}; summary {summary:?}",
        got.len(),
        delivered - got.len()
    );
    assert!(
        got_all && missing.is_empty(),
        "lost records, first missing {missing:?}"
    );
    assert_eq!(summary.error, None);
    em.shutdown().await.unwrap();
}
