//! Table-style tests of the answers read from the state: each row is a small cluster and what
//! the query must give for it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use skr8tr_proto::manifest::{App, PortSpec};

use super::super::super::model::AppRecord;
use super::super::super::rollout::Rollout;
use super::super::super::store::Loaded;
use super::super::Timings;
use super::*;

use ReplicaPhase::{Healthy, Launching, Running, Stopping};

/// A cluster of nodes `n1`..`n3` (at 10.0.0.1..3, agent port 7775, heard from now) and the
/// app `api` at generation 2, serving a port unless `port` is false.
fn cluster(port: bool) -> (State, Instant) {
    let now = Instant::now();
    let mut s = State::new(Loaded::default(), Timings::default(), now);
    let mut spec = App::with_defaults(AppName::new("api").unwrap(), Some("/bin/true".into()));
    spec.port = port.then_some(PortSpec::Auto);
    s.apps.insert(
        spec.name.clone(),
        AppRecord {
            spec,
            generation: 2,
            desired: 2,
        },
    );
    for i in 1..=3u8 {
        let id = NodeId::new(format!("n{i}")).unwrap();
        s.nodes.insert(
            id.clone(),
            NodeView {
                id,
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
                agent_port: 7775,
                cpu_pct: 0.0,
                ram_free_mb: 8000,
                ram_total_mb: 8000,
                cpu_millis: 2000,
                gpus: 0,
                last_seen: now,
                replicas: Vec::new(),
            },
        );
    }
    (s, now)
}

/// A replica `id` of `app` at `generation` on `node`, listening on `port`.
fn put(s: &mut State, id: &str, app: &str, generation: u64, node: &str, phase: ReplicaPhase) {
    let port = 41000 + u16::try_from(s.replicas.len()).unwrap();
    let rec = ReplicaRecord {
        id: ReplicaId::new(id).unwrap(),
        app: AppName::new(app).unwrap(),
        generation,
        node: NodeId::new(node).unwrap(),
        phase,
        pid: Some(100),
        port: Some(port),
        port_spec: Some(PortSpec::Auto),
        ram: 0,
        cpu_millis: 0,
        placed_at_ms: 0,
        exit: None,
        gpus: 0,
    };
    s.replicas.insert(rec.id.clone(), rec);
}

fn api() -> AppName {
    AppName::new("api").unwrap()
}

type Row = (&'static str, u64, &'static str, ReplicaPhase);

#[test]
fn placements_name_the_nodes_of_the_current_generation_not_being_stopped() {
    let table: [(&[Row], &[&str]); 5] = [
        (&[], &[]),
        (
            &[("api.a", 2, "n1", Launching), ("api.b", 2, "n2", Healthy)],
            &["n1", "n2"],
        ),
        (
            &[("api.a", 2, "n1", Running), ("api.b", 2, "n2", Stopping)],
            &["n1"],
        ),
        (
            &[("api.a", 1, "n1", Healthy), ("api.b", 2, "n3", Running)],
            &["n3"],
        ),
        (
            &[("web.a", 2, "n1", Healthy), ("api.b", 2, "n1", Healthy)],
            &["n1"],
        ),
    ];
    for (replicas, nodes) in table {
        let (mut s, _) = cluster(true);
        for &(id, generation, node, phase) in replicas {
            let app = id.split('.').next().unwrap();
            put(&mut s, id, app, generation, node, phase);
        }
        let placements = s.placements(&[api()]);
        assert_eq!(placements.len(), 1);
        assert_eq!(placements[0].app, api());
        let got: Vec<&str> = placements[0].nodes.iter().map(NodeId::as_str).collect();
        assert_eq!(got, nodes, "{replicas:?}");
    }
    let (s, _) = cluster(true);
    let unknown = AppName::new("nope").unwrap();
    assert!(s.placements(&[unknown])[0].nodes.is_empty());
}

#[test]
fn logs_and_exec_go_to_the_wanted_replica_else_a_healthy_one_else_any() {
    // (replicas, wanted, expected replica)
    let table: [(&[Row], Option<&str>, Option<&str>); 7] = [
        (&[], None, None),
        (
            &[("api.a", 2, "n1", Running), ("api.b", 2, "n2", Healthy)],
            None,
            Some("api.b"),
        ),
        (
            &[("api.a", 2, "n1", Stopping), ("api.b", 2, "n2", Launching)],
            None,
            Some("api.b"),
        ),
        (&[("api.a", 2, "n1", Stopping)], None, Some("api.a")),
        (
            &[("api.a", 2, "n1", Running), ("api.b", 2, "n2", Healthy)],
            Some("api.a"),
            Some("api.a"),
        ),
        (&[("web.a", 2, "n1", Healthy)], Some("web.a"), None),
        (&[("api.a", 2, "gone", Healthy)], None, None),
    ];
    for (replicas, wanted, expected) in table {
        let (mut s, _) = cluster(true);
        for &(id, generation, node, phase) in replicas {
            let app = id.split('.').next().unwrap();
            put(&mut s, id, app, generation, node, phase);
        }
        let wanted = wanted.map(|w| ReplicaId::new(w).unwrap());
        let got = s.replica_target(&api(), wanted.as_ref());
        assert_eq!(
            got.as_ref().map(|t| t.replica.as_str()),
            expected,
            "{replicas:?} {wanted:?}"
        );
        if let Some(t) = got {
            let node = &s.nodes[&t.node];
            assert_eq!(t.to, SocketAddr::new(node.addr, 7775));
            assert_eq!(s.replicas[&t.replica].node, t.node);
        }
    }
}

#[test]
fn a_running_rollout_waits_for_its_healthy_new_replicas_to_be_listed() {
    let ip = |i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
    // (a Tower to ask, the app serves a port, rollout state, replicas, what it waits for)
    type Case<'a> = (bool, bool, RolloutState, &'a [Row], Option<EdgeWait>);
    let table: [Case; 6] = [
        (
            true,
            true,
            RolloutState::Running,
            &[],
            Some(EdgeWait::Listed(vec![])),
        ),
        (
            true,
            true,
            RolloutState::Running,
            &[
                ("api.old", 1, "n1", Healthy),
                ("api.new", 2, "n2", Healthy),
                ("api.slow", 2, "n3", Running),
                ("api.lost", 2, "gone", Healthy),
            ],
            Some(EdgeWait::Listed(vec![SocketAddr::new(ip(2), 41001)])),
        ),
        (
            true,
            false,
            RolloutState::Running,
            &[("api.new", 2, "n2", Healthy)],
            Some(EdgeWait::Nothing),
        ),
        (
            false,
            true,
            RolloutState::Running,
            &[("api.new", 2, "n2", Healthy)],
            Some(EdgeWait::Nothing),
        ),
        (
            true,
            true,
            RolloutState::Complete,
            &[("api.new", 2, "n2", Healthy)],
            None,
        ),
        (
            true,
            true,
            RolloutState::Reverting,
            &[("api.new", 2, "n2", Healthy)],
            None,
        ),
    ];
    for (tower, port, state, replicas, expected) in table {
        let (mut s, _) = cluster(port);
        let previous = s.apps[&api()].spec.clone();
        s.rollouts.insert(
            api(),
            Rollout {
                app: api(),
                from_generation: 1,
                to_generation: 2,
                previous,
                previous_desired: 2,
                state,
                started_ms: 0,
                replaced: 0,
                detail: String::new(),
            },
        );
        for &(id, generation, node, phase) in replicas {
            put(&mut s, id, "api", generation, node, phase);
        }
        let got = s.edge_waits(tower);
        let expected: Vec<(AppName, EdgeWait)> = expected.into_iter().map(|w| (api(), w)).collect();
        assert_eq!(got, expected, "tower {tower}, port {port}, {state:?}");
    }
}

#[test]
fn the_edge_routes_once_every_backend_waited_for_is_listed() {
    let a: SocketAddr = "10.0.0.1:41000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:41000".parse().unwrap();
    let table = [
        (EdgeWait::Nothing, vec![], true),
        (EdgeWait::Listed(vec![]), vec![], true),
        (EdgeWait::Listed(vec![a]), vec![], false),
        (EdgeWait::Listed(vec![a]), vec![b, a], true),
        (EdgeWait::Listed(vec![a, b]), vec![a], false),
    ];
    for (wait, listed, routed) in table {
        assert_eq!(wait.is_listed_in(&listed), routed, "{wait:?} in {listed:?}");
    }
}

#[test]
fn a_node_is_live_within_the_expiry() {
    let (mut s, now) = cluster(true);
    let n1 = NodeId::new("n1").unwrap();
    let expiry = s.timings.node_expiry;
    let table = [
        (Duration::ZERO, true),
        (expiry, true),
        (expiry + Duration::from_millis(1), false),
    ];
    for (silent, live) in table {
        s.nodes.get_mut(&n1).unwrap().last_seen = now;
        assert_eq!(s.is_live(&n1, now + silent), live, "silent for {silent:?}");
    }
    assert!(!s.is_live(&NodeId::new("gone").unwrap(), now));
}

#[test]
fn rollout_progress_of_an_app_without_a_rollout() {
    let (s, _) = cluster(true);
    let p = s.rollout_progress(&api()).unwrap();
    assert_eq!((p.state, p.done, p.total), (RolloutState::None, 0, 2));
    assert_eq!(p.detail.as_str(), "no rollout yet");
    assert!(s.rollout_progress(&AppName::new("nope").unwrap()).is_none());
}
