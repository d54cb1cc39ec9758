//! The command socket: answers, refusals, silence for junk, and each request kind.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::util::daemons::{Agent, AgentOptions, Tower, until};
use crate::util::{app, ended, sh};

use super::sleeper;

fn agent(tower: &Tower, dir: &tempfile::TempDir) -> Agent {
    Agent::start(AgentOptions::new(tower, dir.path()))
}

#[test]
fn ping_status_and_junk() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&tower, &dir);
    assert_eq!(agent.ask("PING"), format!("OK|PONG|{}", agent.node));
    assert_eq!(agent.ask("PING\n"), format!("OK|PONG|{}", agent.node));
    assert_eq!(agent.ask("STATUS"), "OK|STATUS|0|");

    // Replies, unparseable, truncated, oversized and binary datagrams: never answered.
    let mut junk: Vec<Vec<u8>> = [
        "",
        "OK|PONG|tower",
        "ERR|NOT_FOUND|x",
        "OK|LAUNCHED|r|1|2",
        "LAUNCH|",
        "LAUNCH|n|r|1|***",
        "KILL",
        "KILL|r",
        "EXEC|n|r|x|ls",
        "PING|extra",
        "HELLO",
        "KILL|n|r|1767225600|abcd",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    junk.push(vec![0xff, 0xfe, 0x00, b'|']);
    junk.push(vec![b'A'; 61_441]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for round in 0..40_u8 {
        for j in &junk {
            socket.send_to(j, agent.addr).unwrap();
        }
        socket.send_to(&[round; 100], agent.addr).unwrap();
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0; 2048];
    if let Ok((n, _)) = socket.recv_from(&mut buf) {
        panic!(
            "junk was answered: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    assert_eq!(agent.ask("PING"), format!("OK|PONG|{}", agent.node));

    // Decodable requests that cannot be carried out are answered with an error.
    let other = agent.ask("KILL|another-node|r1");
    assert!(other.starts_with("ERR|BAD_REQUEST|"), "{other}");
    assert!(other.contains("another-node"), "{other}");
    assert_eq!(
        agent.ask(&format!("KILL|{}|r1", agent.node)),
        "OK|KILLED|r1",
        "killing what is not there succeeds (idempotent)"
    );
    let logs = agent.ask(&format!("LOGS|{}|r1", agent.node));
    assert!(logs.starts_with("ERR|NOT_FOUND|"), "{logs}");
    let exec = agent.ask(&format!("EXEC|{}|r1|1000|true", agent.node));
    assert!(exec.starts_with("ERR|NOT_FOUND|"), "{exec}");
    drop(agent);
}

#[test]
fn a_missing_binary_is_a_launch_failure() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&tower, &dir);
    let reply = agent.ask(&agent.launch_text("g1", app("ghost", "/nonexistent/ghost", &[])));
    assert!(reply.starts_with("ERR|LAUNCH_FAILED|"), "{reply}");
    assert!(reply.contains("/nonexistent/ghost"), "{reply}");
    assert_eq!(agent.ask("STATUS"), "OK|STATUS|1|g1:0");
    // An app spec that does not validate (`app a { exce /bin/true }`) is refused with the
    // parser's reason.
    let bad = agent.ask(&format!(
        "LAUNCH|{}|b1|1|YXBwIGEgewogIGV4Y2UgL2Jpbi90cnVlCn0K",
        agent.node
    ));
    assert!(bad.starts_with("ERR|BAD_MANIFEST|"), "{bad}");
    assert!(bad.contains("exce"), "{bad}");
    agent.reported(|t| t.starts_with("HEARTBEAT|") && t.contains("g1:ghost:1:0:failed:"));
    let logs = agent.ask(&format!("LOGS|{}|g1", agent.node));
    assert!(logs.contains("launch failed"), "the log says why: {logs}");
}

#[test]
fn logs_and_exec() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&tower, &dir);
    agent.launch("l1", sh("talker", "echo one; echo 'two|2'; exec sleep 60"));
    let logs = format!("LOGS|{}|l1", agent.node);
    assert!(
        until(|| agent.ask(&logs) == "OK|LOGS|l1|2|one\ntwo|2"),
        "{}",
        agent.ask(&logs)
    );
    assert_eq!(
        agent.ask(&format!(
            "EXEC|{}|l1|5000|echo hi; echo \"$SKR8TR_REPLICA\"; exit 3",
            agent.node
        )),
        "OK|EXEC|l1|3|hi\nl1\n"
    );
    let started = Instant::now();
    let slow = agent.ask(&format!("EXEC|{}|l1|300|sleep 5", agent.node));
    assert!(
        slow.starts_with("OK|EXEC|l1|-"),
        "killed at the timeout: {slow}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let zero = agent.ask(&format!("EXEC|{}|l1|0|true", agent.node));
    assert!(zero.starts_with("ERR|BAD_REQUEST|"), "{zero}");
    // A slow EXEC does not hold up other requests.
    let bg = agent.addr;
    let node = agent.node.clone();
    let waiter = std::thread::spawn(move || {
        crate::util::daemons::ask(bg, &format!("EXEC|{node}|l1|5000|sleep 1; echo late"))
    });
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    assert_eq!(agent.ask("PING"), format!("OK|PONG|{}", agent.node));
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(waiter.join().unwrap(), "OK|EXEC|l1|0|late\n");
}

#[test]
fn died_is_reported_after_kill_9() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(&tower, &dir);
    let pid = agent.launch("d1", sleeper("doomed"));
    agent.reported(|t| {
        t.starts_with("HEARTBEAT|") && t.contains(&format!("d1:doomed:1:{pid}:healthy:0:"))
    });
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let died = agent.reported(|t| t.starts_with("DIED|"));
    assert_eq!(died, format!("DIED|{}|d1|doomed|-9|0", agent.node));
    assert!(until(|| ended(pid)));
    agent.reported(|t| t.starts_with("HEARTBEAT|") && t.contains("d1:doomed:1:0:failed:"));
}

/// The same smoke test on the epoll fallback.
#[test]
fn ping_and_launch_on_epoll() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AgentOptions::new(&tower, dir.path());
    opts.epoll = true;
    let agent = Agent::start(opts);
    assert_eq!(agent.ask("PING"), format!("OK|PONG|{}", agent.node));
    let pid = agent.launch("e1", sleeper("epoll"));
    assert!(pid > 0);
    assert_eq!(agent.ask("STATUS"), format!("OK|STATUS|1|e1:{pid}"));
    agent.reported(|t| t.starts_with("HEARTBEAT|") && t.contains(&format!("e1:epoll:1:{pid}:")));
    assert_eq!(
        agent.ask(&format!("KILL|{}|e1", agent.node)),
        "OK|KILLED|e1"
    );
    assert!(until(|| ended(pid)));
}
