//! # azlog-emulator
//!
//! A local, Event Hubs-compatible AMQP 1.0 server for tests, demos and benchmarks, built on
//! `fe2o3-amqp`'s acceptor. It speaks enough of the Event Hubs protocol for the official
//! clients (Python `azure-eventhub` 5.x with `UseDevelopmentEmulator=true`, Rust
//! `azure_messaging_eventhubs` with a custom `amqp://` endpoint):
//!
//! - SASL `MSSBCBS` / `ANONYMOUS` / `PLAIN` (any credentials), `$cbs` put-token (202),
//!   `$management` READ of `com.microsoft:eventhub` and `com.microsoft:partition`;
//! - senders to `<hub>` (partition key hashed, else round robin) and `<hub>/Partitions/<id>`,
//!   batched messages (format `0x80013700`) split into events, 1 MiB message limit;
//! - receivers at `<hub>/ConsumerGroups/<cg>/Partitions/<id>` with selector filters on offset,
//!   sequence number and enqueued time; broker annotations on every event; owner level
//!   (epoch) and the 5-reader quota; link credit honoured;
//! - per-partition retention by count and bytes; optional persistence (`--data-dir`);
//! - every outgoing performative encoded with all its fields ([`wire`]), which the Python SDK
//!   needs (it reads fields by position), and a listener MSS that keeps the Python SDK's
//!   socket setup working over loopback ([`server::LISTENER_MSS`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use azlog_emulator::{start, EmulatorConfig, HubSpec};
//! let emulator = start(EmulatorConfig::ephemeral(vec![HubSpec::new("eh1", 2)])).await?;
//! let seq = emulator.publish("eh1", Some("0"), None, bytes::Bytes::from_static(b"{}"))?;
//! println!("{} -> seq {seq}", emulator.connection_string("eh1"));
//! emulator.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod address;
pub mod broker;
pub mod config;
pub mod disk;
pub mod egress;
pub mod errors;
pub mod event;
pub mod filter;
pub mod ingest;
pub mod log;
pub mod management;
pub mod mgmt_link;
pub mod readers;
pub mod sasl;
pub mod server;
pub mod wire;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use bytes::Bytes;
use tokio::{sync::watch, task::JoinHandle};

pub use broker::{Broker, Hub, LookupError};
pub use config::{EmulatorArgs, EmulatorConfig, HubSpec, Retention};
pub use log::PartitionInfo;

/// Shared access key name used in emulator connection strings (as Microsoft's emulator).
pub const KEY_NAME: &str = "RootManageSharedAccessKey";
/// Shared access key used in emulator connection strings (not a secret: the emulator accepts
/// any key; this is the well-known value of Microsoft's emulator).
pub const KEY_VALUE: &str = "SAS_KEY_VALUE";

/// A running emulator. Dropping the handle stops it as well (the accept loop and all
/// connections end); [`EmulatorHandle::shutdown`] does so and waits.
#[derive(Debug)]
pub struct EmulatorHandle {
    addr: SocketAddr,
    broker: Arc<Broker>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Starts the emulator: binds the listener, loads persisted data, serves in the background.
pub async fn start(config: EmulatorConfig) -> anyhow::Result<EmulatorHandle> {
    config.validate()?;
    let broker = Arc::new(Broker::new(&config)?);
    let listener =
        server::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(server::serve(listener, broker.clone(), shutdown_rx));
    tracing::info!(%addr, hubs = ?config.effective_hubs(), data_dir = ?config.data_dir, "event hubs emulator listening");
    Ok(EmulatorHandle {
        addr,
        broker,
        shutdown,
        task,
    })
}

/// Runs the emulator from command-line arguments until ctrl-c.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = EmulatorConfig::from(args);
    let handle = start(config.clone()).await?;
    for hub in config.effective_hubs() {
        println!(
            "hub {} ({} partitions): {}",
            hub.name,
            hub.partitions,
            handle.connection_string(&hub.name)
        );
    }
    println!("Rust SDK custom endpoint: {}", handle.amqp_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    tracing::info!("shutting down");
    handle.shutdown().await
}

impl EmulatorHandle {
    /// The address the server listens on (with the real port when 0 was configured).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn client_host(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            self.addr.ip()
        };
        SocketAddr::new(ip, self.addr.port()).to_string()
    }

    /// Host for connection strings: `localhost:PORT` for loopback (the JS SDK only honours
    /// `UseDevelopmentEmulator` for loopback names; Microsoft's emulator uses `localhost`).
    fn connection_host(&self) -> String {
        if self.addr.ip().is_loopback() || self.addr.ip().is_unspecified() {
            format!("localhost:{}", self.addr.port())
        } else {
            self.client_host()
        }
    }

    /// Connection string for `hub` that the official SDKs accept:
    /// `Endpoint=sb://localhost:PORT;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;EntityPath=<hub>`.
    /// Python and JS honour `UseDevelopmentEmulator` (plain AMQP on the given port); the Rust
    /// SDK ignores it and needs [`EmulatorHandle::amqp_url`] as custom endpoint.
    pub fn connection_string(&self, hub: &str) -> String {
        format!(
            "Endpoint=sb://{};SharedAccessKeyName={KEY_NAME};SharedAccessKey={KEY_VALUE};UseDevelopmentEmulator=true;EntityPath={hub}",
            self.connection_host()
        )
    }

    /// `amqp://127.0.0.1:PORT`, for `ConsumerClient::builder().with_custom_endpoint(..)`.
    pub fn amqp_url(&self) -> String {
        format!("amqp://{}", self.client_host())
    }

    /// The broker (hubs, partitions), for in-process inspection.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Publishes one event in-process (no AMQP client needed). `partition` picks the partition
    /// explicitly; otherwise `partition_key` is hashed, otherwise round robin. Returns the
    /// event's sequence number.
    pub fn publish(
        &self,
        hub: &str,
        partition: Option<&str>,
        partition_key: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<i64> {
        self.publish_batch(hub, partition, partition_key, vec![body])
    }

    /// Publishes several events to one partition in-process, atomically and with one enqueued
    /// time (like a batch). Returns the sequence number of the first.
    pub fn publish_batch(
        &self,
        hub: &str,
        partition: Option<&str>,
        partition_key: Option<&str>,
        bodies: Vec<Bytes>,
    ) -> anyhow::Result<i64> {
        let hub = self.broker.hub(hub)?;
        let index = hub.route(partition, partition_key)?;
        let events = bodies
            .into_iter()
            .map(|b| (event::data_message(b), partition_key.map(str::to_string)))
            .collect();
        hub.append(index, events)
    }

    /// Current properties of a partition.
    pub fn partition_info(&self, hub: &str, partition: &str) -> anyhow::Result<PartitionInfo> {
        Ok(self.broker.hub(hub)?.partition(partition)?.info())
    }

    /// Stops accepting, closes connections, waits for the listener task.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("emulator task panicked")?;
        // Give connection tasks a moment to send their close frames.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Ok(())
    }
}
