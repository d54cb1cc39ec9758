//! The operator CLI's side of the wire: one request, one reply, over a blocking UDP socket,
//! retried with back-off when a datagram is lost, signed afresh on every attempt.
//!
//! It owns the socket and the clock only: when to retry, what each attempt sends and which
//! datagram is the reply are the protocol's retry policy (`skr8tr_proto::wire::retry`), which
//! the daemons' calls follow too; callers encode requests and decode replies with
//! `skr8tr_proto::wire`. Replies are accepted only from the address asked (a connected socket).
//! Retrying is safe because every mutating command is idempotent, and re-signing (hedged
//! signatures differ every time) keeps a retry from being refused as a replay.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use skr8tr_proto::auth::{AuthError, SigningKey, SystemClock};
use skr8tr_proto::wire::MAX_DATAGRAM;
use skr8tr_proto::wire::retry::{self, Backoff, Heard};

/// First wait for a reply; doubled after each lost attempt.
const FIRST_WAIT: Duration = Duration::from_millis(250);
/// The longest one attempt waits: the doubling stops there.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Why a request got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no reply from {target} within {timeout_ms} ms ({attempts} attempts): is the daemon running there?"
    )]
    Timeout {
        target: SocketAddr,
        timeout_ms: u128,
        attempts: u32,
    },
    #[error("cannot talk to {target}")]
    Io {
        target: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot sign the command")]
    Sign(#[source] AuthError),
    #[error("{target} sent a reply that is not UTF-8 text")]
    NotText { target: SocketAddr },
}

/// Sends requests to one daemon.
#[derive(Debug)]
pub struct Client<'k> {
    target: SocketAddr,
    timeout: Duration,
    key: Option<&'k SigningKey>,
    retry: bool,
}

impl<'k> Client<'k> {
    /// A client for the daemon at `target`, giving up after `timeout` in total; commands are
    /// signed with `key` when one is given.
    #[must_use]
    pub fn new(target: SocketAddr, timeout: Duration, key: Option<&'k SigningKey>) -> Self {
        Self {
            target,
            timeout,
            key,
            retry: true,
        }
    }

    /// Sends each request once and waits the whole timeout for its reply: for requests that
    /// are not idempotent (EXEC), which must not run twice because a reply was lost.
    #[must_use]
    pub fn without_retries(mut self) -> Self {
        self.retry = false;
        self
    }

    /// Sends `command` (signed when `sign` is set and a key is configured) and returns the first
    /// reply from the target, retrying lost datagrams until the timeout.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] when nothing came back in time; I/O and signing errors.
    pub fn request(&self, command: &str, sign: bool) -> Result<String, ClientError> {
        let io_err = |source| ClientError::Io {
            target: self.target,
            source,
        };
        let bind: SocketAddr = if self.target.is_ipv6() {
            "[::]:0"
                .parse()
                .map_err(|_| io_err(io::Error::other("bad bind address")))?
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        let socket = UdpSocket::bind(bind).map_err(io_err)?;
        socket.connect(self.target).map_err(io_err)?;
        let backoff = if self.retry {
            Backoff::until(self.timeout, FIRST_WAIT, MAX_WAIT)
        } else {
            Backoff::once(self.timeout)
        };
        let started = Instant::now();
        let mut attempts = 0;
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let now = Instant::now();
            let Some(wait) = backoff.wait(attempts, now - started) else {
                return Err(ClientError::Timeout {
                    target: self.target,
                    timeout_ms: self.timeout.as_millis(),
                    attempts,
                });
            };
            let key = self.key.filter(|_| sign);
            let datagram =
                retry::datagram(command, key, SystemClock::now()).map_err(ClientError::Sign)?;
            attempts += 1;
            match socket.send(datagram.as_bytes()) {
                Ok(_) => {}
                // A previous attempt's ICMP "port unreachable" surfaces here; keep trying.
                Err(e) if retry::is_loss(e.kind()) => {}
                Err(e) => return Err(io_err(e)),
            }
            let attempt_end = now + wait;
            loop {
                let left = attempt_end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                socket.set_read_timeout(Some(left)).map_err(io_err)?;
                match socket.recv(&mut buf) {
                    Ok(n) => match retry::heard(buf.get(..n).unwrap_or_default()) {
                        Heard::Reply(text) => return Ok(text.to_owned()),
                        // Not a reply (a stray push): keep waiting.
                        Heard::Other => {}
                        Heard::NotText => {
                            return Err(ClientError::NotText {
                                target: self.target,
                            });
                        }
                    },
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::ConnectionRefused
                        ) =>
                    {
                        if e.kind() == io::ErrorKind::ConnectionRefused {
                            // Nobody listens yet: wait out this attempt, then retry.
                            std::thread::sleep(left.min(Duration::from_millis(50)));
                        }
                    }
                    Err(e) => return Err(io_err(e)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_until_the_server_answers_and_gives_up_at_the_timeout() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 128];
            // Drop the first datagram, answer the second.
            let (_, _) = server.recv_from(&mut buf).unwrap();
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"PING");
            server.send_to(b"OK|PONG|tower", from).unwrap();
        });
        let client = Client::new(addr, Duration::from_secs(5), None);
        assert_eq!(client.request("PING", false).unwrap(), "OK|PONG|tower");
        t.join().unwrap();

        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = Client::new(
            silent.local_addr().unwrap(),
            Duration::from_millis(600),
            None,
        );
        match client.request("PING", false) {
            Err(ClientError::Timeout { attempts, .. }) => assert!(attempts >= 2),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn without_retries_sends_once_and_waits_the_whole_timeout() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = Client::new(
            silent.local_addr().unwrap(),
            Duration::from_millis(600),
            None,
        )
        .without_retries();
        let started = Instant::now();
        match client.request("EXEC|api|true", false) {
            Err(ClientError::Timeout { attempts, .. }) => assert_eq!(attempts, 1),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(550));
        silent.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        assert!(silent.recv(&mut buf).is_ok(), "the one datagram arrived");
        assert!(silent.recv(&mut buf).is_err(), "and no second one");
    }
}
