//! Upstream connections: connecting with a timeout, the link timeout that notices a lost host,
//! and [`UpConn`], the connection plus its read buffer as it moves between an exchange
//! (`crate::proxy`) and the core's pool (`crate::cores::pool`).
//!
//! The crate's one `unsafe` block is here: borrowing the descriptor of a socket monoio opened,
//! to set TCP options on it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::error::{ErrorKind, ProxyError};

/// Read buffer size of an upstream connection.
pub const UPSTREAM_BUF: usize = 16 * 1024;

/// An open upstream connection with the bytes read from it and not yet used.
#[derive(Debug)]
pub struct UpConn {
    /// The socket.
    pub stream: TcpStream,
    /// Read buffer (empty between exchanges when the connection is pooled).
    pub buf: Vec<u8>,
    /// When it was last returned to the pool.
    pub idle_since: Instant,
}

/// Connects to `addr` within `timeout`. With a `link` timeout, the connection also fails (its
/// next read or write returns `TimedOut`) once data it sent stays unacknowledged that long, or,
/// while it waits with nothing in flight, once keepalive probes go unanswered that long: a host
/// that crashed or was cut off is noticed in seconds, not after the kernel's 15 minutes. A
/// healthy backend acknowledges at once, however long it takes to answer.
///
/// # Errors
/// [`ErrorKind::ConnectTimeout`] or [`ErrorKind::ConnectRefused`] (any connect error).
///
/// # Cancel safety
/// Dropping it abandons the attempt; nothing is leaked.
pub async fn connect(
    addr: SocketAddr,
    timeout: Duration,
    link: Option<Duration>,
) -> Result<UpConn, ProxyError> {
    match monoio::time::timeout(timeout, TcpStream::connect_addr(addr)).await {
        Err(_) => Err(ProxyError::new(ErrorKind::ConnectTimeout)),
        Ok(Err(e)) => {
            tracing::debug!(backend = %addr, error = %e, "upstream connect failed");
            Err(ProxyError::new(ErrorKind::ConnectRefused))
        }
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            if let Some(link) = link
                && let Err(e) = watch_link(&stream, link)
            {
                tracing::debug!(backend = %addr, error = %e, "cannot set the link timeout");
            }
            Ok(UpConn {
                stream,
                buf: Vec::with_capacity(UPSTREAM_BUF),
                idle_since: Instant::now(),
            })
        }
    }
}

/// The socket's descriptor, borrowed for as long as the stream.
#[allow(unsafe_code)]
fn fd(stream: &TcpStream) -> std::os::fd::BorrowedFd<'_> {
    use std::os::fd::{AsRawFd as _, BorrowedFd};
    // SAFETY: the descriptor is open and owned by `stream`, and the borrow cannot outlive
    // `stream`; nothing here closes it.
    unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) }
}

/// Sets TCP_USER_TIMEOUT and keepalive probes so that `link` without an acknowledgement from
/// the peer fails the connection.
fn watch_link(stream: &TcpStream, link: Duration) -> std::io::Result<()> {
    let fd = fd(stream);
    let sock = socket2::SockRef::from(&fd);
    sock.set_tcp_user_timeout(Some(link))?;
    // The kernel counts keepalive in whole seconds, at least 1: probe after half the link
    // timeout of silence, then every second; the user timeout decides when it is over.
    let idle = Duration::from_secs((link.as_secs() / 2).max(1));
    let probes = u32::try_from(link.as_secs()).unwrap_or(u32::MAX).max(1);
    sock.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(Duration::from_secs(1))
            .with_retries(probes),
    )
}

/// Switches the user-timeout half of the link timeout off (`None`) or back on. The kernel also
/// applies TCP_USER_TIMEOUT to a zero window: a live backend that reads a large request body
/// slowly would count as a lost host, so the timeout is paused while such a body streams.
///
/// # Errors
/// The setsockopt failed.
pub fn set_user_timeout(stream: &TcpStream, link: Option<Duration>) -> std::io::Result<()> {
    let fd = fd(stream);
    socket2::SockRef::from(&fd).set_tcp_user_timeout(link)
}
