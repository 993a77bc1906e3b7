//! LEEF has no escape syntax (IBM LEEF guide), so characters that would break the structure are
//! replaced, never escaped:
//! - attribute values: the delimiter, CR and LF become the configured replacement (default a
//!   space); TAB is kept unless it is the delimiter; other C0 controls and DEL become U+FFFD.
//! - header fields: `|` becomes the replacement; CR, LF, TAB and other controls become a space.

/// Replaces structure-breaking characters in attribute values.
#[derive(Debug, Clone)]
pub struct Sanitizer {
    delimiter: char,
    replacement: String,
    /// The delimiter as a byte when it is ASCII (fast path).
    delim_byte: Option<u8>,
}

impl Sanitizer {
    /// A sanitizer for `delimiter`, replacing with `replacement`.
    pub fn new(delimiter: char, replacement: &str) -> Sanitizer {
        Sanitizer {
            delimiter,
            replacement: replacement.to_string(),
            delim_byte: u8::try_from(u32::from(delimiter)).ok().filter(u8::is_ascii),
        }
    }

    /// Appends `s` to `out` with the delimiter, CR/LF and control characters replaced.
    pub fn value(&self, s: &str, out: &mut String) {
        if self.delim_byte.is_none() && s.contains(self.delimiter) {
            for c in s.chars() {
                if c == self.delimiter {
                    out.push_str(&self.replacement);
                } else {
                    self.push_ascii_checked(c, out);
                }
            }
            return;
        }
        let delim = self.delim_byte.unwrap_or(0);
        let b = s.as_bytes();
        let mut start = 0;
        for (i, &c) in b.iter().enumerate() {
            let rep: &str = if (c == delim && delim != 0) || c == b'\r' || c == b'\n' {
                &self.replacement
            } else if c == b'\t' {
                continue;
            } else if c < 0x20 || c == 0x7f {
                "\u{FFFD}"
            } else {
                continue;
            };
            out.push_str(&s[start..i]);
            out.push_str(rep);
            start = i + 1;
        }
        out.push_str(&s[start..]);
    }

    fn push_ascii_checked(&self, c: char, out: &mut String) {
        match c {
            '\r' | '\n' => out.push_str(&self.replacement),
            '\t' => out.push('\t'),
            c if c.is_ascii_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// Appends a header field with `|` replaced and control characters turned into spaces.
pub fn sanitize_header(s: &str, replacement: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep = if c == b'|' {
            replacement
        } else if c < 0x20 || c == 0x7f {
            " "
        } else {
            continue;
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &Sanitizer, x: &str) -> String {
        let mut o = String::new();
        s.value(x, &mut o);
        o
    }

    #[test]
    fn tab_delimiter() {
        let s = Sanitizer::new('\t', " ");
        assert_eq!(v(&s, "a\tb\r\nc=d|e^f\x01"), "a b  c=d|e^f\u{FFFD}");
    }

    #[test]
    fn caret_delimiter_keeps_tabs() {
        let s = Sanitizer::new('^', "_");
        assert_eq!(v(&s, "a^b\tc\nd"), "a_b\tc_d");
    }

    #[test]
    fn non_ascii_delimiter() {
        let s = Sanitizer::new('¦', " ");
        assert_eq!(v(&s, "a¦b\nc"), "a b c");
    }

    #[test]
    fn header_pipes() {
        let mut o = String::new();
        sanitize_header("A|B\tC\nD", " ", &mut o);
        assert_eq!(o, "A B C D");
    }
}
