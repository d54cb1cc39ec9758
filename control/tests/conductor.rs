//! The Conductor daemon on loopback against fake node agents (a UDP socket that heartbeats and
//! answers LAUNCH/KILL like a node): placement and spreading, node loss, restart adoption,
//! launch errors and operator authentication.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use skr8tr_control::conductor::server::{ConductorConfig, run};
use skr8tr_control::conductor::state::Timings;
use skr8tr_daemon::Gate;
use skr8tr_proto::auth::{KeyRole, SigningKey, SystemClock, Verifier, sign_command};
use skr8tr_proto::wire::{Message, NodeRequest};

use crate::util::{Running, ask, eventually, first_event, http, start};

const MANIFEST: &str = "app api\n  exec /bin/sleep\n  args 60\n  port auto\n  replicas 3\n";

fn conductor(state: &Path, operator: Option<Verifier>) -> Running {
    conductor_with_admin(state, operator, None)
}

/// [`conductor`] with its admin listener on `admin`.
fn conductor_with_admin(
    state: &Path,
    operator: Option<Verifier>,
    admin: Option<std::net::TcpListener>,
) -> Running {
    let state = state.to_path_buf();
    start(
        "conductor",
        false,
        2,
        move |driver, mut sockets, stop| async move {
            let heartbeats = sockets.remove(1);
            let commands = sockets.remove(0);
            let config = ConductorConfig {
                operator_gate: Gate::new(operator),
                mesh_gate: Gate::new(None),
                mesh_key: None,
                state_dir: state,
                timings: Timings {
                    node_expiry: Duration::from_millis(1500),
                    launch_grace: Duration::from_secs(2),
                },
                exec_timeout: Duration::from_secs(2),
                tower: None,
                admin,
            };
            run(driver, commands, heartbeats, config, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        },
    )
}

/// A node agent stand-in: heartbeats every 200 ms listing what it runs, answers LAUNCH/KILL.
struct FakeNode {
    stop: Arc<AtomicBool>,
    launches: Arc<Mutex<Vec<String>>>,
    running: Arc<Mutex<Vec<(String, String, u32)>>>,
    /// Replica ids this node reports as never becoming healthy (their spec says `broken`).
    #[allow(dead_code)]
    broken: Arc<Mutex<Vec<String>>>,
    /// The CPU percent every replica reports (a synthetic load for autoscale).
    cpu: Arc<Mutex<f64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNode {
    fn start(id: &'static str, conductor_hb: SocketAddr, fail_launch: bool) -> Self {
        Self::start_with(id, conductor_hb, fail_launch, Vec::new())
    }

    /// A node that already runs `preset` (replica id, app, pid): an agent the Conductor had
    /// placed replicas on before it restarted.
    fn start_with(
        id: &'static str,
        conductor_hb: SocketAddr,
        fail_launch: bool,
        preset: Vec<(String, String, u32)>,
    ) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let launches = Arc::new(Mutex::new(Vec::new()));
        let mark_broken = preset.is_empty();
        let running = Arc::new(Mutex::new(preset));
        let pids = Arc::new(AtomicU32::new(1000));
        // A node started with replicas (the "same agent" after a Conductor restart) reports
        // every replica healthy, whatever its spec says.
        let broken = Arc::new(Mutex::new(Vec::<String>::new()));
        let cpu = Arc::new(Mutex::new(1.5f64));
        let cpu2 = cpu.clone();
        let (stop2, launches2, running2, broken2) = (
            stop.clone(),
            launches.clone(),
            running.clone(),
            broken.clone(),
        );
        let thread = std::thread::spawn(move || {
            let port = socket.local_addr().unwrap().port();
            let mut seq = 0u64;
            let mut buf = vec![0u8; 65536];
            while !stop2.load(Ordering::SeqCst) {
                seq += 1;
                let reps: Vec<String> = running2
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(r, app, pid)| {
                        let state = if broken2.lock().unwrap().contains(r) {
                            "starting"
                        } else {
                            "healthy"
                        };
                        format!(
                            "{r}:{app}:1:{pid}:{state}:{}:{:.2}:1000",
                            40000 + pid,
                            *cpu2.lock().unwrap()
                        )
                    })
                    .collect();
                let hb = format!(
                    "HEARTBEAT|{id}|5|4000|127.0.0.1|{port}|8000|2000|{seq}|{}",
                    reps.join(",")
                );
                socket.send_to(hb.as_bytes(), conductor_hb).unwrap();
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(req) = NodeRequest::decode(&buf[..n]) else {
                    continue;
                };
                let reply = match req {
                    NodeRequest::Launch(spec) => {
                        launches2.lock().unwrap().push(spec.replica.to_string());
                        if mark_broken && spec.app.args.iter().any(|a| a == "broken") {
                            broken2.lock().unwrap().push(spec.replica.to_string());
                        }
                        if fail_launch {
                            "ERR|LAUNCH_FAILED|/bin/nope: no such file".to_string()
                        } else {
                            let pid = pids.fetch_add(1, Ordering::SeqCst);
                            let mut r = running2.lock().unwrap();
                            if !r.iter().any(|(id, _, _)| *id == spec.replica.as_str()) {
                                r.push((spec.replica.to_string(), spec.app.name.to_string(), pid));
                            }
                            format!("OK|LAUNCHED|{}|{pid}|{}", spec.replica, 40000 + pid)
                        }
                    }
                    NodeRequest::Kill { replica, .. } => {
                        running2
                            .lock()
                            .unwrap()
                            .retain(|(id, _, _)| *id != replica.as_str());
                        format!("OK|KILLED|{replica}")
                    }
                    _ => continue,
                };
                socket.send_to(reply.as_bytes(), from).unwrap();
            }
        });
        Self {
            stop,
            launches,
            running,
            broken,
            cpu,
            thread: Some(thread),
        }
    }

    fn launched(&self) -> Vec<String> {
        self.launches.lock().unwrap().clone()
    }

    fn running(&self) -> usize {
        self.running.lock().unwrap().len()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits until the Conductor at `cmd` counts `n` live nodes.
fn wait_nodes(cmd: SocketAddr, n: usize) {
    let want = format!("OK|NODES|{n}|");
    eventually(Duration::from_secs(5), "nodes", || {
        ask(cmd, "NODES").starts_with(&want).then_some(())
    });
}

/// SUBMITs the test app and waits until its three replicas are healthy.
fn submit_and_wait_healthy(cmd: SocketAddr) {
    assert!(ask(cmd, &submit()).starts_with("OK|SUBMITTED"));
    eventually(Duration::from_secs(5), "healthy", || {
        ask(cmd, "APPS").contains("api:3:3:3:").then_some(())
    });
}

fn submit() -> String {
    format!(
        "SUBMIT|b64:{}",
        base64::engine::general_purpose::STANDARD.encode(MANIFEST)
    )
}

#[test]
fn three_replicas_spread_over_two_nodes_and_a_lost_node_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let a = FakeNode::start("node-a", hb, false);
    let b = FakeNode::start("node-b", hb, false);
    wait_nodes(cmd, 2);
    let reply = ask(cmd, &submit());
    assert!(reply.starts_with("OK|SUBMITTED|api|"), "{reply}");
    assert_eq!(a.launched().len() + b.launched().len(), 3);
    assert!(
        !a.launched().is_empty() && !b.launched().is_empty(),
        "spread over both nodes"
    );
    eventually(Duration::from_secs(5), "three in LIST", || {
        ask(cmd, "LIST").starts_with("OK|LIST|3|").then_some(())
    });
    // SUBMIT again: idempotent, nothing new launched.
    assert!(ask(cmd, &submit()).starts_with("OK|SUBMITTED|api|"));
    assert_eq!(a.launched().len() + b.launched().len(), 3);
    // Node a goes silent: its replicas are placed on b.
    let lost = a.launched().len();
    drop(a);
    eventually(Duration::from_secs(6), "replacement on node-b", || {
        (b.running() == 3).then_some(())
    });
    assert_eq!(b.launched().len(), 3 - lost + lost);
    wait_nodes(cmd, 1);
}

#[test]
fn a_restarted_conductor_adopts_and_launches_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let node = FakeNode::start("node-a", hb, false);
    wait_nodes(cmd, 1);
    submit_and_wait_healthy(cmd);
    let before = node.running.lock().unwrap().clone();
    let list_before = ask(cmd, "LIST");
    drop(node); // its heartbeats went to the old conductor's port
    drop(c);
    let c = conductor(dir.path(), None);
    let node = FakeNode::start_with("node-a", c.addrs[1], false, before);
    assert!(
        ask(c.addrs[0], "STATUS").starts_with("OK|STATUS|3|"),
        "records survived the restart"
    );
    // Past the launch grace and a few reconcile passes: nothing launched, same pids.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        node.launched().is_empty(),
        "launched again: {:?}",
        node.launched()
    );
    assert_eq!(ask(c.addrs[0], "LIST"), list_before);
}

#[test]
fn a_launch_error_is_reported_by_submit_and_nothing_is_shown_running() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let _n = FakeNode::start("node-a", hb, true);
    wait_nodes(cmd, 1);
    let reply = ask(cmd, &submit());
    assert!(reply.starts_with("ERR|LAUNCH_FAILED|"), "{reply}");
    assert!(reply.contains("no such file"), "{reply}");
    assert_eq!(ask(cmd, "LIST"), "OK|LIST|0|");
}

#[test]
fn with_operator_keys_unsigned_stale_forged_and_replayed_commands_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (op, public) = SigningKey::generate().unwrap();
    let (stranger, _) = SigningKey::generate().unwrap();
    let c = conductor(dir.path(), Some(Verifier::new(KeyRole::Operator, [public])));
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let node = FakeNode::start("node-a", hb, false);
    wait_nodes(cmd, 1);
    let now = SystemClock::now();
    assert_eq!(ask(cmd, &submit()), "ERR|UNAUTHORIZED");
    assert_eq!(
        ask(cmd, &sign_command(&stranger, &submit(), now).unwrap()),
        "ERR|UNAUTHORIZED"
    );
    assert_eq!(
        ask(cmd, &sign_command(&op, &submit(), now - 31).unwrap()),
        "ERR|UNAUTHORIZED"
    );
    assert_eq!(ask(cmd, "EVICT|api"), "ERR|UNAUTHORIZED");
    assert!(node.launched().is_empty(), "nothing launched");
    let good = sign_command(&op, &submit(), now).unwrap();
    assert!(ask(cmd, &good).starts_with("OK|SUBMITTED"));
    assert_eq!(ask(cmd, &good), "ERR|UNAUTHORIZED", "replay");
    assert_eq!(node.launched().len(), 3);
    assert_eq!(
        ask(cmd, "PING"),
        "OK|PONG|conductor",
        "read-only commands need no key"
    );
    assert!(ask(cmd, "HISTORY|api").starts_with("OK|HISTORY|api|1|1|1:"));
    // Plan, rollback and promote change (or reveal) what runs: signed or nothing.
    let plan = inline("PLAN", MANIFEST);
    for unsigned in [
        plan.as_str(),
        "ROLLBACK|api",
        "ROLLBACK|api|1",
        "PROMOTE|api",
    ] {
        assert_eq!(ask(cmd, unsigned), "ERR|UNAUTHORIZED", "{unsigned}");
    }
    let signed_plan = sign_command(&op, &plan, SystemClock::now()).unwrap();
    assert_eq!(
        ask(cmd, &signed_plan),
        "OK|PLAN|0|1|app api: no change (generation 1)"
    );
    let promote = sign_command(&op, "PROMOTE|api", SystemClock::now()).unwrap();
    assert!(ask(cmd, &promote).starts_with("ERR|BAD_REQUEST|"));
    let evict = sign_command(&op, "EVICT|api", SystemClock::now()).unwrap();
    assert_eq!(ask(cmd, &evict), "OK|EVICTED|api");
    eventually(Duration::from_secs(5), "all killed", || {
        (node.running() == 0).then_some(())
    });
}

fn inline(verb: &str, manifest: &str) -> String {
    format!(
        "{verb}|b64:{}",
        base64::engine::general_purpose::STANDARD.encode(manifest)
    )
}

fn rollout_state(cmd: SocketAddr) -> String {
    ask(cmd, "ROLLOUT_STATUS|api")
}

fn ids(node: &FakeNode) -> Vec<String> {
    node.running
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.0.clone())
        .collect()
}

#[test]
fn a_rollout_replaces_three_replicas_one_at_a_time_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let node = FakeNode::start("node-a", hb, false);
    wait_nodes(cmd, 1);
    submit_and_wait_healthy(cmd);
    // No health check: each new replica must run for `settle` before an old one goes.
    let v2 = MANIFEST.replace("args 60", "args 61\n  rollout {\n    settle 200ms\n  }");
    assert_eq!(ask(cmd, &inline("ROLLOUT", &v2)), "OK|ROLLOUT|api");
    // A second, different rollout while this one runs is refused.
    let v3 = MANIFEST.replace("args 60", "args 62");
    assert!(ask(cmd, &inline("ROLLOUT", &v3)).starts_with("ERR|BUSY|"));
    // Never fewer than 3 running, never more than 4, until complete.
    let mut max_running = 0;
    eventually(Duration::from_secs(20), "complete", || {
        let n = node.running();
        assert!(n >= 3, "a replica was stopped before its replacement: {n}");
        max_running = max_running.max(n);
        rollout_state(cmd)
            .starts_with("OK|ROLLOUT_STATUS|api|complete|3|3|")
            .then_some(())
    });
    assert!(max_running <= 4, "surge beyond one: {max_running}");
    assert_eq!(node.launched().len(), 6);
    assert!(
        ids(&node).iter().all(|id| id.starts_with("api.g2.")),
        "{:?}",
        ids(&node)
    );
}

#[test]
fn a_rollout_to_a_broken_version_is_reverted_and_no_old_replica_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let node = FakeNode::start("node-a", hb, false);
    wait_nodes(cmd, 1);
    submit_and_wait_healthy(cmd);
    let old = ids(&node);
    let broken = MANIFEST.replace(
        "args 60",
        "args broken\n  health GET /healthz 200\n  rollout {\n    healthy-deadline 1s\n  }",
    );
    assert_eq!(ask(cmd, &inline("ROLLOUT", &broken)), "OK|ROLLOUT|api");
    eventually(Duration::from_secs(10), "reverted", || {
        let still = ids(&node);
        assert!(
            old.iter().all(|o| still.contains(o)),
            "an old replica was stopped"
        );
        rollout_state(cmd)
            .starts_with("OK|ROLLOUT_STATUS|api|reverted|")
            .then_some(())
    });
    eventually(
        Duration::from_secs(5),
        "only the old generation left",
        || {
            let still = ids(&node);
            (still.len() == 3 && old.iter().all(|o| still.contains(o))).then_some(())
        },
    );
    assert!(
        ask(cmd, "APPS").contains("api:3:3:3:1:reverted"),
        "{}",
        ask(cmd, "APPS")
    );
}

#[test]
fn a_rollout_survives_a_conductor_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let node = FakeNode::start("node-a", c.addrs[1], false);
    wait_nodes(c.addrs[0], 1);
    submit_and_wait_healthy(c.addrs[0]);
    // The new version never becomes healthy on this node…
    let v2 = MANIFEST.replace("args 60", "args broken\n  rollout {\n    settle 200ms\n  }");
    assert_eq!(ask(c.addrs[0], &inline("ROLLOUT", &v2)), "OK|ROLLOUT|api");
    eventually(Duration::from_secs(5), "the surge replica", || {
        (node.launched().len() == 4).then_some(())
    });
    let running = node.running.lock().unwrap().clone();
    drop(node);
    drop(c);
    // …restart the Conductor mid-rollout, with a node that reports everything healthy.
    let c = conductor(dir.path(), None);
    let node = FakeNode::start_with("node-a", c.addrs[1], false, running);
    let state = rollout_state(c.addrs[0]);
    assert!(
        state.starts_with("OK|ROLLOUT_STATUS|api|running|"),
        "{state}"
    );
    eventually(
        Duration::from_secs(20),
        "finished after the restart",
        || {
            rollout_state(c.addrs[0])
                .starts_with("OK|ROLLOUT_STATUS|api|complete|3|3|")
                .then_some(())
        },
    );
    assert!(
        ids(&node).iter().all(|id| id.starts_with("api.g2.")),
        "{:?}",
        ids(&node)
    );
}

#[test]
fn autoscale_grows_to_max_under_load_and_shrinks_back_to_min() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let node = FakeNode::start("node-a", hb, false);
    wait_nodes(cmd, 1);
    let manifest = "app api\n  exec /bin/sleep\n  args 60\n  port auto\n  replicas 1\n  scale {\n    min 1\n    max 3\n    cpu-above 50\n    cpu-below 10\n    cooldown 1s\n  }\n";
    assert!(ask(cmd, &inline("SUBMIT", manifest)).starts_with("OK|SUBMITTED"));
    eventually(Duration::from_secs(5), "one running", || {
        (node.running() == 1).then_some(())
    });
    *node.cpu.lock().unwrap() = 90.0;
    eventually(Duration::from_secs(20), "grown to max", || {
        (node.running() == 3).then_some(())
    });
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(node.running(), 3, "never beyond max");
    *node.cpu.lock().unwrap() = 1.0;
    eventually(Duration::from_secs(20), "shrunk to min", || {
        (node.running() == 1).then_some(())
    });
    assert!(ask(cmd, "APPS").contains("api:1:"), "{}", ask(cmd, "APPS"));
}

#[test]
fn garbage_and_replies_to_both_ports_are_never_answered_and_forged_heartbeats_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (mesh, public) = SigningKey::generate().unwrap();
    let (stranger, _) = SigningKey::generate().unwrap();
    let state = dir.path().to_path_buf();
    let c = start(
        "conductor",
        false,
        2,
        move |driver, mut sockets, stop| async move {
            let heartbeats = sockets.remove(1);
            let commands = sockets.remove(0);
            let config = ConductorConfig {
                operator_gate: Gate::new(None),
                mesh_gate: Gate::new(Some(Verifier::new(KeyRole::Mesh, [public]))),
                mesh_key: None,
                state_dir: state,
                timings: Timings::default(),
                exec_timeout: Duration::from_secs(2),
                tower: None,
                admin: None,
            };
            run(driver, commands, heartbeats, config, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        },
    );
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let big = vec![b'x'; 65_000];
    let garbage: Vec<&[u8]> = vec![
        b"",
        b"\xff\xfe\x00",
        b"SUBMIT",
        b"SCALE|api|notanumber",
        b"EVICT|a|b|c",
        b"LIST|extra",
        b"OK|PONG|conductor",
        b"ERR|UNAUTHORIZED",
        b"HEARTBEAT|n",
        &big,
    ];
    for port in [cmd, hb] {
        for g in &garbage {
            let answered = crate::util::ask_within(port, g, Duration::from_millis(100));
            assert_eq!(
                answered,
                None,
                "{port} answered {:?}",
                String::from_utf8_lossy(&g[..g.len().min(30)])
            );
        }
    }
    assert_eq!(ask(cmd, "PING"), "OK|PONG|conductor", "still alive");
    // Heartbeats: unsigned and forged ones do not make a node; a signed one does.
    let hb_text = "HEARTBEAT|node-x|5|4000|127.0.0.1|7775|8000|2000|1|";
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(hb_text.as_bytes(), hb).unwrap();
    let forged = sign_command(&stranger, hb_text, SystemClock::now()).unwrap();
    sock.send_to(forged.as_bytes(), hb).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ask(cmd, "NODES"), "OK|NODES|0|");
    let good = sign_command(&mesh, hb_text, SystemClock::now()).unwrap();
    sock.send_to(good.as_bytes(), hb).unwrap();
    eventually(Duration::from_secs(3), "the signed heartbeat", || {
        ask(cmd, "NODES")
            .starts_with("OK|NODES|1|node-x:")
            .then_some(())
    });
    // Its replay is refused: a second copy does not refresh anything (no crash either).
    sock.send_to(good.as_bytes(), hb).unwrap();
    assert_eq!(ask(cmd, "PING"), "OK|PONG|conductor");
}

#[test]
fn the_admin_listener_serves_metrics_the_status_page_events_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = SigningKey::generate().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = listener.local_addr().unwrap();
    let c = conductor_with_admin(
        dir.path(),
        Some(Verifier::new(KeyRole::Operator, [public])),
        Some(listener),
    );
    let cmd = c.addrs[0];
    let _node = FakeNode::start("node-a", c.addrs[1], false);
    wait_nodes(cmd, 1);
    // One refused (unsigned) and one accepted SUBMIT.
    assert_eq!(ask(cmd, &submit()), "ERR|UNAUTHORIZED");
    let signed = sign_command(&key, &submit(), SystemClock::now()).unwrap();
    assert!(ask(cmd, &signed).starts_with("OK|SUBMITTED|api|"));
    eventually(Duration::from_secs(10), "3 healthy", || {
        (ask(cmd, "STATUS").matches(":healthy:").count() == 3).then_some(())
    });

    assert_eq!(http(admin, "GET", "/healthz"), (200, "ok\n".to_owned()));
    let metric = |line: &str| {
        eventually(Duration::from_secs(5), line, || {
            let (status, text) = http(admin, "GET", "/metrics");
            assert_eq!(status, 200);
            text.lines().any(|l| l == line).then_some(())
        });
    };
    metric("skr8tr_conductor_nodes{state=\"live\"} 1");
    metric("skr8tr_conductor_apps 1");
    metric("skr8tr_conductor_replicas{state=\"healthy\"} 3");
    metric("skr8tr_conductor_placements_total 3");
    metric("skr8tr_conductor_commands_total{verb=\"SUBMIT\",result=\"ok\"} 1");
    metric("skr8tr_conductor_auth_rejections_total{reason=\"unsigned\"} 1");
    metric("skr8tr_conductor_events_total{kind=\"healthy\"} 3");
    let (_, text) = http(admin, "GET", "/metrics");
    assert!(
        text.contains("skr8tr_conductor_reconcile_duration_seconds_count"),
        "{text}"
    );

    // EVENTS over UDP: oldest first, each with its time and reason; an app filter; a cursor.
    let reply = ask(cmd, "EVENTS");
    let events = match skr8tr_proto::wire::ConductorReply::decode(reply.as_bytes()).unwrap() {
        skr8tr_proto::wire::ConductorReply::Events { events, last_seq } => {
            assert_eq!(events.last().map(|e| e.seq), Some(last_seq));
            events
        }
        other => panic!("{other:?}"),
    };
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.keyword()).collect();
    assert_eq!(kinds[0], "node-joined", "{kinds:?}");
    for kind in ["submitted", "placed", "launched", "healthy"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "placed").count(), 3);
    let placed = events
        .iter()
        .find(|e| e.kind.keyword() == "placed")
        .unwrap();
    assert_eq!(placed.node.as_ref().map(|n| n.as_str()), Some("node-a"));
    assert!(placed.at_ms > 1_700_000_000_000);
    let after = events[1].seq;
    assert!(
        ask(cmd, &format!("EVENTS|{after}|api")).starts_with(&format!(
            "OK|EVENTS|{}|{}|",
            events.last().unwrap().seq,
            events.len() - 2
        ))
    );
    assert!(ask(cmd, "EVENTS|0|nobody").starts_with("OK|EVENTS|"));

    // The snapshot, as JSON and as the first server-sent event; the page itself.
    let (status, json) = http(admin, "GET", "/status.json");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["apps"][0]["app"], "api");
    assert_eq!(v["apps"][0]["healthy"], 3);
    assert_eq!(v["replicas"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["replicas"][0]["node"], "node-a");
    assert_eq!(v["nodes"][0]["state"], "live");
    assert!(v["events"].as_array().is_some_and(|e| e.len() >= 8));
    let pushed: serde_json::Value = serde_json::from_str(&first_event(admin, "/events")).unwrap();
    assert_eq!(pushed["apps"][0]["app"], "api");
    let (status, page) = http(admin, "GET", "/");
    assert_eq!(status, 200);
    assert!(
        page.contains("new EventSource(\"/events\")"),
        "the page follows /events"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing from outside"
    );

    // Read-only, and nothing else is served.
    assert_eq!(http(admin, "POST", "/").0, 405);
    assert_eq!(http(admin, "GET", "/nope").0, 404);
    assert_eq!(http(admin, "HEAD", "/healthz"), (200, String::new()));
}

#[test]
fn a_canary_rolled_back_leaves_only_the_old_replicas_and_history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = conductor(dir.path(), None);
    let (cmd, hb) = (c.addrs[0], c.addrs[1]);
    let node = FakeNode::start("node-a", hb, false);
    wait_nodes(cmd, 1);
    submit_and_wait_healthy(cmd);
    let old = ids(&node);
    let canary = MANIFEST.replace(
        "args 60",
        "args 61\n  rollout {\n    canary 2\n    settle 100ms\n  }",
    );
    assert_eq!(ask(cmd, &inline("ROLLOUT", &canary)), "OK|ROLLOUT|api");
    eventually(
        Duration::from_secs(10),
        "two canaries beside three old",
        || {
            rollout_state(cmd)
                .starts_with("OK|ROLLOUT_STATUS|api|canary|2|2|canary: 2 new beside 3 old")
                .then_some(())
        },
    );
    // Waiting at the canaries: nothing old stops, however long.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(node.running(), 5);
    assert!(old.iter().all(|o| ids(&node).contains(o)));
    assert_eq!(ask(cmd, "ROLLBACK|api"), "OK|ROLLBACK|api|1");
    eventually(Duration::from_secs(10), "the canaries gone", || {
        (rollout_state(cmd).starts_with("OK|ROLLOUT_STATUS|api|reverted|") && ids(&node) == old)
            .then_some(())
    });
    assert_eq!(
        ask(cmd, "PROMOTE|api"),
        "ERR|BAD_REQUEST|no canary of the app waits to be promoted"
    );
    assert_eq!(ask(cmd, "PROMOTE|nope"), "ERR|NOT_FOUND|no such app");
    // Both generations are kept, and still are after a restart.
    let history = ask(cmd, "HISTORY|api");
    assert!(history.starts_with("OK|HISTORY|api|1|2|1:"), "{history}");
    assert!(history.contains(",2:"), "{history}");
    drop(node);
    drop(c);
    let c = conductor(dir.path(), None);
    assert_eq!(ask(c.addrs[0], "HISTORY|api"), history);
    assert_eq!(ask(c.addrs[0], "HISTORY|nope"), "ERR|NOT_FOUND|nope");
}

#[test]
fn a_signed_command_replayed_after_a_conductor_restart_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (op, public) = SigningKey::generate().unwrap();
    let gate = || Some(Verifier::new(KeyRole::Operator, [public.clone()]));
    let c = conductor(dir.path(), gate());
    let node = FakeNode::start("node-a", c.addrs[1], false);
    wait_nodes(c.addrs[0], 1);
    let submit_signed = sign_command(&op, &submit(), SystemClock::now()).unwrap();
    assert!(ask(c.addrs[0], &submit_signed).starts_with("OK|SUBMITTED"));
    let evict_signed = sign_command(&op, "EVICT|api", SystemClock::now()).unwrap();
    assert_eq!(ask(c.addrs[0], &evict_signed), "OK|EVICTED|api");
    eventually(Duration::from_secs(5), "evicted", || {
        (node.running() == 0).then_some(())
    });
    drop(node);
    drop(c);

    // The restarted Conductor still knows both commands: a captured datagram replayed within
    // the signature window changes nothing.
    let c = conductor(dir.path(), gate());
    let cmd = c.addrs[0];
    let node = FakeNode::start("node-a", c.addrs[1], false);
    wait_nodes(cmd, 1);
    assert_eq!(
        ask(cmd, &submit_signed),
        "ERR|UNAUTHORIZED",
        "SUBMIT replayed"
    );
    assert!(
        ask(cmd, "LIST").starts_with("OK|LIST|0|"),
        "nothing submitted again"
    );
    let fresh = sign_command(&op, &submit(), SystemClock::now()).unwrap();
    assert!(
        ask(cmd, &fresh).starts_with("OK|SUBMITTED"),
        "a new signature is accepted"
    );
    assert_eq!(
        ask(cmd, &evict_signed),
        "ERR|UNAUTHORIZED",
        "EVICT replayed"
    );
    assert!(
        ask(cmd, "LIST").starts_with("OK|LIST|3|"),
        "the app still runs"
    );
    assert_eq!(node.launched().len(), 3);
}
