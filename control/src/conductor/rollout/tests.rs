//! The rollout rule, step by step, for three replicas and for one.

use std::time::Duration;

use skr8tr_proto::manifest::{App, Health, HealthCheck, PortSpec};
use skr8tr_proto::name::NodeId;

use super::*;

fn app(replicas: u32, health: bool) -> AppRecord {
    let mut spec = App::with_defaults(AppName::new("api").unwrap(), Some("/bin/api".into()));
    spec.port = Some(PortSpec::Auto);
    spec.replicas = replicas;
    spec.rollout.settle = Duration::from_millis(500);
    spec.rollout.healthy_deadline = Duration::from_secs(10);
    if health {
        spec.health = Some(Health {
            check: HealthCheck::Http {
                path: "/healthz".into(),
                status: 200,
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            retries: 3,
        });
    }
    AppRecord {
        spec,
        generation: 2,
        desired: replicas,
    }
}

fn rec(n: u32, generation: u64, phase: ReplicaPhase, placed_at_ms: u64) -> ReplicaRecord {
    ReplicaRecord {
        id: ReplicaId::new(format!("api.g{generation}.r{n}")).unwrap(),
        app: AppName::new("api").unwrap(),
        generation,
        node: NodeId::new("n1").unwrap(),
        phase,
        pid: Some(n),
        port: Some(40000 + u16::try_from(n).unwrap()),
        port_spec: Some(PortSpec::Auto),
        ram: 0,
        cpu_millis: 0,
        placed_at_ms,
        exit: None,
        gpus: 0,
    }
}

fn rollout(record: &AppRecord) -> Rollout {
    Rollout {
        app: record.spec.name.clone(),
        from_generation: 1,
        to_generation: 2,
        previous: record.spec.clone(),
        previous_desired: record.desired,
        state: RolloutState::Running,
        started_ms: 0,
        replaced: 0,
        detail: String::new(),
    }
}

fn step(record: &AppRecord, replicas: &[ReplicaRecord], edge_ready: bool, now_ms: u64) -> Step {
    let view = AppView {
        record,
        replicas: replicas.iter().collect(),
        edge_ready,
        now_ms,
    };
    plan_app(&rollout(record), &view)
}

#[test]
fn three_replicas_one_at_a_time_surge_first() {
    let a = app(3, true);
    let old = |n| rec(n, 1, ReplicaPhase::Healthy, 0);
    // start: surge one new
    assert_eq!(
        step(&a, &[old(1), old(2), old(3)], true, 1000),
        Step::Launch(1)
    );
    // new one launching: wait for it
    let r = [
        old(1),
        old(2),
        old(3),
        rec(4, 2, ReplicaPhase::Running, 1000),
    ];
    assert!(matches!(step(&a, &r, true, 1100), Step::Wait(_)));
    // healthy but the edge does not route to it yet
    let r = [
        old(1),
        old(2),
        old(3),
        rec(4, 2, ReplicaPhase::Healthy, 1000),
    ];
    assert!(matches!(step(&a, &r, false, 1200), Step::Wait(w) if w.contains("ingress")));
    // edge ready: stop the oldest old one
    assert_eq!(
        step(&a, &r, true, 1300),
        Step::StopOld(ReplicaId::new("api.g1.r1").unwrap())
    );
    // while it drains, the next new one is already placed (surge continues)…
    let r = [
        rec(1, 1, ReplicaPhase::Stopping, 0),
        old(2),
        old(3),
        rec(4, 2, ReplicaPhase::Healthy, 1000),
    ];
    assert_eq!(step(&a, &r, true, 1400), Step::Launch(1));
    // …but no second old one is stopped before the first has gone
    let r = [
        rec(1, 1, ReplicaPhase::Stopping, 0),
        old(2),
        old(3),
        rec(4, 2, ReplicaPhase::Healthy, 1000),
        rec(5, 2, ReplicaPhase::Healthy, 1400),
    ];
    assert!(matches!(step(&a, &r, true, 1500), Step::Wait(w) if w.contains("draining")));
    // all old gone and three new healthy: complete
    let r = [
        rec(4, 2, ReplicaPhase::Healthy, 1000),
        rec(5, 2, ReplicaPhase::Healthy, 1400),
        rec(6, 2, ReplicaPhase::Healthy, 1800),
    ];
    assert_eq!(step(&a, &r, true, 3000), Step::Complete);
}

#[test]
fn a_single_replica_overlaps_old_and_new() {
    let a = app(1, true);
    let old = rec(1, 1, ReplicaPhase::Healthy, 0);
    assert_eq!(
        step(&a, std::slice::from_ref(&old), true, 10),
        Step::Launch(1)
    );
    let r = [old.clone(), rec(2, 2, ReplicaPhase::Running, 10)];
    assert!(
        matches!(step(&a, &r, true, 20), Step::Wait(_)),
        "the old one stays until the new is healthy"
    );
    let r = [old, rec(2, 2, ReplicaPhase::Healthy, 10)];
    assert_eq!(
        step(&a, &r, true, 30),
        Step::StopOld(ReplicaId::new("api.g1.r1").unwrap())
    );
}

#[test]
fn a_new_replica_that_never_becomes_healthy_aborts() {
    let a = app(2, true);
    let r = [
        rec(1, 1, ReplicaPhase::Healthy, 0),
        rec(2, 1, ReplicaPhase::Healthy, 0),
        rec(3, 2, ReplicaPhase::Running, 1000),
    ];
    assert!(matches!(step(&a, &r, true, 5000), Step::Wait(_)));
    assert!(matches!(step(&a, &r, true, 11_001), Step::Abort(why) if why.contains("api.g2.r3")));
}

#[test]
fn without_a_health_check_new_replicas_settle_first() {
    let a = app(1, false);
    let r = [
        rec(1, 1, ReplicaPhase::Healthy, 0),
        rec(2, 2, ReplicaPhase::Healthy, 1000),
    ];
    assert!(
        matches!(step(&a, &r, true, 1200), Step::Wait(_)),
        "settle is 500 ms"
    );
    assert_eq!(
        step(&a, &r, true, 1600),
        Step::StopOld(ReplicaId::new("api.g1.r1").unwrap())
    );
}
