//! Partition ownership claims in the Blob store (`impl OwnershipStore for BlobCheckpointStore`) on
//! Azurite: first claims, conflicting first claims, renewals, steals, releases, many partitions
//! claimed concurrently, and a store that cannot be reached or authorized.
//!
//! Needs Azurite (`bash scripts/azurite-start.sh`, skip: AZLOG_SKIP_AZURITE=1).

#[path = "checkpoint_support/mod.rs"]
mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use azlog_hub::azure_storage::DEV_ACCOUNT_NAME;
use azlog_hub::checkpoint::{BlobCheckpointStore, CheckpointKey, Ownership, OwnershipStore};

fn claim(partition: &str, owner: &str, etag: Option<&str>) -> Ownership {
    Ownership {
        partition: partition.into(),
        owner_id: owner.into(),
        etag: etag.map(str::to_owned),
        last_modified_ns: 0,
    }
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Within a minute of now (Last-Modified has one-second resolution).
fn assert_recent(o: &Ownership) {
    let age = now_ns() - o.last_modified_ns;
    assert!(
        (-60_000_000_000..60_000_000_000).contains(&age),
        "last_modified_ns {} is {age} ns from now: {o:?}",
        o.last_modified_ns
    );
}

/// A store on a fresh container of Azurite, or None when Azurite is skipped.
async fn store(prefix: &str) -> Option<BlobCheckpointStore> {
    let endpoint = support::azurite_blob()?;
    let store = BlobCheckpointStore::new(
        support::azurite_connection(&endpoint),
        &support::unique_container(prefix),
    )
    .unwrap();
    store.ensure_container().await.unwrap();
    Some(store)
}

fn key() -> CheckpointKey {
    CheckpointKey::new("MyNs.servicebus.windows.net", "MyHub", "$Default")
}

fn owners(listed: &[Ownership]) -> Vec<(&str, &str)> {
    listed
        .iter()
        .map(|o| (o.partition.as_str(), o.owner_id.as_str()))
        .collect()
}

#[tokio::test]
async fn first_claims_win_once() {
    let Some(store) = store("own-first").await else {
        return;
    };
    let key = key();
    assert!(store.list_ownership(&key).await.unwrap().is_empty());

    let won = store
        .claim_ownership(&key, vec![claim("0", "a", None), claim("1", "a", None)])
        .await
        .unwrap();
    assert_eq!(owners(&won), vec![("0", "a"), ("1", "a")]);
    for o in &won {
        assert!(o.etag.as_deref().is_some_and(|e| !e.is_empty()), "{o:?}");
        assert_recent(o);
    }
    assert_ne!(won[0].etag, won[1].etag);

    let listed = store.list_ownership(&key).await.unwrap();
    assert_eq!(owners(&listed), vec![("0", "a"), ("1", "a")]);
    for (l, w) in listed.iter().zip(&won) {
        assert_eq!(l.etag, w.etag, "listed vs written ETag");
        assert_eq!(l.last_modified_ns, w.last_modified_ns);
        assert_recent(l);
    }

    // A second first claim (no ETag: "only if no record exists") loses, and is no error.
    let lost = store
        .claim_ownership(&key, vec![claim("0", "b", None)])
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(
        owners(&store.list_ownership(&key).await.unwrap()),
        vec![("0", "a"), ("1", "a")]
    );

    // Records live under the lowercase SDK name; another consumer group sees none of them.
    assert_eq!(
        BlobCheckpointStore::ownership_blob_name(&key, "0"),
        "myns.servicebus.windows.net/myhub/$default/ownership/0"
    );
    let upper = CheckpointKey::new("MYNS.servicebus.windows.net", "MYHUB", "$DEFAULT");
    assert_eq!(store.list_ownership(&upper).await.unwrap().len(), 2);
    let other = CheckpointKey::new("MyNs.servicebus.windows.net", "MyHub", "other");
    assert!(store.list_ownership(&other).await.unwrap().is_empty());
}

#[tokio::test]
async fn renew_steal_and_stale_renewal() {
    let Some(store) = store("own-steal").await else {
        return;
    };
    let key = key();
    let first = store
        .claim_ownership(&key, vec![claim("0", "a", None)])
        .await
        .unwrap();
    assert_eq!(first.len(), 1);

    // a renews with the ETag it got: a new ETag.
    let renewed = store
        .claim_ownership(&key, vec![claim("0", "a", first[0].etag.as_deref())])
        .await
        .unwrap();
    assert_eq!(owners(&renewed), vec![("0", "a")]);
    assert_ne!(renewed[0].etag, first[0].etag);
    assert!(renewed[0].last_modified_ns >= first[0].last_modified_ns);

    // b steals with the ETag it listed.
    let listed = store.list_ownership(&key).await.unwrap();
    assert_eq!(listed[0].etag, renewed[0].etag);
    let stolen = store
        .claim_ownership(&key, vec![claim("0", "b", listed[0].etag.as_deref())])
        .await
        .unwrap();
    assert_eq!(owners(&stolen), vec![("0", "b")]);

    // a's next renewal carries its now stale ETag: lost. So does a retry of the first claim.
    let stale = store
        .claim_ownership(
            &key,
            vec![
                claim("0", "a", renewed[0].etag.as_deref()),
                claim("0", "a", first[0].etag.as_deref()),
            ],
        )
        .await
        .unwrap();
    assert!(stale.is_empty(), "{stale:?}");
    let listed = store.list_ownership(&key).await.unwrap();
    assert_eq!(owners(&listed), vec![("0", "b")]);
    assert_eq!(listed[0].etag, stolen[0].etag);

    // An ETag for a record that does not exist never creates it.
    let ghost = store
        .claim_ownership(&key, vec![claim("9", "a", stolen[0].etag.as_deref())])
        .await
        .unwrap();
    assert!(ghost.is_empty(), "{ghost:?}");
    assert_eq!(store.list_ownership(&key).await.unwrap().len(), 1);
}

#[tokio::test]
async fn release_lists_as_empty_owner_and_can_be_reclaimed() {
    let Some(store) = store("own-release").await else {
        return;
    };
    let key = key();
    let won = store
        .claim_ownership(&key, vec![claim("3", "a", None)])
        .await
        .unwrap();
    let released = store
        .claim_ownership(&key, vec![claim("3", "", won[0].etag.as_deref())])
        .await
        .unwrap();
    assert_eq!(owners(&released), vec![("3", "")]);
    let listed = store.list_ownership(&key).await.unwrap();
    assert_eq!(owners(&listed), vec![("3", "")]);
    assert_eq!(listed[0].etag, released[0].etag);
    assert_recent(&listed[0]);

    // A released record is claimed like any other: with its ETag.
    let reclaimed = store
        .claim_ownership(&key, vec![claim("3", "b", listed[0].etag.as_deref())])
        .await
        .unwrap();
    assert_eq!(owners(&reclaimed), vec![("3", "b")]);
}

/// 32 partitions claimed in one call (concurrently), 5 of them already held by someone else:
/// exactly the 27 free ones are won, the 5 are left out.
#[tokio::test]
async fn many_partitions_some_contested() {
    let Some(store) = store("own-many").await else {
        return;
    };
    let key = key();
    let held: Vec<Ownership> = (0..5).map(|p| claim(&p.to_string(), "b", None)).collect();
    assert_eq!(store.claim_ownership(&key, held).await.unwrap().len(), 5);

    let all: Vec<Ownership> = (0..32).map(|p| claim(&p.to_string(), "a", None)).collect();
    let won = store.claim_ownership(&key, all).await.unwrap();
    let mut got: Vec<u32> = won.iter().map(|o| o.partition.parse().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (5..32).collect::<Vec<u32>>());
    assert!(won.iter().all(|o| o.owner_id == "a"));

    let listed = store.list_ownership(&key).await.unwrap();
    assert_eq!(listed.len(), 32);
    for o in &listed {
        let p: u32 = o.partition.parse().unwrap();
        assert_eq!(o.owner_id, if p < 5 { "b" } else { "a" }, "{o:?}");
    }
}

/// When every claim fails because the store is unusable (nobody listening, wrong key, no
/// container), claim_ownership returns the error so the caller backs off instead of believing
/// it lost every partition.
#[tokio::test]
async fn unusable_store_is_an_error() {
    let Some(endpoint) = support::azurite_blob() else {
        return;
    };
    let key = key();
    let claims = || vec![claim("0", "a", None), claim("1", "a", None)];

    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = BlobCheckpointStore::from_connection_string(
        &support::azurite_connection_string(&format!("http://127.0.0.1:{port}/{DEV_ACCOUNT_NAME}")),
        "c",
    )
    .unwrap();
    let err = dead.claim_ownership(&key, claims()).await.unwrap_err();
    assert!(
        matches!(err, azlog_hub::checkpoint::CheckpointError::Http { .. }),
        "{err}"
    );
    assert!(dead.list_ownership(&key).await.is_err());

    // Wrong account key: 403.
    let container = support::unique_container("own-auth");
    let good =
        BlobCheckpointStore::new(support::azurite_connection(&endpoint), &container).unwrap();
    good.ensure_container().await.unwrap();
    let wrong_key = base64_of(&[7u8; 64]);
    let forged = BlobCheckpointStore::from_connection_string(
        &format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT_NAME};AccountKey={wrong_key};BlobEndpoint={endpoint};"
        ),
        &container,
    )
    .unwrap();
    let err = forged.claim_ownership(&key, claims()).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert!(!err.to_string().contains(&wrong_key), "{err}");
    assert!(good.list_ownership(&key).await.unwrap().is_empty());

    // No container.
    let missing = BlobCheckpointStore::new(
        support::azurite_connection(&endpoint),
        &support::unique_container("own-none"),
    )
    .unwrap();
    let err = missing.claim_ownership(&key, claims()).await.unwrap_err();
    assert!(err.to_string().contains("ContainerNotFound"), "{err}");

    // Nothing to claim is no error.
    assert!(dead.claim_ownership(&key, vec![]).await.unwrap().is_empty());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
