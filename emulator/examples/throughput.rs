//! Throughput of the emulator with one sender and one receiver (release build):
//! `cargo run --release -p azlog-emulator --example throughput -- [EVENTS] [RECORDS_PER_EVENT]`
//!
//! Each event is `{"records":[...]}` with RECORDS_PER_EVENT (default 100) records of ~1 KB.
//! Measures: ingress from one raw AMQP sender (pre-settled transfers, paced by the emulator's
//! link credit; timed until the partition holds every event), egress to one raw AMQP receiver
//! (credit 300) and egress to the official Rust SDK receiver (prefetch 300).
//!
//! Why pre-settled ingress: fe2o3 0.16.2's unsettled `send` registers the delivery only after
//! handing the transfer to its session, so against a fast local server the outcome can arrive
//! first and be dropped, leaving the send waiting forever (fixed upstream in fe2o3-amqp by
//! `send_unsettled_transfer`). A benchmark that can hang measures nothing.

use std::time::{Duration, Instant};

use azlog_emulator::{start, EmulatorConfig, HubSpec};
use azure_messaging_eventhubs::{
    ConsumerClient, OpenReceiverOptions, StartLocation, StartPosition,
};
use fe2o3_amqp::{
    link::receiver::CreditMode, sasl_profile::SaslProfile, Connection, Receiver, Sender, Session,
};
use fe2o3_amqp_types::{
    definitions::SenderSettleMode,
    messaging::{Body, Message, Source},
    primitives::{Binary, Symbol, Value},
};
use futures::StreamExt;
use serde_amqp::{described::Described, descriptor::Descriptor};

fn record(i: usize) -> String {
    let mut r = format!(
        r#"{{"time":"2026-01-01T00:00:00.000Z","resourceId":"/SUBSCRIPTIONS/0000/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV{i}","category":"AuditEvent","operationName":"SecretGet","resultType":"Success","callerIpAddress":"10.0.0.{}","identity":{{"claim":{{"upn":"user{i}@example.com"}}}},"properties":{{"id":"https://kv.vault.azure.net/secrets/s{i}","pad":""#,
        i % 250
    );
    while r.len() < 1020 {
        r.push('x');
    }
    r.push_str("\"}}");
    r
}

fn event_body(records: usize) -> Vec<u8> {
    let recs: Vec<String> = (0..records).map(record).collect();
    format!("{{\"records\":[{}]}}", recs.join(",")).into_bytes()
}

fn report(what: &str, events: usize, bytes: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what:<32} {events:>7} events {:>9.1} MB in {secs:>6.2} s = {:>9.0} events/s {:>7.1} MB/s",
        bytes as f64 / 1e6,
        events as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let records: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let body = event_body(records);
    let total_bytes = body.len() * events;
    println!(
        "event size {} bytes ({records} records), {events} events",
        body.len()
    );

    let mut config = EmulatorConfig::ephemeral(vec![HubSpec::new("bench", 1)]);
    config.retention.max_bytes = u64::MAX;
    let emulator = start(config).await?;

    // Ingress: one AMQP sender, up to 64 unsettled deliveries in flight.
    let mut connection = Connection::builder()
        .container_id("bench-sender")
        .sasl_profile(SaslProfile::Anonymous)
        .open(emulator.amqp_url().as_str())
        .await?;
    let mut session = Session::begin(&mut connection).await?;
    let mut sender = Sender::builder()
        .name("bench-sender")
        .target("bench/Partitions/0")
        .sender_settle_mode(SenderSettleMode::Settled)
        .attach(&mut session)
        .await?;
    let started = Instant::now();
    for _ in 0..events {
        let message = Message::builder().data(Binary::from(body.clone())).build();
        sender.send(message).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while emulator.partition_info("bench", "0")?.last_seq + 1 < events as i64 {
        anyhow::ensure!(Instant::now() < deadline, "events not stored within 120 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    report("ingress (1 AMQP sender)", events, total_bytes, started);
    sender.close().await?;

    // Egress to a raw AMQP receiver.
    let filter = Some(Described {
        descriptor: Descriptor::Code(0x0000_468C_0000_0004),
        value: Value::String("amqp.annotation.x-opt-offset > '-1'".into()),
    });
    let mut receiver = Receiver::builder()
        .name("bench-receiver")
        .source(
            Source::builder()
                .address("bench/ConsumerGroups/$Default/Partitions/0")
                .add_to_filter(Symbol::from("apache.org:selector-filter:string"), filter)
                .build(),
        )
        .target("bench-client")
        .credit_mode(CreditMode::Auto(300))
        .attach(&mut session)
        .await?;
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..events {
        let delivery = receiver.recv::<Body<Value>>().await?;
        receiver.accept(&delivery).await?;
        if let Body::Data(d) = delivery.body() {
            bytes += d.iter().map(|s| s.0.len()).sum::<usize>();
        }
    }
    report("egress (1 raw AMQP receiver)", events, bytes, started);
    receiver.close().await?;
    session.end().await?;
    connection.close().await?;

    // Egress to the official Rust SDK (its TLS setup needs one process-wide crypto provider; a
    // workspace build links two).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = ConsumerClient::builder()
        .with_custom_endpoint(emulator.amqp_url())
        .open_with_connection_string(&emulator.connection_string("bench"), Some("bench"))
        .await?;
    let rx = client
        .open_receiver_on_partition(
            "0".to_string(),
            Some(OpenReceiverOptions {
                start_position: Some(StartPosition {
                    location: StartLocation::Earliest,
                    inclusive: false,
                }),
                prefetch: Some(300),
                ..Default::default()
            }),
        )
        .await?;
    let mut stream = rx.stream_events();
    let started = Instant::now();
    let mut bytes = 0;
    let mut n = 0;
    while n < events {
        match stream.next().await {
            Some(Ok(e)) => {
                bytes += e.event_data().body().map_or(0, |b| b.len());
                n += 1;
            }
            Some(Err(e)) => anyhow::bail!("sdk receive failed: {e:?}"),
            None => anyhow::bail!("sdk stream ended"),
        }
    }
    report("egress (official Rust SDK)", n, bytes, started);
    drop(stream);
    client.close().await.ok();
    emulator.shutdown().await?;
    Ok(())
}
