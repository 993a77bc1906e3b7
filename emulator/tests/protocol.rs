//! Protocol-level checks with a raw AMQP client (fe2o3-amqp): errors for bad input, batched
//! format, message size limit, link credit, retention, persistence.

mod common;

use std::time::Duration;

use azlog_emulator::{start, EmulatorConfig, HubSpec, Retention};
use bytes::Bytes;
use fe2o3_amqp::{link::receiver::CreditMode, session::SessionHandle, Receiver, Sendable, Sender};
use fe2o3_amqp_types::{
    definitions::SenderSettleMode,
    messaging::{
        message::__private::Serializable, Body, Data, Message, MessageAnnotations, Outcome, Source,
    },
    primitives::{Binary, Symbol, Value},
};
use serde_amqp::{described::Described, descriptor::Descriptor};

const SELECTOR: &str = "apache.org:selector-filter:string";

async fn receiver(
    session: &mut SessionHandle<()>,
    address: &str,
    expr: Option<&str>,
    credit: CreditMode,
) -> Result<Receiver, String> {
    let mut source = Source::builder().address(address.to_string());
    if let Some(expr) = expr {
        source = source.add_to_filter(
            Symbol::from(SELECTOR),
            Some(Described {
                // The official Rust SDK's descriptor code.
                descriptor: Descriptor::Code(0x0000_468C_0000_0004),
                value: Value::String(expr.to_string()),
            }),
        );
    }
    let attach = Receiver::builder()
        .name(format!("r-{address}-{expr:?}"))
        .source(source.build())
        .target("client")
        .credit_mode(credit)
        .attach(session);
    tokio::time::timeout(common::WAIT, attach)
        .await
        .map_err(|_| format!("{address}: attach timed out"))?
        .map_err(|e| format!("{e:?}"))
}

/// Attach must fail, now or on the first receive; returns the error text.
async fn expect_receiver_error(
    session: &mut SessionHandle<()>,
    address: &str,
    expr: Option<&str>,
) -> String {
    match receiver(session, address, expr, CreditMode::Auto(10)).await {
        Err(e) => e,
        Ok(mut r) => match tokio::time::timeout(common::WAIT, r.recv::<Body<Value>>()).await {
            Ok(Err(e)) => format!("{e:?}"),
            Ok(Ok(_)) => panic!("{address} {expr:?}: expected an error, got a message"),
            Err(_) => panic!("{address} {expr:?}: expected an error, got nothing"),
        },
    }
}

fn body_text(message: &Message<Body<Value>>) -> String {
    match &message.body {
        Body::Data(d) => String::from_utf8_lossy(&d[0].0).to_string(),
        other => panic!("unexpected body {other:?}"),
    }
}

fn annotation(message: &Message<Body<Value>>, key: &str) -> Option<Value> {
    message
        .message_annotations
        .as_ref()?
        .0
        .get(&fe2o3_amqp_types::messaging::annotations::OwnedKey::Symbol(
            Symbol::from(key),
        ))
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_amqp_errors_and_the_emulator_keeps_running() {
    common::bounded(bad_input_gets_amqp_errors_and_the_emulator_keeps_running_body()).await;
}

async fn bad_input_gets_amqp_errors_and_the_emulator_keeps_running_body() {
    let emulator = common::emulator(&[("eh1", 2)]).await;
    let (_conn, mut session) = common::raw_session(&emulator).await;

    let err = expect_receiver_error(
        &mut session,
        "amqps://localhost/nope/ConsumerGroups/$Default/Partitions/0",
        None,
    )
    .await;
    assert!(
        err.contains("NotFound") || err.contains("not-found"),
        "{err}"
    );
    let err =
        expect_receiver_error(&mut session, "eh1/ConsumerGroups/nope/Partitions/0", None).await;
    assert!(
        err.contains("NotFound") || err.contains("could not be found"),
        "{err}"
    );
    let err = expect_receiver_error(
        &mut session,
        "eh1/ConsumerGroups/$Default/Partitions/7",
        None,
    )
    .await;
    assert!(err.contains("argument-out-of-range"), "{err}");
    let err = expect_receiver_error(
        &mut session,
        "eh1/ConsumerGroups/$Default/Partitions/0",
        Some("amqp.annotation.x-opt-offset < '5'"),
    )
    .await;
    assert!(err.contains("argument-error"), "{err}");
    let err = expect_receiver_error(
        &mut session,
        "eh1/ConsumerGroups/$Default/Partitions/0",
        Some("amqp.annotation.x-opt-offset > 'abc'"),
    )
    .await;
    assert!(err.contains("argument-error"), "{err}");

    // Unknown hub for a sender.
    // The emulator answers with a null target and detaches with amqp:not-found, so the
    // attach itself fails (as against the service).
    let sender = tokio::time::timeout(
        common::WAIT,
        Sender::attach(&mut session, "s-nope", "amqps://localhost/nope"),
    )
    .await
    .expect("attach answered in time");
    let err = format!("{:?}", sender.expect_err("attach to an unknown hub fails"));
    assert!(
        err.contains("NotFound") && err.contains("could not be found"),
        "{err}"
    );

    // Oversized message. fe2o3 0.16 (this client) does not refuse a message over the link's
    // max-message-size (1 MiB, advertised by the emulator): it cuts it into two deliveries with
    // different delivery-ids, which no receiver can take as one message. The emulator detaches
    // such a link with amqp:link:message-size-exceeded. (A client that sends one multi-frame
    // delivery, as the Python SDK does, gets a `rejected` outcome with that condition instead:
    // python/sdk_roundtrip.py checks it.)
    let mut sender = Sender::attach(&mut session, "s-big", "amqps://localhost/eh1/Partitions/0")
        .await
        .expect("sender attaches");
    let big = Message::builder()
        .data(Binary::from(vec![b'x'; 1024 * 1024 + 1]))
        .build();
    // The client waits for an outcome the broken delivery never gets: bound it.
    let sent = tokio::time::timeout(Duration::from_secs(3), sender.send(big)).await;
    assert!(
        !matches!(sent, Ok(Ok(Outcome::Accepted(_)))),
        "oversized message accepted: {sent:?}"
    );
    let closed = tokio::time::timeout(common::WAIT, sender.close())
        .await
        .expect("detach completes");
    let text = format!("{closed:?}");
    assert!(text.contains("MessageSizeExceeded"), "{text}");
    // The emulator keeps working (the client's own session does not survive its broken
    // delivery, so use a new connection).
    let (_conn2, mut session2) = common::raw_session(&emulator).await;
    // Pre-settled: see `batched_format_is_split_and_key_routed_with_annotations`.
    let mut sender = settled_sender(&mut session2, "s-small", "eh1/Partitions/0").await;
    tokio::time::timeout(
        common::WAIT,
        sender.send(
            Message::builder()
                .data(Binary::from(b"small".to_vec()))
                .build(),
        ),
    )
    .await
    .expect("send completes in time")
    .expect("send");
    wait_until("the small message is stored", || {
        emulator.partition_info("eh1", "0").unwrap().last_seq == 0
    })
    .await;
    emulator.shutdown().await.expect("shutdown");
}

/// A sender whose transfers go pre-settled (no outcome to wait for; see
/// `data_dir_persists_across_restart`).
async fn settled_sender(session: &mut SessionHandle<()>, name: &str, target: &str) -> Sender {
    Sender::builder()
        .name(name)
        .target(target)
        .sender_settle_mode(SenderSettleMode::Settled)
        .attach(session)
        .await
        .expect("sender attaches")
}

/// Polls `done` every 20 ms until it holds; fails the test after [`common::WAIT`].
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn encoded(message: &Message<Body<Value>>) -> Vec<u8> {
    serde_amqp::to_vec(&Serializable(message)).expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_format_is_split_and_key_routed_with_annotations() {
    common::bounded(batched_format_is_split_and_key_routed_with_annotations_body()).await;
}

async fn batched_format_is_split_and_key_routed_with_annotations_body() {
    let emulator = common::emulator(&[("eh1", 4)]).await;
    let (_conn, mut session) = common::raw_session(&emulator).await;
    // Pre-settled, as in `data_dir_persists_across_restart` (see there): an unsettled send can
    // wait forever in fe2o3 0.16.2 when the outcome beats the client's own bookkeeping, which
    // happened here about once in 50 runs while the other tests of this file ran alongside.
    // That the emulator accepts batches is checked by the Python SDK test
    // (`python/sdk_roundtrip.py`, whose `send_batch` raises unless accepted); here the stored
    // events show that the batch was taken, split and routed.
    let mut sender = settled_sender(&mut session, "s-batch", "eh1").await;
    let inner: Vec<Data> = (0..3)
        .map(|i| {
            let m: Message<Body<Value>> = Message::builder()
                .body(Body::Data(
                    vec![Data(Binary::from(format!("ev{i}").into_bytes()))].into(),
                ))
                .build();
            Data(Binary::from(encoded(&m)))
        })
        .collect();
    let mut annotations = MessageAnnotations::default();
    annotations.0.insert(
        fe2o3_amqp_types::messaging::annotations::OwnedKey::Symbol(Symbol::from(
            "x-opt-partition-key",
        )),
        Value::String("user-42".into()),
    );
    let envelope: Message<Body<Value>> = Message::builder()
        .message_annotations(annotations)
        .body(Body::Data(inner.into()))
        .build();
    let sendable = Sendable::builder()
        .message(envelope)
        .message_format(0x8001_3700)
        .build();
    tokio::time::timeout(common::WAIT, sender.send(sendable))
        .await
        .expect("sent in time")
        .expect("send batch");
    let stored = || {
        (0..4)
            .map(|p| {
                let info = emulator.partition_info("eh1", &p.to_string()).unwrap();
                info.retained_events
            })
            .sum::<u64>()
    };
    wait_until("the batch's three events are stored", || stored() == 3).await;

    // All three events in one partition, same partition for the same key next time.
    let seq = emulator
        .publish("eh1", None, Some("user-42"), Bytes::from("ev3"))
        .unwrap();
    assert_eq!(seq, 3, "same key, same partition, next sequence number");
    let partition = (0..4)
        .find(|p| {
            !emulator
                .partition_info("eh1", &p.to_string())
                .unwrap()
                .is_empty
        })
        .expect("some partition has the batch")
        .to_string();
    let mut r = receiver(
        &mut session,
        &format!("eh1/ConsumerGroups/$Default/Partitions/{partition}"),
        Some("amqp.annotation.x-opt-offset > -1"),
        CreditMode::Auto(10),
    )
    .await
    .expect("receiver");
    for i in 0..4 {
        let d = tokio::time::timeout(common::WAIT, r.recv::<Body<Value>>())
            .await
            .expect("in time")
            .expect("recv");
        r.accept(&d).await.expect("accept");
        let m = d.message();
        assert_eq!(body_text(m), format!("ev{i}"));
        assert_eq!(annotation(m, "x-opt-sequence-number"), Some(Value::Long(i)));
        assert!(matches!(
            annotation(m, "x-opt-offset"),
            Some(Value::String(_))
        ));
        assert!(matches!(
            annotation(m, "x-opt-enqueued-time"),
            Some(Value::Timestamp(_))
        ));
        assert_eq!(
            annotation(m, "x-opt-partition-key"),
            Some(Value::String("user-42".into()))
        );
    }
    emulator.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_credit_is_honoured() {
    common::bounded(link_credit_is_honoured_body()).await;
}

async fn link_credit_is_honoured_body() {
    let emulator = common::emulator(&[("eh1", 1)]).await;
    for i in 0..10 {
        emulator
            .publish("eh1", Some("0"), None, Bytes::from(format!("m{i}")))
            .unwrap();
    }
    let (_conn, mut session) = common::raw_session(&emulator).await;
    let mut r = receiver(
        &mut session,
        "eh1/ConsumerGroups/$Default/Partitions/0",
        Some("amqp.annotation.x-opt-sequence-number >= '0'"),
        CreditMode::Manual,
    )
    .await
    .expect("receiver");
    r.set_credit(3).await.expect("credit");
    for i in 0..3 {
        let d = tokio::time::timeout(common::WAIT, r.recv::<Body<Value>>())
            .await
            .expect("in time")
            .expect("recv");
        assert_eq!(body_text(d.message()), format!("m{i}"));
        r.accept(&d).await.expect("accept");
    }
    let extra = tokio::time::timeout(Duration::from_millis(700), r.recv::<Body<Value>>()).await;
    assert!(extra.is_err(), "no delivery beyond the granted credit");
    r.set_credit(2).await.expect("credit");
    for i in 3..5 {
        let d = tokio::time::timeout(common::WAIT, r.recv::<Body<Value>>())
            .await
            .expect("in time")
            .expect("recv");
        assert_eq!(body_text(d.message()), format!("m{i}"));
        r.accept(&d).await.expect("accept");
    }
    let extra = tokio::time::timeout(Duration::from_millis(700), r.recv::<Body<Value>>()).await;
    assert!(extra.is_err(), "no delivery beyond the second grant");
    emulator.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_evicts_oldest_and_earliest_follows() {
    common::bounded(retention_evicts_oldest_and_earliest_follows_body()).await;
}

async fn retention_evicts_oldest_and_earliest_follows_body() {
    let mut config = EmulatorConfig::ephemeral(vec![HubSpec::new("eh1", 1)]);
    config.retention = Retention {
        max_events: 4,
        max_bytes: u64::MAX,
    };
    let emulator = start(config).await.expect("start");
    for i in 0..10 {
        emulator
            .publish("eh1", Some("0"), None, Bytes::from(format!("m{i}")))
            .unwrap();
    }
    let info = emulator.partition_info("eh1", "0").unwrap();
    assert_eq!(
        (info.begin_seq, info.last_seq, info.retained_events),
        (6, 9, 4)
    );
    let (_conn, mut session) = common::raw_session(&emulator).await;
    let mut r = receiver(
        &mut session,
        "eh1/ConsumerGroups/$Default/Partitions/0",
        Some("amqp.annotation.x-opt-offset > '-1'"),
        CreditMode::Auto(10),
    )
    .await
    .expect("receiver");
    let d = tokio::time::timeout(common::WAIT, r.recv::<Body<Value>>())
        .await
        .expect("in time")
        .expect("recv");
    assert_eq!(body_text(d.message()), "m6");
    assert_eq!(
        annotation(d.message(), "x-opt-sequence-number"),
        Some(Value::Long(6))
    );

    // Byte retention too.
    let mut config = EmulatorConfig::ephemeral(vec![HubSpec::new("eh2", 1)]);
    config.retention = Retention {
        max_events: u64::MAX,
        max_bytes: 3_000,
    };
    let small = start(config).await.expect("start");
    for _ in 0..10 {
        small
            .publish("eh2", Some("0"), None, Bytes::from(vec![b'x'; 1000]))
            .unwrap();
    }
    let info = small.partition_info("eh2", "0").unwrap();
    assert!(
        info.retained_bytes <= 3_000 && info.retained_events >= 1,
        "{info:?}"
    );
    assert_eq!(info.begin_seq, 10 - info.retained_events as i64);
    small.shutdown().await.expect("shutdown");
    emulator.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_persists_across_restart() {
    common::bounded(data_dir_persists_across_restart_body()).await;
}

async fn data_dir_persists_across_restart_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || {
        let mut c = EmulatorConfig::ephemeral(vec![HubSpec::new("eh1", 2)]);
        c.data_dir = Some(dir.path().to_path_buf());
        c.retention = Retention {
            max_events: 5,
            max_bytes: u64::MAX,
        };
        c
    };
    common::init_tracing();
    let first = start(config()).await.expect("start");
    let (_c, mut session) = common::raw_session(&first).await;
    // Pre-settled sends: fe2o3 0.16.2 registers an unsettled delivery only after handing its
    // transfer to the session, so against a fast local server the outcome can arrive first and
    // be dropped, and `send` then waits forever (fixed upstream in fe2o3-amqp: see
    // `send_unsettled_transfer`). This test is about persistence, so it sends settled and waits
    // for the partition to hold the events.
    let mut sender = settled_sender(&mut session, "s", "eh1/Partitions/1").await;
    for i in 0..7 {
        let mut app = fe2o3_amqp_types::messaging::ApplicationProperties::default();
        app.0.insert(
            "i".into(),
            fe2o3_amqp_types::primitives::SimpleValue::Int(i),
        );
        let m = Message::builder()
            .application_properties(app)
            .data(Binary::from(format!("p{i}").into_bytes()))
            .build();
        tokio::time::timeout(common::WAIT, sender.send(m))
            .await
            .expect("send in time")
            .expect("send");
    }
    wait_until("the seven events are stored", || {
        first.partition_info("eh1", "1").unwrap().last_seq >= 6
    })
    .await;
    let before = first.partition_info("eh1", "1").unwrap();
    drop(sender);
    drop(session);
    tokio::time::timeout(common::WAIT, first.shutdown())
        .await
        .expect("shutdown in time")
        .expect("shutdown");

    let second = start(config()).await.expect("restart");
    let after = second.partition_info("eh1", "1").unwrap();
    assert_eq!(
        after, before,
        "same begin/last seq, offset, time after restart"
    );
    assert_eq!((after.begin_seq, after.last_seq), (2, 6));
    // New events continue the sequence and offsets.
    assert_eq!(
        second
            .publish("eh1", Some("1"), None, Bytes::from("p7"))
            .unwrap(),
        7
    );
    let (_c2, mut session) = common::raw_session(&second).await;
    let mut r = receiver(
        &mut session,
        "eh1/ConsumerGroups/$Default/Partitions/1",
        Some("amqp.annotation.x-opt-offset > '-1'"),
        CreditMode::Auto(20),
    )
    .await
    .expect("receiver");
    let mut last_offset = -1i64;
    for i in 3..8 {
        let d = tokio::time::timeout(common::WAIT, r.recv::<Body<Value>>())
            .await
            .expect("in time")
            .expect("recv");
        let m = d.message();
        assert_eq!(body_text(m), format!("p{i}"));
        assert_eq!(annotation(m, "x-opt-sequence-number"), Some(Value::Long(i)));
        let Some(Value::String(off)) = annotation(m, "x-opt-offset") else {
            panic!("offset")
        };
        let off: i64 = off.parse().unwrap();
        assert!(off > last_offset);
        last_offset = off;
        if i < 7 {
            let props = m
                .application_properties
                .as_ref()
                .expect("app props survive restart");
            assert_eq!(
                props.0.get("i"),
                Some(&fe2o3_amqp_types::primitives::SimpleValue::Int(i as i32))
            );
        }
    }
    second.shutdown().await.expect("shutdown");
}
