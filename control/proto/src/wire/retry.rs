//! How a client asks again when a datagram is lost (PROTOCOL §4.3): how long each attempt waits
//! for its reply ([`Backoff`]: doubling, capped, within an overall deadline), what each attempt
//! sends ([`datagram`]: signed afresh every time, since an identical datagram would hit the
//! receiver's replay cache), which datagrams end the wait ([`heard`]: a reply) and which send
//! failures are only a loss ([`is_loss`]).
//!
//! Pure policy: the callers own the socket and the clock and ask this module what to do next.
//! The daemons' async `skr8tr_daemon::call` and the CLI's blocking `Client` both drive it, each
//! with its own figures (a daemon: a few attempts from 200 ms, no deadline; the CLI: from 250 ms,
//! capped at 2 s, until `--timeout-ms`). Retrying is safe because every mutating request is
//! idempotent; the one that is not (`EXEC`) is sent [`Backoff::once`].

use std::io;
use std::time::Duration;

use crate::auth::{AuthError, SigningKey, sign_command};

/// How long each attempt waits for its reply, and when the client gives up.
///
/// Attempt `n` (from 0) waits `first_wait × 2ⁿ`, at most `max_wait`, and never past the
/// deadline; there are at most `attempts` of them (always at least one, unless the deadline has
/// already passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first_wait: Duration,
    max_wait: Duration,
    attempts: u32,
    deadline: Option<Duration>,
}

impl Backoff {
    /// `attempts` tries (at least one), the wait doubling from `first_wait` without a cap or a
    /// deadline: a daemon asking another daemon.
    #[must_use]
    pub const fn doubling(first_wait: Duration, attempts: u32) -> Self {
        Self {
            first_wait,
            max_wait: Duration::MAX,
            attempts,
            deadline: None,
        }
    }

    /// As many tries as fit in `deadline` after the first send, the wait doubling from
    /// `first_wait` up to `max_wait`: the CLI.
    #[must_use]
    pub const fn until(deadline: Duration, first_wait: Duration, max_wait: Duration) -> Self {
        Self {
            first_wait,
            max_wait,
            attempts: u32::MAX,
            deadline: Some(deadline),
        }
    }

    /// One try that waits the whole `deadline`: for a request that must not run twice because a
    /// reply was lost (`EXEC`).
    #[must_use]
    pub const fn once(deadline: Duration) -> Self {
        Self {
            first_wait: deadline,
            max_wait: deadline,
            attempts: 1,
            deadline: Some(deadline),
        }
    }

    /// How long attempt `attempt` (the number of attempts already made) waits for its reply when
    /// it starts `elapsed` after the first, or `None` when the client gives up instead.
    #[must_use]
    pub fn wait(&self, attempt: u32, elapsed: Duration) -> Option<Duration> {
        if attempt >= self.attempts.max(1) {
            return None;
        }
        let doubled = 2u32
            .checked_pow(attempt)
            .and_then(|factor| self.first_wait.checked_mul(factor))
            .unwrap_or(Duration::MAX);
        let wait = doubled.min(self.max_wait);
        match self.deadline {
            None => Some(wait),
            Some(deadline) => deadline
                .checked_sub(elapsed)
                .filter(|left| !left.is_zero())
                .map(|left| wait.min(left)),
        }
    }
}

/// What one attempt sends: `request` as it is, or signed with `key` at `unix_ts`. Called for
/// every attempt, so that each carries a new timestamp and a new (hedged) signature and a retry
/// is never refused as a replay.
///
/// # Errors
/// Signing failed (see [`sign_command`]).
pub fn datagram(
    request: &str,
    key: Option<&SigningKey>,
    unix_ts: u64,
) -> Result<String, AuthError> {
    match key {
        Some(key) => sign_command(key, request, unix_ts),
        None => Ok(request.to_owned()),
    }
}

/// A datagram that came back from the address a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard<'a> {
    /// A reply (`OK|…` or `ERR|…`): the answer, the call is over.
    Reply(&'a str),
    /// Text that is not a reply (a stray push): keep waiting.
    Other,
    /// Not UTF-8: no daemon sends that (the async call ignores it, the CLI reports it).
    NotText,
}

/// Sorts a datagram from the target: only a reply ends the wait.
#[must_use]
pub fn heard(datagram: &[u8]) -> Heard<'_> {
    match std::str::from_utf8(datagram) {
        Ok(text) if text.starts_with("OK|") || text.starts_with("ERR|") => Heard::Reply(text),
        Ok(_) => Heard::Other,
        Err(_) => Heard::NotText,
    }
}

/// Whether a failed send only means a datagram was lost, so the next attempt goes on: an earlier
/// attempt's ICMP "port unreachable" surfaces as `ConnectionRefused` on a later send (nobody
/// listens there yet). Any other failure ends the call.
#[must_use]
pub fn is_loss(kind: io::ErrorKind) -> bool {
    kind == io::ErrorKind::ConnectionRefused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{KeyRole, SignedCommand, Verifier};

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The waits of successive attempts, each starting when the one before ran out.
    fn schedule(backoff: Backoff) -> Vec<u64> {
        let mut waits = Vec::new();
        let mut elapsed = Duration::ZERO;
        while let Some(wait) = backoff.wait(u32::try_from(waits.len()).unwrap(), elapsed) {
            waits.push(u64::try_from(wait.as_millis()).unwrap());
            elapsed += wait;
            assert!(waits.len() < 100, "never gives up: {waits:?}");
        }
        waits
    }

    #[test]
    fn schedules() {
        let table: [(Backoff, &[u64]); 8] = [
            // A daemon's default patience: 4 tries from 200 ms.
            (Backoff::doubling(ms(200), 4), &[200, 400, 800, 1600]),
            (Backoff::doubling(ms(100), 3), &[100, 200, 400]),
            // Zero attempts still make one.
            (Backoff::doubling(ms(50), 0), &[50]),
            // The CLI: from 250 ms, capped at 2 s, the last attempt cut at the deadline.
            (
                Backoff::until(ms(5000), ms(250), ms(2000)),
                &[250, 500, 1000, 2000, 1250],
            ),
            (
                Backoff::until(ms(10_000), ms(250), ms(2000)),
                &[250, 500, 1000, 2000, 2000, 2000, 2000, 250],
            ),
            (Backoff::until(ms(600), ms(250), ms(2000)), &[250, 350]),
            // EXEC: one attempt, the whole timeout.
            (Backoff::once(ms(600)), &[600]),
            // No time at all: nothing is sent.
            (Backoff::until(Duration::ZERO, ms(250), ms(2000)), &[]),
        ];
        for (backoff, expected) in table {
            assert_eq!(schedule(backoff), expected, "{backoff:?}");
        }
    }

    #[test]
    fn the_deadline_is_measured_from_the_first_send() {
        let cli = Backoff::until(ms(5000), ms(250), ms(2000));
        assert_eq!(cli.wait(0, Duration::ZERO), Some(ms(250)));
        // A late attempt waits only what is left, and none starts at or after the deadline.
        assert_eq!(cli.wait(3, ms(4900)), Some(ms(100)));
        assert_eq!(cli.wait(3, ms(5000)), None);
        assert_eq!(cli.wait(0, ms(6000)), None);
        assert_eq!(Backoff::once(ms(600)).wait(1, Duration::ZERO), None);
        // Without a deadline, elapsed time does not matter.
        let daemon = Backoff::doubling(ms(200), 4);
        assert_eq!(daemon.wait(3, Duration::MAX), Some(ms(1600)));
        assert_eq!(daemon.wait(4, Duration::ZERO), None);
    }

    #[test]
    fn doubling_saturates_instead_of_overflowing() {
        let many = Backoff::doubling(Duration::from_secs(1), u32::MAX);
        assert_eq!(
            many.wait(31, Duration::ZERO),
            Some(Duration::from_secs(1 << 31))
        );
        assert_eq!(many.wait(32, Duration::ZERO), Some(Duration::MAX));
        assert_eq!(many.wait(u32::MAX - 1, Duration::ZERO), Some(Duration::MAX));
        let capped = Backoff::until(Duration::MAX, ms(250), ms(2000));
        assert_eq!(capped.wait(1000, Duration::ZERO), Some(ms(2000)));
    }

    #[test]
    fn every_attempt_is_signed_afresh() {
        let (secret, public) = SigningKey::generate().unwrap();
        let mut verifier = Verifier::new(KeyRole::Operator, [public]).with_clock(|| 1_000);
        let first = datagram("EVICT|api", Some(&secret), 1_000).unwrap();
        let second = datagram("EVICT|api", Some(&secret), 1_000).unwrap();
        assert_ne!(first, second, "hedged: a retry is not the same datagram");
        assert_eq!(verifier.verify(&first).unwrap(), "EVICT|api");
        assert_eq!(
            verifier.verify(&second).unwrap(),
            "EVICT|api",
            "not a replay"
        );
        let third = datagram("EVICT|api", Some(&secret), 1_001).unwrap();
        assert_eq!(SignedCommand::parse(&third).unwrap().timestamp(), 1_001);
    }

    #[test]
    fn unsigned_requests_go_as_they_are_and_signing_errors_surface() {
        assert_eq!(datagram("PING", None, 1_000).unwrap(), "PING");
        let (secret, _) = SigningKey::generate().unwrap();
        assert_eq!(
            datagram("", Some(&secret), 1_000),
            Err(AuthError::EmptyCommand)
        );
    }

    #[test]
    fn only_a_reply_ends_the_wait() {
        let table: [(&[u8], Heard<'_>); 8] = [
            (b"OK|PONG|tower", Heard::Reply("OK|PONG|tower")),
            (b"ERR|UNAUTHORIZED", Heard::Reply("ERR|UNAUTHORIZED")),
            (b"OK|", Heard::Reply("OK|")),
            (b"OK", Heard::Other),
            (b"ok|PONG", Heard::Other),
            (b"UPDATE|api|1|10.0.0.1:8080", Heard::Other),
            (b"", Heard::Other),
            (b"OK|\xff", Heard::NotText),
        ];
        for (bytes, expected) in table {
            assert_eq!(heard(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn only_connection_refused_is_a_loss() {
        assert!(is_loss(io::ErrorKind::ConnectionRefused));
        for kind in [
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::AddrNotAvailable,
            io::ErrorKind::WouldBlock,
            io::ErrorKind::Other,
        ] {
            assert!(!is_loss(kind), "{kind:?}");
        }
    }
}
