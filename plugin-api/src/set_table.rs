//! A fixed-size, set-associative table for per-thread caches of things recognised by the
//! identity of a key sequence (the mapper's payload layouts, the ECS writer's skeletons).
//!
//! `SETS` sets (a power of two) of `WAYS` entries each, allocated on first use. An entry is
//! found in the set its hash's top bits name; a miss replaces the set's ways in turn (round
//! robin), so up to `WAYS` sequences whose hashes share a set stay side by side. The table
//! never grows.

/// The table (see the module docs).
pub struct SetTable<E, const SETS: usize, const WAYS: usize> {
    /// `SETS * WAYS` entries once used; set `s` is `entries[s * WAYS..][..WAYS]`.
    entries: Vec<E>,
    /// Per set, the way that the next miss replaces.
    victim: Vec<u8>,
}

impl<E, const SETS: usize, const WAYS: usize> Default for SetTable<E, SETS, WAYS> {
    fn default() -> Self {
        SetTable {
            entries: Vec::new(),
            victim: Vec::new(),
        }
    }
}

impl<E: Default, const SETS: usize, const WAYS: usize> SetTable<E, SETS, WAYS> {
    /// The set that `hash` falls into: its top bits.
    pub fn set_of(hash: u64) -> usize {
        (hash >> (64 - SETS.trailing_zeros())) as usize
    }

    /// The entry of the set of `hash` for which `is` holds; on a miss, the set's next way,
    /// given to `fill`, which returns whether the entry may be used (false: `None`, and
    /// `fill` must leave the entry so that `is` cannot hold for it).
    pub fn entry(
        &mut self,
        hash: u64,
        is: impl Fn(&E) -> bool,
        fill: impl FnOnce(&mut E) -> bool,
    ) -> Option<&mut E> {
        if self.entries.is_empty() {
            self.entries.resize_with(SETS * WAYS, E::default);
            self.victim.resize(SETS, 0);
        }
        let set = Self::set_of(hash);
        let ways = self.entries.get_mut(set * WAYS..(set + 1) * WAYS)?;
        if let Some(way) = ways.iter().position(is) {
            return ways.get_mut(way);
        }
        let victim = self.victim.get_mut(set)?;
        let way = usize::from(*victim) % WAYS;
        *victim = ((way + 1) % WAYS) as u8;
        let entry = ways.get_mut(way)?;
        fill(entry).then_some(entry)
    }
}

/// One step of the hash of a key sequence: `h` with the next key's identity `x` mixed in
/// (start from 0 or from the other parts of the key).
#[inline]
pub fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sets of one table of 4 sets of 2: hash top bits.
    fn hash_of_set(set: u64, n: u64) -> u64 {
        (set << 62) | n
    }

    #[test]
    fn ways_of_a_set_stay_side_by_side_and_a_miss_replaces_them_in_turn() {
        let mut t: SetTable<u64, 4, 2> = SetTable::default();
        let mut fills = 0;
        let mut get = |t: &mut SetTable<u64, 4, 2>, key: u64| {
            *t.entry(
                hash_of_set(1, key),
                |&e| e == key,
                |e| {
                    fills += 1;
                    *e = key;
                    true
                },
            )
            .expect("kept")
        };
        for _ in 0..3 {
            assert_eq!(get(&mut t, 10), 10);
            assert_eq!(get(&mut t, 11), 11);
        }
        // A third key of the set replaces the first way (10); 11 stays.
        assert_eq!(get(&mut t, 12), 12);
        assert_eq!(get(&mut t, 11), 11);
        assert_eq!(get(&mut t, 10), 10);
        assert_eq!(fills, 4, "10, 11, 12, then 10 again");
    }

    #[test]
    fn a_fill_that_refuses_gives_none() {
        let mut t: SetTable<u64, 4, 2> = SetTable::default();
        assert!(t.entry(hash_of_set(0, 1), |&e| e == 7, |_| false).is_none());
        assert!(t
            .entry(
                hash_of_set(0, 1),
                |&e| e == 7,
                |e| {
                    *e = 7;
                    true
                }
            )
            .is_some());
    }
}
