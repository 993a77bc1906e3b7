//! Helpers of the Kafka bridge tests (kafka_bridge.rs): the shared tansu broker, a private
//! noida-db broker that keeps its data across restarts, topic creation, the kafka sink plugin
//! staged into a plugin dir, and reading a topic back with keys and headers.
#![allow(dead_code)]
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

/// The shared broker (`AZLOG_KAFKA_BROKERS`, default 127.0.0.1:19092); panics with what to run
/// when it is down.
pub fn shared_brokers() -> String {
    let b = std::env::var("AZLOG_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into());
    let first = b.split(',').next().unwrap_or_default().to_owned();
    let addr: std::net::SocketAddr = first.parse().expect("AZLOG_KAFKA_BROKERS host:port");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok(),
        "the Kafka test broker is not running on {b}: run scripts/kafka-start.sh"
    );
    b
}

/// A topic/group name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Creates `topic` with `partitions` partitions on `brokers`.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let res = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Copies the built kafka sink plugin into `dir` (building it when needed).
pub fn stage_kafka_plugin(dir: &Path) {
    let built = crate::pipeline_support::built_dir();
    let name = crate::pipeline_support::lib_file("azlog-sink-kafka");
    if !built.join(&name).exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "azlog-sink-kafka"])
            .args((!cfg!(debug_assertions)).then_some("--release"))
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("cargo build -p azlog-sink-kafka");
        assert!(status.success(), "building the kafka sink plugin failed");
    }
    crate::pipeline_support::copy_plugins(dir, &["azlog-sink-kafka"]);
}

/// One record read back.
#[derive(Debug, Clone)]
pub struct Got {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
    pub headers: BTreeMap<String, String>,
}

/// Reads `topic` from the beginning until `done(read so far)` or `timeout`.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    done: impl FnMut(&[Got]) -> bool,
) -> Vec<Got> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers);
    read_topic_with(&cfg, topic, timeout, done)
}

/// [`read_topic`] with a client configuration of its own (e.g. SASL_SSL settings).
pub fn read_topic_with(
    cfg: &ClientConfig,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Got]) -> bool,
) -> Vec<Got> {
    // Assigned partitions from the beginning, no group join: tansu joins slowly and noida-db
    // refuses short session timeouts; nothing is committed.
    let consumer: BaseConsumer = cfg
        .clone()
        .set("group.id", unique("readback"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("read-back consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    assert!(parts > 0, "topic {topic} has no partitions");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..parts {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("partition list");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    while Instant::now() < deadline && !done(&got) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let mut headers = BTreeMap::new();
                if let Some(h) = m.headers() {
                    for i in 0..h.count() {
                        let hd = h.get(i);
                        headers.insert(
                            hd.key.to_owned(),
                            hd.value
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or_default(),
                        );
                    }
                }
                got.push(Got {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    headers,
                });
            }
            Some(Err(e)) => eprintln!("read-back: {e}"),
            None => {}
        }
    }
    got
}

/// The noida-db binary (`AZLOG_NOIDA_BIN`, default .tools/noida/bin/noida-db).
pub fn noida_bin() -> PathBuf {
    std::env::var("AZLOG_NOIDA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.tools/noida/bin/noida-db"
            ))
        })
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A private noida-db Kafka broker keeping its data in a directory; stopped on drop.
pub struct Noida {
    data: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Noida {
    /// Starts one on a free port with data under `data`.
    pub fn start(data: &Path) -> Noida {
        std::fs::create_dir_all(data).expect("noida data dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut n = Noida {
            data: data.to_path_buf(),
            port,
            child: None,
        };
        n.up();
        n
    }

    /// `127.0.0.1:<port>`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again) on the same port and data dir.
    pub fn up(&mut self) {
        assert!(self.child.is_none(), "noida already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.with_extension("log"))
            .expect("noida log");
        let child = Command::new(noida_bin())
            .args(["start", "--only", "kafka", "--kafka-port"])
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start noida-db (scripts/noida-install.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && !port_open(self.port) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            port_open(self.port),
            "noida-db did not listen on {}",
            self.port
        );
    }

    /// Stops the broker with SIGTERM (a clean broker restart; its data dir stays), SIGKILL
    /// after 10 s.
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Noida {
    fn drop(&mut self) {
        self.down();
    }
}

/// `(partition, low, high)` watermarks of every partition of `topic` (for diagnostics).
pub fn watermarks(brokers: &str, topic: &str) -> Vec<(i32, i64, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("watermarks"))
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts = md.topics().first().map_or(0, |t| t.partitions().len()) as i32;
    (0..parts)
        .map(|p| {
            let (lo, hi) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap_or((-1, -1));
            (p, lo, hi)
        })
        .collect()
}
