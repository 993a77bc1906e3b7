//! Interop of the Blob ownership claims with the official Python SDK
//! (`azure-eventhub-checkpointstoreblob` `BlobCheckpointStore.list_ownership`/`claim_ownership`,
//! what the Python EventProcessor load-balances with), on Azurite.
//!
//! Needs Azurite (`bash scripts/azurite-start.sh`, skip: AZLOG_SKIP_AZURITE=1) and the test venv
//! (`bash scripts/python-venv.sh`, skip: AZLOG_SKIP_PYTHON=1).

#[path = "checkpoint_support/mod.rs"]
mod support;

use std::path::Path;

use azlog_hub::checkpoint::{BlobCheckpointStore, CheckpointKey, Ownership, OwnershipStore};
use serde_json::Value;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/blob_ownership_interop.py")
}

/// Runs the Python driver; its JSON output is a list of ownership records, sorted here by
/// partition.
async fn py(python: &Path, args: Vec<String>) -> Vec<Value> {
    let v = support::python_json(python, &script(), args).await;
    let mut records = v.as_array().expect("a JSON list").clone();
    records.sort_by_key(|r| r["partition_id"].as_str().unwrap_or("").to_owned());
    records
}

fn claim(partition: &str, owner: &str, etag: Option<&str>) -> Ownership {
    Ownership {
        partition: partition.into(),
        owner_id: owner.into(),
        etag: etag.map(str::to_owned),
        last_modified_ns: 0,
    }
}

/// Python lists ETags as storage lists them (unquoted); we and its claims use the quoted form.
fn bare(etag: &str) -> &str {
    etag.trim_matches('"')
}

struct Py {
    python: std::path::PathBuf,
    conn: String,
    container: String,
    key: CheckpointKey,
}

impl Py {
    fn args(&self, cmd: &str) -> Vec<String> {
        [
            cmd,
            "--storage-conn",
            &self.conn,
            "--container",
            &self.container,
            "--fqns",
            &self.key.fully_qualified_namespace,
            "--hub",
            &self.key.hub,
            "--cg",
            &self.key.consumer_group,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    async fn list(&self) -> Vec<Value> {
        py(&self.python, self.args("list")).await
    }

    async fn claim(&self, partition: &str, owner: &str, etag: Option<&str>) -> Vec<Value> {
        let mut args = self.args("claim");
        args.extend(["--partition", partition, "--owner", owner].map(str::to_owned));
        if let Some(e) = etag {
            args.extend(["--etag".to_owned(), e.to_owned()]);
        }
        py(&self.python, args).await
    }
}

async fn setup(prefix: &str) -> Option<(BlobCheckpointStore, Py)> {
    let endpoint = support::azurite_blob()?;
    let python = support::venv_python()?;
    let conn = support::azurite_connection_string(&endpoint);
    let container = support::unique_container(prefix);
    let store = BlobCheckpointStore::from_connection_string(&conn, &container).unwrap();
    store.ensure_container().await.unwrap();
    let key = CheckpointKey::new("MyNs.servicebus.windows.net", "MyHub", "$Default");
    Some((
        store,
        Py {
            python,
            conn,
            container,
            key,
        },
    ))
}

/// (a) Claims azlog-hub wrote, including a release, are what Python's list_ownership reports.
#[tokio::test]
async fn python_lists_our_claims() {
    let Some((store, py)) = setup("own-py-a").await else {
        return;
    };
    let key = py.key.clone();
    let won = store
        .claim_ownership(
            &key,
            vec![
                claim("0", "azlog-a", None),
                claim("1", "azlog-a", None),
                claim("2", "azlog-a", None),
            ],
        )
        .await
        .unwrap();
    assert_eq!(won.len(), 3);
    let released = store
        .claim_ownership(&key, vec![claim("2", "", won[2].etag.as_deref())])
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    let ours = [won[0].clone(), won[1].clone(), released[0].clone()];

    let theirs = py.list().await;
    assert_eq!(theirs.len(), 3, "{theirs:?}");
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(t["partition_id"], o.partition.as_str(), "{t}");
        assert_eq!(
            t["etag"].as_str().map(bare),
            o.etag.as_deref().map(bare),
            "{t}"
        );
        let py_ns = t["last_modified_time"].as_f64().unwrap() * 1e9;
        assert!(
            (py_ns - o.last_modified_ns as f64).abs() < 1e6,
            "python {py_ns} vs ours {}",
            o.last_modified_ns
        );
    }
    assert_eq!(theirs[0]["owner_id"], "azlog-a");
    assert_eq!(theirs[1]["owner_id"], "azlog-a");
    // A release (empty ownerid) reads back in Python as None (the Azure SDK turns an empty
    // metadata value into None); its load balancer treats any falsy owner as released.
    assert_eq!(theirs[2]["owner_id"], Value::Null, "{}", theirs[2]);

    // And Python can take over our claim with the ETag it listed.
    let taken = py.claim("1", "py-b", theirs[1]["etag"].as_str()).await;
    assert_eq!(taken.len(), 1, "{taken:?}");
    let listed = store.list_ownership(&key).await.unwrap();
    assert_eq!(listed[1].owner_id, "py-b");
    assert_eq!(listed[1].etag.as_deref(), taken[0]["etag"].as_str());
    // Our renewal with the ETag we had is now stale.
    let lost = store
        .claim_ownership(&key, vec![claim("1", "azlog-a", won[1].etag.as_deref())])
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
}

/// (b) A claim Python made is listed by us with its owner and ETag; our claim with a stale ETag
/// loses, with the listed one it wins, and Python then sees us as the owner.
#[tokio::test]
async fn we_list_and_take_over_python_claims() {
    let Some((store, py)) = setup("own-py-b").await else {
        return;
    };
    let key = py.key.clone();
    let first = py.claim("5", "py-b", None).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let e1 = first[0]["etag"].as_str().unwrap().to_owned();
    let renewed = py.claim("5", "py-b", Some(&e1)).await;
    assert_eq!(renewed.len(), 1, "{renewed:?}");
    let e2 = renewed[0]["etag"].as_str().unwrap().to_owned();
    assert_ne!(e1, e2);
    let listed = store.list_ownership(&key).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].partition, "5");
    assert_eq!(listed[0].owner_id, "py-b");
    assert_eq!(listed[0].etag.as_deref(), Some(e2.as_str()));
    let py_ns = renewed[0]["last_modified_time"].as_f64().unwrap() * 1e9;
    assert!((py_ns - listed[0].last_modified_ns as f64).abs() < 1e6);

    // Stale ETag (Python's first one): lost. Also a first claim (no ETag): lost.
    let lost = store
        .claim_ownership(
            &key,
            vec![
                claim("5", "azlog-a", Some(&e1)),
                claim("5", "azlog-a", None),
            ],
        )
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(
        store.list_ownership(&key).await.unwrap()[0].owner_id,
        "py-b"
    );

    // The listed ETag: won.
    let won = store
        .claim_ownership(&key, vec![claim("5", "azlog-a", listed[0].etag.as_deref())])
        .await
        .unwrap();
    assert_eq!(won.len(), 1);
    let theirs = py.list().await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["owner_id"], "azlog-a");
    assert_eq!(
        theirs[0]["etag"].as_str().map(bare),
        won[0].etag.as_deref().map(bare)
    );
    // Python's renewal with its now stale ETag loses.
    assert!(py.claim("5", "py-b", Some(&e2)).await.is_empty());
    assert_eq!(
        store.list_ownership(&key).await.unwrap()[0].owner_id,
        "azlog-a"
    );
}

/// (e) A claim written the way the Go/Java/Rust SDK processors write it (names not lowercased,
/// here by azure-storage-blob) is invisible to the balance (a different blob), and
/// `verbatim_case_claims` finds it so the service can warn; ours and a released one are not
/// reported.
#[tokio::test]
async fn verbatim_case_claims_of_other_sdks_are_found() {
    let Some((store, py)) = setup("own-py-e").await else {
        return;
    };
    let key = py.key.clone();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64
    };
    assert!(store
        .verbatim_case_claims(&key, now())
        .await
        .unwrap()
        .is_empty());
    let won = store
        .claim_ownership(&key, vec![claim("0", "azlog-a", None)])
        .await
        .unwrap();
    assert_eq!(won.len(), 1);

    let mut put = py.args("put-verbatim");
    put.extend(["--partition", "1", "--owner", "go-processor"].map(str::to_owned));
    let written = support::python_json(&py.python, &script(), put).await;
    assert_eq!(
        written["name"],
        "MyNs.servicebus.windows.net/MyHub/$Default/ownership/1"
    );
    let mut released = py.args("put-verbatim");
    released.extend(["--partition", "2", "--owner", ""].map(str::to_owned));
    support::python_json(&py.python, &script(), released).await;

    // The balance sees only the lowercase claims.
    let listed = store.list_ownership(&key).await.unwrap();
    let parts: Vec<_> = listed.iter().map(|o| o.partition.as_str()).collect();
    assert_eq!(parts, ["0"], "{listed:?}");

    let foreign = store.verbatim_case_claims(&key, now()).await.unwrap();
    let found: Vec<_> = foreign
        .iter()
        .map(|o| (o.partition.as_str(), o.owner_id.as_str()))
        .collect();
    assert_eq!(found, [("1", "go-processor")], "{foreign:?}");
    // Ten minutes later the same claim counts as abandoned.
    let later = now() + 600 * 1_000_000_000;
    assert!(store
        .verbatim_case_claims(&key, later)
        .await
        .unwrap()
        .is_empty());
    // All-lowercase names: one prefix, nothing to look for.
    let lower = CheckpointKey::new("myns.servicebus.windows.net", "myhub", "$default");
    assert!(store
        .verbatim_case_claims(&lower, now())
        .await
        .unwrap()
        .is_empty());
}
