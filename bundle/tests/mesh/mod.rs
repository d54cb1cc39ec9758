//! The real mesh on loopback: Tower, Conductor and node agents in-process (each on its own
//! thread and runtime, as in production), running the example service (`skr8tr
//! example-service`) as real processes. These are the control plane's end-to-end checks.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use skr8tr_control::conductor::server::{ConductorConfig, run as run_conductor};
use skr8tr_control::conductor::state::Timings;
use skr8tr_control::tower::server::{TowerConfig, run as run_tower};
use skr8tr_daemon::Gate;
use skr8tr_proto::wire::{ConductorReply, Message, TowerReply};

use crate::util::{Running, ask, eventually, start, start_on};

mod workloads;

const EXPIRY: Duration = Duration::from_millis(1500);

struct Mesh {
    tower: Option<Running>,
    tower_addr: SocketAddr,
    conductor: Running,
    /// The Conductor's admin listener, when started with one.
    admin: Option<SocketAddr>,
    _state: tempfile::TempDir,
}

impl Mesh {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// A mesh whose Conductor serves its admin listener (metrics, status page).
    fn start_with_admin() -> Self {
        Self::start_with(Some(std::net::TcpListener::bind("127.0.0.1:0").unwrap()))
    }

    fn start_with(admin: Option<std::net::TcpListener>) -> Self {
        let admin_addr = admin.as_ref().map(|l| l.local_addr().unwrap());
        let state = tempfile::tempdir().unwrap();
        let tower = start("tower", false, 1, |_d, mut s, stop| async move {
            run_tower(s.remove(0), TowerConfig::dev(), async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        });
        let dir = state.path().join("conductor");
        let tower_addr = tower.addr();
        let conductor = start(
            "conductor",
            false,
            2,
            move |driver, mut s, stop| async move {
                let hb = s.remove(1);
                let cmd = s.remove(0);
                let config = ConductorConfig {
                    operator_gate: Gate::new(None),
                    mesh_gate: Gate::new(None),
                    mesh_key: None,
                    state_dir: dir,
                    timings: Timings {
                        node_expiry: EXPIRY,
                        launch_grace: Duration::from_secs(3),
                    },
                    exec_timeout: Duration::from_millis(1500),
                    tower: Some(tower_addr),
                    admin,
                };
                run_conductor(driver, cmd, hb, config, async {
                    let _ = stop.await;
                })
                .await
                .unwrap();
            },
        );
        Self {
            tower_addr: tower.addr(),
            tower: Some(tower),
            conductor,
            admin: admin_addr,
            _state: state,
        }
    }

    fn cmd(&self) -> SocketAddr {
        self.conductor.addrs[0]
    }

    fn node(&self, state_dir: &Path, stop_workloads: bool) -> Running {
        self.node_with(state_dir, stop_workloads, |_| {})
    }

    /// A node agent whose configuration `tune` adjusts first.
    fn node_with(
        &self,
        state_dir: &Path,
        stop_workloads: bool,
        tune: impl FnOnce(&mut skr8tr_node::agent::AgentConfig) + Send + 'static,
    ) -> Running {
        let (hb, tower) = (self.conductor.addrs[1], self.tower_addr);
        let dir = state_dir.to_path_buf();
        start("node", false, 1, move |driver, mut s, stop| async move {
            let mut config = skr8tr_node::agent::AgentConfig::new(dir);
            config.conductor = hb;
            config.tower = tower;
            config.heartbeat = Duration::from_millis(250);
            config.stop_workloads_on_exit = stop_workloads;
            tune(&mut config);
            skr8tr_node::agent::run(driver, s.remove(0), config, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        })
    }

    fn submit(&self, manifest: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(manifest);
        ask(self.cmd(), &format!("SUBMIT|b64:{b64}"))
    }

    fn wait_nodes(&self, n: usize) {
        eventually(Duration::from_secs(5), "nodes", || {
            ask(self.cmd(), "NODES")
                .starts_with(&format!("OK|NODES|{n}|"))
                .then_some(())
        });
    }

    fn status(&self) -> Vec<skr8tr_proto::wire::ReplicaStatus> {
        match ConductorReply::decode(ask(self.cmd(), "STATUS").as_bytes()).unwrap() {
            ConductorReply::Status(s) => s,
            other => panic!("{other:?}"),
        }
    }

    fn tower_backends(&self, service: &str) -> Vec<SocketAddr> {
        match TowerReply::decode(ask(self.tower_addr, "LIST").as_bytes()).unwrap() {
            TowerReply::List(entries) => entries
                .into_iter()
                .filter(|e| e.service.as_str() == service)
                .map(|e| SocketAddr::new(e.backend.ip, e.backend.port))
                .collect(),
            other => panic!("{other:?}"),
        }
    }
}

fn example(name: &str, replicas: u32, extra: &str) -> String {
    format!(
        "app {name}\n  exec \"{}\"\n  args example-service\n  port auto\n  replicas {replicas}\n{extra}",
        env!("CARGO_BIN_EXE_skr8tr")
    )
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn three_replicas_become_healthy_registered_and_heal_after_kill_9() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let manifest = example(
        "api",
        3,
        "  health {\n    check GET /healthz 200\n    interval 500ms\n  }\n",
    );
    let reply = mesh.submit(&manifest);
    assert!(reply.starts_with("OK|SUBMITTED|api|"), "{reply}");
    eventually(Duration::from_secs(10), "3 healthy", || {
        let s = mesh.status();
        (s.len() == 3 && s.iter().all(|r| r.state.keyword() == "healthy")).then_some(())
    });
    let backends = eventually(Duration::from_secs(5), "3 registered", || {
        let b = mesh.tower_backends("api");
        (b.len() == 3).then_some(b)
    });
    // Every registered backend really serves, each as its own replica.
    let mut seen = std::collections::BTreeSet::new();
    for b in &backends {
        let body = http_get(*b, "/").expect("backend answers");
        assert!(body.contains("hello from api replica api.g1.r"), "{body}");
        seen.insert(body.lines().last().unwrap_or_default().to_string());
    }
    assert_eq!(seen.len(), 3);
    // LOOKUP round-robins over all three.
    let looked: std::collections::BTreeSet<String> =
        (0..3).map(|_| ask(mesh.tower_addr, "LOOKUP|api")).collect();
    assert_eq!(looked.len(), 3);
    assert!(ask(mesh.cmd(), "LIST").starts_with("OK|LIST|3|"));

    // kill -9 one replica: the node restarts it (new pid) and the Tower set heals.
    let victim = mesh.status().remove(0);
    let old_pid = victim.pid;
    let old_backend = SocketAddr::new("127.0.0.1".parse().unwrap(), victim.port);
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &old_pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    eventually(
        Duration::from_secs(10),
        "replacement healthy with a new pid",
        || {
            let s = mesh.status();
            let r = s.iter().find(|r| r.replica == victim.replica)?;
            (r.pid != old_pid && r.pid != 0 && r.state.keyword() == "healthy").then_some(())
        },
    );
    eventually(Duration::from_secs(5), "tower healed", || {
        let b = mesh.tower_backends("api");
        (b.len() == 3
            && b.iter()
                .all(|a| http_get(*a, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))))
        .then_some(())
    });
    assert!(
        !mesh.tower_backends("api").contains(&old_backend) || http_get(old_backend, "/").is_some()
    );

    // `skr8tr events` tells the story: placements, launches, health, and the kill with its
    // signal and the node restarting it.
    let events = eventually(Duration::from_secs(5), "the exit in the events", || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_skr8tr"))
            .args(["events", "--app", "api", "--json", "--conductor"])
            .arg(mesh.cmd().to_string())
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let events = v["events"].as_array().cloned().unwrap_or_default();
        events
            .iter()
            .any(|e| e["kind"] == "exited")
            .then_some(events)
    });
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("submitted"), 1, "{events:?}");
    assert_eq!(count("placed"), 3, "{events:?}");
    assert_eq!(count("launched"), 3, "{events:?}");
    assert!(count("healthy") >= 3, "{events:?}");
    let exited = events.iter().find(|e| e["kind"] == "exited").unwrap();
    assert_eq!(exited["replica"], victim.replica.as_str());
    assert_eq!(exited["detail"], "exit -9; the node restarts it");
    assert!(exited["time"].as_str().unwrap().ends_with('Z'));
    assert!(events.iter().all(|e| e["app"] == "api"));
}

#[test]
fn a_missing_binary_is_a_launch_error_and_nothing_runs() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let reply = mesh.submit("app ghost\n  exec /nonexistent/bin/ghost\n  replicas 2\n");
    assert!(reply.starts_with("ERR|LAUNCH_FAILED|"), "{reply}");
    assert!(reply.contains("/nonexistent/bin/ghost"), "{reply}");
    assert_eq!(ask(mesh.cmd(), "LIST"), "OK|LIST|0|");
}

#[test]
fn an_unhealthy_replica_is_never_registered() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let manifest = example(
        "sick",
        1,
        "  env {\n    HEALTH_STATUS 500\n  }\n  health {\n    check GET /healthz 200\n    interval 200ms\n    timeout 100ms\n    retries 2\n  }\n",
    );
    assert!(mesh.submit(&manifest).starts_with("OK|SUBMITTED|sick|"));
    // Give it several health rounds and restarts.
    let first_pid = eventually(Duration::from_secs(5), "running", || {
        mesh.status()
            .first()
            .and_then(|r| (r.pid != 0).then_some(r.pid))
    });
    eventually(Duration::from_secs(10), "restarted per policy", || {
        mesh.status()
            .first()
            .and_then(|r| (r.pid != 0 && r.pid != first_pid).then_some(()))
    });
    assert!(
        mesh.tower_backends("sick").is_empty(),
        "an unhealthy replica was registered"
    );
}

#[test]
fn a_restarted_node_agent_adopts_the_same_processes() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let node = mesh.node(dir.path(), false);
    mesh.wait_nodes(1);
    assert!(
        mesh.submit(&example("api", 2, ""))
            .starts_with("OK|SUBMITTED")
    );
    let before = eventually(Duration::from_secs(10), "2 running", || {
        let mut pids: Vec<u32> = mesh
            .status()
            .iter()
            .map(|r| r.pid)
            .filter(|p| *p != 0)
            .collect();
        pids.sort_unstable();
        (pids.len() == 2).then_some(pids)
    });
    drop(node); // detaches: workloads keep running
    for pid in &before {
        assert!(pid_alive(*pid), "pid {pid} died with its agent");
    }
    let node = mesh.node(dir.path(), true);
    std::thread::sleep(Duration::from_secs(2));
    let mut after: Vec<u32> = mesh.status().iter().map(|r| r.pid).collect();
    after.sort_unstable();
    assert_eq!(after, before, "adopted, none duplicated");
    drop(node); // stops workloads this time
    for pid in &before {
        eventually(Duration::from_secs(5), "stopped", || {
            (!pid_alive(*pid)).then_some(())
        });
    }
}

#[test]
fn replicas_of_a_lost_node_are_rescheduled_on_the_other() {
    let mesh = Mesh::start();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let _a = mesh.node(da.path(), true);
    let b = mesh.node(db.path(), true);
    mesh.wait_nodes(2);
    assert!(
        mesh.submit(&example("api", 2, ""))
            .starts_with("OK|SUBMITTED")
    );
    eventually(Duration::from_secs(10), "spread", || {
        let nodes: std::collections::BTreeSet<_> = mesh
            .status()
            .iter()
            .filter_map(|r| r.node.clone())
            .collect();
        (nodes.len() == 2 && mesh.status().iter().all(|r| r.pid != 0)).then_some(())
    });
    let started = std::time::Instant::now();
    drop(b); // the agent and its workloads are gone
    mesh.wait_nodes(1);
    eventually(Duration::from_secs(8), "both on the remaining node", || {
        let s = mesh.status();
        let nodes: std::collections::BTreeSet<_> =
            s.iter().filter_map(|r| r.node.clone()).collect();
        (s.len() == 2 && nodes.len() == 1 && s.iter().all(|r| r.pid != 0)).then_some(())
    });
    eprintln!("rescheduled {:?} after the node stopped", started.elapsed());
    // The lost node's entries leave the Tower at once, not when their TTL runs out.
    eventually(
        Duration::from_secs(3),
        "only live backends in the Tower",
        || {
            let b = mesh.tower_backends("api");
            (b.len() == 2 && b.iter().all(|a| http_get(*a, "/healthz").is_some())).then_some(())
        },
    );
}

#[test]
fn logs_of_a_crashed_replica_and_exec_with_its_timeout() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let crash = "app crash\n  exec /bin/sh\n  args -c \"echo starting up; echo boom >&2; exit 3\"\n  restart never\n";
    assert!(mesh.submit(crash).starts_with("OK|SUBMITTED"));
    eventually(
        Duration::from_secs(5),
        "logs of the crashed replica",
        || {
            let logs = ask(mesh.cmd(), "LOGS|crash");
            (logs.starts_with("OK|LOGS|") && logs.contains("boom") && logs.contains("starting up"))
                .then_some(())
        },
    );
    assert!(
        mesh.submit(&example("api", 1, ""))
            .starts_with("OK|SUBMITTED")
    );
    eventually(Duration::from_secs(10), "running", || {
        mesh.status()
            .iter()
            .any(|r| r.app.as_str() == "api" && r.pid != 0)
            .then_some(())
    });
    let out = ask(mesh.cmd(), "EXEC|api|echo hello from $SKR8TR_APP");
    assert!(
        out.starts_with("OK|EXEC|") && out.contains("hello from api"),
        "{out}"
    );
    let started = std::time::Instant::now();
    let slow = ask(mesh.cmd(), "EXEC|api|sleep 30");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 1.5 s timeout was not honoured"
    );
    assert!(
        slow.starts_with("OK|EXEC|") || slow.starts_with("ERR|TIMEOUT"),
        "{slow}"
    );
}

/// A keep-alive HTTP client hammering `addr` from `threads` threads until told to stop;
/// returns (requests, failures, bodies seen).
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(u64, u64, std::collections::BTreeSet<String>)>>,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let (mut ok, mut failed) = (0u64, 0u64);
                    let mut bodies = std::collections::BTreeSet::new();
                    let mut conn: Option<std::io::BufReader<TcpStream>> = None;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        if conn.is_none() {
                            conn = TcpStream::connect(addr).ok().map(std::io::BufReader::new);
                        }
                        let Some(c) = conn.as_mut() else {
                            failed += 1;
                            continue;
                        };
                        match one_request(c) {
                            Ok((200, body)) => {
                                ok += 1;
                                bodies.insert(body);
                            }
                            Ok((status, body)) => {
                                failed += 1;
                                eprintln!("status {status}: {body}");
                            }
                            Err(e) => {
                                failed += 1;
                                eprintln!("request failed: {e}");
                                conn = None;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    (ok, failed, bodies)
                })
            })
            .collect();
        Self { stop, threads }
    }

    fn finish(self) -> (u64, u64, std::collections::BTreeSet<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut total = (0, 0, std::collections::BTreeSet::new());
        for t in self.threads {
            let (ok, failed, bodies) = t.join().unwrap();
            total.0 += ok;
            total.1 += failed;
            total.2.extend(bodies);
        }
        total
    }
}

fn one_request(c: &mut std::io::BufReader<TcpStream>) -> std::io::Result<(u16, String)> {
    use std::io::BufRead as _;
    c.get_mut().set_read_timeout(Some(Duration::from_secs(5)))?;
    c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: edge\r\n\r\n")?;
    let mut line = String::new();
    c.read_line(&mut line)?;
    let status: u16 = line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        c.read_line(&mut h)?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    c.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Deploys `replicas` of the health-checked example service `name` with `VERSION 1` in its
/// environment, and an ingress (following the Tower) routing `/` to it; waits until the ingress
/// serves it. Returns the manifest, the ingress and its address.
fn versioned_app_behind_an_ingress(
    mesh: &Mesh,
    name: &str,
    replicas: u32,
) -> (String, skr8tr_ingress::IngressHandle, SocketAddr) {
    let health = "  health {\n    check GET /healthz 200\n    interval 500ms\n  }\n";
    let v1 = example(
        name,
        replicas,
        &format!("{health}  env {{\n    VERSION 1\n  }}\n"),
    );
    assert!(mesh.submit(&v1).starts_with("OK|SUBMITTED"));
    let route = skr8tr_ingress::route::Route::parse_flag(&format!("/:{name}")).unwrap();
    let mut config = skr8tr_ingress::Config::local(vec![route], Vec::new());
    config.tower = Some(mesh.tower_addr);
    let ingress = skr8tr_ingress::start(config).unwrap();
    let edge = SocketAddr::new("127.0.0.1".parse().unwrap(), ingress.port());
    eventually(
        Duration::from_secs(10),
        "served through the ingress",
        || {
            http_get(edge, "/")
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
                .then_some(())
        },
    );
    (v1, ingress, edge)
}

/// Starts the rollout of `v1` with `VERSION 2`.
fn roll_to_version_2(mesh: &Mesh, v1: &str, name: &str) {
    let v2 = v1.replace("VERSION 1", "VERSION 2");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&v2);
    assert_eq!(
        ask(mesh.cmd(), &format!("ROLLOUT|b64:{b64}")),
        format!("OK|ROLLOUT|{name}")
    );
}

#[test]
fn a_rollout_of_three_replicas_under_load_through_the_ingress_fails_no_request() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let (v1, ingress, edge) = versioned_app_behind_an_ingress(&mesh, "api", 3);
    eventually(Duration::from_secs(10), "3 healthy", || {
        (mesh
            .status()
            .iter()
            .filter(|r| r.state.keyword() == "healthy")
            .count()
            == 3)
            .then_some(())
    });
    let load = Load::start(edge, 4);
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    roll_to_version_2(&mesh, &v1, "api");
    let mut last = String::new();
    eventually(Duration::from_secs(30), "rollout complete", || {
        let st = ask(mesh.cmd(), "ROLLOUT_STATUS|api");
        if st != last {
            eprintln!("{:?} {st}", started.elapsed());
            eprintln!("   tower: {}", ask(mesh.tower_addr, "LIST"));
            last = st.clone();
        }
        st.starts_with("OK|ROLLOUT_STATUS|api|complete|3|3|")
            .then_some(())
    });
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, bodies) = load.finish();
    ingress.stop();
    eprintln!("rollout of 3 replicas took {took:?}; {ok} requests, {failed} failed");
    assert_eq!(failed, 0, "requests failed during the rollout");
    assert!(ok > 100, "too little load to mean anything: {ok}");
    assert!(
        bodies.iter().any(|b| b.contains(".g1.")) && bodies.iter().any(|b| b.contains(".g2.")),
        "{bodies:?}"
    );
    assert!(mesh.status().iter().all(|r| r.generation == 2));
}

fn tower_at(addr: SocketAddr) -> Running {
    start_on("tower", false, vec![addr], |_d, mut s, stop| async move {
        run_tower(s.remove(0), TowerConfig::dev(), async {
            let _ = stop.await;
        })
        .await
        .unwrap();
    })
}

#[test]
fn the_edge_keeps_routing_while_the_tower_is_down_and_learns_new_replicas_after() {
    let mut mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let health = "  health {\n    check GET /healthz 200\n    interval 500ms\n  }\n";
    assert!(
        mesh.submit(&example("api", 1, health))
            .starts_with("OK|SUBMITTED")
    );
    let route = skr8tr_ingress::route::Route::parse_flag("/:api").unwrap();
    let mut config = skr8tr_ingress::Config::local(vec![route], Vec::new());
    config.tower = Some(mesh.tower_addr);
    config.watch_lease_s = 2;
    let ingress = skr8tr_ingress::start(config).unwrap();
    let edge = SocketAddr::new("127.0.0.1".parse().unwrap(), ingress.port());
    eventually(Duration::from_secs(10), "served", || {
        http_get(edge, "/")
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            .then_some(())
    });
    // The Tower goes away: the edge keeps its last known backends.
    drop(mesh.tower.take());
    for _ in 0..20 {
        let r = http_get(edge, "/").unwrap_or_default();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // It comes back empty; the node re-registers its replica, a new replica is registered,
    // and the edge (renewing its WATCH) routes to both.
    mesh.tower = Some(tower_at(mesh.tower_addr));
    assert!(ask(mesh.cmd(), "SCALE|api|2").starts_with("OK|SCALED"));
    let seen = eventually(
        Duration::from_secs(25),
        "both replicas through the edge",
        || {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..20 {
                if let Some(r) = http_get(edge, "/") {
                    seen.insert(r.lines().last().unwrap_or_default().to_string());
                }
            }
            (seen.len() == 2).then_some(seen)
        },
    );
    assert!(
        seen.iter()
            .all(|b| b.starts_with("hello from api replica api.g1.r")),
        "{seen:?}"
    );
    ingress.stop();
}

#[test]
fn a_single_replica_rollout_under_load_leaves_no_gap() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let (v1, ingress, edge) = versioned_app_behind_an_ingress(&mesh, "solo", 1);
    let load = Load::start(edge, 2);
    std::thread::sleep(Duration::from_millis(200));
    roll_to_version_2(&mesh, &v1, "solo");
    eventually(Duration::from_secs(20), "rollout complete", || {
        ask(mesh.cmd(), "ROLLOUT_STATUS|solo")
            .starts_with("OK|ROLLOUT_STATUS|solo|complete|1|1|")
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    let (ok, failed, bodies) = load.finish();
    ingress.stop();
    assert_eq!(
        failed, 0,
        "a request failed: the old and new replica did not overlap"
    );
    assert!(ok > 50, "{ok}");
    assert!(
        bodies.iter().any(|b| b.contains("solo.g1."))
            && bodies.iter().any(|b| b.contains("solo.g2.")),
        "{bodies:?}"
    );
}

/// `GET path` on `addr` with `Host: host`; the whole response.
fn http_get_host(addr: SocketAddr, host: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn an_apps_manifest_routes_are_served_refused_when_taken_and_withdrawn_on_evict() {
    let mut mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    // An ingress whose one route of its own is `/pinned`: the rest is what apps publish.
    let pinned = skr8tr_ingress::route::Route::parse_flag("/pinned:frontend").unwrap();
    let mut config = skr8tr_ingress::Config::local(vec![pinned], Vec::new());
    config.tower = Some(mesh.tower_addr);
    config.watch_lease_s = 2;
    config.admin = Some("127.0.0.1:0".parse().unwrap());
    let ingress = skr8tr_ingress::start(config).unwrap();
    let edge = SocketAddr::new("127.0.0.1".parse().unwrap(), ingress.port());
    let health = "  health {\n    check GET /healthz 200\n    interval 500ms\n  }\n";
    let routes =
        "  route blog.example.com/\n  route /svc {\n    strip-prefix\n  }\n  route /pinned\n";
    let submitted = std::time::Instant::now();
    assert!(
        mesh.submit(&example("blog", 1, &format!("{health}{routes}")))
            .starts_with("OK|SUBMITTED|blog|")
    );
    let served = |host: &str, path: &str| http_get_host(edge, host, path).unwrap_or_default();
    eventually(Duration::from_secs(10), "the manifest route served", || {
        served("Blog.Example.com:8080", "/post/1")
            .starts_with("HTTP/1.1 200")
            .then_some(())
    });
    eprintln!(
        "first 200 through the app's own route {:?} after SUBMIT",
        submitted.elapsed()
    );
    // strip-prefix: /svc/sleep reaches the app as /sleep.
    let stripped = served("any.host", "/svc/sleep?ms=1");
    assert!(stripped.ends_with("slept 1 ms\n"), "{stripped}");
    let table = ingress.routes();
    let sources: Vec<(String, String)> = table
        .routes()
        .iter()
        .map(|r| (r.label.clone(), r.source.to_string()))
        .collect();
    assert_eq!(
        sources,
        vec![
            ("/pinned".to_owned(), "flag".to_owned()),
            ("blog.example.com/".to_owned(), "app:blog".to_owned()),
            ("/svc".to_owned(), "app:blog".to_owned())
        ]
    );
    // The operator's table through the CLI: the ingress's own routes, the app's, and the one
    // it leaves out; and the Tower's table of what apps publish.
    let admin = ingress.admin_addr().unwrap().to_string();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_skr8tr"))
            .args(args)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let table = cli(&["routes", "--ingress", &admin]);
    assert_eq!(
        table,
        "HOST              PREFIX   SERVICE   SOURCE    OPTIONS\n\
         *any*             /pinned  frontend  flag      -\n\
         blog.example.com  /        blog      app:blog  -\n\
         *any*             /svc     blog      app:blog  strip-prefix\n\
         not served: route `/pinned` of app `blog` is held by flag; flag wins\n"
    );
    let tower = mesh.tower_addr.to_string();
    let published = cli(&["routes", "--json", "--tower", &tower]);
    let v: serde_json::Value = serde_json::from_str(&published).unwrap();
    assert_eq!(v["routes"].as_array().map(Vec::len), Some(3), "{v}");
    // Another app cannot take a host + prefix blog holds.
    let thief = mesh.submit(&example("thief", 1, "  route blog.example.com/\n"));
    assert!(
        thief.starts_with("ERR|") && thief.contains("blog"),
        "{thief}"
    );

    // Move blog's routes a few versions on at this Tower (an extra route, then back), so the
    // edge holds a version a restarted Tower counting from 1 would not reach.
    let blog = "blog.example.com:/:-:-:-:-:-,-:/svc:s:-:-:-:-,-:/pinned:-:-:-:-:-";
    let extra = format!("PUBLISH_ROUTES|blog|4|{blog},-:/extra:-:-:-:-:-");
    assert!(ask(mesh.tower_addr, &extra).starts_with("OK|PUBLISHED|blog|"));
    eventually(Duration::from_secs(5), "the extra route served", || {
        (ingress.routes().routes().len() == 4).then_some(())
    });
    let back = format!("PUBLISH_ROUTES|blog|3|{blog}");
    assert!(ask(mesh.tower_addr, &back).starts_with("OK|PUBLISHED|blog|"));
    eventually(Duration::from_secs(5), "the extra route gone", || {
        (ingress.routes().routes().len() == 3).then_some(())
    });

    // The Tower restarts empty: the edge keeps serving the routes, the Conductor publishes
    // them again, and a withdrawal after the restart still reaches the edge (the restarted
    // Tower's versions are newer than the ones the edge holds).
    drop(mesh.tower.take());
    std::thread::sleep(Duration::from_millis(300));
    assert!(served("blog.example.com", "/").starts_with("HTTP/1.1 200"));
    mesh.tower = Some(tower_at(mesh.tower_addr));
    eventually(Duration::from_secs(15), "routes published again", || {
        ask(mesh.tower_addr, "ROUTES")
            .starts_with("OK|ROUTES|3|")
            .then_some(())
    });
    assert_eq!(ask(mesh.cmd(), "EVICT|blog"), "OK|EVICTED|blog");
    eventually(
        Duration::from_secs(10),
        "the route withdrawn at the edge",
        || {
            let r = served("blog.example.com", "/");
            (r.starts_with("HTTP/1.1 404") && r.ends_with("No route for this path.\n"))
                .then_some(())
        },
    );
    assert_eq!(ingress.routes().routes().len(), 1, "the flag route stays");
    ingress.stop();
}

/// Writes `png` as `docs/<name>` when `SKR8TR_WRITE_SCREENSHOTS` is set (the committed
/// screenshots are made this way; a normal run leaves the tree alone).
fn keep_screenshot(name: &str, png: &[u8]) {
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if std::env::var_os("SKR8TR_WRITE_SCREENSHOTS").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("wrote {}", path.display());
    }
}

#[test]
fn the_status_page_follows_a_deploy_a_rollout_and_a_killed_replica_without_a_reload() {
    let Some(()) = crate::browser::available("the status page test") else {
        return;
    };
    let mesh = Mesh::start_with_admin();
    let admin = mesh.admin.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let browser = crate::browser::Browser::start(1280, 1000);
    browser.open(&format!("http://{admin}/"));
    let loaded = browser.eval("return performance.timeOrigin;");
    browser.wait_text("live", Duration::from_secs(10), "the stream", |t| {
        t == "live"
    });

    // A deploy: its replicas appear, then turn healthy.
    let health = "  health {\n    check GET /healthz 200\n    interval 300ms\n  }\n";
    let v1 = example(
        "web",
        2,
        &format!("{health}  env {{\n    VERSION 1\n  }}\n"),
    );
    assert!(mesh.submit(&v1).starts_with("OK|SUBMITTED|web|"));
    browser.wait_text(
        "replicas",
        Duration::from_secs(15),
        "two healthy replicas",
        |t| t.matches("web.g1.r").count() == 2 && t.matches("healthy").count() == 2,
    );
    browser.wait_text("apps", Duration::from_secs(5), "the app", |t| {
        t.contains("web")
    });
    keep_screenshot("status-page.png", &browser.screenshot());

    // A rollout: its progress shows while it runs, then it completes.
    roll_to_version_2(&mesh, &v1, "web");
    browser.wait_text(
        "rollouts",
        Duration::from_secs(15),
        "the rollout running",
        |t| t.contains("running") && t.contains("g2"),
    );
    keep_screenshot("status-page-rollout.png", &browser.screenshot());
    browser.wait_text(
        "rollouts",
        Duration::from_secs(30),
        "the rollout complete",
        |t| t.contains("complete") && t.contains("2/2"),
    );
    browser.wait_text(
        "replicas",
        Duration::from_secs(15),
        "generation 2 healthy",
        |t| !t.contains("web.g1.") && t.matches("web.g2.r").count() == 2,
    );

    // kill -9: the exit shows in the events, then the replica healthy again, restarted once.
    let victim = eventually(Duration::from_secs(10), "a running g2 replica", || {
        mesh.status()
            .into_iter()
            .find(|r| r.generation == 2 && r.pid != 0 && r.state.keyword() == "healthy")
    });
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &victim.pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let id = victim.replica.to_string();
    browser.wait_text("events", Duration::from_secs(10), "the exit", |t| {
        t.lines()
            .any(|l| l.contains("exited") && l.contains(&id) && l.contains("exit -9"))
    });
    let row = format!(
        "const r = document.querySelector('#replicas tr[data-key=\"{id}\"]'); return r ? r.innerText : '';"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let text = browser.eval(&row);
        let cells: Vec<&str> = text.as_str().unwrap_or_default().split('\t').collect();
        // replica, state, node, port, CPU, RSS, restarts, …
        if cells.get(1) == Some(&"healthy") && cells.get(6) == Some(&"1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the killed replica never came back healthy with one restart: {cells:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        browser.eval("return performance.timeOrigin;"),
        loaded,
        "the page reloaded"
    );

    // A phone-width screen: nothing wider than the screen but the tables' own scroll boxes.
    drop(browser);
    let phone = crate::browser::Browser::start(390, 844);
    phone.open(&format!("http://{admin}/"));
    phone.wait_text("replicas", Duration::from_secs(10), "the replicas", |t| {
        t.contains("web.g2.r")
    });
    let overflow = phone.eval(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    );
    assert_eq!(overflow, 0, "the page scrolls sideways on a phone");
    keep_screenshot("status-page-phone.png", &phone.screenshot());
}

/// The `skr8tr` binary against `mesh`'s Conductor: exit code, stdout, stderr.
fn skr8tr_cli(mesh: &Mesh, home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skr8tr"))
        .args(args)
        .args(["--conductor", &mesh.cmd().to_string()])
        .env("HOME", home)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plan_a_canary_promoted_under_load_history_and_rollback_through_the_cli() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let (v1, ingress, edge) = versioned_app_behind_an_ingress(&mesh, "web", 3);
    eventually(Duration::from_secs(15), "3 healthy", || {
        (mesh
            .status()
            .iter()
            .filter(|r| r.state.keyword() == "healthy")
            .count()
            == 3)
            .then_some(())
    });
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let v1_file = write("v1.skr8tr", &v1);
    let v2 = v1
        .replace("VERSION 1", "VERSION 2")
        .replace("  health {", "  rollout {\n    canary 1\n  }\n  health {");
    let v2_file = write("v2.skr8tr", &v2);
    let home = dir.path();

    // plan: no change, then the canary rollout it would start; nothing changed by asking.
    let (code, out, err) = skr8tr_cli(&mesh, home, &["plan", &v1_file]);
    assert_eq!(
        (code, out.as_str()),
        (0, "app web: no change (generation 1)\n"),
        "{err}"
    );
    let (code, out, err) = skr8tr_cli(&mesh, home, &["plan", &v2_file]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out,
        "app web: rollout to generation 2, 1 canary replica(s) first\n  env: ~ VERSION\n  rollout: changed\n"
    );
    assert!(mesh.status().iter().all(|r| r.generation == 1));
    let bad = write("bad.skr8tr", "app web\n  replicas lots\n");
    let (code, _, err) = skr8tr_cli(&mesh, home, &["plan", &bad]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.skr8tr:2:12"), "{err}");

    // The canary: one new replica beside the three old; `rollout` returns once it is healthy.
    let load = Load::start(edge, 3);
    std::thread::sleep(Duration::from_millis(300));
    let (code, out, err) = skr8tr_cli(&mesh, home, &["rollout", &v2_file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("canary ready beside the old replicas"),
        "{out}"
    );
    let count = |g: u64| {
        mesh.status()
            .iter()
            .filter(|r| r.generation == g && r.state.keyword() == "healthy")
            .count()
    };
    assert_eq!((count(1), count(2)), (3, 1));
    // The edge sends traffic to the canary too.
    eventually(
        Duration::from_secs(10),
        "the canary answers through the edge",
        || {
            (0..20)
                .filter_map(|_| http_get(edge, "/"))
                .any(|b| b.contains("web.g2."))
                .then_some(())
        },
    );
    // promote: the rollout goes on to the end; no request fails.
    let (code, out, err) = skr8tr_cli(&mesh, home, &["promote", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("complete"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    let (ok, failed, bodies) = load.finish();
    assert_eq!(
        failed, 0,
        "requests failed during the canary and its promotion"
    );
    assert!(ok > 100, "too little load: {ok}");
    assert!(bodies.iter().any(|b| b.contains(".g2.")));
    assert_eq!((count(1), count(2)), (0, 3));
    let (code, _, _) = skr8tr_cli(&mesh, home, &["promote", "web"]);
    assert_eq!(code, 1, "no canary waits any more");

    // history: both generations, the second running.
    let (code, out, err) = skr8tr_cli(&mesh, home, &["history", "web", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let gens = v["generations"].as_array().unwrap();
    assert_eq!(gens.len(), 2, "{v}");
    assert_eq!(
        (gens[0]["generation"].as_u64(), gens[1]["current"].as_bool()),
        (Some(1), Some(true))
    );
    assert_ne!(gens[0]["digest"], gens[1]["digest"]);

    // rollback: to generation 1's spec, as generation 3, through a normal rollout.
    let (code, out, err) = skr8tr_cli(&mesh, home, &["rollback", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rolling back to the spec of generation 1"),
        "{out}"
    );
    assert!(out.contains("complete"), "{out}");
    assert_eq!(count(3), 3);
    let (_, out, _) = skr8tr_cli(&mesh, home, &["history", "web", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let gens = v["generations"].as_array().unwrap();
    assert_eq!(gens.len(), 3);
    assert_eq!(
        gens[2]["digest"], gens[0]["digest"],
        "generation 3 runs generation 1's spec"
    );
    let (_, out, _) = skr8tr_cli(&mesh, home, &["plan", &v1_file]);
    assert_eq!(out, "app web: no change (generation 3)\n");
    let (code, _, err) = skr8tr_cli(&mesh, home, &["rollback", "web", "9"]);
    assert_eq!(code, 1);
    assert!(err.contains("generation 9 is not kept"), "{err}");
    ingress.stop();
}

#[test]
fn events_follow_prints_each_new_event_as_one_json_line() {
    use std::io::BufRead as _;
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().unwrap();
    let _node = mesh.node(dir.path(), true);
    mesh.wait_nodes(1);
    let mut follow = std::process::Command::new(env!("CARGO_BIN_EXE_skr8tr"))
        .args(["events", "-f", "--json", "--app", "tail", "--conductor"])
        .arg(mesh.cmd().to_string())
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Nothing of `tail` yet; then it is submitted while the follow runs.
    std::thread::sleep(Duration::from_millis(700));
    assert!(rx.try_recv().is_err(), "no event of tail before it exists");
    assert!(
        mesh.submit(&example("tail", 1, ""))
            .starts_with("OK|SUBMITTED")
    );
    let mut kinds = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !kinds.iter().any(|k| k == "launched") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the follow printed the launch");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["app"], "tail", "{line}");
        kinds.push(v["kind"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds[..2], ["submitted", "placed"], "{kinds:?}");
    let _ = follow.kill();
    let _ = follow.wait();
}
