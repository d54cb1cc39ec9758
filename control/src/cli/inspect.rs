//! The read-only commands: `status [APP]`, `nodes`, `list` (Conductor), `lookup SVC` (Tower)
//! and `ping` (both). None is signed.
//!
//! ```text
//! status: APPS ─▶ app table;  STATUS[|app] ─▶ replica table   (per app when STATUS is refused)
//! nodes:  NODES ─▶ table      list: LIST ─▶ table      lookup: LOOKUP|svc ─▶ one backend
//! ping:   PING to both at once ─▶ one line each with the round-trip time; exit 1 if one is down
//! ```
//! The functions from replies to tables and JSON are pure and tested here; `run_*` are the
//! thin network calls. A value that means "none" on the wire (pid 0, port 0, no node) shows
//! as `-` in tables and `null` in JSON.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skr8tr_proto::name::{AppName, NodeId, ServiceName};
use skr8tr_proto::wire::{
    AppStatus, Backend, ConductorReply, ConductorRequest, ErrorCode, Exit, ListEntry, NodeEntry,
    ReplicaStatus, TowerReply, TowerRequest,
};

use super::global::GlobalArgs;
use super::output::{emit, success};
use super::remote::{DaemonError, Endpoint, unexpected};
use super::table::Table;

/// `-` for a zero that means "none".
fn or_dash(n: u64) -> String {
    if n == 0 {
        "-".to_owned()
    } else {
        n.to_string()
    }
}

/// A size in KiB for people: `512K`, `20.0M`, `1.5G`.
#[must_use]
pub fn human_kib(kib: u64) -> String {
    const MIB: u64 = 1024;
    const GIB: u64 = 1024 * 1024;
    let tenths = |unit: u64| kib.saturating_mul(10) / unit;
    if kib < MIB {
        format!("{kib}K")
    } else if kib < GIB {
        let t = tenths(MIB);
        format!("{}.{}M", t / 10, t % 10)
    } else {
        let t = tenths(GIB);
        format!("{}.{}G", t / 10, t % 10)
    }
}

/// A duration in seconds for people: `45s`, `5m3s`, `1h0m`, `2d3h`.
#[must_use]
pub fn human_secs(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The app summary table of `status`. NEXT RUN and LAST RUN (a scheduled job's, UTC) are
/// shown only when some app is scheduled.
#[must_use]
pub fn apps_table(apps: &[AppStatus]) -> Table {
    let scheduled = apps.iter().any(|a| a.runs.is_some());
    let mut header = vec!["APP", "DESIRED", "RUNNING", "HEALTHY", "GEN", "ROLLOUT"];
    if scheduled {
        header.extend(["NEXT RUN", "LAST RUN"]);
    }
    let mut t = Table::new(header);
    for a in apps {
        let mut row = vec![
            a.app.to_string(),
            a.desired.to_string(),
            a.running.to_string(),
            a.healthy.to_string(),
            a.generation.to_string(),
            a.rollout.to_string(),
        ];
        if scheduled {
            let when =
                |ms: Option<u64>| ms.map_or_else(|| "-".to_owned(), super::events::time_text);
            let runs = a.runs.unwrap_or_default();
            row.extend([when(runs.next_ms), when(runs.last_ms)]);
        }
        t.row(row);
    }
    t
}

/// The replica table of `status`. The EXIT column (how a finished job or a dead replica
/// ended) is shown only when some replica has ended, LIMITS (what enforces `ram`/`cpu` on its
/// node: cgroup-v2, cgroup-v1, rlimit, none) only when some node said it.
#[must_use]
pub fn replicas_table(replicas: &[ReplicaStatus]) -> Table {
    let with_exit = replicas.iter().any(|r| r.exit.is_some());
    let with_limits = replicas.iter().any(|r| r.limits.is_some());
    let header = [
        "REPLICA", "APP", "NODE", "PID", "STATE", "EXIT", "PORT", "RESTARTS", "CPU%", "RSS",
        "UPTIME", "LIMITS",
    ];
    let shown = |h: &&str| (with_exit || *h != "EXIT") && (with_limits || *h != "LIMITS");
    let mut t = Table::new(header.into_iter().filter(shown));
    for r in replicas {
        let running = r.pid != 0;
        let if_running = |text: String| if running { text } else { "-".to_owned() };
        let mut row = vec![
            r.replica.to_string(),
            r.app.to_string(),
            r.node
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
            or_dash(u64::from(r.pid)),
            r.state.to_string(),
        ];
        if with_exit {
            row.push(r.exit.map_or_else(|| "-".to_owned(), exit_text));
        }
        row.extend([
            or_dash(u64::from(r.port)),
            r.restarts.to_string(),
            if_running(r.cpu.to_string()),
            if_running(human_kib(r.rss_kb)),
            if_running(human_secs(r.uptime_s)),
        ]);
        if with_limits {
            row.push(
                r.limits
                    .map_or_else(|| "-".to_owned(), |l| l.keyword().to_owned()),
            );
        }
        t.row(row);
    }
    t
}

/// An exit as people read it: `0`, `3`, `signal 9`, `oom-killed`.
fn exit_text(exit: Exit) -> String {
    match exit {
        Exit::Code(code) => code.to_string(),
        Exit::Signal(signal) => format!("signal {signal}"),
        Exit::OomKilled => "oom-killed".to_owned(),
    }
}

/// An exit for scripts: `{"code": 3}`, `{"signal": 9}` or `{"signal": 9, "oom_killed": true}`.
fn exit_json(exit: Exit) -> Value {
    match exit {
        Exit::Code(code) => json!({ "code": code }),
        Exit::Signal(signal) => json!({ "signal": signal }),
        Exit::OomKilled => json!({ "signal": 9, "oom_killed": true }),
    }
}

/// The text of `status`: the app table, a blank line, the replica table.
#[must_use]
pub fn status_text(apps: &[AppStatus], replicas: &[ReplicaStatus]) -> String {
    if apps.is_empty() && replicas.is_empty() {
        return "no apps (`skr8tr up FILE` runs one)\n".to_owned();
    }
    let mut out = apps_table(apps).render();
    out.push('\n');
    if replicas.is_empty() {
        out.push_str("no replicas\n");
    } else {
        out.push_str(&replicas_table(replicas).render());
    }
    out
}

/// The `--json` object of `status`.
#[must_use]
pub fn status_json(apps: &[AppStatus], replicas: &[ReplicaStatus]) -> Value {
    let apps: Vec<Value> = apps
        .iter()
        .map(|a| {
            let mut entry = json!({
                "app": a.app.as_str(),
                "desired": a.desired,
                "running": a.running,
                "healthy": a.healthy,
                "generation": a.generation,
                "rollout": a.rollout.keyword(),
            });
            // Only a scheduled job has runs.
            if let (Some(runs), Some(fields)) = (a.runs, entry.as_object_mut()) {
                fields.insert("next_run_ms".to_owned(), json!(runs.next_ms));
                fields.insert("last_run_ms".to_owned(), json!(runs.last_ms));
            }
            entry
        })
        .collect();
    let replicas: Vec<Value> = replicas
        .iter()
        .map(|r| {
            let mut entry = json!({
                "replica": r.replica.as_str(),
                "app": r.app.as_str(),
                "node": r.node.as_ref().map(NodeId::as_str),
                "pid": (r.pid != 0).then_some(r.pid),
                "state": r.state.keyword(),
                "generation": r.generation,
                "port": (r.port != 0).then_some(r.port),
                "restarts": r.restarts,
                "uptime_s": r.uptime_s,
                "cpu_pct": r.cpu.as_f64(),
                "rss_kb": r.rss_kb,
            });
            // Only a replica that ended has an exit (a finished job's code, or its signal).
            if let (Some(exit), Some(fields)) = (r.exit, entry.as_object_mut()) {
                fields.insert("exit".to_owned(), exit_json(exit));
            }
            if let (Some(limits), Some(fields)) = (r.limits, entry.as_object_mut()) {
                fields.insert("limits".to_owned(), json!(limits.keyword()));
            }
            entry
        })
        .collect();
    success("status", json!({ "apps": apps, "replicas": replicas }))
}

/// The table of `nodes`.
#[must_use]
pub fn nodes_table(nodes: &[NodeEntry]) -> Table {
    let mut t = Table::new(["NODE", "ADDRESS", "CPU%", "RAM FREE"]);
    for n in nodes {
        t.row([
            n.node.to_string(),
            n.ip.to_string(),
            n.cpu.to_string(),
            human_kib(n.ram_free_mb.saturating_mul(1024)),
        ]);
    }
    t
}

#[must_use]
pub fn nodes_json(nodes: &[NodeEntry]) -> Value {
    let nodes: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "node": n.node.as_str(),
                "ip": n.ip.to_string(),
                "cpu_pct": n.cpu.as_f64(),
                "ram_free_mb": n.ram_free_mb,
            })
        })
        .collect();
    success("nodes", json!({ "nodes": nodes }))
}

/// The table of `list`.
#[must_use]
pub fn list_table(entries: &[ListEntry]) -> Table {
    let mut t = Table::new(["APP", "NODE", "PID"]);
    for e in entries {
        t.row([
            e.app.to_string(),
            e.node.to_string(),
            or_dash(u64::from(e.pid)),
        ]);
    }
    t
}

#[must_use]
pub fn list_json(entries: &[ListEntry]) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| json!({ "app": e.app.as_str(), "node": e.node.as_str(), "pid": e.pid }))
        .collect();
    success("list", json!({ "replicas": entries }))
}

/// `api  10.0.0.5:8080` and its JSON.
#[must_use]
pub fn lookup_output(service: &ServiceName, backend: &Backend) -> (String, Value) {
    (
        format!("{service}  {backend}\n"),
        success(
            "lookup",
            json!({
                "service": service.as_str(),
                "ip": backend.ip.to_string(),
                "port": backend.port,
                "address": backend.to_string(),
            }),
        ),
    )
}

/// `skr8tr status [APP]`.
///
/// # Errors
/// The Conductor refused or did not answer; bad flags; stdout gone.
pub fn run_status(global: &GlobalArgs, app: Option<&AppName>) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, false)?;
    let mut apps = match conductor.ask_conductor(&ConductorRequest::Apps)? {
        ConductorReply::Apps(apps) => apps,
        other => return Err(unexpected("conductor", "APPS", &other).into()),
    };
    if let Some(app) = app {
        apps.retain(|a| &a.app == app);
    }
    let replicas = match status_of(&conductor, app.cloned()) {
        Ok(replicas) => replicas,
        // A Conductor with more replicas than fit in one reply answers per app only.
        Err(e) if app.is_none() && e.refusal().is_some_and(|c| c != ErrorCode::Unauthorized) => {
            let mut all = Vec::new();
            for a in &apps {
                all.extend(status_of(&conductor, Some(a.app.clone()))?);
            }
            all
        }
        Err(e) => return Err(e.into()),
    };
    emit(
        global.json,
        || status_text(&apps, &replicas),
        || status_json(&apps, &replicas),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn status_of(
    conductor: &Endpoint,
    app: Option<AppName>,
) -> Result<Vec<ReplicaStatus>, DaemonError> {
    match conductor.ask_conductor(&ConductorRequest::Status { app })? {
        ConductorReply::Status(replicas) => Ok(replicas),
        other => Err(unexpected("conductor", "STATUS", &other)),
    }
}

/// `skr8tr nodes`.
///
/// # Errors
/// The Conductor refused or did not answer; bad flags; stdout gone.
pub fn run_nodes(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, false)?;
    match conductor.ask_conductor(&ConductorRequest::Nodes)? {
        ConductorReply::Nodes(nodes) => emit(
            global.json,
            || nodes_table(&nodes).render(),
            || nodes_json(&nodes),
        )?,
        other => return Err(unexpected("conductor", "NODES", &other).into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `skr8tr list`.
///
/// # Errors
/// The Conductor refused or did not answer; bad flags; stdout gone.
pub fn run_list(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, false)?;
    match conductor.ask_conductor(&ConductorRequest::List)? {
        ConductorReply::List(entries) => emit(
            global.json,
            || list_table(&entries).render(),
            || list_json(&entries),
        )?,
        other => return Err(unexpected("conductor", "LIST", &other).into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `skr8tr lookup SVC`.
///
/// # Errors
/// The Tower has no such service (`NOT_FOUND`) or did not answer; bad flags; stdout gone.
pub fn run_lookup(global: &GlobalArgs, service: &ServiceName) -> anyhow::Result<ExitCode> {
    let tower = Endpoint::tower(global)?;
    match tower.ask_tower(&TowerRequest::Lookup(service.clone()))? {
        TowerReply::Lookup { service, backend } => {
            let (text, value) = lookup_output(&service, &backend);
            emit(global.json, || text, || value)?;
        }
        other => return Err(unexpected("tower", "LOOKUP", &other).into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// One daemon's answer to PING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    pub daemon: &'static str,
    /// The resolved address, or the flag's text when it did not resolve.
    pub address: String,
    /// The round-trip time (retries included), or why it is down.
    pub outcome: Result<Duration, String>,
}

/// `1.25 ms`.
fn millis(d: Duration) -> String {
    let micros = d.as_micros();
    format!("{}.{:02} ms", micros / 1000, micros % 1000 / 10)
}

#[must_use]
pub fn ping_table(results: &[PingResult]) -> Table {
    let mut t = Table::headless();
    for r in results {
        let (state, detail) = match &r.outcome {
            Ok(rtt) => ("up", millis(*rtt)),
            Err(why) => ("down", why.clone()),
        };
        t.row([
            r.daemon.to_owned(),
            r.address.clone(),
            state.to_owned(),
            detail,
        ]);
    }
    t
}

#[must_use]
pub fn ping_json(results: &[PingResult]) -> Value {
    let mut fields = serde_json::Map::new();
    for r in results {
        let entry = match &r.outcome {
            Ok(rtt) => json!({
                "address": r.address,
                "up": true,
                "rtt_ms": rtt.as_secs_f64() * 1000.0,
            }),
            Err(why) => json!({ "address": r.address, "up": false, "error": why }),
        };
        fields.insert(r.daemon.to_owned(), entry);
    }
    let mut v = success("ping", Value::Object(fields));
    v["ok"] = json!(results.iter().all(|r| r.outcome.is_ok()));
    v
}

fn ping_one(
    daemon: &'static str,
    input: &str,
    resolved: anyhow::Result<SocketAddr>,
    ask: impl FnOnce(&Endpoint) -> Result<(), DaemonError>,
    timeout: Duration,
) -> PingResult {
    let addr = match resolved {
        Ok(addr) => addr,
        Err(e) => {
            return PingResult {
                daemon,
                address: input.to_owned(),
                outcome: Err(format!("{e:#}")),
            };
        }
    };
    let endpoint = Endpoint::new(daemon, addr, timeout, None);
    let started = Instant::now();
    PingResult {
        daemon,
        address: addr.to_string(),
        outcome: ask(&endpoint)
            .map(|()| started.elapsed())
            .map_err(|e| format!("{:#}", anyhow::Error::from(e))),
    }
}

/// `skr8tr ping`: both daemons at once, so that it takes at most one `--timeout-ms`.
///
/// # Errors
/// Stdout gone; a daemon that is down is exit 1, not an error.
pub fn run_ping(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let timeout = global.timeout();
    let (conductor, tower) = std::thread::scope(|s| {
        let conductor = s.spawn(|| {
            ping_one(
                "conductor",
                &global.conductor,
                global.conductor_addr(),
                |e| match e.ask_conductor(&ConductorRequest::Ping)? {
                    ConductorReply::Pong => Ok(()),
                    other => Err(unexpected("conductor", "PING", &other)),
                },
                timeout,
            )
        });
        let tower = ping_one(
            "tower",
            &global.tower,
            global.tower_addr(),
            |e| match e.ask_tower(&TowerRequest::Ping)? {
                TowerReply::Pong => Ok(()),
                other => Err(unexpected("tower", "PING", &other)),
            },
            timeout,
        );
        let conductor = conductor.join().unwrap_or_else(|_| PingResult {
            daemon: "conductor",
            address: global.conductor.clone(),
            outcome: Err("the ping thread panicked".to_owned()),
        });
        (conductor, tower)
    });
    let results = [conductor, tower];
    emit(
        global.json,
        || ping_table(&results).render(),
        || ping_json(&results),
    )?;
    Ok(if results.iter().all(|r| r.outcome.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests;
