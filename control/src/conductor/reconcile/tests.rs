//! Table-style tests of the planner: each builds a small cluster and checks the plan.

use std::net::{IpAddr, Ipv4Addr};

use skr8tr_proto::manifest::{App, PortSpec, RestartPolicy, WorkloadKind};
use skr8tr_proto::wire::Exit;

use super::super::model::ReportedReplica;
use super::*;

const EXPIRY: Duration = Duration::from_secs(5);
const GRACE: Duration = Duration::from_secs(3);

struct World {
    now: Instant,
    apps: BTreeMap<AppName, AppRecord>,
    replicas: Vec<ReplicaRecord>,
    nodes: Vec<NodeView>,
    backoff: HashMap<AppName, Instant>,
    runs: HashMap<AppName, u64>,
    seq: u64,
}

impl World {
    fn new() -> Self {
        Self {
            now: Instant::now() + Duration::from_secs(100),
            apps: BTreeMap::new(),
            replicas: Vec::new(),
            nodes: Vec::new(),
            backoff: HashMap::new(),
            runs: HashMap::new(),
            seq: 0,
        }
    }

    fn app(&mut self, name: &str, desired: u32, port: Option<PortSpec>) -> &mut Self {
        let mut spec = App::with_defaults(AppName::new(name).unwrap(), Some("/bin/true".into()));
        spec.port = port;
        self.apps.insert(
            spec.name.clone(),
            AppRecord {
                spec,
                generation: 1,
                desired,
            },
        );
        self
    }

    fn node(&mut self, id: &str, silent_for: Duration) -> &mut Self {
        self.nodes.push(NodeView {
            id: NodeId::new(id).unwrap(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            agent_port: 7775,
            cpu_pct: 0.0,
            ram_free_mb: 8000,
            ram_total_mb: 8000,
            cpu_millis: 2000,
            gpus: 0,
            last_seen: self.now - silent_for,
            replicas: Vec::new(),
        });
        self
    }

    /// A record, reported by its node unless `reported` is false.
    fn replica(
        &mut self,
        id: &str,
        app: &str,
        node: &str,
        phase: ReplicaPhase,
        reported: bool,
    ) -> &mut Self {
        let rec = ReplicaRecord {
            id: ReplicaId::new(id).unwrap(),
            app: AppName::new(app).unwrap(),
            generation: 1,
            node: NodeId::new(node).unwrap(),
            phase,
            pid: Some(100),
            port: None,
            port_spec: self
                .apps
                .get(&AppName::new(app).unwrap())
                .and_then(|a| a.spec.port),
            ram: 0,
            cpu_millis: 0,
            placed_at_ms: 0,
            exit: None,
            gpus: 0,
        };
        if reported {
            self.report(node, id, app, "healthy");
        }
        self.replicas.push(rec);
        self
    }

    fn report(&mut self, node: &str, id: &str, app: &str, state: &str) -> &mut Self {
        let n = self
            .nodes
            .iter_mut()
            .find(|n| n.id.as_str() == node)
            .unwrap();
        n.replicas.push(ReportedReplica {
            id: ReplicaId::new(id).unwrap(),
            app: AppName::new(app).unwrap(),
            generation: 1,
            pid: 100,
            state: state.into(),
            port: 0,
            cpu_pct: 0.0,
            rss_kb: 0,
            limits: None,
            restarts: 0,
            uptime_s: 0,
        });
        self
    }

    fn plan(&mut self) -> Vec<Action> {
        let snap = Snapshot {
            now: self.now,
            now_ms: 1_000_000,
            apps: &self.apps,
            replicas: &self.replicas,
            nodes: &self.nodes,
            node_expiry: EXPIRY,
            launch_grace: GRACE,
            backoff: &self.backoff,
            rollouts: &BTreeMap::new(),
            edge_ready: &HashSet::new(),
            runs: &self.runs,
        };
        plan(&snap, &mut self.seq)
    }
}

/// The replicas the plan forgets as past history.
fn forgotten_history(plan: &[Action]) -> Vec<String> {
    plan.iter()
        .filter_map(|a| match a {
            Action::Forget {
                replica,
                reason: ForgetReason::History,
            } => Some(replica.to_string()),
            _ => None,
        })
        .collect()
}

fn launches(plan: &[Action]) -> Vec<(String, String)> {
    plan.iter()
        .filter_map(|a| match a {
            Action::Launch(r) => Some((r.id.to_string(), r.node.to_string())),
            _ => None,
        })
        .collect()
}

fn stops(plan: &[Action]) -> Vec<(String, StopReason)> {
    plan.iter()
        .filter_map(|a| match a {
            Action::Stop {
                replica, reason, ..
            } => Some((replica.to_string(), *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn three_replicas_spread_over_two_nodes() {
    let mut w = World::new();
    w.app("api", 3, Some(PortSpec::Auto))
        .node("n1", Duration::ZERO)
        .node("n2", Duration::ZERO);
    let plan = w.plan();
    assert_eq!(
        launches(&plan),
        vec![
            ("api.g1.r1".into(), "n1".into()),
            ("api.g1.r2".into(), "n2".into()),
            ("api.g1.r3".into(), "n1".into()),
        ]
    );
}

#[test]
fn a_satisfied_app_plans_nothing() {
    let mut w = World::new();
    w.app("api", 2, None)
        .node("n1", Duration::ZERO)
        .replica("api.g1.r1", "api", "n1", ReplicaPhase::Healthy, true)
        .replica("api.g1.r2", "api", "n1", ReplicaPhase::Running, true);
    assert_eq!(w.plan(), vec![]);
}

#[test]
fn a_fixed_port_app_with_more_replicas_than_nodes_is_pending() {
    let mut w = World::new();
    w.app("web", 3, Some(PortSpec::Fixed(8080)))
        .node("n1", Duration::ZERO)
        .node("n2", Duration::ZERO);
    let plan = w.plan();
    assert_eq!(launches(&plan).len(), 2);
    assert!(plan.contains(&Action::Pending {
        app: AppName::new("web").unwrap(),
        missing: 1
    }));
}

#[test]
fn replicas_of_a_lost_node_are_forgotten_and_placed_elsewhere() {
    let mut w = World::new();
    w.app("api", 2, None)
        .node("n1", Duration::from_secs(6))
        .node("n2", Duration::ZERO)
        .replica("api.g1.r1", "api", "n1", ReplicaPhase::Healthy, true)
        .replica("api.g1.r2", "api", "n2", ReplicaPhase::Healthy, true);
    w.seq = 2;
    let plan = w.plan();
    assert!(plan.contains(&Action::Forget {
        replica: ReplicaId::new("api.g1.r1").unwrap(),
        reason: ForgetReason::NodeLost
    }));
    assert_eq!(launches(&plan), vec![("api.g1.r3".into(), "n2".into())]);
}

#[test]
fn a_returning_node_has_its_stale_replicas_stopped() {
    let mut w = World::new();
    // r1 was forgotten when n1 was lost and replaced by r3 on n2; n1 is back and still runs r1.
    w.app("api", 2, None)
        .node("n1", Duration::ZERO)
        .node("n2", Duration::ZERO)
        .replica("api.g1.r2", "api", "n2", ReplicaPhase::Healthy, true)
        .replica("api.g1.r3", "api", "n2", ReplicaPhase::Healthy, true)
        .report("n1", "api.g1.r1", "api", "healthy");
    let plan = w.plan();
    assert_eq!(stops(&plan), vec![("api.g1.r1".into(), StopReason::Stray)]);
    assert_eq!(launches(&plan), vec![]);
}

#[test]
fn a_replica_its_node_stopped_reporting_is_replaced_after_the_grace() {
    let mut w = World::new();
    w.app("api", 1, None).node("n1", Duration::ZERO).replica(
        "api.g1.r1",
        "api",
        "n1",
        ReplicaPhase::Healthy,
        false,
    );
    w.seq = 1;
    let plan = w.plan();
    assert!(plan.contains(&Action::Forget {
        replica: ReplicaId::new("api.g1.r1").unwrap(),
        reason: ForgetReason::Vanished
    }));
    assert_eq!(launches(&plan), vec![("api.g1.r2".into(), "n1".into())]);
}

#[test]
fn a_just_launched_replica_is_not_presumed_gone() {
    let mut w = World::new();
    w.app("api", 1, None).node("n1", Duration::ZERO).replica(
        "api.g1.r1",
        "api",
        "n1",
        ReplicaPhase::Launching,
        false,
    );
    w.replicas[0].placed_at_ms = 1_000_000 - 500;
    assert_eq!(w.plan(), vec![]);
}

#[test]
fn scale_down_stops_the_least_useful_and_eviction_stops_all() {
    let mut w = World::new();
    w.app("api", 1, None)
        .node("n1", Duration::ZERO)
        .replica("api.g1.r1", "api", "n1", ReplicaPhase::Healthy, true)
        .replica("api.g1.r2", "api", "n1", ReplicaPhase::Running, true);
    assert_eq!(
        stops(&w.plan()),
        vec![("api.g1.r2".into(), StopReason::ScaleDown)]
    );
    w.apps.clear();
    assert_eq!(
        stops(&w.plan()),
        vec![
            ("api.g1.r1".into(), StopReason::Evicted),
            ("api.g1.r2".into(), StopReason::Evicted)
        ]
    );
}

#[test]
fn backoff_delays_replacements() {
    let mut w = World::new();
    w.app("api", 1, None).node("n1", Duration::ZERO);
    let until = w.now + Duration::from_secs(1);
    w.backoff.insert(AppName::new("api").unwrap(), until);
    assert_eq!(w.plan(), vec![]);
}

#[test]
fn a_failed_replica_is_cleaned_up_and_replaced() {
    let mut w = World::new();
    w.app("api", 1, None).node("n1", Duration::ZERO).replica(
        "api.g1.r1",
        "api",
        "n1",
        ReplicaPhase::Running,
        false,
    );
    w.report("n1", "api.g1.r1", "api", "failed");
    w.seq = 1;
    let plan = w.plan();
    assert_eq!(stops(&plan), vec![("api.g1.r1".into(), StopReason::Stray)]);
    assert_eq!(launches(&plan), vec![("api.g1.r2".into(), "n1".into())]);
}

#[test]
fn fate_reads_the_restart_policy_as_the_node_does() {
    use RestartPolicy::{Always, Never, OnFailure};
    for (policy, success, fate_) in [
        (Always, true, Fate::Replace),
        (Always, false, Fate::Replace),
        (OnFailure, true, Fate::Done),
        (OnFailure, false, Fate::Replace),
        (Never, true, Fate::Done),
        (Never, false, Fate::Done),
    ] {
        assert_eq!(
            fate(policy, success),
            fate_,
            "{policy:?}, success {success}"
        );
    }
}

/// An app `name` of `kind` with `policy`, one replica on n1 that its node reports `state`
/// (with `exit`, when DIED told it), and the plan.
fn ended_world(
    kind: WorkloadKind,
    policy: RestartPolicy,
    state: &str,
    exit: Option<Exit>,
) -> (World, Vec<Action>) {
    let mut w = World::new();
    w.app("job", 1, None).node("n1", Duration::ZERO);
    let app = w.apps.get_mut(&AppName::new("job").unwrap()).unwrap();
    app.spec.kind = kind;
    app.spec.restart = policy;
    w.replica("job.g1.r1", "job", "n1", ReplicaPhase::Running, false);
    w.replicas[0].exit = exit;
    w.report("n1", "job.g1.r1", "job", state);
    w.seq = 1;
    let plan = w.plan();
    (w, plan)
}

#[test]
fn an_ended_replica_is_done_or_replaced_as_its_policy_says() {
    use RestartPolicy::{Always, Never, OnFailure};
    use WorkloadKind::{Job, Service};
    let end = vec![Action::End {
        replica: ReplicaId::new("job.g1.r1").unwrap(),
    }];
    let replaced = vec![("job.g1.r2".to_owned(), "n1".to_owned())];
    for (kind, policy, state, exit, done) in [
        (Job, OnFailure, "exited", None, true),
        (Job, OnFailure, "exited", Some(Exit::Code(0)), true),
        // the node restarts a failed on-failure job itself; one it gives up on is replaced
        (Job, OnFailure, "failed", Some(Exit::Code(2)), false),
        (Job, Never, "failed", Some(Exit::Code(2)), true),
        (Job, Never, "exited", None, true),
        (Service, Never, "failed", Some(Exit::Signal(9)), true),
        (Service, Never, "failed", None, true),
        (Service, OnFailure, "exited", Some(Exit::Code(0)), true),
        (Service, Always, "exited", Some(Exit::Code(0)), false),
        (Service, Always, "failed", None, false),
    ] {
        let (_, plan) = ended_world(kind, policy, state, exit);
        let what = format!("{kind:?} {policy:?} {state} {exit:?}");
        if done {
            assert_eq!(plan, end, "{what}: done, nothing placed");
        } else {
            assert_eq!(launches(&plan), replaced, "{what}: replaced");
            assert!(
                plan.contains(&Action::Forget {
                    replica: ReplicaId::new("job.g1.r1").unwrap(),
                    reason: ForgetReason::Failed,
                }),
                "{what}: {plan:?}"
            );
        }
    }
}

#[test]
fn an_ended_record_stays_counted_whatever_its_node_does() {
    // its node forgot it (an agent restart), went silent (lost), or still lists it
    for (silent, reported) in [
        (Duration::ZERO, None),
        (EXPIRY * 2, None),
        (Duration::ZERO, Some("exited")),
    ] {
        let mut w = World::new();
        w.app("job", 1, None)
            .node("n1", silent)
            .node("n2", Duration::ZERO)
            .replica("job.g1.r1", "job", "n1", ReplicaPhase::Ended, false);
        if let Some(state) = reported {
            w.report("n1", "job.g1.r1", "job", state);
        }
        assert_eq!(w.plan(), vec![], "silent {silent:?}, reported {reported:?}");
    }
}

#[test]
fn ended_records_go_with_their_app_and_beyond_the_history_limit() {
    let mut w = World::new();
    w.node("n1", Duration::ZERO)
        .replica("gone.g1.r1", "gone", "n1", ReplicaPhase::Ended, false);
    assert_eq!(
        w.plan(),
        vec![Action::Forget {
            replica: ReplicaId::new("gone.g1.r1").unwrap(),
            reason: ForgetReason::History,
        }]
    );
    // generation 2 is current; generation 1 left MAX_ENDED + 2 ended runs
    let mut w = World::new();
    w.app("job", 1, None).node("n1", Duration::ZERO);
    w.apps
        .get_mut(&AppName::new("job").unwrap())
        .unwrap()
        .generation = 2;
    for n in 0..MAX_ENDED + 2 {
        w.replica(
            &format!("job.g1.r{n}"),
            "job",
            "n1",
            ReplicaPhase::Ended,
            false,
        );
        let r = w.replicas.last_mut().unwrap();
        r.placed_at_ms = n as u64;
    }
    w.replica("job.g2.r99", "job", "n1", ReplicaPhase::Ended, false);
    let r = w.replicas.last_mut().unwrap();
    r.generation = 2;
    r.placed_at_ms = 1;
    let forgotten = forgotten_history(&w.plan());
    assert_eq!(forgotten, vec!["job.g1.r0", "job.g1.r1"]);
}

#[test]
fn replica_ids_fit_the_name_limit() {
    let long = AppName::new("a".repeat(63)).unwrap();
    let id = replica_id(&long, 12, 345);
    assert!(id.as_str().len() <= 63);
    assert!(id.as_str().ends_with(".g12.r345"));
}

/// A `type job` app with `schedule "* * * * *"`.
fn scheduled(w: &mut World, desired: u32) {
    w.app("cron", desired, None);
    if let Some(a) = w.apps.get_mut(&AppName::new("cron").unwrap()) {
        a.spec.kind = WorkloadKind::Job;
        a.spec.restart = RestartPolicy::OnFailure;
        a.spec.schedule = Some(skr8tr_proto::manifest::Schedule {
            cron: "* * * * *".into(),
            timezone: "UTC".into(),
        });
    }
}

fn placed_at(w: &mut World, id: &str, ms: u64) {
    if let Some(r) = w.replicas.iter_mut().find(|r| r.id.as_str() == id) {
        r.placed_at_ms = ms;
    }
}

#[test]
fn a_scheduled_job_runs_nothing_until_its_run_starts() {
    let mut w = World::new();
    w.node("n1", Duration::ZERO);
    scheduled(&mut w, 2);
    assert!(launches(&w.plan()).is_empty());
    w.runs.insert(AppName::new("cron").unwrap(), 1_000_000);
    assert_eq!(launches(&w.plan()).len(), 2);
}

#[test]
fn a_scheduled_run_counts_its_own_replicas_not_the_last_runs() {
    let mut w = World::new();
    w.node("n1", Duration::ZERO);
    scheduled(&mut w, 1);
    // Last run's replica ended at 500 000; this run started at 900 000.
    w.replica("cron.g1.r1", "cron", "n1", ReplicaPhase::Ended, false);
    placed_at(&mut w, "cron.g1.r1", 500_000);
    w.runs.insert(AppName::new("cron").unwrap(), 900_000);
    assert_eq!(launches(&w.plan()).len(), 1);
    // Once this run's replica is placed (it ended too), nothing more.
    w.replica("cron.g1.r2", "cron", "n1", ReplicaPhase::Ended, false);
    placed_at(&mut w, "cron.g1.r2", 950_000);
    assert!(launches(&w.plan()).is_empty());
    // Nor is anything scaled down or superseded between runs.
    w.runs.clear();
    let plan = w.plan();
    assert!(
        launches(&plan).is_empty() && stops(&plan).is_empty(),
        "{plan:?}"
    );
}

#[test]
fn a_failed_scheduled_replica_is_retried_within_its_run() {
    let mut w = World::new();
    w.node("n1", Duration::ZERO);
    scheduled(&mut w, 1);
    w.replica("cron.g1.r1", "cron", "n1", ReplicaPhase::Running, false);
    placed_at(&mut w, "cron.g1.r1", 950_000);
    w.report("n1", "cron.g1.r1", "cron", "failed");
    w.runs.insert(AppName::new("cron").unwrap(), 900_000);
    let plan = w.plan();
    assert!(plan.iter().any(|a| matches!(
        a,
        Action::Forget {
            reason: ForgetReason::Failed,
            ..
        }
    )));
    assert_eq!(launches(&plan).len(), 1, "{plan:?}");
}

#[test]
fn a_scheduled_job_keeps_its_newest_runs() {
    let mut w = World::new();
    w.node("n1", Duration::ZERO);
    scheduled(&mut w, 1);
    for i in 0..(MAX_ENDED as u64 + 3) {
        let id = format!("cron.g1.r{i}");
        w.replica(&id, "cron", "n1", ReplicaPhase::Ended, false);
        placed_at(&mut w, &id, 1_000 * (i + 1));
    }
    let forgotten = forgotten_history(&w.plan());
    assert_eq!(forgotten, ["cron.g1.r0", "cron.g1.r1", "cron.g1.r2"]);
}
