//! Health probes of a replica (HTTP GET or TCP connect to `127.0.0.1:PORT`) and the pure
//! bookkeeping that turns probe results into "became healthy" / "became unhealthy".
//!
//! Timing: probing starts at launch and runs every `fast` interval (50 ms by default) until the
//! first pass, then every `interval` of the manifest's `health` block. A replica that has never
//! passed gets `retries × interval` from its launch to pass once; after that, `retries`
//! consecutive failures make it unhealthy. A passing probe makes an unhealthy replica healthy
//! again.
//!
//! Apps without a `health` block are healthy as soon as their process is started: the node has
//! no way to know more, and the Conductor's `settle` delay covers their warm-up.
//!
//! This module owns the probe I/O and the verdict rules, not the restart decision (that is the
//! supervise module's) nor the timers (the replica task's).

use std::time::{Duration, Instant};

use skr8tr_proto::manifest::{Health, HealthCheck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest status line the HTTP probe reads before giving up.
const MAX_STATUS_LINE: usize = 1024;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the app has a health check but no port to probe")]
    NoPort,
    #[error("connecting to 127.0.0.1:{port} failed")]
    Connect {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("probe of port {port} timed out after {timeout:?}")]
    Timeout { port: u16, timeout: Duration },
    #[error("reading the answer from port {port} failed")]
    Io {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed HTTP status line from port {port}")]
    MalformedStatusLine { port: u16 },
    #[error("HTTP status {got}, expected {want}")]
    UnexpectedStatus { got: u16, want: u16 },
}

/// Runs one probe of `check` against `127.0.0.1:port`, bounded by `timeout`.
///
/// # Errors
/// The [`ProbeError`] saying why the probe did not pass.
///
/// # Cancel safety
/// Cancel safe: dropping the future closes the connection and has no other effect.
pub async fn probe(
    check: &HealthCheck,
    port: Option<u16>,
    timeout: Duration,
) -> Result<(), ProbeError> {
    let port = port.ok_or(ProbeError::NoPort)?;
    match tokio::time::timeout(timeout, probe_inner(check, port)).await {
        Ok(result) => result,
        Err(_) => Err(ProbeError::Timeout { port, timeout }),
    }
}

async fn probe_inner(check: &HealthCheck, port: u16) -> Result<(), ProbeError> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|source| ProbeError::Connect { port, source })?;
    let HealthCheck::Http { path, status } = check else {
        return Ok(());
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: skr8tr-node\r\nConnection: close\r\n\r\n"
    );
    let io = |source| ProbeError::Io { port, source };
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(line) = first_line(&buf) {
            let got = parse_status_line(line).ok_or(ProbeError::MalformedStatusLine { port })?;
            return if got == *status {
                Ok(())
            } else {
                Err(ProbeError::UnexpectedStatus { got, want: *status })
            };
        }
        if buf.len() > MAX_STATUS_LINE {
            return Err(ProbeError::MalformedStatusLine { port });
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(ProbeError::MalformedStatusLine { port });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn first_line(buf: &[u8]) -> Option<&[u8]> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    Some(&buf[..end])
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`), without the CRLF.
#[must_use]
pub fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match rest.get(3) {
        None | Some(b' ') => {}
        Some(_) => return None,
    }
    let code = code
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    (100..=599).contains(&code).then_some(code)
}

/// A change of health worth telling the lifecycle about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changed.
    Unchanged,
    /// First pass since launch, or a pass after being unhealthy.
    BecameHealthy,
    /// Never passed within the start budget, or `retries` consecutive failures.
    BecameUnhealthy,
}

/// Probe results → verdicts and the delay to the next probe, for one process of a replica
/// (a restart makes a new tracker).
#[derive(Debug, Clone)]
pub struct HealthTracker {
    interval: Duration,
    fast: Duration,
    retries: u32,
    launched: Instant,
    healthy: Option<bool>,
    consecutive_failures: u32,
}

impl HealthTracker {
    /// A tracker for a process launched at `launched`, probing every `fast` until it first
    /// passes.
    #[must_use]
    pub fn new(health: &Health, fast: Duration, launched: Instant) -> Self {
        Self {
            interval: health.interval.max(Duration::from_millis(1)),
            fast: fast.min(health.interval),
            retries: health.retries.max(1),
            launched,
            healthy: None,
            consecutive_failures: 0,
        }
    }

    /// Records one probe result obtained at `now`.
    pub fn record(&mut self, passed: bool, now: Instant) -> Verdict {
        if passed {
            self.consecutive_failures = 0;
            return if self.healthy == Some(true) {
                Verdict::Unchanged
            } else {
                self.healthy = Some(true);
                Verdict::BecameHealthy
            };
        }
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let failed_for_good = match self.healthy {
            // Never passed: judged by time, since fast probes would exhaust `retries` at once.
            None => now.saturating_duration_since(self.launched) >= self.start_budget(),
            Some(true) => self.consecutive_failures >= self.retries,
            Some(false) => false,
        };
        if failed_for_good {
            self.healthy = Some(false);
            Verdict::BecameUnhealthy
        } else {
            Verdict::Unchanged
        }
    }

    /// How long to wait before the next probe.
    #[must_use]
    pub fn next_delay(&self) -> Duration {
        match self.healthy {
            None => self.fast,
            Some(_) => self.interval,
        }
    }

    /// The time a new process has to pass its first probe.
    #[must_use]
    pub fn start_budget(&self) -> Duration {
        self.interval.saturating_mul(self.retries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(interval_ms: u64, retries: u32) -> Health {
        Health {
            check: HealthCheck::Tcp,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(50),
            retries,
        }
    }

    #[test]
    fn status_lines() {
        let table: [(&[u8], Option<u16>); 10] = [
            (b"HTTP/1.1 200 OK", Some(200)),
            (b"HTTP/1.0 500 Internal Server Error", Some(500)),
            (b"HTTP/1.1 204", Some(204)),
            (b"HTTP/1.1 099 Low", None),
            (b"HTTP/1.1 2000 OK", None),
            (b"HTTP/2 200 OK", None),
            (b"HTTP/1.1 20 OK", None),
            (b"http/1.1 200 OK", None),
            (b"HTTP/1.1  200 OK", None),
            (b"", None),
        ];
        for (line, want) in table {
            assert_eq!(
                parse_status_line(line),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn first_pass_is_healthy_and_probing_slows_down() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(&health(1000, 3), Duration::from_millis(50), t0);
        assert_eq!(t.next_delay(), Duration::from_millis(50));
        assert_eq!(t.record(false, t0), Verdict::Unchanged);
        assert_eq!(
            t.record(true, t0 + Duration::from_millis(100)),
            Verdict::BecameHealthy
        );
        assert_eq!(t.next_delay(), Duration::from_secs(1));
        assert_eq!(
            t.record(true, t0 + Duration::from_secs(1)),
            Verdict::Unchanged
        );
    }

    #[test]
    fn a_replica_that_never_passes_is_unhealthy_after_its_start_budget() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(&health(100, 3), Duration::from_millis(50), t0);
        let verdicts: Vec<Verdict> = (0..8u64)
            .map(|i| t.record(false, t0 + Duration::from_millis(50 * i)))
            .collect();
        // Budget 300 ms: failures at 0..=250 ms are tolerated, the one at 300 ms is not,
        // and the verdict is given once.
        let mut want = vec![Verdict::Unchanged; 8];
        want[6] = Verdict::BecameUnhealthy;
        assert_eq!(verdicts, want);
    }

    #[test]
    fn consecutive_failures_after_healthy() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(&health(100, 3), Duration::from_millis(50), t0);
        let s = Duration::from_secs(1);
        assert_eq!(t.record(true, t0), Verdict::BecameHealthy);
        let table = [
            (false, Verdict::Unchanged),
            (false, Verdict::Unchanged),
            (true, Verdict::Unchanged),
            (false, Verdict::Unchanged),
            (false, Verdict::Unchanged),
            (false, Verdict::BecameUnhealthy),
            (false, Verdict::Unchanged),
            (true, Verdict::BecameHealthy),
        ];
        for (i, (passed, want)) in table.into_iter().enumerate() {
            assert_eq!(t.record(passed, t0 + s), want, "step {i}");
        }
    }

    #[test]
    fn zero_retries_means_one() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(&health(100, 0), Duration::from_millis(50), t0);
        assert_eq!(t.record(true, t0), Verdict::BecameHealthy);
        assert_eq!(t.record(false, t0), Verdict::BecameUnhealthy);
    }

    #[tokio::test]
    async fn probes_against_a_local_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 200 OK\r\n\r\n",
                "HTTP/1.1 503 Busy\r\n\r\n",
                "garbage\r\n",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                assert!(buf[..n].starts_with(b"GET /healthz HTTP/1.1\r\n"));
                s.write_all(answer.as_bytes()).await.unwrap();
            }
            let (_s, _) = listener.accept().await.unwrap(); // TCP probe
        });
        let http = HealthCheck::Http {
            path: "/healthz".into(),
            status: 200,
        };
        let t = Duration::from_secs(5);
        probe(&http, Some(port), t).await.unwrap();
        assert!(matches!(
            probe(&http, Some(port), t).await,
            Err(ProbeError::UnexpectedStatus {
                got: 503,
                want: 200
            })
        ));
        assert!(matches!(
            probe(&http, Some(port), t).await,
            Err(ProbeError::MalformedStatusLine { .. })
        ));
        probe(&HealthCheck::Tcp, Some(port), t).await.unwrap();
        server.await.unwrap();
        assert!(matches!(
            probe(&HealthCheck::Tcp, None, t).await,
            Err(ProbeError::NoPort)
        ));
    }
}
