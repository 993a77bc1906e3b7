//! Tests against the HEC test receiver (`tests/hec-receiver`), in process.
use abi_stable::std_types::RString;
use azlog_hec_receiver::{Fault, HecReceiver, TokenConfig};
use azlog_plugin_api::{ErrorKind, Field, Position, Record, Sink, Text, Value};
use serde_json::json;

use super::open;

const TOKEN: &str = "11111111-2222-3333-4444-555555555555";

fn rec(i: usize, dataset: &str) -> Record {
    Record::from_fields(
        1_718_000_000_000_000_000 + (i as i64) * 1_000_000,
        vec![
            Field {
                key: Text::from("event.id"),
                value: Value::from(format!("id-{i}")),
            },
            Field {
                key: Text::from("event.dataset"),
                value: Value::from(dataset),
            },
            Field {
                key: Text::from("azure.tenant_id"),
                value: Value::from("tenant-a"),
            },
        ],
        RString::from(format!("{{\"n\":{i},\"tag\":\"rec-{i}\"}}")),
        Position::default(),
    )
}

fn recs(n: usize) -> Vec<Record> {
    (0..n).map(|i| rec(i, "azure.signinlogs")).collect()
}

fn settings(rx: &HecReceiver, extra: serde_json::Value) -> serde_json::Value {
    let mut s = json!({"url": rx.url(), "token": TOKEN, "ack_poll_interval_ms": 20});
    if let (Some(o), Some(e)) = (s.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    s
}

/// The `n` values of the accepted events' bodies, in arrival order.
fn received_ns(rx: &HecReceiver) -> Vec<u64> {
    rx.events()
        .iter()
        .map(|e| e.envelope["event"]["n"].as_u64().expect("n"))
        .collect()
}

#[test]
fn gzip_batch_with_sourcetypes_time_and_fields() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    let mut sink = open(settings(&rx, json!({"index": "main", "host": "fwd-1"}))).expect("open");
    let mut batch = recs(3);
    batch.push(rec(3, "azure.activitylogs"));
    let report = sink.write_batch(&batch).expect("write");
    assert_eq!((report.handled, report.accepted()), (4, 4));
    assert_eq!(received_ns(&rx), vec![0, 1, 2, 3]);
    let evs = rx.events();
    assert_eq!(evs[0].envelope["sourcetype"], "azure:monitor:aad");
    assert_eq!(evs[3].envelope["sourcetype"], "azure:monitor:activity");
    assert_eq!(evs[1].envelope["time"].as_f64(), Some(1_718_000_000.001));
    assert_eq!(evs[0].envelope["index"], "main");
    assert_eq!(evs[0].envelope["host"], "fwd-1");
    assert_eq!(evs[0].envelope["source"], "azlog-hub");
    assert_eq!(evs[0].envelope["fields"]["tenant_id"], "tenant-a");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1, "one request for the batch: {reqs:?}");
    assert!(reqs[0].gzip, "body should be gzip-encoded");
    assert!(reqs[0].channel.is_some(), "channel header is always sent");
}

#[test]
fn requests_are_cut_by_event_count() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    let mut sink = open(settings(
        &rx,
        json!({"max_events_per_request": 2, "gzip": false}),
    ))
    .expect("open");
    let report = sink.write_batch(&recs(5)).expect("write");
    assert_eq!(report.accepted(), 5);
    let reqs = rx.requests();
    assert_eq!(
        reqs.iter().map(|r| r.accepted).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    assert!(reqs.iter().all(|r| !r.gzip));
}

#[test]
fn invalid_event_keeps_prefix_rejects_it_and_resends_the_rest() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    rx.set_poison(Some("rec-2\""));
    let mut sink = open(settings(&rx, json!({}))).expect("open");
    let report = sink.write_batch(&recs(5)).expect("write");
    assert_eq!(report.handled, 5);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 2);
    assert!(
        report.rejected[0].reason.contains("code 6"),
        "{}",
        report.rejected[0].reason
    );
    assert_eq!(
        received_ns(&rx),
        vec![0, 1, 3, 4],
        "prefix kept once, rest resent once"
    );
    let codes: Vec<(u16, u32)> = rx.requests().iter().map(|r| (r.status, r.code)).collect();
    assert_eq!(codes, [(400, 6), (200, 0)]);
}

#[test]
fn busy_server_is_a_retryable_tail_error() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    rx.inject([Fault::busy()]);
    let mut sink = open(settings(&rx, json!({}))).expect("open");
    let report = sink.write_batch(&recs(3)).expect("report");
    assert_eq!(report.handled, 0);
    let err = report.tail_error.into_option().expect("tail error");
    assert_eq!(err.kind, ErrorKind::Retryable, "{err}");
    assert!(err.message.contains("code 9"), "{err}");
    // The next attempt (the host's retry) goes through.
    let report = sink.write_batch(&recs(3)).expect("report");
    assert_eq!(report.accepted(), 3);
    assert_eq!(received_ns(&rx), vec![0, 1, 2]);
    for fault in [Fault::internal(), Fault::queues_full()] {
        rx.inject([fault]);
        let r = sink.write_batch(&recs(1)).expect("report");
        assert!(r.tail_error.into_option().expect("err").is_retryable());
    }
}

#[test]
fn bad_or_disabled_token_is_permanent_and_never_echoed() {
    let mut disabled = TokenConfig::new("dddddddd-0000-0000-0000-000000000000");
    disabled.enabled = false;
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN), disabled]).expect("receiver");
    let wrong = "99999999-9999-9999-9999-999999999999";
    let mut sink = open(settings(&rx, json!({"token": wrong}))).expect("open");
    let report = sink.write_batch(&recs(2)).expect("report");
    assert_eq!(report.handled, 0);
    let err = report.tail_error.into_option().expect("error");
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("HTTP 403"), "{err}");
    assert!(err.message.contains("refused the token"), "{err}");
    assert!(!err.message.contains(wrong), "token leaked: {err}");
    assert!(rx.events().is_empty());
    let mut sink = open(settings(
        &rx,
        json!({"token": "dddddddd-0000-0000-0000-000000000000"}),
    ))
    .expect("open");
    let err = sink
        .write_batch(&recs(1))
        .expect("report")
        .tail_error
        .into_option()
        .expect("e");
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("code 1"), "{err}");
}

#[test]
fn indexer_ack_confirms_every_request() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN).with_ack()]).expect("receiver");
    let mut sink = open(settings(
        &rx,
        json!({"ack": true, "max_events_per_request": 2}),
    ))
    .expect("open");
    let report = sink.write_batch(&recs(5)).expect("report");
    assert_eq!(report.accepted(), 5);
    let reqs = rx.requests();
    let posts = reqs.iter().filter(|r| r.path.ends_with("/event")).count();
    let polls = reqs.iter().filter(|r| r.path.ends_with("/ack")).count();
    assert_eq!(posts, 3);
    assert!(polls >= 1);
    let ids: Vec<Option<u64>> = rx.events().iter().map(|e| e.ack_id).collect();
    assert_eq!(ids, [Some(0), Some(0), Some(1), Some(1), Some(2)]);
}

#[test]
fn ack_timeout_resends_the_unacknowledged_request() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN).with_ack()]).expect("receiver");
    rx.withhold_acks(1);
    let mut sink = open(settings(
        &rx,
        json!({"ack": true, "ack_timeout_ms": 200, "ack_resends": 1}),
    ))
    .expect("open");
    let report = sink.write_batch(&recs(3)).expect("report");
    assert_eq!(report.accepted(), 3, "{report:?}");
    // First copy never acked, second copy acked: the receiver holds both (at-least-once).
    assert_eq!(received_ns(&rx), vec![0, 1, 2, 0, 1, 2]);
    let acked: Vec<Option<u64>> = rx.events().iter().map(|e| e.ack_id).collect();
    assert_eq!(acked[3], Some(1));
}

#[test]
fn ack_timeout_after_resends_is_retryable_and_nothing_is_claimed() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN).with_ack()]).expect("receiver");
    rx.withhold_acks(10);
    let mut sink = open(settings(
        &rx,
        json!({"ack": true, "ack_timeout_ms": 100, "ack_resends": 1}),
    ))
    .expect("open");
    let report = sink.write_batch(&recs(2)).expect("report");
    assert_eq!(report.handled, 0);
    let err = report.tail_error.into_option().expect("error");
    assert!(err.is_retryable(), "{err}");
    assert!(err.message.contains("timed out"), "{err}");
}

#[test]
fn ack_setting_mismatch_is_permanent() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    let mut sink = open(settings(&rx, json!({"ack": true}))).expect("open");
    let err = sink
        .write_batch(&recs(1))
        .expect("r")
        .tail_error
        .into_option()
        .expect("e");
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("ackId"), "{err}");
}

#[test]
fn disallowed_index_is_permanent_with_the_setting_named() {
    let mut t = TokenConfig::new(TOKEN);
    t.indexes = vec!["azure".into()];
    let rx = HecReceiver::start(vec![t]).expect("receiver");
    let mut sink = open(settings(&rx, json!({"index": "main"}))).expect("open");
    let err = sink
        .write_batch(&recs(1))
        .expect("r")
        .tail_error
        .into_option()
        .expect("e");
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("index"), "{err}");
}

#[test]
fn oversize_split_events_arrive_in_order_and_marked() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    let mut sink = open(settings(
        &rx,
        json!({"max_event_bytes": 1024, "oversize": "split", "max_request_bytes": 4096}),
    ))
    .expect("open");
    let mut big = rec(0, "azure.auditlogs");
    big.original = RString::from(format!("{{\"blob\":\"{}\"}}", "x".repeat(5000)));
    let report = sink
        .write_batch(&[big.clone(), rec(1, "azure.auditlogs")])
        .expect("r");
    assert_eq!(report.accepted(), 2);
    let evs = rx.events();
    let parts: Vec<&azlog_hec_receiver::ReceivedEvent> = evs
        .iter()
        .filter(|e| e.envelope["fields"].get("azlog_part").is_some())
        .collect();
    assert!(parts.len() >= 5);
    let joined: String = parts
        .iter()
        .map(|e| e.envelope["event"].as_str().expect("str"))
        .collect();
    assert_eq!(joined, big.original.as_str());
    assert_eq!(evs.last().expect("last").envelope["event"]["n"], 1);
}

#[test]
fn unreachable_endpoint_is_retryable() {
    let rx = HecReceiver::start(vec![TokenConfig::new(TOKEN)]).expect("receiver");
    let url = rx.url();
    drop(rx);
    let mut sink = open(json!({"url": url, "token": TOKEN, "timeout_ms": 500})).expect("open");
    let err = sink
        .write_batch(&recs(1))
        .expect("r")
        .tail_error
        .into_option()
        .expect("e");
    assert!(err.is_retryable(), "{err}");
}

#[test]
fn settings_are_checked() {
    assert!(open(json!({"url": "ftp://x", "token": "t"})).is_err());
    assert!(
        open(json!({"url": "http://x"})).is_err(),
        "a token is required"
    );
    assert!(open(json!({"url": "http://x", "token": "t", "oversize": "drop"})).is_err());
    assert!(open(json!({"url": "http://x", "token": "t", "channel": "nope"})).is_err());
    assert!(open(json!({"url": "http://x", "token_env": "AZLOG_TEST_SURELY_UNSET_VAR"})).is_err());
    assert!(open(json!({"url": "http://x", "token": "t", "typo": 1})).is_err());
    let guid = crate::settings::new_guid();
    assert!(crate::settings::is_guid(&guid), "{guid}");
    assert_eq!(&guid[14..15], "4");
}
