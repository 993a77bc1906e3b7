//! Producer links (`<hub>` and `<hub>/Partitions/<id>`): receive messages, split batches, route,
//! append, settle.

use std::{sync::Arc, time::Duration};

use fe2o3_amqp::{link::RecvError, Receiver};
use fe2o3_amqp_types::{messaging::message::Body, primitives::Value};

use crate::{
    broker::Hub,
    config::MAX_MESSAGE_SIZE,
    errors,
    event::{self, EventMessage, BATCH_MESSAGE_FORMAT},
};

/// Serves one producer link until the client detaches. A transfer the link cannot take (e.g.
/// a message split over several deliveries, which fe2o3 0.16 clients do with messages larger
/// than the link's max-message-size) detaches the link with an error saying why.
pub async fn serve_producer(mut receiver: Receiver, hub: Arc<Hub>, partition: Option<usize>) {
    let mut link_error = None;
    loop {
        let delivery = match receiver.recv::<Body<Value>>().await {
            Ok(d) => d,
            Err(RecvError::LinkStateError(err)) => {
                tracing::debug!(%err, hub = %hub.name, "producer link ended");
                break;
            }
            Err(err) => {
                tracing::info!(%err, hub = %hub.name, "invalid transfer from producer; detaching the link");
                link_error = Some(errors::bad_transfer(&err));
                break;
            }
        };
        let format = delivery.message_format().unwrap_or(0);
        tracing::trace!(hub = %hub.name, format, "producer delivery");
        let (info, message) = delivery.into_parts();
        let outcome = ingest(&hub, partition, format, message);
        let settled = match outcome {
            Ok(()) => receiver.accept(info).await,
            Err(error) => {
                tracing::info!(hub = %hub.name, error = ?error.description, "rejecting message");
                receiver.reject(info, error).await
            }
        };
        tracing::trace!(hub = %hub.name, ok = settled.is_ok(), "producer delivery settled");
        if let Err(err) = settled {
            tracing::debug!(%err, "settling delivery failed");
            break;
        }
    }
    let close = async {
        match link_error {
            Some(error) => receiver.close_with_error(error).await,
            None => receiver.close().await,
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
}

fn ingest(
    hub: &Hub,
    partition: Option<usize>,
    format: u32,
    message: EventMessage,
) -> Result<(), fe2o3_amqp_types::definitions::Error> {
    let size = event::encoded_size(&message)
        .map_err(|e| errors::bad_message(format!("cannot size message: {e}")))?;
    if size > MAX_MESSAGE_SIZE {
        return Err(errors::message_too_large(size, MAX_MESSAGE_SIZE));
    }
    let events = if format == BATCH_MESSAGE_FORMAT {
        event::split_batch(message)
            .map_err(|e| errors::bad_message(format!("undecodable batched message: {e}")))?
    } else {
        vec![message]
    };
    if events.is_empty() {
        return Ok(());
    }
    let key = event::partition_key(&events[0]);
    let target = match partition {
        Some(p) => p,
        None => hub
            .route(None, key.as_deref())
            .map_err(|e| errors::lookup(&e))?,
    };
    let events = events
        .into_iter()
        .map(|m| {
            let key = event::partition_key(&m);
            (m, key)
        })
        .collect();
    hub.append(target, events)
        .map(|_| ())
        .map_err(|e| errors::internal(format!("storing events failed: {e:#}")))
}
