//! With a mesh key: only requests signed with it, fresh, and addressed to this node change
//! anything; reports and registrations are signed.

use crate::util::daemons::{Agent, AgentOptions, HealthEndpoint, Mesh, Tower, ask, until};
use crate::util::ended;

use super::{service, sleeper};

#[test]
fn only_fresh_mesh_signed_requests_for_this_node_are_carried_out() {
    let mesh = Mesh::generate();
    let tower = Tower::start(Some(&mesh));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AgentOptions::new(&tower, dir.path());
    opts.mesh = Some(&mesh);
    let agent = Agent::start(opts);
    let node = agent.node.clone();
    assert_eq!(
        agent.ask("PING"),
        format!("OK|PONG|{node}"),
        "PING needs no signature"
    );

    let launch = agent.launch_text("k1", sleeper("guarded"));
    assert_eq!(agent.ask(&launch), "ERR|UNAUTHORIZED", "unsigned");
    let stranger = Mesh::generate();
    assert_eq!(
        agent.ask(&stranger.sign(&launch)),
        "ERR|UNAUTHORIZED",
        "another key"
    );
    let elsewhere = launch.replacen(&format!("LAUNCH|{node}|"), "LAUNCH|node-zz|", 1);
    let refused = agent.ask(&mesh.sign(&elsewhere));
    assert!(refused.starts_with("ERR|BAD_REQUEST|"), "{refused}");
    assert_eq!(agent.ask("STATUS"), "OK|STATUS|0|", "nothing ran");

    let signed = mesh.sign(&launch);
    let reply = agent.ask(&signed);
    assert!(reply.starts_with("OK|LAUNCHED|k1|"), "{reply}");
    let pid: u32 = reply.split('|').nth(3).unwrap().parse().unwrap();
    assert_eq!(agent.ask(&signed), "ERR|UNAUTHORIZED", "a replay");

    let kill = format!("KILL|{node}|k1");
    assert_eq!(agent.ask(&kill), "ERR|UNAUTHORIZED");
    assert_eq!(agent.ask(&format!("LOGS|{node}|k1")), "ERR|UNAUTHORIZED");
    assert_eq!(
        agent.ask(&format!("EXEC|{node}|k1|1000|id")),
        "ERR|UNAUTHORIZED"
    );
    assert!(!ended(pid));
    assert_eq!(agent.ask("STATUS"), format!("OK|STATUS|1|k1:{pid}"));
    // Heartbeats are signed (`reported` verifies them).
    agent.reported(|t| t.starts_with("HEARTBEAT|") && t.contains(&format!("k1:guarded:1:{pid}:")));

    assert_eq!(agent.ask(&mesh.sign(&kill)), "OK|KILLED|k1");
    assert!(until(|| ended(pid)));
}

#[test]
fn a_signed_kill_for_one_node_cannot_be_replayed_to_another() {
    let mesh = Mesh::generate();
    let tower = Tower::start(Some(&mesh));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = |dir: &tempfile::TempDir, id| {
        let mut opts = AgentOptions::new(&tower, dir.path());
        opts.mesh = Some(&mesh);
        opts.node_id = Some(id);
        Agent::start(opts)
    };
    let (a, b) = (start(&dir_a, "node-a"), start(&dir_b, "node-b"));
    assert_eq!(a.node.as_str(), "node-a");
    let pid_b = b.launch_signed(&mesh, "same", sleeper("twin"));
    let _pid_a = a.launch_signed(&mesh, "same", sleeper("twin"));
    let kill_a = mesh.sign("KILL|node-a|same");
    let refused = b.ask(&kill_a);
    assert!(refused.starts_with("ERR|BAD_REQUEST|"), "{refused}");
    assert!(!ended(pid_b));
    assert_eq!(a.ask(&kill_a), "OK|KILLED|same");
    assert_eq!(b.ask("STATUS"), format!("OK|STATUS|1|same:{pid_b}"));
}

#[test]
fn registrations_with_a_mesh_tower_are_signed() {
    let mesh = Mesh::generate();
    let tower = Tower::start(Some(&mesh));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AgentOptions::new(&tower, dir.path());
    opts.mesh = Some(&mesh);
    let agent = Agent::start(opts);
    let health = HealthEndpoint::start(200);
    let app = service("sealed", "/bin/sh", "exec sleep 60", health.port, &[]);
    agent.launch_signed(&mesh, "r1", app);
    assert!(until(|| tower.ports("sealed") == [health.port]));
    assert_eq!(
        ask(tower.addr, "LOOKUP|sealed"),
        format!("OK|LOOKUP|sealed|127.0.0.1|{}", health.port)
    );
    assert_eq!(
        agent.ask(&mesh.sign(&format!("KILL|{}|r1", agent.node))),
        "OK|KILLED|r1"
    );
    assert!(
        tower.ports("sealed").is_empty(),
        "the signed DEREGISTER was accepted"
    );
}
