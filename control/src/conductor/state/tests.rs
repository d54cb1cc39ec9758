//! State transitions: submit idempotency and generations, heartbeats updating records,
//! launch failures backing off, and the adoption wait after a restart.

use std::net::Ipv4Addr;

use skr8tr_proto::manifest::{PortSpec, RestartPolicy, WorkloadKind};
use skr8tr_proto::wire::{
    CpuPercent, Exit, HeartbeatDetail, LimitMechanism, ReplicaReport, ReplicaState, RunTimes,
};

use super::*;

fn app(name: &str, replicas: u32) -> App {
    let mut a = App::with_defaults(AppName::new(name).unwrap(), Some("/bin/sleep".into()));
    a.args = vec!["60".into()];
    a.replicas = replicas;
    a.port = Some(PortSpec::Auto);
    a
}

fn heartbeat(node: &str, seq: u64, replicas: Vec<ReplicaReport>) -> Heartbeat {
    Heartbeat {
        node: NodeId::new(node).unwrap(),
        cpu: CpuPercent::ZERO,
        ram_free_mb: 4000,
        detail: Some(HeartbeatDetail {
            advertise: IpAddr::V4(Ipv4Addr::LOCALHOST),
            agent_port: 17775,
            ram_total_mb: 8000,
            cpu_millicores: 2000,
            seq,
            replicas,
            gpus: 0,
        }),
    }
}

fn report(id: &ReplicaId, app: &str, state: ReplicaState, pid: u32) -> ReplicaReport {
    ReplicaReport {
        replica: id.clone(),
        app: AppName::new(app).unwrap(),
        generation: 1,
        pid,
        state,
        port: 41000,
        cpu: CpuPercent::ZERO,
        rss_kb: 1000,
        limits: Some(LimitMechanism::CgroupV1),
        restarts: 0,
        uptime_s: 0,
    }
}

fn fresh() -> (State, Instant) {
    let now = Instant::now();
    (State::new(Loaded::default(), Timings::default(), now), now)
}

#[test]
fn submit_is_idempotent_and_a_changed_spec_is_a_new_generation() {
    let (mut s, _) = fresh();
    let kinds = |changes: Vec<Change>| -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c {
                Change::PutApp(_) => "app",
                Change::PutRollout(_) => "rollout",
                Change::PutGeneration(_) => "generation",
                _ => "other",
            })
            .collect()
    };
    assert_eq!(
        kinds(s.submit(vec![app("api", 2)], 0).unwrap()),
        vec!["app", "generation"]
    );
    assert!(
        s.submit(vec![app("api", 2)], 0).unwrap().is_empty(),
        "unchanged: nothing to do"
    );
    let mut changed = app("api", 2);
    changed.args = vec!["120".into()];
    assert_eq!(
        kinds(s.submit(vec![changed], 0).unwrap()),
        vec!["rollout", "app", "generation"],
        "the app, its rollout, the generation kept"
    );
    let rec = &s.apps[&AppName::new("api").unwrap()];
    assert_eq!((rec.generation, rec.desired), (2, 2));
    let rollout = &s.rollouts[&AppName::new("api").unwrap()];
    assert_eq!((rollout.from_generation, rollout.to_generation), (1, 2));
    assert_eq!(rollout.state, RolloutState::Running);
    // A different spec while that rollout runs is refused.
    let mut third = app("api", 2);
    third.args = vec!["180".into()];
    assert_eq!(
        s.submit(vec![third], 0).err(),
        Some(AppName::new("api").unwrap())
    );
}

#[test]
fn reconcile_places_on_live_nodes_and_heartbeats_confirm() {
    let (mut s, now) = fresh();
    s.submit(vec![app("api", 1)], 0).unwrap();
    let (_, effects) = s.reconcile(now, 1000);
    assert!(effects.is_empty(), "no node yet");
    assert_eq!(s.pending.get(&AppName::new("api").unwrap()), Some(&1));
    s.heartbeat(
        heartbeat("n1", 1, vec![]),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    let (changes, effects) = s.reconcile(now, 1000);
    assert_eq!(effects.len(), 1);
    let Effect::Launch { to, spec } = &effects[0] else {
        panic!("{effects:?}")
    };
    assert_eq!(to.port(), 17775);
    assert!(changes.iter().any(|c| matches!(c, Change::Seq(1))));
    let id = spec.replica.clone();
    s.launched(&id, 4242, 41000);
    assert_eq!(s.replicas[&id].phase, ReplicaPhase::Running);
    let changes = s.heartbeat(
        heartbeat(
            "n1",
            2,
            vec![report(&id, "api", ReplicaState::Healthy, 4242)],
        ),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(s.replicas[&id].phase, ReplicaPhase::Healthy);
    assert_eq!(
        s.status(None)[0].limits,
        Some(LimitMechanism::CgroupV1),
        "status says what enforces the limits, as the node reported"
    );
    assert_eq!(s.list().len(), 1);
    assert_eq!(s.app_entries()[0].healthy, 1);
    // an older heartbeat arriving late changes nothing
    let stale = s.heartbeat(
        heartbeat("n1", 1, vec![]),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    assert!(stale.is_empty());
    assert_eq!(s.nodes[&NodeId::new("n1").unwrap()].replicas.len(), 1);
}

#[test]
fn a_failed_launch_removes_the_record_and_backs_off() {
    let (mut s, now) = fresh();
    s.submit(vec![app("api", 1)], 0).unwrap();
    s.heartbeat(
        heartbeat("n1", 1, vec![]),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    let (_, effects) = s.reconcile(now, 1000);
    let Effect::Launch { spec, .. } = &effects[0] else {
        panic!()
    };
    s.launch_failed(&spec.replica, "no such file: /bin/nope", now);
    assert!(s.replicas.is_empty());
    let (_, effects) = s.reconcile(now, 1000);
    assert!(effects.is_empty(), "backing off");
    let (_, effects) = s.reconcile(now + Duration::from_secs(1), 2000);
    assert_eq!(effects.len(), 1, "retried after the back-off");
}

#[test]
fn after_a_restart_nothing_is_replaced_before_its_node_reports() {
    let now = Instant::now();
    let rec = ReplicaRecord {
        id: ReplicaId::new("api.g1.r1").unwrap(),
        app: AppName::new("api").unwrap(),
        generation: 1,
        node: NodeId::new("n1").unwrap(),
        phase: ReplicaPhase::Healthy,
        pid: Some(4242),
        port: Some(41000),
        port_spec: Some(PortSpec::Auto),
        ram: 0,
        cpu_millis: 0,
        placed_at_ms: 0,
        exit: None,
        gpus: 0,
    };
    let loaded = Loaded {
        apps: vec![AppRecord {
            spec: app("api", 1),
            generation: 1,
            desired: 1,
        }],
        replicas: vec![rec.clone()],
        rollouts: vec![],
        seq: 1,
    };
    let mut s = State::new(loaded, Timings::default(), now);
    assert!(!s.may_reconcile(now));
    let (changes, effects) = s.reconcile(now, 5000);
    assert!(changes.is_empty() && effects.is_empty());
    s.heartbeat(
        heartbeat(
            "n1",
            7,
            vec![report(&rec.id, "api", ReplicaState::Healthy, 4242)],
        ),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    assert!(s.may_reconcile(now));
    let (changes, effects) = s.reconcile(now, 5000);
    assert!(
        effects.is_empty(),
        "adopted, nothing launched twice: {effects:?}"
    );
    assert!(changes.is_empty());
}

#[test]
fn evict_and_scale() {
    let (mut s, _) = fresh();
    let name = AppName::new("api").unwrap();
    assert!(s.evict(&name).is_none());
    assert!(s.scale(&name, 3).is_none());
    s.submit(vec![app("api", 1)], 0).unwrap();
    assert!(s.scale(&name, 3).is_some());
    assert_eq!(s.apps[&name].desired, 3);
    assert!(s.evict(&name).is_some());
    assert!(s.apps.is_empty());
}

/// A job `once` placed on n1 and launched; its replica id.
fn launched_job(s: &mut State, now: Instant, policy: RestartPolicy) -> ReplicaId {
    let mut job = app("once", 1);
    job.kind = WorkloadKind::Job;
    job.restart = policy;
    job.port = None;
    s.submit(vec![job], 0).unwrap();
    s.heartbeat(
        heartbeat("n1", 1, vec![]),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    let (_, effects) = s.reconcile(now, 1000);
    let Some(Effect::Launch { spec, .. }) = effects.first() else {
        panic!("{effects:?}")
    };
    let id = spec.replica.clone();
    s.launched(&id, 4242, 0);
    id
}

fn died(id: &ReplicaId, exit: Exit, restarting: bool) -> Died {
    Died {
        node: NodeId::new("n1").unwrap(),
        replica: id.clone(),
        app: AppName::new("once").unwrap(),
        exit,
        restarting,
    }
}

#[test]
fn died_keeps_the_exit_and_ends_what_is_done() {
    for (policy, exit, restarting, ended) in [
        (RestartPolicy::OnFailure, Exit::Code(0), false, true),
        (RestartPolicy::OnFailure, Exit::Code(1), true, false),
        (RestartPolicy::Never, Exit::Code(3), false, true),
        (RestartPolicy::Never, Exit::Signal(9), false, true),
        (RestartPolicy::Always, Exit::Code(0), true, false),
        (RestartPolicy::Always, Exit::Code(0), false, false),
    ] {
        let (mut s, now) = fresh();
        let id = launched_job(&mut s, now, policy);
        let changes = s.died(&died(&id, exit, restarting));
        assert_eq!(changes.len(), 1, "persisted");
        let rec = &s.replicas[&id];
        assert_eq!(rec.exit, Some(exit));
        let what = format!("{policy:?} {exit} restarting {restarting}");
        assert_eq!(rec.phase == ReplicaPhase::Ended, ended, "{what}");
        if ended {
            // the node forgets it (an agent restart): nothing is placed again
            s.heartbeat(
                heartbeat("n1", 2, vec![]),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                now,
            );
            let (_, effects) = s.reconcile(now, 100_000);
            assert!(effects.is_empty(), "{what}: {effects:?}");
            let status = s.status(None);
            let want = if exit.success() {
                ReplicaState::Exited
            } else {
                ReplicaState::Failed
            };
            assert_eq!(status[0].state, want, "{what}");
        }
    }
    // DIED from another node than the record's changes nothing
    let (mut s, now) = fresh();
    let id = launched_job(&mut s, now, RestartPolicy::Never);
    let mut elsewhere = died(&id, Exit::Code(0), false);
    elsewhere.node = NodeId::new("n2").unwrap();
    assert!(s.died(&elsewhere).is_empty());
}

#[test]
fn an_ended_app_runs_again_only_when_resubmitted() {
    let (mut s, now) = fresh();
    let id = launched_job(&mut s, now, RestartPolicy::OnFailure);
    let job = s.apps[&AppName::new("once").unwrap()].spec.clone();
    // resubmitted while it runs: nothing (a retried SUBMIT)
    assert!(s.submit(vec![job.clone()], 0).unwrap().is_empty());
    s.died(&died(&id, Exit::Code(0), false));
    let (_, effects) = s.reconcile(now, 100_000);
    assert!(effects.is_empty(), "{effects:?}");
    let changes = s.submit(vec![job], 0).unwrap();
    assert_eq!(
        changes.len(),
        2,
        "the app at a new generation, and that generation kept"
    );
    assert_eq!(generations_kept(&changes), vec![2]);
    assert_eq!(s.apps[&AppName::new("once").unwrap()].generation, 2);
    let (_, effects) = s.reconcile(now, 100_000);
    assert_eq!(effects.len(), 1, "{effects:?}");
    assert_eq!(
        s.replicas[&id].phase,
        ReplicaPhase::Ended,
        "the first run stays as history"
    );
}

fn new_replica_healthy(s: &mut State, now: Instant, seq: &mut u64) {
    // Confirms every launching or running replica and reports them all healthy.
    let ids: Vec<(ReplicaId, String)> = s
        .replicas
        .values()
        .filter(|r| r.phase != ReplicaPhase::Stopping)
        .map(|r| (r.id.clone(), r.app.to_string()))
        .collect();
    for (id, _) in &ids {
        s.launched(id, 100, 41000);
    }
    *seq += 1;
    let reports = ids
        .iter()
        .map(|(id, app)| report(id, app, ReplicaState::Healthy, 100))
        .collect();
    s.heartbeat(
        heartbeat("n1", *seq, reports),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
}

fn generations_kept(changes: &[Change]) -> Vec<u64> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::PutGeneration(g) => Some(g.generation),
            _ => None,
        })
        .collect()
}

#[test]
fn a_canary_waits_beside_the_old_replicas_until_promoted() {
    let (mut s, now) = fresh();
    let name = AppName::new("api").unwrap();
    let mut seq = 0;
    s.heartbeat(
        heartbeat("n1", 0, vec![]),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    s.submit(vec![app("api", 3)], 0).unwrap();
    s.reconcile(now, 1000);
    new_replica_healthy(&mut s, now, &mut seq);
    let mut v2 = app("api", 3);
    v2.args = vec!["120".into()];
    v2.rollout.canary = 1;
    let changes = s.submit(vec![v2], 2000).unwrap();
    assert_eq!(generations_kept(&changes), vec![2]);
    assert_eq!(s.rollouts[&name].state, RolloutState::Canary);
    // It places one canary, and no more however often it runs; no old replica stops.
    for round in 0..4 {
        let (_, effects) = s.reconcile(now, 3000 + round);
        assert!(
            effects.iter().all(|e| matches!(e, Effect::Launch { .. })),
            "{effects:?}"
        );
        new_replica_healthy(&mut s, now, &mut seq);
    }
    s.reconcile(now, 100_000);
    let generation = |g: u64| s.replicas.values().filter(|r| r.generation == g).count();
    assert_eq!((generation(1), generation(2)), (3, 1));
    let p = s.rollout_progress(&name).unwrap();
    assert_eq!((p.state, p.done, p.total), (RolloutState::Canary, 1, 1));
    assert!(
        p.detail.as_str().contains("skr8tr promote api"),
        "{}",
        p.detail.as_str()
    );
    assert_eq!(
        s.promote(&AppName::new("nope").unwrap()).err(),
        Some(RolloutCommandError::UnknownApp)
    );
    s.promote(&name).unwrap();
    assert_eq!(s.rollouts[&name].state, RolloutState::Running);
    assert_eq!(s.promote(&name).err(), Some(RolloutCommandError::NoCanary));
    let events: Vec<_> = s.take_events().into_iter().map(|e| e.detail).collect();
    assert!(
        events
            .iter()
            .any(|d| d == "canary promoted by the operator"),
        "{events:?}"
    );
}

#[test]
fn rollback_aborts_a_running_rollout_or_rolls_to_a_stored_spec() {
    let (mut s, _) = fresh();
    let name = AppName::new("api").unwrap();
    s.submit(vec![app("api", 2)], 0).unwrap();
    let mut v2 = app("api", 2);
    v2.args = vec!["120".into()];
    v2.rollout.canary = 1;
    v2.rollout.auto_revert = false;
    s.submit(vec![v2.clone()], 0).unwrap();
    // Aborted while it runs: reverted, even though the manifest turned auto-revert off.
    let (_, from) = s.abort_rollout(&name).unwrap();
    assert_eq!(from, 1);
    assert_eq!(s.rollouts[&name].state, RolloutState::Reverting);
    assert_eq!(s.apps[&name].generation, 1);
    assert_eq!(s.apps[&name].spec, app("api", 2));
    assert!(s.abort_rollout(&name).is_none(), "nothing runs any more");
    // Rolling to a stored spec is a new generation through a normal rollout, never a canary.
    s.rollouts.get_mut(&name).unwrap().state = RolloutState::Reverted;
    let changes = s.rollback_to(&name, v2.clone(), 2, 5000).unwrap();
    assert_eq!(generations_kept(&changes), vec![2]);
    let r = &s.rollouts[&name];
    assert_eq!(
        (r.state, r.from_generation, r.to_generation),
        (RolloutState::Running, 1, 2)
    );
    assert_eq!(
        s.rollback_to(&name, v2, 2, 6000).err(),
        Some(RolloutCommandError::AlreadyThere(2))
    );
    assert_eq!(
        s.rollback_to(&AppName::new("nope").unwrap(), app("nope", 1), 1, 0)
            .err(),
        Some(RolloutCommandError::UnknownApp)
    );
}

#[test]
fn generations_past_the_kept_ones_are_forgotten_and_evict_forgets_them_all() {
    let (mut s, _) = fresh();
    let name = AppName::new("api").unwrap();
    let mut last = Vec::new();
    for g in 1..=(GENERATIONS_KEPT + 2) {
        let mut a = app("api", 1);
        a.args = vec![g.to_string()];
        s.rollouts.remove(&name);
        last = s.submit(vec![a], g).unwrap();
    }
    let forgotten: Vec<u64> = last
        .iter()
        .filter_map(|c| match c {
            Change::DeleteGeneration(_, g) => Some(*g),
            _ => None,
        })
        .collect();
    assert_eq!(forgotten, vec![2], "generation 22 forgets 2: 20 are kept");
    let changes = s.evict(&name).unwrap();
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::DeleteGenerations(a) if *a == name))
    );
}

#[test]
fn a_scheduled_job_launches_at_its_time_and_changes_without_a_rollout() {
    // 2026-12-08T00:00:00Z.
    const MIDNIGHT: u64 = 1_796_688_000_000;
    let (mut s, now) = fresh();
    let mut job = app("tick", 1);
    job.kind = WorkloadKind::Job;
    job.port = None;
    job.restart = RestartPolicy::Never;
    job.schedule = Some(skr8tr_proto::manifest::Schedule {
        cron: "*/10 * * * * *".into(),
        timezone: "UTC".into(),
    });
    s.submit(vec![job.clone()], MIDNIGHT).unwrap();
    s.heartbeat(
        heartbeat("n1", 1, vec![]),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        now,
    );
    let (_, effects) = s.reconcile(now, MIDNIGHT + 1_000);
    assert!(effects.is_empty(), "not its time: {effects:?}");
    let (_, effects) = s.reconcile(now, MIDNIGHT + 10_050);
    let Some(Effect::Launch { spec, .. }) = effects.first() else {
        panic!("its time: {effects:?}")
    };
    let id = spec.replica.clone();
    s.launched(&id, 4242, 0);
    let kinds: Vec<EventKind> = s.take_events().iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::RunStarted), "{kinds:?}");
    // APPS tells the next run and the last.
    let entry = &s.app_entries()[0];
    assert_eq!(
        entry.runs,
        Some(RunTimes {
            next_ms: Some(MIDNIGHT + 20_000),
            last_ms: Some(MIDNIGHT + 10_050),
        })
    );
    // A changed schedule is a new generation and no rollout; it runs from its next time.
    let mut later = job.clone();
    later.schedule = Some(skr8tr_proto::manifest::Schedule {
        cron: "0 3 * * *".into(),
        timezone: "Europe/Paris".into(),
    });
    s.submit(vec![later.clone()], MIDNIGHT + 11_000).unwrap();
    assert!(s.rollouts.is_empty());
    assert_eq!(s.apps[&AppName::new("tick").unwrap()].generation, 2);
    // The same spec again changes nothing, even once every run ended.
    s.died(&Died {
        node: NodeId::new("n1").unwrap(),
        replica: id,
        app: AppName::new("tick").unwrap(),
        exit: Exit::Code(0),
        restarting: false,
    });
    assert!(s.submit(vec![later], MIDNIGHT + 12_000).unwrap().is_empty());
}
