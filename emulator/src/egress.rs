//! Consumer links (`<hub>/ConsumerGroups/<cg>/Partitions/<id>`): stream events from a start
//! position, within the link credit the client grants (fe2o3's sender waits for credit, so
//! nothing is buffered beyond it; transfers are pre-settled, so nothing is kept after sending
//! either), until the client detaches or a higher owner level steals the partition.

use std::{sync::Arc, time::Duration};

use fe2o3_amqp::{Sendable, Sender};
use fe2o3_amqp_types::{messaging::Message, primitives::Value};
use tokio::sync::oneshot;

use crate::{
    errors,
    event::StoredEvent,
    filter::StartPosition,
    log::PartitionLog,
    readers::{Kicked, ReaderGuard},
};

/// Events fetched from the log per lock acquisition.
const READ_CHUNK: usize = 64;

/// Everything a consumer link task needs.
#[derive(Debug)]
pub struct ConsumerLink {
    /// The accepted link.
    pub sender: Sender,
    /// Partition to read.
    pub log: Arc<PartitionLog>,
    /// Where to start.
    pub start: StartPosition,
    /// Registration in the hub's reader registry (released when the task ends).
    pub guard: ReaderGuard,
    /// Fires when a receiver with a higher owner level takes over.
    pub kicked: oneshot::Receiver<Kicked>,
}

fn as_sendable(event: &StoredEvent) -> Sendable<&fe2o3_amqp_types::messaging::Body<Value>> {
    let m = &event.message;
    let message = Message {
        header: m.header.clone(),
        delivery_annotations: None,
        message_annotations: m.message_annotations.clone(),
        properties: m.properties.clone(),
        application_properties: m.application_properties.clone(),
        body: &m.body,
        footer: m.footer.clone(),
    };
    Sendable::builder().message(message).build()
}

/// Serves one consumer link.
pub async fn serve_consumer(link: ConsumerLink) {
    let ConsumerLink {
        mut sender,
        log,
        start,
        guard,
        mut kicked,
    } = link;
    let mut cursor = log.cursor(start);
    let mut changes = log.subscribe();
    let name = sender.name().to_string();
    tracing::debug!(link = %name, ?start, next_seq = cursor.next_seq, "consumer attached");
    let stolen = 'serve: loop {
        changes.borrow_and_update();
        let (events, skipped) = log.read(&mut cursor, READ_CHUNK);
        if skipped > 0 {
            tracing::warn!(link = %name, skipped, "receiver fell behind retention; events skipped");
        }
        if events.is_empty() {
            tokio::select! {
                biased;
                k = &mut kicked => break 'serve k.ok(),
                _ = sender.on_detach() => break 'serve None,
                r = changes.changed() => if r.is_err() { break 'serve None },
            }
            continue;
        }
        for event in &events {
            let sendable = as_sendable(event);
            tokio::select! {
                biased;
                k = &mut kicked => break 'serve k.ok(),
                r = sender.send_batchable_ref(&sendable) => match r {
                    // Consumer links send pre-settled (see `server::consumer_link_acceptor`).
                    Ok(_outcome) => {}
                    Err(err) => {
                        tracing::debug!(link = %name, %err, "consumer link ended");
                        break 'serve None;
                    }
                },
            }
        }
    };
    drop(guard);
    let close = async {
        match stolen {
            Some(k) => {
                tracing::info!(link = %name, "receiver disconnected by a higher owner level");
                sender.close_with_error(errors::stolen(k.description)).await
            }
            None => sender.close().await,
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
}
