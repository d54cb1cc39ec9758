//! The Prometheus endpoint: node and replica series, counters, and 404 for other paths.

use crate::util::app;
use crate::util::daemons::{Agent, AgentOptions, Tower, http_get, until};

use super::sleeper;

#[test]
fn metrics_show_the_node_and_its_replicas() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AgentOptions::new(&tower, dir.path());
    opts.metrics = true;
    let agent = Agent::start(opts);
    let port = agent.metrics.unwrap().port();
    agent.launch("m1", sleeper("metered"));
    let failed = agent.ask(&agent.launch_text("m2", app("metered", "/nonexistent", &[])));
    assert!(failed.starts_with("ERR|LAUNCH_FAILED|"), "{failed}");
    let mut body = String::new();
    assert!(
        until(|| {
            body = http_get(port, "/metrics");
            body.contains("skr8tr_node_replica_rss_bytes{")
        }),
        "{body}"
    );
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    for series in [
        "skr8tr_node_cpu_percent ",
        "skr8tr_node_ram_free_bytes ",
        "skr8tr_node_ram_total_bytes ",
        "skr8tr_node_replica_cpu_percent{",
        "skr8tr_node_replica_restarts{",
        "skr8tr_node_launches_total{app=\"metered\"} 1",
        "skr8tr_node_launch_failures_total{app=\"metered\"} 1",
    ] {
        assert!(body.contains(series), "no {series:?} in\n{body}");
    }
    assert!(body.contains("replica=\"m1\""), "{body}");
    assert!(
        !body.contains("replica=\"m2\""),
        "ended replicas have no gauges: {body}"
    );
    assert!(http_get(port, "/").starts_with("HTTP/1.1 404 "));
}

/// A replica the kernel kills for going over its `ram` is counted as an OOM kill.
#[test]
fn an_oom_kill_is_counted() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AgentOptions::new(&tower, dir.path());
    opts.metrics = true;
    let agent = Agent::start(opts);
    let port = agent.metrics.unwrap().port();
    let mut hog = app(
        "hog",
        "/usr/bin/awk",
        &["BEGIN { s = \"x\"; while (1) s = s s }"],
    );
    hog.ram = Some(skr8tr_proto::manifest::ByteSize(32 << 20));
    agent.launch("h1", hog);
    let mut body = String::new();
    assert!(
        until(|| {
            body = http_get(port, "/metrics");
            body.contains("skr8tr_node_oom_kills_total{app=\"hog\"} 1")
        }),
        "{body}"
    );
}
