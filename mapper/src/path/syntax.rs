//! The path syntax of schema tables: `a.b.c` walks objects, `a[0]` indexes arrays,
//! `a["key.with.dots"]` quotes a key, `$json` / `$xml` parse an embedded document.
use thiserror::Error;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// Object member (exact, then ASCII case-insensitive lookup).
    Key(String),
    /// Array element.
    Index(usize),
    /// The current value is a string holding JSON: continue inside the parsed document.
    Json,
    /// The current value is a string holding Windows event XML: continue inside its tree.
    Xml,
}

/// Why a path does not parse.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("bad path `{path}`: {reason}")]
pub struct PathError {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses a path into its segments.
pub fn parse_path(path: &str) -> Result<Vec<Seg>, PathError> {
    let err = |reason: &str| PathError {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let bytes = path.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    // Whether a `.` or `[` must come next (after a segment) or a key must (at the start / after `.`).
    let mut need_key = true;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if need_key {
                    return Err(err("empty segment"));
                }
                need_key = true;
                i += 1;
                if i == bytes.len() {
                    return Err(err("ends with `.`"));
                }
            }
            b'[' => {
                if segs.is_empty() && need_key && i == 0 {
                    // `["a.b"]` at the start is allowed: a quoted first key.
                } else if need_key {
                    return Err(err("`[` after `.`"));
                }
                i += 1;
                if bytes.get(i) == Some(&b'"') {
                    i += 1;
                    let mut key = String::new();
                    loop {
                        match bytes.get(i) {
                            None => return Err(err("unterminated quoted key")),
                            Some(b'"') => break,
                            Some(b'\\') => match bytes.get(i + 1) {
                                Some(&c @ (b'"' | b'\\')) => {
                                    key.push(c as char);
                                    i += 2;
                                }
                                _ => return Err(err("only \\\" and \\\\ escapes in quoted keys")),
                            },
                            Some(_) => {
                                let ch =
                                    path[i..].chars().next().ok_or_else(|| err("bad UTF-8"))?;
                                key.push(ch);
                                i += ch.len_utf8();
                            }
                        }
                    }
                    i += 1; // closing quote
                    if bytes.get(i) != Some(&b']') {
                        return Err(err("expected `]` after quoted key"));
                    }
                    i += 1;
                    segs.push(Seg::Key(key));
                } else {
                    let start = i;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    if start == i || bytes.get(i) != Some(&b']') {
                        return Err(err("an index must be `[<digits>]` or `[\"key\"]`"));
                    }
                    let n: usize = path[start..i].parse().map_err(|_| err("index too large"))?;
                    i += 1;
                    segs.push(Seg::Index(n));
                }
                need_key = false;
            }
            b']' | b'"' => return Err(err("unexpected `]` or `\"` (quote keys as [\"...\"])")),
            _ => {
                if !need_key {
                    return Err(err("expected `.` or `[` between segments"));
                }
                let start = i;
                while i < bytes.len() && !matches!(bytes[i], b'.' | b'[' | b']' | b'"') {
                    i += 1;
                }
                let key = &path[start..i];
                if key.trim() != key {
                    return Err(err("whitespace around a key (quote it as [\"...\"])"));
                }
                segs.push(match key {
                    "$json" => Seg::Json,
                    "$xml" => Seg::Xml,
                    _ => Seg::Key(key.to_owned()),
                });
                need_key = false;
            }
        }
    }
    if segs.is_empty() {
        return Err(err("empty path"));
    }
    if matches!(segs[0], Seg::Json | Seg::Xml) {
        return Err(err("`$json`/`$xml` needs a value before it"));
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Seg {
        Seg::Key(s.to_owned())
    }

    #[test]
    fn parses_all_forms() {
        assert_eq!(parse_path("a.b.c").unwrap(), [k("a"), k("b"), k("c")]);
        assert_eq!(
            parse_path("Entities[0].$id").unwrap(),
            [k("Entities"), Seg::Index(0), k("$id")]
        );
        assert_eq!(
            parse_path(r#"properties.claims["http://schemas.x/claims/name"].v"#).unwrap(),
            [
                k("properties"),
                k("claims"),
                k("http://schemas.x/claims/name"),
                k("v")
            ]
        );
        assert_eq!(
            parse_path("properties.log.$json.user.username").unwrap(),
            [
                k("properties"),
                k("log"),
                Seg::Json,
                k("user"),
                k("username")
            ]
        );
        assert_eq!(
            parse_path("RawXml.$xml.System.EventID").unwrap(),
            [k("RawXml"), Seg::Xml, k("System"), k("EventID")]
        );
        assert_eq!(
            parse_path(r#"["a.b"][2][3]"#).unwrap(),
            [k("a.b"), Seg::Index(2), Seg::Index(3)]
        );
        assert_eq!(parse_path(r#"a["q\"x"]"#).unwrap(), [k("a"), k("q\"x")]);
        assert_eq!(parse_path(r#"a["$json"]"#).unwrap(), [k("a"), k("$json")]);
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "", ".a", "a.", "a..b", "a[", "a[x]", "a[1", "a[\"x]", "a.[0]", "$json.a", " a", "a]",
            "a\"b", "a[0]b",
        ] {
            assert!(parse_path(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
