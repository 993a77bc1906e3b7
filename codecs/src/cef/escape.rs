//! CEF v27 character encoding ("Character Encoding" section of the implementation standard).
//!
//! Header fields: `\` → `\\`, `|` → `\|`; CR, LF and every other control character become a
//! space (the header has no newline escape). Extension values: `\` → `\\`, `=` → `\=`,
//! CR → `\r`, LF → `\n`; TAB is kept as is (valid CEF, accepted by strict parsers); any other C0
//! control character or DEL becomes U+FFFD (the spec has no escape for them and receivers such as
//! syslog daemons mangle or drop them). All special characters are ASCII, so copying the runs
//! between them keeps UTF-8 intact.

const PLAIN: u8 = 0;
const BACKSLASH: u8 = 1;
const PIPE: u8 = 2;
const EQUALS: u8 = 3;
const CR: u8 = 4;
const LF: u8 = 5;
const TAB: u8 = 6;
const CONTROL: u8 = 7;

const fn classes() -> [u8; 256] {
    let mut t = [PLAIN; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = CONTROL;
        i += 1;
    }
    t[0x7f] = CONTROL;
    t[b'\\' as usize] = BACKSLASH;
    t[b'|' as usize] = PIPE;
    t[b'=' as usize] = EQUALS;
    t[b'\r' as usize] = CR;
    t[b'\n' as usize] = LF;
    t[b'\t' as usize] = TAB;
    t
}

static CLASS: [u8; 256] = classes();

/// Escapes a header field value into `out`.
pub fn escape_header(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep = match CLASS[c as usize] {
            PLAIN | EQUALS => continue,
            BACKSLASH => "\\\\",
            PIPE => "\\|",
            _ => " ",
        };
        out.push_str(&s[start..i]);
        out.push_str(rep);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Escapes an extension value into `out`.
pub fn escape_extension(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep = match CLASS[c as usize] {
            PLAIN | PIPE | TAB => continue,
            BACKSLASH => "\\\\",
            EQUALS => "\\=",
            CR => "\\r",
            LF => "\\n",
            _ => "\u{FFFD}",
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

    fn h(s: &str) -> String {
        let mut o = String::new();
        escape_header(s, &mut o);
        o
    }
    fn e(s: &str) -> String {
        let mut o = String::new();
        escape_extension(s, &mut o);
        o
    }

    #[test]
    fn header_rules() {
        assert_eq!(h(r"a|b\c=d"), r"a\|b\\c=d");
        assert_eq!(h("line1\r\nline2\tx"), "line1  line2 x");
        assert_eq!(h("naïve ü"), "naïve ü");
    }

    #[test]
    fn extension_rules() {
        assert_eq!(e(r"a=b\c|d"), r"a\=b\\c|d");
        assert_eq!(e("l1\r\nl2\tt"), "l1\\r\\nl2\tt");
        assert_eq!(
            e("nul\0bell\x07del\x7f"),
            "nul\u{FFFD}bell\u{FFFD}del\u{FFFD}"
        );
        assert_eq!(e("ユーザー=名"), "ユーザー\\=名");
    }
}
