//! A UDP socket on whichever driver the daemon runs: tokio-uring's (io_uring) or tokio's
//! (epoll). Owned buffers go in and come back, as io_uring requires; the epoll arm copies
//! nothing extra.
//!
//! # Cancel safety
//! `recv_from` on io_uring is not cancel-safe (the kernel may complete into a buffer the
//! future no longer holds; tokio-uring keeps the buffer alive, but the datagram is lost).
//! Daemons run one receive loop per socket ([`crate::serve`]) and never race it in a `select!`
//! with a timeout.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::Driver;

/// Socket receive buffer asked for: room for a burst of 60 KiB datagrams (signed LAUNCHes,
/// heartbeats of busy nodes).
const RECV_BUFFER: usize = 4 * 1024 * 1024;

/// A bound UDP socket.
pub enum UdpEndpoint {
    Uring(tokio_uring::net::UdpSocket),
    Epoll(tokio::net::UdpSocket),
}

impl std::fmt::Debug for UdpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let driver = match self {
            Self::Uring(_) => "io_uring",
            Self::Epoll(_) => "epoll",
        };
        f.debug_struct("UdpEndpoint")
            .field("driver", &driver)
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl UdpEndpoint {
    /// Binds `addr` (port 0 for an ephemeral port) on `driver`. Must be called inside the
    /// daemon's runtime.
    ///
    /// # Errors
    /// The bind error (e.g. address in use), unchanged so `main` can report it.
    pub fn bind(driver: Driver, addr: SocketAddr) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if addr.is_ipv6() {
            // `[::]` listens on both families unless the system says otherwise.
            let _ = socket.set_only_v6(false);
        }
        let _ = socket.set_recv_buffer_size(RECV_BUFFER);
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        let std: std::net::UdpSocket = socket.into();
        Ok(match driver {
            Driver::IoUring => Self::Uring(tokio_uring::net::UdpSocket::from_std(std)),
            Driver::Epoll => Self::Epoll(tokio::net::UdpSocket::from_std(std)?),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Uring(s) => s.local_addr(),
            Self::Epoll(s) => s.local_addr(),
        }
    }

    /// Receives one datagram into `buf` (its capacity is the limit; its length is set to the
    /// datagram's). Returns the buffer in every case.
    pub async fn recv_from(&self, mut buf: Vec<u8>) -> (io::Result<SocketAddr>, Vec<u8>) {
        match self {
            Self::Uring(s) => {
                buf.clear();
                let (res, mut buf) = s.recv_from(buf).await;
                match res {
                    Ok((n, from)) => {
                        buf.truncate(n);
                        (Ok(from), buf)
                    }
                    Err(e) => (Err(e), buf),
                }
            }
            Self::Epoll(s) => {
                let cap = buf.capacity();
                buf.resize(cap, 0);
                match s.recv_from(&mut buf).await {
                    Ok((n, from)) => {
                        buf.truncate(n);
                        (Ok(from), buf)
                    }
                    Err(e) => {
                        buf.clear();
                        (Err(e), buf)
                    }
                }
            }
        }
    }

    /// Sends `data` to `to` as one datagram.
    ///
    /// # Errors
    /// As `sendto(2)`; a short send is reported as an error.
    pub async fn send_to(&self, data: Vec<u8>, to: SocketAddr) -> io::Result<()> {
        let len = data.len();
        let sent = match self {
            Self::Uring(s) => s.send_to(data, to).await.0?,
            Self::Epoll(s) => s.send_to(&data, to).await?,
        };
        if sent == len {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "short datagram send: {sent} of {len} bytes"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram goes out and comes back on both drivers, with spawned tasks and timers.
    #[test]
    fn echo_on_both_drivers() {
        for epoll in [false, true] {
            let got = crate::run_with("test", epoll, |driver| async move {
                if !epoll {
                    // io_uring may be unavailable where tests run; the fallback is then used.
                    assert!(matches!(driver, Driver::IoUring | Driver::Epoll));
                } else {
                    assert_eq!(driver, Driver::Epoll);
                }
                let server = UdpEndpoint::bind(driver, "127.0.0.1:0".parse().unwrap()).unwrap();
                let server_addr = server.local_addr().unwrap();
                let echo = crate::spawn(async move {
                    let (from, buf) = server.recv_from(Vec::with_capacity(1024)).await;
                    server.send_to(buf, from.unwrap()).await.unwrap();
                });
                let client = UdpEndpoint::bind(driver, "127.0.0.1:0".parse().unwrap()).unwrap();
                client.send_to(b"PING".to_vec(), server_addr).await.unwrap();
                let (from, buf) = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    client.recv_from(Vec::with_capacity(1024)),
                )
                .await
                .unwrap();
                echo.await.unwrap();
                assert_eq!(from.unwrap(), server_addr);
                buf
            })
            .unwrap();
            assert_eq!(got, b"PING");
        }
    }
}
