//! The dead-letter store shared by partition readers (envelope/map failures) and sink workers
//! (permanent rejections). Synced before every checkpoint write, so a checkpoint never covers
//! a dead letter that is not on disk.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use azlog_mapper::deadletter::{DeadLetter, DeadLetterStore};
use azlog_plugin_api::Position;

/// Shared dead-letter file with per-stage counters.
pub struct DeadLetters {
    path: PathBuf,
    store: Mutex<DeadLetterStore>,
    /// Envelope failures (not JSON, truncated, oversize).
    pub envelope: AtomicU64,
    /// Mapping failures.
    pub map: AtomicU64,
    /// Permanent sink rejections.
    pub sink: AtomicU64,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("path", &self.path)
            .field("total", &self.total())
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// Dead letters appended to `path` (created on the first entry).
    pub fn new(path: &Path) -> Self {
        DeadLetters {
            path: path.to_path_buf(),
            store: Mutex::new(DeadLetterStore::new(path)),
            envelope: AtomicU64::new(0),
            map: AtomicU64::new(0),
            sink: AtomicU64::new(0),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Total entries written by this run.
    pub fn total(&self) -> u64 {
        self.envelope.load(Ordering::Relaxed)
            + self.map.load(Ordering::Relaxed)
            + self.sink.load(Ordering::Relaxed)
    }

    /// Appends one entry. `stage` is `envelope`, `map` or `sink:<name>`.
    pub fn write(
        &self,
        stage: &str,
        reason: &str,
        position: &Position,
        raw: &[u8],
    ) -> std::io::Result<()> {
        let entry = DeadLetter::new(stage, reason, position, raw);
        self.store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(&entry)?;
        let counter = match stage {
            "envelope" => &self.envelope,
            "map" => &self.map,
            _ => &self.sink,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            stage,
            reason,
            partition = %position.partition,
            offset = %position.offset,
            sequence = position.sequence,
            index = position.index,
            "record dead-lettered"
        );
        Ok(())
    }

    /// Flushes and fsyncs what was written.
    pub fn sync(&self) -> std::io::Result<()> {
        self.store.lock().unwrap_or_else(|p| p.into_inner()).sync()
    }
}
