//! A fast, non-cryptographic hasher for the plan's lookup tables (value maps, detection
//! index). Their keys come from the schema tables, not from records, so hash flooding is
//! not a concern; records only look keys up. Same scheme as rustc's `FxHasher`.
use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap` hasher state.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

/// Builds [`FxHasher`]s: `HashMap<K, V, FxBuildHasher>`.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn maps_work_with_it() {
        let mut m: HashMap<Box<str>, usize, FxBuildHasher> = HashMap::default();
        for (i, k) in [
            "",
            "a",
            "success",
            "succeeded",
            "administrative",
            "x".repeat(40).as_str(),
        ]
        .iter()
        .enumerate()
        {
            m.insert((*k).into(), i);
        }
        assert_eq!(m.get("succeeded"), Some(&3));
        assert_eq!(m.get(""), Some(&0));
        assert_eq!(m.get("failure"), None);
        assert_eq!(m.len(), 6);
    }
}
