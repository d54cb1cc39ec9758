//! The control daemons' admin listener (SPEC §7.4: `--admin`): a small read-only HTTP/1.1
//! server for `/metrics`, `/healthz`, the Conductor's status page and its server-sent events.
//!
//! ```text
//! TCP accept ─▶ request head (≤ 8 KiB, 5 s) ─▶ GET/HEAD? ─▶ pages(path) ─▶ Page ─▶ write, close
//!                                                 │                    └─▶ Events ─▶ stream
//!                                                 └─ other method ─▶ 405
//! ```
//! Owns the HTTP side only: what a path answers is the daemon's `pages` function, a pure map
//! from the path (query included) to an [`AdminReply`]. One request per connection. An event
//! stream sends the watched value at once and again each time it changes (at most every
//! [`EVENTS_MIN_GAP`]), with a comment every [`EVENTS_KEEPALIVE`] so idle proxies keep it
//! open; at most [`MAX_STREAMS`] streams are open at a time (more get 503), so a crowd of
//! browser tabs cannot hold the daemon's memory. Nothing here changes daemon state.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Most event streams open at once.
pub const MAX_STREAMS: usize = 32;
/// A comment line on an idle event stream this often.
pub const EVENTS_KEEPALIVE: Duration = Duration::from_secs(15);
/// Shortest time between two events of one stream (changes in between are folded).
pub const EVENTS_MIN_GAP: Duration = Duration::from_millis(250);

/// What a path answers.
#[derive(Debug)]
pub enum AdminReply {
    /// A whole response.
    Page {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// `text/event-stream`: the receiver's value as one event now and after each change.
    Events(watch::Receiver<String>),
}

impl AdminReply {
    /// `200` with `body` of `content_type`.
    #[must_use]
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self::Page {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// A plain-text page with `status`.
    #[must_use]
    pub fn text(status: u16, body: &str) -> Self {
        Self::Page {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    /// `404 not found`.
    #[must_use]
    pub fn not_found() -> Self {
        Self::text(404, "not found\n")
    }
}

/// Why `--admin` cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AdminBindError {
    #[error("{flag}: {source}")]
    Address {
        flag: &'static str,
        #[source]
        source: crate::AddressError,
    },
    #[error("{flag}: cannot listen on tcp {addr}")]
    Bind {
        flag: &'static str,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Binds the admin listener of `flag` (`HOST[:PORT]`, a bare port meaning 127.0.0.1, IPv6 in
/// brackets), or nothing for `off`. Bound by `main`, before the runtime starts, so that a busy
/// port ends the daemon with its one-line reason.
///
/// # Errors
/// The address does not parse or resolve, or cannot be bound.
pub fn bind(
    flag: &'static str,
    value: &str,
    default_port: u16,
) -> Result<Option<std::net::TcpListener>, AdminBindError> {
    if matches!(value.trim(), "off" | "none" | "") {
        return Ok(None);
    }
    let lo = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    let addr = crate::parse_host_port(value, lo, default_port)
        .map_err(|source| AdminBindError::Address { flag, source })?;
    std::net::TcpListener::bind(addr)
        .map(Some)
        .map_err(|source| AdminBindError::Bind { flag, addr, source })
}

/// The Prometheus text format's content type (what `prometheus-client` writes).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `listener` until the task is dropped; `pages` answers each path.
pub async fn serve(listener: TcpListener, pages: Rc<dyn Fn(&str) -> AdminReply>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin listener ready");
    }
    let streams = Rc::new(Cell::new(0_usize));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let pages = Rc::clone(&pages);
                let streams = Rc::clone(&streams);
                crate::spawn(async move {
                    if let Err(e) = answer(stream, pages.as_ref(), &streams).await {
                        tracing::debug!(error = %e, "admin request failed");
                    }
                });
            }
            Err(e) => {
                // Out of descriptors, most likely: wait a little instead of spinning.
                tracing::warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The request line's method and target, from a whole head; `None` when it is not HTTP/1.x.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (version.starts_with("HTTP/1.") && parts.next().is_none()).then_some((method, target))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn answer(
    mut stream: TcpStream,
    pages: &dyn Fn(&str) -> AdminReply,
    streams: &Cell<usize>,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut chunk = [0_u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Ok::<(), std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return Ok(());
    }
    let (reply, head_only) = match request_line(&head) {
        None => (AdminReply::text(400, "bad request\n"), false),
        Some(("GET", target)) => (pages(target), false),
        Some(("HEAD", target)) => (pages(target), true),
        Some(_) => (AdminReply::text(405, "read-only: GET or HEAD\n"), false),
    };
    match reply {
        AdminReply::Page {
            status,
            content_type,
            body,
        } => {
            let allow = if status == 405 {
                "Allow: GET, HEAD\r\n"
            } else {
                ""
            };
            let response = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{allow}Connection: close\r\n\r\n",
                reason(status),
                body.len()
            );
            stream.write_all(response.as_bytes()).await?;
            if !head_only {
                stream.write_all(&body).await?;
            }
            stream.shutdown().await
        }
        AdminReply::Events(_) if streams.get() >= MAX_STREAMS => {
            let body = "too many event streams open\n";
            let response = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(response.as_bytes()).await?;
            stream.shutdown().await
        }
        AdminReply::Events(rx) => {
            streams.set(streams.get() + 1);
            let result = events(&mut stream, rx, head_only).await;
            streams.set(streams.get().saturating_sub(1));
            result
        }
    }
}

/// One event's bytes: every line of `data` as a `data:` line, then a blank line.
#[must_use]
pub fn event_bytes(data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.trim_end_matches('\r').as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

async fn events(
    stream: &mut TcpStream,
    mut rx: watch::Receiver<String>,
    head_only: bool,
) -> std::io::Result<()> {
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n",
        )
        .await?;
    if head_only {
        return stream.shutdown().await;
    }
    let first = event_bytes(&rx.borrow_and_update());
    stream.write_all(&first).await?;
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    // The daemon is stopping.
                    return stream.shutdown().await;
                }
                tokio::time::sleep(EVENTS_MIN_GAP).await;
                let data = event_bytes(&rx.borrow_and_update());
                stream.write_all(&data).await?;
            }
            () = tokio::time::sleep(EVENTS_KEEPALIVE) => {
                stream.write_all(b": keep-alive\n\n").await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_line(b"HEAD / HTTP/1.0\r\n\r\n"),
            Some(("HEAD", "/"))
        );
        for bad in [
            &b""[..],
            b"GET /\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(request_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn events_are_data_lines_then_a_blank_line() {
        assert_eq!(event_bytes("{\"a\":1}"), b"data: {\"a\":1}\n\n");
        assert_eq!(event_bytes("a\nb\r\n"), b"data: a\ndata: b\ndata: \n\n");
    }
}
