//! Azure Event Hubs source on the official `azure_messaging_eventhubs` client (AMQP 1.0 over
//! fe2o3-amqp). A custom endpoint (`amqp://127.0.0.1:5672`) reaches the local emulator.
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use azure_messaging_eventhubs::{
    ConsumerClient, OpenReceiverOptions, StartLocation, StartPosition,
};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::RawEvent;

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

/// Opens a consumer client.
pub async fn connect(ep: &Endpoint) -> Result<ConsumerClient> {
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
