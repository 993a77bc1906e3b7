//! A cache of the bytes the ECS writer emits between two consecutive keys.
//!
//! When the writer goes from key `prev` to key `key`, it closes the objects `prev` opened
//! that `key` does not share, writes `,`, opens `key`'s new parent objects and writes the
//! leaf name and `:`. Those bytes depend on the two keys' contents only (the open objects
//! after a key are always that key's parent segments). Records of one family repeat the
//! same key sequence, and their schema keys are `'static` texts (literals or interned), so
//! the transition between two static keys is cached, keyed by the two texts' addresses and
//! lengths. A `'static` text never changes and its memory is never reused, so equal
//! address and length mean equal content. Keys built from data (owned texts) never use the
//! cache.
//!
//! The table has a fixed size (no growth, whatever the input): a slot whose place is
//! taken by other pairs is simply overwritten.

/// Longest transition kept (the rest of a slot's cache line).
const MAX_LEN: usize = 47;

/// Slots in the table (a power of two): 256 KiB per thread that renders ECS.
const SLOTS: usize = 4096;

/// Slots tried after the home slot of a pair.
const PROBES: usize = 4;

/// One cached transition, one cache line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    /// Tag of the previous key ([`START`] at the start of a record).
    prev: u64,
    /// Tag of the key (0: the slot is empty).
    key: u64,
    len: u8,
    bytes: [u8; MAX_LEN],
}

const EMPTY: Slot = Slot {
    prev: 0,
    key: 0,
    len: 0,
    bytes: [0; MAX_LEN],
};

/// The tag of "no key written yet".
pub(crate) const START: u64 = 0;

/// The tag of a `'static` text: its address and length in one word, when both fit (an
/// address below 2^48, a length below 2^16). Never 0: a text's address is not null.
pub(crate) fn tag(s: &'static str) -> Option<u64> {
    let addr = s.as_ptr() as usize as u64;
    let len = s.len() as u64;
    (addr != 0 && addr < 1 << 48 && len < 1 << 16).then_some(addr | len << 48)
}

/// The transition table of one thread.
pub(crate) struct Transitions {
    slots: Box<[Slot]>,
}

impl Transitions {
    pub(crate) fn new() -> Transitions {
        Transitions {
            slots: vec![EMPTY; SLOTS].into_boxed_slice(),
        }
    }

    fn home(prev: u64, key: u64) -> usize {
        let h = (prev ^ key.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> (64 - SLOTS.trailing_zeros())) as usize
    }

    /// Appends the cached transition from `prev` to `key` to `out`; false when it is not
    /// cached.
    #[inline]
    pub(crate) fn write(&self, prev: u64, key: u64, out: &mut Vec<u8>) -> bool {
        let home = Transitions::home(prev, key);
        for i in 0..PROBES {
            let Some(slot) = self.slots.get((home + i) & (SLOTS - 1)) else {
                return false;
            };
            if slot.key == key && slot.prev == prev {
                // A fixed-size copy (no length-dependent branches), then cut to length.
                let at = out.len();
                out.extend_from_slice(&slot.bytes);
                out.truncate(at + usize::from(slot.len));
                return true;
            }
            if slot.key == 0 {
                return false;
            }
        }
        false
    }

    /// Caches `bytes` as the transition from `prev` to `key`; longer than [`MAX_LEN`]: not
    /// kept.
    pub(crate) fn insert(&mut self, prev: u64, key: u64, bytes: &[u8]) {
        let Ok(len) = u8::try_from(bytes.len()) else {
            return;
        };
        if bytes.len() > MAX_LEN || key == 0 {
            return;
        }
        let home = Transitions::home(prev, key);
        let at = (0..PROBES)
            .map(|i| (home + i) & (SLOTS - 1))
            .find(|&j| self.slots.get(j).is_some_and(|s| s.key == 0))
            .unwrap_or(home);
        if let Some(slot) = self.slots.get_mut(at) {
            let mut fresh = Slot {
                prev,
                key,
                len,
                bytes: [0; MAX_LEN],
            };
            fresh.bytes[..bytes.len()].copy_from_slice(bytes);
            *slot = fresh;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_bytes_come_back_and_other_pairs_miss() {
        let mut t = Transitions::new();
        let (a, b, c) = (
            tag("event.action").unwrap_or(1),
            tag("event.outcome").unwrap_or(2),
            tag("source.ip").unwrap_or(3),
        );
        let mut out = b"x".to_vec();
        assert!(!t.write(a, b, &mut out));
        t.insert(a, b, b",\"outcome\":");
        assert!(t.write(a, b, &mut out));
        assert_eq!(out, b"x,\"outcome\":");
        // The reverse pair, another pair and the start are different entries.
        assert!(!t.write(b, a, &mut out));
        assert!(!t.write(a, c, &mut out));
        assert!(!t.write(START, b, &mut out));
        assert_eq!(out, b"x,\"outcome\":");
        // Too long: not kept.
        t.insert(b, c, &[b'z'; MAX_LEN + 1]);
        assert!(!t.write(b, c, &mut out));
        t.insert(b, c, &[b'z'; MAX_LEN]);
        assert!(t.write(b, c, &mut out));
        assert_eq!(out.len(), 12 + MAX_LEN);
    }

    #[test]
    fn a_full_neighbourhood_overwrites_and_never_returns_wrong_bytes() {
        let mut t = Transitions::new();
        // Many more pairs than slots: every lookup returns either nothing or the bytes
        // inserted for exactly that pair.
        let keys: Vec<&'static str> = (0..200)
            .map(|i| &*Box::leak(format!("k{i}").into_boxed_str()))
            .collect();
        let tags: Vec<u64> = keys.iter().map(|k| tag(k).unwrap_or(0)).collect();
        for (i, &p) in tags.iter().enumerate() {
            for (j, &k) in tags.iter().enumerate() {
                t.insert(p, k, format!("{i}>{j}").as_bytes());
            }
        }
        let mut hits = 0;
        for (i, &p) in tags.iter().enumerate() {
            for (j, &k) in tags.iter().enumerate() {
                let mut out = Vec::new();
                if t.write(p, k, &mut out) {
                    assert_eq!(out, format!("{i}>{j}").as_bytes());
                    hits += 1;
                }
            }
        }
        assert!(hits > SLOTS / 2, "only {hits} of {SLOTS} slots hit");
    }
}
