//! Payload keys (the dotted keys [`crate::mapper`] builds from a record's own member names,
//! `azure.keyvault.properties.id`) as `'static` text, up to a fixed budget.
//!
//! The same few hundred payload keys come back record after record. Kept as `'static` text
//! they cost no allocation per record, and the ECS writer's transition cache can serve them
//! like schema keys. The key names come from the records, so the text kept is bounded: at
//! most [`BUDGET_BYTES`] of distinct keys per process, kept for its lifetime; once the
//! budget is spent, new keys are copied per record as before (known ones stay static). A
//! per-thread two-way table in front of the process-wide set makes a repeat key cost
//! one hash and one or two compares. A record whose keys collide in that table only costs the
//! shared set's lookup; no chain can grow.
use std::collections::BTreeSet;
use std::hash::Hasher;
use std::sync::Mutex;

use azlog_plugin_api::Text;

use crate::schema::fxhash::FxHasher;

/// Most bytes of distinct payload key text kept for the process lifetime.
pub const BUDGET_BYTES: usize = 1 << 20;

/// Slots of each thread's table (a power of two; 64 KiB of `&str`).
const SLOTS: usize = 4096;

/// The keys kept so far, and their total length.
static KEPT: Mutex<(BTreeSet<&'static str>, usize)> = Mutex::new((BTreeSet::new(), 0));

/// A table of recently seen payload keys (one per mapping thread, kept with its work
/// buffers): a two-way set-associative cache in front of the process-wide set.
#[derive(Default)]
pub(crate) struct RecentKeys {
    /// [`SLOTS`] entries once used; an empty slot holds "", which is only ever a hit for the
    /// empty key, correctly.
    slots: Vec<&'static str>,
    /// Lookups that missed the table and went to the shared set.
    misses: u64,
}

impl RecentKeys {
    /// `key` as text: `'static` when it is (or can still be) kept, else a copy.
    pub(crate) fn text(&mut self, key: &str) -> Text {
        if self.slots.is_empty() {
            self.slots = vec![""; SLOTS];
        }
        // Two-way: the pair of slots a key hashes to holds the two keys of that pair used
        // last (the newer first), so two keys that collide do not evict each other and go
        // to the shared set on every record.
        let at = slot_of(key.as_bytes()) & !1;
        let Some(pair) = self.slots.get_mut(at..at + 2) else {
            return Text::from(key);
        };
        if pair[0] == key {
            return Text::from_static(pair[0]);
        }
        if pair[1] == key {
            pair.swap(0, 1);
            return Text::from_static(pair[0]);
        }
        self.misses += 1;
        match keep(key) {
            Some(kept) => {
                pair[1] = pair[0];
                pair[0] = kept;
                Text::from_static(kept)
            }
            None => Text::from(key),
        }
    }
}

/// The process-wide `'static` copy of `key`, made if the budget allows.
fn keep(key: &str) -> Option<&'static str> {
    // A poisoned lock only means another thread panicked while inserting; the set and the
    // count are updated together after the leak, so they are consistent.
    let mut kept = KEPT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    keep_in(&mut kept, key, BUDGET_BYTES)
}

/// [`keep`] on a given set and byte count, with a given budget.
fn keep_in(
    (set, bytes): &mut (BTreeSet<&'static str>, usize),
    key: &str,
    budget: usize,
) -> Option<&'static str> {
    if let Some(&hit) = set.get(key) {
        return Some(hit);
    }
    if *bytes + key.len() > budget {
        return None;
    }
    let leaked: &'static str = Box::leak(key.to_owned().into_boxed_str());
    set.insert(leaked);
    *bytes += key.len();
    Some(leaked)
}

/// The table slot of a key.
fn slot_of(key: &[u8]) -> usize {
    let mut h = FxHasher::default();
    h.write(key);
    (h.finish() >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The bytes of payload key text kept so far (for tests and diagnostics).
pub fn kept_bytes() -> usize {
    KEPT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_key(key: &str) -> Text {
        thread_local! {
            static RECENT: std::cell::RefCell<RecentKeys> = Default::default();
        }
        RECENT.with(|r| r.borrow_mut().text(key))
    }

    #[test]
    fn repeated_keys_are_one_static_text() {
        let a = payload_key("azure.test.properties.repeated_key");
        let b = payload_key(&String::from("azure.test.properties.repeated_key"));
        assert!(a.is_static() && b.is_static());
        assert_eq!(a.as_str().as_ptr(), b.as_str().as_ptr());
        assert_eq!(a, "azure.test.properties.repeated_key");
        let e = payload_key("");
        assert_eq!(e, "");
    }

    #[test]
    fn keys_colliding_in_the_table_stay_correct() {
        // Far more keys than slots: every lookup gives back exactly the text asked for.
        let keys: Vec<String> = (0..3 * SLOTS)
            .map(|i| format!("azure.collide.{i}"))
            .collect();
        for _ in 0..2 {
            for k in &keys {
                assert_eq!(payload_key(k), k.as_str());
            }
        }
    }

    #[test]
    fn two_keys_of_one_slot_do_not_evict_each_other() {
        let key = |i: usize| format!("azure.pair.properties.k{i}");
        let a = key(0);
        let b = (1..100_000)
            .map(key)
            .find(|k| slot_of(k.as_bytes()) == slot_of(a.as_bytes()))
            .expect("a key of the same slot");
        let mut recent = RecentKeys::default();
        for _ in 0..10 {
            assert_eq!(recent.text(&a), a.as_str());
            assert_eq!(recent.text(&b), b.as_str());
        }
        // Each key went to the shared set once, the first time it was seen.
        assert_eq!(recent.misses, 2);
        assert!(recent.text(&a).is_static() && recent.text(&b).is_static());
    }

    #[test]
    fn the_budget_bounds_the_text_kept() {
        // A private set with a 100-byte budget (the process-wide one is left alone).
        let mut kept = (BTreeSet::new(), 0);
        let a = keep_in(&mut kept, &"a".repeat(60), 100);
        assert!(a.is_some());
        assert_eq!(keep_in(&mut kept, &"b".repeat(41), 100), None);
        let c = keep_in(&mut kept, &"c".repeat(40), 100);
        assert!(c.is_some());
        assert_eq!(kept.1, 100);
        // Known keys still come back when the budget is spent, as the same text.
        assert_eq!(keep_in(&mut kept, &"a".repeat(60), 100), a);
        assert_eq!(keep_in(&mut kept, "d", 100), None);
        assert!(kept_bytes() <= BUDGET_BYTES);
    }
}
