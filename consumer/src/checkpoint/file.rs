//! The embedded default checkpoint store: one small JSON file per partition under the state dir.
//!
//! Layout: `<state_dir>/checkpoints/<fqns>/<hub>/<consumer group>/<partition>.json`, every
//! component lowercased (like the Blob layout) and percent-encoded so that `$default`, `:` or
//! `..` are safe on any filesystem. A save writes a unique temp file next to the target, fsyncs
//! it, renames it over the target and fsyncs the directory, so a crash leaves either the old or
//! the new checkpoint, never a torn one.

use super::{Checkpoint, CheckpointError, CheckpointKey, CheckpointStore};
use async_trait::async_trait;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const FILE_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_');
const FORMAT_VERSION: u32 = 1;

/// On-disk form of a checkpoint.
#[derive(Debug, Serialize, Deserialize)]
struct FileCheckpoint {
    version: u32,
    #[serde(flatten)]
    checkpoint: Checkpoint,
}

/// Checkpoints as atomically replaced JSON files under a state directory.
#[derive(Debug)]
pub struct FileCheckpointStore {
    root: PathBuf,
    temp_counter: AtomicU64,
}

impl FileCheckpointStore {
    /// A store rooted at `<state_dir>/checkpoints` (created on first save).
    pub fn new(state_dir: impl AsRef<Path>) -> Self {
        Self {
            root: state_dir.as_ref().join("checkpoints"),
            temp_counter: AtomicU64::new(0),
        }
    }

    /// The directory holding the checkpoints of `key`.
    pub fn dir_for(&self, key: &CheckpointKey) -> PathBuf {
        self.root
            .join(fs_segment(&key.fully_qualified_namespace))
            .join(fs_segment(&key.hub))
            .join(fs_segment(&key.consumer_group))
    }

    /// The file holding one partition's checkpoint.
    pub fn path_for(&self, key: &CheckpointKey, partition: &str) -> PathBuf {
        self.dir_for(key)
            .join(format!("{}.json", fs_segment(partition)))
    }
}

/// Lowercase, percent-encoded, never `.`/`..`/empty.
fn fs_segment(raw: &str) -> String {
    let lower = raw.to_lowercase();
    match lower.as_str() {
        "" => "%00".to_owned(),
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        s => utf8_percent_encode(s, FILE_SEGMENT).to_string(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let parsed: FileCheckpoint =
        serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Invalid {
            what: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if parsed.version != FORMAT_VERSION {
        return Err(CheckpointError::Invalid {
            what: path.display().to_string(),
            reason: format!("unsupported format version {}", parsed.version),
        });
    }
    let mut cp = parsed.checkpoint;
    if cp.offset.as_deref() == Some("") {
        cp.offset = None;
    }
    Ok(Some(cp))
}

fn write_atomically(
    dir: &Path,
    target: &Path,
    temp: &Path,
    bytes: &[u8],
) -> Result<(), CheckpointError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let result = (|| {
        let mut f = fs::File::create(temp).map_err(io_err(temp))?;
        f.write_all(bytes).map_err(io_err(temp))?;
        f.sync_all().map_err(io_err(temp))?;
        drop(f);
        fs::rename(temp, target).map_err(io_err(target))?;
        let d = fs::File::open(dir).map_err(io_err(dir))?;
        d.sync_all().map_err(io_err(dir))
    })();
    if result.is_err() {
        // Best effort: do not leave a stray temp file behind.
        let _ = fs::remove_file(temp);
    }
    result
}

async fn blocking<T: Send + 'static>(
    what: PathBuf,
    f: impl FnOnce() -> Result<T, CheckpointError> + Send + 'static,
) -> Result<T, CheckpointError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CheckpointError::Io {
            path: what,
            source: std::io::Error::other(e.to_string()),
        })?
}

#[async_trait]
impl CheckpointStore for FileCheckpointStore {
    async fn list(&self, key: &CheckpointKey) -> Result<Vec<Checkpoint>, CheckpointError> {
        let dir = self.dir_for(key);
        blocking(dir.clone(), move || {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_err(&dir)(e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let path = entry.map_err(io_err(&dir))?.path();
                let is_json = path.extension().is_some_and(|e| e == "json");
                let is_temp = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'));
                if is_json && !is_temp {
                    if let Some(cp) = read_checkpoint(&path)? {
                        out.push(cp);
                    }
                }
            }
            out.sort_by(|a, b| a.partition.cmp(&b.partition));
            Ok(out)
        })
        .await
    }

    async fn load(
        &self,
        key: &CheckpointKey,
        partition: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        let path = self.path_for(key, partition);
        blocking(path.clone(), move || read_checkpoint(&path)).await
    }

    async fn save(
        &self,
        key: &CheckpointKey,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        let dir = self.dir_for(key);
        let target = self.path_for(key, &checkpoint.partition);
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(
            ".{}.{}.{n}.tmp",
            fs_segment(&checkpoint.partition),
            std::process::id()
        ));
        let bytes = serde_json::to_vec_pretty(&FileCheckpoint {
            version: FORMAT_VERSION,
            checkpoint: checkpoint.clone(),
        })
        .map_err(|e| CheckpointError::Invalid {
            what: target.display().to_string(),
            reason: e.to_string(),
        })?;
        blocking(target.clone(), move || {
            write_atomically(&dir, &target, &temp, &bytes)
        })
        .await
    }

    fn describe(&self) -> String {
        format!("file:{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_safe() {
        assert_eq!(fs_segment("$Default"), "%24default");
        assert_eq!(fs_segment(".."), "%2E%2E");
        assert_eq!(fs_segment("a/b"), "a%2Fb");
        assert_eq!(fs_segment("localhost:5672"), "localhost%3A5672");
        assert_eq!(
            fs_segment("NS.servicebus.windows.net"),
            "ns.servicebus.windows.net"
        );
    }
}
