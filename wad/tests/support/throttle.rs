//! A tiny HTTP/1.1 proxy in front of Azurite that answers the first requests itself with the
//! Table service's throttling and timeout errors (503 `ServerBusy`, 500 `OperationTimedOut`)
//! and forwards every other request unchanged. Azurite cannot throttle; this is the same
//! protocol exchange a real storage account has under load.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy answers to the next requests, in order; then it forwards.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    ServerBusy,
    OperationTimedOut,
}

pub struct ThrottleProxy {
    pub endpoint: Url,
    pub refused: Arc<AtomicUsize>,
    pub forwarded: Arc<AtomicUsize>,
    plan: Arc<Mutex<Vec<Refusal>>>,
}

impl ThrottleProxy {
    /// Starts a proxy for `upstream` (Azurite's table endpoint incl. the account path).
    pub async fn start(upstream: &Url, refusals: Vec<Refusal>) -> ThrottleProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let upstream_addr = format!(
            "{}:{}",
            upstream.host_str().expect("host"),
            upstream.port_or_known_default().expect("port")
        );
        let mut endpoint = upstream.clone();
        endpoint.set_port(Some(port)).expect("port");
        let refused = Arc::new(AtomicUsize::new(0));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let plan = Arc::new(Mutex::new(refusals.into_iter().rev().collect::<Vec<_>>()));
        let (r, f, p) = (refused.clone(), forwarded.clone(), plan.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (r, f, p, up) = (r.clone(), f.clone(), p.clone(), upstream_addr.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, &up, &p, &r, &f).await;
                });
            }
        });
        ThrottleProxy {
            endpoint,
            refused,
            forwarded,
            plan,
        }
    }

    /// Makes the next requests be refused, in this order.
    pub fn refuse_next(&self, refusals: &[Refusal]) {
        let mut p = self.plan.lock().unwrap();
        for r in refusals.iter().rev() {
            p.push(*r);
        }
    }
}

/// Reads one request (head + Content-Length body); None at EOF.
async fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(head_end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = head_end + 4 + len;
            while buf.len() < total {
                let mut chunk = [0u8; 16384];
                let n = conn.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let req: Vec<u8> = buf.drain(..total).collect();
            return Ok(Some(req));
        }
        let mut chunk = [0u8; 16384];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve(
    mut conn: TcpStream,
    upstream: &str,
    plan: &Mutex<Vec<Refusal>>,
    refused: &AtomicUsize,
    forwarded: &AtomicUsize,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf).await? {
        let refusal = plan.lock().unwrap().pop();
        if let Some(r) = refusal {
            refused.fetch_add(1, Ordering::SeqCst);
            let (status, code, message) = match r {
                Refusal::ServerBusy => ("503 Server Busy", "ServerBusy", "The server is busy."),
                Refusal::OperationTimedOut => (
                    "500 Operation Timed Out",
                    "OperationTimedOut",
                    "Operation could not be completed within the specified time.",
                ),
            };
            let body = format!(
                "{{\"odata.error\":{{\"code\":\"{code}\",\"message\":{{\"lang\":\"en-US\",\"value\":\"{message}\\nRequestId:test\"}}}}}}"
            );
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json;odata=minimalmetadata\r\nx-ms-error-code: {code}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(resp.as_bytes()).await?;
            continue;
        }
        forwarded.fetch_add(1, Ordering::SeqCst);
        // Forward with `Connection: close` so the upstream answer ends at EOF, relay it,
        // then close this connection too (the client opens a new one).
        let head_end = find(&req, b"\r\n\r\n").unwrap_or(req.len());
        let head = String::from_utf8_lossy(&req[..head_end]);
        let mut out = String::new();
        for line in head.split("\r\n") {
            if !line.to_ascii_lowercase().starts_with("connection:") {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut up = TcpStream::connect(upstream).await?;
        up.write_all(out.as_bytes()).await?;
        up.write_all(&req[(head_end + 4).min(req.len())..]).await?;
        let mut resp = Vec::new();
        up.read_to_end(&mut resp).await?;
        conn.write_all(&resp).await?;
        conn.shutdown().await?;
        return Ok(());
    }
    Ok(())
}
