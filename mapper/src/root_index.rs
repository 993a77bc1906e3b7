//! The plan's root keys by their ASCII-case-folded text, so that a record's root members are
//! matched to the root keys in one pass over the members.
//!
//! A record's root member for a plan root key is the first member whose key is the same
//! bytes, else the first whose key is equal ignoring ASCII case (as [`crate::path::Node::get`]
//! finds it). Before, each root key a record's paths named was looked up on first use: a scan
//! of the members, behind a bit filter for absent keys. Now each member's key is hashed once,
//! and the root keys it stands for (all the plan's root keys equal to it ignoring case) take
//! it, exactly matching ones first. A root key that no member took is absent, with no scan.
use std::cell::Cell;
use std::collections::HashMap;

use crate::path::tree::same_bytes;
use crate::path::Node;

/// Set on a filled slot's member index when the member's key is the root key's exact bytes
/// (an exact match later in the record replaces a folded one, not the reverse).
const EXACT: u32 = 1 << 31;

/// The plan's root keys, grouped by folded text, in an open-addressed table.
#[derive(Debug, Default, Clone)]
pub struct RootIndex {
    /// A power of two long, at most half full.
    slots: Vec<Slot>,
    /// The root key ids of every group, each group's contiguous.
    ids: Vec<u32>,
    /// Every root key's text, one after the other (one block of memory to read).
    text: Vec<u8>,
    /// Each root key's span of `text`, by id (the exact test).
    spans: Vec<(u32, u32)>,
}

/// One group of root keys equal ignoring ASCII case, with what a lookup reads in one place.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    hash: u32,
    /// The span of the group's first key in [`RootIndex::text`] (most members match it
    /// exactly; the group's other keys differ from it only in case).
    off: u32,
    len: u32,
    /// Range of [`RootIndex::ids`]; `count` 0 marks an empty slot.
    from: u32,
    count: u32,
}

impl RootIndex {
    /// The index of `keys` (root key id = position).
    pub fn new<K: AsRef<str>>(keys: &[K]) -> RootIndex {
        let mut index = RootIndex::default();
        for k in keys {
            let k = k.as_ref().as_bytes();
            let off = u32::try_from(index.text.len()).unwrap_or(u32::MAX);
            index.text.extend_from_slice(k);
            index
                .spans
                .push((off, u32::try_from(k.len()).unwrap_or(u32::MAX)));
        }
        let mut groups: Vec<Vec<u32>> = Vec::new();
        let mut group_of: HashMap<Vec<u8>, usize> = HashMap::new();
        for (id, k) in keys.iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            let folded = k.as_ref().as_bytes().to_ascii_lowercase();
            match group_of.get(&folded).and_then(|&g| groups.get_mut(g)) {
                Some(ids) => ids.push(id),
                None => {
                    group_of.insert(folded, groups.len());
                    groups.push(vec![id]);
                }
            }
        }
        let size = (groups.len() * 2).next_power_of_two().max(16);
        index.slots = vec![Slot::default(); size];
        for ids in groups {
            let Some(&first) = ids.first() else {
                continue;
            };
            let h = hash(index.key(first));
            let mut at = h as usize & (size - 1);
            while index.slots[at].count != 0 {
                at = (at + 1) & (size - 1);
            }
            let (off, len) = index.spans.get(first as usize).copied().unwrap_or((0, 0));
            index.slots[at] = Slot {
                hash: h,
                off,
                len,
                from: u32::try_from(index.ids.len()).unwrap_or(u32::MAX),
                count: u32::try_from(ids.len()).unwrap_or(0),
            };
            index.ids.extend(ids);
        }
        index
    }

    /// The text of root key `id`.
    #[inline]
    fn key(&self, id: u32) -> &[u8] {
        let (off, len) = self.spans.get(id as usize).copied().unwrap_or((0, 0));
        self.text
            .get(off as usize..off as usize + len as usize)
            .unwrap_or(&[])
    }

    /// The root key ids `key` stands for (equal ignoring ASCII case), and whether `key` is
    /// the first one's exact text.
    #[inline]
    fn ids_of(&self, key: &[u8]) -> (&[u32], bool) {
        let mask = self.slots.len().wrapping_sub(1);
        let h = hash(key);
        let mut at = h as usize & mask;
        while let Some(slot) = self.slots.get(at) {
            if slot.count == 0 {
                break;
            }
            if slot.hash == h {
                let (off, len) = (slot.off as usize, slot.len as usize);
                let first = self.text.get(off..off + len).unwrap_or(&[]);
                let exact = same_bytes(first, key);
                if exact || first.eq_ignore_ascii_case(key) {
                    let from = slot.from as usize;
                    let ids = self
                        .ids
                        .get(from..from + slot.count as usize)
                        .unwrap_or(&[]);
                    return (ids, exact);
                }
            }
            at = (at + 1) & mask;
        }
        (&[], false)
    }

    /// Stamps `roots[id]` with `generation` and the member (index + 1) that root key `id`
    /// names in `members`, for every root key some member names. Entries of other root keys
    /// keep an older generation: absent. `roots` is as long as the plan's root keys.
    pub fn fill(
        &self,
        members: &[(std::borrow::Cow<'_, str>, Node<'_>)],
        roots: &[Cell<(u32, u32)>],
        generation: u32,
    ) {
        for (i, (k, _)) in members.iter().enumerate() {
            let k = k.as_bytes();
            let Ok(at) = u32::try_from(i + 1) else {
                break;
            };
            if at >= EXACT {
                break;
            }
            let (ids, first_exact) = self.ids_of(k);
            for (n, &id) in ids.iter().enumerate() {
                let Some(cell) = roots.get(id as usize) else {
                    continue;
                };
                let exact = if n == 0 {
                    first_exact
                } else {
                    same_bytes(self.key(id), k)
                };
                let (g, was) = cell.get();
                if g != generation || (exact && was & EXACT == 0) {
                    cell.set((generation, if exact { at | EXACT } else { at }));
                }
            }
        }
    }
}

/// The member index (0-based) a filled root slot holds, if it is of `generation`.
#[inline]
pub fn member_of(slot: (u32, u32), generation: u32) -> Option<usize> {
    let (g, at) = slot;
    if g != generation {
        return None;
    }
    ((at & !EXACT) as usize).checked_sub(1)
}

/// A hash of the folded key from its length and three of its bytes (keys are short; equal
/// hashes are told apart by comparing the text).
#[inline]
fn hash(key: &[u8]) -> u32 {
    let n = key.len();
    let at = |i: usize| u32::from(key.get(i).map_or(0, u8::to_ascii_lowercase));
    let h = (n as u32)
        .wrapping_mul(0x9E37_79B1)
        .wrapping_add(at(0).wrapping_mul(0x85EB_CA77))
        .wrapping_add(at(n / 2).wrapping_mul(0x27D4_EB2F))
        .wrapping_add(at(n.wrapping_sub(1)).wrapping_mul(0xC2B2_AE3D));
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// What `Node::get` gives: the first exact match, else the first ignoring case.
    fn reference(members: &[&str], key: &str) -> Option<usize> {
        members
            .iter()
            .position(|m| *m == key)
            .or_else(|| members.iter().position(|m| m.eq_ignore_ascii_case(key)))
    }

    #[test]
    fn members_resolve_as_a_lookup_would_across_records() {
        let keys = [
            "time",
            "Level",
            "level",
            "LEVEL",
            "category",
            "resourceId",
            "",
            "a",
            "b",
            "x.y",
            "properties",
            "ü",
            "k1",
            "k2",
            "k3",
            "k4",
            "k5",
            "k6",
            "k7",
            "k8",
            "k9",
            "k10",
        ];
        let index = RootIndex::new(&keys);
        let roots = vec![Cell::new((0, 0)); keys.len()];
        let records: [&[&str]; 7] = [
            &["time", "level", "Level", "category"],
            &["LEVEL", "Level", "level", "CATEGORY", "Category"],
            &["leVel", "ResourceID", "resourceId", "resourceid"],
            &["", "A", "a", "B", "x.y", "X.Y", "properties"],
            &["Ü", "ü", "k10", "K1", "k1", "k1"],
            &[],
            &["unknown", "tim", "times", "levels"],
        ];
        for (n, members) in records.iter().enumerate() {
            let generation = n as u32 + 1;
            let tree: Vec<(Cow<'_, str>, Node<'_>)> = members
                .iter()
                .map(|k| (Cow::Borrowed(*k), Node::Null))
                .collect();
            index.fill(&tree, &roots, generation);
            for (id, key) in keys.iter().enumerate() {
                assert_eq!(
                    member_of(roots[id].get(), generation),
                    reference(members, key),
                    "record {members:?}, key {key:?}"
                );
            }
        }
    }

    /// Keys that share length and sampled bytes land on the same hash and are still told
    /// apart.
    #[test]
    fn equal_hashes_are_told_apart_by_the_text() {
        let keys = ["axbcd", "aybcd", "azbcd", "AXBCD"];
        assert_eq!(hash(b"axbcd"), hash(b"aybcd"));
        let index = RootIndex::new(&keys);
        assert_eq!(index.ids_of(b"aybcd"), (&[1][..], true));
        assert_eq!(index.ids_of(b"AxBcD"), (&[0, 3][..], false));
        assert_eq!(index.ids_of(b"AXBCD"), (&[0, 3][..], false));
        assert_eq!(index.ids_of(b"axbcd"), (&[0, 3][..], true));
        assert_eq!(index.ids_of(b"awbcd"), (&[][..], false));
    }
}
