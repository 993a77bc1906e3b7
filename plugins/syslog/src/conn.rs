//! One live connection to the receiver (UDP socket, TCP stream or TLS session) and the code that
//! opens it, checks it is still alive and writes bytes through it with exact accounting of what
//! the socket accepted.
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::config::{Protocol, Resolved};
use crate::error::SyslogError;

/// Largest plaintext chunk handed to rustls before flushing it to the socket; bytes count as
/// accepted only once the TLS records carrying them were written to the socket.
const TLS_CHUNK: usize = 16 * 1024;

pub(crate) enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<(ClientConnection, TcpStream)>),
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> SyslogError {
    move |source| SyslogError::Io { context, source }
}

fn resolve(cfg: &Resolved) -> Result<Vec<SocketAddr>, SyslogError> {
    let target = format!("{}:{}", cfg.host, cfg.port);
    let addrs: Vec<SocketAddr> = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()
        .map_err(io_err(format!("resolve {target}")))?
        .collect();
    if addrs.is_empty() {
        return Err(SyslogError::Io {
            context: format!("resolve {target}"),
            source: io::Error::new(io::ErrorKind::NotFound, "no address"),
        });
    }
    Ok(addrs)
}

fn connect_tcp(cfg: &Resolved) -> Result<TcpStream, SyslogError> {
    let mut last = None;
    for addr in resolve(cfg)? {
        match TcpStream::connect_timeout(&addr, cfg.connect_timeout) {
            Ok(s) => {
                s.set_write_timeout(Some(cfg.write_timeout))
                    .map_err(io_err("set write timeout".into()))?;
                s.set_read_timeout(Some(cfg.connect_timeout))
                    .map_err(io_err("set read timeout".into()))?;
                s.set_nodelay(true)
                    .map_err(io_err("set TCP_NODELAY".into()))?;
                return Ok(s);
            }
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, source) = last.unwrap_or_else(|| {
        (
            SocketAddr::from(([0, 0, 0, 0], cfg.port)),
            io::Error::new(io::ErrorKind::NotFound, "no address"),
        )
    });
    Err(SyslogError::Io {
        context: format!("connect to {addr}"),
        source,
    })
}

impl Conn {
    /// Opens a connection (and completes the TLS handshake, so certificate problems show here).
    pub(crate) fn open(
        cfg: &Resolved,
        tls: Option<&(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> Result<Conn, SyslogError> {
        match cfg.protocol {
            Protocol::Udp => {
                let addr = resolve(cfg)?[0];
                let local: SocketAddr = if addr.is_ipv4() {
                    SocketAddr::from(([0, 0, 0, 0], 0))
                } else {
                    SocketAddr::from(([0u16; 8], 0))
                };
                let sock = UdpSocket::bind(local).map_err(io_err("bind UDP socket".into()))?;
                sock.connect(addr)
                    .map_err(io_err(format!("connect UDP to {addr}")))?;
                sock.set_write_timeout(Some(cfg.write_timeout))
                    .map_err(io_err("set write timeout".into()))?;
                Ok(Conn::Udp(sock))
            }
            Protocol::Tcp => Ok(Conn::Tcp(connect_tcp(cfg)?)),
            Protocol::Tls => {
                let Some((config, name)) = tls else {
                    return Err(SyslogError::Config(
                        "TLS transport without TLS settings".into(),
                    ));
                };
                let mut sock = connect_tcp(cfg)?;
                let mut conn = ClientConnection::new(config.clone(), name.clone())
                    .map_err(|e| SyslogError::Tls(format!("TLS session: {e}")))?;
                while conn.is_handshaking() {
                    if let Err(e) = conn.complete_io(&mut sock) {
                        let peer = sock
                            .peer_addr()
                            .map_or_else(|_| cfg.host.clone(), |a| a.to_string());
                        return Err(if e.kind() == io::ErrorKind::InvalidData {
                            SyslogError::Tls(format!("handshake with {peer}: {e}"))
                        } else {
                            SyslogError::Io {
                                context: format!("TLS handshake with {peer}"),
                                source: e,
                            }
                        });
                    }
                }
                Ok(Conn::Tls(Box::new((conn, sock))))
            }
        }
    }

    /// True when a stream connection was closed by the peer (syslog receivers never send data,
    /// so EOF, an error or unexpected data all mean the connection is gone). Writing to such a
    /// socket would "succeed" once and lose the data, so check before every batch.
    pub(crate) fn peer_closed(&mut self) -> bool {
        match self {
            Conn::Udp(_) => false,
            Conn::Tcp(s) => {
                if s.set_nonblocking(true).is_err() {
                    return true;
                }
                let closed = !matches!(
                    s.peek(&mut [0u8; 1]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock
                );
                closed || s.set_nonblocking(false).is_err()
            }
            Conn::Tls(b) => {
                let (conn, sock) = &mut **b;
                if sock.set_nonblocking(true).is_err() {
                    return true;
                }
                let mut closed = false;
                loop {
                    match conn.read_tls(sock) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(_) => match conn.process_new_packets() {
                            Ok(state) => {
                                // Session tickets and the like; drain any plaintext.
                                let mut sink = [0u8; 512];
                                while state.plaintext_bytes_to_read() > 0
                                    && matches!(conn.reader().read(&mut sink), Ok(n) if n > 0)
                                {
                                }
                                if state.peer_has_closed() {
                                    closed = true;
                                    break;
                                }
                            }
                            Err(_) => {
                                closed = true;
                                break;
                            }
                        },
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            closed = true;
                            break;
                        }
                    }
                }
                closed || sock.set_nonblocking(false).is_err()
            }
        }
    }

    /// Sends one datagram (UDP only); true when the whole datagram was accepted.
    pub(crate) fn send_datagram(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Udp(s) => {
                let n = s.send(data)?;
                if n == data.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(io::ErrorKind::WriteZero, "short UDP send"))
                }
            }
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not a datagram socket",
            )),
        }
    }

    /// Writes `data` to a stream connection. Returns how many leading bytes the socket
    /// accepted, and the error that stopped it, if any.
    pub(crate) fn write_stream(&mut self, data: &[u8]) -> (usize, io::Result<()>) {
        match self {
            Conn::Udp(_) => (0, Err(io::Error::new(io::ErrorKind::Unsupported, "UDP"))),
            Conn::Tcp(s) => {
                let mut off = 0;
                while off < data.len() {
                    match s.write(&data[off..]) {
                        Ok(0) => return (off, Err(io::ErrorKind::WriteZero.into())),
                        Ok(n) => off += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return (off, Err(e)),
                    }
                }
                (off, Ok(()))
            }
            Conn::Tls(b) => {
                let (conn, sock) = &mut **b;
                let mut off = 0;
                while off < data.len() {
                    let end = (off + TLS_CHUNK).min(data.len());
                    if let Err(e) = conn.writer().write_all(&data[off..end]) {
                        return (off, Err(e));
                    }
                    while conn.wants_write() {
                        match conn.write_tls(sock) {
                            Ok(0) => return (off, Err(io::ErrorKind::WriteZero.into())),
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return (off, Err(e)),
                        }
                    }
                    off = end;
                }
                (off, Ok(()))
            }
        }
    }

    /// Closes politely (TLS close_notify, TCP shutdown).
    pub(crate) fn close(self) {
        match self {
            Conn::Udp(_) => {}
            Conn::Tcp(s) => {
                let _ = s.shutdown(Shutdown::Both);
            }
            Conn::Tls(b) => {
                let (mut conn, mut sock) = *b;
                conn.send_close_notify();
                while conn.wants_write() {
                    if conn.write_tls(&mut sock).is_err() {
                        break;
                    }
                }
                let _ = sock.shutdown(Shutdown::Both);
            }
        }
    }
}
