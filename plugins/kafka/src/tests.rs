//! Tests against a real Kafka-protocol broker: tansu, installed and started by
//! `scripts/kafka-start.sh` (`AZLOG_KAFKA_BROKERS`, `AZLOG_TANSU_BIN`; source
//! `.tools/kafka/env.sh`). Records are read back with an rdkafka consumer.
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use abi_stable::std_types::RString;
use azlog_plugin_api::{ErrorKind, Field, Position, Record, Sink, Text, Value};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::json;

use crate::producer::KafkaSink;
use crate::settings::Settings;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/kafka-start.sh and source .tools/kafka/env.sh")
    })
}

fn suffix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{}", std::process::id(), n % 1_000_000_000)
}

/// A tansu broker of this test's own (memory storage) on a fixed port, so it can be stopped
/// and started again at the same address.
struct OwnBroker {
    port: u16,
    child: Option<Child>,
}

impl OwnBroker {
    fn start() -> OwnBroker {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let mut b = OwnBroker { port, child: None };
        b.up();
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(env("AZLOG_TANSU_BIN"))
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.down();
    }
}

fn create_topic(broker: &str, name: &str, partitions: u32) {
    let status = Command::new(env("AZLOG_TANSU_BIN"))
        .args(["topic", "create", "--broker", &format!("tcp://{broker}")])
        .args(["--partitions", &partitions.to_string(), name])
        .stdout(Stdio::null())
        .status()
        .expect("tansu topic create");
    assert!(status.success(), "create topic {name}");
}

fn rec(i: usize, dataset: &str, resource: Option<&str>) -> Record {
    let mut fields = vec![
        Field {
            key: Text::from("event.id"),
            value: Value::from(format!("id-{i}")),
        },
        Field {
            key: Text::from("event.dataset"),
            value: Value::from(dataset),
        },
        Field {
            key: Text::from("message"),
            value: Value::from("hello \"kafka\"\n"),
        },
    ];
    if let Some(r) = resource {
        fields.push(Field {
            key: Text::from("azure.resource.id"),
            value: Value::from(r),
        });
    }
    Record::from_fields(
        1_700_000_000_000_000_000 + i as i64,
        fields,
        RString::from(format!("{{\"n\":{i},\"category\":\"X\"}}")),
        Position {
            source: RString::from("eventhubs:ns/hub/$Default"),
            partition: RString::from("3"),
            offset: RString::from(format!("{}", 1000 + i)),
            sequence: 7 + i as i64,
            index: (i % 4) as u32,
        },
    )
}

fn sink(broker: &str, extra: serde_json::Value) -> KafkaSink {
    let mut cfg = json!({"brokers": broker, "message_timeout_ms": 5000, "linger_ms": 1});
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    KafkaSink::open(Settings::from_json(cfg).expect("settings")).expect("open")
}

/// One consumed message.
#[derive(Debug)]
struct Got {
    key: Option<String>,
    value: String,
    headers: BTreeMap<String, String>,
}

/// Reads `topic` from the beginning (assigned partitions, no group) until `want` messages or
/// the timeout.
fn read_topic(broker: &str, topic: &str, want: usize, timeout: Duration) -> Vec<Got> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", format!("t-{}", suffix()))
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "2000")
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts = md.topics()[0].partitions().len() as i32;
    assert!(parts > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < want && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            let mut headers = BTreeMap::new();
            if let Some(h) = m.headers() {
                for i in 0..h.count() {
                    let hh = h.get(i);
                    headers.insert(
                        hh.key.to_string(),
                        String::from_utf8_lossy(hh.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push(Got {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                headers,
            });
        }
    }
    out
}

#[test]
fn batch_lands_with_keys_values_headers_and_topic_template() {
    let broker = env("AZLOG_KAFKA_BROKERS");
    let s = suffix();
    let (ds_a, ds_b) = (format!("azure.signin{s}"), format!("azure.Audit {s}"));
    let (topic_a, topic_b) = (format!("t.azure.signin{s}"), format!("t.azure.audit_{s}"));
    create_topic(&broker, &topic_a, 2);
    create_topic(&broker, &topic_b, 1);
    let mut k = sink(&broker, json!({"topic": "t.{dataset}"}));
    let recs: Vec<Record> = (0..10)
        .map(|i| {
            if i % 2 == 0 {
                rec(
                    i,
                    &ds_a,
                    Some("/subscriptions/S/resourceGroups/G/providers/P/x"),
                )
            } else {
                rec(i, &ds_b, None)
            }
        })
        .collect();
    let r = k.write_batch(&recs).expect("delivered");
    assert_eq!((r.handled, r.accepted()), (10, 10));
    let a = read_topic(&broker, &topic_a, 5, Duration::from_secs(20));
    let b = read_topic(&broker, &topic_b, 5, Duration::from_secs(20));
    assert_eq!((a.len(), b.len()), (5, 5), "{a:?} {b:?}");
    for g in &a {
        assert_eq!(
            g.key.as_deref(),
            Some("/subscriptions/S/resourceGroups/G/providers/P/x")
        );
        let v: serde_json::Value = serde_json::from_str(&g.value).expect("ECS JSON");
        assert_eq!(v["event"]["dataset"], ds_a.as_str());
        assert_eq!(v["message"], "hello \"kafka\"\n");
        let n = v["event"]["id"].as_str().expect("id")[3..]
            .parse::<i64>()
            .expect("n");
        assert_eq!(g.headers["azlog.source"], "eventhubs:ns/hub/$Default");
        assert_eq!(g.headers["azlog.partition"], "3");
        assert_eq!(g.headers["azlog.offset"], (1000 + n).to_string());
        assert_eq!(g.headers["azlog.sequence"], (7 + n).to_string());
        assert_eq!(g.headers["azlog.index"], (n % 4).to_string());
        assert_eq!(g.headers["azlog.dataset"], ds_a.as_str());
    }
    // No resource id: the source partition keys the record.
    assert!(b.iter().all(|g| g.key.as_deref() == Some("3")), "{b:?}");
    let mut ids: Vec<String> = a
        .iter()
        .chain(&b)
        .map(|g| {
            let v: serde_json::Value = serde_json::from_str(&g.value).expect("json");
            v["event"]["id"].as_str().expect("id").to_string()
        })
        .collect();
    ids.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("id-{i}")).collect();
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn raw_format_fixed_topic_no_key_no_headers() {
    let broker = env("AZLOG_KAFKA_BROKERS");
    let topic = format!("raw-{}", suffix());
    create_topic(&broker, &topic, 1);
    let mut k = sink(
        &broker,
        json!({"topic": topic, "format": "raw", "key_fallback": "none", "headers": false,
               "compression": "zstd"}),
    );
    let recs: Vec<Record> = (0..3).map(|i| rec(i, "azure.x", None)).collect();
    k.write_batch(&recs).expect("delivered");
    let got = read_topic(&broker, &topic, 3, Duration::from_secs(20));
    let values: Vec<&str> = got.iter().map(|g| g.value.as_str()).collect();
    assert_eq!(
        values,
        [
            "{\"n\":0,\"category\":\"X\"}",
            "{\"n\":1,\"category\":\"X\"}",
            "{\"n\":2,\"category\":\"X\"}"
        ]
    );
    assert!(got.iter().all(|g| g.key.is_none() && g.headers.is_empty()));
    k.close().expect("close");
}

#[test]
fn broker_down_is_retryable_and_nothing_is_acked_then_delivered_when_back() {
    let mut broker = OwnBroker::start();
    let topic = format!("outage-{}", suffix());
    create_topic(&broker.addr(), &topic, 1);
    let mut k = sink(
        &broker.addr(),
        json!({"topic": topic, "message_timeout_ms": 2000}),
    );
    k.write_batch(&[rec(0, "azure.x", None)])
        .expect("delivered while up");
    broker.down();
    let recs: Vec<Record> = (1..6).map(|i| rec(i, "azure.x", None)).collect();
    let started = Instant::now();
    let err = k.write_batch(&recs).expect_err("broker down: an error");
    assert_eq!(err.kind, ErrorKind::Retryable, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by message_timeout_ms: {:?}",
        started.elapsed()
    );
    assert!(
        matches!(k.health().state, azlog_plugin_api::HealthState::Degraded),
        "{:?}",
        k.health()
    );
    // The broker comes back (empty: memory storage); the host's retry delivers the batch.
    broker.up();
    create_topic(&broker.addr(), &topic, 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let rep = loop {
        match k.write_batch(&recs) {
            Ok(r) if r.tail_error.is_none() => break r,
            other => {
                assert!(Instant::now() < deadline, "never delivered: {other:?}");
                if let Err(e) = &other {
                    assert!(e.is_retryable(), "{e}");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_eq!(rep.accepted(), 5);
    let got = read_topic(&broker.addr(), &topic, 5, Duration::from_secs(20));
    let mut ids: Vec<String> = got
        .iter()
        .map(|g| {
            let v: serde_json::Value = serde_json::from_str(&g.value).expect("json");
            v["event"]["id"].as_str().expect("id").to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids, ["id-1", "id-2", "id-3", "id-4", "id-5"]);
    assert_eq!(k.health().state, azlog_plugin_api::HealthState::Healthy);
}

#[test]
fn an_oversized_record_is_rejected_alone() {
    let broker = env("AZLOG_KAFKA_BROKERS");
    let topic = format!("big-{}", suffix());
    create_topic(&broker, &topic, 1);
    let mut k = sink(
        &broker,
        json!({"topic": topic, "format": "raw", "properties": {"message.max.bytes": 2000}}),
    );
    let mut recs: Vec<Record> = (0..3).map(|i| rec(i, "azure.x", None)).collect();
    recs[1].original = RString::from(format!("{{\"pad\":\"{}\"}}", "x".repeat(5000)));
    let r = k.write_batch(&recs).expect("report");
    assert_eq!(r.handled, 3);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!(r.rejected[0].index, 1);
    assert!(
        r.rejected[0].reason.contains("too large") || r.rejected[0].reason.contains("size"),
        "{:?}",
        r.rejected[0].reason
    );
    let got = read_topic(&broker, &topic, 2, Duration::from_secs(20));
    assert_eq!(got.len(), 2);
}
