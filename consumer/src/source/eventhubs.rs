//! Azure Event Hubs source on the official `azure_messaging_eventhubs` client (AMQP 1.0 over
//! fe2o3-amqp). A custom endpoint (`amqp://127.0.0.1:5672`) reaches the local emulator.
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use async_trait::async_trait;
use azure_messaging_eventhubs::{
    ConnectionString, ConsumerClient, OpenReceiverOptions, StartLocation, StartPosition,
};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::{PartitionInfo, PartitionReader, RawEvent, Source, SourceError, StartFrom};

/// How to reach a hub. `Debug` never prints the connection string.
#[derive(Clone)]
pub struct Endpoint {
    /// The connection string as copied from the portal (a secret).
    pub connection_string: String,
    /// Event hub name (may also come from `EntityPath` in the connection string).
    pub hub: String,
    /// Consumer group.
    pub consumer_group: String,
    /// `amqp://host:port` or `amqps://host:port` overriding the socket endpoint.
    pub custom_endpoint: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("connection_string", &"<redacted>")
            .field("hub", &self.hub)
            .field("consumer_group", &self.consumer_group)
            .field("custom_endpoint", &self.custom_endpoint)
            .finish()
    }
}

/// Selects rustls' process-wide crypto provider before any AMQP connection is opened.
///
/// The AMQP stack builds its TLS configuration from the process default provider. rustls picks
/// one by itself only when exactly one provider is compiled in; a build that also contains a
/// `ring`-based crate (the syslog and HEC plugins, when the workspace is built together) has both,
/// and opening a connection would then panic. Installing `aws-lc-rs` (the provider `reqwest` and
/// the Azure SDK use) first makes every build behave the same. Idempotent.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another default was installed first, which is just as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Opens a consumer client.
pub async fn connect(ep: &Endpoint) -> Result<ConsumerClient> {
    ensure_crypto_provider();
    let mut builder = ConsumerClient::builder().with_consumer_group(ep.consumer_group.clone());
    if let Some(url) = &ep.custom_endpoint {
        builder = builder.with_custom_endpoint(url.clone());
    }
    builder
        .open_with_connection_string(&ep.connection_string, Some(&ep.hub))
        .await
        .with_context(|| {
            format!(
                "connecting to event hub {:?} (consumer group {:?})",
                ep.hub, ep.consumer_group
            )
        })
}

/// Partition ids of the hub.
pub async fn partition_ids(client: &ConsumerClient) -> Result<Vec<String>> {
    let props = client
        .get_eventhub_properties()
        .await
        .context("reading event hub properties")?;
    Ok(props.partition_ids)
}

/// Reads one partition from `start` up to the last event enqueued when the call began, sending
/// each event to `tx`. Returns the number of events read. Fails when no event arrives for
/// `idle_timeout` while events are still expected.
pub async fn read_partition_to_end(
    client: &ConsumerClient,
    partition: &str,
    start: StartLocation,
    prefetch: u32,
    idle_timeout: std::time::Duration,
    tx: &mpsc::Sender<RawEvent>,
) -> Result<u64> {
    let props = client
        .get_partition_properties(partition)
        .await
        .with_context(|| format!("reading properties of partition {partition}"))?;
    if props.is_empty {
        return Ok(0);
    }
    let last = props.last_enqueued_sequence_number;
    let receiver = client
        .open_receiver_on_partition(
            partition.to_owned(),
            Some(OpenReceiverOptions {
                start_position: Some(StartPosition {
                    location: start,
                    inclusive: true,
                }),
                prefetch: Some(prefetch),
                owner_level: None,
                receive_timeout: None,
            }),
        )
        .await
        .with_context(|| format!("opening a receiver on partition {partition}"))?;
    let mut n = 0u64;
    {
        let mut stream = std::pin::pin!(receiver.stream_events());
        loop {
            let next = tokio::time::timeout(idle_timeout, stream.next())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "partition {partition}: no event within {idle_timeout:?} although the hub reports events up to sequence number {last}"
                    )
                })?;
            let Some(event) = next else { break };
            let event = event.with_context(|| format!("receiving from partition {partition}"))?;
            let sequence = event.sequence_number().unwrap_or(-1);
            let raw = RawEvent {
                body: event
                    .event_data()
                    .body()
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                partition: partition.to_owned(),
                offset: event.offset().clone().unwrap_or_default(),
                sequence,
                enqueued_ns: event.enqueued_time().and_then(system_time_ns),
            };
            n += 1;
            if tx.send(raw).await.is_err() {
                break;
            }
            if sequence >= last {
                break;
            }
        }
    }
    receiver.close().await.ok();
    Ok(n)
}

fn system_time_ns(t: SystemTime) -> Option<i64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
}

impl Endpoint {
    /// The namespace host from the connection string (`ns.servicebus.windows.net`,
    /// `localhost` for the emulator), as the SDKs use it in checkpoint names.
    pub fn fully_qualified_namespace(&self) -> Result<String> {
        let cs: ConnectionString = self
            .connection_string
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid Event Hubs connection string: {e}"))?;
        Ok(cs.fully_qualified_namespace)
    }
}

/// Reader options of an [`EventHubsSource`].
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Events the link prefetches (AMQP credit).
    pub prefetch: u32,
    /// Owner level (epoch): a receiver with a higher or equal level disconnects this one; a
    /// receiver without a level is refused while one with a level is attached.
    pub owner_level: Option<i64>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            prefetch: 300,
            owner_level: None,
        }
    }
}

/// [`Source`] on an Event Hub and consumer group, through the official client.
pub struct EventHubsSource {
    client: tokio::sync::Mutex<Option<std::sync::Arc<ConsumerClient>>>,
    endpoint: Endpoint,
    fqns: String,
    options: ReaderOptions,
}

impl std::fmt::Debug for EventHubsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHubsSource")
            .field("endpoint", &self.endpoint)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn sdk_error(what: &str, e: impl std::fmt::Display) -> SourceError {
    // The SDK's messages carry no secrets (its connection string type is SafeDebug and its
    // errors name hosts and entities only).
    SourceError::retryable(format!("{what}: {e}"))
}

impl EventHubsSource {
    /// Connects to the hub.
    pub async fn connect(endpoint: Endpoint, options: ReaderOptions) -> Result<Self> {
        let fqns = endpoint.fully_qualified_namespace()?;
        let client = connect(&endpoint).await?;
        Ok(EventHubsSource {
            client: tokio::sync::Mutex::new(Some(std::sync::Arc::new(client))),
            endpoint,
            fqns,
            options,
        })
    }

    /// The namespace host (for checkpoint names).
    pub fn fully_qualified_namespace(&self) -> &str {
        &self.fqns
    }

    /// The client, reconnecting if a previous failure dropped it.
    async fn client(&self) -> Result<std::sync::Arc<ConsumerClient>, SourceError> {
        let mut guard = self.client.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = std::sync::Arc::new(
            connect(&self.endpoint)
                .await
                .map_err(|e| SourceError::retryable(format!("{e:#}")))?,
        );
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Drops the client so that the next call reconnects (after connection-level errors).
    async fn reset(&self) {
        let old = self.client.lock().await.take();
        if let Some(c) = old.and_then(|c| std::sync::Arc::try_unwrap(c).ok()) {
            c.close().await.ok();
        }
    }
}

fn to_location(start: &StartFrom) -> (StartLocation, bool) {
    match start {
        StartFrom::Earliest => (StartLocation::Earliest, false),
        StartFrom::Latest => (StartLocation::Latest, false),
        StartFrom::Offset { offset, inclusive } => {
            (StartLocation::Offset(offset.clone()), *inclusive)
        }
        StartFrom::Sequence {
            sequence,
            inclusive,
        } => (StartLocation::SequenceNumber(*sequence), *inclusive),
        StartFrom::EnqueuedTime(ns) => {
            let t = if *ns >= 0 {
                UNIX_EPOCH + std::time::Duration::from_nanos(*ns as u64)
            } else {
                UNIX_EPOCH
            };
            (StartLocation::EnqueuedTime(t), true)
        }
    }
}

#[async_trait]
impl Source for EventHubsSource {
    fn describe(&self) -> String {
        format!(
            "eventhubs:{}/{}/{}",
            self.fqns, self.endpoint.hub, self.endpoint.consumer_group
        )
    }

    async fn partitions(&self) -> Result<Vec<String>, SourceError> {
        let client = self.client().await?;
        match client.get_eventhub_properties().await {
            Ok(p) => Ok(p.partition_ids),
            Err(e) => {
                self.reset().await;
                Err(sdk_error("reading event hub properties", e))
            }
        }
    }

    async fn partition_info(&self, partition: &str) -> Result<PartitionInfo, SourceError> {
        let client = self.client().await?;
        let p = match client.get_partition_properties(partition).await {
            Ok(p) => p,
            Err(e) => {
                self.reset().await;
                return Err(sdk_error(
                    &format!("reading properties of partition {partition}"),
                    e,
                ));
            }
        };
        Ok(PartitionInfo {
            id: p.id,
            is_empty: p.is_empty,
            beginning_sequence: p.beginning_sequence_number,
            last_sequence: if p.is_empty {
                -1
            } else {
                p.last_enqueued_sequence_number
            },
            last_offset: p.last_enqueued_offset,
            last_enqueued_ns: p.last_enqueued_time_utc.and_then(system_time_ns),
        })
    }

    async fn open(
        &self,
        partition: &str,
        start: &StartFrom,
    ) -> Result<Box<dyn PartitionReader>, SourceError> {
        let client = self.client().await?;
        let (location, inclusive) = to_location(start);
        let receiver = match client
            .open_receiver_on_partition(
                partition.to_owned(),
                Some(OpenReceiverOptions {
                    start_position: Some(StartPosition {
                        location,
                        inclusive,
                    }),
                    prefetch: Some(self.options.prefetch.max(1)),
                    owner_level: self.options.owner_level,
                    receive_timeout: None,
                }),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.reset().await;
                return Err(sdk_error(
                    &format!("opening a receiver on partition {partition}"),
                    e,
                ));
            }
        };
        let (tx, rx) = mpsc::channel(self.options.prefetch.clamp(16, 4096) as usize);
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let pid = partition.to_owned();
        let task = tokio::spawn(async move {
            {
                let mut stream = std::pin::pin!(receiver.stream_events());
                loop {
                    let item = tokio::select! {
                        _ = &mut stop_rx => break,
                        item = stream.next() => item,
                    };
                    let msg = match item {
                        None => break,
                        Some(Ok(event)) => Ok(RawEvent {
                            body: event
                                .event_data()
                                .body()
                                .map(<[u8]>::to_vec)
                                .unwrap_or_default(),
                            partition: pid.clone(),
                            offset: event.offset().clone().unwrap_or_default(),
                            sequence: event.sequence_number().unwrap_or(-1),
                            enqueued_ns: event.enqueued_time().and_then(system_time_ns),
                        }),
                        Some(Err(e)) => {
                            Err(sdk_error(&format!("receiving from partition {pid}"), e))
                        }
                    };
                    let failed = msg.is_err();
                    if tx.send(msg).await.is_err() || failed {
                        break;
                    }
                }
            }
            if let Err(e) = receiver.close().await {
                tracing::debug!(partition = %pid, error = %e, "closing the receiver failed");
            }
        });
        Ok(Box::new(EventHubsReader {
            rx,
            stop: Some(stop_tx),
            task: Some(task),
        }))
    }

    async fn close(&self) {
        self.reset().await;
    }
}

struct EventHubsReader {
    rx: mpsc::Receiver<Result<RawEvent, SourceError>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[async_trait]
impl PartitionReader for EventHubsReader {
    async fn next(&mut self) -> Option<Result<RawEvent, SourceError>> {
        self.rx.recv().await
    }

    fn try_next(&mut self) -> Option<Option<Result<RawEvent, SourceError>>> {
        match self.rx.try_recv() {
            Ok(item) => Some(Some(item)),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(None),
        }
    }

    async fn close(mut self: Box<Self>) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.rx.close();
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::debug!("receiver did not close within 5 s");
            }
        }
    }
}

impl Drop for EventHubsReader {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
