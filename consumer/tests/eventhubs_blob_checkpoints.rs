//! The service with the Azure Blob checkpoint store (Azurite): emulator → azlog-hub → file
//! sink, checkpoints in the official SDK blob layout, restart resumes from them. Needs Azurite
//! (`bash scripts/azurite-start.sh`); AZLOG_SKIP_AZURITE=1 skips.
mod checkpoint_support;
mod pipeline_support;

use std::collections::BTreeSet;
use std::time::Duration;

use azlog_emulator::{EmulatorConfig, HubSpec};
use azlog_hub::checkpoint::{BlobCheckpointStore, CheckpointKey, CheckpointStore};
use azlog_hub::config::HubConfig;
use azlog_hub::service;
use bytes::Bytes;
use checkpoint_support::{azurite_blob, azurite_connection_string, unique_container};
use pipeline_support::*;
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_checkpoints_on_azurite_carry_a_restart() {
    let Some(blob) = azurite_blob() else { return };
    let em = azlog_emulator::start(EmulatorConfig::ephemeral(vec![HubSpec::new("blobhub", 2)]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let container = unique_container("azlog-run");
    let (path, out) = write_raw_file_config(
        dir.path(),
        &format!(
            "[checkpoint]\nstore = \"blob\"\nconnection_string_env = \"TEST_STORAGE\"\ncontainer = \"{container}\"\nevery_ms = 100\n"
        ),
        &em.connection_string("blobhub"),
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let storage = azurite_connection_string(&blob);
    let env = move |k: &str| (k == "TEST_STORAGE").then(|| storage.clone());
    let cfg = HubConfig::parse(&text, &path, &env).unwrap_or_else(|e| panic!("{e}"));

    let records = sample_records();
    let mut expected = BTreeSet::new();
    let mut publish = |round: usize| {
        for (i, r) in records.iter().enumerate() {
            let id = format!("r{round}-{i}");
            em.publish(
                "blobhub",
                Some(&(i % 2).to_string()),
                None,
                Bytes::from(envelope(&[tag(r, &id)])),
            )
            .unwrap();
            expected.insert(id);
        }
        expected.len()
    };
    let store =
        BlobCheckpointStore::from_connection_string(&azurite_connection_string(&blob), &container)
            .unwrap();
    let key = CheckpointKey::new("localhost", "blobhub", "$Default");
    for round in 0..2 {
        let want = publish(round);
        let (stop_tx, stop_rx) = watch::channel(false);
        let c = cfg.clone();
        let task = tokio::spawn(async move { service::run(&c, stop_rx).await });
        assert!(wait_until(Duration::from_secs(60), || read_ids(&out).len() >= want).await);
        stop_tx.send(true).unwrap();
        let summary = task.await.unwrap().unwrap();
        assert_eq!(summary.error, None);
        for p in ["0", "1"] {
            let cp = store.load(&key, p).await.unwrap().expect("blob checkpoint");
            assert_eq!(
                cp.sequence,
                em.partition_info("blobhub", p).unwrap().last_seq
            );
            assert!(cp.offset.is_some(), "offset metadata written");
        }
    }
    let ids = read_ids(&out);
    assert_eq!(
        ids.len(),
        expected.len(),
        "the restart resumed from the blob checkpoints"
    );
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    em.shutdown().await.unwrap();
}
