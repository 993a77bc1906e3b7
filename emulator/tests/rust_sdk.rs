//! The official Rust SDK (`azure_messaging_eventhubs` 0.16, custom endpoint) against the
//! emulator: properties with the exact AMQP types it requires, every start position, owner
//! level (epoch) and the 5-reader quota.
//!
//! Note on the SDK: a `ConsumerClient` keeps one AMQP receiver link per partition (its
//! connection caches receivers by source URL). A second `open_receiver_on_partition` for the
//! same partition on the same client reuses that link, with the first receiver's start
//! position, until the first `EventReceiver` is closed. So the tests close each receiver before
//! opening the next on the same partition, and use one client (connection) per concurrent
//! reader — as the service would require too.

mod common;

use std::time::{Duration, SystemTime};

use azlog_emulator::EmulatorHandle;
use azure_messaging_eventhubs::{
    models::ReceivedEventData, ConsumerClient, EventReceiver, OpenReceiverOptions, StartLocation,
    StartPosition,
};
use bytes::Bytes;
use futures::StreamExt;

async fn consumer(emulator: &EmulatorHandle, cg: Option<&str>) -> ConsumerClient {
    common::sdk_crypto_provider();
    let mut builder = ConsumerClient::builder().with_custom_endpoint(emulator.amqp_url());
    if let Some(cg) = cg {
        builder = builder.with_consumer_group(cg.to_string());
    }
    builder
        .open_with_connection_string(&emulator.connection_string("eh1"), Some("eh1"))
        .await
        .expect("consumer opens")
}

async fn open(
    client: &ConsumerClient,
    partition: &str,
    location: StartLocation,
    inclusive: bool,
    owner_level: Option<i64>,
) -> azure_messaging_eventhubs::Result<EventReceiver> {
    client
        .open_receiver_on_partition(
            partition.to_string(),
            Some(OpenReceiverOptions {
                start_position: Some(StartPosition {
                    location,
                    inclusive,
                }),
                owner_level,
                prefetch: Some(50),
                ..Default::default()
            }),
        )
        .await
}

async fn take(receiver: &EventReceiver, n: usize) -> Vec<ReceivedEventData> {
    let mut stream = receiver.stream_events();
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(common::WAIT, stream.next()).await {
            Ok(Some(Ok(e))) => out.push(e),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    out
}

/// `take`, then close the receiver (detaches its link) so the next receiver on the same
/// partition gets a link of its own.
async fn take_and_close(receiver: EventReceiver, n: usize) -> Vec<ReceivedEventData> {
    let events = take(&receiver, n).await;
    tokio::time::timeout(common::WAIT, receiver.close())
        .await
        .expect("receiver closes in time")
        .expect("receiver closes");
    events
}

/// Like `take(.., 1)` but returns the error instead of panicking.
async fn first(receiver: &EventReceiver) -> Result<ReceivedEventData, String> {
    let mut stream = receiver.stream_events();
    match tokio::time::timeout(common::WAIT, stream.next()).await {
        Ok(Some(Ok(e))) => Ok(e),
        Ok(Some(Err(e))) => Err(format!("{e:?}")),
        Ok(None) => Err("stream ended".into()),
        Err(_) => Err("timeout".into()),
    }
}

fn seqs(events: &[ReceivedEventData]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.sequence_number().unwrap_or(-99))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_and_start_positions() {
    common::bounded(properties_and_start_positions_body()).await;
}

async fn properties_and_start_positions_body() {
    let emulator = common::emulator(&[("eh1", 3)]).await;
    for i in 0..3 {
        emulator
            .publish("eh1", Some("1"), None, Bytes::from(format!("a{i}")))
            .expect("publish");
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    emulator
        .publish_batch(
            "eh1",
            Some("1"),
            Some("k"),
            vec![Bytes::from("b0"), Bytes::from("b1")],
        )
        .expect("publish batch");

    let client = consumer(&emulator, None).await;
    let props = client.get_eventhub_properties().await.expect("hub props");
    assert_eq!(props.name, "eh1");
    assert_eq!(props.partition_ids, vec!["0", "1", "2"]);
    assert!(props.created_on.is_some());
    let p1 = client
        .get_partition_properties("1")
        .await
        .expect("partition props");
    assert_eq!(p1.beginning_sequence_number, 0);
    assert_eq!(p1.last_enqueued_sequence_number, 4);
    assert!(!p1.is_empty);
    let p0 = client
        .get_partition_properties("0")
        .await
        .expect("partition props");
    assert!(p0.is_empty);

    let all = take_and_close(
        open(&client, "1", StartLocation::Earliest, false, None)
            .await
            .expect("receiver"),
        5,
    )
    .await;
    assert_eq!(seqs(&all), vec![0, 1, 2, 3, 4]);
    let offsets: Vec<i64> = all
        .iter()
        .map(|e| {
            e.offset()
                .as_deref()
                .unwrap_or("x")
                .parse()
                .expect("numeric offset")
        })
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert_eq!(offsets[0], 0);
    assert_eq!(all[3].partition_key().as_deref(), Some("k"));
    assert_eq!(all[0].partition_key(), &None);
    assert_eq!(all[3].enqueued_time(), all[4].enqueued_time());
    assert!(all[2].enqueued_time() < all[3].enqueued_time());
    assert_eq!(all[0].event_data().body(), Some(&b"a0"[..]));
    assert_eq!(all[4].event_data().body(), Some(&b"b1"[..]));
    assert_eq!(p1.last_enqueued_offset, offsets[4].to_string());
    assert_eq!(p1.last_enqueued_time_utc, all[4].enqueued_time());

    // Each start position, inclusive and exclusive: (location, inclusive, expected first seq).
    let off = offsets[1].to_string();
    let t3: SystemTime = all[3].enqueued_time().expect("time");
    let t2 = all[2].enqueued_time().expect("time");
    let cases = [
        (StartLocation::SequenceNumber(2), true, 2),
        (StartLocation::SequenceNumber(2), false, 3),
        (StartLocation::Offset(off.clone()), false, 2),
        (StartLocation::Offset(off), true, 1),
        (StartLocation::EnqueuedTime(t3), true, 3),
        (StartLocation::EnqueuedTime(t2), false, 3),
    ];
    for (location, inclusive, expected) in cases {
        let what = format!("{location:?} inclusive={inclusive}");
        let receiver = open(&client, "1", location, inclusive, None)
            .await
            .expect("receiver");
        assert_eq!(
            seqs(&take_and_close(receiver, 1).await),
            vec![expected],
            "{what}"
        );
    }

    let latest = open(&client, "1", StartLocation::Latest, false, None)
        .await
        .expect("receiver");
    // The link attaches on the first poll: start reading, then publish.
    let waiter = tokio::spawn(async move { take_and_close(latest, 1).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    emulator
        .publish("eh1", Some("1"), None, Bytes::from("new"))
        .expect("publish");
    let got = tokio::time::timeout(common::WAIT, waiter)
        .await
        .expect("latest receiver finishes")
        .expect("join");
    assert_eq!(seqs(&got), vec![5]);
    assert_eq!(got[0].event_data().body(), Some(&b"new"[..]));

    client.close().await.ok();
    emulator.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_level_and_reader_quota() {
    common::bounded(owner_level_and_reader_quota_body()).await;
}

async fn owner_level_and_reader_quota_body() {
    let emulator = common::emulator(&[("eh1", 1)]).await;
    for i in 0..3 {
        emulator
            .publish("eh1", Some("0"), None, Bytes::from(format!("e{i}")))
            .expect("publish");
    }
    // Five non-epoch readers (one client each) are fine, the sixth is refused.
    let mut plain = Vec::new();
    for _ in 0..5 {
        let client = consumer(&emulator, None).await;
        let r = open(&client, "0", StartLocation::Earliest, false, None)
            .await
            .expect("receiver");
        first(&r).await.expect("non-epoch reader receives");
        plain.push((client, r));
    }
    let sixth_client = consumer(&emulator, None).await;
    let err = match open(&sixth_client, "0", StartLocation::Earliest, false, None).await {
        Err(e) => format!("{e:?}"),
        Ok(r) => first(&r).await.expect_err("sixth reader refused"),
    };
    assert!(
        err.contains("ResourceLimitExceeded") && err.contains("maximum number"),
        "{err}"
    );
    // A different consumer group (case-insensitive) has its own quota.
    let cg_client = consumer(&emulator, Some("CG1")).await;
    let other = open(&cg_client, "0", StartLocation::Earliest, false, None)
        .await
        .expect("receiver");
    first(&other)
        .await
        .expect("other consumer group unaffected");
    // Closing the readers frees their slots.
    for (client, r) in plain {
        r.close().await.expect("close receiver");
        client.close().await.expect("close client");
    }
    let again = open(&sixth_client, "0", StartLocation::Earliest, false, None)
        .await
        .expect("receiver");
    first(&again).await.expect("a slot is free again");

    // Epoch 1 takes the partition in cg1 (disconnecting cg1's non-epoch reader); a lower epoch
    // is refused.
    let owner_client = consumer(&emulator, Some("cg1")).await;
    let e1 = open(&owner_client, "0", StartLocation::Earliest, false, Some(1))
        .await
        .expect("receiver");
    first(&e1).await.expect("epoch 1 receives");
    let lower_client = consumer(&emulator, Some("cg1")).await;
    let err = match open(&lower_client, "0", StartLocation::Earliest, false, Some(0)).await {
        Err(e) => format!("{e:?}"),
        Ok(r) => first(&r).await.expect_err("lower epoch refused"),
    };
    assert!(
        err.contains("LinkStolen") && err.contains("higher epoch '1'"),
        "{err}"
    );
    // A non-epoch reader is refused while the epoch reader holds the partition.
    let plain_client = consumer(&emulator, Some("cg1")).await;
    let err = match open(&plain_client, "0", StartLocation::Earliest, false, None).await {
        Err(e) => format!("{e:?}"),
        Ok(r) => first(&r).await.expect_err("non-epoch reader refused"),
    };
    assert!(err.contains("epoch"), "{err}");

    // Epoch 2 disconnects epoch 1.
    let higher_client = consumer(&emulator, Some("cg1")).await;
    let e2 = open(&higher_client, "0", StartLocation::Earliest, false, Some(2))
        .await
        .expect("receiver");
    first(&e2).await.expect("epoch 2 receives");
    let mut s1 = e1.stream_events();
    let mut kicked = None;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(common::WAIT, s1.next()).await {
            Ok(Some(Ok(_))) => continue, // prefetched events may still drain
            Ok(Some(Err(e))) => {
                kicked = Some(format!("{e:?}"));
                break;
            }
            Ok(None) => {
                kicked = Some("stream ended".into());
                break;
            }
            Err(_) => break,
        }
    }
    let kicked = kicked.expect("epoch 1 reader is disconnected");
    assert!(
        kicked.contains("LinkStolen") && kicked.contains("higher epoch of '2'"),
        "{kicked}"
    );
    emulator.shutdown().await.expect("shutdown");
}
