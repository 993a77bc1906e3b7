//! Load balancing between two azlog-hub instances of one consumer group (Azurite blob store for
//! checkpoints and ownership claims, the in-process emulator): the second instance takes half
//! of the partitions from the first, the first's shutdown hands everything to the second, and
//! every record published meanwhile reaches one of the two file sinks. Needs Azurite
//! (`bash scripts/azurite-start.sh`); AZLOG_SKIP_AZURITE=1 skips.
mod checkpoint_support;
mod pipeline_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use azlog_hub::checkpoint::{BlobCheckpointStore, CheckpointKey, OwnershipStore};
use azlog_hub::config::HubConfig;
use azlog_hub::pipeline::RunSummary;
use azlog_hub::service;
use checkpoint_support::{azurite_blob, azurite_connection_string, repo_root, unique_container};
use pipeline_support::*;
use tokio::sync::watch;

const PARTITIONS: u32 = 4;

fn instance(dir: &Path, em_conn: &str, container: &str, storage: &str, owner: &str) -> HubConfig {
    std::fs::create_dir_all(dir).unwrap();
    let (path, _) = write_raw_file_config(
        dir,
        &format!(
            "[checkpoint]\nstore = \"blob\"\nconnection_string_env = \"TEST_STORAGE\"\ncontainer = \"{container}\"\nevery_ms = 200\n"
        ),
        em_conn,
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
            "start_position = \"earliest\"\n",
            &format!("start_position = \"earliest\"\nload_balancing = true\nload_balancing_interval_secs = 0.5\nownership_expiration_secs = 3\nowner_id = \"{owner}\"\n"),
        );
    let storage = storage.to_owned();
    let env = move |k: &str| (k == "TEST_STORAGE").then(|| storage.clone());
    HubConfig::parse(&text, &path, &env).unwrap_or_else(|e| panic!("{e}"))
}

/// Live owners per partition (claims younger than the expiry, non-empty owner).
async fn owners(store: &BlobCheckpointStore, key: &CheckpointKey) -> BTreeMap<String, String> {
    let now = azlog_mapper::deadletter::now_ns();
    store
        .list_ownership(key)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| !o.owner_id.is_empty() && o.last_modified_ns + 3_000_000_000 > now)
        .map(|o| (o.partition, o.owner_id))
        .collect()
}

async fn wait_for_split(
    store: &BlobCheckpointStore,
    key: &CheckpointKey,
    want: &[(&str, usize)],
) -> BTreeMap<String, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let o = owners(store, key).await;
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for owner in o.values() {
            *count.entry(owner.as_str()).or_default() += 1;
        }
        if want.iter().all(|(w, n)| count.get(w) == Some(n)) && o.len() == PARTITIONS as usize {
            return o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no split {want:?} within 60 s; claims: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Events published all along a test, `per_event` records to each partition every `pause`.
struct Publisher {
    on: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeSet<String>>,
}

impl Publisher {
    fn start(em: Arc<azlog_emulator::EmulatorHandle>, per_event: usize, pause: Duration) -> Self {
        let on = Arc::new(AtomicBool::new(true));
        let flag = on.clone();
        let task = tokio::spawn(async move {
            let mut ids = BTreeSet::new();
            let mut round = 0;
            while flag.load(Ordering::Relaxed) {
                ids.extend(publish(
                    &em,
                    &format!("r{round}-"),
                    4,
                    per_event,
                    PARTITIONS,
                ));
                round += 1;
                tokio::time::sleep(pause).await;
            }
            ids
        });
        Publisher { on, task }
    }

    /// Stops publishing; every id published.
    async fn stop(self) -> BTreeSet<String> {
        self.on.store(false, Ordering::Relaxed);
        self.task.await.expect("publisher")
    }
}

/// The emulator, a fresh blob container (created) and the claims' key.
struct Setup {
    em: Arc<azlog_emulator::EmulatorHandle>,
    conn: String,
    container: String,
    storage: String,
    store: BlobCheckpointStore,
    key: CheckpointKey,
    root: tempfile::TempDir,
}

impl Setup {
    async fn new(blob: &str, prefix: &str) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let em = Arc::new(emulator(PARTITIONS).await);
        let conn = em.connection_string(HUB);
        let container = unique_container(prefix);
        let storage = azurite_connection_string(blob);
        let store = BlobCheckpointStore::from_connection_string(&storage, &container).unwrap();
        store.ensure_container().await.unwrap();
        Setup {
            em,
            conn,
            container,
            storage,
            store,
            // The emulator's namespace is its host (the Python participant is told so).
            key: CheckpointKey::new("localhost", HUB, "$Default"),
            root: tempfile::tempdir().unwrap(),
        }
    }

    /// An instance's config (its own dir and file sink) with `owner` as owner id.
    fn instance(&self, name: &str, owner: &str) -> (HubConfig, std::path::PathBuf) {
        let dir = self.root.path().join(name);
        let cfg = instance(&dir, &self.conn, &self.container, &self.storage, owner);
        (cfg, dir.join("out/raw.ndjson"))
    }
}

fn spawn(cfg: &HubConfig) -> (watch::Sender<bool>, tokio::task::JoinHandle<RunSummary>) {
    let (tx, rx) = watch::channel(false);
    let c = cfg.clone();
    let task = tokio::spawn(async move { service::run(&c, rx).await.expect("run") });
    (tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_partitions_and_hand_over_on_shutdown() {
    let Some(blob) = azurite_blob() else { return };
    let t = Setup::new(&blob, "azlog-balance").await;
    let (store, key) = (&t.store, &t.key);
    let (a_cfg, out_a) = t.instance("a", "instance-a");
    let (b_cfg, out_b) = t.instance("b", "instance-b");
    // Events keep arriving through the whole test, 4 records every 20 ms.
    let publisher = Publisher::start(t.em.clone(), 1, Duration::from_millis(20));

    // A alone claims every partition.
    let (a_stop, a_task) = spawn(&a_cfg);
    wait_for_split(store, key, &[("instance-a", 4)]).await;
    assert!(wait_until(Duration::from_secs(30), || !read_ids(&out_a).is_empty()).await);

    // B joins: two each.
    let (b_stop, b_task) = spawn(&b_cfg);
    let split = wait_for_split(store, key, &[("instance-a", 2), ("instance-b", 2)]).await;
    assert!(
        wait_until(Duration::from_secs(30), || !read_ids(&out_b).is_empty()).await,
        "B delivers from its partitions {split:?}"
    );
    // The split holds (no partition moves back and forth).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        owners(store, key).await,
        split,
        "a balanced split is stable"
    );

    // A stops: it releases its claims and B takes all four at its next rounds (well before
    // the 3 s expiry would have freed them).
    a_stop.send(true).unwrap();
    let a_summary = a_task.await.unwrap();
    assert_eq!(a_summary.error, None, "{a_summary:#?}");
    let released = store.list_ownership(key).await.unwrap();
    assert!(
        released
            .iter()
            .filter(|o| o.owner_id == "instance-a")
            .count()
            == 0,
        "A released its claims: {released:?}"
    );
    wait_for_split(store, key, &[("instance-b", 4)]).await;

    // Stop publishing; B delivers the rest.
    let ids = publisher.stop().await;
    let all_in = || {
        let mut got: BTreeSet<String> = read_ids(&out_a).into_iter().collect();
        got.extend(read_ids(&out_b));
        ids.is_subset(&got)
    };
    let delivered = wait_until(Duration::from_secs(60), all_in).await;
    b_stop.send(true).unwrap();
    let b_summary = b_task.await.unwrap();
    assert_eq!(b_summary.error, None, "{b_summary:#?}");
    let (a_ids, b_ids) = (read_ids(&out_a), read_ids(&out_b));
    let got: BTreeSet<String> = a_ids.iter().chain(&b_ids).cloned().collect();
    let missing: Vec<&String> = ids.difference(&got).take(10).collect();
    assert!(
        delivered && missing.is_empty(),
        "{} of {} ids delivered; missing e.g. {missing:?}",
        ids.len() - ids.difference(&got).count(),
        ids.len()
    );
    let duplicates = a_ids.len() + b_ids.len() - got.len();
    eprintln!(
        "records: {} published, A delivered {}, B delivered {}, duplicates {duplicates}",
        ids.len(),
        a_ids.len(),
        b_ids.len()
    );
    // Handovers re-read at most what the last checkpoint (every 200 ms) did not cover, plus
    // what the old owner read until its next round (0.5 s): far below the total.
    assert!(
        duplicates < ids.len() / 2,
        "{duplicates} duplicates of {}",
        ids.len()
    );
    // B read every partition in the end, and released them on shutdown.
    assert_eq!(
        b_summary.partitions.len(),
        PARTITIONS as usize,
        "{b_summary:#?}"
    );
    assert!(owners(store, key).await.is_empty(), "B released its claims");
}

/// Ids the Python participant wrote (`{"id": ...}` lines).
fn python_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect()
}

/// azlog-hub and the official Python SDK processor in one consumer group: they split the
/// partitions through the same ownership blobs, and when the Python one stops (releasing its
/// claims) azlog-hub takes everything over; every record reaches one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azlog_hub_and_the_python_sdk_processor_share_a_consumer_group() {
    let Some(blob) = azurite_blob() else { return };
    let Some(python) = checkpoint_support::venv_python() else {
        return;
    };
    let t = Setup::new(&blob, "azlog-balpy").await;
    let (store, key) = (&t.store, &t.key);
    let (hub_cfg, out_hub) = t.instance("hub", "azlog-hub-1");
    let (conn, container, storage) = (&t.conn, &t.container, &t.storage);
    let root = &t.root;
    let out_py = root.path().join("python.ndjson");
    let stop_py = root.path().join("python.stop");
    let publisher = Publisher::start(t.em.clone(), 2, Duration::from_millis(50));

    let (hub_stop, hub_task) = spawn(&hub_cfg);
    wait_for_split(store, key, &[("azlog-hub-1", 4)]).await;

    let mut py = std::process::Command::new(&python)
        .arg(repo_root().join("consumer/tests/python/balance_participant.py"))
        .args([
            "--conn",
            conn,
            "--storage",
            storage,
            "--container",
            container,
        ])
        .arg("--out")
        .arg(&out_py)
        .arg("--stop")
        .arg(&stop_py)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(root.path().join("python.log")).unwrap())
        .spawn()
        .expect("python participant");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let split = loop {
        let o = owners(store, key).await;
        let python_owned = o.values().filter(|w| *w != "azlog-hub-1").count();
        if python_owned == 2 && o.len() == PARTITIONS as usize {
            break o;
        }
        if tokio::time::Instant::now() > deadline {
            let _ = py.kill();
            let log = std::fs::read_to_string(root.path().join("python.log")).unwrap_or_default();
            panic!("no 2/2 split with the Python processor: {o:?}\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        wait_until(Duration::from_secs(30), || !python_ids(&out_py).is_empty()).await,
        "the Python processor receives from its partitions {split:?}"
    );

    // Python stops and releases; azlog-hub takes all four.
    std::fs::write(&stop_py, b"").unwrap();
    let status = tokio::task::spawn_blocking(move || py.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "python exited with {status}");
    wait_for_split(store, key, &[("azlog-hub-1", 4)]).await;

    let ids = publisher.stop().await;
    let all_in = || {
        let mut got: BTreeSet<String> = read_ids(&out_hub).into_iter().collect();
        got.extend(python_ids(&out_py));
        ids.is_subset(&got)
    };
    let delivered = wait_until(Duration::from_secs(60), all_in).await;
    hub_stop.send(true).unwrap();
    let summary = hub_task.await.unwrap();
    assert_eq!(summary.error, None, "{summary:#?}");
    let (h, p) = (read_ids(&out_hub), python_ids(&out_py));
    let got: BTreeSet<String> = h.iter().chain(&p).cloned().collect();
    let missing: Vec<&String> = ids.difference(&got).take(10).collect();
    assert!(
        delivered && missing.is_empty(),
        "missing e.g. {missing:?} of {}",
        ids.len()
    );
    eprintln!(
        "records: {} published, azlog-hub {}, python {}, duplicates {}",
        ids.len(),
        h.len(),
        p.len(),
        h.len() + p.len() - got.len()
    );
}
