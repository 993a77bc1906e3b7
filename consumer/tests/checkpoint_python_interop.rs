//! Interop of the Blob checkpoint store with the official Python SDK
//! (`azure-eventhub` + `azure-eventhub-checkpointstoreblob`), on Azurite and the azlog emulator.
//!
//! Needs Azurite (`bash scripts/azurite-start.sh`, skip: AZLOG_SKIP_AZURITE=1) and the test venv
//! (`bash scripts/python-venv.sh`, skip: AZLOG_SKIP_PYTHON=1).

#[path = "checkpoint_support/mod.rs"]
mod support;

use std::path::Path;

use azlog_emulator::config::{EmulatorConfig, HubSpec};
use azlog_hub::checkpoint::{BlobCheckpointStore, Checkpoint, CheckpointKey, CheckpointStore};
use azlog_hub::source::eventhubs::{connect, read_partition_to_end, Endpoint};
use azure_messaging_eventhubs::StartLocation;
use bytes::Bytes;
use serde_json::Value;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/blob_checkpoint_interop.py")
}

/// Runs the Python driver and parses its JSON output.
async fn py(python: &Path, args: Vec<String>) -> Value {
    support::python_json(python, &script(), args).await
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// Layout interop through the Python BlobCheckpointStore API (no Event Hubs needed).
#[tokio::test]
async fn python_store_api_reads_ours_and_we_read_theirs() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let Some(python) = support::venv_python() else {
        return;
    };
    let conn_str = support::azurite_connection_string(&endpoint);
    let container = support::unique_container("interop");
    let store = BlobCheckpointStore::from_connection_string(&conn_str, &container).unwrap();
    store.ensure_container().await.unwrap();
    let key = CheckpointKey::new("MyNs.servicebus.windows.net", "MyHub", "$Default");

    store
        .save(
            &key,
            &Checkpoint {
                partition: "0".into(),
                offset: Some("1200".into()),
                sequence: 12,
                enqueued_ns: Some(5),
            },
        )
        .await
        .unwrap();
    store
        .save(
            &key,
            &Checkpoint {
                partition: "1".into(),
                offset: None,
                sequence: 3,
                enqueued_ns: None,
            },
        )
        .await
        .unwrap();

    let common = |cmd: &str| {
        vec![
            s(cmd),
            s("--storage-conn"),
            conn_str.clone(),
            s("--container"),
            container.clone(),
            s("--fqns"),
            key.fully_qualified_namespace.clone(),
            s("--hub"),
            key.hub.clone(),
            s("--cg"),
            key.consumer_group.clone(),
        ]
    };
    let mut listed = py(&python, common("list")).await;
    let arr = listed.as_array_mut().unwrap();
    arr.sort_by_key(|v| v["partition_id"].as_str().unwrap().to_owned());
    assert_eq!(
        listed,
        serde_json::json!([
            {"partition_id": "0", "offset": "1200", "sequence_number": 12},
            // unknown offset → "-1" (start of stream), never "" (Python reads that as "None")
            {"partition_id": "1", "offset": "-1", "sequence_number": 3},
        ])
    );

    // Python writes: a new partition, and an update over ours.
    let mut update = common("update");
    update.extend([
        s("--partition"),
        s("2"),
        s("--offset"),
        s("5550"),
        s("--seq"),
        s("55"),
    ]);
    assert_eq!(py(&python, update).await["ok"], true);
    let mut update = common("update");
    update.extend([
        s("--partition"),
        s("0"),
        s("--offset"),
        s("1300"),
        s("--seq"),
        s("13"),
    ]);
    py(&python, update).await;

    let ours = store.list(&key).await.unwrap();
    assert_eq!(
        ours,
        vec![
            Checkpoint {
                partition: "0".into(),
                offset: Some("1300".into()),
                sequence: 13,
                enqueued_ns: None, // Python replaced the whole metadata set
            },
            Checkpoint {
                partition: "1".into(),
                offset: None,
                sequence: 3,
                enqueued_ns: None,
            },
            Checkpoint {
                partition: "2".into(),
                offset: Some("5550".into()),
                sequence: 55,
                enqueued_ns: None,
            },
        ]
    );
}

/// Full processor interop on the emulator: the official Python EventHubConsumerClient with
/// BlobCheckpointStore resumes after the checkpoint azlog-hub wrote, and azlog-hub resumes after
/// the checkpoint the Python processor wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_processor_resumes_from_ours_and_we_from_theirs() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let Some(python) = support::venv_python() else {
        return;
    };
    let emu = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new("hub", 2)]))
        .await
        .unwrap();
    let eh_conn = emu.connection_string("hub");
    // Python is given the hub by name (as in emulator/tests/python/sdk_roundtrip.py).
    let eh_conn_no_entity = eh_conn
        .split(';')
        .filter(|p| !p.starts_with("EntityPath="))
        .collect::<Vec<_>>()
        .join(";");

    // 10 events on partition 0; remember each one's offset.
    let mut positions = Vec::new();
    for i in 0..10 {
        let seq = emu
            .publish("hub", Some("0"), None, Bytes::from(format!("e{i}")))
            .unwrap();
        let info = emu.partition_info("hub", "0").unwrap();
        assert_eq!(info.last_seq, seq);
        positions.push((seq, info.last_offset.to_string()));
    }

    let fq = py(
        &python,
        vec![
            s("fqns"),
            s("--eh-conn"),
            eh_conn_no_entity.clone(),
            s("--hub"),
            s("hub"),
        ],
    )
    .await;
    let fqns = fq["fully_qualified_namespace"].as_str().unwrap().to_owned();
    let key = CheckpointKey::new(fqns, "hub", "$Default");

    let storage_conn = support::azurite_connection_string(&endpoint);
    let container = support::unique_container("proc");
    let store = BlobCheckpointStore::from_connection_string(&storage_conn, &container).unwrap();
    store.ensure_container().await.unwrap();

    // azlog-hub checkpoints event #4 (e4).
    let (seq4, off4) = positions[4].clone();
    store
        .save(
            &key,
            &Checkpoint {
                partition: "0".into(),
                offset: Some(off4),
                sequence: seq4,
                enqueued_ns: None,
            },
        )
        .await
        .unwrap();

    // The Python processor must start at e5 and see e5..e9 exactly once.
    let out = py(
        &python,
        vec![
            s("consume"),
            s("--eh-conn"),
            eh_conn_no_entity.clone(),
            s("--hub"),
            s("hub"),
            s("--storage-conn"),
            storage_conn.clone(),
            s("--container"),
            container.clone(),
            s("--cg"),
            s("$Default"),
            s("--partition"),
            s("0"),
            s("--expect"),
            s("5"),
            s("--timeout"),
            s("40"),
        ],
    )
    .await;
    let bodies: Vec<&str> = out["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["e5", "e6", "e7", "e8", "e9"],
        "python output: {out}"
    );
    let first_seq = out["events"][0]["sequence_number"].as_i64().unwrap();
    assert_eq!(first_seq, positions[5].0);

    // Python checkpointed e9; our store reads exactly that.
    let (seq9, off9) = positions[9].clone();
    let theirs = store
        .load(&key, "0")
        .await
        .unwrap()
        .expect("python checkpoint");
    assert_eq!(theirs.sequence, seq9);
    assert_eq!(theirs.offset.as_deref(), Some(off9.as_str()));

    // azlog-hub resumes after it: publish e10..e12, read from sequence + 1 with our source.
    for i in 10..13 {
        emu.publish("hub", Some("0"), None, Bytes::from(format!("e{i}")))
            .unwrap();
    }
    let ep = Endpoint {
        connection_string: eh_conn.clone(),
        hub: "hub".into(),
        consumer_group: "$Default".into(),
        custom_endpoint: Some(emu.amqp_url()),
    };
    let client = connect(&ep).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let n = read_partition_to_end(
        &client,
        "0",
        StartLocation::SequenceNumber(theirs.sequence + 1),
        16,
        std::time::Duration::from_secs(20),
        &tx,
    )
    .await
    .unwrap();
    drop(tx);
    let mut got = Vec::new();
    while let Some(ev) = rx.recv().await {
        got.push(String::from_utf8(ev.body).unwrap());
    }
    assert_eq!(n, 3);
    assert_eq!(got, ["e10", "e11", "e12"]);
    client.close().await.ok();
    emu.shutdown().await.unwrap();
}
