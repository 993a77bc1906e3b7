//! A minimal HTTP endpoint: `GET /metrics` (Prometheus text format), `/health`, `/ready`.
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::pipeline::Metrics;
use crate::source::Source;

/// Binds `addr` and serves until `stop`. Returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    source: Arc<dyn Source>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "metrics endpoint listening (/metrics, /health, /ready)");
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                a = listener.accept() => a,
            };
            let Ok((conn, _)) = accepted else { continue };
            let metrics = metrics.clone();
            let source = source.clone();
            tokio::spawn(async move {
                if let Err(e) = respond(conn, &metrics, source.as_ref()).await {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            });
        }
    });
    Ok(local)
}

async fn respond(
    mut conn: tokio::net::TcpStream,
    metrics: &Metrics,
    source: &dyn Source,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 8192 {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), read)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timeout"))??;
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let failed = metrics.failed.load(Ordering::Relaxed);
    let (status, body, ctype) = match (method, path) {
        ("GET", "/metrics") => {
            let mut body = metrics.prometheus();
            source.write_metrics(&mut body);
            ("200 OK", body, "text/plain; version=0.0.4; charset=utf-8")
        }
        ("GET", "/health") if failed => {
            ("503 Service Unavailable", "failed\n".into(), "text/plain")
        }
        ("GET", "/health") => ("200 OK", "ok\n".into(), "text/plain"),
        ("GET", "/ready") if metrics.ready.load(Ordering::Relaxed) && !failed => {
            ("200 OK", "ready\n".into(), "text/plain")
        }
        ("GET", "/ready") => (
            "503 Service Unavailable",
            "not ready\n".into(),
            "text/plain",
        ),
        ("GET", _) => ("404 Not Found", "not found\n".into(), "text/plain"),
        _ => ("405 Method Not Allowed", "GET only\n".into(), "text/plain"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}
