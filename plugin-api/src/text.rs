//! [`Text`]: the ABI-stable string of record keys and string values, either a `'static`
//! borrow (schema-constant text, no allocation) or an owned [`RString`] (data).
//!
//! Readers see a `str` either way ([`Text::as_str`], `Deref`, comparisons and hashing by
//! content); only producers choose: [`Text::from_static`] for text that lives for the
//! process (literals, or schema text passed through [`intern`]), `From<String>` /
//! `From<&str>` (copies) for everything derived from data.
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Mutex;

use abi_stable::std_types::{RStr, RString};
use abi_stable::StableAbi;

use crate::short_copy::copy_short;

/// An ABI-stable string: a `'static` borrow or an owned [`RString`]. Compares, orders and
/// hashes by content (a static and an owned text with the same content are equal).
#[repr(transparent)]
#[derive(StableAbi)]
pub struct Text(Repr);

/// The representation of [`Text`] (public only because the ABI derive needs it; the field
/// of `Text` is private, so it cannot be reached).
#[doc(hidden)]
#[repr(C)]
#[derive(StableAbi)]
pub enum Repr {
    Static(RStr<'static>),
    Owned(RString),
}

impl Text {
    /// The empty text (no allocation).
    pub const fn new() -> Text {
        Text::from_static("")
    }

    /// Text that lives for the whole process: no allocation, cloning copies the pointer.
    pub const fn from_static(s: &'static str) -> Text {
        Text(Repr::Static(RStr::from_str(s)))
    }

    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s.as_str(),
            Repr::Owned(s) => s.as_str(),
        }
    }

    /// True when the text borrows `'static` memory (built by [`Text::from_static`]).
    pub fn is_static(&self) -> bool {
        matches!(self.0, Repr::Static(_))
    }

    /// The text when it borrows `'static` memory (built by [`Text::from_static`]).
    pub fn as_static(&self) -> Option<&'static str> {
        match &self.0 {
            Repr::Static(s) => Some(s.as_str()),
            Repr::Owned(_) => None,
        }
    }

    /// The text as an owned `String` (copies static text; reuses an owned buffer's text).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Static(s) => s.as_str().to_owned(),
            Repr::Owned(s) => s.into_string(),
        }
    }
}

impl Default for Text {
    fn default() -> Self {
        Text::new()
    }
}

impl Clone for Text {
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Static(s) => Text(Repr::Static(*s)),
            Repr::Owned(s) => Text(Repr::Owned(s.clone())),
        }
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Text {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that `Borrow<str>` lookups work.
        self.as_str().hash(state)
    }
}

macro_rules! eq_with {
    ($($t:ty),*) => {$(
        impl PartialEq<$t> for Text {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == AsRef::<str>::as_ref(other)
            }
        }
        impl PartialEq<Text> for $t {
            fn eq(&self, other: &Text) -> bool {
                AsRef::<str>::as_ref(self) == other.as_str()
            }
        }
    )*};
}
eq_with!(str, String, RString);

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(Repr::Owned(RString::from(s)))
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Self {
        Text::from(s.as_str())
    }
}

/// Copies: use [`Text::from_static`] for `'static` text.
impl From<&str> for Text {
    #[inline]
    fn from(s: &str) -> Self {
        Text(Repr::Owned(RString::from(copy_str(s))))
    }
}

/// `s.to_owned()`. Strings of up to 16 bytes (most values and keys read from records) are
/// assembled in a 16-byte block ([`copy_short`]) and moved whole into a 16-byte allocation,
/// without a `memcpy` call. (A second block size for up to 32 bytes ran more instructions
/// and mispredicted more branches in the mapping bench.)
#[inline]
fn copy_str(s: &str) -> String {
    let n = s.len();
    let mut block = [0u8; 16];
    if n == 0 {
        return String::new();
    }
    if !copy_short(&mut block, s.as_bytes()) {
        return s.to_owned();
    }
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&block);
    bytes.truncate(n);
    // SAFETY: `bytes` is a copy of the `n` bytes of `s`, which is UTF-8 (`copy_short` puts
    // each byte at its own position), cut at `n`.
    unsafe { String::from_utf8_unchecked(bytes) }
}

impl From<RString> for Text {
    fn from(s: RString) -> Self {
        Text(Repr::Owned(s))
    }
}

impl From<std::borrow::Cow<'_, str>> for Text {
    fn from(s: std::borrow::Cow<'_, str>) -> Self {
        Text::from(s.into_owned())
    }
}

impl From<Text> for String {
    fn from(t: Text) -> Self {
        t.into_string()
    }
}

impl From<Text> for RString {
    fn from(t: Text) -> Self {
        match t.0 {
            Repr::Static(s) => RString::from(s.as_str()),
            Repr::Owned(s) => s,
        }
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Text::from)
    }
}

/// The process-wide set of interned schema strings (see [`intern`]).
static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// Returns a `'static` copy of `s`, shared by every caller that interns the same text, for
/// use with [`Text::from_static`].
///
/// Each distinct text is leaked once and kept for the process lifetime, so the memory used
/// is bounded by the number of distinct texts ever interned: reloading the same schema
/// tables allocates nothing new. **Only feed it schema text** (table keys, constants,
/// family names, map results): never strings derived from records, which are unbounded and
/// would grow the set forever.
pub fn intern(s: &str) -> &'static str {
    // A poisoned lock only means another thread panicked while inserting; the set itself is
    // always valid (insertion of a leaked `&'static str` cannot half-happen).
    let mut set = INTERNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(&hit) = set.get(s) {
        return hit;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every length around the copy's bounds, with distinct bytes (a misplaced half shows)
    /// and multi-byte characters cut nowhere.
    #[test]
    fn copies_are_exact_at_every_length() {
        let ascii: String = (0..40).map(|i| char::from(b'A' + i as u8)).collect();
        for n in 0..=40 {
            let s = &ascii[..n];
            assert_eq!(Text::from(s).as_str(), s);
        }
        for s in [
            "é",
            "😀",
            "aé",
            "é😀b",
            "€€€€€",
            "ab😀cdé€fgh",
            "😀😀😀😀😀",
        ] {
            assert_eq!(Text::from(s).as_str(), s);
        }
    }

    #[test]
    fn static_and_owned_compare_order_and_hash_by_content() {
        let s = Text::from_static("event.action");
        let o = Text::from(String::from("event.action"));
        assert!(s.is_static() && !o.is_static());
        assert_eq!(s, o);
        assert_eq!(s, "event.action");
        assert_eq!("event.action", o);
        assert_eq!(s, String::from("event.action"));
        assert_eq!(o, RString::from("event.action"));
        assert_eq!(s.cmp(&Text::from("event.b")), Ordering::Less);
        let set: HashSet<Text> = [s.clone(), o.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(set.contains("event.action"));
        assert_eq!(s.to_string(), "event.action");
        assert_eq!(format!("{o:?}"), "\"event.action\"");
        assert_eq!(&s[..5], "event");
        assert!(s.clone().is_static());
        assert_eq!(String::from(o.clone()), "event.action");
        assert_eq!(RString::from(s), RString::from("event.action"));
        assert_eq!(Text::default(), "");
    }

    #[test]
    fn static_text_borrows_and_owned_text_copies() {
        static LIT: &str = "azure.activitylogs";
        let s = Text::from_static(LIT);
        assert_eq!(s.as_str().as_ptr(), LIT.as_ptr());
        assert_eq!(s.clone().as_str().as_ptr(), LIT.as_ptr());
        let o = Text::from(LIT);
        assert_ne!(o.as_str().as_ptr(), LIT.as_ptr());
    }

    #[test]
    fn interning_returns_one_copy_per_distinct_text() {
        let a = intern(&String::from("azure.test.interned"));
        let b = intern(&String::from("azure.test.interned"));
        assert_eq!(a, "azure.test.interned");
        assert_eq!(a.as_ptr(), b.as_ptr());
        let c = intern("azure.test.other");
        assert_ne!(a.as_ptr(), c.as_ptr());
    }

    #[test]
    fn serde_round_trip() {
        let t = Text::from_static("x\"y");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#""x\"y""#);
        let back: Text = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert!(!back.is_static());
    }
}
