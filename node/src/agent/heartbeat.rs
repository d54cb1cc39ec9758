//! HEARTBEAT to the Conductor: at start and every interval, the node's CPU and memory, where
//! its agent and replicas can be reached, and every replica the engine knows.
//!
//! ```text
//! tick ─▶ engine.status() + engine.node_stats() ─▶ metrics (same figures)
//!                                              └─▶ build_heartbeat (≤ MAX_SIGNED_MESSAGE)
//!                                                   ─▶ mesh-signed, from the node's socket
//! ```
//! A heartbeat must fit one signed datagram: when it does not, the replicas that ended longest
//! ago are left out first, then (never expected: ~650 running replicas) the last running ones,
//! with a warning. Heartbeats are fire-and-forget; the next one repairs a lost one.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use skr8tr_proto::name::{NodeId, ReplicaId};
use skr8tr_proto::wire::{
    CpuPercent, Exit, Heartbeat, HeartbeatDetail, LimitMechanism, MAX_SIGNED_MESSAGE, MeshEvent,
    Message, ReplicaReport, ReplicaState,
};

use super::Agent;
use crate::engine::ReplicaStatus;
use crate::limits::LimitEnforcement;
use crate::stats::NodeStats;
use crate::supervise::{Phase, Termination};

/// The longest a replica entry can be: two 63-character names, a u64, a u32, a state word, a
/// port, a CPU figure, a u64 and a limit mechanism, with their separators.
const MAX_ENTRY_LEN: usize = 63 + 63 + 20 + 10 + 9 + 5 + 12 + 20 + 9 + 9;

/// Sends a heartbeat now and every `every`, forever (aborted on shutdown).
pub(super) async fn run(agent: Rc<Agent>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let cpu_millicores = std::thread::available_parallelism().map_or(1000, |n| {
        u32::try_from(n.get()).unwrap_or(u32::MAX / 1000) * 1000
    });
    let mut seq: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = agent.heartbeat_now.notified() => {
                // Coalesce a burst of events into one heartbeat.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        seq += 1;
        let replicas = agent.engine.status();
        let stats = agent.engine.node_stats();
        // Forget the end times of replicas the engine no longer keeps.
        let known: HashSet<&ReplicaId> = replicas.iter().map(|r| &r.replica).collect();
        agent
            .ended_at
            .borrow_mut()
            .retain(|id, _| known.contains(id));
        agent.metrics.observe(&stats, &replicas);
        let facts = NodeFacts {
            node: agent.node.clone(),
            stats,
            advertise: agent.advertise,
            agent_port: agent.agent_port,
            cpu_millicores,
            gpus: agent.gpus,
            seq,
        };
        let text = build_heartbeat(
            &facts,
            &replicas,
            &agent.ended_at.borrow(),
            MAX_SIGNED_MESSAGE,
        );
        agent.tell_conductor(&text, "heartbeat").await;
    }
}

/// What a heartbeat says about the node itself.
#[derive(Debug, Clone)]
pub(crate) struct NodeFacts {
    pub node: NodeId,
    pub stats: NodeStats,
    pub advertise: IpAddr,
    pub agent_port: u16,
    pub cpu_millicores: u32,
    pub gpus: u32,
    pub seq: u64,
}

/// The heartbeat text for `replicas`, at most `max` bytes: ended replicas are dropped oldest
/// first (by `ended_at`; unknown counts as oldest), then running ones from the end.
pub(crate) fn build_heartbeat(
    facts: &NodeFacts,
    replicas: &[ReplicaStatus],
    ended_at: &HashMap<ReplicaId, Instant>,
    max: usize,
) -> String {
    let mib = 1024 * 1024;
    let mut heartbeat = Heartbeat {
        node: facts.node.clone(),
        cpu: CpuPercent::from_f64(f64::from(facts.stats.cpu_percent)),
        ram_free_mb: facts.stats.mem_available_bytes / mib,
        detail: Some(HeartbeatDetail {
            advertise: facts.advertise,
            agent_port: facts.agent_port,
            ram_total_mb: facts.stats.mem_total_bytes / mib,
            cpu_millicores: facts.cpu_millicores,
            seq: facts.seq,
            replicas: replicas.iter().map(report_of).collect(),
            gpus: facts.gpus,
        }),
    };
    // The order in which entries are left out when the datagram is too large.
    let mut ended: Vec<(Option<Instant>, ReplicaId)> = replicas
        .iter()
        .filter(|r| r.phase.is_terminal())
        .map(|r| (ended_at.get(&r.replica).copied(), r.replica.clone()))
        .collect();
    ended.sort();
    let mut victims: Vec<ReplicaId> = ended.into_iter().map(|(_, id)| id).collect();
    victims.extend(
        replicas
            .iter()
            .rev()
            .filter(|r| !r.phase.is_terminal())
            .map(|r| r.replica.clone()),
    );
    let mut victims = victims.into_iter();
    let mut dropped_running = 0_usize;
    loop {
        let text = MeshEvent::Heartbeat(heartbeat.clone()).encode();
        if text.len() <= max {
            if dropped_running > 0 {
                tracing::warn!(
                    left_out = dropped_running,
                    "too many replicas for one heartbeat; some running ones were left out"
                );
            }
            return text;
        }
        let Some(detail) = heartbeat.detail.as_mut() else {
            return text;
        };
        // Leave out at least enough entries for the excess, never more than needed per entry.
        let count = (text.len() - max).div_ceil(MAX_ENTRY_LEN).max(1);
        let gone: Vec<ReplicaId> = victims.by_ref().take(count).collect();
        if gone.is_empty() {
            return text;
        }
        detail.replicas.retain(|r| {
            let out = gone.contains(&r.replica);
            if out && !matches!(r.state, ReplicaState::Exited | ReplicaState::Failed) {
                dropped_running += 1;
            }
            !out
        });
    }
}

fn report_of(r: &ReplicaStatus) -> ReplicaReport {
    ReplicaReport {
        replica: r.replica.clone(),
        app: r.app.clone(),
        generation: r.generation,
        pid: r.pid.unwrap_or(0),
        state: state_of(r.phase),
        port: r.port.unwrap_or(0),
        cpu: CpuPercent::from_f64(f64::from(r.cpu_percent)),
        rss_kb: r.rss_bytes / 1024,
        // Said only for an app that asks for limits (then `none` means: not enforceable here).
        limits: r.limited.then(|| mechanism_of(r.limits.method())),
        restarts: r.restarts,
        uptime_s: r.uptime.map_or(0, |u| u.as_secs()),
    }
}

/// The wire's word for a limit mechanism.
#[must_use]
pub(crate) fn mechanism_of(enforcement: LimitEnforcement) -> LimitMechanism {
    match enforcement {
        LimitEnforcement::CgroupV2 => LimitMechanism::CgroupV2,
        LimitEnforcement::CgroupV1 => LimitMechanism::CgroupV1,
        LimitEnforcement::Rlimit => LimitMechanism::Rlimit,
        LimitEnforcement::None => LimitMechanism::None,
    }
}

/// The wire's word for an engine phase (a replica backing off before a restart is `pending`).
#[must_use]
pub(crate) fn state_of(phase: Phase) -> ReplicaState {
    match phase {
        Phase::Starting => ReplicaState::Starting,
        Phase::Healthy => ReplicaState::Healthy,
        Phase::Unhealthy => ReplicaState::Unhealthy,
        Phase::Stopping => ReplicaState::Stopping,
        Phase::BackingOff => ReplicaState::Pending,
        Phase::Exited => ReplicaState::Exited,
        Phase::Failed => ReplicaState::Failed,
    }
}

/// How a process ended, as the wire writes it. The wire has no word for "unknown" (an adopted
/// process, not our child) or "never started" (a failed restart), so they become exit codes
/// 255 and 127 (the shell's "command not found").
#[must_use]
pub(crate) fn exit_of(termination: Termination) -> Exit {
    let code = |c: i32| u8::try_from(c).unwrap_or(u8::MAX);
    match termination {
        Termination::Code(c) => Exit::Code(code(c)),
        Termination::Signal(s) => Exit::Signal(code(s)),
        Termination::OomKilled => Exit::OomKilled,
        Termination::Unknown => Exit::Code(255),
        Termination::LaunchFailed => Exit::Code(127),
    }
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::name::AppName;

    use super::*;
    use crate::limits::AppliedLimits;

    fn facts() -> NodeFacts {
        NodeFacts {
            node: NodeId::new("node-a").unwrap(),
            stats: NodeStats {
                cpu_percent: 12.5,
                mem_total_bytes: 8192 * 1024 * 1024,
                mem_available_bytes: 2048 * 1024 * 1024,
            },
            advertise: "10.0.0.5".parse().unwrap(),
            agent_port: 7775,
            cpu_millicores: 4000,
            gpus: 0,
            seq: 17,
        }
    }

    fn replica(id: &str, phase: Phase, pid: Option<u32>) -> ReplicaStatus {
        ReplicaStatus {
            replica: ReplicaId::new(id).unwrap(),
            app: AppName::new("api").unwrap(),
            generation: 1,
            pid,
            phase,
            port: Some(8080),
            restarts: 0,
            cpu_percent: 3.25,
            rss_bytes: 20 * 1024 * 1024,
            limits: AppliedLimits::default(),
            limited: false,
            last_exit: None,
            adopted: false,
            uptime: None,
        }
    }

    #[test]
    fn a_heartbeat_reports_the_node_and_every_replica() {
        let rs = [
            replica("api.g1.r1", Phase::Healthy, Some(4242)),
            replica("api.g1.r2", Phase::BackingOff, None),
        ];
        let text = build_heartbeat(&facts(), &rs, &HashMap::new(), MAX_SIGNED_MESSAGE);
        assert_eq!(
            text,
            "HEARTBEAT|node-a|12.5|2048|10.0.0.5|7775|8192|4000|17|\
             api.g1.r1:api:1:4242:healthy:8080:3.25:20480,api.g1.r2:api:1:0:pending:8080:3.25:20480"
        );
        assert!(MeshEvent::decode(text.as_bytes()).is_ok());
    }

    #[test]
    fn a_limited_replica_says_what_enforces_its_limits() {
        let mut capped = replica("api.g1.r1", Phase::Healthy, Some(4242));
        capped.limited = true;
        let mut unenforced = capped.clone();
        capped.limits.ram = LimitEnforcement::CgroupV1;
        unenforced.replica = ReplicaId::new("api.g1.r2").unwrap();
        let text = build_heartbeat(
            &facts(),
            &[capped, unenforced],
            &HashMap::new(),
            MAX_SIGNED_MESSAGE,
        );
        assert!(
            text.ends_with(
                "api.g1.r1:api:1:4242:healthy:8080:3.25:20480:cgroup-v1,\
                 api.g1.r2:api:1:4242:healthy:8080:3.25:20480:none"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_oversized_heartbeat_leaves_out_the_oldest_ended_replicas_first() {
        let now = Instant::now();
        let mut rs = vec![replica("run", Phase::Healthy, Some(1))];
        let mut ended_at = HashMap::new();
        for i in 0..10 {
            let id = format!("old{i}");
            rs.push(replica(&id, Phase::Exited, None));
            ended_at.insert(ReplicaId::new(id).unwrap(), now + Duration::from_secs(i));
        }
        let full = build_heartbeat(&facts(), &rs, &ended_at, MAX_SIGNED_MESSAGE);
        // Room for all but about three entries.
        let max = full.len() - 3 * 40;
        let text = build_heartbeat(&facts(), &rs, &ended_at, max);
        assert!(text.len() <= max);
        let MeshEvent::Heartbeat(hb) = MeshEvent::decode(text.as_bytes()).unwrap() else {
            panic!("not a heartbeat");
        };
        let kept: Vec<String> = hb
            .detail
            .unwrap()
            .replicas
            .iter()
            .map(|r| r.replica.to_string())
            .collect();
        assert!(kept.contains(&"run".to_owned()), "{kept:?}");
        assert!(!kept.contains(&"old0".to_owned()), "{kept:?}");
        assert!(kept.contains(&"old9".to_owned()), "{kept:?}");
        // Even a tiny limit yields a heartbeat (with fewer replicas), never a panic.
        let tiny = build_heartbeat(&facts(), &rs, &ended_at, 10);
        assert!(tiny.starts_with("HEARTBEAT|node-a|"));
    }

    #[test]
    fn exits_and_states_on_the_wire() {
        assert_eq!(exit_of(Termination::Code(3)), Exit::Code(3));
        assert_eq!(exit_of(Termination::Signal(9)), Exit::Signal(9));
        assert_eq!(exit_of(Termination::Code(-1)), Exit::Code(255));
        assert_eq!(exit_of(Termination::Unknown), Exit::Code(255));
        assert_eq!(exit_of(Termination::LaunchFailed), Exit::Code(127));
        assert_eq!(state_of(Phase::BackingOff), ReplicaState::Pending);
        assert_eq!(state_of(Phase::Failed), ReplicaState::Failed);
    }
}
