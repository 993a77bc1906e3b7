//! The bridge into a SASL_SSL + PLAIN Kafka (the shape of Confluent Cloud or the Event Hubs
//! Kafka endpoint): emulator → `service::run` → kafka sink with `sasl_password_env` and
//! `ssl_ca_file` → a test-only TLS + SASL/PLAIN front (tests/python/sasl_plain_tls_proxy.py,
//! certificates made here by openssl) → a private tansu. The right password delivers every
//! record; a wrong password and a missing CA stop the service with a permanent sink error that
//! says why, without checkpointing anything and without the password in the message.
mod kafka_support;
mod pipeline_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use azlog_emulator::{EmulatorConfig, EmulatorHandle, HubSpec};
use azlog_hub::config::HubConfig;
use azlog_hub::service;
use bytes::Bytes;
use kafka_support::bridge::*;
use kafka_support::*;
use pipeline_support::*;
use rdkafka::ClientConfig;
use tokio::sync::watch;

fn sink(front: &str, topic: &str, password_env: &str, ca: Option<&Path>) -> String {
    let ca = ca.map_or(String::new(), |c| {
        format!("ssl_ca_file = \"{}\"\n", c.display())
    });
    format!(
        r#"[[sink]]
name = "kafka"
plugin = "kafka"
brokers = "{front}"
topic = "{topic}"
format = "raw"
message_timeout_ms = 3000
security_protocol = "sasl_ssl"
sasl_mechanism = "PLAIN"
sasl_username = "$ConnectionString"
sasl_password_env = "{password_env}"
{ca}[sink.batch]
linger_ms = 20
[sink.retry]
initial_backoff_ms = 100
max_backoff_ms = 500
"#
    )
}

/// Runs the service until every partition is checkpointed or it stops on its own (60 s at most).
async fn run(cfg: &HubConfig, em: &EmulatorHandle) -> azlog_hub::pipeline::RunSummary {
    let (stop_tx, stop_rx) = watch::channel(false);
    let run_cfg = cfg.clone();
    let task = tokio::spawn(async move { service::run(&run_cfg, stop_rx).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline && !task.is_finished() {
        let last = em.partition_info(HUB, "0").unwrap().last_seq;
        if checkpoint_seq(cfg, "0") == Some(last) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    task.await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_into_sasl_ssl_plain_and_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let good = "Endpoint=sb://localhost/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=x";
    let sasl = SaslFront::start(dir.path(), good);
    let front = sasl.front.clone();
    let ca = sasl.ca.clone();
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &front)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", "$ConnectionString")
        .set("sasl.password", good)
        .set("ssl.ca.location", ca.to_str().unwrap());
    let topic = unique("sasl");
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            client.create().expect("admin");
        for r in admin
            .create_topics(
                &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .expect("create topic")
        {
            r.expect("topic created");
        }
    }
    let good_env = format!("AZLOG_TEST_KAFKA_PW_{}", std::process::id());
    let bad_env = format!("{good_env}_BAD");
    std::env::set_var(&good_env, good);
    std::env::set_var(
        &bad_env,
        "Endpoint=sb://localhost/;SharedAccessKeyName=send;SharedAccessKey=d3Jvbmc=;EntityPath=x",
    );

    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new(HUB, 1)]))
        .await
        .expect("emulator");
    let samples = sample_records();
    let mut expected = BTreeSet::new();
    for e in 0..10 {
        let body: Vec<String> = (0..4)
            .map(|i| {
                let id = format!("s{}", e * 4 + i);
                expected.insert(id.clone());
                tag(&samples[(e * 4 + i) % samples.len()], &id)
            })
            .collect();
        em.publish(HUB, Some("0"), None, Bytes::from(envelope(&body)))
            .unwrap();
    }

    // The right password and CA: everything arrives.
    let ok_dir = dir.path().join("ok");
    let cfg = config(&ok_dir, &em, &sink(&front, &topic, &good_env, Some(&ca)));
    let summary = run(&cfg, &em).await;
    assert_eq!(summary.error, None, "{summary:#?}");
    let want = expected.clone();
    let got = tokio::task::spawn_blocking(move || {
        read_topic_with(&client, &topic, Duration::from_secs(30), |r| {
            r.len() >= want.len()
        })
    })
    .await
    .unwrap();
    let ids: BTreeSet<String> = got
        .iter()
        .map(|g| {
            let v: serde_json::Value = serde_json::from_str(&g.value).unwrap();
            v["azlogTestId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids, expected);

    // A wrong password, then no CA: the sink is refused (permanent), nothing is checkpointed.
    for (name, env, ca, needle) in [
        (
            "wrong-password",
            &bad_env,
            Some(ca.as_path()),
            "authentication",
        ),
        ("no-ca", &good_env, None, "certificate verify failed"),
    ] {
        let d = dir.path().join(name);
        let cfg = config(&d, &em, &sink(&front, &unique("refused"), env, ca));
        let summary = run(&cfg, &em).await;
        let err = summary
            .error
            .clone()
            .unwrap_or_else(|| panic!("{name}: no error: {summary:#?}"));
        eprintln!("{name}: {err}");
        assert!(err.to_lowercase().contains(needle), "{name}: {err}");
        assert!(err.contains("refuse"), "{name}: {err}");
        assert!(
            !err.contains("SharedAccessKey="),
            "{name}: secret in the error: {err}"
        );
        assert_eq!(checkpoint_seq(&cfg, "0"), None, "{name}: checkpointed");
    }
    em.shutdown().await.unwrap();
}
