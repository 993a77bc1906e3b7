//! The poller's checkpoint: a watermark per table and the rows already acknowledged inside
//! the overlap, persisted through [`WatermarkStore`] (the consumer can plug its own checkpoint
//! store; [`FileWatermarkStore`] writes one JSON file per table: temp file, fsync, rename,
//! fsync of the folder).
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// What a table's poller has finished: every row with a PartitionKey below `cursor_ticks` that
/// was read has been acknowledged by the sinks, and so have the rows listed in `seen`. After
/// a restart the poller reads again from `cursor_ticks - overlap` and skips `seen`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Format version.
    #[serde(default = "one")]
    pub version: u32,
    /// Exclusive upper PartitionKey bound, as .NET ticks.
    pub cursor_ticks: i64,
    /// `cursor_ticks` as RFC 3339, for people reading the file.
    #[serde(default)]
    pub cursor: String,
    /// Acknowledged rows that a later read can meet again: PartitionKey → RowKeys (sorted).
    #[serde(default)]
    pub seen: BTreeMap<String, Vec<String>>,
}

fn one() -> u32 {
    1
}

impl Watermark {
    /// Number of rows listed in `seen`.
    pub fn seen_rows(&self) -> usize {
        self.seen.values().map(Vec::len).sum()
    }
}

/// Where watermarks are kept. `key` is the table's source id (`wad:<account>/<table>`).
#[async_trait::async_trait]
pub trait WatermarkStore: Send + Sync {
    /// The stored watermark, `None` when there is none yet.
    async fn load(&self, key: &str) -> Result<Option<Watermark>, StoreError>;
    /// Replaces the stored watermark (atomically: a crash leaves the old or the new one).
    async fn save(&self, key: &str, watermark: &Watermark) -> Result<(), StoreError>;
}

/// One JSON file per key under a folder.
#[derive(Debug, Clone)]
pub struct FileWatermarkStore {
    dir: PathBuf,
}

impl FileWatermarkStore {
    /// A store in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileWatermarkStore { dir: dir.into() }
    }

    /// The file of a key: characters other than letters, digits, `-` and `.` are written
    /// as `_xx` (hex), so distinct keys never share a file.
    pub fn path_of(&self, key: &str) -> PathBuf {
        let mut name = String::with_capacity(key.len() + 8);
        for b in key.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("_{b:02x}"));
            }
        }
        name.push_str(".json");
        self.dir.join(name)
    }
}

fn load_file(path: &Path) -> Result<Option<Watermark>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError(format!("{} is not a watermark: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError(format!("reading {}: {e}", path.display()))),
    }
}

fn save_file(dir: &Path, path: &Path, watermark: &Watermark) -> Result<(), StoreError> {
    let ctx = |what: &str, p: &Path, e: std::io::Error| {
        StoreError(format!("{what} {}: {e}", p.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| ctx("creating", dir, e))?;
    let bytes = serde_json::to_vec(watermark)
        .map_err(|e| StoreError(format!("encoding the watermark: {e}")))?;
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(|e| ctx("creating", &tmp, e))?;
        f.write_all(&bytes).map_err(|e| ctx("writing", &tmp, e))?;
        f.sync_all().map_err(|e| ctx("syncing", &tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| ctx("renaming to", path, e))?;
    // The rename itself is durable once the folder is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        if let Err(e) = d.sync_all() {
            tracing::warn!(dir = %dir.display(), error = %e, "syncing the watermark folder failed");
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl WatermarkStore for FileWatermarkStore {
    async fn load(&self, key: &str) -> Result<Option<Watermark>, StoreError> {
        let path = self.path_of(key);
        tokio::task::spawn_blocking(move || load_file(&path))
            .await
            .map_err(|e| StoreError(format!("watermark load task: {e}")))?
    }

    async fn save(&self, key: &str, watermark: &Watermark) -> Result<(), StoreError> {
        let path = self.path_of(key);
        let dir = self.dir.clone();
        let wm = watermark.clone();
        tokio::task::spawn_blocking(move || save_file(&dir, &path, &wm))
            .await
            .map_err(|e| StoreError(format!("watermark save task: {e}")))?
    }
}

/// In-memory store (tests, tools).
#[derive(Debug, Default)]
pub struct MemoryWatermarkStore {
    map: Mutex<HashMap<String, Watermark>>,
}

impl MemoryWatermarkStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// What is stored under `key`.
    pub fn get(&self, key: &str) -> Option<Watermark> {
        self.map.lock().ok().and_then(|m| m.get(key).cloned())
    }
}

#[async_trait::async_trait]
impl WatermarkStore for MemoryWatermarkStore {
    async fn load(&self, key: &str) -> Result<Option<Watermark>, StoreError> {
        Ok(self.get(key))
    }

    async fn save(&self, key: &str, watermark: &Watermark) -> Result<(), StoreError> {
        self.map
            .lock()
            .map_err(|_| StoreError("memory store lock poisoned".into()))?
            .insert(key.to_owned(), watermark.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_store_round_trip_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileWatermarkStore::new(dir.path().join("wad"));
        let key = "wad:devstoreaccount1/WADWindowsEventLogsTable";
        assert_eq!(store.load(key).await.unwrap(), None);
        let mut wm = Watermark {
            version: 1,
            cursor_ticks: 638_522_190_000_000_000,
            cursor: "2024-05-25T07:30:00.000Z".into(),
            seen: BTreeMap::new(),
        };
        wm.seen
            .insert("0638522190000000000".into(), vec!["a".into(), "b".into()]);
        store.save(key, &wm).await.unwrap();
        assert_eq!(store.load(key).await.unwrap(), Some(wm.clone()));
        wm.cursor_ticks += 1;
        store.save(key, &wm).await.unwrap();
        assert_eq!(store.load(key).await.unwrap(), Some(wm));
        // No temp files left behind; the file name is derived from the key.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("wad"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["wad_3adevstoreaccount1_2fWADWindowsEventLogsTable.json".to_owned()]
        );
    }

    #[test]
    fn distinct_keys_distinct_files() {
        let s = FileWatermarkStore::new("/x");
        assert_ne!(s.path_of("wad:a/b_c"), s.path_of("wad:a_b/c"));
        assert_ne!(s.path_of("a/b"), s.path_of("a_2fb"));
    }

    #[tokio::test]
    async fn corrupt_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileWatermarkStore::new(dir.path());
        std::fs::write(store.path_of("k"), b"{not json").unwrap();
        let err = store.load("k").await.unwrap_err();
        assert!(err.to_string().contains("is not a watermark"), "{err}");
    }
}
