//! Prometheus metrics of the node and its replicas, served as text on `GET /metrics` by a tiny
//! HTTP/1.1 responder (one request per connection, then close).
//!
//! ```text
//! heartbeat tick ──observe(node stats, replica status)──▶ gauges (replaced as a whole)
//! lifecycle / server ──launch, launch failure, health failure──▶ counters
//! TCP accept ─▶ read the request head (≤ 8 KiB, 5 s) ─▶ 200 metrics text | 404 | 405 ─▶ close
//! ```
//! The gauges show the figures of the last heartbeat instead of sampling on each scrape: a CPU
//! percentage is a difference between two readings, and extra readings would shorten the
//! heartbeat's window. Per-replica series are replaced as a whole on each observation, so a
//! replica the engine forgot disappears from the output.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use skr8tr_proto::name::AppName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::engine::ReplicaStatus;
use crate::stats::NodeStats;

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// What the endpoint answers: the Prometheus text format that `prometheus-client` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    replica: String,
    app: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabels {
    app: String,
}

/// The node's metrics. Cheap to clone; clones share the series.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Arc<Registry>,
    cpu_percent: Gauge<f64, AtomicU64>,
    ram_free_bytes: Gauge,
    ram_total_bytes: Gauge,
    replica_cpu_percent: Family<ReplicaLabels, Gauge<f64, AtomicU64>>,
    replica_rss_bytes: Family<ReplicaLabels, Gauge>,
    replica_restarts: Family<ReplicaLabels, Gauge>,
    health_failures: Family<AppLabels, Counter>,
    launches: Family<AppLabels, Counter>,
    launch_failures: Family<AppLabels, Counter>,
    oom_kills: Family<AppLabels, Counter>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("skr8tr_node");
        let cpu_percent = Gauge::<f64, AtomicU64>::default();
        let ram_free_bytes = Gauge::default();
        let ram_total_bytes = Gauge::default();
        let replica_cpu_percent = Family::<ReplicaLabels, Gauge<f64, AtomicU64>>::default();
        let replica_rss_bytes = Family::<ReplicaLabels, Gauge>::default();
        let replica_restarts = Family::<ReplicaLabels, Gauge>::default();
        let health_failures = Family::<AppLabels, Counter>::default();
        let launches = Family::<AppLabels, Counter>::default();
        let launch_failures = Family::<AppLabels, Counter>::default();
        let oom_kills = Family::<AppLabels, Counter>::default();
        registry.register(
            "cpu_percent",
            "Busy CPU of the whole node, in percent of all cores (0-100)",
            cpu_percent.clone(),
        );
        registry.register(
            "ram_free_bytes",
            "Memory available for new work (MemAvailable)",
            ram_free_bytes.clone(),
        );
        registry.register(
            "ram_total_bytes",
            "Memory of the node",
            ram_total_bytes.clone(),
        );
        registry.register(
            "replica_cpu_percent",
            "CPU of a replica's process group, in percent of one core",
            replica_cpu_percent.clone(),
        );
        registry.register(
            "replica_rss_bytes",
            "Resident memory of a replica's process group",
            replica_rss_bytes.clone(),
        );
        registry.register(
            "replica_restarts",
            "Times the node restarted a replica since it was launched",
            replica_restarts.clone(),
        );
        registry.register(
            "health_failures",
            "Replicas that turned unhealthy (failed their health check for good)",
            health_failures.clone(),
        );
        registry.register(
            "launches",
            "LAUNCH requests that started a replica",
            launches.clone(),
        );
        registry.register(
            "launch_failures",
            "LAUNCH requests that could not start a replica",
            launch_failures.clone(),
        );
        registry.register(
            "oom_kills",
            "Replica processes the kernel killed for going over their ram limit",
            oom_kills.clone(),
        );
        Self {
            registry: Arc::new(registry),
            cpu_percent,
            ram_free_bytes,
            ram_total_bytes,
            replica_cpu_percent,
            replica_rss_bytes,
            replica_restarts,
            health_failures,
            launches,
            launch_failures,
            oom_kills,
        }
    }

    /// Replaces the gauges with the figures of one heartbeat.
    pub(crate) fn observe(&self, node: &NodeStats, replicas: &[ReplicaStatus]) {
        self.cpu_percent.set(f64::from(node.cpu_percent));
        self.ram_free_bytes.set(clamp(node.mem_available_bytes));
        self.ram_total_bytes.set(clamp(node.mem_total_bytes));
        self.replica_cpu_percent.clear();
        self.replica_rss_bytes.clear();
        self.replica_restarts.clear();
        for r in replicas.iter().filter(|r| !r.phase.is_terminal()) {
            let labels = ReplicaLabels {
                replica: r.replica.to_string(),
                app: r.app.to_string(),
            };
            self.replica_cpu_percent
                .get_or_create(&labels)
                .set(f64::from(r.cpu_percent));
            self.replica_rss_bytes
                .get_or_create(&labels)
                .set(clamp(r.rss_bytes));
            self.replica_restarts
                .get_or_create(&labels)
                .set(i64::from(r.restarts));
        }
    }

    pub(crate) fn health_failure(&self, app: &AppName) {
        self.health_failures.get_or_create(&labels(app)).inc();
    }

    pub(crate) fn launched(&self, app: &AppName) {
        self.launches.get_or_create(&labels(app)).inc();
    }

    pub(crate) fn launch_failed(&self, app: &AppName) {
        self.launch_failures.get_or_create(&labels(app)).inc();
    }

    pub(crate) fn oom_killed(&self, app: &AppName) {
        self.oom_kills.get_or_create(&labels(app)).inc();
    }

    /// The metrics in the text format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

fn labels(app: &AppName) -> AppLabels {
    AppLabels {
        app: app.to_string(),
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Accepts metrics requests until aborted; each connection is served by its own task.
pub(super) async fn serve(metrics: Metrics, listener: TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving metrics on /metrics");
    }
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let metrics = metrics.clone();
                skr8tr_daemon::spawn(async move {
                    if let Err(e) = answer(&metrics, stream).await {
                        tracing::debug!(error = %e, "metrics request failed");
                    }
                });
            }
            Err(e) => {
                // Out of descriptors, most likely: wait a little instead of spinning.
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request head and answers it.
async fn answer(metrics: &Metrics, mut stream: TcpStream) -> std::io::Result<()> {
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
    let (status, content_type, body) = route(metrics, &head);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The status line, content type and body for a request head.
fn route(metrics: &Metrics, head: &[u8]) -> (&'static str, &'static str, String) {
    let line = head
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    let text = "text/plain; charset=utf-8";
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => ("200 OK", CONTENT_TYPE, metrics.render()),
        (Some(b"GET"), Some(_)) => ("404 Not Found", text, "not found: try /metrics\n".into()),
        (Some(_), Some(_)) => ("405 Method Not Allowed", text, "only GET /metrics\n".into()),
        _ => ("400 Bad Request", text, "bad request\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::new();
        m.launched(&AppName::new("api").unwrap());
        let (status, _, body) = route(&m, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status, "200 OK");
        assert!(body.contains("skr8tr_node_cpu_percent"), "{body}");
        assert!(
            body.contains("skr8tr_node_launches_total{app=\"api\"} 1"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(route(&m, b"GET /metrics?x=1 HTTP/1.1\r\n\r\n").0, "200 OK");
        assert_eq!(route(&m, b"GET / HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(
            route(&m, b"POST /metrics HTTP/1.1\r\n\r\n").0,
            "405 Method Not Allowed"
        );
        assert_eq!(route(&m, b"\r\n\r\n").0, "400 Bad Request");
    }
}
