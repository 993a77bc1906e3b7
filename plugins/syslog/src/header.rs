//! Syslog headers: RFC 5424 (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - `) and
//! RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: `), plus the ECS severity → syslog severity map.
use crate::config::{HeaderFormat, Resolved};

/// Syslog severity (RFC 5424 §6.2.1) for an ECS `event.severity` 0–10:
/// none/0–2 informational (6), 3 notice (5), 4–6 warning (4), 7–8 error (3), 9 critical (2),
/// 10 alert (1).
pub fn severity_from_ecs(sev: Option<i64>) -> u8 {
    match sev {
        None => 6,
        Some(s) if s <= 2 => 6,
        Some(3) => 5,
        Some(4..=6) => 4,
        Some(7..=8) => 3,
        Some(9) => 2,
        Some(_) => 1,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// UTC calendar fields of epoch milliseconds (Howard Hinnant's civil_from_days).
fn civil(ms: i64) -> (i64, usize, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m as usize,
        d,
        (rem / 3_600_000) as u32,
        (rem / 60_000 % 60) as u32,
        (rem / 1000 % 60) as u32,
        (rem % 1000) as u32,
    )
}

fn push_num(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let digits = buf.len() - i;
    for _ in digits..width {
        out.push(b'0');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends the header for a message of `severity` (0–7) at `time_ms` to `out`.
pub(crate) fn write_header(cfg: &Resolved, severity: u8, time_ms: i64, out: &mut Vec<u8>) {
    if cfg.header == HeaderFormat::None {
        return;
    }
    let pri = u64::from(cfg.facility) * 8 + u64::from(severity.min(7));
    out.push(b'<');
    push_num(out, pri, 1);
    out.push(b'>');
    let (y, m, d, hh, mm, ss, ms) = civil(time_ms);
    match cfg.header {
        HeaderFormat::Rfc5424 => {
            out.extend_from_slice(b"1 ");
            if (0..=9999).contains(&y) {
                push_num(out, y as u64, 4);
                out.push(b'-');
                push_num(out, m as u64, 2);
                out.push(b'-');
                push_num(out, u64::from(d), 2);
                out.push(b'T');
                push_num(out, u64::from(hh), 2);
                out.push(b':');
                push_num(out, u64::from(mm), 2);
                out.push(b':');
                push_num(out, u64::from(ss), 2);
                out.push(b'.');
                push_num(out, u64::from(ms), 3);
                out.push(b'Z');
            } else {
                out.push(b'-');
            }
            out.push(b' ');
            out.extend_from_slice(cfg.hostname.as_bytes());
            out.push(b' ');
            out.extend_from_slice(cfg.app_name.as_bytes());
            out.push(b' ');
            push_num(out, u64::from(std::process::id()), 1);
            out.push(b' ');
            out.extend_from_slice(cfg.msg_id.as_bytes());
            out.extend_from_slice(b" - ");
        }
        HeaderFormat::Rfc3164 => {
            out.extend_from_slice(MONTHS[(m - 1).min(11)].as_bytes());
            out.push(b' ');
            if d < 10 {
                out.push(b' ');
            }
            push_num(out, u64::from(d), 1);
            out.push(b' ');
            push_num(out, u64::from(hh), 2);
            out.push(b':');
            push_num(out, u64::from(mm), 2);
            out.push(b':');
            push_num(out, u64::from(ss), 2);
            out.push(b' ');
            out.extend_from_slice(cfg.hostname.as_bytes());
            out.push(b' ');
            if cfg.app_name != "-" {
                // RFC 3164 TAG: at most 32 alphanumeric characters.
                let tag: String = cfg
                    .app_name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(32)
                    .collect();
                out.extend_from_slice(tag.as_bytes());
                out.extend_from_slice(b": ");
            }
        }
        HeaderFormat::None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FacilitySetting, SyslogConfig};

    fn cfg(header: HeaderFormat) -> Resolved {
        SyslogConfig {
            header,
            hostname: Some("hub-01".into()),
            facility: FacilitySetting::Name("local4".into()),
            ..Default::default()
        }
        .resolve("CEF")
        .expect("config")
    }

    #[test]
    fn rfc5424_header() {
        let mut out = Vec::new();
        write_header(&cfg(HeaderFormat::Rfc5424), 4, 1_714_558_830_123, &mut out);
        let want = format!(
            "<164>1 2024-05-01T10:20:30.123Z hub-01 azlog-hub {} CEF - ",
            std::process::id()
        );
        assert_eq!(String::from_utf8(out).expect("utf8"), want);
    }

    #[test]
    fn rfc3164_header() {
        let mut out = Vec::new();
        write_header(
            &cfg(HeaderFormat::Rfc3164),
            6,
            1_714_558_830_123 - 86_400_000 * 25,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "<166>Apr  6 10:20:30 hub-01 azlog-hub: "
        );
    }

    #[test]
    fn severity_map() {
        assert_eq!(
            [None, Some(0), Some(3), Some(5), Some(8), Some(9), Some(10)].map(severity_from_ecs),
            [6, 6, 5, 4, 3, 2, 1]
        );
    }
}
