//! Blob checkpoint store against Azurite: SDK layout, round trips, auth failures, case fallback.
//! Needs Azurite (`bash scripts/azurite-start.sh`); AZLOG_SKIP_AZURITE=1 skips.

#[path = "checkpoint_support/mod.rs"]
mod support;

use std::sync::Arc;

use azlog_hub::azure_storage::{
    encode_blob_path, join_url, StorageConnection, StorageCredential, StorageService,
};
use azlog_hub::checkpoint::{
    BlobCheckpointStore, Checkpoint, CheckpointError, CheckpointKey, CheckpointStore,
};
use reqwest::{Method, Url};

fn key() -> CheckpointKey {
    CheckpointKey::new("MyNs.ServiceBus.Windows.Net", "Hub-A", "$Default")
}

/// Raw signed request through our signer (proves SharedKey against a real service too).
async fn raw(
    conn: &StorageConnection,
    method: Method,
    url: Url,
    headers: &[(&'static str, &str)],
) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut rb = client.request(method, url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let mut req = rb.build().unwrap();
    conn.credential
        .authorize(&mut req, StorageService::Blob)
        .unwrap();
    let resp = client.execute(req).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn list_xml(conn: &StorageConnection, container: &str) -> String {
    let mut url = join_url(conn.blob_endpoint.as_ref().unwrap(), container).unwrap();
    url.query_pairs_mut()
        .append_pair("restype", "container")
        .append_pair("comp", "list")
        .append_pair("include", "metadata");
    let (status, body) = raw(conn, Method::GET, url, &[]).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn round_trip_in_sdk_layout() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let conn = support::azurite_connection(&endpoint);
    let container = support::unique_container("cp");
    let store = BlobCheckpointStore::new(conn.clone(), &container).unwrap();
    store.ensure_container().await.unwrap();
    store.ensure_container().await.unwrap(); // idempotent (409 accepted)
    let store: Arc<dyn CheckpointStore> = Arc::new(store);

    assert_eq!(store.load(&key(), "0").await.unwrap(), None);
    assert!(store.list(&key()).await.unwrap().is_empty());

    // First save creates the blob (404 on set-metadata → put blob), offset unknown.
    let first = Checkpoint {
        partition: "0".into(),
        offset: None,
        sequence: 41,
        enqueued_ns: None,
    };
    store.save(&key(), &first).await.unwrap();
    assert_eq!(store.load(&key(), "0").await.unwrap(), Some(first));

    // Second save updates metadata in place.
    let second = Checkpoint {
        partition: "0".into(),
        offset: Some("8589934592".into()),
        sequence: 42,
        enqueued_ns: Some(1_763_000_000_123_456_789),
    };
    store.save(&key(), &second).await.unwrap();
    let third = Checkpoint {
        partition: "1".into(),
        offset: Some("0".into()),
        sequence: 0,
        enqueued_ns: None,
    };
    store.save(&key(), &third).await.unwrap();
    assert_eq!(store.load(&key(), "0").await.unwrap(), Some(second.clone()));
    assert_eq!(store.list(&key()).await.unwrap(), vec![second, third]);

    // Exact layout: lowercase names, empty blobs, lowercase metadata keys, both keys present.
    let xml = list_xml(&conn, &container).await;
    assert!(
        xml.contains("<Name>myns.servicebus.windows.net/hub-a/$default/checkpoint/0</Name>"),
        "{xml}"
    );
    assert!(xml.contains("<Name>myns.servicebus.windows.net/hub-a/$default/checkpoint/1</Name>"));
    assert!(xml.contains("<offset>8589934592</offset>"), "{xml}");
    assert!(xml.contains("<sequencenumber>42</sequencenumber>"), "{xml}");
    assert!(xml.contains("<Content-Length>0</Content-Length>"), "{xml}");
}

#[tokio::test]
async fn wrong_key_is_rejected_with_status() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let mut conn = support::azurite_connection(&endpoint);
    conn.credential = StorageCredential::shared_key("devstoreaccount1", "d3Jvbmcta2V5").unwrap();
    let store = BlobCheckpointStore::new(conn, &support::unique_container("cpbad")).unwrap();
    match store.ensure_container().await {
        Err(CheckpointError::Status { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let err = store.load(&key(), "0").await.unwrap_err();
    assert!(
        matches!(err, CheckpointError::Status { status: 403, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn missing_container_is_an_error_not_empty() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let conn = support::azurite_connection(&endpoint);
    let store = BlobCheckpointStore::new(conn, &support::unique_container("nope")).unwrap();
    let err = store.list(&key()).await.unwrap_err();
    assert!(
        matches!(err, CheckpointError::Status { status: 404, ref code, .. } if code == "ContainerNotFound"),
        "{err}"
    );
}

#[tokio::test]
async fn reads_verbatim_case_blobs_written_by_other_sdks() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let conn = support::azurite_connection(&endpoint);
    let container = support::unique_container("cpcase");
    let store = BlobCheckpointStore::new(conn.clone(), &container).unwrap();
    store.ensure_container().await.unwrap();
    // As the Go/Java/Rust SDKs write it: verbatim case.
    let name = "MyNs.ServiceBus.Windows.Net/Hub-A/$Default/checkpoint/3";
    let url = join_url(
        conn.blob_endpoint.as_ref().unwrap(),
        &format!("{container}/{}", encode_blob_path(name)),
    )
    .unwrap();
    let (status, body) = raw(
        &conn,
        Method::PUT,
        url,
        &[
            ("x-ms-blob-type", "BlockBlob"),
            ("x-ms-meta-offset", "77"),
            ("x-ms-meta-sequencenumber", "7"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let want = Checkpoint {
        partition: "3".into(),
        offset: Some("77".into()),
        sequence: 7,
        enqueued_ns: None,
    };
    assert_eq!(store.load(&key(), "3").await.unwrap(), Some(want.clone()));
    assert_eq!(store.list(&key()).await.unwrap(), vec![want]);
}

#[tokio::test]
async fn blob_without_sequencenumber_is_invalid() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let conn = support::azurite_connection(&endpoint);
    let container = support::unique_container("cpinv");
    let store = BlobCheckpointStore::new(conn.clone(), &container).unwrap();
    store.ensure_container().await.unwrap();
    let name = BlobCheckpointStore::blob_name(&key(), "0");
    let url = join_url(
        conn.blob_endpoint.as_ref().unwrap(),
        &format!("{container}/{}", encode_blob_path(&name)),
    )
    .unwrap();
    let (status, _) = raw(
        &conn,
        Method::PUT,
        url,
        &[("x-ms-blob-type", "BlockBlob"), ("x-ms-meta-offset", "5")],
    )
    .await;
    assert_eq!(status, 201);
    assert!(matches!(
        store.load(&key(), "0").await,
        Err(CheckpointError::Invalid { .. })
    ));
}
