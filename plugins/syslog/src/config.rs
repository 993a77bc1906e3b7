//! Transport settings as they appear in a CEF/LEEF sink's table (deserialized from the JSON the
//! host passes to the plugin), with defaults and validation.
use std::time::Duration;

use serde::Deserialize;

use crate::error::SyslogError;

/// Network transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// RFC 5426: one message per datagram.
    Udp,
    /// RFC 6587: TCP with octet counting (default) or LF framing.
    Tcp,
    /// RFC 5425: TLS with octet counting.
    Tls,
}

/// TCP framing (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// `MSG-LEN SP SYSLOG-MSG` (preferred; mandatory for TLS).
    OctetCounting,
    /// Messages terminated by LF ("non-transparent framing"); a message containing LF is refused.
    Newline,
}

/// Syslog header format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderFormat {
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`.
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOST TAG: MSG` (UTC, no year).
    Rfc3164,
    /// No header: the payload alone (for receivers that want bare CEF/LEEF lines).
    None,
}

/// What to do with a message larger than `max_message_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OversizePolicy {
    /// Cut it at the limit (on a character boundary), count it and log a warning.
    Truncate,
    /// Refuse the record permanently (it goes to the dead-letter store with the reason).
    Reject,
}

/// Which time the syslog header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderTime {
    /// The record's event time (`@timestamp`).
    Event,
    /// The time the message is sent.
    Now,
}

/// TLS settings (RFC 5425).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the CA certificate(s) that must have signed the server certificate.
    pub ca_file: Option<String>,
    /// Name to verify in the server certificate (default: `host`).
    pub server_name: Option<String>,
    /// PEM client certificate chain, for servers that require client authentication.
    pub client_cert: Option<String>,
    /// PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<String>,
}

/// The transport part of a CEF/LEEF sink's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// Receiver host name or address.
    pub host: String,
    /// Receiver port (default 514 for UDP/TCP, 6514 for TLS).
    pub port: Option<u16>,
    /// `udp`, `tcp` or `tls`.
    pub protocol: Protocol,
    /// TCP framing; TLS always uses octet counting.
    pub framing: Framing,
    /// `rfc5424`, `rfc3164` or `none`.
    pub header: HeaderFormat,
    /// Facility name (`local0`…`local7`, `user`, `security`/`auth`, …) or number 0–23.
    pub facility: FacilitySetting,
    /// HOSTNAME in the header (default: this machine's host name).
    pub hostname: Option<String>,
    /// APP-NAME (RFC 5424) / TAG (RFC 3164; empty = no tag).
    pub app_name: String,
    /// MSGID (RFC 5424); the plugins default it to `CEF` / `LEEF`.
    pub msg_id: Option<String>,
    /// Header time source.
    pub header_time: HeaderTime,
    /// Largest message in bytes, header included (default 2048 for UDP, 65536 otherwise).
    pub max_message_size: Option<usize>,
    /// `truncate` (default) or `reject`.
    pub oversize: OversizePolicy,
    /// TCP/TLS connect timeout, milliseconds.
    pub connect_timeout_ms: u64,
    /// Socket write timeout, milliseconds.
    pub write_timeout_ms: u64,
    /// First reconnect delay after a failure, milliseconds (doubles up to the maximum).
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay, milliseconds.
    pub reconnect_max_ms: u64,
    /// TLS settings.
    pub tls: TlsSettings,
}

/// A facility given by name or number.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FacilitySetting {
    /// 0–23.
    Number(u8),
    /// `kern`, `user`, …, `local7`.
    Name(String),
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            host: "127.0.0.1".into(),
            port: None,
            protocol: Protocol::Tcp,
            framing: Framing::OctetCounting,
            header: HeaderFormat::Rfc5424,
            facility: FacilitySetting::Name("local0".into()),
            hostname: None,
            app_name: "azlog-hub".into(),
            msg_id: None,
            header_time: HeaderTime::Event,
            max_message_size: None,
            oversize: OversizePolicy::Truncate,
            connect_timeout_ms: 5_000,
            write_timeout_ms: 10_000,
            reconnect_initial_ms: 200,
            reconnect_max_ms: 30_000,
            tls: TlsSettings::default(),
        }
    }
}

const FACILITIES: &[&str] = &[
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Settings after defaults and validation.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) protocol: Protocol,
    pub(crate) framing: Framing,
    pub(crate) header: HeaderFormat,
    pub(crate) facility: u8,
    pub(crate) hostname: String,
    pub(crate) app_name: String,
    pub(crate) msg_id: String,
    pub(crate) header_time: HeaderTime,
    pub(crate) max_message_size: usize,
    pub(crate) oversize: OversizePolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) reconnect_initial: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) tls: TlsSettings,
}

/// RFC 5424 header fields are printable US-ASCII (33–126) with length limits; anything else
/// becomes `_`, an empty field is the nil value `-`.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .take(max)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "azlog-hub".into())
}

impl SyslogConfig {
    /// Applies defaults and checks the settings.
    pub fn resolve(&self, default_msg_id: &str) -> Result<Resolved, SyslogError> {
        let bad = |m: String| SyslogError::Config(m);
        if self.host.trim().is_empty() {
            return Err(bad("`host` is empty".into()));
        }
        let facility = match &self.facility {
            FacilitySetting::Number(n) if *n <= 23 => *n,
            FacilitySetting::Number(n) => return Err(bad(format!("facility {n} is not 0-23"))),
            FacilitySetting::Name(name) => {
                let lower = name.to_ascii_lowercase();
                let lower = if lower == "auth2" {
                    "authpriv".to_string()
                } else {
                    lower
                };
                FACILITIES
                    .iter()
                    .position(|f| *f == lower)
                    .map(|p| p as u8)
                    .ok_or_else(|| bad(format!("unknown facility `{name}`")))?
            }
        };
        let framing = match (self.protocol, self.framing) {
            (Protocol::Tls, Framing::Newline) => return Err(bad(
                "TLS (RFC 5425) requires octet-counting framing; remove `framing = \"newline\"`"
                    .into(),
            )),
            (_, f) => f,
        };
        let port = self.port.unwrap_or(match self.protocol {
            Protocol::Tls => 6514,
            _ => 514,
        });
        let max_message_size = self.max_message_size.unwrap_or(match self.protocol {
            Protocol::Udp => 2048,
            _ => 65_536,
        });
        if max_message_size < 480 {
            return Err(bad(format!(
                "max_message_size {max_message_size} is below the 480 octets every receiver must accept"
            )));
        }
        if self.protocol == Protocol::Udp && max_message_size > 65_507 {
            return Err(bad(format!(
                "max_message_size {max_message_size} exceeds the largest UDP datagram (65507)"
            )));
        }
        if self.tls.client_cert.is_some() != self.tls.client_key.is_some() {
            return Err(bad("tls.client_cert and tls.client_key go together".into()));
        }
        if self.reconnect_initial_ms == 0 || self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err(bad(
                "reconnect_initial_ms must be > 0 and <= reconnect_max_ms".into(),
            ));
        }
        let hostname = self.hostname.clone().unwrap_or_else(local_hostname);
        Ok(Resolved {
            host: self.host.trim().to_string(),
            port,
            protocol: self.protocol,
            framing,
            header: self.header,
            facility,
            hostname: header_token(&hostname, 255),
            app_name: header_token(&self.app_name, 48),
            msg_id: header_token(self.msg_id.as_deref().unwrap_or(default_msg_id), 32),
            header_time: self.header_time,
            max_message_size,
            oversize: self.oversize,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.max(1)),
            write_timeout: Duration::from_millis(self.write_timeout_ms.max(1)),
            reconnect_initial: Duration::from_millis(self.reconnect_initial_ms),
            reconnect_max: Duration::from_millis(self.reconnect_max_ms),
            tls: self.tls.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let r = SyslogConfig::default().resolve("CEF").expect("defaults");
        assert_eq!((r.port, r.facility, r.max_message_size), (514, 16, 65_536));
        assert_eq!(r.msg_id, "CEF");
        let tls = SyslogConfig {
            protocol: Protocol::Tls,
            ..Default::default()
        };
        assert_eq!(tls.resolve("x").expect("tls").port, 6514);
        let bad = SyslogConfig {
            protocol: Protocol::Tls,
            framing: Framing::Newline,
            ..Default::default()
        };
        assert!(bad.resolve("x").is_err());
        let bad = SyslogConfig {
            facility: FacilitySetting::Name("local9".into()),
            ..Default::default()
        };
        assert!(bad.resolve("x").is_err());
        let udp = SyslogConfig {
            protocol: Protocol::Udp,
            app_name: "my app\u{e9}".into(),
            ..Default::default()
        };
        let r = udp.resolve("x").expect("udp");
        assert_eq!((r.max_message_size, r.app_name.as_str()), (2048, "my_app_"));
    }
}
