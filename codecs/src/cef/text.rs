//! Flat-text rendering of record values for the line formats (CEF, LEEF): values are streamed
//! through an escaping/sanitizing function straight into the output buffer, with documented
//! maximum lengths enforced by a visible truncation marker. No per-value allocation.
use azlog_plugin_api::Value;

/// The default truncation marker: one visible character (U+2026 HORIZONTAL ELLIPSIS).
pub const DEFAULT_TRUNCATION_MARKER: &str = "\u{2026}";

/// Calls `f` with the pieces that make up the flat text of `v` (lists joined with `,`).
/// Strings are trimmed of leading/trailing whitespace: line formats cannot carry them reliably.
pub fn for_each_piece(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::Null => {}
        Value::Bool(b) => f(if *b { "true" } else { "false" }),
        Value::Int(i) => f(itoa::Buffer::new().format(*i)),
        Value::Float(x) => {
            if x.is_finite() {
                f(ryu::Buffer::new().format_finite(*x))
            }
        }
        Value::Str(s) | Value::Json(s) => f(s.trim()),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f(",");
                }
                f(item);
            }
        }
    }
}

/// True when the value renders to no text at all (null, empty or blank string, empty list).
pub fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Str(s) | Value::Json(s) => s.trim().is_empty(),
        Value::List(items) => items.iter().all(|s| s.is_empty()),
        Value::Float(x) => !x.is_finite(),
        Value::Bool(_) | Value::Int(_) => false,
    }
}

/// Writes the flat text of `v` through `escape` into `out`, keeping at most `max_chars`
/// characters (Unicode scalar values) of the *unescaped* text. When the value is longer, it is
/// cut so that the kept text plus `marker` is exactly `max_chars` long, and `marker` is appended.
/// Returns true when the value was truncated.
pub fn write_limited(
    v: &Value,
    max_chars: Option<u32>,
    marker: &str,
    escape: &mut impl FnMut(&str, &mut String),
    out: &mut String,
) -> bool {
    let Some(max) = max_chars.map(|m| m as usize) else {
        for_each_piece(v, &mut |p| escape(p, out));
        return false;
    };
    let mut total = 0usize;
    for_each_piece(v, &mut |p| total += char_count(p));
    if total <= max {
        for_each_piece(v, &mut |p| escape(p, out));
        return false;
    }
    let marker_chars = char_count(marker);
    let mut budget = max.saturating_sub(marker_chars);
    for_each_piece(v, &mut |p| {
        if budget == 0 {
            return;
        }
        let cut = byte_index_of_char(p, budget);
        escape(&p[..cut], out);
        budget -= char_count(&p[..cut]);
    });
    if marker_chars <= max {
        escape(marker, out);
    }
    true
}

/// Same as [`write_limited`] for a plain string (header fields).
pub fn write_str_limited(
    s: &str,
    max_chars: Option<u32>,
    marker: &str,
    escape: &mut impl FnMut(&str, &mut String),
    out: &mut String,
) -> bool {
    let s = s.trim();
    match max_chars.map(|m| m as usize) {
        Some(max) if char_count(s) > max => {
            let marker_chars = char_count(marker);
            let keep = max.saturating_sub(marker_chars);
            escape(&s[..byte_index_of_char(s, keep)], out);
            if marker_chars <= max {
                escape(marker, out);
            }
            true
        }
        _ => {
            escape(s, out);
            false
        }
    }
}

/// Number of Unicode scalar values in `s` (fast path for ASCII).
pub fn char_count(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// Byte index just after the first `n` characters of `s` (or `s.len()`).
fn byte_index_of_char(s: &str, n: usize) -> usize {
    if s.is_ascii() {
        return n.min(s.len());
    }
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi_stable::std_types::RVec;
    use azlog_plugin_api::Text;

    fn plain(s: &str, out: &mut String) {
        out.push_str(s);
    }

    #[test]
    fn truncates_by_characters_with_marker() {
        let mut out = String::new();
        let v = Value::Str(Text::from("日本語のユーザー名"));
        assert!(write_limited(&v, Some(5), "…", &mut plain, &mut out));
        assert_eq!(out, "日本語の…");
        out.clear();
        assert!(!write_limited(&v, Some(9), "…", &mut plain, &mut out));
        assert_eq!(out, "日本語のユーザー名");
    }

    #[test]
    fn truncates_lists_across_pieces() {
        let mut out = String::new();
        let v = Value::List(RVec::from(vec![Text::from("abc"), Text::from("def")]));
        assert!(write_limited(&v, Some(6), "…", &mut plain, &mut out));
        assert_eq!(out, "abc,d…");
    }

    #[test]
    fn blank_values() {
        assert!(is_blank(&Value::Str(Text::from("  "))));
        assert!(is_blank(&Value::Null));
        assert!(!is_blank(&Value::Int(0)));
    }
}
