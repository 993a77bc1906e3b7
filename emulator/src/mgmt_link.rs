//! Link tasks for the `$cbs` and `$management` request/response nodes. Requests arrive on a
//! link the client sends on; responses go back on the client's receiving link attached to the
//! same node in the same session (the one whose target equals `reply-to` when given).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use fe2o3_amqp::{Receiver, Sender};
use fe2o3_amqp_types::{messaging::message::Body, primitives::Value};
use tokio::sync::{mpsc, Notify};

use crate::{
    broker::Broker,
    event::EventMessage,
    management::{self, Node},
};

/// How long a request waits for its reply link to be attached (clients pipeline attaches).
const REPLY_LINK_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct ReplyLink {
    id: u64,
    node: Node,
    client_address: Option<String>,
    tx: mpsc::Sender<EventMessage>,
}

/// Reply links of one session.
#[derive(Debug, Default)]
pub struct ReplyLinks {
    links: Mutex<Vec<ReplyLink>>,
    changed: Notify,
    next_id: AtomicU64,
}

impl ReplyLinks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ReplyLink>> {
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(
        &self,
        node: Node,
        client_address: Option<String>,
        tx: mpsc::Sender<EventMessage>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(ReplyLink {
            id,
            node,
            client_address,
            tx,
        });
        self.changed.notify_waiters();
        id
    }

    fn remove(&self, id: u64) {
        self.lock().retain(|l| l.id != id);
    }

    fn lookup(&self, node: Node, reply_to: Option<&str>) -> Option<mpsc::Sender<EventMessage>> {
        let links = self.lock();
        let same_node = || links.iter().filter(|l| l.node == node);
        reply_to
            .and_then(|r| same_node().find(|l| l.client_address.as_deref() == Some(r)))
            .or_else(|| same_node().next_back())
            .map(|l| l.tx.clone())
    }

    async fn find(&self, node: Node, reply_to: Option<&str>) -> Option<mpsc::Sender<EventMessage>> {
        let deadline = tokio::time::Instant::now() + REPLY_LINK_WAIT;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(tx) = self.lookup(node, reply_to) {
                return Some(tx);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// Serves a client's receiving link on `$cbs` / `$management`: forwards responses to it.
pub async fn serve_reply_link(
    mut sender: Sender,
    node: Node,
    client_address: Option<String>,
    replies: Arc<ReplyLinks>,
) {
    let (tx, mut rx) = mpsc::channel::<EventMessage>(16);
    let id = replies.add(node, client_address, tx);
    loop {
        tokio::select! {
            message = rx.recv() => {
                let Some(message) = message else { break };
                match sender.send_batchable(message).await {
                    // The outcome does not matter for a response; do not wait for it.
                    Ok(_outcome) => {}
                    Err(err) => {
                        tracing::debug!(%err, node = node.address(), "reply link send failed");
                        break;
                    }
                }
            }
            _ = sender.on_detach() => break,
        }
    }
    replies.remove(id);
    let _ = tokio::time::timeout(Duration::from_secs(2), sender.close()).await;
}

/// Serves a client's sending link on `$cbs` / `$management`: answers each request.
pub async fn serve_request_link(
    mut receiver: Receiver,
    node: Node,
    broker: Arc<Broker>,
    replies: Arc<ReplyLinks>,
) {
    loop {
        let delivery = match receiver.recv::<Body<Value>>().await {
            Ok(d) => d,
            Err(err) => {
                tracing::debug!(%err, node = node.address(), "request link ended");
                break;
            }
        };
        if let Err(err) = receiver.accept(&delivery).await {
            tracing::debug!(%err, "accepting request failed");
            break;
        }
        let request: EventMessage = delivery.into_message();
        let response = management::handle(node, &broker, &request);
        let reply_to = management::reply_to(&request);
        match replies.find(node, reply_to.as_deref()).await {
            Some(tx) => {
                if tx.send(response).await.is_err() {
                    tracing::warn!(
                        node = node.address(),
                        "reply link closed before the response"
                    );
                }
            }
            None => tracing::warn!(
                node = node.address(),
                "no reply link attached in this session; dropping the response"
            ),
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), receiver.close()).await;
}
