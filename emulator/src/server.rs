//! TCP listener, AMQP connections and sessions, and dispatch of attaching links to the
//! right handler.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use fe2o3_amqp::acceptor::{
    ConnectionAcceptor, LinkAcceptor, LinkEndpoint, ListenerSessionHandle, SessionAcceptor,
    SupportedReceiverSettleModes, SupportedSenderSettleModes,
};
use fe2o3_amqp_types::{
    definitions::{Error, ReceiverSettleMode, Role, SenderSettleMode},
    messaging::TargetArchetype,
    performatives::Attach,
    primitives::{Symbol, Value},
};
use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
};

use crate::{
    address::{self, Address},
    broker::Broker,
    config::MAX_MESSAGE_SIZE,
    egress::{self, ConsumerLink},
    errors,
    filter::{self, StartPosition},
    ingest,
    management::Node,
    mgmt_link::{self, ReplyLinks},
    sasl::PermissiveSasl,
    wire::FullFrames,
};

/// Selector filter key.
const SELECTOR_FILTER: &str = "apache.org:selector-filter:string";
/// Owner-level link property.
const EPOCH: &str = "com.microsoft:epoch";
/// Idle timeout advertised on open (the service's 240 s).
const IDLE_TIME_OUT_MS: u32 = 240_000;
/// Largest frame we accept.
const MAX_FRAME_SIZE: u32 = 1024 * 1024;

/// Largest TCP segment the listener advertises (`TCP_MAXSEG`, inherited by accepted sockets).
///
/// The Python SDK's transport (pyamqp `_set_socket_options`) reads every known TCP option of
/// its connected socket and sets it back. Linux refuses to *set* `TCP_MAXSEG` above 32767
/// (`EINVAL`), but on loopback (MTU 65536) reading it returns 32768 or more, so connecting to a
/// local server fails with `[Errno 22] Invalid argument` (randomly, depending on the value at
/// that instant). Advertising a smaller MSS from the server side keeps the client's value under
/// that limit, so the unmodified SDK connects. Remote clients are unaffected (their path MTU is
/// far smaller).
pub const LISTENER_MSS: u32 = 32_000;

/// Binds the listening socket (address reuse, [`LISTENER_MSS`], backlog 1024).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if let Err(err) = socket2::SockRef::from(&socket).set_tcp_mss(LISTENER_MSS) {
        tracing::warn!(%err, "cannot set TCP_MAXSEG on the listener; Python clients may fail to connect over loopback");
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accept loop; returns when `shutdown` flips to true.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Open properties make every open field present (pyamqp reads them by index).
    let mut open_properties = fe2o3_amqp_types::definitions::Fields::new();
    open_properties.insert(
        Symbol::from("product"),
        Value::String("azlog-emulator".to_string()),
    );
    let acceptor = Arc::new(
        ConnectionAcceptor::builder()
            .properties(open_properties)
            .container_id("azlog-emulator")
            .max_frame_size(MAX_FRAME_SIZE)
            // Always present (as on the service): pyamqp indexes the open frame's idle-time-out
            // field and fails on an open without it.
            .idle_time_out(IDLE_TIME_OUT_MS)
            .sasl_acceptor(PermissiveSasl)
            .build(),
    );
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        tracing::debug!(%peer, "connection");
                        // Every performative goes out with all its fields (pyamqp needs it).
                        match acceptor.accept(FullFrames::new(stream)).await {
                            Ok(connection) => serve_connection(connection, broker, shutdown).await,
                            Err(err) => tracing::debug!(%peer, %err, "connection handshake failed"),
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn serve_connection(
    mut connection: fe2o3_amqp::acceptor::ListenerConnectionHandle,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let session_acceptor = SessionAcceptor::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            session = session_acceptor.accept(&mut connection) => match session {
                Ok(session) => {
                    tokio::spawn(serve_session(session, broker.clone()));
                }
                Err(err) => {
                    tracing::debug!(%err, "connection ended");
                    break;
                }
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), connection.close()).await;
}

async fn serve_session(mut session: ListenerSessionHandle, broker: Arc<Broker>) {
    let replies = Arc::new(ReplyLinks::default());
    while let Some(attach) = session.next_incoming_attach().await {
        if let Err(err) = dispatch(&mut session, attach, &broker, &replies).await {
            tracing::debug!(%err, "link attach failed");
        }
    }
}

fn remote_address(attach: &Attach) -> Option<String> {
    match attach.role {
        // The client sends: the target names the entity.
        Role::Sender => match attach.target.as_deref() {
            Some(TargetArchetype::Target(t)) => t.address.clone(),
            _ => None,
        },
        // The client receives: the source names the entity.
        Role::Receiver => attach.source.as_ref().and_then(|s| s.address.clone()),
    }
}

fn client_node_address(attach: &Attach) -> Option<String> {
    match attach.target.as_deref() {
        Some(TargetArchetype::Target(t)) => t.address.clone(),
        _ => None,
    }
}

fn selector(attach: &Attach) -> Option<String> {
    let filter = attach.source.as_ref()?.filter.as_ref()?;
    let value = filter.get(&Symbol::from(SELECTOR_FILTER)).or_else(|| {
        // Some clients might key the filter differently; any described string will do.
        filter.values().find(|v| matches!(v, Value::Described(_)))
    })?;
    match value {
        Value::Described(d) => match &d.value {
            Value::String(s) => Some(s.clone()),
            _ => None,
        },
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn epoch(attach: &Attach) -> Option<i64> {
    match attach.properties.as_ref()?.get(&Symbol::from(EPOCH))? {
        Value::Long(v) => Some(*v),
        Value::Int(v) => Some(i64::from(*v)),
        Value::Uint(v) => Some(i64::from(*v)),
        Value::Ulong(v) => i64::try_from(*v).ok(),
        _ => None,
    }
}

fn link_acceptor() -> DefaultLinkAcceptor {
    build_link_acceptor(false)
}

/// Acceptor for consumer links: events go out pre-settled (`snd-settle-mode` settled), whatever
/// the client asked for. Event Hubs has no per-event settlement, and the Python SDK asks for
/// unsettled transfers but never settles them (its receiver sends no disposition unless a
/// callback returns a state), so honouring its request would keep every event it read in the
/// link's unsettled map for the lifetime of the link. Pre-settled transfers also spare the
/// fe2o3-based Rust SDK a disposition per event.
fn consumer_link_acceptor() -> DefaultLinkAcceptor {
    build_link_acceptor(true)
}

fn build_link_acceptor(presettled_sends: bool) -> DefaultLinkAcceptor {
    // Link properties make every attach field present: pyamqp reads attach fields by index.
    let mut properties = fe2o3_amqp_types::definitions::Fields::new();
    properties.insert(
        Symbol::from("com.microsoft:tracking-id"),
        Value::String("azlog-emulator".to_string()),
    );
    let builder = LinkAcceptor::builder()
        // As the service: the emulator settles what it receives at once (`first`), also when a
        // producer asks for `second` (pyamqp does, and it only acts on settled dispositions).
        .supported_receiver_settle_modes(SupportedReceiverSettleModes::First)
        .fallback_receiver_settle_mode(ReceiverSettleMode::First)
        .max_message_size(MAX_MESSAGE_SIZE)
        .properties(properties)
        .verify_incoming_source(false)
        .verify_incoming_target(false);
    let builder = if presettled_sends {
        builder
            .supported_sender_settle_modes(SupportedSenderSettleModes::Settled)
            .fallback_sender_settle_mode(SenderSettleMode::Settled)
    } else {
        builder
    };
    builder.build()
}

/// Link acceptor with fe2o3's default dynamic-terminus handlers.
type DefaultLinkAcceptor = LinkAcceptor<
    fn(fe2o3_amqp_types::messaging::Source) -> Option<fe2o3_amqp_types::messaging::Source>,
    fn(fe2o3_amqp_types::messaging::Target) -> Option<fe2o3_amqp_types::messaging::Target>,
>;

/// Refuses a link as Event Hubs does (AMQP 1.0 §2.6.3): the answering attach carries a null
/// terminus (null target for a client's sender, null source for a client's receiver), which
/// tells the client the node does not exist, and is followed at once by a closing detach with
/// `error`. Clients then fail the attach with that error (fe2o3 returns it from
/// `Sender::attach` / `Receiver::attach`) instead of waiting on a link that never works.
async fn reject(
    session: &mut ListenerSessionHandle,
    mut attach: Attach,
    error: Error,
) -> anyhow::Result<()> {
    tracing::info!(link = %attach.name, condition = ?error.condition, description = ?error.description, "rejecting link");
    // The local terminus of the answering attach is taken from these fields.
    match attach.role {
        Role::Sender => attach.target = None,
        Role::Receiver => attach.source = None,
    }
    let endpoint = link_acceptor()
        .accept_incoming_attach(attach, session)
        .await?;
    tokio::spawn(async move {
        let close = async {
            match endpoint {
                LinkEndpoint::Sender(s) => s.close_with_error(error).await,
                LinkEndpoint::Receiver(r) => r.close_with_error(error).await,
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
    });
    Ok(())
}

async fn dispatch(
    session: &mut ListenerSessionHandle,
    attach: Attach,
    broker: &Arc<Broker>,
    replies: &Arc<ReplyLinks>,
) -> anyhow::Result<()> {
    let raw_address = remote_address(&attach).unwrap_or_default();
    let parsed = address::parse(&raw_address);
    tracing::debug!(link = %attach.name, role = ?attach.role, address = %raw_address, "attach");
    match (attach.role.clone(), parsed) {
        (Role::Sender, Some(Address::Cbs | Address::Management)) => {
            let node = node_of(&raw_address);
            let endpoint = link_acceptor()
                .accept_incoming_attach(attach, session)
                .await?;
            if let LinkEndpoint::Receiver(receiver) = endpoint {
                tokio::spawn(mgmt_link::serve_request_link(
                    receiver,
                    node,
                    broker.clone(),
                    replies.clone(),
                ));
            }
        }
        (Role::Receiver, Some(Address::Cbs | Address::Management)) => {
            let node = node_of(&raw_address);
            let client = client_node_address(&attach);
            let endpoint = link_acceptor()
                .accept_incoming_attach(attach, session)
                .await?;
            if let LinkEndpoint::Sender(sender) = endpoint {
                tokio::spawn(mgmt_link::serve_reply_link(
                    sender,
                    node,
                    client,
                    replies.clone(),
                ));
            }
        }
        (Role::Sender, Some(Address::Hub { hub })) => {
            let hub = match broker.hub(&hub) {
                Ok(h) => h.clone(),
                Err(e) => return reject(session, attach, errors::lookup(&e)).await,
            };
            let endpoint = link_acceptor()
                .accept_incoming_attach(attach, session)
                .await?;
            if let LinkEndpoint::Receiver(receiver) = endpoint {
                tokio::spawn(ingest::serve_producer(receiver, hub, None));
            }
        }
        (Role::Sender, Some(Address::Partition { hub, partition })) => {
            let (hub, index) = match broker
                .hub(&hub)
                .and_then(|h| h.route(Some(&partition), None).map(|i| (h.clone(), i)))
            {
                Ok(found) => found,
                Err(e) => return reject(session, attach, errors::lookup(&e)).await,
            };
            let endpoint = link_acceptor()
                .accept_incoming_attach(attach, session)
                .await?;
            if let LinkEndpoint::Receiver(receiver) = endpoint {
                tokio::spawn(ingest::serve_producer(receiver, hub, Some(index)));
            }
        }
        (
            Role::Receiver,
            Some(Address::Consumer {
                hub,
                consumer_group,
                partition,
            }),
        ) => {
            let found = broker.hub(&hub).and_then(|h| {
                broker.check_consumer_group(&h.name, &consumer_group)?;
                let log = h.partition(&partition)?.clone();
                Ok((h.clone(), log))
            });
            let (hub, log) = match found {
                Ok(found) => found,
                Err(e) => return reject(session, attach, errors::lookup(&e)).await,
            };
            let start = match selector(&attach).map(|s| filter::parse_selector(&s)) {
                None => StartPosition::Earliest,
                Some(Ok(p)) => p,
                Some(Err(e)) => return reject(session, attach, errors::bad_filter(&e)).await,
            };
            let registered =
                hub.readers
                    .register(&consumer_group, &partition, &attach.name, epoch(&attach));
            let (guard, kicked) = match registered {
                Ok(r) => r,
                Err(e) => return reject(session, attach, errors::reader_rejected(&e)).await,
            };
            let endpoint = consumer_link_acceptor()
                .accept_incoming_attach(attach, session)
                .await?;
            if let LinkEndpoint::Sender(sender) = endpoint {
                tokio::spawn(egress::serve_consumer(ConsumerLink {
                    sender,
                    log,
                    start,
                    guard,
                    kicked,
                }));
            }
        }
        _ => {
            let error = errors::unknown_address(&raw_address);
            return reject(session, attach, error).await;
        }
    }
    Ok(())
}

fn node_of(address: &str) -> Node {
    if address.to_ascii_lowercase().ends_with("$cbs") {
        Node::Cbs
    } else {
        Node::Management
    }
}
