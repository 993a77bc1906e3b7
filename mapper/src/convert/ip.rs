//! Strict IP address parsing: an address or nothing.
//!
//! Accepted: IPv4 dotted quads, IPv6 in any RFC 4291 form, `v4:port`, `[v6]:port`, `[v6]`,
//! an IPv6 zone (`fe80::1%eth0`, dropped). IPv4-mapped IPv6 (`::ffff:10.0.0.1`) comes out as
//! the IPv4 address. Rejected: CIDRs (`10.0.0.0/8`), placeholders (`<CALLER IP ADDRESS>`,
//! `-`, `N/A`), host names, leading-zero octets, anything else.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an IP address strictly; see the module docs.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if s.is_empty() || s.contains('/') {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        if !after.is_empty() && !valid_port_suffix(after) {
            return None;
        }
        return parse_v6(&rest[..end]).map(normalize);
    }
    if let Ok(v4) = s.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    // v4:port — exactly one colon.
    if let Some((host, port)) = s.split_once(':') {
        if !port.contains(':') {
            return if valid_port(port) {
                host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
            } else {
                None
            };
        }
    }
    parse_v6(s).map(normalize)
}

/// The canonical text of an address (what `to_string` gives), IPv4 without `fmt`.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            out
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

fn parse_v6(s: &str) -> Option<IpAddr> {
    let addr = match s.split_once('%') {
        Some((a, zone)) if !zone.is_empty() => a,
        Some(_) => return None,
        None => s,
    };
    addr.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn valid_port_suffix(s: &str) -> bool {
    s.strip_prefix(':').is_some_and(valid_port)
}

fn valid_port(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 5
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u16>().is_ok()
}

/// Parses a port: an integer 0–65535 (from a number or a digit string).
pub fn parse_port_str(s: &str) -> Option<i64> {
    let s = s.trim();
    if valid_port(s) {
        s.parse::<u16>().ok().map(i64::from)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<String> {
        parse_ip(s).map(|a| a.to_string())
    }

    #[test]
    fn ip_text_is_to_string() {
        for a in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "10.0.0.4",
            "192.168.1.10",
            "::1",
            "fe80::1",
        ] {
            let ip = parse_ip(a).unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
        for x in 0..=255u8 {
            let ip = IpAddr::V4(Ipv4Addr::new(x, 255 - x, x / 3, 7));
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn plain_addresses() {
        assert_eq!(ip("10.0.0.4").as_deref(), Some("10.0.0.4"));
        assert_eq!(ip(" 192.168.1.10 ").as_deref(), Some("192.168.1.10"));
        assert_eq!(ip("2001:db8::1").as_deref(), Some("2001:db8::1"));
        assert_eq!(
            ip("2001:0DB8:0000:0000:0000:0000:0000:0001").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(ip("::1").as_deref(), Some("::1"));
        assert_eq!(ip("::").as_deref(), Some("::"));
        assert_eq!(ip("fe80::1%eth0").as_deref(), Some("fe80::1"));
        assert_eq!(ip("::ffff:10.1.2.3").as_deref(), Some("10.1.2.3"));
    }

    #[test]
    fn with_ports() {
        assert_eq!(ip("10.0.0.4:51234").as_deref(), Some("10.0.0.4"));
        assert_eq!(ip("[2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
        assert_eq!(ip("10.0.0.4:99999"), None);
        assert_eq!(ip("10.0.0.4:"), None);
        assert_eq!(ip("[2001:db8::1]:x"), None);
        assert_eq!(ip("[2001:db8::1]junk"), None);
        assert_eq!(ip("[10.0.0.1]"), None);
    }

    #[test]
    fn cidrs_placeholders_and_garbage() {
        for bad in [
            "",
            " ",
            "127.0.0.0/8",
            "10.0.0.0/24",
            "2001:db8::/32",
            "<CALLER IP ADDRESS>",
            "-",
            "N/A",
            "unknown",
            "localhost",
            "host.example.com",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.02.03.04",
            "1.2.3.4 5.6.7.8",
            "1.2.3.4,5.6.7.8",
            "fe80::1%",
            ":::1",
            "[::1",
            "AzureLoadBalancer",
            "*",
        ] {
            assert_eq!(ip(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port_str("443"), Some(443));
        assert_eq!(parse_port_str("0"), Some(0));
        assert_eq!(parse_port_str("65535"), Some(65535));
        assert_eq!(parse_port_str("65536"), None);
        assert_eq!(parse_port_str("-1"), None);
        assert_eq!(parse_port_str("http"), None);
        assert_eq!(parse_port_str(""), None);
    }
}
