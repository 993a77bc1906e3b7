//! Severity and log level from words (`Error`, `Warning`, `High`...) or numbers (Windows
//! event levels 1–5, 0 = LogAlways).
use std::borrow::Cow;

/// `event.severity` 0–10 from a level or alert-severity word, case-insensitive.
pub fn severity_from_word(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return severity_from_number(n);
    }
    const WORDS: &[(&str, i64)] = &[
        ("critical", 10),
        ("fatal", 10),
        ("emergency", 10),
        ("alert", 9),
        ("high", 8),
        ("error", 7),
        ("err", 7),
        ("warning", 5),
        ("warn", 5),
        ("medium", 5),
        ("low", 3),
        ("informational", 2),
        ("information", 2),
        ("info", 2),
        ("notice", 2),
        ("verbose", 1),
        ("debug", 1),
        ("trace", 1),
    ];
    WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(s))
        .map(|(_, v)| *v)
}

/// `event.severity` from a Windows level number: 1–5 → 10, 7, 5, 2, 1; 0 → 2.
pub fn severity_from_number(n: i64) -> Option<i64> {
    match n {
        0 => Some(2),
        1 => Some(10),
        2 => Some(7),
        3 => Some(5),
        4 => Some(2),
        5 => Some(1),
        _ => None,
    }
}

/// `log.level` word from a level word or Windows level number. The known words come back
/// as `'static` text (emitted without allocation); others lower-cased.
pub fn log_level(s: &str) -> Option<Cow<'static, str>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<i64>() {
        return log_level_from_number(n).map(Cow::Borrowed);
    }
    let known = |w: &str| {
        Some(match w {
            "critical" | "fatal" | "emergency" => "critical",
            "error" | "err" => "error",
            "warning" | "warn" => "warning",
            "information" | "informational" | "info" => "information",
            "verbose" | "debug" | "trace" => "verbose",
            _ => return None,
        })
    };
    // The known words are short: compare them lower-cased in a stack buffer.
    let mut buf = [0u8; 16];
    if let Some(dst) = buf.get_mut(..s.len()) {
        dst.copy_from_slice(s.as_bytes());
        dst.make_ascii_lowercase();
        if let Some(w) = std::str::from_utf8(dst).ok().and_then(known) {
            return Some(Cow::Borrowed(w));
        }
    }
    Some(Cow::Owned(s.to_ascii_lowercase()))
}

/// `log.level` word from a Windows level number.
pub fn log_level_from_number(n: i64) -> Option<&'static str> {
    match n {
        0 | 4 => Some("information"),
        1 => Some("critical"),
        2 => Some("error"),
        3 => Some("warning"),
        5 => Some("verbose"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_words_and_numbers() {
        assert_eq!(severity_from_word("Critical"), Some(10));
        assert_eq!(severity_from_word("Error"), Some(7));
        assert_eq!(severity_from_word("WARNING"), Some(5));
        assert_eq!(severity_from_word("Informational"), Some(2));
        assert_eq!(severity_from_word("Information"), Some(2));
        assert_eq!(severity_from_word("verbose"), Some(1));
        assert_eq!(severity_from_word("High"), Some(8));
        assert_eq!(severity_from_word("Medium"), Some(5));
        assert_eq!(severity_from_word("Low"), Some(3));
        assert_eq!(severity_from_word("4"), Some(2));
        assert_eq!(severity_from_word(" 2 "), Some(7));
        assert_eq!(severity_from_word("0"), Some(2));
        assert_eq!(severity_from_word("9"), None);
        assert_eq!(severity_from_word("bogus"), None);
        assert_eq!(severity_from_number(1), Some(10));
        assert_eq!(severity_from_number(5), Some(1));
        assert_eq!(severity_from_number(-1), None);
    }

    #[test]
    fn log_levels() {
        assert_eq!(log_level("Informational").as_deref(), Some("information"));
        assert_eq!(log_level("Warning").as_deref(), Some("warning"));
        assert_eq!(log_level("ERROR").as_deref(), Some("error"));
        assert_eq!(log_level("Critical").as_deref(), Some("critical"));
        assert_eq!(log_level("Verbose").as_deref(), Some("verbose"));
        assert_eq!(log_level("2").as_deref(), Some("error"));
        assert_eq!(log_level("4").as_deref(), Some("information"));
        assert_eq!(log_level("0").as_deref(), Some("information"));
        assert_eq!(log_level("Audit").as_deref(), Some("audit"));
        assert_eq!(log_level("7"), None);
        assert_eq!(log_level(""), None);
    }
}
