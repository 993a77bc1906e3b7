//! In-process checkpoint store (tests, `--dry-run`); nothing survives a restart.

use super::{Checkpoint, CheckpointError, CheckpointKey, CheckpointStore};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// (lowercase checkpoint prefix of the key, partition) → checkpoint.
type Map = BTreeMap<(String, String), Checkpoint>;

/// Keeps checkpoints in a map keyed by (key, partition).
#[derive(Debug, Default)]
pub struct MemoryCheckpointStore {
    inner: Mutex<Map>,
}

impl MemoryCheckpointStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Map>, CheckpointError> {
        self.inner
            .lock()
            .map_err(|_| CheckpointError::Config("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl CheckpointStore for MemoryCheckpointStore {
    async fn list(&self, key: &CheckpointKey) -> Result<Vec<Checkpoint>, CheckpointError> {
        let prefix = key.checkpoint_prefix();
        Ok(self
            .lock()?
            .iter()
            .filter(|((k, _), _)| *k == prefix)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn load(
        &self,
        key: &CheckpointKey,
        partition: &str,
    ) -> Result<Option<Checkpoint>, CheckpointError> {
        Ok(self
            .lock()?
            .get(&(key.checkpoint_prefix(), partition.to_owned()))
            .cloned())
    }

    async fn save(
        &self,
        key: &CheckpointKey,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        self.lock()?.insert(
            (key.checkpoint_prefix(), checkpoint.partition.clone()),
            checkpoint.clone(),
        );
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}
