//! Agent restarts: detaching leaves the workloads to the next agent, which adopts them without
//! duplicating; `stop_workloads_on_exit` stops them; one state directory, one agent.

use std::time::Duration;

use skr8tr_daemon::UdpEndpoint;
use skr8tr_node::{AgentConfig, AgentError, AgentExit};

use crate::util::daemons::{Agent, AgentOptions, Tower, until};
use crate::util::ended;

use super::sleeper;

#[test]
fn a_restarted_agent_adopts_its_workloads_without_duplicates() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = AgentOptions::new(&tower, dir.path());
    opts.stop_workloads_on_exit = false;
    let first = Agent::start(opts);
    let node = first.node.clone();
    let pid = first.launch("a1", sleeper("keeper"));
    assert_eq!(first.stop(), AgentExit::Detached);
    assert!(!ended(pid), "detaching does not stop the workloads");

    let second = Agent::start(AgentOptions::new(&tower, dir.path()));
    assert_eq!(second.node, node, "the node id is stable");
    assert_eq!(second.ask("STATUS"), format!("OK|STATUS|1|a1:{pid}"));
    assert_eq!(second.launch("a1", sleeper("keeper")), pid, "no duplicate");
    assert_eq!(second.ask("STATUS"), format!("OK|STATUS|1|a1:{pid}"));
    second.reported(|t| t.starts_with("HEARTBEAT|") && t.contains(&format!("a1:keeper:1:{pid}:")));
    assert_eq!(second.stop(), AgentExit::StoppedWorkloads);
    assert!(until(|| ended(pid)), "stop_workloads_on_exit stops them");
}

#[test]
fn a_second_agent_on_the_same_state_directory_is_refused() {
    let tower = Tower::start(None);
    let dir = tempfile::tempdir().unwrap();
    let first = Agent::start(AgentOptions::new(&tower, dir.path()));
    let path = dir.path().to_path_buf();
    let result = skr8tr_daemon::run_with("node", true, |driver| async move {
        let socket = UdpEndpoint::bind(driver, "127.0.0.1:0".parse().unwrap()).unwrap();
        let config = AgentConfig::new(path);
        skr8tr_node::agent::run(
            driver,
            socket,
            config,
            tokio::time::sleep(Duration::from_secs(5)),
        )
        .await
    })
    .unwrap();
    assert!(matches!(result, Err(AgentError::Engine(_))), "{result:?}");
    assert_eq!(first.ask("PING"), format!("OK|PONG|{}", first.node));
}
