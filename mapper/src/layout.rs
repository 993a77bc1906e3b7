//! The order of a record's output fields, remembered per key sequence.
//!
//! A record's output is its payload fields (flattened from the record's own members, sorted by
//! key) merged with the family's static fields (already in key order, see
//! [`FamilyPlan::static_order`]). That order depends only on the family and on the payload
//! keys in the order the record holds them, and records from one source repeat the same keys
//! in the same order record after record. So the work that compares keys is done once per
//! key sequence and kept in a per-thread table ([`Layouts`]):
//! - the payload's key order (each field is then moved once, straight into the output);
//! - for each static slot, how many sorted payload fields go before it;
//! - which sets of present static fields give a strictly ordered output (the check
//!   [`crate::mapper`] makes before it hands the fields over as a record).
//!
//! A sequence is recognised by the identity of its key texts: payload keys are `'static`
//! interned texts ([`crate::payload_keys`]), so equal addresses and lengths mean equal
//! keys. Records with a key that could not be interned, or with more than [`MAX_KEYS`]
//! payload fields, take the same steps without the table.
use std::cmp::Ordering;

use azlog_plugin_api::set_table::{mix, SetTable};
use azlog_plugin_api::{Field, Text, Value};

use crate::schema::plan::FamilyPlan;

/// Each thread's table: [`SETS`] sets of [`WAYS`] entries (1024). A direct-mapped
/// table of the same size lost a few of the ≈ 70 key sequences of the bench input to
/// collisions (which ones depends on where the interned keys were allocated), and those
/// records were laid out from scratch every time: ≈ 6 % of them, ≈ 1.5 % of the instructions
/// of `azlog-hub map`.
const SETS: usize = 256;
const WAYS: usize = 4;

/// Records with more payload fields are laid out without the table (bounds its memory).
const MAX_KEYS: usize = 256;

/// [`Slot::rank`](crate::schema::plan::Slot::rank) of the payload fields.
const PAYLOAD_RANK: u8 = 1;

/// How one key sequence of one family is laid out.
#[derive(Default)]
pub(crate) struct Layout {
    /// The mapper (see [`Layouts::get`]) and family address the entry is for.
    mapper: u64,
    family: usize,
    /// The payload keys, in record order: address and length of each `'static` text.
    keys: Vec<(usize, usize)>,
    /// The payload's record indices in key order (a stable sort).
    order: Vec<u32>,
    /// Per static slot (by [`FamilyPlan::static_order`] index): the number of sorted payload
    /// fields that go before it.
    pub(crate) before: Vec<u32>,
    /// Present-slot sets (bit `j` for static slot `j`) known to give a strictly ordered
    /// output: the first `nstrict`.
    strict: [u128; STRICT_SETS],
    nstrict: usize,
}

/// Most present-slot sets remembered per entry.
const STRICT_SETS: usize = 4;

impl Layout {
    /// Whether `present` (see [`present_bit`]) is known to give a strictly ordered output.
    pub(crate) fn known_strict(&self, present: Option<u128>) -> bool {
        present.is_some_and(|p| self.strict.iter().take(self.nstrict).any(|&s| s == p))
    }

    /// Remembers that `present` gives a strictly ordered output.
    pub(crate) fn remember_strict(&mut self, present: Option<u128>) {
        if let (Some(p), Some(slot)) = (present, self.strict.get_mut(self.nstrict)) {
            *slot = p;
            self.nstrict += 1;
        }
    }

    /// Lays out `payload` from scratch: its key order, the fields before each slot.
    fn build(&mut self, family: &FamilyPlan, payload: &[Option<Field>]) {
        self.order.clear();
        self.order.extend(0..payload.len() as u32);
        // Stable: equal keys keep record order (the later one wins when they are merged).
        self.order
            .sort_by(|&a, &b| key_of(payload, a).cmp(key_of(payload, b)));
        self.before.clear();
        let order = &self.order;
        self.before
            .extend(
                family
                    .static_order
                    .iter()
                    .zip(&family.static_keys)
                    .map(|(slot, key)| {
                        let rank = slot.rank();
                        order.partition_point(|&i| {
                            goes_before(key_of(payload, i).as_bytes(), key, rank)
                        }) as u32
                    }),
            );
        self.nstrict = 0;
    }

    /// Pushes the static field of slot `j` (key `key`, value `value`) onto `out`, after the
    /// payload fields that go before it (in key order; the first `moved` already pushed).
    #[inline]
    pub(crate) fn push_static(
        &self,
        j: usize,
        payload: &mut [Option<Field>],
        moved: &mut usize,
        out: &mut Vec<Field>,
        key: &'static str,
        value: Value,
    ) {
        let before = self.before.get(j).map_or(*moved, |&b| b as usize);
        if before > *moved {
            self.push_payload(payload, *moved..before, out);
            *moved = before;
        }
        // Keys of the plan are `'static` (interned): no copy.
        out.push(Field {
            key: Text::from_static(key),
            value,
        });
    }

    /// Pushes the payload fields that follow the last static field (see [`Layout::push_static`]).
    pub(crate) fn finish(&self, payload: &mut [Option<Field>], moved: usize, out: &mut Vec<Field>) {
        self.push_payload(payload, moved..self.order.len(), out);
    }

    /// Moves the payload fields of key ranks `ranks` onto `out`, each once.
    #[inline]
    fn push_payload(
        &self,
        payload: &mut [Option<Field>],
        ranks: std::ops::Range<usize>,
        out: &mut Vec<Field>,
    ) {
        for &i in self.order.get(ranks).unwrap_or(&[]) {
            if let Some(f) = payload.get_mut(i as usize).and_then(Option::take) {
                out.push(f);
            }
        }
    }
}

fn key_of(payload: &[Option<Field>], i: u32) -> &str {
    payload
        .get(i as usize)
        .and_then(Option::as_ref)
        .map_or("", |f| f.key.as_str())
}

/// Whether a payload field with key `payload_key` goes before the static field `key` of
/// rank `rank`: it sorts first, or the keys are equal and the static field wins (is pushed
/// later).
fn goes_before(payload_key: &[u8], key: &str, rank: u8) -> bool {
    match payload_key.cmp(key.as_bytes()) {
        Ordering::Less => true,
        Ordering::Equal => PAYLOAD_RANK < rank,
        Ordering::Greater => false,
    }
}

/// The set of present static slots of a family with `slots` of them, as [`Layout`] keeps
/// it: `Some(0)` to start with, `None` when the family has too many slots to track.
pub(crate) fn no_slot_present(slots: usize) -> Option<u128> {
    (slots <= 128).then_some(0)
}

/// Marks static slot `j` present in `set` (see [`no_slot_present`]).
#[inline]
pub(crate) fn present_bit(set: &mut Option<u128>, j: usize) {
    if let Some(bits) = set {
        *bits |= 1u128.checked_shl(j as u32).unwrap_or(0);
    }
}

/// A thread's layouts (kept with its work buffers).
#[derive(Default)]
pub(crate) struct Layouts {
    table: SetTable<Layout, SETS, WAYS>,
    /// The layout of a record the table does not serve.
    uncached: Layout,
}

impl Layouts {
    /// The layout of `payload` (the record's payload fields, in record order). `mapper`
    /// identifies the compiled plan `family` belongs to (plans of other mappers may reuse its
    /// address once it is dropped).
    pub(crate) fn get(
        &mut self,
        mapper: u64,
        family: &FamilyPlan,
        payload: &[Option<Field>],
    ) -> &mut Layout {
        let family_addr = family as *const FamilyPlan as usize;
        let cached = sequence_hash(mapper, family_addr, payload).and_then(|hash| {
            self.table.entry(
                hash,
                |entry| {
                    entry.mapper == mapper
                        && entry.family == family_addr
                        && entry.keys.len() == payload.len()
                        && entry
                            .keys
                            .iter()
                            .zip(payload.iter())
                            .all(|(&k, f)| Some(k) == f.as_ref().map(id))
                },
                |entry| {
                    entry.mapper = mapper;
                    entry.family = family_addr;
                    entry.keys.clear();
                    entry
                        .keys
                        .extend(payload.iter().map(|f| f.as_ref().map_or((0, 0), id)));
                    entry.build(family, payload);
                    true
                },
            )
        });
        match cached {
            Some(entry) => entry,
            None => {
                self.uncached.build(family, payload);
                &mut self.uncached
            }
        }
    }
}

/// The identity of a field's key: address and length of its text.
fn id(f: &Field) -> (usize, usize) {
    let k = f.key.as_str();
    (k.as_ptr() as usize, k.len())
}

/// A hash of the sequence, or `None` when the table cannot serve it (a key that is not
/// `'static`, or too many keys).
fn sequence_hash(mapper: u64, family: usize, payload: &[Option<Field>]) -> Option<u64> {
    if payload.len() > MAX_KEYS {
        return None;
    }
    let mut h = mix(mix(0, mapper), family as u64);
    for f in payload {
        let k = f.as_ref()?.key.as_static()?;
        h = mix(h, k.as_ptr() as u64 ^ ((k.len() as u64) << 48));
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::plan::Slot;

    fn fields(keys: &[&'static str]) -> Vec<Option<Field>> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| {
                Some(Field {
                    key: Text::from_static(k),
                    value: Value::Int(i as i64),
                })
            })
            .collect()
    }

    /// The payload in the layout's key order, as the mapper moves it into the output.
    fn in_order(layout: &Layout, payload: &mut [Option<Field>]) -> Vec<Field> {
        let mut out = Vec::new();
        layout.finish(payload, 0, &mut out);
        assert!(payload.iter().all(Option::is_none), "every field moved");
        out
    }

    fn mapper() -> crate::Mapper {
        crate::Mapper::builtin().expect("built-in tables")
    }

    /// Every permutation of a few keys (with a duplicate) comes out as a stable sort would
    /// order it, on the first record and from the table.
    #[test]
    fn key_order_is_a_stable_sort_also_from_the_table() {
        let m = mapper();
        let fam = &m.plan().fallback;
        let keys = ["b", "a.b", "a", "b", "c", "a.b-c"];
        let mut layouts = Layouts::default();
        let n = keys.len();
        let mut idx: Vec<usize> = (0..n).collect();
        // Heap's algorithm, iterative.
        let mut c = vec![0usize; n];
        let mut perms = vec![idx.clone()];
        let mut i = 0;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    idx.swap(0, i);
                } else {
                    idx.swap(c[i], i);
                }
                perms.push(idx.clone());
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        assert_eq!(perms.len(), 720);
        for round in 0..2 {
            for p in &perms {
                let order: Vec<&'static str> = p.iter().map(|&i| keys[i]).collect();
                let mut payload = fields(&order);
                let mut want: Vec<Field> = payload.iter().flatten().cloned().collect();
                want.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
                let got = in_order(layouts.get(7, fam, &payload), &mut payload);
                assert_eq!(got, want, "round {round}, record order {order:?}");
            }
        }
    }

    #[test]
    fn counts_before_each_static_slot_follow_key_and_rank() {
        let m = mapper();
        let fam = &m.plan().fallback;
        let payload = fields(&["azlog.family", "aaa", "event.kind", "zzz"]);
        let mut layouts = Layouts::default();
        let layout = layouts.get(1, fam, &payload);
        for (j, (slot, key)) in fam.static_order.iter().zip(&fam.static_keys).enumerate() {
            let want = payload
                .iter()
                .flatten()
                .filter(|f| {
                    f.key.as_str() < *key || (f.key.as_str() == *key && PAYLOAD_RANK < slot.rank())
                })
                .count();
            assert_eq!(layout.before[j] as usize, want, "{key}");
        }
    }

    #[test]
    fn other_mappers_and_owned_keys_do_not_hit() {
        let m = mapper();
        let fam = &m.plan().fallback;
        let mut layouts = Layouts::default();
        let a = fields(&["b", "a"]);
        layouts.get(1, fam, &a).remember_strict(Some(1));
        let b = fields(&["b", "a"]);
        assert!(layouts.get(1, fam, &b).known_strict(Some(1)));
        assert!(!layouts.get(1, fam, &b).known_strict(Some(3)));
        assert!(!layouts.get(1, fam, &b).known_strict(None));
        let mut c = fields(&["b", "a"]);
        let layout = layouts.get(2, fam, &c);
        assert!(!layout.known_strict(Some(1)));
        let sorted: Vec<String> = in_order(layout, &mut c)
            .iter()
            .map(|f| f.key.to_string())
            .collect();
        assert_eq!(sorted, ["a", "b"]);
        let mut owned = vec![
            Some(Field {
                key: Text::from("b"),
                value: Value::Int(0),
            }),
            Some(Field {
                key: Text::from("a"),
                value: Value::Int(1),
            }),
        ];
        let layout = layouts.get(2, fam, &owned);
        assert!(!layout.known_strict(Some(1)));
        assert_eq!(in_order(layout, &mut owned)[0].key.as_str(), "a");
    }

    /// Up to [`WAYS`] sequences that fall into one set stay in the table side by side (a
    /// direct-mapped table rebuilt two colliding sequences from scratch at every record);
    /// one more replaces the oldest.
    #[test]
    fn sequences_of_one_set_do_not_evict_each_other() {
        const { assert!(WAYS >= 4, "a set holds four sequences or more") };
        let m = mapper();
        let fam = &m.plan().fallback;
        let family = fam as *const FamilyPlan as usize;
        // One-key payloads of distinct `'static` keys, until WAYS + 1 of them share a set.
        let mut by_set: std::collections::HashMap<usize, Vec<Vec<Option<Field>>>> =
            Default::default();
        let same_set = (0..100_000)
            .find_map(|i| {
                let key: &'static str = Box::leak(format!("k{i}").into_boxed_str());
                let payload = fields(&[key]);
                let set =
                    SetTable::<Layout, SETS, WAYS>::set_of(sequence_hash(1, family, &payload)?);
                let group = by_set.entry(set).or_default();
                group.push(payload);
                (group.len() > WAYS).then(|| std::mem::take(group))
            })
            .expect("WAYS + 1 sequences of one set");
        let mut layouts = Layouts::default();
        // A layout that is built anew forgets what it was told.
        for payload in &same_set[..WAYS] {
            layouts.get(1, fam, payload).remember_strict(Some(1));
        }
        for round in 0..3 {
            for (i, payload) in same_set[..WAYS].iter().enumerate() {
                let kept = layouts.get(1, fam, payload).known_strict(Some(1));
                assert!(kept, "round {round}: sequence {i} was evicted");
            }
        }
        assert!(!layouts.get(1, fam, &same_set[WAYS]).known_strict(Some(1)));
        // The first one was the oldest (round robin from way 0); the rest stay. (Looked up
        // last: a miss replaces the next way.)
        for (i, payload) in same_set[..WAYS].iter().enumerate().skip(1) {
            let kept = layouts.get(1, fam, payload).known_strict(Some(1));
            assert!(
                kept,
                "sequence {i} was evicted by the one after the set's last way"
            );
        }
        assert!(!layouts.get(1, fam, &same_set[0]).known_strict(Some(1)));
    }

    #[test]
    fn static_fields_merge_with_the_payload_by_key_then_rank() {
        let m = mapper();
        let mut fam = m.plan().fallback.clone();
        // (key, slot of that rank): head 0, table 2, tail 3; sorted by key, then rank.
        let statics: [(&'static str, Slot); 8] = [
            ("azlog.family", Slot::Family),
            ("azure.x.b", Slot::Group(0)),
            ("cloud.provider", Slot::Group(1)),
            ("event.dataset", Slot::Dataset),
            ("event.ingested", Slot::Ingested),
            ("event.kind", Slot::Kind),
            ("event.kind", Slot::Group(2)),
            ("z", Slot::Created),
        ];
        fam.static_order = statics.iter().map(|s| s.1).collect();
        fam.static_keys = statics.iter().map(|s| s.0).collect();
        for round in 0..2 {
            // Payload (rank 1), in record order.
            let mut payload = fields(&["z", "event.kind", "azure.x.b", "azure.x.a"]);
            for f in payload.iter_mut().flatten() {
                f.value = Value::Int(1);
            }
            let mut layouts = Layouts::default();
            let layout = layouts.get(3, &fam, &payload);
            let mut out = Vec::new();
            let mut moved = 0;
            for (j, (key, slot)) in statics.iter().enumerate() {
                // Every other slot absent in the second round: the counts do not depend on it.
                if round == 1 && j % 2 == 1 {
                    continue;
                }
                let v = Value::Int(i64::from(slot.rank()));
                layout.push_static(j, &mut payload, &mut moved, &mut out, key, v);
            }
            layout.finish(&mut payload, moved, &mut out);
            let got: Vec<(&str, i64)> = out
                .iter()
                .map(|f| (f.key.as_str(), f.value.as_i64().unwrap_or(-1)))
                .collect();
            let all = [
                ("azlog.family", 3),
                ("azure.x.a", 1),
                ("azure.x.b", 1),
                ("azure.x.b", 2),
                ("cloud.provider", 2),
                ("event.dataset", 0),
                ("event.ingested", 3),
                ("event.kind", 0),
                ("event.kind", 1),
                ("event.kind", 2),
                ("z", 1),
                ("z", 3),
            ];
            let want: Vec<(&str, i64)> = all
                .iter()
                .copied()
                .filter(|&(k, r)| {
                    round == 0
                        || r == 1
                        || statics.iter().enumerate().any(|(j, (sk, sl))| {
                            j % 2 == 0 && *sk == k && i64::from(sl.rank()) == r
                        })
                })
                .collect();
            assert_eq!(got, want, "round {round}");
        }
    }
}
