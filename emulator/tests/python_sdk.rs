//! The official Python SDK (azure-eventhub 5.x) sends to and receives from the emulator; then
//! the official Rust SDK reads what Python sent.

mod common;

use std::{process::Stdio, time::Duration};

use azure_messaging_eventhubs::{
    ConsumerClient, OpenReceiverOptions, StartLocation, StartPosition,
};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_roundtrip_then_rust_sdk_reads_the_same_events() {
    common::bounded(python_sdk_roundtrip_then_rust_sdk_reads_the_same_events_body()).await;
}

async fn python_sdk_roundtrip_then_rust_sdk_reads_the_same_events_body() {
    let Some(python) = common::python() else {
        return;
    };
    let emulator = common::emulator(&[("eh1", 2)]).await;
    let conn = emulator.connection_string("eh1");
    let conn_no_entity = conn
        .rsplit_once(";EntityPath=")
        .map(|(head, _)| head.to_string())
        .expect("connection string has EntityPath");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_roundtrip.py");
    let output = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(&python)
            .arg(script)
            .env("AZLOG_EH_CONN", &conn_no_entity)
            .env("AZLOG_EH_HUB", "eh1")
            .env("AZLOG_EH_CG", "cg1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("python script finishes in time")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python SDK checks failed\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("summary line"))
            .expect("summary is JSON");
    assert!(summary["checks"].as_u64().unwrap_or(0) >= 41, "{summary}");

    // The official Rust SDK reads partition 0 from the start: the same bodies Python read there
    // (its 5 explicit events plus whatever hub-level sends were routed to it), seqs 0..n.
    common::sdk_crypto_provider();
    let client = ConsumerClient::builder()
        .with_custom_endpoint(emulator.amqp_url())
        .open_with_connection_string(&conn, Some("eh1"))
        .await
        .expect("rust consumer opens");
    let props = client
        .get_eventhub_properties()
        .await
        .expect("hub properties");
    assert_eq!(props.partition_ids, vec!["0", "1"]);
    let receiver = client
        .open_receiver_on_partition(
            "0".to_string(),
            Some(OpenReceiverOptions {
                start_position: Some(StartPosition {
                    location: StartLocation::Earliest,
                    inclusive: false,
                }),
                ..Default::default()
            }),
        )
        .await
        .expect("receiver opens");
    let mut stream = receiver.stream_events();
    let expected: Vec<String> = summary["partition0"]
        .as_array()
        .expect("partition0 list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    let mut bodies = Vec::new();
    let mut seqs = Vec::new();
    while bodies.len() < expected.len() {
        let event = tokio::time::timeout(common::WAIT, stream.next())
            .await
            .expect("event in time")
            .expect("stream open")
            .expect("event ok");
        seqs.push(event.sequence_number().expect("seq"));
        assert!(event.offset().is_some(), "offset annotation is a string");
        assert!(event.enqueued_time().is_some(), "enqueued time");
        bodies.push(
            String::from_utf8_lossy(event.event_data().body().unwrap_or_default()).to_string(),
        );
    }
    assert!(expected.len() >= 5, "{expected:?}");
    assert_eq!(bodies, expected);
    assert_eq!(seqs, (0..expected.len() as i64).collect::<Vec<_>>());
    drop(stream);
    client.close().await.expect("close");
    emulator.shutdown().await.expect("shutdown");
}
