//! Upstream connections: connecting with a timeout, and the connection plus its read buffer
//! as it moves between an exchange and the core's pool.

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

/// Connects to `addr` within `timeout`.
///
/// # Errors
/// [`ErrorKind::ConnectTimeout`] or [`ErrorKind::ConnectRefused`] (any connect error).
///
/// # Cancel safety
/// Dropping it abandons the attempt; nothing is leaked.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<UpConn, ProxyError> {
    match monoio::time::timeout(timeout, TcpStream::connect_addr(addr)).await {
        Err(_) => Err(ProxyError::new(ErrorKind::ConnectTimeout)),
        Ok(Err(e)) => {
            tracing::debug!(backend = %addr, error = %e, "upstream connect failed");
            Err(ProxyError::new(ErrorKind::ConnectRefused))
        }
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(UpConn {
                stream,
                buf: Vec::with_capacity(UPSTREAM_BUF),
                idle_since: Instant::now(),
            })
        }
    }
}
