//! File checkpoint store: round trips, layout, atomic replacement, corrupt files.

use std::sync::Arc;

use azlog_hub::checkpoint::{
    Checkpoint, CheckpointError, CheckpointKey, CheckpointStore, FileCheckpointStore,
};

fn cp(partition: &str, seq: i64) -> Checkpoint {
    Checkpoint {
        partition: partition.into(),
        offset: Some(format!("{}", seq * 100)),
        sequence: seq,
        enqueued_ns: Some(1_700_000_000_000_000_000 + seq),
    }
}

fn key() -> CheckpointKey {
    CheckpointKey::new("MyNs.servicebus.windows.net", "Hub1", "$Default")
}

#[tokio::test]
async fn round_trip_list_and_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(dir.path()));
    assert_eq!(store.load(&key(), "0").await.unwrap(), None);
    assert!(store.list(&key()).await.unwrap().is_empty());

    store.save(&key(), &cp("0", 5)).await.unwrap();
    store.save(&key(), &cp("1", 7)).await.unwrap();
    store.save(&key(), &cp("0", 9)).await.unwrap();

    assert_eq!(store.load(&key(), "0").await.unwrap(), Some(cp("0", 9)));
    assert_eq!(
        store.list(&key()).await.unwrap(),
        vec![cp("0", 9), cp("1", 7)]
    );

    // Another consumer group is separate.
    let other = CheckpointKey::new("MyNs.servicebus.windows.net", "Hub1", "other");
    assert!(store.list(&other).await.unwrap().is_empty());

    // Key case does not matter (lowercase layout, as in the Blob store).
    let upper = CheckpointKey::new("myns.servicebus.windows.net", "HUB1", "$DEFAULT");
    assert_eq!(store.load(&upper, "1").await.unwrap(), Some(cp("1", 7)));
}

#[tokio::test]
async fn layout_is_lowercase_encoded_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointStore::new(dir.path());
    store.save(&key(), &cp("0", 1)).await.unwrap();
    let expected = dir
        .path()
        .join("checkpoints/myns.servicebus.windows.net/hub1/%24default/0.json");
    assert_eq!(store.path_for(&key(), "0"), expected);
    let text = std::fs::read_to_string(&expected).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["sequence"], 1);
    assert_eq!(json["offset"], "100");
    let names: Vec<_> = std::fs::read_dir(expected.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["0.json".to_owned()]);
}

#[tokio::test]
async fn stray_temp_file_from_a_crash_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointStore::new(dir.path());
    store.save(&key(), &cp("0", 3)).await.unwrap();
    // A crash between write and rename leaves a (possibly torn) temp file.
    let torn = store.dir_for(&key()).join(".0.1234.0.tmp");
    std::fs::write(&torn, b"{\"version\":1,\"partit").unwrap();
    assert_eq!(store.list(&key()).await.unwrap(), vec![cp("0", 3)]);
    assert_eq!(store.load(&key(), "0").await.unwrap(), Some(cp("0", 3)));
}

#[tokio::test]
async fn empty_offset_reads_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointStore::new(dir.path());
    let mut c = cp("2", 4);
    c.offset = Some(String::new());
    store.save(&key(), &c).await.unwrap();
    let back = store.load(&key(), "2").await.unwrap().unwrap();
    assert_eq!(back.offset, None);
    assert_eq!(back.sequence, 4);
    c.offset = None;
    c.enqueued_ns = None;
    store.save(&key(), &c).await.unwrap();
    assert_eq!(store.load(&key(), "2").await.unwrap(), Some(c));
}

#[tokio::test]
async fn corrupt_file_is_an_error_with_path() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointStore::new(dir.path());
    let path = store.path_for(&key(), "0");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"not json").unwrap();
    match store.load(&key(), "0").await {
        Err(CheckpointError::Invalid { what, .. }) => assert!(what.ends_with("0.json"), "{what}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    std::fs::write(
        &path,
        br#"{"version":99,"partition":"0","offset":null,"sequence":1,"enqueued_ns":null}"#,
    )
    .unwrap();
    assert!(matches!(
        store.load(&key(), "0").await,
        Err(CheckpointError::Invalid { .. })
    ));
}

#[tokio::test]
async fn unwritable_state_dir_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let store = FileCheckpointStore::new(&file);
    assert!(matches!(
        store.save(&key(), &cp("0", 1)).await,
        Err(CheckpointError::Io { .. })
    ));
}

#[tokio::test]
async fn concurrent_saves_of_many_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(dir.path()));
    let mut tasks = Vec::new();
    for p in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..20 {
                store.save(&key(), &cp(&p.to_string(), seq)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.list(&key()).await.unwrap();
    assert_eq!(all.len(), 8);
    assert!(all.iter().all(|c| c.sequence == 19));
}
