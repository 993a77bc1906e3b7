//! Time conversions shared by the CEF and LEEF codecs: RFC 3339 text → epoch milliseconds, and
//! epoch milliseconds → calendar fields. No allocation, no time-zone database (UTC offsets only).

pub use azlog_plugin_api::ecs::{civil_from_days, days_from_civil};

/// UTC calendar fields of an epoch-millisecond instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month 1–12.
    pub month: u32,
    /// Day 1–31.
    pub day: u32,
    /// Hour 0–23.
    pub hour: u32,
    /// Minute 0–59.
    pub minute: u32,
    /// Second 0–59.
    pub second: u32,
    /// Millisecond 0–999.
    pub milli: u32,
}

impl Civil {
    /// Splits epoch milliseconds into UTC calendar fields.
    pub fn from_epoch_ms(ms: i64) -> Civil {
        let days = ms.div_euclid(86_400_000);
        let rem = ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3_600_000) as u32,
            minute: (rem / 60_000 % 60) as u32,
            second: (rem / 1000 % 60) as u32,
            milli: (rem % 1000) as u32,
        }
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses an RFC 3339 / ISO 8601 timestamp (`2024-05-01T10:20:30.1234567Z`, `…+02:00`, a space
/// instead of `T`, no zone = UTC) into epoch milliseconds. Extra fraction digits are truncated.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    if b.get(16) != Some(&b':') {
        return None;
    }
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut milli = 0u32;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                milli = milli * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            milli *= 10;
        }
    }
    let offset_min: i64 = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)?;
            let (om, end) = match b.get(i + 3) {
                Some(b':') => (digits(b, i + 4, 2)?, i + 6),
                Some(_) => (digits(b, i + 3, 2)?, i + 5),
                None => (0, i + 3),
            };
            if end != b.len() || oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 60 + om);
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_min * 60;
    Some(secs * 1000 + i64::from(milli))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_azure_forms() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("2024-05-01T10:20:30.1234567Z"),
            Some(1_714_558_830_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-05-01T12:20:30.5+02:00"),
            Some(1_714_558_830_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-05-01 10:20:30"),
            Some(1_714_558_830_000)
        );
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(parse_rfc3339_ms("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("2024-05-01T10:20:30Zjunk"), None);
        assert_eq!(parse_rfc3339_ms("not a time"), None);
    }

    #[test]
    fn civil_round_trip() {
        for ms in [
            0i64,
            -1,
            1_714_558_830_123,
            951_782_400_000,
            4_102_444_800_000,
        ] {
            let c = Civil::from_epoch_ms(ms);
            let back = (days_from_civil(c.year, c.month, c.day) * 86_400
                + i64::from(c.hour * 3600 + c.minute * 60 + c.second))
                * 1000
                + i64::from(c.milli);
            assert_eq!(back, ms);
        }
        let c = Civil::from_epoch_ms(951_782_400_000); // 2000-02-29
        assert_eq!((c.year, c.month, c.day), (2000, 2, 29));
    }
}
