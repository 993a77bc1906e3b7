//! The official Rust SDK (`azure_messaging_eventhubs` 0.16, custom endpoint) against the
//! emulator: properties with the exact AMQP types it requires, every start position, owner
//! level (epoch) and the 5-reader quota.

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

#[ignore = "open issue 4: the official Rust SDK receiver attaches but receives no events from the emulator"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_and_start_positions() {
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

    let all = take(
        &open(&client, "1", StartLocation::Earliest, false, None)
            .await
            .unwrap(),
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
    assert_eq!(all[3].partition_key().as_deref(), Some("k"));
    assert_eq!(all[0].partition_key(), &None);
    assert_eq!(all[3].enqueued_time(), all[4].enqueued_time());
    assert_eq!(p1.last_enqueued_offset, offsets[4].to_string());

    let seq_incl = open(&client, "1", StartLocation::SequenceNumber(2), true, None)
        .await
        .unwrap();
    assert_eq!(seqs(&take(&seq_incl, 1).await), vec![2]);
    let seq_excl = open(&client, "1", StartLocation::SequenceNumber(2), false, None)
        .await
        .unwrap();
    assert_eq!(seqs(&take(&seq_excl, 1).await), vec![3]);
    let off = offsets[1].to_string();
    let off_excl = open(
        &client,
        "1",
        StartLocation::Offset(off.clone()),
        false,
        None,
    )
    .await
    .unwrap();
    assert_eq!(seqs(&take(&off_excl, 1).await), vec![2]);
    let off_incl = open(&client, "1", StartLocation::Offset(off), true, None)
        .await
        .unwrap();
    assert_eq!(seqs(&take(&off_incl, 1).await), vec![1]);
    let t3: SystemTime = all[3].enqueued_time().expect("time");
    let time_incl = open(&client, "1", StartLocation::EnqueuedTime(t3), true, None)
        .await
        .unwrap();
    assert_eq!(seqs(&take(&time_incl, 1).await), vec![3]);
    let t2 = all[2].enqueued_time().expect("time");
    let time_excl = open(&client, "1", StartLocation::EnqueuedTime(t2), false, None)
        .await
        .unwrap();
    assert_eq!(seqs(&take(&time_excl, 1).await), vec![3]);

    let latest = open(&client, "1", StartLocation::Latest, false, None)
        .await
        .unwrap();
    // Make sure the link is attached before publishing (lazy attach on first poll).
    let waiter = tokio::spawn(async move { take(&latest, 1).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    emulator
        .publish("eh1", Some("1"), None, Bytes::from("new"))
        .expect("publish");
    let got = waiter.await.expect("join");
    assert_eq!(seqs(&got), vec![5]);
    assert_eq!(got[0].event_data().body(), Some(&b"new"[..]));

    client.close().await.ok();
    emulator.shutdown().await.expect("shutdown");
}

#[ignore = "open issue 4: the official Rust SDK receiver attaches but receives no events from the emulator"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_level_and_reader_quota() {
    let emulator = common::emulator(&[("eh1", 1)]).await;
    for i in 0..3 {
        emulator
            .publish("eh1", Some("0"), None, Bytes::from(format!("e{i}")))
            .unwrap();
    }
    // Five non-epoch readers are fine, the sixth is refused.
    let client = consumer(&emulator, None).await;
    let mut plain = Vec::new();
    for _ in 0..5 {
        let r = open(&client, "0", StartLocation::Earliest, false, None)
            .await
            .unwrap();
        first(&r).await.expect("non-epoch reader receives");
        plain.push(r);
    }
    let sixth = open(&client, "0", StartLocation::Earliest, false, None).await;
    let err = match sixth {
        Err(e) => format!("{e:?}"),
        Ok(r) => first(&r).await.expect_err("sixth reader refused"),
    };
    assert!(
        err.contains("resource-limit-exceeded") || err.contains("maximum number"),
        "{err}"
    );
    // A different consumer group has its own quota.
    let cg_client = consumer(&emulator, Some("CG1")).await;
    let other = open(&cg_client, "0", StartLocation::Earliest, false, None)
        .await
        .unwrap();
    first(&other)
        .await
        .expect("other consumer group unaffected");
    drop(plain);

    // Epoch 1 takes the partition; a lower epoch and non-epoch readers are refused.
    let owner_client = consumer(&emulator, Some("cg1")).await;
    let e1 = open(&owner_client, "0", StartLocation::Earliest, false, Some(1))
        .await
        .unwrap();
    first(&e1).await.expect("epoch 1 receives");
    let lower_client = consumer(&emulator, Some("cg1")).await;
    let e0 = open(&lower_client, "0", StartLocation::Earliest, false, Some(0)).await;
    let err = match e0 {
        Err(e) => format!("{e:?}"),
        Ok(r) => first(&r).await.expect_err("lower epoch refused"),
    };
    assert!(err.contains("stolen") || err.contains("epoch"), "{err}");

    // Epoch 2 disconnects epoch 1.
    let higher_client = consumer(&emulator, Some("cg1")).await;
    let e2 = open(&higher_client, "0", StartLocation::Earliest, false, Some(2))
        .await
        .unwrap();
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
        kicked.contains("stolen") || kicked.contains("epoch") || kicked.contains("ended"),
        "{kicked}"
    );
    emulator.shutdown().await.expect("shutdown");
}
