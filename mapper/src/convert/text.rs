//! Text conversions: booleans, numbers from text, user principal names, lists.

/// `true/false/1/0/yes/no` (case-insensitive).
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    const T: [&str; 4] = ["true", "1", "yes", "y"];
    const F: [&str; 4] = ["false", "0", "no", "n"];
    if T.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if F.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

/// An integer from text: `42`, `-7`, `+3`, `42.0` (integral floats only), and hexadecimal
/// `0x1a2c` / `0X1A2C` (Windows event XML writes process ids and handles that way).
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(i) = s.parse::<i64>() {
        return Some(i);
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        return u64::from_str_radix(hex, 16)
            .ok()
            .and_then(|v| i64::try_from(v).ok());
    }
    let f = parse_float(s)?;
    float_to_int(f)
}

/// An integral float to i64, when it is integral and in range.
pub fn float_to_int(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
}

/// A float from text (no `inf`/`nan`).
pub fn parse_float(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Splits `user@domain` or `DOMAIN\user` into (user, domain).
pub fn split_upn(s: &str) -> (Option<&str>, Option<&str>) {
    let s = s.trim();
    let non_empty = |x: &'_ str| -> bool { !x.is_empty() };
    if let Some((user, domain)) = s.rsplit_once('@') {
        return (
            Some(user).filter(|u| non_empty(u)),
            Some(domain).filter(|d| non_empty(d)),
        );
    }
    if let Some((domain, user)) = s.split_once('\\') {
        return (
            Some(user).filter(|u| non_empty(u)),
            Some(domain).filter(|d| non_empty(d)),
        );
    }
    (Some(s).filter(|u| non_empty(u)), None)
}

/// Splits on whitespace and `,`, dropping empty items.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools() {
        for t in ["true", "TRUE", "1", "yes", "Yes"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "False", "0", "no", "NO"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int(" -7 "), Some(-7));
        assert_eq!(parse_int("42.0"), Some(42));
        assert_eq!(parse_int("42.5"), None);
        assert_eq!(parse_int("1e3"), Some(1000));
        assert_eq!(parse_int("x"), None);
        assert_eq!(parse_int("99999999999999999999"), None);
        // Hexadecimal, as Windows event XML writes NewProcessId / ProcessId.
        assert_eq!(parse_int("0x1a2c"), Some(0x1a2c));
        assert_eq!(parse_int(" 0X1A2C "), Some(0x1a2c));
        assert_eq!(parse_int("0x0"), Some(0));
        assert_eq!(parse_int("0x"), None);
        assert_eq!(parse_int("0x1g"), None);
        assert_eq!(parse_int("0x8000000000000000"), None);
        assert_eq!(parse_int("-0x10"), None);
        assert_eq!(parse_float("2.5"), Some(2.5));
        assert_eq!(parse_float("inf"), None);
        assert_eq!(parse_float("NaN"), None);
        assert_eq!(parse_float(""), None);
    }

    #[test]
    fn upns() {
        assert_eq!(
            split_upn("alice@contoso.com"),
            (Some("alice"), Some("contoso.com"))
        );
        assert_eq!(
            split_upn("CONTOSO\\alice"),
            (Some("alice"), Some("CONTOSO"))
        );
        assert_eq!(split_upn("alice"), (Some("alice"), None));
        assert_eq!(split_upn("a.b@c@d.com"), (Some("a.b@c"), Some("d.com")));
        assert_eq!(split_upn("@contoso.com"), (None, Some("contoso.com")));
        assert_eq!(split_upn(""), (None, None));
    }

    #[test]
    fn lists() {
        assert_eq!(
            split_list("openid profile  email"),
            ["openid", "profile", "email"]
        );
        assert_eq!(split_list("a,b, c\td"), ["a", "b", "c", "d"]);
        assert!(split_list(" , ").is_empty());
    }
}
