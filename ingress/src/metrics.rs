//! Counters of the ingress and their Prometheus exposition on the admin listener.
//!
//! ```text
//! core (hot path): plain Cell/RefCell counters ──every 250 ms──▶ Hub slot of that core (Mutex)
//! admin thread (scrape): sum of the slots ──prometheus-client Collector──▶ text format
//! ```
//!
//! Owns the metric names and the admin HTTP endpoint (`/metrics`, `/healthz`, `/routes`: the
//! live route table as JSON) served from a
//! plain std thread, off the cores. The request path never touches a shared atomic or lock for
//! metrics: each core counts locally and publishes a copy periodically (so a scrape may lag
//! by up to one publish interval).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::directory::Directory;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One core's counters (also the sum over cores).
#[derive(Debug, Clone, Default)]
pub struct CoreCounters {
    /// Route label → responses by status class (index 0: 1xx … 4: 5xx).
    pub requests: HashMap<String, [u64; 5]>,
    /// Latency bucket counts (last: above every bound).
    pub latency: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of latencies in seconds.
    pub latency_sum: f64,
    /// Upstream connections opened.
    pub upstream_new: u64,
    /// Requests sent on a pooled upstream connection.
    pub upstream_reused: u64,
    /// Requests retried on a fresh connection.
    pub retries: u64,
    /// Backend ejections.
    pub ejections: u64,
    /// Requests answered with an error by the proxy itself.
    pub proxy_errors: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: u64,
    /// Access log lines dropped because its writer was behind.
    pub access_log_dropped: u64,
    /// (route label, limit) → requests a route's limit answered: `rate` (429), `max_body`
    /// (413), `timeout` (504, the upstream missed the response-head timeout).
    pub limited: HashMap<(String, &'static str), u64>,
}

impl CoreCounters {
    /// Counts one response.
    pub fn record(&mut self, route: &str, status: u16, latency: Duration) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        if let Some(c) = self.requests.get_mut(route) {
            c[class] += 1;
        } else {
            let mut c = [0; 5];
            c[class] = 1;
            self.requests.insert(route.to_owned(), c);
        }
        let secs = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket] += 1;
        self.latency_sum += secs;
    }

    /// Counts one request a route's `limit` answered.
    pub fn limited(&mut self, route: &str, limit: &'static str) {
        if let Some(n) = self.limited.get_mut(&(route.to_owned(), limit)) {
            *n += 1;
        } else {
            self.limited.insert((route.to_owned(), limit), 1);
        }
    }

    fn add(&mut self, other: &Self) {
        for (key, n) in &other.limited {
            *self.limited.entry(key.clone()).or_insert(0) += n;
        }
        for (route, c) in &other.requests {
            let mine = self.requests.entry(route.clone()).or_insert([0; 5]);
            for (m, o) in mine.iter_mut().zip(c) {
                *m += o;
            }
        }
        for (m, o) in self.latency.iter_mut().zip(&other.latency) {
            *m += o;
        }
        self.latency_sum += other.latency_sum;
        self.upstream_new += other.upstream_new;
        self.upstream_reused += other.upstream_reused;
        self.retries += other.retries;
        self.ejections += other.ejections;
        self.proxy_errors += other.proxy_errors;
        self.tls_handshake_failures += other.tls_handshake_failures;
        self.access_log_dropped += other.access_log_dropped;
    }
}

/// Where cores publish their counters and the admin thread reads them.
#[derive(Debug)]
pub struct Hub {
    slots: Vec<Mutex<CoreCounters>>,
    directory: Arc<Directory>,
    /// The access log's queue, when there is one (each core batches into it).
    pub access: Option<crate::access::AccessLog>,
}

impl Hub {
    /// A hub for `cores` cores.
    #[must_use]
    pub fn new(
        cores: usize,
        directory: Arc<Directory>,
        access: Option<crate::access::AccessLog>,
    ) -> Self {
        Self {
            slots: (0..cores).map(|_| Mutex::default()).collect(),
            directory,
            access,
        }
    }

    /// Core `core` publishes a copy of its counters.
    pub fn publish(&self, core: usize, counters: &CoreCounters) {
        if let Some(slot) = self.slots.get(core) {
            slot.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone_from(counters);
        }
    }

    /// The sum over cores.
    #[must_use]
    pub fn total(&self) -> CoreCounters {
        let mut total = CoreCounters::default();
        for slot in &self.slots {
            total.add(&slot.lock().unwrap_or_else(PoisonError::into_inner));
        }
        total
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(self: &Arc<Self>) -> String {
        let mut registry = Registry::with_prefix("skr8tr_ingress");
        registry.register_collector(Box::new(Arc::clone(self)));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl Collector for Hub {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = self.total();
        {
            let mut family = encoder.encode_descriptor(
                "requests",
                "Responses by route and status class",
                None,
                MetricType::Counter,
            )?;
            let mut routes: Vec<_> = t.requests.iter().collect();
            routes.sort_by(|a, b| a.0.cmp(b.0));
            for (route, counts) in routes {
                for (class, n) in CLASSES.iter().zip(counts) {
                    let labels = [("route", route.as_str()), ("class", *class)];
                    ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut buckets: Vec<(f64, u64)> =
                LATENCY_BUCKETS.iter().copied().zip(t.latency).collect();
            buckets.push((f64::INFINITY, t.latency[LATENCY_BUCKETS.len()]));
            let count = t.latency.iter().sum();
            let mut metric = encoder.encode_descriptor(
                "request_duration_seconds",
                "Time from request head to the end of the response",
                None,
                MetricType::Histogram,
            )?;
            metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                t.latency_sum,
                count,
                &buckets,
                None,
            )?;
        }
        {
            let mut family = encoder.encode_descriptor(
                "limited",
                "Requests a route's limit answered (rate: 429, max_body: 413, timeout: 504)",
                None,
                MetricType::Counter,
            )?;
            let mut limited: Vec<_> = t.limited.iter().collect();
            limited.sort();
            for ((route, limit), n) in limited {
                let labels = [("route", route.as_str()), ("limit", *limit)];
                ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        let counters = [
            (
                "upstream_connections_new",
                "Upstream connections opened",
                t.upstream_new,
            ),
            (
                "upstream_requests_reused",
                "Requests sent on a pooled upstream connection",
                t.upstream_reused,
            ),
            (
                "retries",
                "Requests retried on a fresh upstream connection",
                t.retries,
            ),
            (
                "ejections",
                "Backends ejected after refusing or resetting",
                t.ejections,
            ),
            (
                "proxy_errors",
                "Requests answered with an error by the proxy",
                t.proxy_errors,
            ),
            (
                "tls_handshake_failures",
                "TLS handshakes that failed or timed out",
                t.tls_handshake_failures,
            ),
            (
                "access_log_dropped_lines",
                "Access log lines dropped because the writer was behind",
                t.access_log_dropped,
            ),
        ];
        for (name, help, value) in counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(metric)?;
        }
        let active = self.directory.connections.load(Ordering::Relaxed) as i64;
        let metric = encoder.encode_descriptor(
            "active_connections",
            "Open client connections",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(active).encode(metric)?;
        Ok(())
    }
}

/// Serves `/metrics`, `/healthz` and `/routes` on `listener` until the directory's shutdown fires.
/// One request per connection; runs on its own std thread.
pub fn serve_admin(listener: TcpListener, hub: Arc<Hub>) {
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    loop {
        if hub.directory.shutdown().is_fired() {
            return;
        }
        match listener.accept() {
            Ok((stream, _)) => answer_admin(stream, &hub),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn answer_admin(mut stream: std::net::TcpStream, hub: &Arc<Hub>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        match stream.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let line = buf[..len].split(|b| *b == b'\n').next().unwrap_or(&[]);
    let path = line.split(|b| *b == b' ').nth(1).unwrap_or(&[]);
    let (status, ctype, body) = match path {
        b"/metrics" => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            hub.render(),
        ),
        b"/healthz" if hub.directory.shutdown().is_fired() => (
            "503 Service Unavailable",
            "text/plain",
            "draining\n".to_owned(),
        ),
        b"/healthz" => ("200 OK", "text/plain", "ok\n".to_owned()),
        b"/routes" => {
            let view = hub.directory.view();
            let json = crate::route::table_json(&view.routes, &view.refused);
            ("200 OK", "application/json", format!("{json}\n"))
        }
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// The admin listener's local address, for logs.
#[must_use]
pub fn admin_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
