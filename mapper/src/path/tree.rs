//! A borrowed JSON tree: strings without escapes point into the source text, objects keep
//! their members in source order. Parsing into it is cheaper than into `serde_json::Value`
//! (no map building, no string copies), and the mapper copies only the values it emits.
use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON value, borrowing from the text it was parsed from where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A positive integer above `i64::MAX`.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string (borrowed when it had no escapes).
    Str(Cow<'a, str>),
    /// An array.
    Array(Vec<Node<'a>>),
    /// An object, members in source order (duplicates kept; lookups find the first).
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Parses JSON text into a tree borrowing from `text`.
    ///
    /// The fast parser ([`super::fast`]) builds the tree for ordinary documents; whatever it
    /// declines (invalid JSON included) goes through serde_json, so the accepted documents,
    /// the trees and the error messages are serde_json's.
    pub fn parse(text: &'a str) -> Result<Node<'a>, serde_json::Error> {
        match super::fast::parse(text) {
            Some(node) => Ok(node),
            None => serde_json::from_str(text),
        }
    }

    /// The JSON type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::UInt(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }

    /// The string, when the node is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// True for null, `""`, `[]` and `{}`: values a `from` path skips.
    pub fn is_empty_value(&self) -> bool {
        match self {
            Node::Null => true,
            Node::Str(s) => s.is_empty(),
            Node::Array(a) => a.is_empty(),
            Node::Object(o) => o.is_empty(),
            _ => false,
        }
    }

    /// True for strings, numbers and booleans.
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Node::Null | Node::Array(_) | Node::Object(_))
    }

    /// Member lookup: exact key first, then ASCII case-insensitive.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Object(members) => lookup(members, key.as_bytes()).map(|i| &members[i].1),
            _ => None,
        }
    }

    /// [`Node::get`] with the key as bytes.
    #[inline]
    pub fn get_bytes(&self, key: &[u8]) -> Option<&Node<'a>> {
        match self {
            Node::Object(members) => lookup(members, key).map(|i| &members[i].1),
            _ => None,
        }
    }

    /// Array element lookup.
    pub fn index(&self, i: usize) -> Option<&Node<'a>> {
        match self {
            Node::Array(items) => items.get(i),
            _ => None,
        }
    }

    /// The scalar's text: strings as they are, numbers and booleans formatted; `None` for
    /// null, arrays and objects.
    pub fn scalar_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Node::Str(s) => Some(Cow::Borrowed(s.as_ref())),
            Node::Int(i) => Some(Cow::Owned(i.to_string())),
            Node::UInt(u) => Some(Cow::Owned(u.to_string())),
            Node::Float(f) => Some(Cow::Owned(format_float(*f))),
            Node::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Node::Null | Node::Array(_) | Node::Object(_) => None,
        }
    }

    /// [`Node::scalar_text`] without allocating for integers: their digits are written to
    /// `buf`.
    pub fn scalar_text_in<'s>(&'s self, buf: &'s mut [u8; 24]) -> Option<Cow<'s, str>> {
        fn digits(mut v: u64, negative: bool, buf: &mut [u8; 24]) -> Option<&str> {
            let mut i = buf.len();
            loop {
                i -= 1;
                buf[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            if negative {
                i -= 1;
                buf[i] = b'-';
            }
            std::str::from_utf8(&buf[i..]).ok()
        }
        match self {
            Node::Int(i) => digits(i.unsigned_abs(), *i < 0, buf).map(Cow::Borrowed),
            Node::UInt(u) => digits(*u, false, buf).map(Cow::Borrowed),
            _ => self.scalar_text(),
        }
    }

    /// The value as text: scalars as [`Node::scalar_text`], arrays and objects as compact
    /// JSON, null as `None`.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Node::Array(_) | Node::Object(_) => Some(Cow::Owned(self.to_json())),
            _ => self.scalar_text(),
        }
    }

    /// Compact JSON text of the node.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(64);
        self.write_json(&mut out);
        // Every piece written is UTF-8: the tree's own texts, ASCII punctuation and escapes.
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Appends compact JSON text of the node to `out`. Strings and keys go through the ECS
    /// writer's escaper ([`azlog_plugin_api::ecs::write_json_str`]: `"`, `\\`, control
    /// characters and DEL, sixteen plain bytes per step), so a value re-serialized here reads
    /// exactly as the ECS output writes strings.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use azlog_plugin_api::ecs::{write_i64, write_json_str};
        match self {
            Node::Null => out.extend_from_slice(b"null"),
            Node::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Node::Int(i) => write_i64(*i, out),
            Node::UInt(u) => out.extend_from_slice(u.to_string().as_bytes()),
            Node::Float(f) => {
                if f.is_finite() {
                    out.extend_from_slice(format_float(*f).as_bytes())
                } else {
                    out.extend_from_slice(b"null")
                }
            }
            Node::Str(s) => write_json_str(s, out),
            Node::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write_json(out);
                }
                out.push(b']');
            }
            Node::Object(members) => {
                out.push(b'{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_str(k, out);
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
        }
    }

    /// The tree as a `serde_json::Value` (objects with duplicate keys keep the last value).
    pub fn to_value(&self) -> serde_json::Value {
        use serde_json::Value as V;
        match self {
            Node::Null => V::Null,
            Node::Bool(b) => V::Bool(*b),
            Node::Int(i) => V::from(*i),
            Node::UInt(u) => V::from(*u),
            Node::Float(f) => serde_json::Number::from_f64(*f).map_or(V::Null, V::Number),
            Node::Str(s) => V::String(s.as_ref().to_owned()),
            Node::Array(items) => V::Array(items.iter().map(Node::to_value).collect()),
            Node::Object(members) => V::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.as_ref().to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// Converts a `serde_json::Value` into an owned tree.
    pub fn from_value(v: serde_json::Value) -> Node<'static> {
        match v {
            serde_json::Value::Null => Node::Null,
            serde_json::Value::Bool(b) => Node::Bool(b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Node::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Node::UInt(u)
                } else {
                    Node::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Node::Str(Cow::Owned(s)),
            serde_json::Value::Array(a) => {
                Node::Array(a.into_iter().map(Node::from_value).collect())
            }
            serde_json::Value::Object(o) => Node::Object(
                o.into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Node::from_value(v)))
                    .collect(),
            ),
        }
    }
}

/// [`Node::get`] over an object's members, as the member's index. One pass: an exact match
/// wins at once; the first case-insensitive match is kept in case no exact one follows.
/// Members whose key has another length or first letter cost one or two compares;
/// candidates of up to 16 bytes are compared inline (two overlapping loads), not through
/// `memcmp`.
fn lookup(members: &[(Cow<'_, str>, Node<'_>)], key: &[u8]) -> Option<usize> {
    let Some(&first) = key.first() else {
        return members.iter().position(|(k, _)| k.is_empty());
    };
    let first = first.to_ascii_lowercase();
    let mut folded = None;
    for (i, (k, _)) in members.iter().enumerate() {
        let k = k.as_bytes();
        if k.len() != key.len() || k[0].to_ascii_lowercase() != first {
            continue;
        }
        if same_bytes(k, key) {
            return Some(i);
        }
        if folded.is_none() && k.eq_ignore_ascii_case(key) {
            folded = Some(i);
        }
    }
    folded
}

/// `a == b` for slices of the same, non-zero length; short ones without a `memcmp` call.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word8(s: &[u8], at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    }
    fn word4(s: &[u8], at: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[at..at + 4]);
        u32::from_le_bytes(w)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8),
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        _ => a == b,
    }
}

/// Formats a float the way JSON writers do: integral values keep a `.0`.
pub fn format_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Node<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor(std::marker::PhantomData))
    }
}

struct NodeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for NodeVisitor<'a> {
    type Value = Node<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node<'a>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node<'a>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node<'a>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node<'a>, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node<'a>, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Node::Int(i),
            Err(_) => Node::UInt(v),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node<'a>, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'a>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node<'a>, E> {
        Ok(Node::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Node<'a>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(64));
        while let Some(item) = seq.next_element::<Node<'a>>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'a>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
        while let Some(key) = map.next_key_seed(KeySeed(std::marker::PhantomData))? {
            let value = map.next_value::<Node<'a>>()?;
            members.push((key, value));
        }
        Ok(Node::Object(members))
    }
}

/// Deserializes an object key, borrowing it when the source allows.
struct KeySeed<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for KeySeed<'a> {
    type Value = Cow<'a, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'a, str>, D::Error> {
        d.deserialize_str(KeyVisitor(std::marker::PhantomData))
    }
}

struct KeyVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
    type Value = Cow<'a, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_borrows_unescaped_strings() {
        let text =
            r#"{"a":"plain","b":"esc\"aped","c":[1,-2,18446744073709551615,1.5,true,null],"d":{}}"#;
        let n = Node::parse(text).unwrap();
        assert!(matches!(
            n.get("a"),
            Some(Node::Str(Cow::Borrowed("plain")))
        ));
        assert!(matches!(n.get("b"), Some(Node::Str(Cow::Owned(s))) if s == "esc\"aped"));
        let c = n.get("c").unwrap();
        assert_eq!(c.index(0), Some(&Node::Int(1)));
        assert_eq!(c.index(1), Some(&Node::Int(-2)));
        assert_eq!(c.index(2), Some(&Node::UInt(u64::MAX)));
        assert_eq!(c.index(3), Some(&Node::Float(1.5)));
        assert_eq!(c.index(6), None);
        assert!(n.get("d").unwrap().is_empty_value());
    }

    #[test]
    fn lookup_is_exact_first_then_case_insensitive() {
        let n = Node::parse(r#"{"Level":"Error","level":"4","ResourceId":"x"}"#).unwrap();
        assert_eq!(n.get("level").and_then(Node::as_str), Some("4"));
        assert_eq!(n.get("Level").and_then(Node::as_str), Some("Error"));
        assert_eq!(n.get("resourceId").and_then(Node::as_str), Some("x"));
        assert_eq!(n.get("missing"), None);
    }

    /// The inline compare sees a difference at any position, for every key length.
    #[test]
    fn lookup_compares_every_byte() {
        for len in 1..=20usize {
            let key: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            for at in 0..len {
                let mut other = key.clone().into_bytes();
                other[at] = b'_';
                let other = String::from_utf8(other).unwrap();
                let obj = Node::Object(vec![
                    (Cow::Owned(other.clone()), Node::Int(1)),
                    (Cow::Owned(key.clone()), Node::Int(2)),
                ]);
                assert_eq!(obj.get(&key), Some(&Node::Int(2)), "{key} vs {other}");
                assert_eq!(obj.get(&other), Some(&Node::Int(1)), "{other}");
                let upper = key.to_ascii_uppercase();
                assert_eq!(obj.get(&upper), Some(&Node::Int(2)), "{upper}");
            }
        }
        assert_eq!(Node::Object(vec![]).get("a"), None);
        let empty = Node::Object(vec![(Cow::Borrowed(""), Node::Null)]);
        assert_eq!(empty.get(""), Some(&Node::Null));
    }

    /// Strings and keys are escaped as the ECS writer escapes them: the short forms for `"`,
    /// `\\`, `\n`, `\r`, `\t`, `\u00xx` for other control characters and DEL; the rest as is.
    #[test]
    fn json_text_escapes_like_the_ecs_writer() {
        let n = Node::Object(vec![(
            Cow::Borrowed("k\"\u{7f}"),
            Node::Str(Cow::Borrowed("q\"b\\n\nr\rt\tc\u{1}\u{8}\u{c}d\u{7f}é€/")),
        )]);
        assert_eq!(
            n.to_json(),
            r#"{"k\"\u007f":"q\"b\\n\nr\rt\tc\u0001\u0008\u000cd\u007fé€/"}"#
        );
        assert_eq!(Node::Int(-12).to_json(), "-12");
        assert_eq!(Node::UInt(u64::MAX).to_json(), "18446744073709551615");
        assert_eq!(Node::Float(2.0).to_json(), "2.0");
        assert_eq!(Node::Float(f64::NAN).to_json(), "null");
    }

    #[test]
    fn json_text_round_trips() {
        let text = r#"{"a":[1,2.5,"x\n\"y\u0001"],"b":{"c":null,"d":false},"e":3.0}"#;
        let n = Node::parse(text).unwrap();
        let again = n.to_json();
        assert_eq!(
            again,
            r#"{"a":[1,2.5,"x\n\"y\u0001"],"b":{"c":null,"d":false},"e":3.0}"#
        );
        assert_eq!(Node::parse(&again).unwrap(), n);
    }

    #[test]
    fn scalar_text_in_a_buffer_matches() {
        let mut buf = [0u8; 24];
        for n in [
            Node::Int(0),
            Node::Int(-1),
            Node::Int(4624),
            Node::Int(i64::MIN),
            Node::Int(i64::MAX),
            Node::UInt(u64::MAX),
            Node::Float(1.5),
            Node::Bool(true),
            Node::Str(Cow::Borrowed("x")),
            Node::Null,
            Node::Array(vec![]),
        ] {
            assert_eq!(n.scalar_text_in(&mut buf), n.scalar_text(), "{n:?}");
        }
    }

    #[test]
    fn scalar_text_forms() {
        assert_eq!(Node::Int(-3).scalar_text().as_deref(), Some("-3"));
        assert_eq!(Node::Bool(true).scalar_text().as_deref(), Some("true"));
        assert_eq!(Node::Null.scalar_text(), None);
        assert_eq!(Node::Array(vec![]).text().as_deref(), Some("[]"));
    }

    #[test]
    fn from_serde_value() {
        let v: serde_json::Value = serde_json::json!({"a": {"b": [1, "x"]}});
        let n = Node::from_value(v);
        assert_eq!(n.to_json(), r#"{"a":{"b":[1,"x"]}}"#);
    }
}
