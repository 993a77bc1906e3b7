//! Syslog transport shared by the CEF and LEEF sink plugins.
//!
//! - Headers: RFC 5424 (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`) or RFC 3164
//!   (`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`, UTC), or none.
//! - Transports: UDP (RFC 5426, one message per datagram), TCP (RFC 6587 octet counting, or LF
//!   framing), TLS (RFC 5425, rustls with CA verification and an optional client certificate).
//! - Size: messages above `max_message_size` (default 2048 bytes for UDP, 65536 for streams) are
//!   truncated (counted, logged) or rejected per record, by policy — never silently.
//! - Acknowledgement: a record counts as sent only when the socket accepted every byte of its
//!   frame. A dead stream connection is detected before each batch; a write failure triggers one
//!   immediate reconnect and resend from the first frame not fully accepted; connect failures
//!   back off exponentially (with jitter) up to `reconnect_max_ms`. Writes have a timeout.
//!
//! Usage: `let mut s = SyslogSender::new(&config, "CEF")?; s.clear(); s.push(i, sev, ms, line)…;
//! let outcome = s.send(n);`
pub mod config;
mod conn;
pub mod error;
pub mod header;
pub mod sender;
pub mod sink;
mod tls;

pub use config::{Framing, HeaderFormat, OversizePolicy, Protocol, SyslogConfig, TlsSettings};
pub use error::SyslogError;
pub use header::severity_from_ecs;
pub use sender::{SendOutcome, SyslogSender};
pub use sink::{parse_transport, split_settings, SyslogLineSink};
