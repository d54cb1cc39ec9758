//! Asking another daemon something over UDP from inside a daemon: one fresh socket per call (so
//! the reply needs no correlation id), driven by the protocol's retry policy
//! (`skr8tr_proto::wire::retry`): the request re-signed on every attempt (hedged signatures
//! differ, so a retry is never taken for a replay), bounded attempts with doubling waits.
//!
//! Owns the socket, the receive loop and the timers; every decision (how long to wait, what to
//! send, which datagram is the answer, which send failure is only a loss) is the policy's.
//! Fire-and-forget messages (heartbeats, pushes) do not come through [`call`], only [`notify`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use skr8tr_proto::auth::{AuthError, SigningKey, SystemClock};
use skr8tr_proto::wire::MAX_DATAGRAM;
use skr8tr_proto::wire::retry::{self, Backoff, Heard};

use crate::{Driver, UdpEndpoint};

/// Why a call got no reply.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no reply from {to} after {attempts} attempts")]
    NoReply { to: SocketAddr, attempts: u32 },
    #[error("cannot reach {to}")]
    Io {
        to: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot sign the request")]
    Sign(#[source] AuthError),
}

/// How patient a call is.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    pub attempts: u32,
    pub first_wait: Duration,
}

impl Patience {
    /// For requests to a daemon on a LAN: 4 tries, 200 ms doubling (≈3 s in all).
    pub const DEFAULT: Self = Self {
        attempts: 4,
        first_wait: Duration::from_millis(200),
    };

    /// The back-off these figures mean: `attempts` tries (at least one), each waiting twice as
    /// long as the one before, from `first_wait`.
    #[must_use]
    pub const fn backoff(self) -> Backoff {
        Backoff::doubling(self.first_wait, self.attempts)
    }
}

/// Sends `request` to `to` (signed with `key` when given) and returns the first reply-kind
/// datagram that comes back from `to`.
///
/// # Errors
/// [`CallError`] when nothing answered, the socket failed, or signing failed.
pub async fn call(
    driver: Driver,
    to: SocketAddr,
    request: &str,
    key: Option<&SigningKey>,
    patience: Patience,
) -> Result<String, CallError> {
    let bind = match to.ip() {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let socket = UdpEndpoint::bind(driver, bind).map_err(|source| CallError::Io { to, source })?;
    let socket = std::rc::Rc::new(socket);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    // One receive loop for the whole call: io_uring receives are not cancel-safe, so the loop
    // is never raced against a timer; it ends when the call drops the receiver.
    let receiver = {
        let socket = socket.clone();
        crate::spawn(async move {
            let mut buf = Vec::with_capacity(MAX_DATAGRAM + 1);
            loop {
                let (res, data) = socket.recv_from(buf).await;
                match res {
                    Ok(from)
                        if from == to || (from.port() == to.port() && to.ip().is_unspecified()) =>
                    {
                        if let Heard::Reply(text) = retry::heard(&data)
                            && tx.send(text.to_owned()).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) if tx.is_closed() => return,
                    Err(_) => {}
                }
                buf = data;
            }
        })
    };
    let backoff = patience.backoff();
    let started = Instant::now();
    let mut attempt = 0;
    let mut result = Err(CallError::NoReply {
        to,
        attempts: patience.attempts,
    });
    while let Some(wait) = backoff.wait(attempt, started.elapsed()) {
        attempt += 1;
        let datagram = match retry::datagram(request, key, SystemClock::now()) {
            Ok(d) => d,
            Err(e) => {
                result = Err(CallError::Sign(e));
                break;
            }
        };
        if let Err(e) = socket.send_to(datagram.into_bytes(), to).await
            && !retry::is_loss(e.kind())
        {
            result = Err(CallError::Io { to, source: e });
            break;
        }
        if let Ok(Some(reply)) = tokio::time::timeout(wait, rx.recv()).await {
            result = Ok(reply);
            break;
        }
    }
    drop(rx);
    receiver.abort();
    result
}

/// Sends one datagram without waiting for anything (heartbeats, pushes), signed when a key is
/// given (as one attempt of a call is).
///
/// # Errors
/// Signing or sending failed.
pub async fn notify(
    socket: &UdpEndpoint,
    to: SocketAddr,
    message: &str,
    key: Option<&SigningKey>,
) -> Result<(), CallError> {
    let datagram = retry::datagram(message, key, SystemClock::now()).map_err(CallError::Sign)?;
    socket
        .send_to(datagram.into_bytes(), to)
        .await
        .map_err(|source| CallError::Io { to, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_then_succeeds_and_gives_up_on_silence() {
        for epoll in [false, true] {
            crate::run_with("test", epoll, |driver| async move {
                let server = UdpEndpoint::bind(driver, "127.0.0.1:0".parse().unwrap()).unwrap();
                let addr = server.local_addr().unwrap();
                crate::spawn(async move {
                    // Ignore the first attempt, answer the second.
                    let (_, buf) = server.recv_from(Vec::with_capacity(256)).await;
                    let (from, _) = server.recv_from(buf).await;
                    server
                        .send_to(b"OK|PONG|tower".to_vec(), from.unwrap())
                        .await
                        .unwrap();
                });
                let patience = Patience {
                    attempts: 3,
                    first_wait: Duration::from_millis(100),
                };
                let reply = call(driver, addr, "PING", None, patience).await.unwrap();
                assert_eq!(reply, "OK|PONG|tower");

                let silent = UdpEndpoint::bind(driver, "127.0.0.1:0".parse().unwrap()).unwrap();
                let to = silent.local_addr().unwrap();
                let patience = Patience {
                    attempts: 2,
                    first_wait: Duration::from_millis(50),
                };
                assert!(matches!(
                    call(driver, to, "PING", None, patience).await,
                    Err(CallError::NoReply { attempts: 2, .. })
                ));
            })
            .unwrap();
        }
    }
}
