//! Timestamps in every form Azure emits, to nanoseconds since the Unix epoch (UTC).
//!
//! - ISO-8601 / RFC 3339: `2022-08-22T18:07:16Z`, 0–9 fraction digits (more are truncated),
//!   `Z`, `+hh:mm`, `+hhmm`, `+hh` or no offset (UTC), `T` or a space between date and time,
//!   one-digit month/day/hour/minute/second, a date alone;
//! - US form: `8/22/2022 6:07:16 PM` (12-hour with AM/PM, or 24-hour without), optional
//!   fraction and offset;
//! - RFC 1123: `Mon, 22 Aug 2022 18:07:16 GMT`;
//! - .NET JSON dates `/Date(1661191636123)/`, `/Date(1661191636123+0200)/` (ms are UTC);
//! - epoch numbers (or digit strings): seconds, milliseconds, microseconds or nanoseconds
//!   by magnitude; fractional seconds as floats.
//!
//! Out-of-range values (month 13, 25:00, years outside i64 nanoseconds) give `None`.

const NS: i64 = 1_000_000_000;

pub use azlog_plugin_api::ecs::days_from_civil;

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Date and time parts; `offset_s` is the zone offset east of UTC.
#[derive(Debug, Default, Clone, Copy)]
struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    offset_s: i64,
}

impl Parts {
    fn to_ns(self) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days
            .checked_mul(86_400)?
            .checked_add(i64::from(self.hour * 3600 + self.minute * 60 + self.second))?
            .checked_sub(self.offset_s)?;
        secs.checked_mul(NS)?.checked_add(i64::from(self.nanos))
    }
}

/// A tiny cursor over ASCII bytes.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    /// Reads `min..=max` digits.
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v: u32 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(v)
    }
    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }
    /// `.fffffffff` (or `,fff`): up to 9 digits kept, more truncated. None if no digit.
    fn fraction(&mut self) -> Option<u32> {
        let start = self.i;
        let mut v: u32 = 0;
        let mut n = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if n < 9 {
                v = v * 10 + u32::from(c - b'0');
                n += 1;
            }
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        for _ in n..9 {
            v *= 10;
        }
        Some(v)
    }
    /// `hh:mm[:ss[.fff]]` with one- or two-digit parts.
    fn clock(&mut self, p: &mut Parts) -> Option<()> {
        p.hour = self.num(1, 2)?;
        if !self.eat(b':') {
            return None;
        }
        p.minute = self.num(1, 2)?;
        if self.eat(b':') {
            p.second = self.num(1, 2)?;
            if self.eat(b'.') || self.eat(b',') {
                p.nanos = self.fraction()?;
            }
        }
        Some(())
    }
    /// `Z`, `UTC`, `GMT`, `+hh:mm`, `+hhmm`, `+hh`, or nothing (UTC). Must end the text.
    fn zone(&mut self, p: &mut Parts) -> Option<()> {
        self.skip_spaces();
        let rest = &self.b[self.i..];
        if rest.is_empty() {
            return Some(());
        }
        if rest.eq_ignore_ascii_case(b"z")
            || rest.eq_ignore_ascii_case(b"utc")
            || rest.eq_ignore_ascii_case(b"gmt")
        {
            self.i = self.b.len();
            return Some(());
        }
        let sign = match rest[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.i += 1;
        let h = self.num(2, 2)?;
        let m = if self.done() {
            0
        } else {
            self.eat(b':');
            self.num(2, 2)?
        };
        if h > 23 || m > 59 {
            return None;
        }
        p.offset_s = sign * i64::from(h * 3600 + m * 60);
        self.done().then_some(())
    }
}

fn parse_iso(s: &[u8]) -> Option<i64> {
    let mut c = Cur { b: s, i: 0 };
    let mut p = Parts {
        year: i64::from(c.num(4, 4)?),
        ..Parts::default()
    };
    if !c.eat(b'-') {
        return None;
    }
    p.month = c.num(1, 2)?;
    if !c.eat(b'-') {
        return None;
    }
    p.day = c.num(1, 2)?;
    if c.done() {
        return p.to_ns();
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    c.clock(&mut p)?;
    c.zone(&mut p)?;
    p.to_ns()
}

/// `M/D/YYYY h:mm[:ss[.fff]] [AM|PM] [zone]` (also `YYYY/MM/DD hh:mm:ss`).
fn parse_slashed(s: &[u8]) -> Option<i64> {
    let mut c = Cur { b: s, i: 0 };
    let mut p = Parts::default();
    let first_start = c.i;
    let first = c.num(1, 4)?;
    if c.i - first_start == 4 {
        p.year = i64::from(first);
        c.eat(b'/').then_some(())?;
        p.month = c.num(1, 2)?;
        c.eat(b'/').then_some(())?;
        p.day = c.num(1, 2)?;
    } else {
        p.month = first;
        c.eat(b'/').then_some(())?;
        p.day = c.num(1, 2)?;
        c.eat(b'/').then_some(())?;
        p.year = i64::from(c.num(4, 4)?);
    }
    if c.done() {
        return p.to_ns();
    }
    if !(c.eat(b' ') || c.eat(b'T')) {
        return None;
    }
    c.skip_spaces();
    c.clock(&mut p)?;
    c.skip_spaces();
    let rest = &c.b[c.i..];
    let ampm = if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"AM") {
        Some(false)
    } else if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"PM") {
        Some(true)
    } else {
        None
    };
    if let Some(pm) = ampm {
        c.i += 2;
        if p.hour == 0 || p.hour > 12 {
            return None;
        }
        p.hour = match (pm, p.hour) {
            (false, 12) => 0,
            (false, h) => h,
            (true, 12) => 12,
            (true, h) => h + 12,
        };
    }
    c.zone(&mut p)?;
    p.to_ns()
}

const MONTHS: [&[u8]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// `[Www, ]DD Mon YYYY hh:mm:ss zone` (RFC 1123 / RFC 2822).
fn parse_rfc1123(s: &[u8]) -> Option<i64> {
    let s = match s.iter().position(|&b| b == b',') {
        Some(i) => &s[i + 1..],
        None => s,
    };
    let mut c = Cur { b: s, i: 0 };
    c.skip_spaces();
    let mut p = Parts {
        day: c.num(1, 2)?,
        ..Parts::default()
    };
    c.eat(b' ').then_some(())?;
    let mon = c.b.get(c.i..c.i + 3)?;
    p.month = MONTHS.iter().position(|m| mon.eq_ignore_ascii_case(m))? as u32 + 1;
    c.i += 3;
    c.eat(b' ').then_some(())?;
    p.year = i64::from(c.num(4, 4)?);
    c.eat(b' ').then_some(())?;
    c.clock(&mut p)?;
    c.zone(&mut p)?;
    p.to_ns()
}

/// `/Date(1661191636123)/` or `/Date(1661191636123+0200)/` (the ms are UTC already).
fn parse_dotnet_date(s: &str) -> Option<i64> {
    let inner = s.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map_or(inner.len(), |(i, _)| i);
    let ms: i64 = inner[..end].parse().ok()?;
    ms.checked_mul(1_000_000)
}

/// An epoch integer: seconds, ms, µs or ns chosen by magnitude (seconds up to year 5138).
pub fn from_epoch_int(v: i64) -> Option<i64> {
    let a = v.unsigned_abs();
    if a < 100_000_000_000 {
        v.checked_mul(NS)
    } else if a < 100_000_000_000_000 {
        v.checked_mul(1_000_000)
    } else if a < 100_000_000_000_000_000 {
        v.checked_mul(1_000)
    } else {
        Some(v)
    }
}

/// An epoch float in seconds (or ms/µs by the same magnitude rule as integers).
pub fn from_epoch_float(v: f64) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    let a = v.abs();
    let scale = if a < 1e11 {
        1e9
    } else if a < 1e14 {
        1e6
    } else if a < 1e17 {
        1e3
    } else {
        1.0
    };
    // Whole and fractional parts separately, so 1661191636.25 s stays exact.
    let (whole, frac) = (v.trunc(), v.fract());
    let ns = whole * scale + (frac * scale).round();
    // 9.2e18 is i64::MAX; stay safely inside.
    (ns.abs() < 9.2e18).then(|| (whole as i64) * (scale as i64) + (frac * scale).round() as i64)
}

/// Parses a timestamp string in any supported form.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 4 {
        return None;
    }
    if b[0] == b'/' {
        return parse_dotnet_date(s);
    }
    if b.iter().all(u8::is_ascii_digit) {
        return from_epoch_int(s.parse().ok()?);
    }
    if b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return parse_iso(b);
    }
    if b[..4].contains(&b'/') || (b.len() > 4 && b[4] == b'/') {
        return parse_slashed(b);
    }
    if b[0].is_ascii_alphabetic()
        || (b[0].is_ascii_digit() && b.iter().any(u8::is_ascii_alphabetic))
    {
        if let Some(ns) = parse_rfc1123(b) {
            return Some(ns);
        }
    }
    if let Some((whole, frac)) = s.split_once('.') {
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
        if digits(whole) && digits(frac) {
            // Epoch seconds with a fraction, read exactly.
            let secs: i64 = whole.parse().ok()?;
            if secs < 100_000_000_000 {
                let mut c = Cur {
                    b: frac.as_bytes(),
                    i: 0,
                };
                let nanos = c.fraction()?;
                return secs.checked_mul(NS)?.checked_add(i64::from(nanos));
            }
            return from_epoch_float(s.parse().ok()?);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2022-08-22T18:07:16Z
    const T0: i64 = 1_661_191_636 * NS;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for d in [-800_000i64, -1, 0, 1, 19_000, 2_000_000] {
            let (y, m, dd) = azlog_plugin_api::ecs::civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn iso_fraction_digits_0_to_9_and_more() {
        assert_eq!(parse_timestamp("2022-08-22T18:07:16Z"), Some(T0));
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.1Z"),
            Some(T0 + 100_000_000)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.12Z"),
            Some(T0 + 120_000_000)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.123Z"),
            Some(T0 + 123_000_000)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.1234Z"),
            Some(T0 + 123_400_000)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.12345Z"),
            Some(T0 + 123_450_000)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.123456Z"),
            Some(T0 + 123_456_000)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.1234567Z"),
            Some(T0 + 123_456_700)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.12345678Z"),
            Some(T0 + 123_456_780)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.123456789Z"),
            Some(T0 + 123_456_789)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16.1234567891Z"),
            Some(T0 + 123_456_789)
        );
        assert_eq!(
            parse_timestamp("2022-08-22T18:07:16,5Z"),
            Some(T0 + 500_000_000)
        );
        assert_eq!(parse_timestamp("2022-08-22T18:07:16.Z"), None);
    }

    #[test]
    fn iso_offsets_and_no_zone() {
        assert_eq!(parse_timestamp("2022-08-22T18:07:16"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22T18:07:16.0000000"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22T20:07:16+02:00"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22T20:07:16+0200"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22T20:07:16+02"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22T12:37:16.000-05:30"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22T18:07:16+00:00"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22 18:07:16Z"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22 18:07:16 UTC"), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22t18:07:16z"), Some(T0));
        assert_eq!(parse_timestamp(" 2022-08-22T18:07:16Z "), Some(T0));
        assert_eq!(parse_timestamp("2022-08-22T18:07Z"), Some(T0 - 16 * NS));
        assert_eq!(
            parse_timestamp("2022-08-22"),
            Some(T0 - (18 * 3600 + 7 * 60 + 16) * NS)
        );
    }

    #[test]
    fn one_digit_parts() {
        assert_eq!(parse_timestamp("2022-8-22T18:07:16Z"), Some(T0));
        assert_eq!(
            parse_timestamp("2022-08-22T6:07:16"),
            Some(T0 - 12 * 3600 * NS)
        );
        assert_eq!(
            parse_timestamp("2022-08-22 6:7:6"),
            Some(T0 - (12 * 3600 + 10) * NS)
        );
    }

    #[test]
    fn us_form_with_am_pm() {
        assert_eq!(parse_timestamp("8/22/2022 6:07:16 PM"), Some(T0));
        assert_eq!(parse_timestamp("08/22/2022 06:07:16 PM"), Some(T0));
        assert_eq!(parse_timestamp("8/22/2022 6:07:16 pm"), Some(T0));
        assert_eq!(
            parse_timestamp("8/22/2022 6:07:16 AM"),
            Some(T0 - 12 * 3600 * NS)
        );
        assert_eq!(
            parse_timestamp("8/22/2022 12:07:16 AM"),
            Some(T0 - 18 * 3600 * NS)
        );
        assert_eq!(
            parse_timestamp("8/22/2022 12:07:16 PM"),
            Some(T0 - 6 * 3600 * NS)
        );
        assert_eq!(parse_timestamp("8/22/2022 18:07:16"), Some(T0));
        assert_eq!(
            parse_timestamp("8/22/2022 6:07:16.5 PM"),
            Some(T0 + 500_000_000)
        );
        assert_eq!(parse_timestamp("8/22/2022 8:07:16 PM +02:00"), Some(T0));
        assert_eq!(parse_timestamp("2022/08/22 18:07:16"), Some(T0));
        assert_eq!(
            parse_timestamp("8/22/2022"),
            Some(T0 - (18 * 3600 + 7 * 60 + 16) * NS)
        );
        assert_eq!(parse_timestamp("8/22/2022 13:07:16 PM"), None);
        assert_eq!(parse_timestamp("8/22/2022 0:07:16 AM"), None);
        assert_eq!(parse_timestamp("13/22/2022 6:07:16 PM"), None);
    }

    #[test]
    fn rfc1123_dotnet_and_epochs() {
        assert_eq!(parse_timestamp("Mon, 22 Aug 2022 18:07:16 GMT"), Some(T0));
        assert_eq!(parse_timestamp("22 Aug 2022 20:07:16 +0200"), Some(T0));
        assert_eq!(
            parse_timestamp("/Date(1661191636123)/"),
            Some(T0 + 123_000_000)
        );
        assert_eq!(
            parse_timestamp("/Date(1661191636123+0200)/"),
            Some(T0 + 123_000_000)
        );
        assert_eq!(parse_timestamp("/Date(-1000)/"), Some(-NS));
        assert_eq!(parse_timestamp("1661191636"), Some(T0));
        assert_eq!(parse_timestamp("1661191636123"), Some(T0 + 123_000_000));
        assert_eq!(parse_timestamp("1661191636123456"), Some(T0 + 123_456_000));
        assert_eq!(
            parse_timestamp("1661191636123456789"),
            Some(T0 + 123_456_789)
        );
        assert_eq!(parse_timestamp("1661191636.5"), Some(T0 + 500_000_000));
        assert_eq!(from_epoch_int(1_661_191_636), Some(T0));
        assert_eq!(from_epoch_float(1_661_191_636.25), Some(T0 + 250_000_000));
        assert_eq!(from_epoch_float(f64::NAN), None);
        assert_eq!(from_epoch_float(1e30), None);
    }

    #[test]
    fn garbage_and_out_of_range() {
        for bad in [
            "",
            "abc",
            "not a date",
            "2022-13-01T00:00:00Z",
            "2022-02-30T00:00:00Z",
            "2022-08-22T24:00:00Z",
            "2022-08-22T18:60:00Z",
            "2022-08-22T18:07:16+25:00",
            "2022-08-22T18:07:16 junk",
            "2022-08-22X18:07:16",
            "/Date(abc)/",
            "9999999999999999999999",
            "2022-08-22T18:07:16+",
            "Mon, 22 Foo 2022 18:07:16 GMT",
            "-",
            "N/A",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
        // 2023-02-29 does not exist; 2024-02-29 does.
        assert_eq!(parse_timestamp("2023-02-29"), None);
        assert!(parse_timestamp("2024-02-29").is_some());
        // Year 9999 is beyond i64 nanoseconds: no value, no wrap.
        assert_eq!(parse_timestamp("9999-12-31T23:59:59Z"), None);
        assert!(parse_timestamp("1601-01-01T00:00:00Z").is_none());
        assert!(parse_timestamp("1900-01-01T00:00:00Z").unwrap() < 0);
    }
}
