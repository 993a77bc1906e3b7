//! Receiver bookkeeping per (consumer group, partition): owner level (`com.microsoft:epoch`)
//! and the limit of 5 concurrent non-epoch readers, with the service's rules:
//! - a receiver with epoch E disconnects every current receiver with epoch <= E and every
//!   non-epoch receiver (`amqp:link:stolen`); it is refused when a receiver with a higher epoch
//!   exists;
//! - a non-epoch receiver is refused while an epoch receiver exists;
//! - at most [`MAX_NON_EPOCH_READERS`] non-epoch receivers (`amqp:resource-limit-exceeded`).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::oneshot;

/// Non-epoch readers allowed per partition and consumer group.
pub const MAX_NON_EPOCH_READERS: usize = 5;

/// Why a receiver could not attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderRejected {
    /// A receiver with a higher owner level holds the partition.
    HigherEpochExists {
        existing: i64,
        requested: Option<i64>,
    },
    /// Already [`MAX_NON_EPOCH_READERS`] non-epoch receivers.
    QuotaExceeded,
}

/// Sent to a receiver that a newer owner replaced.
#[derive(Debug, Clone)]
pub struct Kicked {
    /// Human-readable reason, in the service's words.
    pub description: String,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    name: String,
    epoch: Option<i64>,
    kick: Option<oneshot::Sender<Kicked>>,
}

type Key = (String, String);

/// Registry shared by all receivers of a hub.
#[derive(Debug, Default)]
pub struct ReaderRegistry {
    slots: Mutex<HashMap<Key, Vec<Slot>>>,
    next_id: AtomicU64,
}

/// Keeps a receiver registered; unregisters on drop.
#[derive(Debug)]
pub struct ReaderGuard {
    registry: Arc<ReaderRegistry>,
    key: Key,
    id: u64,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let mut slots = self.registry.lock();
        if let Some(list) = slots.get_mut(&self.key) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                slots.remove(&self.key);
            }
        }
    }
}

impl ReaderRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a receiver, applying the epoch and quota rules. On success returns a guard and a
    /// channel that fires when a newer owner replaces this receiver.
    pub fn register(
        self: &Arc<Self>,
        consumer_group: &str,
        partition: &str,
        name: &str,
        epoch: Option<i64>,
    ) -> Result<(ReaderGuard, oneshot::Receiver<Kicked>), ReaderRejected> {
        let key = (consumer_group.to_ascii_lowercase(), partition.to_string());
        let mut slots = self.lock();
        let list = slots.entry(key.clone()).or_default();
        let max_epoch = list.iter().filter_map(|s| s.epoch).max();
        match (epoch, max_epoch) {
            (Some(e), Some(existing)) if existing > e => {
                return Err(ReaderRejected::HigherEpochExists {
                    existing,
                    requested: Some(e),
                })
            }
            (None, Some(existing)) => {
                return Err(ReaderRejected::HigherEpochExists {
                    existing,
                    requested: None,
                })
            }
            (None, None) if list.len() >= MAX_NON_EPOCH_READERS => {
                return Err(ReaderRejected::QuotaExceeded)
            }
            _ => {}
        }
        if let Some(e) = epoch {
            for mut slot in list.drain(..) {
                let description = match slot.epoch {
                    Some(old) => format!(
                        "New receiver '{name}' with higher epoch of '{e}' is created hence current \
                         receiver '{}' with epoch '{old}' is getting disconnected. If you are \
                         recreating the receiver, make sure a higher epoch is used.",
                        slot.name
                    ),
                    None => format!(
                        "New receiver '{name}' with higher epoch of '{e}' is created hence current \
                         receiver '{}' with epoch '0' is getting disconnected.",
                        slot.name
                    ),
                };
                if let Some(kick) = slot.kick.take() {
                    let _ = kick.send(Kicked { description });
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        list.push(Slot {
            id,
            name: name.to_string(),
            epoch,
            kick: Some(tx),
        });
        Ok((
            ReaderGuard {
                registry: self.clone(),
                key,
                id,
            },
            rx,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_of_five_non_epoch_readers() {
        let reg = Arc::new(ReaderRegistry::default());
        let guards: Vec<_> = (0..5)
            .map(|i| {
                reg.register("$Default", "0", &format!("r{i}"), None)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            reg.register("$default", "0", "r5", None).err(),
            Some(ReaderRejected::QuotaExceeded)
        );
        // Other partition / consumer group unaffected.
        assert!(reg.register("$Default", "1", "x", None).is_ok());
        drop(guards);
        assert!(reg.register("$Default", "0", "r6", None).is_ok());
    }

    #[test]
    fn higher_epoch_kicks_lower_and_blocks_non_epoch() {
        let reg = Arc::new(ReaderRegistry::default());
        let (_g1, mut k1) = reg.register("cg", "0", "plain", None).unwrap();
        let (_g2, mut k2) = reg.register("cg", "0", "e1", Some(1)).unwrap();
        assert!(k1.try_recv().is_ok(), "non-epoch reader kicked");
        assert!(matches!(
            reg.register("cg", "0", "low", Some(0)),
            Err(ReaderRejected::HigherEpochExists { existing: 1, .. })
        ));
        assert!(matches!(
            reg.register("cg", "0", "plain2", None),
            Err(ReaderRejected::HigherEpochExists {
                existing: 1,
                requested: None
            })
        ));
        let (_g3, _k3) = reg.register("cg", "0", "e1b", Some(1)).unwrap();
        assert!(k2.try_recv().is_ok(), "equal epoch takes over");
    }
}
