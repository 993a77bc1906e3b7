//! A cache of whole ECS records' key skeletons: for one sequence of keys, every byte the ECS
//! writer emits around the values.
//!
//! Between two values the writer emits bytes that depend only on the keys (see
//! [`crate::ecs_transitions`]), and after the last value the closing braces depend only on
//! the last key. Records of one source repeat the same key sequence, so the bytes of a whole
//! sequence are kept together: one contiguous buffer read front to back, instead of one
//! transition-table slot (one cache line somewhere in 256 KiB) per key.
//!
//! A sequence is recognised by the identity of its keys (their tags: address and length of
//! a `'static` text, which never changes). Records with a key that is not `'static`, or with
//! more than [`MAX_KEYS`] keys, are written key by key as before.
//!
//! The table ([`SetTable`]) has a fixed number of entries ([`SETS`] × [`WAYS`]), each at
//! most [`MAX_KEYS`] keys long; a miss replaces the set's oldest entry.

use crate::set_table::{mix, SetTable};

/// Records with more keys, or whose skeleton is longer than [`MAX_BYTES`], are written key
/// by key. With [`SETS`] × [`WAYS`] entries this bounds the table's memory: at most
/// 512 × (1.5 KiB of tags + 6 KiB of bytes + 0.75 KiB of ends) ≈ 4.1 MiB per thread that
/// writes ECS; a typical entry (80 keys) takes ≈ 3 KiB.
pub(crate) const MAX_KEYS: usize = 192;
const MAX_BYTES: usize = 6 * 1024;

/// The table: [`SETS`] sets of [`WAYS`] entries. Output key sequences are more varied than
/// the payload's (they also depend on which fields have a value); with 64 sets of 4, the
/// ≈ 80 sequences of the bench input overfilled a set, whose records were then rebuilt
/// every time.
const SETS: usize = 64;
const WAYS: usize = 8;

/// Bytes readable past an entry's last byte, so that a segment can be copied with one
/// fixed-size copy and cut to length.
const PAD: usize = 32;

/// One key sequence's skeleton.
#[derive(Default)]
pub(crate) struct Skeleton {
    /// The keys' tags, in order.
    tags: Vec<u64>,
    /// The bytes before each key's value, then the closing bytes, back to back (then [`PAD`]
    /// zero bytes).
    pub(crate) bytes: Vec<u8>,
    /// Where each key's bytes end in `bytes` (its value goes there); the closing bytes run
    /// from the last end to `bytes.len() - PAD`.
    pub(crate) ends: Vec<u32>,
}

impl Skeleton {
    /// Writes the segments in order: the bytes before each value, then the closing bytes.
    pub(crate) fn segments(&self) -> Segments<'_> {
        Segments {
            bytes: &self.bytes,
            ends: self.ends.iter(),
            start: 0,
            close_end: self.bytes.len().saturating_sub(PAD),
        }
    }
}

/// A cursor over a skeleton's segments (see [`Skeleton::segments`]).
pub(crate) struct Segments<'s> {
    bytes: &'s [u8],
    ends: std::slice::Iter<'s, u32>,
    start: usize,
    close_end: usize,
}

impl Segments<'_> {
    /// Appends the next segment to `out` (after the last value: the closing bytes). Up to
    /// [`PAD`] bytes are copied with one fixed-size copy, then cut to length.
    #[inline]
    pub(crate) fn write_next(&mut self, out: &mut Vec<u8>) {
        let end = self.ends.next().map_or(self.close_end, |&e| e as usize);
        let start = std::mem::replace(&mut self.start, end);
        let len = end.saturating_sub(start);
        if len <= PAD {
            if let Some(block) = self.bytes.get(start..start + PAD) {
                let at = out.len();
                out.extend_from_slice(block);
                out.truncate(at + len);
                return;
            }
        }
        out.extend_from_slice(self.bytes.get(start..end).unwrap_or(&[]));
    }
}

/// A thread's skeletons.
pub(crate) struct Skeletons {
    table: SetTable<Skeleton, SETS, WAYS>,
    /// The tags of the record being written (filled by the caller, see [`Skeletons::tags`]).
    tags: Vec<u64>,
}

impl Skeletons {
    pub(crate) fn new() -> Skeletons {
        Skeletons {
            table: SetTable::default(),
            tags: Vec::new(),
        }
    }

    /// The buffer for the tags of the record's keys (emptied), which [`Skeletons::get`]
    /// looks up. A key without a tag (not `'static`) makes the record uncacheable.
    pub(crate) fn tags(&mut self) -> &mut Vec<u64> {
        self.tags.clear();
        &mut self.tags
    }

    /// The skeleton of the key sequence in [`Skeletons::tags`], built with `build` (which
    /// fills `bytes` and `ends`) when it is not cached. `None` when the sequence is empty,
    /// has more than [`MAX_KEYS`] keys, or its skeleton more than [`MAX_BYTES`] bytes.
    pub(crate) fn get(&mut self, build: impl FnOnce(&mut Skeleton)) -> Option<&Skeleton> {
        // An empty sequence is not cached: it would match the entries never built (and those
        // given up for length), whose tags are empty too.
        if self.tags.is_empty() || self.tags.len() > MAX_KEYS {
            return None;
        }
        let tags = &self.tags;
        let hash = tags.iter().fold(0, |h, &t| mix(h, t));
        let entry = self.table.entry(
            hash,
            |e| e.tags == *tags,
            |entry| {
                entry.tags.clear();
                entry.tags.extend_from_slice(tags);
                entry.bytes.clear();
                entry.ends.clear();
                build(entry);
                if entry.bytes.len() > MAX_BYTES {
                    // Too long to keep: the record is written key by key.
                    entry.tags.clear();
                    entry.bytes = Vec::new();
                    entry.ends = Vec::new();
                    return false;
                }
                entry.bytes.extend_from_slice(&[0; PAD]);
                true
            },
        )?;
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs_transitions::tag;

    fn tags_of(sk: &mut Skeletons, keys: &[&'static str]) {
        let tags = sk.tags();
        tags.extend(keys.iter().filter_map(|k| tag(k)));
    }

    fn build_from<'a>(keys: &'a [&'a str]) -> impl FnOnce(&mut Skeleton) + 'a {
        move |s: &mut Skeleton| {
            for k in keys {
                s.bytes.extend_from_slice(k.as_bytes());
                s.ends.push(s.bytes.len() as u32);
            }
            s.bytes.extend_from_slice(b"<end>");
        }
    }

    #[test]
    fn segments_and_hits() {
        let keys: [&'static str; 3] = ["a", "bb", "a-key-longer-than-the-pad-of-32-bytes"];
        let mut sk = Skeletons::new();
        let mut built = 0;
        for _ in 0..3 {
            tags_of(&mut sk, &keys);
            let s = sk
                .get(|s| {
                    built += 1;
                    build_from(&keys)(s)
                })
                .expect("cached");
            let mut out = Vec::new();
            let mut segments = s.segments();
            for _ in 0..=keys.len() {
                segments.write_next(&mut out);
                out.push(b'|');
            }
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "a|bb|a-key-longer-than-the-pad-of-32-bytes|<end>|"
            );
        }
        assert_eq!(built, 1, "built once, then served from the table");
    }

    #[test]
    fn long_sequences_are_not_cached() {
        let mut sk = Skeletons::new();
        let k: &'static str = "k";
        sk.tags()
            .extend(std::iter::repeat_n(tag(k).unwrap(), MAX_KEYS + 1));
        assert!(sk.get(|_| ()).is_none());
        sk.tags()
            .extend(std::iter::repeat_n(tag(k).unwrap(), MAX_KEYS));
        assert!(sk.get(|_| ()).is_some());
    }

    #[test]
    fn long_skeletons_are_not_kept() {
        let mut sk = Skeletons::new();
        let k: &'static str = "k";
        for len in [MAX_BYTES + 1, MAX_BYTES] {
            sk.tags().push(tag(k).unwrap());
            let kept = sk.get(|s| {
                s.bytes.resize(len, b'x');
                s.ends.push(0);
            });
            assert_eq!(kept.is_some(), len <= MAX_BYTES, "{len}");
        }
    }

    /// A sequence that differs in one key (same length, other text) is another entry.
    #[test]
    fn keys_are_compared_by_identity() {
        let a: &'static str = "same";
        let b: &'static str = Box::leak(String::from("same").into_boxed_str());
        let mut sk = Skeletons::new();
        let mut builds = 0;
        for seq in [[a, a], [a, b], [a, a]] {
            tags_of(&mut sk, &seq);
            sk.get(|s| {
                builds += 1;
                s.bytes.push(b'x');
            });
        }
        assert_eq!(builds, 2);
    }
}
