//! WAD PartitionKeys: `"0"` followed by the .NET ticks (100 ns since 0001-01-01T00:00:00Z) of the
//! event's minute, zero-padded to 19 digits, e.g. `0638500000000000000`. The Azure Diagnostics
//! agent writes one partition per minute, so a time window maps to a PartitionKey range that
//! the Table service answers from its index (string comparison; the 19-digit padding keeps
//! lexical and numeric order the same). Some agent versions append a suffix
//! (`0638...___0000000000000000000`); a range bound without the suffix still sorts correctly.

/// .NET ticks at the Unix epoch (1970-01-01T00:00:00Z).
pub const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;
/// Ticks in one second.
pub const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks in one minute (the WAD partition granularity).
pub const TICKS_PER_MINUTE: i64 = 60 * TICKS_PER_SECOND;

/// Unix nanoseconds → .NET ticks.
pub fn ticks_from_unix_ns(ns: i64) -> i64 {
    ns.div_euclid(100) + UNIX_EPOCH_TICKS
}

/// .NET ticks → Unix nanoseconds (saturating).
pub fn unix_ns_from_ticks(ticks: i64) -> i64 {
    (ticks - UNIX_EPOCH_TICKS).saturating_mul(100)
}

/// Rounds ticks down to the start of their minute.
pub fn floor_minute(ticks: i64) -> i64 {
    ticks - ticks.rem_euclid(TICKS_PER_MINUTE)
}

/// The PartitionKey of a minute partition (or a range bound): `"0"` + 19-digit-padded ticks
/// minus the leading digit, i.e. `format!("{:019}", ticks)` with a leading `0` (19 chars).
pub fn partition_key(ticks: i64) -> String {
    format!("0{:018}", ticks.max(0))
}

/// The ticks of a WAD PartitionKey (`0<ticks>` with an optional `___...` suffix); `None` when
/// it does not start with `0` and digits.
pub fn ticks_of_partition_key(pk: &str) -> Option<i64> {
    let digits = pk.strip_prefix('0')?;
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    digits[..end].parse().ok()
}

/// RFC 3339 (UTC, seconds) of a tick value, for logs and the watermark file.
pub fn rfc3339_of_ticks(ticks: i64) -> String {
    let mut out = Vec::with_capacity(32);
    let ns = unix_ns_from_ticks(ticks);
    azlog_plugin_api::ecs::write_rfc3339_ns(ns - ns.rem_euclid(1_000_000_000), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // 2024-05-25T07:30:00Z = 1716622200 s since the Unix epoch.
        let ns = 1_716_622_200_i64 * 1_000_000_000;
        let t = ticks_from_unix_ns(ns);
        assert_eq!(t, 638_522_190_000_000_000);
        assert_eq!(unix_ns_from_ticks(t), ns);
        assert_eq!(partition_key(t), "0638522190000000000");
        assert_eq!(partition_key(t).len(), 19);
        assert_eq!(rfc3339_of_ticks(t), "2024-05-25T07:30:00.000Z");
    }

    #[test]
    fn minute_floor_and_parse() {
        let t = 638_522_190_000_000_000 + 59 * TICKS_PER_SECOND + 1234;
        assert_eq!(floor_minute(t), 638_522_190_000_000_000);
        assert_eq!(
            ticks_of_partition_key("0638522190000000000"),
            Some(638_522_190_000_000_000)
        );
        assert_eq!(
            ticks_of_partition_key("0637000000000000000___0000000000000000000"),
            Some(637_000_000_000_000_000)
        );
        assert_eq!(ticks_of_partition_key("p1"), None);
        assert_eq!(ticks_of_partition_key("0"), None);
    }

    #[test]
    fn range_bounds_sort_like_the_numbers() {
        let a = partition_key(638_522_190_000_000_000);
        let b = partition_key(638_522_190_000_000_000 + TICKS_PER_MINUTE);
        let suffixed = format!("{a}___0000000000000000001");
        assert!(a < suffixed && suffixed < b);
    }
}
