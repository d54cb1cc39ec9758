//! Reconciliation: from a snapshot of desired apps, placed replicas and live nodes to the list of
//! actions that make the cluster match. A pure function; the daemon applies the plan.
//!
//! ```text
//! records on a silent node ─────────────▶ Forget(NodeLost)    → replaced below
//! records the node no longer reports ──▶ Forget(Vanished)    → replaced below
//! reported ended for good (not stopped) ▶ fate(restart policy, exit):
//!                                            Done    → End (kept, counted, never replaced)
//!                                            Replace → Forget(Failed) → replaced below
//! reported but unknown / elsewhere ─────▶ KillStray          (a returning lost node's stale copies)
//! app has fewer than desired ───────────▶ Launch (placement) or Pending
//! app has more than desired / evicted ──▶ Stop (drain on the node, then forgotten)
//! ended records of an evicted app, or past the newest MAX_ENDED ─▶ Forget
//! ```
//! Invariant: the plan never launches a replica id that exists, and never counts a replica on a
//! lost node, so a node that returns cannot leave duplicates behind. An ended record
//! ([`ReplicaPhase::Ended`]) is counted whatever its node does, so a finished job or a dead
//! `restart never` app stays finished across node and Conductor restarts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use skr8tr_proto::manifest::{RestartPolicy, WorkloadKind};
use skr8tr_proto::name::{AppName, NodeId, ReplicaId};
use skr8tr_proto::wire::RolloutState;

use super::model::{AppRecord, NodeView, ReplicaPhase, ReplicaRecord};
use super::placement::choose_node;
use super::rollout::{AppView, Rollout, Step, plan_app};

/// Why a replica record is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgetReason {
    /// Its node stopped sending heartbeats.
    NodeLost,
    /// Its node no longer reports it (it was stopped, or the node restarted without it).
    Vanished,
    /// It ended for good and its restart policy wants it replaced ([`Fate::Replace`]).
    Failed,
    /// An ended record of an app that was evicted, or older than the newest [`MAX_ENDED`].
    History,
}

/// Ended records kept per app beyond its current generation's (its run history).
pub const MAX_ENDED: usize = 10;

/// What becomes of a replica whose process ended for good on its node without the Conductor
/// stopping it (the node applies the restart policy first: it restarts `always` replicas and
/// failed `on-failure` ones itself, so what ends there is final by the node's reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It is finished: keep its record as ended, count it, never place it again.
    Done,
    /// Place a fresh replica in its stead (after the app's back-off).
    Replace,
}

/// The Conductor's reading of the restart policy, the same as the node's: `always` replaces
/// whatever ended, `on-failure` replaces a failure (a clean exit 0 is done), `never` replaces
/// nothing. `success` is whether the process exited with code 0.
#[must_use]
pub fn fate(policy: RestartPolicy, success: bool) -> Fate {
    match policy {
        RestartPolicy::Always => Fate::Replace,
        RestartPolicy::OnFailure if !success => Fate::Replace,
        RestartPolicy::OnFailure | RestartPolicy::Never => Fate::Done,
    }
}

/// Why a replica is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The app has more replicas than desired.
    ScaleDown,
    /// The app was evicted.
    Evicted,
    /// A newer generation has enough healthy replicas.
    Superseded,
    /// A node reports a replica the Conductor does not know there (stale after a loss,
    /// or from an evicted app).
    Stray,
    /// A rollout replaced it with a replica of the new generation.
    RolledOut,
}

impl StopReason {
    /// Why, in words (events, logs).
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::ScaleDown => "scaled down",
            Self::Evicted => "its app was evicted",
            Self::Superseded => "superseded by a newer generation",
            Self::Stray => "stray: not placed there (a returning lost node's copy)",
            Self::RolledOut => "replaced by the rollout",
        }
    }
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Persist this new record, then send LAUNCH to its node.
    Launch(ReplicaRecord),
    /// Send KILL for `replica` to `node` (the record, if any, becomes `Stopping`).
    Stop {
        replica: ReplicaId,
        node: NodeId,
        reason: StopReason,
    },
    /// The replica ended for good and is done ([`Fate::Done`]): its record becomes
    /// [`ReplicaPhase::Ended`].
    End { replica: ReplicaId },
    /// Drop the record.
    Forget {
        replica: ReplicaId,
        reason: ForgetReason,
    },
    /// `missing` replicas of `app` fit on no live node.
    Pending { app: AppName, missing: u32 },
    /// The app's running rollout must end: revert (or fail), or it is complete.
    RolloutEnd { app: AppName, outcome: RolloutEnd },
    /// The app's running rollout waits; `detail` says for what.
    RolloutWait { app: AppName, detail: String },
}

/// How a running rollout ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutEnd {
    Complete,
    Abort(String),
}

/// Everything the planner looks at.
#[derive(Debug)]
pub struct Snapshot<'a> {
    pub now: Instant,
    pub now_ms: u64,
    pub apps: &'a BTreeMap<AppName, AppRecord>,
    pub replicas: &'a [ReplicaRecord],
    pub nodes: &'a [NodeView],
    /// A node silent this long is lost (SPEC: 5 s).
    pub node_expiry: Duration,
    /// A placed replica its node has not reported after this long is presumed gone.
    pub launch_grace: Duration,
    /// Apps whose launches are backing off, until when.
    pub backoff: &'a HashMap<AppName, Instant>,
    /// Rollouts by app (running or ended).
    pub rollouts: &'a BTreeMap<AppName, Rollout>,
    /// Apps whose new replicas the edge routes to (see [`AppView::edge_ready`]).
    pub edge_ready: &'a HashSet<AppName>,
    /// Scheduled apps' current runs: when each started (see
    /// [`Schedules`](super::schedule::Schedules)). A scheduled app without one runs nothing.
    pub runs: &'a HashMap<AppName, u64>,
}

/// Computes the plan. `next_seq` numbers new replicas and is advanced by the launches made.
#[must_use]
pub fn plan(s: &Snapshot<'_>, next_seq: &mut u64) -> Vec<Action> {
    let mut actions = Vec::new();
    let live: Vec<NodeView> = s
        .nodes
        .iter()
        .filter(|n| s.now.saturating_duration_since(n.last_seen) <= s.node_expiry)
        .cloned()
        .collect();
    let live_by_id: HashMap<&NodeId, &NodeView> = live.iter().map(|n| (&n.id, n)).collect();

    // 1. Records whose replica is gone, or ended.
    let mut kept: Vec<ReplicaRecord> = Vec::new();
    let mut stopped: HashSet<ReplicaId> = HashSet::new();
    for r in s.replicas {
        if r.phase == ReplicaPhase::Ended {
            kept.push(r.clone());
            continue;
        }
        let Some(node) = live_by_id.get(&r.node) else {
            actions.push(Action::Forget {
                replica: r.id.clone(),
                reason: ForgetReason::NodeLost,
            });
            continue;
        };
        match node.replicas.iter().find(|rep| rep.id == r.id) {
            None => {
                let age = s.now_ms.saturating_sub(r.placed_at_ms);
                let grace = u64::try_from(s.launch_grace.as_millis()).unwrap_or(u64::MAX);
                if r.phase == ReplicaPhase::Stopping || age > grace {
                    actions.push(Action::Forget {
                        replica: r.id.clone(),
                        reason: ForgetReason::Vanished,
                    });
                    continue;
                }
            }
            // A stopped replica the node still lists as ended is gone.
            Some(rep)
                if r.phase == ReplicaPhase::Stopping
                    && matches!(rep.state.as_str(), "exited" | "failed") =>
            {
                actions.push(Action::Forget {
                    replica: r.id.clone(),
                    reason: ForgetReason::Vanished,
                });
                continue;
            }
            // It ended for good by itself: done, or replaced, as its restart policy says.
            Some(rep) if matches!(rep.state.as_str(), "exited" | "failed") => {
                let success = match r.exit {
                    Some(exit) => exit.success(),
                    None => rep.state == "exited",
                };
                let policy = s.apps.get(&r.app).map(|a| a.spec.restart);
                if policy.is_some_and(|p| fate(p, success) == Fate::Done) {
                    actions.push(Action::End {
                        replica: r.id.clone(),
                    });
                    let mut ended = r.clone();
                    ended.phase = ReplicaPhase::Ended;
                    kept.push(ended);
                } else {
                    // Stopped first, so that nothing of it is left behind on the node.
                    stopped.insert(r.id.clone());
                    actions.push(Action::Stop {
                        replica: r.id.clone(),
                        node: r.node.clone(),
                        reason: StopReason::Stray,
                    });
                    actions.push(Action::Forget {
                        replica: r.id.clone(),
                        reason: ForgetReason::Failed,
                    });
                }
                continue;
            }
            Some(_) => {}
        }
        kept.push(r.clone());
    }

    // 2. Replicas a node runs that the Conductor does not know there.
    let known: HashSet<(&NodeId, &ReplicaId)> = kept.iter().map(|r| (&r.node, &r.id)).collect();
    for node in &live {
        for rep in &node.replicas {
            let running = !matches!(rep.state.as_str(), "stopping" | "exited" | "failed");
            if !known.contains(&(&node.id, &rep.id)) && running && !stopped.contains(&rep.id) {
                actions.push(Action::Stop {
                    replica: rep.id.clone(),
                    node: node.id.clone(),
                    reason: StopReason::Stray,
                });
            }
        }
    }

    // 3. Evicted apps; the run history beyond the newest MAX_ENDED.
    for r in &kept {
        if r.phase == ReplicaPhase::Ended {
            let current_generation = s.apps.get(&r.app).map(|a| a.generation);
            let current = current_generation == Some(r.generation);
            // A scheduled app's runs all belong to one generation: keep its newest runs.
            let scheduled = s.apps.get(&r.app).filter(|a| a.spec.schedule.is_some());
            let newer = kept
                .iter()
                .filter(|o| o.app == r.app && o.phase == ReplicaPhase::Ended)
                .filter(|o| scheduled.is_some() || Some(o.generation) != current_generation)
                .filter(|o| (o.placed_at_ms, &o.id) > (r.placed_at_ms, &r.id))
                .count();
            let keep = scheduled.map_or(MAX_ENDED, |a| {
                MAX_ENDED.saturating_mul(usize::try_from(a.desired.max(1)).unwrap_or(1))
            });
            let past = if scheduled.is_some() {
                newer >= keep
            } else {
                !current && newer >= keep
            };
            if !s.apps.contains_key(&r.app) || past {
                actions.push(Action::Forget {
                    replica: r.id.clone(),
                    reason: ForgetReason::History,
                });
            }
        } else if !s.apps.contains_key(&r.app) && r.phase != ReplicaPhase::Stopping {
            actions.push(Action::Stop {
                replica: r.id.clone(),
                node: r.node.clone(),
                reason: StopReason::Evicted,
            });
        }
    }

    // 4. Per app: replace, scale, supersede (or, during a rollout, its own rule).
    for (name, app) in s.apps {
        if let Some(rollout) = s
            .rollouts
            .get(name)
            .filter(|r| matches!(r.state, RolloutState::Running | RolloutState::Canary))
        {
            let view = AppView {
                record: app,
                replicas: kept
                    .iter()
                    .filter(|r| &r.app == name && r.phase != ReplicaPhase::Ended)
                    .collect(),
                edge_ready: s.edge_ready.contains(name),
                now_ms: s.now_ms,
            };
            match plan_app(rollout, &view) {
                Step::Launch(n) => {
                    for _ in 0..n {
                        match place(s, &live, &kept, app, next_seq) {
                            Some(record) => {
                                kept.push(record.clone());
                                actions.push(Action::Launch(record));
                            }
                            None => actions.push(Action::Pending {
                                app: name.clone(),
                                missing: 1,
                            }),
                        }
                    }
                }
                Step::StopOld(replica) => {
                    if let Some(r) = kept.iter().find(|r| r.id == replica) {
                        actions.push(Action::Stop {
                            replica,
                            node: r.node.clone(),
                            reason: StopReason::RolledOut,
                        });
                    }
                }
                Step::Abort(why) => actions.push(Action::RolloutEnd {
                    app: name.clone(),
                    outcome: RolloutEnd::Abort(why),
                }),
                Step::Complete => actions.push(Action::RolloutEnd {
                    app: name.clone(),
                    outcome: RolloutEnd::Complete,
                }),
                Step::Wait(detail) => actions.push(Action::RolloutWait {
                    app: name.clone(),
                    detail,
                }),
            }
            continue;
        }
        // A scheduled app wants its replicas only for a run, and counts those of the run.
        let scheduled = app.spec.schedule.is_some();
        let run = s.runs.get(name).copied();
        let desired = if scheduled && run.is_none() {
            0
        } else {
            app.desired
        };
        let is_current = |r: &ReplicaRecord| {
            &r.app == name
                && r.generation == app.generation
                && r.phase != ReplicaPhase::Stopping
                && run.is_none_or(|started| r.placed_at_ms >= started)
        };
        let have = u32::try_from(kept.iter().filter(|r| is_current(r)).count()).unwrap_or(u32::MAX);
        if have < desired {
            if s.backoff.get(name).is_some_and(|until| *until > s.now) {
                continue;
            }
            let mut missing = 0;
            for _ in have..desired {
                match place(s, &live, &kept, app, next_seq) {
                    Some(record) => {
                        kept.push(record.clone());
                        actions.push(Action::Launch(record));
                    }
                    None => missing += 1,
                }
            }
            if missing > 0 {
                actions.push(Action::Pending {
                    app: name.clone(),
                    missing,
                });
            }
        } else if have > desired && !scheduled {
            let mut extra: Vec<&ReplicaRecord> = kept
                .iter()
                .filter(|r| is_current(r) && r.phase != ReplicaPhase::Ended)
                .collect();
            // Stop the least useful first: not yet healthy, then the newest.
            extra.sort_by_key(|r| {
                (
                    r.phase == ReplicaPhase::Healthy,
                    std::cmp::Reverse(r.placed_at_ms),
                )
            });
            for r in extra.iter().take((have - desired) as usize) {
                actions.push(Action::Stop {
                    replica: r.id.clone(),
                    node: r.node.clone(),
                    reason: StopReason::ScaleDown,
                });
            }
        }
        // Older generations go once the current one is fully healthy (jobs: once placed; a
        // scheduled job's at once, as its new spec runs from its next time).
        let healthy = kept
            .iter()
            .filter(|r| is_current(r))
            .filter(|r| {
                matches!(r.phase, ReplicaPhase::Healthy | ReplicaPhase::Ended)
                    || app.spec.kind == WorkloadKind::Job
            })
            .count();
        if u32::try_from(healthy).unwrap_or(u32::MAX) >= desired {
            for r in kept.iter().filter(|r| {
                &r.app == name
                    && r.generation != app.generation
                    && !matches!(r.phase, ReplicaPhase::Stopping | ReplicaPhase::Ended)
            }) {
                actions.push(Action::Stop {
                    replica: r.id.clone(),
                    node: r.node.clone(),
                    reason: StopReason::Superseded,
                });
            }
        }
    }
    actions
}

/// A new replica record of `app`'s current generation on the best node, if one fits.
fn place(
    s: &Snapshot<'_>,
    live: &[NodeView],
    kept: &[ReplicaRecord],
    app: &AppRecord,
    next_seq: &mut u64,
) -> Option<ReplicaRecord> {
    let node = choose_node(live, kept, &app.spec)?;
    *next_seq += 1;
    Some(ReplicaRecord {
        id: replica_id(&app.spec.name, app.generation, *next_seq),
        app: app.spec.name.clone(),
        generation: app.generation,
        node: node.clone(),
        phase: ReplicaPhase::Launching,
        pid: None,
        port: None,
        port_spec: app.spec.listen_port(),
        ram: app.spec.ram.map_or(0, |r| r.0),
        cpu_millis: app.spec.cpu.map_or(0, |c| c.millicores),
        placed_at_ms: s.now_ms,
        exit: None,
        gpus: app.spec.gpu.unwrap_or(0),
    })
}

/// `app.gN.rM`, trimmed to the name limit by shortening the app part.
#[must_use]
pub fn replica_id(app: &AppName, generation: u64, seq: u64) -> ReplicaId {
    let suffix = format!(".g{generation}.r{seq}");
    let room = skr8tr_proto::name::MAX_NAME_LEN.saturating_sub(suffix.len());
    let base: String = app.as_str().chars().take(room).collect();
    ReplicaId::new(format!("{base}{suffix}"))
        .or_else(|_| ReplicaId::new(format!("r{seq}")))
        .unwrap_or_else(|_| unreachable_replica_id())
}

/// `r0` is always a valid name; kept separate so the fallback chain above stays total.
fn unreachable_replica_id() -> ReplicaId {
    ReplicaId::new("r0").unwrap_or_else(|_| unreachable!("`r0` is a valid name"))
}

#[cfg(test)]
mod tests;
