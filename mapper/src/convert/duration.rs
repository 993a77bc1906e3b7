//! Durations to i64 nanoseconds, checked: an overflow or a negative duration gives no value
//! (peers wrapped big durations into negative numbers; we never do).

/// The unit a duration number is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
    /// .NET ticks (100 ns).
    Ticks,
}

impl Unit {
    fn ns(self) -> i64 {
        match self {
            Unit::S => 1_000_000_000,
            Unit::Ms => 1_000_000,
            Unit::Us => 1_000,
            Unit::Ns => 1,
            Unit::Ticks => 100,
        }
    }
}

/// An integer count of `unit` to nanoseconds.
pub fn from_int(v: i64, unit: Unit) -> Option<i64> {
    if v < 0 {
        return None;
    }
    v.checked_mul(unit.ns())
}

/// An unsigned count of `unit` to nanoseconds.
pub fn from_uint(v: u64, unit: Unit) -> Option<i64> {
    i64::try_from(v).ok().and_then(|v| from_int(v, unit))
}

/// A fractional count of `unit` to nanoseconds (rounded).
pub fn from_float(v: f64, unit: Unit) -> Option<i64> {
    let ns = v * unit.ns() as f64;
    (ns.is_finite() && (0.0..9.2e18).contains(&ns)).then(|| ns.round() as i64)
}

/// A numeric string in `unit` to nanoseconds.
pub fn from_str(s: &str, unit: Unit) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return from_int(i, unit);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return None; // digits only but beyond i64
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return s.parse::<f64>().ok().and_then(|f| from_float(f, unit));
    }
    None
}

/// A .NET TimeSpan `[d.]hh:mm:ss[.fffffff]` to nanoseconds.
pub fn from_timespan(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.starts_with('-') {
        return None;
    }
    let (clock, frac) = match s.rsplit_once('.') {
        // The last `.` is the fraction separator only when it follows the seconds.
        Some((head, f))
            if head.matches(':').count() == 2 && f.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (head, Some(f))
        }
        _ => (s, None),
    };
    let (days, clock) = match clock.split_once('.') {
        Some((d, rest)) => (d.parse::<i64>().ok()?, rest),
        None => (0, clock),
    };
    let mut parts = clock.split(':');
    let h: i64 = parse_digits(parts.next()?)?;
    let m: i64 = parse_digits(parts.next()?)?;
    let sec: i64 = parse_digits(parts.next()?)?;
    if parts.next().is_some() || m > 59 || sec > 59 {
        return None;
    }
    let mut nanos: i64 = 0;
    if let Some(f) = frac {
        if f.is_empty() {
            return None;
        }
        let digits = &f[..f.len().min(9)];
        nanos = digits.parse().ok()?;
        for _ in digits.len()..9 {
            nanos *= 10;
        }
    }
    let secs = days
        .checked_mul(86_400)?
        .checked_add(h.checked_mul(3600)?)?
        .checked_add(m * 60 + sec)?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn parse_digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(from_int(1500, Unit::Ms), Some(1_500_000_000));
        assert_eq!(from_int(2, Unit::S), Some(2_000_000_000));
        assert_eq!(from_int(7, Unit::Us), Some(7_000));
        assert_eq!(from_int(7, Unit::Ns), Some(7));
        assert_eq!(from_int(12_345, Unit::Ticks), Some(1_234_500));
        assert_eq!(from_float(1.5, Unit::Ms), Some(1_500_000));
        assert_eq!(from_str("250", Unit::Ms), Some(250_000_000));
        assert_eq!(from_str(" 0.25 ", Unit::S), Some(250_000_000));
        assert_eq!(from_uint(3, Unit::S), Some(3_000_000_000));
    }

    #[test]
    fn overflow_and_negative_give_nothing() {
        assert_eq!(from_int(i64::MAX, Unit::Ms), None);
        assert_eq!(from_int(9_300_000_000_000, Unit::Ms), None); // 9.3e18 ns > i64::MAX
        assert_eq!(
            from_int(9_000_000_000_000, Unit::Ms),
            Some(9_000_000_000_000_000_000)
        );
        assert_eq!(from_uint(u64::MAX, Unit::Ns), None);
        assert_eq!(from_float(1e300, Unit::S), None);
        assert_eq!(from_float(f64::INFINITY, Unit::S), None);
        assert_eq!(from_float(f64::NAN, Unit::S), None);
        assert_eq!(from_int(-5, Unit::Ms), None);
        assert_eq!(from_float(-0.5, Unit::S), None);
        assert_eq!(from_str("99999999999999999999999", Unit::Ms), None);
        assert_eq!(from_str("-1", Unit::Ms), None);
        assert_eq!(from_str("abc", Unit::Ms), None);
        assert_eq!(from_str("", Unit::Ms), None);
    }

    #[test]
    fn timespans() {
        assert_eq!(from_timespan("00:00:01"), Some(1_000_000_000));
        assert_eq!(from_timespan("00:00:01.5"), Some(1_500_000_000));
        assert_eq!(from_timespan("00:01:02.1234567"), Some(62_123_456_700));
        assert_eq!(
            from_timespan("1.02:03:04"),
            Some(((86_400 + 7_200 + 180 + 4) as i64) * 1_000_000_000)
        );
        assert_eq!(
            from_timespan("1.02:03:04.0000001"),
            Some(93_784_000_000_100)
        );
        assert_eq!(from_timespan("100:00:00"), Some(360_000_000_000_000));
        assert_eq!(from_timespan("-00:00:01"), None);
        assert_eq!(from_timespan("00:61:00"), None);
        assert_eq!(from_timespan("abc"), None);
        assert_eq!(from_timespan("10675199.02:48:05.4775807"), None); // TimeSpan.MaxValue > i64 ns
    }
}
