//! What the Conductor answers from its [`State`] without changing it: the replies to LIST,
//! NODES, STATUS, APPS and ROLLOUT_STATUS, the placements SUBMIT reports, the replica LOGS and
//! EXEC go to, and what a running rollout waits for at the edge.
//!
//! Pure reads of the state; the daemon (`conductor::server`) sends what these return and asks
//! the Tower what [`EdgeWait`] names.

use std::net::SocketAddr;
use std::time::Instant;

use skr8tr_proto::name::{AppName, NodeId, ReplicaId};
use skr8tr_proto::wire::{
    AppStatus, CpuPercent, ListEntry, NodeEntry, OneLine, Placement, ReplicaState, ReplicaStatus,
    RolloutProgress, RolloutState, RunTimes,
};

use super::super::model::{NodeView, ReplicaPhase, ReplicaRecord};
use super::State;

/// Where a LOGS or EXEC for an app goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaTarget {
    /// The node agent's command socket.
    pub to: SocketAddr,
    pub node: NodeId,
    pub replica: ReplicaId,
}

/// What must hold before the edge counts as routing to a running rollout's new replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeWait {
    /// Nothing: the app serves no port, or there is no Tower to ask.
    Nothing,
    /// Each of these backends (the healthy new replicas) is in the Tower's list of the app,
    /// and every subscriber acknowledged the Tower's current version of it.
    Listed(Vec<SocketAddr>),
}

impl EdgeWait {
    /// Whether the Tower's list of the app's backends holds every backend waited for.
    #[must_use]
    pub fn is_listed_in(&self, listed: &[SocketAddr]) -> bool {
        match self {
            Self::Nothing => true,
            Self::Listed(backends) => backends.iter().all(|b| listed.contains(b)),
        }
    }
}

impl State {
    /// Where a node's agent listens.
    #[must_use]
    pub fn agent_addr(&self, node: &NodeId) -> Option<SocketAddr> {
        self.nodes
            .get(node)
            .map(|n| SocketAddr::new(n.addr, n.agent_port))
    }

    /// Live nodes (heard from within the expiry).
    pub fn live_nodes(&self, now: Instant) -> impl Iterator<Item = &NodeView> {
        let expiry = self.timings.node_expiry;
        self.nodes
            .values()
            .filter(move |n| now.saturating_duration_since(n.last_seen) <= expiry)
    }

    /// Whether `node` was heard from within the expiry.
    #[must_use]
    pub fn is_live(&self, node: &NodeId, now: Instant) -> bool {
        self.live_nodes(now).any(|n| &n.id == node)
    }

    /// `OK|LIST` entries: replicas with a known pid.
    #[must_use]
    pub fn list(&self) -> Vec<ListEntry> {
        self.replicas
            .values()
            .filter_map(|r| {
                r.pid.map(|pid| ListEntry {
                    app: r.app.clone(),
                    node: r.node.clone(),
                    pid,
                })
            })
            .collect()
    }

    /// `OK|NODES` entries.
    #[must_use]
    pub fn node_entries(&self, now: Instant) -> Vec<NodeEntry> {
        self.live_nodes(now)
            .map(|n| NodeEntry {
                node: n.id.clone(),
                ip: n.addr,
                cpu: CpuPercent::from_f64(f64::from(n.cpu_pct)),
                ram_free_mb: n.ram_free_mb,
            })
            .collect()
    }

    /// `OK|STATUS` entries, of one app or all.
    #[must_use]
    pub fn status(&self, app: Option<&AppName>) -> Vec<ReplicaStatus> {
        self.replicas
            .values()
            .filter(|r| app.is_none_or(|a| &r.app == a))
            .map(|r| {
                let reported = self
                    .nodes
                    .get(&r.node)
                    .and_then(|n| n.replicas.iter().find(|rep| rep.id == r.id));
                let state = match (r.phase, reported) {
                    (ReplicaPhase::Stopping, _) => ReplicaState::Stopping,
                    (ReplicaPhase::Ended, _) => match r.exit {
                        Some(exit) if !exit.success() => ReplicaState::Failed,
                        Some(_) => ReplicaState::Exited,
                        None => reported
                            .and_then(|rep| ReplicaState::from_keyword(&rep.state))
                            .filter(|s| *s == ReplicaState::Failed)
                            .unwrap_or(ReplicaState::Exited),
                    },
                    (_, Some(rep)) => {
                        ReplicaState::from_keyword(&rep.state).unwrap_or(ReplicaState::Starting)
                    }
                    (ReplicaPhase::Launching, None) => ReplicaState::Pending,
                    (ReplicaPhase::Healthy, None) => ReplicaState::Healthy,
                    (ReplicaPhase::Running, None) => ReplicaState::Starting,
                };
                ReplicaStatus {
                    app: r.app.clone(),
                    replica: r.id.clone(),
                    node: Some(r.node.clone()),
                    pid: r.pid.unwrap_or(0),
                    state,
                    generation: r.generation,
                    port: r.port.unwrap_or(0),
                    restarts: reported.map_or(0, |rep| rep.restarts),
                    uptime_s: reported.map_or(0, |rep| rep.uptime_s),
                    cpu: reported.map_or(CpuPercent::ZERO, |rep| {
                        CpuPercent::from_f64(f64::from(rep.cpu_pct))
                    }),
                    rss_kb: reported.map_or(0, |rep| rep.rss_kb),
                    exit: r.exit,
                    limits: reported.and_then(|rep| rep.limits),
                }
            })
            .collect()
    }

    /// `OK|APPS` entries.
    #[must_use]
    pub fn app_entries(&self) -> Vec<AppStatus> {
        self.apps
            .values()
            .map(|a| {
                let mine = self.replicas.values().filter(|r| {
                    r.app == a.spec.name
                        && !matches!(r.phase, ReplicaPhase::Stopping | ReplicaPhase::Ended)
                });
                let (mut running, mut healthy) = (0u32, 0u32);
                for r in mine {
                    if r.phase != ReplicaPhase::Launching {
                        running += 1;
                    }
                    if r.phase == ReplicaPhase::Healthy {
                        healthy += 1;
                    }
                }
                AppStatus {
                    app: a.spec.name.clone(),
                    desired: a.desired,
                    running,
                    healthy,
                    generation: a.generation,
                    rollout: self
                        .rollouts
                        .get(&a.spec.name)
                        .map_or(RolloutState::None, |r| r.state),
                    runs: a.spec.schedule.as_ref().map(|_| RunTimes {
                        next_ms: self.schedules.next(&a.spec.name),
                        last_ms: self.schedules.last_run(&a.spec.name),
                    }),
                }
            })
            .collect()
    }

    /// The replica LOGS/EXEC should go to: `wanted` if it belongs to `app`, else the app's
    /// first healthy (then any) replica.
    #[must_use]
    pub fn pick_replica(
        &self,
        app: &AppName,
        wanted: Option<&ReplicaId>,
    ) -> Option<&ReplicaRecord> {
        match wanted {
            Some(id) => self.replicas.get(id).filter(|r| &r.app == app),
            None => {
                let mut mine = self.replicas.values().filter(|r| &r.app == app);
                let all: Vec<&ReplicaRecord> = mine.by_ref().collect();
                all.iter()
                    .find(|r| r.phase == ReplicaPhase::Healthy)
                    .or_else(|| all.iter().find(|r| r.phase != ReplicaPhase::Stopping))
                    .or_else(|| all.first())
                    .copied()
            }
        }
    }

    /// `OK|ROLLOUT_STATUS`: the app's current or last rollout; `None` when the app is unknown.
    #[must_use]
    pub fn rollout_progress(&self, app: &AppName) -> Option<RolloutProgress> {
        let record = self.apps.get(app)?;
        let progress = |state, done, total, detail: &str| RolloutProgress {
            app: app.clone(),
            state,
            done,
            total,
            detail: OneLine::lossy(detail),
        };
        let Some(r) = self.rollouts.get(app) else {
            return Some(progress(
                RolloutState::None,
                0,
                record.desired,
                "no rollout yet",
            ));
        };
        let healthy_new = self
            .replicas
            .values()
            .filter(|rep| {
                &rep.app == app
                    && rep.generation == r.to_generation
                    && rep.phase == ReplicaPhase::Healthy
            })
            .count();
        let total = match r.state {
            RolloutState::Reverting | RolloutState::Reverted => r.previous_desired,
            // Canary: done of total canaries healthy.
            RolloutState::Canary => {
                super::super::rollout::canary_count(record.spec.rollout.canary, record.desired)
            }
            _ => record.desired,
        };
        let done = u32::try_from(healthy_new).unwrap_or(u32::MAX).min(total);
        Some(progress(
            r.state,
            done,
            total,
            &format!("{} (old replicas replaced: {})", r.detail, r.replaced),
        ))
    }

    /// `OK|SUBMITTED`: for each of `apps`, the nodes of its current generation's replicas that
    /// are not being stopped.
    #[must_use]
    pub fn placements(&self, apps: &[AppName]) -> Vec<Placement> {
        apps.iter()
            .map(|name| Placement {
                app: name.clone(),
                nodes: self
                    .replicas
                    .values()
                    .filter(|r| &r.app == name && r.phase != ReplicaPhase::Stopping)
                    .filter(|r| {
                        self.apps
                            .get(name)
                            .is_some_and(|a| a.generation == r.generation)
                    })
                    .map(|r| r.node.clone())
                    .collect(),
            })
            .collect()
    }

    /// Where LOGS or EXEC for `app` go: the replica [`State::pick_replica`] picks, on its
    /// node's agent. `None` when there is no such replica or its node is unknown.
    #[must_use]
    pub fn replica_target(
        &self,
        app: &AppName,
        wanted: Option<&ReplicaId>,
    ) -> Option<ReplicaTarget> {
        let rec = self.pick_replica(app, wanted)?;
        Some(ReplicaTarget {
            to: self.agent_addr(&rec.node)?,
            node: rec.node.clone(),
            replica: rec.id.clone(),
        })
    }

    /// What each running rollout waits for before the edge counts as routing to its new
    /// replicas (`tower`: whether there is a Tower to ask).
    #[must_use]
    pub fn edge_waits(&self, tower: bool) -> Vec<(AppName, EdgeWait)> {
        self.rollouts
            .values()
            .filter(|r| r.state == RolloutState::Running)
            .map(|r| {
                let serves = self.apps.get(&r.app).is_some_and(|a| a.spec.port.is_some());
                if !(tower && serves) {
                    return (r.app.clone(), EdgeWait::Nothing);
                }
                let backends = self
                    .replicas
                    .values()
                    .filter(|rep| rep.app == r.app && rep.generation == r.to_generation)
                    .filter(|rep| rep.phase == ReplicaPhase::Healthy)
                    .filter_map(|rep| {
                        let ip = self.nodes.get(&rep.node)?.addr;
                        rep.port.map(|port| SocketAddr::new(ip, port))
                    })
                    .collect();
                (r.app.clone(), EdgeWait::Listed(backends))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
