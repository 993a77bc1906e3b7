//! The broker state: hubs, their partitions and consumer groups.

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use thiserror::Error;

use crate::{
    config::{EmulatorConfig, DEFAULT_CONSUMER_GROUP},
    event::EventMessage,
    log::PartitionLog,
    readers::ReaderRegistry,
};

/// Lookup failures, reported to clients as `amqp:not-found` (or argument errors).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LookupError {
    /// No such hub.
    #[error("The messaging entity '{0}' could not be found.")]
    HubNotFound(String),
    /// No such partition in the hub.
    #[error("The specified partition '{partition}' is invalid for an EventHub partition sender or receiver. It should be between 0 and {max}.")]
    PartitionNotFound { partition: String, max: u32 },
    /// No such consumer group.
    #[error("The messaging entity '{hub}/ConsumerGroups/{consumer_group}' could not be found.")]
    ConsumerGroupNotFound { hub: String, consumer_group: String },
}

/// One event hub.
#[derive(Debug)]
pub struct Hub {
    /// Name as configured.
    pub name: String,
    /// Creation time (emulator start or first creation on disk), ms since epoch.
    pub created_ms: i64,
    /// Partition logs, index = partition id.
    pub partitions: Vec<Arc<PartitionLog>>,
    /// Receiver bookkeeping (epochs, quota).
    pub readers: Arc<ReaderRegistry>,
    round_robin: AtomicU64,
}

impl Hub {
    /// Partition log for a textual partition id.
    pub fn partition(&self, id: &str) -> Result<&Arc<PartitionLog>, LookupError> {
        id.parse::<usize>()
            .ok()
            .filter(|i| id == i.to_string())
            .and_then(|i| self.partitions.get(i))
            .ok_or_else(|| LookupError::PartitionNotFound {
                partition: id.to_string(),
                max: self.partitions.len().saturating_sub(1) as u32,
            })
    }

    /// Chooses the partition for an event sent to the hub: explicit id, else a stable hash of the
    /// partition key, else round robin.
    pub fn route(&self, partition: Option<&str>, key: Option<&str>) -> Result<usize, LookupError> {
        let n = self.partitions.len() as u64;
        match (partition, key) {
            (Some(id), _) => {
                self.partition(id)?;
                id.parse::<usize>()
                    .map_err(|_| LookupError::PartitionNotFound {
                        partition: id.to_string(),
                        max: n.saturating_sub(1) as u32,
                    })
            }
            (None, Some(key)) => Ok((fnv1a(key.as_bytes()) % n) as usize),
            (None, None) => Ok((self.round_robin.fetch_add(1, Ordering::Relaxed) % n) as usize),
        }
    }

    /// Appends events to a partition; returns the first sequence number.
    pub fn append(
        &self,
        partition: usize,
        events: Vec<(EventMessage, Option<String>)>,
    ) -> anyhow::Result<i64> {
        let log = self
            .partitions
            .get(partition)
            .with_context(|| format!("partition {partition} out of range"))?;
        log.append(events)
    }
}

/// 64-bit FNV-1a: stable across runs and platforms (Event Hubs' own hash is not published).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// All hubs and consumer groups.
#[derive(Debug)]
pub struct Broker {
    hubs: HashMap<String, Arc<Hub>>,
    consumer_groups: Vec<String>,
}

impl Broker {
    /// Builds the broker, loading persisted partitions when a data dir is configured.
    pub fn new(config: &EmulatorConfig) -> anyhow::Result<Self> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut hubs = HashMap::new();
        for spec in config.effective_hubs() {
            let mut partitions = Vec::with_capacity(spec.partitions as usize);
            let mut created_ms = now;
            for p in 0..spec.partitions {
                let log = match &config.data_dir {
                    Some(dir) => {
                        let hub_dir = dir.join(&spec.name);
                        created_ms = created_ms.min(hub_created_ms(&hub_dir).unwrap_or(now));
                        PartitionLog::persistent(config.retention, &hub_dir.join(p.to_string()))
                            .with_context(|| format!("loading {}/{p}", spec.name))?
                    }
                    None => PartitionLog::in_memory(config.retention),
                };
                partitions.push(Arc::new(log));
            }
            hubs.insert(
                spec.name.to_ascii_lowercase(),
                Arc::new(Hub {
                    name: spec.name.clone(),
                    created_ms,
                    partitions,
                    readers: Arc::new(ReaderRegistry::default()),
                    round_robin: AtomicU64::new(0),
                }),
            );
        }
        let mut consumer_groups = vec![DEFAULT_CONSUMER_GROUP.to_ascii_lowercase()];
        consumer_groups.extend(
            config
                .consumer_groups
                .iter()
                .map(|c| c.to_ascii_lowercase()),
        );
        Ok(Self {
            hubs,
            consumer_groups,
        })
    }

    /// Hub by name (case-insensitive).
    pub fn hub(&self, name: &str) -> Result<&Arc<Hub>, LookupError> {
        self.hubs
            .get(&name.to_ascii_lowercase())
            .ok_or_else(|| LookupError::HubNotFound(name.to_string()))
    }

    /// Checks that a consumer group exists (case-insensitive).
    pub fn check_consumer_group(&self, hub: &str, consumer_group: &str) -> Result<(), LookupError> {
        if self
            .consumer_groups
            .iter()
            .any(|c| c.eq_ignore_ascii_case(consumer_group))
        {
            Ok(())
        } else {
            Err(LookupError::ConsumerGroupNotFound {
                hub: hub.to_string(),
                consumer_group: consumer_group.to_string(),
            })
        }
    }
}

fn hub_created_ms(dir: &Path) -> Option<i64> {
    let modified = std::fs::metadata(dir).ok()?.created().ok()?;
    modified
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}
