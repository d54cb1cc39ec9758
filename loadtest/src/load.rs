//! Constant HTTP load of our own: keep-alive client threads, each paced at a fixed rate,
//! counting requests, 2xx, non-2xx and socket errors, with latency percentiles and which
//! replica answered (the example service names itself in its body).
//!
//! ```text
//! thread × N (in the control host's namespace):
//!   every 1/rate s: [connect if needed] ─ GET path ─▶ status + body ─▶ counters, latency,
//!                   replica id (first/last seen);  socket error ─▶ counted, reconnect
//! Load::finish ─▶ Stats (merged)
//! ```
//! The pacing is closed-loop without catch-up bursts: a thread that fell behind (a slow
//! response) starts its next request at once and then keeps the rate from there.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::mesh::Host;
use crate::procs;

/// How long the client waits for a response before counting a socket error.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How much load, on what path.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub threads: usize,
    /// Requests per second over all threads.
    pub rate: f64,
    pub path: String,
}

impl LoadSpec {
    /// A short human description: `300 req/s of GET / on 4 keep-alive connections`.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{:.0} req/s of GET {} on {} keep-alive connections",
            self.rate, self.path, self.threads
        )
    }
}

/// What the load saw.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    pub ok: u64,
    pub non_2xx: u64,
    pub socket_errors: u64,
    /// Latencies of the responses received, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    pub first_failure: Option<Instant>,
    pub last_failure: Option<Instant>,
    /// Up to a few failure descriptions, for the notes.
    pub samples: Vec<String>,
    pub duration: Duration,
}

impl Stats {
    /// Non-2xx responses plus socket errors.
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }

    /// The `q` quantile (0..=1) of the latencies.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        // Nearest rank; the float-to-index conversion saturates, and get() bounds it.
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        self.latencies_us
            .get(rank)
            .map(|us| Duration::from_micros(u64::from(*us)))
    }

    /// Achieved requests per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        let s = self.duration.as_secs_f64();
        if s > 0.0 {
            self.requests as f64 / s
        } else {
            0.0
        }
    }

    fn merge(&mut self, other: Self) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.non_2xx += other.non_2xx;
        self.socket_errors += other.socket_errors;
        self.latencies_us.extend(other.latencies_us);
        self.first_failure = min_opt(self.first_failure, other.first_failure);
        self.last_failure = self.last_failure.max(other.last_failure);
        for s in other.samples {
            if self.samples.len() < 5 {
                self.samples.push(s);
            }
        }
    }

    fn fail(&mut self, what: String) {
        let now = Instant::now();
        self.first_failure.get_or_insert(now);
        self.last_failure = Some(now);
        if self.samples.len() < 3 {
            self.samples.push(what);
        }
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// When each replica (by the id in its body) first and last answered.
pub type Seen = Arc<Mutex<HashMap<String, (Instant, Instant)>>>;

/// Load running in the background until [`Load::finish`].
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Stats>>,
    seen: Seen,
    started: Instant,
}

impl Load {
    /// Starts `spec` against `target`, from `host`'s namespace.
    #[must_use]
    pub fn start(host: &Host, target: SocketAddr, spec: &LoadSpec) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Seen = Arc::default();
        let threads = spec.threads.max(1);
        let interval = Duration::from_secs_f64(threads as f64 / spec.rate.max(0.1));
        let threads = (0..threads)
            .map(|i| {
                let (stop, seen, host) = (stop.clone(), seen.clone(), host.clone());
                let path = spec.path.clone();
                // Spread the threads' request instants over one interval.
                let offset = interval.mul_f64(i as f64 / threads as f64);
                std::thread::spawn(move || {
                    let mut stats = Stats::default();
                    if let Err(e) = host.enter() {
                        stats.socket_errors += 1;
                        stats.fail(format!("{e:#}"));
                        return stats;
                    }
                    let client = Client { target, path, seen };
                    client.run(&stop, interval, offset, &mut stats);
                    stats
                })
            })
            .collect();
        Self {
            stop,
            threads,
            seen,
            started: Instant::now(),
        }
    }

    /// When each replica first and last answered, by replica id.
    #[must_use]
    pub fn seen(&self) -> HashMap<String, (Instant, Instant)> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the threads and merges what they counted.
    #[must_use]
    pub fn finish(self) -> Stats {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = Stats::default();
        for t in self.threads {
            match t.join() {
                Ok(s) => total.merge(s),
                Err(_) => total.fail("a load thread panicked".into()),
            }
        }
        total.duration = self.started.elapsed();
        total.latencies_us.sort_unstable();
        total
    }
}

struct Client {
    target: SocketAddr,
    path: String,
    seen: Seen,
}

/// One parsed response.
struct Response {
    status: u16,
    body: Vec<u8>,
    close: bool,
}

impl Client {
    fn run(&self, stop: &AtomicBool, interval: Duration, offset: Duration, stats: &mut Stats) {
        let mut conn: Option<BufReader<TcpStream>> = None;
        let mut next = Instant::now() + offset;
        while !stop.load(Ordering::SeqCst) && !procs::interrupted() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else if now - next > interval {
                next = now;
            }
            next += interval;
            stats.requests += 1;
            let started = Instant::now();
            if conn.is_none() {
                match TcpStream::connect_timeout(&self.target, Duration::from_secs(2)) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        let _ = s.set_read_timeout(Some(TIMEOUT));
                        conn = Some(BufReader::new(s));
                    }
                    Err(e) => {
                        stats.socket_errors += 1;
                        stats.fail(format!("connect: {e}"));
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            match self.request(c) {
                Ok(r) => {
                    let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                    stats.latencies_us.push(us);
                    if (200..300).contains(&r.status) {
                        stats.ok += 1;
                        self.note_replica(&r.body);
                    } else {
                        stats.non_2xx += 1;
                        let body = String::from_utf8_lossy(&r.body);
                        stats.fail(format!("HTTP {}: {}", r.status, body.trim()));
                    }
                    if r.close {
                        conn = None;
                    }
                }
                Err(e) => {
                    stats.socket_errors += 1;
                    let what = match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                            format!(
                                "no response within {} s (client timeout)",
                                TIMEOUT.as_secs()
                            )
                        }
                        _ => e.to_string(),
                    };
                    stats.fail(what);
                    conn = None;
                }
            }
        }
    }

    fn note_replica(&self, body: &[u8]) {
        let text = String::from_utf8_lossy(body);
        let Some(id) = text
            .trim()
            .strip_prefix("hello from ")
            .and_then(|rest| rest.rsplit(' ').next())
        else {
            return;
        };
        let now = Instant::now();
        if let Ok(mut seen) = self.seen.lock() {
            seen.entry(id.to_owned())
                .and_modify(|(_, last)| *last = now)
                .or_insert((now, now));
        }
    }

    fn request(&self, c: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
        c.get_mut().write_all(
            format!(
                "GET {} HTTP/1.1\r\nHost: loadtest\r\nUser-Agent: skr8tr-loadtest\r\n\r\n",
                self.path
            )
            .as_bytes(),
        )?;
        read_response(c)
    }
}

fn bad(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

fn read_line(c: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    if c.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a complete response",
        ));
    }
    Ok(line)
}

/// Reads one response: status line, headers, and a Content-Length, chunked or
/// close-delimited body.
fn read_response(c: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
    let line = read_line(c)?;
    let status: u16 = line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let (mut len, mut chunked, mut close) = (None, false, false);
    loop {
        let h = read_line(c)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            return Err(bad(format!("bad header {h:?}")));
        };
        let (name, value) = (name.to_ascii_lowercase(), value.trim().to_ascii_lowercase());
        match name.as_str() {
            "content-length" => {
                len = Some(value.parse::<usize>().map_err(|_| bad("bad length"))?);
            }
            "transfer-encoding" => chunked = value == "chunked",
            "connection" => close = value == "close",
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(c)?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            c.read_exact(&mut chunk)?;
            chunk.truncate(size);
            body.extend(chunk);
            if size == 0 {
                break;
            }
        }
    } else if let Some(len) = len {
        body.resize(len, 0);
        c.read_exact(&mut body)?;
    } else if status != 204 && status != 304 && !(100..200).contains(&status) {
        c.read_to_end(&mut body)?;
        close = true;
    }
    Ok(Response {
        status,
        body,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let s = Stats {
            latencies_us: (1..=100).collect(),
            ..Stats::default()
        };
        assert_eq!(s.quantile(0.5), Some(Duration::from_micros(50)));
        assert_eq!(s.quantile(0.99), Some(Duration::from_micros(99)));
        assert_eq!(s.quantile(1.0), Some(Duration::from_micros(100)));
        assert_eq!(Stats::default().quantile(0.5), None);
    }
}
