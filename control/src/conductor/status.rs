//! What the Conductor's admin listener shows (SPEC §7.4): the status page at `/` (one HTML
//! file with its script and style inline, embedded in the binary: nothing loads from outside),
//! the snapshot it renders (`/status.json`, and pushed on `/events` as server-sent events), and
//! the map from paths to answers.
//!
//! ```text
//! State + EventLog ──snapshot()──▶ JSON ──▶ /status.json, and the watch the /events streams follow
//! GET /            ──▶ PAGE (renders the JSON it receives on /events; no reload, no request out)
//! GET /metrics     ──▶ ConductorMetrics::render      GET /healthz ──▶ ok
//! ```
//! Pure: the snapshot is a function of the state, the events and the clock readings passed in;
//! the daemon decides when to publish it. Read-only: nothing here changes a thing, and no
//! secret is in it (apps appear by name and counts, never by their manifests).

use std::time::Instant;

use serde_json::{Value, json};
use skr8tr_daemon::admin::{AdminReply, METRICS_CONTENT_TYPE};
use skr8tr_proto::wire::EventEntry;

use super::events::EventLog;
use super::metrics::ConductorMetrics;
use super::state::State;

/// The status page: HTML with its script and style inline.
pub const PAGE: &str = include_str!("status_page.html");

/// Events the snapshot carries (the page shows them all).
pub const SNAPSHOT_EVENTS: usize = 100;

/// One event as JSON.
#[must_use]
pub fn event_json(e: &EventEntry) -> Value {
    json!({
        "seq": e.seq,
        "at_ms": e.at_ms,
        "kind": e.kind.keyword(),
        "app": e.app.as_ref().map(|a| a.as_str()),
        "replica": e.replica.as_ref().map(|r| r.as_str()),
        "node": e.node.as_ref().map(|n| n.as_str()),
        "detail": e.detail.as_str(),
    })
}

/// Everything the status page shows, at `now` (`now_ms` the same instant in Unix ms).
#[must_use]
pub fn snapshot(state: &State, events: &EventLog, now: Instant, now_ms: u64) -> Value {
    let apps: Vec<Value> = state
        .app_entries()
        .iter()
        .map(|a| {
            let rollout = state.rollout_progress(&a.app).map(|p| {
                json!({
                    "state": p.state.keyword(),
                    "done": p.done,
                    "total": p.total,
                    "detail": p.detail.as_str(),
                })
            });
            let kind = state.apps.get(&a.app).map(|r| r.spec.kind.keyword());
            json!({
                "app": a.app.as_str(),
                "kind": kind,
                "generation": a.generation,
                "desired": a.desired,
                "running": a.running,
                "healthy": a.healthy,
                "rollout": rollout,
                "next_run_ms": a.runs.and_then(|r| r.next_ms),
            })
        })
        .collect();
    let replicas: Vec<Value> = state
        .status(None)
        .iter()
        .map(|r| {
            json!({
                "id": r.replica.as_str(),
                "app": r.app.as_str(),
                "generation": r.generation,
                "state": r.state.keyword(),
                "node": r.node.as_ref().map(|n| n.as_str()),
                "pid": r.pid,
                "port": r.port,
                "cpu": r.cpu.as_f64(),
                "rss_kb": r.rss_kb,
                "restarts": r.restarts,
                "uptime_s": r.uptime_s,
                "exit": r.exit.map(|e| e.to_string()),
                "limits": r.limits.map(|l| l.to_string()),
            })
        })
        .collect();
    let expiry = state.timings.node_expiry;
    let nodes: Vec<Value> = state
        .nodes
        .values()
        .map(|n| {
            let silent = now.saturating_duration_since(n.last_seen);
            json!({
                "id": n.id.as_str(),
                "addr": n.addr.to_string(),
                "state": if silent <= expiry { "live" } else { "lost" },
                "cpu": f64::from(n.cpu_pct),
                "ram_free_mb": n.ram_free_mb,
                "ram_total_mb": n.ram_total_mb,
                "gpus": n.gpus,
                "replicas": n.replicas.len(),
                "last_seen_ms": u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    let events: Vec<Value> = events
        .newest(SNAPSHOT_EVENTS)
        .iter()
        .map(event_json)
        .collect();
    json!({
        "at_ms": now_ms,
        "apps": apps,
        "replicas": replicas,
        "nodes": nodes,
        "events": events,
    })
}

/// The pages of the Conductor's admin listener; `events` is the live snapshot's stream.
pub fn answer(
    path: &str,
    state: &State,
    log: &EventLog,
    metrics: &ConductorMetrics,
    events: &tokio::sync::watch::Receiver<String>,
    now: Instant,
    now_ms: u64,
) -> AdminReply {
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/" | "/index.html" => AdminReply::ok("text/html; charset=utf-8", PAGE),
        "/status.json" => AdminReply::ok(
            "application/json",
            snapshot(state, log, now, now_ms).to_string(),
        ),
        "/events" => AdminReply::Events(events.clone()),
        "/metrics" => AdminReply::ok(METRICS_CONTENT_TYPE, metrics.render(state, now)),
        "/healthz" => AdminReply::text(200, "ok\n"),
        _ => AdminReply::not_found(),
    }
}
