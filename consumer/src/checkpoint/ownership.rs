//! Partition ownership claims: how several consumers of one hub and consumer group (azlog-hub
//! instances and the official SDK processors alike) share its partitions.
//!
//! The protocol is the official SDKs' (Python `azure-eventhub-checkpointstoreblob`, .NET
//! `BlobCheckpointStore`): one record per partition, kept next to the checkpoints, naming its
//! owner. A claim is a conditional write: it succeeds only if the record is unchanged since the
//! claimer read it (its ETag), or, for a partition never claimed, only if no record exists yet.
//! A claim older than the ownership expiry counts as released; an owner renews its claims at
//! every load-balancing round and releases them (empty owner id) when it stops.
//!
//! Stores: [`crate::checkpoint::BlobCheckpointStore`] (blob
//! `<fqns>/<hub>/<cg>/ownership/<partition>`, lowercase, metadata `ownerid`, the blob's ETag and
//! Last-Modified) and [`MemoryOwnershipStore`] (in-process, for tests and single-process runs).
use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{CheckpointError, CheckpointKey};

/// The ownership record of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// Partition id.
    pub partition: String,
    /// The owner's id; empty when released.
    pub owner_id: String,
    /// The record's ETag as last read or written; `None` for a partition never claimed (a claim
    /// then succeeds only if no record exists).
    pub etag: Option<String>,
    /// When the record was last written (ns since the Unix epoch), as the store reports it.
    pub last_modified_ns: i64,
}

/// Where ownership records are kept. Dyn-compatible: use as `Arc<dyn OwnershipStore>`.
#[async_trait]
pub trait OwnershipStore: Send + Sync + std::fmt::Debug {
    /// Every ownership record of `key`'s hub and consumer group (any order).
    async fn list_ownership(&self, key: &CheckpointKey) -> Result<Vec<Ownership>, CheckpointError>;

    /// Writes each claim (a new owner, a renewal, or a release with an empty owner id) if its
    /// record is unchanged since `etag` was read (`None`: only if there is no record yet).
    /// Returns the claims that succeeded, with their new ETag and modification time; a claim
    /// that lost the race to another writer is left out, which is not an error.
    async fn claim_ownership(
        &self,
        key: &CheckpointKey,
        claims: Vec<Ownership>,
    ) -> Result<Vec<Ownership>, CheckpointError>;

    /// Short human description for logs (never contains secrets).
    fn describe(&self) -> String;
}

/// Ownership records in memory, shared by everything holding the same store (tests, several
/// pipelines in one process).
#[derive(Debug, Default)]
pub struct MemoryOwnershipStore {
    records: Mutex<HashMap<(CheckpointKey, String), Ownership>>,
    next_etag: std::sync::atomic::AtomicU64,
}

impl MemoryOwnershipStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OwnershipStore for MemoryOwnershipStore {
    async fn list_ownership(&self, key: &CheckpointKey) -> Result<Vec<Ownership>, CheckpointError> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Ownership> = records
            .iter()
            .filter(|((k, _), _)| k == key)
            .map(|(_, o)| o.clone())
            .collect();
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    async fn claim_ownership(
        &self,
        key: &CheckpointKey,
        claims: Vec<Ownership>,
    ) -> Result<Vec<Ownership>, CheckpointError> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut won = Vec::new();
        for claim in claims {
            let slot = (key.clone(), claim.partition.clone());
            let current = records.get(&slot).and_then(|o| o.etag.clone());
            if current != claim.etag {
                continue;
            }
            let n = self
                .next_etag
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let stored = Ownership {
                etag: Some(format!("\"m{n}\"")),
                last_modified_ns: azlog_mapper::deadletter::now_ns(),
                ..claim
            };
            records.insert(slot, stored.clone());
            won.push(stored);
        }
        Ok(won)
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(p: &str, owner: &str, etag: Option<String>) -> Ownership {
        Ownership {
            partition: p.into(),
            owner_id: owner.into(),
            etag,
            last_modified_ns: 0,
        }
    }

    #[tokio::test]
    async fn claims_are_conditional_on_the_etag_read() {
        let store = MemoryOwnershipStore::new();
        let key = CheckpointKey::new("ns", "hub", "$Default");
        let won = store
            .claim_ownership(&key, vec![claim("0", "a", None), claim("1", "a", None)])
            .await
            .unwrap();
        assert_eq!(won.len(), 2);
        // A second first-claim of "0" loses: a record exists.
        let lost = store
            .claim_ownership(&key, vec![claim("0", "b", None)])
            .await
            .unwrap();
        assert!(lost.is_empty());
        // With the current ETag, b takes it over; a's renewal with the old ETag then loses.
        let listed = store.list_ownership(&key).await.unwrap();
        let zero = listed.iter().find(|o| o.partition == "0").unwrap().clone();
        let stolen = store
            .claim_ownership(&key, vec![claim("0", "b", zero.etag.clone())])
            .await
            .unwrap();
        assert_eq!(stolen.len(), 1);
        assert_ne!(stolen[0].etag, zero.etag);
        let renew = store
            .claim_ownership(&key, vec![claim("0", "a", zero.etag)])
            .await
            .unwrap();
        assert!(renew.is_empty());
        let listed = store.list_ownership(&key).await.unwrap();
        let owners: Vec<(&str, &str)> = listed
            .iter()
            .map(|o| (o.partition.as_str(), o.owner_id.as_str()))
            .collect();
        assert_eq!(owners, vec![("0", "b"), ("1", "a")]);
        // Another consumer group sees nothing.
        let other = CheckpointKey::new("ns", "hub", "other");
        assert!(store.list_ownership(&other).await.unwrap().is_empty());
    }
}
