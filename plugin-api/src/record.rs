//! The canonical record: ECS-aligned, ABI-stable, shared by the mapper, the host and every sink.
//!
//! A record is `@timestamp` plus an ordered list of fields keyed by their dotted ECS name
//! (`event.action`, `user.name`, `azure.signinlogs.properties.app_id`, ...). The list is kept
//! sorted by key (byte order) with unique keys, so lookups are binary searches and every
//! dotted prefix forms one contiguous run, which lets [`crate::ecs`] print nested JSON in one
//! pass. No key is a dotted prefix of another key (`a.b` and `a.b.c` never coexist).
//!
//! The types are `#[repr(C)]` + `StableAbi`, so a `&[Record]` crosses the plugin boundary as
//! it is: no per-record re-serialisation.
use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;

use crate::text::Text;

/// A field value. Lists hold strings (ECS `event.category`, `event.type`, `related.ip`);
/// anything nested that the schema keeps whole travels as JSON text in [`Value::Json`].
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Text),
    List(RVec<Text>),
    /// Raw, valid JSON text (an object or array kept verbatim from the source).
    Json(Text),
}

impl Value {
    /// A string value of `'static` text (no allocation; see [`Text::from_static`]).
    pub const fn from_static(s: &'static str) -> Value {
        Value::Str(Text::from_static(s))
    }

    /// The value as a string slice, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The value as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Renders the value as flat text, for formats without nesting (CEF, LEEF).
    /// Lists are joined with `,`; JSON stays JSON text; `Null` is empty.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out);
        out
    }

    /// Appends the flat-text rendering of the value (see [`Value::to_text`]) to `out`.
    pub fn write_text(&self, out: &mut String) {
        match self {
            Value::Null => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
            Value::Float(f) => {
                use std::fmt::Write;
                let _ = write!(out, "{f}");
            }
            Value::Str(s) | Value::Json(s) => out.push_str(s),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(item);
                }
            }
        }
    }
}

/// Copies: use [`Value::from_static`] for `'static` text.
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Text::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Text::from(s))
    }
}

impl From<Text> for Value {
    fn from(s: Text) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// One field: its dotted ECS key and its value.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct Field {
    pub key: Text,
    pub value: Value,
}

impl Field {
    /// A field (`key` is copied unless it already is a [`Text`]; see [`Text::from_static`]).
    pub fn new(key: impl Into<Text>, value: Value) -> Field {
        Field {
            key: key.into(),
            value,
        }
    }
}

/// Where a record came from. Never exported to a SIEM; used for acks, checkpoints and
/// dead letters.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Default)]
pub struct Position {
    /// The source kind and name: `eventhubs:<namespace>/<hub>/<cg>`, `kafka:<topic>`,
    /// `wad:<account>/<table>`, `file:<path>`.
    pub source: RString,
    /// Partition id (Event Hubs, Kafka), PartitionKey (WAD), or empty for files.
    pub partition: RString,
    /// Offset as the source spells it (Event Hubs offsets are strings); the line number for files.
    pub offset: RString,
    /// Sequence number (Event Hubs), offset (Kafka), line number (files); -1 when unknown.
    pub sequence: i64,
    /// Index of the record inside its event's `{"records":[...]}` envelope (0 for bare records).
    pub index: u32,
}

/// The canonical record. See the module docs for the invariants of `fields`.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Default)]
pub struct Record {
    /// `@timestamp`: event time, UTC, nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// Every other field, sorted by key, unique, prefix-free.
    pub fields: RVec<Field>,
    /// `event.original`: the raw JSON of the record as it arrived (after sanitizing).
    pub original: RString,
    /// Source position; never exported.
    pub position: Position,
}

impl Record {
    /// Looks a field up by its dotted key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields
            .binary_search_by(|f| f.key.as_str().cmp(key))
            .ok()
            .map(|i| &self.fields[i].value)
    }

    /// Looks a string field up by its dotted key.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Looks an integer field up by its dotted key.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// Builds a record from fields in any order. Later duplicates of a key replace earlier
    /// ones; a key that is a dotted prefix of another key is renamed to `<key>._value` so
    /// the nesting invariant holds.
    pub fn from_fields(
        timestamp_ns: i64,
        mut fields: Vec<Field>,
        original: RString,
        position: Position,
    ) -> Record {
        normalize_fields(&mut fields);
        Record {
            timestamp_ns,
            fields: RVec::from(fields),
            original,
            position,
        }
    }

    /// Inserts or replaces one field, keeping the invariants.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.fields.binary_search_by(|f| f.key.as_str().cmp(key)) {
            Ok(i) => self.fields[i].value = value,
            Err(_) => {
                let mut fields: Vec<Field> = std::mem::take(&mut self.fields).into_vec();
                fields.push(Field {
                    key: Text::from(key),
                    value,
                });
                normalize_fields(&mut fields);
                self.fields = RVec::from(fields);
            }
        }
    }
}

/// Sorts by key, removes duplicate keys (the last one pushed wins), and renames a key that
/// is a dotted prefix of another key to `<key>._value`.
pub fn normalize_fields(fields: &mut Vec<Field>) {
    // Already normalized input (the mapper emits sorted, unique, prefix-free fields) costs
    // one pass: each key sorts strictly before the next and the next does not extend it.
    if fields.windows(2).all(|w| {
        let (a, b) = (w[0].key.as_str(), w[1].key.as_str());
        a < b && !b.starts_with(a)
    }) {
        return;
    }
    // Stable sort keeps push order among equal keys, so the last of a run is the newest.
    if !fields
        .windows(2)
        .all(|w| w[0].key.as_str() <= w[1].key.as_str())
    {
        fields.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    }
    merge_equal_keys(fields);
    let conflicts: Vec<usize> = (0..fields.len())
        .filter(|&i| is_dotted_prefix(fields, i))
        .collect();
    if !conflicts.is_empty() {
        for i in conflicts {
            let new_key = format!("{}._value", fields[i].key.as_str());
            fields[i].key = Text::from(new_key);
        }
        fields.sort_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
    }
}

/// Merges runs of equal keys in fields sorted by key (stably: push order among equal keys),
/// keeping the last value of each run, in place.
pub fn merge_equal_keys(fields: &mut Vec<Field>) {
    // `later` is removed after its value moved into the kept `earlier` field.
    fields.dedup_by(|later, earlier| {
        if later.key == earlier.key {
            std::mem::swap(&mut later.value, &mut earlier.value);
            true
        } else {
            false
        }
    });
}

/// Whether the key of `fields[i]` is a dotted prefix of a later key (`a.b` before `a.b.c`),
/// in fields sorted by key: every key that extends it (`a.b.c`, but also `a.b-c`, whose
/// `-` sorts before `.`) follows it directly, as one run.
pub fn is_dotted_prefix(fields: &[Field], i: usize) -> bool {
    let Some(k) = fields.get(i).map(|f| f.key.as_bytes()) else {
        return false;
    };
    fields[i + 1..]
        .iter()
        .take_while(|f| f.key.as_bytes().starts_with(k))
        .any(|f| f.key.as_bytes().get(k.len()) == Some(&b'.'))
}

/// The length of the longest common prefix of `a` and `b`, compared 8 bytes at a time
/// (keys are compared this way on the hot paths: no `memcmp` call for short keys).
#[inline]
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while let (Some(x), Some(y)) = (a.get(i..i + 8), b.get(i..i + 8)) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(y.try_into().unwrap_or([1; 8]));
        if x != y {
            // The lowest differing byte is the first one in the text.
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(k: &str, v: Value) -> Field {
        Field {
            key: Text::from(k),
            value: v,
        }
    }

    #[test]
    fn fields_are_sorted_unique_and_prefix_free() {
        let r = Record::from_fields(
            0,
            vec![
                f("user.name", "b".into()),
                f("event.action", "x".into()),
                f("user.name", "c".into()),
                f("a.b", 1.into()),
                f("a.b.c", 2.into()),
            ],
            RString::new(),
            Position::default(),
        );
        let keys: Vec<&str> = r.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a.b._value", "a.b.c", "event.action", "user.name"]);
        assert_eq!(r.get_str("user.name"), Some("c"));
        assert_eq!(r.get_i64("a.b._value"), Some(1));
        assert_eq!(r.get("missing"), None);
    }

    #[test]
    fn prefix_conflicts_are_found_past_keys_that_sort_between() {
        // `a.b-c` sorts between `a.b` and `a.b.c` (`-` < `.`): `a.b` still conflicts.
        let r = Record::from_fields(
            0,
            vec![
                f("a.b", 1.into()),
                f("a.b-c", 2.into()),
                f("a.b.c", 3.into()),
                f("a.bc", 4.into()),
            ],
            RString::new(),
            Position::default(),
        );
        let keys: Vec<&str> = r.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a.b-c", "a.b._value", "a.b.c", "a.bc"]);
        // Sorted, unique and prefix-free input stays as it is.
        let clean = vec![f("a", 1.into()), f("ab", 2.into()), f("b.c", 3.into())];
        let r = Record::from_fields(0, clean.clone(), RString::new(), Position::default());
        assert_eq!(r.fields.to_vec(), clean);
    }

    #[test]
    fn last_of_many_duplicates_wins_sorted_or_not() {
        for fields in [
            vec![
                f("a", 1.into()),
                f("b", 2.into()),
                f("b", 3.into()),
                f("b", 4.into()),
                f("c", 5.into()),
            ],
            vec![
                f("b", 2.into()),
                f("c", 5.into()),
                f("b", 3.into()),
                f("a", 1.into()),
                f("b", 4.into()),
            ],
        ] {
            let r = Record::from_fields(0, fields, RString::new(), Position::default());
            let kv: Vec<(&str, i64)> = r
                .fields
                .iter()
                .map(|f| (f.key.as_str(), f.value.as_i64().unwrap()))
                .collect();
            assert_eq!(kv, [("a", 1), ("b", 4), ("c", 5)]);
        }
    }

    #[test]
    fn set_inserts_and_replaces() {
        let mut r = Record::default();
        r.set("b", "1".into());
        r.set("a", "2".into());
        r.set("b", "3".into());
        let keys: Vec<&str> = r.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(r.get_str("b"), Some("3"));
    }

    #[test]
    fn text_rendering() {
        assert_eq!(
            Value::List(RVec::from(vec![Text::from("a"), Text::from_static("b")])).to_text(),
            "a,b"
        );
        assert_eq!(Value::Int(-5).to_text(), "-5");
        assert_eq!(Value::Null.to_text(), "");
    }
}
