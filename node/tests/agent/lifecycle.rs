//! A service's life as the Tower and the Conductor see it: registered only once healthy,
//! deregistered before it gets SIGTERM, reported in heartbeats and on death.

use std::path::Path;
use std::time::Duration;

use skr8tr_proto::manifest::{HealthCheck, PortSpec};

use crate::util::daemons::{Agent, AgentOptions, HealthEndpoint, Tower, ask, http_get, until};
use crate::util::ended;

use super::service;

/// On SIGTERM the script asks the Tower for its LIST (bash's /dev/udp, dd for one datagram)
/// and writes the answer to `$MARKER`: what the Tower knew when the signal came.
const ASKS_TOWER_ON_TERM: &str = "trap 'exec 3<>/dev/udp/127.0.0.1/$TOWER_PORT; printf LIST >&3; \
     dd bs=65536 count=1 <&3 >\"$MARKER.tmp\" 2>/dev/null; mv \"$MARKER.tmp\" \"$MARKER\"; exit 0' TERM; \
     while :; do sleep 0.05; done";

#[test]
fn a_service_is_registered_once_healthy_and_deregistered_before_its_signal() {
    if !Path::new("/bin/bash").exists() {
        eprintln!("no /bin/bash; skipping");
        return;
    }
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(AgentOptions::new(&tower, dir.path()));
    let health = HealthEndpoint::start(503);
    let marker = dir.path().join("marker");
    let env = [
        ("TOWER_PORT", tower.addr.port().to_string()),
        ("MARKER", marker.display().to_string()),
    ];
    let app = service("svc", "/bin/bash", ASKS_TOWER_ON_TERM, health.port, &env);
    let reply = agent.ask(&agent.launch_text("s1", app));
    let fields: Vec<&str> = reply.split('|').collect();
    assert_eq!(fields[..3], ["OK", "LAUNCHED", "s1"], "{reply}");
    let pid: u32 = fields[3].parse().unwrap();
    assert_eq!(fields[4], health.port.to_string());

    // Not healthy yet (starting, then unhealthy): not registered.
    agent.reported(|t| t.contains(&format!("s1:svc:1:{pid}:")) && !t.contains(":healthy:"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(tower.ports("svc"), Vec::<u16>::new());

    health.set(200);
    assert!(
        until(|| tower.ports("svc") == [health.port]),
        "{:?}",
        tower.list()
    );
    assert_eq!(
        ask(tower.addr, "LOOKUP|svc"),
        format!("OK|LOOKUP|svc|127.0.0.1|{}", health.port)
    );
    agent.reported(|t| {
        t.starts_with("HEARTBEAT|")
            && t.contains(&format!("s1:svc:1:{pid}:healthy:{}:", health.port))
    });

    assert_eq!(
        agent.ask(&format!("KILL|{}|s1", agent.node)),
        "OK|KILLED|s1"
    );
    assert_eq!(
        tower.ports("svc"),
        Vec::<u16>::new(),
        "deregistered before the reply"
    );
    assert!(until(|| marker.exists()), "the script never saw SIGTERM");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "OK|LIST|0|",
        "the Tower still listed the replica when it got SIGTERM"
    );
    assert!(until(|| ended(pid)));
    assert_eq!(
        agent.reported(|t| t.starts_with("DIED|")),
        format!("DIED|{}|s1|svc|0|0", agent.node)
    );
    agent.reported(|t| t.starts_with("HEARTBEAT|") && t.contains("s1:svc:1:0:exited:"));
}

#[test]
fn an_unhealthy_replica_is_deregistered() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(AgentOptions::new(&tower, dir.path()));
    let health = HealthEndpoint::start(200);
    let app = service("flaky", "/bin/sh", "exec sleep 60", health.port, &[]);
    let pid = agent.launch("f1", app);
    assert!(until(|| tower.ports("flaky") == [health.port]));
    health.set(500);
    assert!(
        until(|| tower.ports("flaky").is_empty()),
        "{:?}",
        tower.list()
    );
    agent.reported(|t| t.contains(&format!("f1:flaky:1:{pid}:unhealthy:")));
    health.set(200);
    assert!(
        until(|| tower.ports("flaky") == [health.port]),
        "registered again once it passes"
    );
}

#[test]
fn registrations_are_refreshed_at_the_advertised_address_and_survive_a_tower_restart() {
    let tower = Tower::start_restartable();
    let tower_addr = tower.addr;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AgentOptions::new(&tower, dir.path());
    opts.advertise = Some("127.0.0.2".parse().unwrap());
    opts.reregister = Some(Duration::from_millis(200));
    let agent = Agent::start(opts);
    let health = HealthEndpoint::start(200);
    agent.launch(
        "h1",
        service("healer", "/bin/sh", "exec sleep 60", health.port, &[]),
    );
    let registered = || {
        let list = ask(tower_addr, "LIST");
        list == format!("OK|LIST|1|healer:127.0.0.2:{}:30", health.port)
            || list == format!("OK|LIST|1|healer:127.0.0.2:{}:29", health.port)
    };
    assert!(until(registered), "{}", ask(tower_addr, "LIST"));
    drop(tower);
    // Another test may briefly hold the freed port: retry the bind for a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let restarted = loop {
        match Tower::start_at(None, tower_addr) {
            Ok(t) => break t,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("Tower not restarted yet on {tower_addr}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot restart the Tower on {tower_addr}: {e}"),
        }
    };
    assert!(
        until(|| restarted.ports("healer") == [health.port]),
        "{:?}",
        restarted.list()
    );
    drop(agent);
}

/// A real HTTP server process (Python's), on a port the node picks (`port auto`), reachable
/// at the address the Tower gives out. Skipped where python3 is missing.
#[test]
fn a_real_http_server_on_an_automatic_port() {
    let Some(python) = python3() else {
        eprintln!("python3 not found; skipping the real HTTP server test");
        return;
    };
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(AgentOptions::new(&tower, dir.path()));
    std::fs::write(dir.path().join("hello.txt"), "hello from the replica\n").unwrap();
    let script = "exec \"$PYTHON\" -m http.server \"$PORT\" --bind 127.0.0.1 --directory \"$SITE\"";
    let env = [
        ("PYTHON", python),
        ("SITE", dir.path().display().to_string()),
    ];
    let mut app = service("web", "/bin/sh", script, 1, &env);
    app.port = Some(PortSpec::Auto);
    if let Some(h) = app.health.as_mut() {
        h.check = HealthCheck::Tcp;
        h.interval = Duration::from_millis(200);
        h.timeout = Duration::from_millis(150);
        h.retries = 50;
    }
    let reply = agent.ask(&agent.launch_text("w1", app));
    let port: u16 = reply.rsplit('|').next().unwrap().parse().unwrap();
    assert!(reply.starts_with("OK|LAUNCHED|w1|") && port > 0, "{reply}");
    assert!(until(|| tower.ports("web") == [port]), "{:?}", tower.list());
    let lookup = ask(tower.addr, "LOOKUP|web");
    assert_eq!(lookup, format!("OK|LOOKUP|web|127.0.0.1|{port}"));
    let body = http_get(port, "/hello.txt");
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    assert!(body.ends_with("hello from the replica\n"), "{body}");
}

fn python3() -> Option<String> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys, http.server; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !path.is_empty()).then_some(path)
}
