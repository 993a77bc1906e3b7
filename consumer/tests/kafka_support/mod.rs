//! Shared helpers of the Kafka tests (source, bridge, SASL): the tansu broker the test scripts
//! start (scripts/kafka-start.sh, `AZLOG_KAFKA_BROKERS`), private tansu brokers
//! (`AZLOG_TANSU_BIN`), a private noida-db broker that keeps its data across restarts, unique
//! topic/group names, topic creation, producers, the kafka sink plugin staged into a plugin
//! dir, reading a topic back with keys and headers, and the TLS + SASL/PLAIN test front.
//!
//! tansu quirks (docs/testing.md, infra.md §1.3) are handled here, in test settings only: a
//! short `session.timeout.ms` (group joins otherwise take ~23 s) and, where exact offsets
//! matter, one record per produce request.
#![allow(dead_code)]
pub mod bridge;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The shared broker (`AZLOG_KAFKA_BROKERS`, default 127.0.0.1:19092); panics with what to run
/// when it is down.
pub fn brokers() -> String {
    let b = std::env::var("AZLOG_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into());
    let first = b.split(',').next().unwrap_or_default().to_owned();
    let addr: std::net::SocketAddr = first.parse().expect("AZLOG_KAFKA_BROKERS host:port");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok(),
        "the Kafka test broker is not running on {b}: run scripts/kafka-start.sh (or scripts/setup-test-env.sh)"
    );
    b
}

/// The tansu binary (`AZLOG_TANSU_BIN`, default .tools/kafka/bin/tansu).
pub fn tansu_bin() -> PathBuf {
    std::env::var("AZLOG_TANSU_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../.tools/kafka/bin/tansu"
            ))
        })
}

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something listens on `port`.
pub fn wait_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A private tansu broker (memory storage) on `port`, advertising `advertised`; killed on drop.
pub struct Tansu {
    pub child: Child,
    pub port: u16,
}

impl Tansu {
    pub fn start(port: u16, advertised: u16, log: &Path) -> Tansu {
        let log = std::fs::File::create(log).expect("tansu log");
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{advertised}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu (AZLOG_TANSU_BIN; scripts/kafka-start.sh installs it)");
        assert!(
            wait_port(port, Duration::from_secs(10)),
            "tansu did not listen on {port}"
        );
        Tansu { child, port }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Client settings for `brokers` plus `extra` (key, value) pairs.
pub fn client(brokers: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// Creates `topic` with `partitions` partitions and waits until the metadata shows them all.
pub async fn create_topic(config: &ClientConfig, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
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
    wait_topic_ready(
        config,
        topic,
        usize::try_from(partitions).expect("partitions"),
        Duration::from_secs(60),
    )
    .await;
}

/// Grows `topic` to `total` partitions (admin CreatePartitions) and waits until the metadata
/// shows them all.
pub async fn add_partitions(config: &ClientConfig, topic: &str, total: usize) {
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
    let res = admin
        .create_partitions(
            &[NewPartitions::new(topic, total)],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create_partitions");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create partitions of {t}: {e}"));
    }
    wait_topic_ready(config, topic, total, Duration::from_secs(60)).await;
}

/// The offsets `group` committed for partitions `0..partitions` of `topic` (`None`: none).
pub fn committed_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let c: BaseConsumer = client(brokers, &[("group.id", group)])
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(n) => Some(n),
            _ => None,
        })
        .collect()
}

/// Waits (up to `timeout`) until the broker's metadata lists `topic` with `partitions`
/// partitions, each with a leader: a topic just created, or a broker just (re)started, is not
/// always known at once, and a produce before that fails with UnknownPartition/UnknownTopic.
/// Panics with the last metadata seen.
pub async fn wait_topic_ready(
    config: &ClientConfig,
    topic: &str,
    partitions: usize,
    timeout: Duration,
) {
    let config = config.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let brokers = config.get("bootstrap.servers").unwrap_or_default().to_owned();
        let c: BaseConsumer = config.create().expect("metadata client");
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match c.fetch_metadata(Some(&topic), Duration::from_secs(5)) {
                Ok(md) => {
                    let t = md.topics().iter().find(|t| t.name() == topic);
                    match t {
                        Some(t)
                            if t.error().is_none()
                                && t.partitions().len() == partitions
                                && t.partitions()
                                    .iter()
                                    .all(|p| p.error().is_none() && p.leader() >= 0) =>
                        {
                            return;
                        }
                        Some(t) => {
                            last = format!(
                                "topic error {:?}, partitions {:?}",
                                t.error(),
                                t.partitions()
                                    .iter()
                                    .map(|p| (p.id(), p.leader(), p.error()))
                                    .collect::<Vec<_>>()
                            )
                        }
                        None => last = "topic not listed".into(),
                    }
                }
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{topic} not ready with {partitions} partitions on {brokers} within {timeout:?}: {last}");
    })
    .await
    .expect("metadata wait");
}

/// Whether a produce error only means the producer's metadata does not (yet) know the
/// topic/partition (or its leader): the record was not written, so sending it again cannot
/// duplicate it. Errors after which the record may have been written (timeouts) do not count.
pub fn produce_retriable(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
        )
    )
}

/// A producer that sends one record per request (`linger.ms=0`, awaited sends).
pub fn producer(config: &ClientConfig) -> FutureProducer {
    let mut c = config.clone();
    c.set("linger.ms", "0").set("acks", "all");
    c.create().expect("producer")
}

/// Sends one record and waits for its offset.
pub async fn send(
    p: &FutureProducer,
    topic: &str,
    partition: i32,
    payload: &[u8],
    timestamp_ms: Option<i64>,
) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut rec: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic)
            .partition(partition)
            .payload(payload);
        if let Some(ts) = timestamp_ms {
            rec = rec.timestamp(ts);
        }
        match p.send(rec, Duration::from_secs(30)).await {
            Ok(d) => return d.offset,
            Err((e, _)) if produce_retriable(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err((e, _)) => panic!("produce to {topic}/{partition}: {e}"),
        }
    }
}

/// `[source.kafka]` for `topic`/`group` with test settings (short session timeout for tansu).
pub fn source_section(brokers: &str, topic: &str, group: &str) -> String {
    format!(
        "[source.kafka]\nbootstrap_servers = \"{brokers}\"\ntopics = [\"{topic}\"]\ngroup_id = \"{group}\"\nstart_position = \"earliest\"\nrebalance_drain_timeout_ms = 5000\n[source.kafka.properties]\n\"session.timeout.ms\" = 3000\n\"heartbeat.interval.ms\" = 500\n"
    )
}

/// The noida-db binary (`AZLOG_NOIDA_BIN`, default .tools/noida/bin/noida-db;
/// `scripts/noida-install.sh` installs it): a Kafka-protocol broker that keeps its data in a
/// directory, for broker-restart tests (tansu here has memory storage only).
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

/// A private noida-db broker on a fixed port and data dir; `down()` kills it (SIGKILL), `up()`
/// starts it again on the same port and data; killed on drop.
pub struct Noida {
    data: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Noida {
    pub fn start(data: &Path) -> Noida {
        std::fs::create_dir_all(data).expect("noida data dir");
        let mut n = Noida {
            data: data.to_path_buf(),
            port: free_port(),
            child: None,
        };
        n.up();
        n
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

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
        assert!(
            wait_port(self.port, Duration::from_secs(20)),
            "noida-db did not listen on {}",
            self.port
        );
    }

    /// The high watermark of each partition of `topic` in the broker's on-disk snapshot
    /// (`<data>/kafka.json`), empty when the snapshot does not have the topic (yet).
    pub fn persisted_watermarks(&self, topic: &str) -> Vec<(i64, i64)> {
        let Ok(text) = std::fs::read_to_string(self.data.join("kafka.json")) else {
            return Vec::new();
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            return Vec::new();
        };
        let topics = v["topics"].as_array().cloned().unwrap_or_default();
        let Some(t) = topics.iter().find(|t| t[0].as_str() == Some(topic)) else {
            return Vec::new();
        };
        let mut marks: Vec<(i64, i64)> = t[1]["partitions"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| Some((p[0].as_i64()?, p[1]["high_watermark"].as_i64()?)))
                    .collect()
            })
            .unwrap_or_default();
        marks.sort_unstable();
        marks
    }

    /// Waits (up to `timeout`) until the on-disk snapshot has `topic` with these high
    /// watermarks (partition, end offset). noida-db keeps its state in memory and writes it
    /// to `kafka.json` about once a second, so a SIGKILL right after a topic was created or
    /// records were produced loses them; a test that kills the broker waits for this first.
    pub async fn wait_persisted(&self, topic: &str, want: &[(i64, i64)], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut seen = self.persisted_watermarks(topic);
        while seen != want {
            assert!(
                Instant::now() < deadline,
                "noida-db did not persist {topic} with watermarks {want:?} within {timeout:?} (on disk: {seen:?})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            seen = self.persisted_watermarks(topic);
        }
    }

    /// Kills the broker (SIGKILL); its data dir stays.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the broker with SIGTERM (a clean broker restart; its data dir stays), SIGKILL
    /// after 10 s.
    pub fn stop(&mut self) {
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
        self.kill();
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

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a server certificate for localhost/127.0.0.1 signed by it.
pub fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=azlog test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

/// The Python interpreter of the test venv (`AZLOG_PYTHON`), else `python3`.
pub fn python() -> PathBuf {
    std::env::var("AZLOG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("python3"))
}

/// An Event Hubs-shaped connection string (the SASL/PLAIN password of the Kafka endpoint).
pub fn connection_string(key: &str, topic: &str) -> String {
    format!("Endpoint=sb://localhost/;SharedAccessKeyName=listen;SharedAccessKey={key};EntityPath={topic}")
}

/// The Event Hubs Kafka endpoint's shape on loopback: a private tansu behind the test-only
/// TLS + SASL/PLAIN front (tests/python/sasl_plain_tls_proxy.py), with a test CA and a server
/// certificate made by openssl under `<dir>/tls`. The front accepts user `$ConnectionString`
/// with exactly `password`. Both processes are killed on drop.
pub struct SaslFront {
    /// `127.0.0.1:<front port>`: the bootstrap address for clients.
    pub front: String,
    /// The CA that signed the front's certificate.
    pub ca: PathBuf,
    proxy: Child,
    _tansu: Tansu,
}

impl SaslFront {
    pub fn start(dir: &Path, password: &str) -> SaslFront {
        let tls = dir.join("tls");
        std::fs::create_dir_all(&tls).expect("tls dir");
        make_certs(&tls);
        let (broker_port, front_port) = (free_port(), free_port());
        let tansu = Tansu::start(broker_port, front_port, &dir.join("tansu.log"));
        let proxy = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/sasl_plain_tls_proxy.py"
            ))
            .arg(front_port.to_string())
            .arg(broker_port.to_string())
            .arg(tls.join("server.pem"))
            .arg(tls.join("server.key"))
            .arg("$ConnectionString")
            .arg(password)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the TLS/SASL front");
        assert!(
            wait_port(front_port, Duration::from_secs(10)),
            "the TLS/SASL front did not listen on {front_port}"
        );
        SaslFront {
            front: format!("127.0.0.1:{front_port}"),
            ca: tls.join("ca.pem"),
            proxy,
            _tansu: tansu,
        }
    }
}

impl Drop for SaslFront {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

/// A loopback TCP forwarder in front of a broker (`127.0.0.1:<port>` → `127.0.0.1:<target>`)
/// that the test can [`cut`](Forwarder::cut): every live connection is dropped at once
/// (bytes read from one side and not yet written to the other are lost, as on a dead link) and
/// new connections are closed as soon as they are accepted, until [`restore`](Forwarder::restore).
/// Runs on the caller's tokio runtime; stops on drop.
pub struct Forwarder {
    pub port: u16,
    cut: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    /// Listens on a free port and forwards to `target`.
    pub async fn start(target: u16) -> Forwarder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("forwarder listens");
        let port = listener.local_addr().expect("forwarder address").port();
        // Even epochs: open; odd: cut. Every change drops the live connections.
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let cut = std::sync::Arc::new(tx);
        let state = cut.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut epoch = state.subscribe();
                let at = *epoch.borrow_and_update();
                if at % 2 == 1 {
                    drop(client);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let mut client = client;
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = epoch.changed() => {}
                    }
                    // Dropped here: both sockets close, whatever was in between is gone.
                });
            }
        });
        Forwarder { port, cut, accept }
    }

    /// Drops every live connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_modify(|e| {
            if *e % 2 == 0 {
                *e += 1;
            }
        });
    }

    /// Accepts (and forwards) new connections again.
    pub fn restore(&self) {
        self.cut.send_modify(|e| {
            if *e % 2 == 1 {
                *e += 1;
            }
        });
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut.send_modify(|e| *e += 2);
    }
}
