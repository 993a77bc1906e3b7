//! The batch sender: frames messages (header + payload, octet counting / LF / one datagram each),
//! applies the size policy, writes them, and reports exactly which records the socket accepted.
//! Reconnects with exponential backoff (with jitter) and retries a batch once on a fresh
//! connection when an existing connection turns out to be dead.
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::config::{Framing, HeaderTime, OversizePolicy, Protocol, Resolved, SyslogConfig};
use crate::conn::Conn;
use crate::error::SyslogError;
use crate::header::write_header;

/// The result of [`SyslogSender::send`].
#[derive(Debug)]
pub struct SendOutcome {
    /// Records `0..handled` were dealt with: sent (accepted by the socket) or rejected.
    pub handled: usize,
    /// Records refused permanently (too large under `oversize = "reject"`, or containing LF
    /// with newline framing), with the reason; all with index `< handled`.
    pub rejected: Vec<(usize, String)>,
    /// Messages cut to `max_message_size` under `oversize = "truncate"` (all with index `< handled`
    /// are included, including unsent ones is avoided).
    pub truncated: usize,
    /// Why records `handled..` were not sent.
    pub error: Option<SyslogError>,
}

struct Frame {
    /// End offset of the frame in the batch buffer.
    end: usize,
    /// Record index in the batch.
    index: usize,
    truncated: bool,
}

struct Backoff {
    initial: Duration,
    max: Duration,
    delay: Duration,
    next_attempt: Option<Instant>,
    last_error: String,
    seed: u64,
}

impl Backoff {
    fn failed(&mut self, err: &SyslogError) {
        // xorshift jitter in [0.8, 1.2) of the delay; no RNG dependency needed.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let factor = 0.8 + (self.seed % 1000) as f64 / 2500.0;
        let wait = self.delay.mul_f64(factor);
        self.next_attempt = Some(Instant::now() + wait);
        self.last_error = err.to_string();
        self.delay = (self.delay * 2).min(self.max);
    }

    fn succeeded(&mut self) {
        self.delay = self.initial;
        self.next_attempt = None;
        self.last_error.clear();
    }
}

/// A syslog sender for one receiver. Not thread-safe by design: one sink, one caller.
pub struct SyslogSender {
    cfg: Resolved,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    conn: Option<Conn>,
    backoff: Backoff,
    buf: Vec<u8>,
    frames: Vec<Frame>,
    rejected: Vec<(usize, String)>,
    scratch: Vec<u8>,
    /// Frames accepted by the socket since the sender was created.
    pub sent_total: u64,
    /// Connections opened since the sender was created.
    pub connects_total: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Cuts `msg` to at most `max` bytes on a UTF-8 boundary, without leaving a dangling `\`
/// (which would turn the last character of a CEF line into a broken escape).
fn truncate_message(msg: &mut Vec<u8>, max: usize) {
    let mut cut = max.min(msg.len());
    while cut > 0 && cut < msg.len() && (msg[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    msg.truncate(cut);
    let trailing = msg.iter().rev().take_while(|&&b| b == b'\\').count();
    if trailing % 2 == 1 {
        msg.pop();
    }
}

impl SyslogSender {
    /// Checks the settings and prepares TLS (reading the CA and client certificate files). The
    /// connection itself is opened on the first send. `default_msg_id` is the RFC 5424 MSGID
    /// when the settings name none (`CEF`, `LEEF`).
    pub fn new(config: &SyslogConfig, default_msg_id: &str) -> Result<SyslogSender, SyslogError> {
        let cfg = config.resolve(default_msg_id)?;
        let tls = match cfg.protocol {
            Protocol::Tls => Some((
                crate::tls::client_config(&cfg.tls)?,
                crate::tls::server_name(&cfg.tls, &cfg.host)?,
            )),
            _ => None,
        };
        let seed = (now_ms() as u64) ^ u64::from(std::process::id()) | 1;
        Ok(SyslogSender {
            backoff: Backoff {
                initial: cfg.reconnect_initial,
                max: cfg.reconnect_max,
                delay: cfg.reconnect_initial,
                next_attempt: None,
                last_error: String::new(),
                seed,
            },
            cfg,
            tls,
            conn: None,
            buf: Vec::with_capacity(64 * 1024),
            frames: Vec::new(),
            rejected: Vec::new(),
            scratch: Vec::with_capacity(4096),
            sent_total: 0,
            connects_total: 0,
        })
    }

    /// `host:port` of the receiver.
    pub fn target(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }

    /// True while a connection is open (UDP: a socket exists).
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The error that started the current backoff, if any.
    pub fn last_error(&self) -> Option<&str> {
        (!self.backoff.last_error.is_empty()).then_some(self.backoff.last_error.as_str())
    }

    /// Starts a new batch (drops anything pushed and not sent).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.frames.clear();
        self.rejected.clear();
    }

    /// Adds record `index`'s message to the batch: `severity` 0–7, event time in epoch ms,
    /// `payload` the CEF/LEEF line. Indices must increase.
    pub fn push(&mut self, index: usize, severity: u8, time_ms: i64, payload: &str) {
        let time = match self.cfg.header_time {
            HeaderTime::Event => time_ms,
            HeaderTime::Now => now_ms(),
        };
        self.scratch.clear();
        write_header(&self.cfg, severity, time, &mut self.scratch);
        self.scratch.extend_from_slice(payload.as_bytes());
        let stream_newline =
            self.cfg.protocol != Protocol::Udp && self.cfg.framing == Framing::Newline;
        if stream_newline && self.scratch.contains(&b'\n') {
            self.rejected.push((
                index,
                "message contains a line feed, which newline framing cannot carry (use octet-counting)"
                    .into(),
            ));
            return;
        }
        let max = self.cfg.max_message_size;
        let mut truncated = false;
        if self.scratch.len() > max {
            match self.cfg.oversize {
                OversizePolicy::Reject => {
                    self.rejected.push((
                        index,
                        format!(
                            "syslog message of {} bytes exceeds max_message_size {max} (oversize = \"reject\")",
                            self.scratch.len()
                        ),
                    ));
                    return;
                }
                OversizePolicy::Truncate => {
                    truncate_message(&mut self.scratch, max);
                    truncated = true;
                }
            }
        }
        match (self.cfg.protocol, self.cfg.framing) {
            (Protocol::Udp, _) => self.buf.extend_from_slice(&self.scratch),
            (_, Framing::OctetCounting) => {
                self.buf
                    .extend_from_slice(itoa_usize(self.scratch.len()).as_bytes());
                self.buf.push(b' ');
                self.buf.extend_from_slice(&self.scratch);
            }
            (_, Framing::Newline) => {
                self.buf.extend_from_slice(&self.scratch);
                self.buf.push(b'\n');
            }
        }
        self.frames.push(Frame {
            end: self.buf.len(),
            index,
            truncated,
        });
    }

    fn connect(&mut self) -> Result<(), SyslogError> {
        match Conn::open(&self.cfg, self.tls.as_ref()) {
            Ok(c) => {
                tracing::info!(target = %self.target(), protocol = ?self.cfg.protocol, "syslog connected");
                self.conn = Some(c);
                self.connects_total += 1;
                self.backoff.succeeded();
                Ok(())
            }
            Err(e) => {
                self.backoff.failed(&e);
                tracing::warn!(target = %self.target(), error = %e, "syslog connect failed");
                Err(e)
            }
        }
    }

    fn ensure_connected(&mut self) -> Result<(), SyslogError> {
        if let Some(c) = self.conn.as_mut() {
            if !c.peer_closed() {
                return Ok(());
            }
            tracing::info!(target = %self.target(), "syslog connection closed by peer; reconnecting");
            if let Some(c) = self.conn.take() {
                c.close();
            }
        }
        if let Some(at) = self.backoff.next_attempt {
            let now = Instant::now();
            if now < at {
                return Err(SyslogError::Backoff {
                    target: self.target(),
                    wait_ms: (at - now).as_millis() as u64,
                    last: self.backoff.last_error.clone(),
                });
            }
        }
        self.connect()
    }

    /// Sends the batch of `n` records pushed since [`SyslogSender::clear`].
    pub fn send(&mut self, n: usize) -> SendOutcome {
        let sent = if self.frames.is_empty() {
            Ok(0)
        } else {
            self.send_frames()
        };
        let (k, error) = match sent {
            Ok(k) => (k, None),
            Err((k, e)) => (k, Some(e)),
        };
        self.sent_total += k as u64;
        let handled = self.frames.get(k).map_or(n, |f| f.index);
        let truncated = self.frames[..k].iter().filter(|f| f.truncated).count();
        if truncated > 0 {
            tracing::warn!(
                target = %self.target(),
                truncated,
                max_message_size = self.cfg.max_message_size,
                "syslog messages truncated to max_message_size (oversize = \"truncate\")"
            );
        }
        let rejected = self
            .rejected
            .drain(..)
            .filter(|(i, _)| *i < handled)
            .collect();
        SendOutcome {
            handled,
            rejected,
            truncated,
            error,
        }
    }

    /// Writes the frames; returns how many the socket accepted (and the error that stopped it).
    fn send_frames(&mut self) -> Result<usize, (usize, SyslogError)> {
        self.ensure_connected().map_err(|e| (0, e))?;
        let mut k = 0usize;
        let mut retried = false;
        loop {
            let start = if k == 0 { 0 } else { self.frames[k - 1].end };
            let Some(conn) = self.conn.as_mut() else {
                return Err((k, SyslogError::Config("no connection".into())));
            };
            let failure = if self.cfg.protocol == Protocol::Udp {
                let mut err = None;
                while k < self.frames.len() {
                    let s = if k == 0 { 0 } else { self.frames[k - 1].end };
                    match conn.send_datagram(&self.buf[s..self.frames[k].end]) {
                        Ok(()) => k += 1,
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                err
            } else {
                let (written, res) = conn.write_stream(&self.buf[start..]);
                let upto = start + written;
                while k < self.frames.len() && self.frames[k].end <= upto {
                    k += 1;
                }
                res.err()
            };
            let Some(e) = failure else { return Ok(k) };
            let e_kind = e.kind();
            let err = SyslogError::Io {
                context: format!("write to {}", self.target()),
                source: e,
            };
            if let Some(c) = self.conn.take() {
                c.close();
            }
            // Only a dead connection is worth an immediate second try; a timeout means the
            // receiver is slow, and hammering it with a new connection would not help.
            let dead = matches!(
                e_kind,
                ErrorKind::BrokenPipe
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotConnected
                    | ErrorKind::WriteZero
                    | ErrorKind::UnexpectedEof
            );
            if retried || !dead || self.cfg.protocol == Protocol::Udp {
                self.backoff.failed(&err);
                return Err((k, err));
            }
            // The connection died under us (or before us): one immediate reconnect, then
            // resend from the first frame the old socket did not fully accept.
            tracing::warn!(target = %self.target(), error = %err, sent = k, "syslog write failed; reconnecting");
            retried = true;
            if let Err(e) = self.connect() {
                return Err((k, e));
            }
        }
    }

    /// Closes the connection politely (TLS close_notify).
    pub fn close(&mut self) {
        if let Some(c) = self.conn.take() {
            c.close();
        }
    }
}

fn itoa_usize(n: usize) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_utf8_and_escapes_whole() {
        let mut m = "abc日本".as_bytes().to_vec();
        truncate_message(&mut m, 5);
        assert_eq!(m, b"abc");
        let mut m = b"msg=a\\\\b".to_vec();
        truncate_message(&mut m, 6);
        assert_eq!(m, b"msg=a");
        let mut m = b"msg=a\\\\b".to_vec();
        truncate_message(&mut m, 7);
        assert_eq!(m, b"msg=a\\\\");
    }
}
