//! Bench/test input for the Kafka source: creates a topic and produces the records of an NDJSON
//! file (one record per line) into it as `{"records":[...]}` envelopes of `PER` records each,
//! round-robin over the partitions.
//!
//! usage: kafka_produce BROKERS TOPIC PARTITIONS FILE [PER=10]
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 5,
        "usage: kafka_produce BROKERS TOPIC PARTITIONS FILE [PER=10]"
    );
    let (brokers, topic) = (&args[1], &args[2]);
    let partitions: i32 = args[3].parse()?;
    let text = std::fs::read_to_string(&args[4])?;
    let per: usize = args.get(5).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let records: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();

    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers.as_str());
    let admin: AdminClient<DefaultClientContext> = cc.create()?;
    for r in admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?
    {
        r.map_err(|(t, e)| anyhow::anyhow!("create topic {t}: {e}"))?;
    }
    let producer: FutureProducer = cc
        .clone()
        .set("linger.ms", "5")
        .set("acks", "all")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let started = Instant::now();
    let mut bytes = 0usize;
    let mut pending = Vec::new();
    for (i, chunk) in records.chunks(per).enumerate() {
        let body = format!("{{\"records\":[{}]}}", chunk.join(","));
        bytes += body.len();
        let p = (i % partitions as usize) as i32;
        let producer = producer.clone();
        let topic = topic.clone();
        pending.push(tokio::spawn(async move {
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic)
                        .partition(p)
                        .payload(&body),
                    Duration::from_secs(60),
                )
                .await
                .map(|_| ())
                .map_err(|(e, _)| e)
        }));
        if pending.len() >= 2000 {
            for t in pending.drain(..) {
                t.await??;
            }
        }
    }
    for t in pending {
        t.await??;
    }
    eprintln!(
        "produced {} records in {} messages ({} bytes) to {topic} in {:.2}s",
        records.len(),
        records.len().div_ceil(per),
        bytes,
        started.elapsed().as_secs_f64()
    );
    println!("{}", records.len());
    Ok(())
}
