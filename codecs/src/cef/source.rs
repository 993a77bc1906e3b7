//! Where a sink field takes its value from: `@timestamp` (the record time) or a dotted ECS key,
//! tried in order of preference. Shared by the CEF and LEEF field maps.
use azlog_plugin_api::{Record, Value};

use super::text::is_blank;

/// One source of a sink field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The record's `@timestamp`.
    Timestamp,
    /// A field by dotted ECS key.
    Field(String),
}

impl Source {
    /// Parses a source name as written in a sink map (`@timestamp` or a dotted key).
    pub fn parse(name: &str) -> Result<Source, String> {
        let name = name.trim();
        if name == "@timestamp" {
            return Ok(Source::Timestamp);
        }
        if name.is_empty()
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!("`{name}` is not a dotted field key"));
        }
        Ok(Source::Field(name.to_string()))
    }
}

/// A value found for a sink field.
#[derive(Debug, Clone, Copy)]
pub enum Found<'r> {
    /// The record time, epoch milliseconds.
    TimestampMs(i64),
    /// A field value (never blank).
    Value(&'r Value),
}

/// The first source in `sources` that yields a present, non-blank value.
pub fn first<'r>(record: &'r Record, sources: &[Source]) -> Option<Found<'r>> {
    sources.iter().find_map(|s| match s {
        Source::Timestamp => Some(Found::TimestampMs(
            record.timestamp_ns.div_euclid(1_000_000),
        )),
        Source::Field(key) => record.get(key).filter(|v| !is_blank(v)).map(Found::Value),
    })
}

/// A [`Source`] compiled against a [`KeyTable`]: the record time or the slot of a field key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The record's `@timestamp`.
    Timestamp,
    /// The value of the key in this slot of the table.
    Key(u32),
}

/// The distinct field keys a sink map reads, each with a slot, kept sorted by key (byte order,
/// as a record's fields are) so that one merge pass over a record's fields finds all of them:
/// a record is read once per encode instead of one binary search per key tried.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    /// `(key, slot)`, sorted by key.
    sorted: Vec<(String, u32)>,
}

/// Slots resolved on the stack; a table with more keys resolves into a heap buffer.
const STACK_SLOTS: usize = 96;

impl KeyTable {
    /// The slot of `key`, added when new.
    pub fn slot(&mut self, key: &str) -> u32 {
        match self.sorted.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => self.sorted[i].1,
            Err(i) => {
                let slot = u32::try_from(self.sorted.len()).unwrap_or(u32::MAX);
                self.sorted.insert(i, (key.to_string(), slot));
                slot
            }
        }
    }

    /// Compiles sources into slots of this table.
    pub fn compile(&mut self, sources: &[Source]) -> Vec<Slot> {
        sources
            .iter()
            .map(|s| match s {
                Source::Timestamp => Slot::Timestamp,
                Source::Field(key) => Slot::Key(self.slot(key)),
            })
            .collect()
    }

    /// Number of keys (slots).
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when the table has no keys.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Resolves every key of the table in `record` (one merge pass) and calls `f` with the
    /// result.
    pub fn with_lookup<'r, T>(
        &self,
        record: &'r Record,
        f: impl FnOnce(&Lookup<'_, 'r>) -> T,
    ) -> T {
        let mut stack: [Option<&'r Value>; STACK_SLOTS] = [None; STACK_SLOTS];
        let mut heap: Vec<Option<&'r Value>> = Vec::new();
        let values: &mut [Option<&'r Value>] = if self.sorted.len() <= STACK_SLOTS {
            &mut stack[..self.sorted.len()]
        } else {
            heap.resize(self.sorted.len(), None);
            &mut heap
        };
        self.resolve(record, values);
        f(&Lookup {
            timestamp_ms: record.timestamp_ns.div_euclid(1_000_000),
            values,
        })
    }

    /// `values[slot]` = the record's value of each key (`values` is as long as the table).
    fn resolve<'r>(&self, record: &'r Record, values: &mut [Option<&'r Value>]) {
        let fields = &record.fields;
        let (mut i, mut j) = (0, 0);
        while let (Some(field), Some((key, slot))) = (fields.get(i), self.sorted.get(j)) {
            match cmp_key(field.key.as_str().as_bytes(), key.as_bytes()) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    if let Some(v) = values.get_mut(*slot as usize) {
                        *v = Some(&field.value);
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
    }
}

/// Byte-order comparison; the first eight bytes compared as one word decide most pairs of
/// keys without a `memcmp` call.
#[inline]
fn cmp_key(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

/// A record's values for the keys of a [`KeyTable`] (see [`KeyTable::with_lookup`]).
pub struct Lookup<'a, 'r> {
    timestamp_ms: i64,
    values: &'a [Option<&'r Value>],
}

impl<'r> Lookup<'_, 'r> {
    /// The value in `slot`, when the record has the key.
    pub fn get(&self, slot: u32) -> Option<&'r Value> {
        self.values.get(slot as usize).copied().flatten()
    }

    /// The first slot in `slots` that yields a present, non-blank value (as [`first`] does
    /// for sources).
    pub fn first(&self, slots: &[Slot]) -> Option<Found<'r>> {
        slots.iter().find_map(|s| match s {
            Slot::Timestamp => Some(Found::TimestampMs(self.timestamp_ms)),
            Slot::Key(k) => self.get(*k).filter(|v| !is_blank(v)).map(Found::Value),
        })
    }
}

/// Parses a list of source names, with the field name for error messages.
pub fn parse_all(names: &[String], what: &str) -> Result<Vec<Source>, String> {
    if names.is_empty() {
        return Err(format!(
            "{what}: `from` must name at least one source field"
        ));
    }
    names
        .iter()
        .map(|n| Source::parse(n).map_err(|e| format!("{what}: {e}")))
        .collect()
}
