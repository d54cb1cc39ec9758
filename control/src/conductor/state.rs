//! The Conductor's in-memory state and every decision about it, as plain methods: the daemon
//! calls them with decoded requests and the current time, persists the returned [`Change`]s
//! and carries out the returned [`Effect`]s (datagrams to nodes). What it answers without a
//! change (listings, SUBMIT's placements, the replica LOGS/EXEC go to, what a rollout waits for
//! at the edge) is in `state/queries.rs`; which app may claim an edge route and the route sets
//! to publish are in `state/routes.rs`.
//!
//! ```text
//! SUBMIT/EVICT/SCALE ─▶ apps ─┐
//! HEARTBEAT ──────────▶ nodes ├─▶ reconcile() ─▶ plan ─▶ records + Changes + Effects
//! LAUNCHED / ERR ─────▶ records┘
//! DIED ───────────────▶ records (exit; ended for good: done or replaced, by reconcile::fate)
//! ```
//! Owns no socket and no clock. Invariant: a replica record exists before its LAUNCH is sent,
//! so a crash between the two can only leave a record the node never reports (replaced after
//! the grace), never a process the Conductor does not know.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use skr8tr_proto::manifest::App;
use skr8tr_proto::name::{AppName, NodeId, ReplicaId};
use skr8tr_proto::wire::{Died, Heartbeat, LaunchSpec, RolloutState};

use skr8tr_proto::wire::{EventKind, Exit};

use super::events::Event;
use super::model::{AppRecord, NodeView, ReplicaPhase, ReplicaRecord, ReportedReplica};
use super::reconcile::{self, Action, Fate, RolloutEnd, Snapshot};
use super::rollout::Rollout;
use super::schedule::Schedules;
use super::store::{Change, GenerationRecord, Loaded};

mod queries;
mod routes;

pub use queries::{EdgeWait, ReplicaTarget};
pub use routes::RouteTaken;

/// The node agent's default command port, for seed-style heartbeats that do not name theirs.
pub const DEFAULT_AGENT_PORT: u16 = 7775;
/// Longest launch back-off of an app whose launches keep failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Something to send to a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Launch {
        to: SocketAddr,
        spec: Box<LaunchSpec>,
    },
    Kill {
        to: SocketAddr,
        node: NodeId,
        replica: ReplicaId,
    },
    /// Remove a lost node's replica from the Tower now instead of waiting for its TTL, so the
    /// edge stops trying an unreachable backend.
    Deregister { app: AppName, backend: SocketAddr },
}

/// Why an app's launches are paused.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub until: Instant,
    pub failures: u32,
    pub last_error: String,
}

/// Timings of the reconcile rules.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub node_expiry: Duration,
    pub launch_grace: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            node_expiry: Duration::from_secs(5),
            launch_grace: Duration::from_secs(3),
        }
    }
}

/// Everything the Conductor knows.
#[derive(Debug)]
pub struct State {
    pub apps: BTreeMap<AppName, AppRecord>,
    pub replicas: BTreeMap<ReplicaId, ReplicaRecord>,
    pub nodes: BTreeMap<NodeId, NodeView>,
    node_seq: HashMap<NodeId, u64>,
    pub backoff: HashMap<AppName, Backoff>,
    pub pending: BTreeMap<AppName, u32>,
    pub seq: u64,
    pub timings: Timings,
    /// Each app's current or last rollout.
    pub rollouts: BTreeMap<AppName, Rollout>,
    /// Apps in a rollout whose new replicas the edge routes to (kept by the daemon from the
    /// Tower's answers).
    pub edge_ready: HashSet<AppName>,
    /// What the autoscaler remembers per app.
    scale_tracks: HashMap<AppName, super::autoscale::Track>,
    /// Until when reconcile waits for the nodes that recorded replicas live on to report
    /// (after a Conductor restart), so nothing is replaced that merely has not been heard yet.
    adopt_until: Instant,
    /// Nodes declared lost (and told as an event) since their last heartbeat.
    lost: HashSet<NodeId>,
    /// Events noted since the daemon last took them ([`State::take_events`]).
    outbox: Vec<Event>,
    /// When scheduled jobs run.
    pub schedules: Schedules,
}

impl State {
    /// State rebuilt from the store at `now`.
    #[must_use]
    pub fn new(loaded: Loaded, timings: Timings, now: Instant) -> Self {
        let adopt_until = if loaded.replicas.is_empty() {
            now
        } else {
            now + timings.node_expiry
        };
        Self {
            apps: loaded
                .apps
                .into_iter()
                .map(|a| (a.spec.name.clone(), a))
                .collect(),
            replicas: loaded
                .replicas
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect(),
            nodes: BTreeMap::new(),
            node_seq: HashMap::new(),
            backoff: HashMap::new(),
            pending: BTreeMap::new(),
            seq: loaded.seq,
            timings,
            rollouts: loaded
                .rollouts
                .into_iter()
                .map(|r| (r.app.clone(), r))
                .collect(),
            edge_ready: HashSet::new(),
            scale_tracks: HashMap::new(),
            adopt_until,
            lost: HashSet::new(),
            outbox: Vec::new(),
            schedules: Schedules::default(),
        }
    }

    /// The events noted since the last call, oldest first; the daemon stamps and keeps them.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.outbox)
    }

    fn note(&mut self, event: Event) {
        // Bounded even if the daemon never takes them (a test driving State directly).
        if self.outbox.len() < 10_000 {
            self.outbox.push(event);
        }
    }

    /// SUBMIT or ROLLOUT of `apps`: new apps are added at generation 1; an unchanged one is
    /// left alone (idempotent); a changed one starts a rollout to the next generation.
    ///
    /// # Errors
    /// The name of an app whose rollout is still running (nothing is changed then).
    pub fn submit(&mut self, apps: Vec<App>, now_ms: u64) -> Result<Vec<Change>, AppName> {
        if let Some(busy) = apps.iter().find(|a| {
            self.apps.get(&a.name).is_some_and(|e| e.spec != **a)
                && self.rollouts.get(&a.name).is_some_and(Rollout::active)
        }) {
            return Err(busy.name.clone());
        }
        let mut changes = Vec::new();
        for spec in apps {
            let record = match self.apps.get(&spec.name) {
                // Submitted again once every replica has ended for good (a finished job, a
                // dead `restart never` app): it runs again, as a new generation.
                Some(existing)
                    if existing.spec == spec
                        && spec.schedule.is_none()
                        && self.all_ended(existing) =>
                {
                    tracing::info!(app = %spec.name, "resubmitted after it ended: runs again");
                    self.next_generation(existing.generation, spec, "resubmitted after it ended")
                }
                Some(existing) if existing.spec == spec => continue,
                // A scheduled job changes without a rollout: its next run is the new spec's
                // (one still going finishes as it was).
                Some(existing) if spec.schedule.is_some() || existing.spec.schedule.is_some() => {
                    self.next_generation(existing.generation, spec, "changed, from its next run")
                }
                Some(existing) => {
                    let state = if spec.rollout.canary > 0 {
                        RolloutState::Canary
                    } else {
                        RolloutState::Running
                    };
                    let rollout = Rollout {
                        app: spec.name.clone(),
                        from_generation: existing.generation,
                        to_generation: existing.generation + 1,
                        previous: existing.spec.clone(),
                        previous_desired: existing.desired,
                        state,
                        started_ms: now_ms,
                        replaced: 0,
                        detail: "starting".into(),
                    };
                    tracing::info!(app = %spec.name, from = rollout.from_generation, to = rollout.to_generation, "rollout started");
                    self.outbox.push(
                        Event::new(
                            EventKind::RolloutStarted,
                            format!(
                                "generation {} to {}",
                                rollout.from_generation, rollout.to_generation
                            ),
                        )
                        .app(&spec.name),
                    );
                    changes.push(Change::PutRollout(Box::new(rollout.clone())));
                    self.rollouts.insert(spec.name.clone(), rollout);
                    AppRecord {
                        generation: existing.generation + 1,
                        desired: spec.replicas,
                        spec,
                    }
                }
                None => {
                    self.outbox.push(
                        Event::new(
                            EventKind::Submitted,
                            format!("{} replica(s), generation 1", spec.replicas),
                        )
                        .app(&spec.name),
                    );
                    AppRecord {
                        generation: 1,
                        desired: spec.replicas,
                        spec,
                    }
                }
            };
            self.backoff.remove(&record.spec.name);
            changes.push(Change::PutApp(Box::new(record.clone())));
            changes.extend(generation_kept(&record, now_ms));
            self.apps.insert(record.spec.name.clone(), record);
        }
        Ok(changes)
    }

    /// `spec` as the generation after `generation`, with no rollout; noted as submitted, `why`.
    fn next_generation(&mut self, generation: u64, spec: App, why: &str) -> AppRecord {
        let next = generation + 1;
        self.outbox.push(
            Event::new(EventKind::Submitted, format!("{why}: generation {next}")).app(&spec.name),
        );
        AppRecord {
            generation: next,
            desired: spec.replicas,
            spec,
        }
    }

    /// PROMOTE: a rollout waiting at its canaries goes on as a normal rollout.
    ///
    /// # Errors
    /// [`RolloutCommandError`]: the app is unknown, or no canary of it waits.
    pub fn promote(&mut self, app: &AppName) -> Result<Vec<Change>, RolloutCommandError> {
        if !self.apps.contains_key(app) {
            return Err(RolloutCommandError::UnknownApp);
        }
        let Some(r) = self
            .rollouts
            .get_mut(app)
            .filter(|r| r.state == RolloutState::Canary)
        else {
            return Err(RolloutCommandError::NoCanary);
        };
        r.state = RolloutState::Running;
        r.detail = "promoted: replacing the old replicas".into();
        let change = Change::PutRollout(Box::new(r.clone()));
        self.note(Event::new(EventKind::RolloutStep, "canary promoted by the operator").app(app));
        Ok(vec![change])
    }

    /// ROLLBACK while a rollout (or canary) of `app` runs: it is aborted and the previous
    /// generation restored, whatever `auto-revert` says. Returns the changes and the
    /// generation restored; `None` when no rollout of the app is running.
    pub fn abort_rollout(&mut self, app: &AppName) -> Option<(Vec<Change>, u64)> {
        let from = self
            .rollouts
            .get(app)
            .filter(|r| matches!(r.state, RolloutState::Running | RolloutState::Canary))?
            .from_generation;
        // The operator asked: revert even when the manifest turned auto-revert off.
        if let Some(record) = self.apps.get_mut(app) {
            record.spec.rollout.auto_revert = true;
        }
        let changes =
            self.end_rollout(app, RolloutEnd::Abort("rolled back by the operator".into()));
        Some((changes, from))
    }

    /// ROLLBACK with no rollout running: roll `app` to `spec`, the stored spec of generation
    /// `source`, through a normal rollout (never a canary: going back is not trying out).
    ///
    /// # Errors
    /// [`RolloutCommandError`]: the app is unknown, or `spec` is what runs.
    pub fn rollback_to(
        &mut self,
        app: &AppName,
        spec: App,
        source: u64,
        now_ms: u64,
    ) -> Result<Vec<Change>, RolloutCommandError> {
        let current = self.apps.get(app).ok_or(RolloutCommandError::UnknownApp)?;
        if current.spec == spec {
            return Err(RolloutCommandError::AlreadyThere(source));
        }
        let mut changes = self
            .submit(vec![spec], now_ms)
            .map_err(|_| RolloutCommandError::Busy)?;
        if let Some(r) = self.rollouts.get_mut(app)
            && r.state == RolloutState::Canary
        {
            r.state = RolloutState::Running;
            changes.push(Change::PutRollout(Box::new(r.clone())));
        }
        self.note(
            Event::new(
                EventKind::RolloutStep,
                format!("rollback to the spec of generation {source}"),
            )
            .app(app),
        );
        Ok(changes)
    }

    /// Whether `app` has replicas of its current generation and all of them ended for good
    /// (a finished job): SUBMIT of the same spec runs it again.
    #[must_use]
    pub fn ended_for_good(&self, app: &AppRecord) -> bool {
        self.all_ended(app)
    }

    fn all_ended(&self, app: &AppRecord) -> bool {
        let mut current = self
            .replicas
            .values()
            .filter(|r| r.app == app.spec.name && r.generation == app.generation)
            .peekable();
        current.peek().is_some() && current.all(|r| r.phase == ReplicaPhase::Ended)
    }

    /// EVICT: forget the app; reconcile stops its replicas. `None` when it is unknown.
    pub fn evict(&mut self, app: &AppName) -> Option<Vec<Change>> {
        self.apps.remove(app)?;
        let forget = Change::DeleteGenerations(app.clone());
        self.note(Event::new(EventKind::Evicted, "its replicas stop").app(app));
        self.backoff.remove(app);
        self.pending.remove(app);
        let mut changes = vec![Change::DeleteApp(app.clone()), forget];
        if self.rollouts.remove(app).is_some() {
            changes.push(Change::DeleteRollout(app.clone()));
        }
        Some(changes)
    }

    /// SCALE: set the desired count. `None` when the app is unknown.
    pub fn scale(&mut self, app: &AppName, replicas: u32) -> Option<Vec<Change>> {
        let record = self.apps.get_mut(app)?;
        let from = record.desired;
        record.desired = replicas;
        let change = Change::PutApp(Box::new(record.clone()));
        self.note(
            Event::new(
                EventKind::Scaled,
                format!("{from} to {replicas} replica(s)"),
            )
            .app(app),
        );
        Some(vec![change])
    }

    /// A heartbeat from `from`: the node's figures and replicas; records follow what the node
    /// reports (pid, port, health). Stale heartbeats (lower sequence) are ignored.
    pub fn heartbeat(&mut self, hb: Heartbeat, from: IpAddr, now: Instant) -> Vec<Change> {
        let (addr, agent_port, ram_total_mb, cpu_millis, gpus, replicas) = match &hb.detail {
            Some(d) => {
                let last = self.node_seq.get(&hb.node).copied().unwrap_or(0);
                let live = self.nodes.get(&hb.node).is_some_and(|n| {
                    now.saturating_duration_since(n.last_seen) <= self.timings.node_expiry
                });
                // A late datagram is a little behind; a restarted agent starts again from 1.
                if live && d.seq <= last && last - d.seq <= 5 {
                    return Vec::new();
                }
                self.node_seq.insert(hb.node.clone(), d.seq);
                let reps = d
                    .replicas
                    .iter()
                    .map(|r| ReportedReplica {
                        id: r.replica.clone(),
                        app: r.app.clone(),
                        generation: r.generation,
                        pid: r.pid,
                        state: r.state.keyword().to_string(),
                        port: r.port,
                        cpu_pct: r.cpu.as_f64() as f32,
                        rss_kb: r.rss_kb,
                        limits: r.limits,
                        restarts: r.restarts,
                        uptime_s: r.uptime_s,
                    })
                    .collect();
                (
                    d.advertise,
                    d.agent_port,
                    d.ram_total_mb,
                    d.cpu_millicores,
                    d.gpus,
                    reps,
                )
            }
            None => (
                from,
                DEFAULT_AGENT_PORT,
                hb.ram_free_mb,
                1000,
                0,
                Vec::new(),
            ),
        };
        let was_live = self.nodes.get(&hb.node).is_some_and(|n| {
            now.saturating_duration_since(n.last_seen) <= self.timings.node_expiry
        });
        if !was_live {
            let detail = if self.lost.remove(&hb.node) {
                format!("back from {addr}")
            } else {
                format!("at {addr}")
            };
            self.note(Event::new(EventKind::NodeJoined, detail).node(&hb.node));
        }
        let mut changes = Vec::new();
        let mut noted = Vec::new();
        for rep in &replicas {
            if let Some(rec) = self.replicas.get_mut(&rep.id)
                && rec.node == hb.node
                && !matches!(rec.phase, ReplicaPhase::Stopping | ReplicaPhase::Ended)
            {
                let phase = match rep.state.as_str() {
                    "healthy" => ReplicaPhase::Healthy,
                    "pending" => ReplicaPhase::Launching,
                    _ => ReplicaPhase::Running,
                };
                let pid = (rep.pid != 0).then_some(rep.pid);
                let port = (rep.port != 0).then_some(rep.port);
                if rec.phase != phase || rec.pid != pid || rec.port != port {
                    let kind = match (rec.phase, phase) {
                        (ReplicaPhase::Healthy, ReplicaPhase::Healthy) => None,
                        (_, ReplicaPhase::Healthy) => {
                            Some((EventKind::Healthy, "health check passed"))
                        }
                        (ReplicaPhase::Healthy, _) => {
                            Some((EventKind::Unhealthy, "health check failing"))
                        }
                        _ => None,
                    };
                    if let Some((kind, detail)) = kind {
                        noted.push(
                            Event::new(kind, detail)
                                .app(&rec.app)
                                .replica(&rec.id)
                                .node(&rec.node),
                        );
                    }
                    rec.phase = phase;
                    rec.pid = pid;
                    rec.port = port;
                    changes.push(Change::PutReplica(rec.clone()));
                }
            }
        }
        for event in noted {
            self.note(event);
        }
        self.nodes.insert(
            hb.node.clone(),
            NodeView {
                id: hb.node,
                addr,
                agent_port,
                cpu_pct: hb.cpu.as_f64() as f32,
                ram_free_mb: hb.ram_free_mb,
                ram_total_mb,
                cpu_millis,
                gpus,
                last_seen: now,
                replicas,
            },
        );
        changes
    }

    /// Whether reconcile may run: not while waiting to hear from the nodes of adopted replicas.
    #[must_use]
    pub fn may_reconcile(&self, now: Instant) -> bool {
        now >= self.adopt_until
            || self
                .replicas
                .values()
                .filter(|r| r.phase != ReplicaPhase::Ended)
                .all(|r| self.nodes.contains_key(&r.node))
    }

    /// Plans and applies one reconcile pass; returns what to persist and what to send.
    pub fn reconcile(&mut self, now: Instant, now_ms: u64) -> (Vec<Change>, Vec<Effect>) {
        if !self.may_reconcile(now) {
            return (Vec::new(), Vec::new());
        }
        self.note_lost_nodes(now);
        let mut changes = self.autoscale(now);
        let replicas: Vec<ReplicaRecord> = self.replicas.values().cloned().collect();
        let nodes: Vec<NodeView> = self.nodes.values().cloned().collect();
        let backoff: HashMap<AppName, Instant> = self
            .backoff
            .iter()
            .map(|(k, b)| (k.clone(), b.until))
            .collect();
        let fired = self.schedules.tick(&self.apps, &self.replicas, now_ms);
        self.outbox.extend(fired);
        let runs = self.schedules.runs();
        let seq_before = self.seq;
        let plan = reconcile::plan(
            &Snapshot {
                now,
                now_ms,
                apps: &self.apps,
                replicas: &replicas,
                nodes: &nodes,
                node_expiry: self.timings.node_expiry,
                launch_grace: self.timings.launch_grace,
                backoff: &backoff,
                rollouts: &self.rollouts,
                edge_ready: &self.edge_ready,
                runs: &runs,
            },
            &mut self.seq,
        );
        let mut effects = Vec::new();
        self.pending.clear();
        for action in plan {
            match action {
                Action::Launch(record) => {
                    let Some(app) = self.apps.get(&record.app) else {
                        continue;
                    };
                    let Some(to) = self.agent_addr(&record.node) else {
                        continue;
                    };
                    tracing::info!(replica = %record.id, node = %record.node, "placing replica");
                    self.outbox.push(
                        Event::new(
                            EventKind::Placed,
                            format!("generation {}", record.generation),
                        )
                        .app(&record.app)
                        .replica(&record.id)
                        .node(&record.node),
                    );
                    effects.push(Effect::Launch {
                        to,
                        spec: Box::new(LaunchSpec {
                            node: record.node.clone(),
                            replica: record.id.clone(),
                            generation: record.generation,
                            app: app.spec.clone(),
                        }),
                    });
                    changes.push(Change::PutReplica(record.clone()));
                    self.replicas.insert(record.id.clone(), record);
                }
                Action::Stop {
                    replica,
                    node,
                    reason,
                } => {
                    tracing::info!(%replica, %node, ?reason, "stopping replica");
                    let app = self.replicas.get(&replica).map(|r| r.app.clone());
                    let mut event = Event::new(EventKind::Stopping, reason.describe())
                        .replica(&replica)
                        .node(&node);
                    event.app = app;
                    self.outbox.push(event);
                    if reason == reconcile::StopReason::RolledOut
                        && let Some(app) = self.replicas.get(&replica).map(|r| r.app.clone())
                        && let Some(r) = self.rollouts.get_mut(&app)
                    {
                        r.replaced += 1;
                        changes.push(Change::PutRollout(Box::new(r.clone())));
                    }
                    if let Some(rec) = self.replicas.get_mut(&replica) {
                        rec.phase = ReplicaPhase::Stopping;
                        changes.push(Change::PutReplica(rec.clone()));
                    }
                    if let Some(to) = self.agent_addr(&node) {
                        effects.push(Effect::Kill { to, node, replica });
                    }
                }
                Action::End { replica } => {
                    if let Some(rec) = self.replicas.get_mut(&replica) {
                        tracing::info!(%replica, exit = ?rec.exit, "replica ended for good");
                        rec.phase = ReplicaPhase::Ended;
                        rec.pid = None;
                        changes.push(Change::PutReplica(rec.clone()));
                        let event = ended_event(rec);
                        self.outbox.push(event);
                    }
                }
                Action::Forget { replica, reason } => {
                    tracing::info!(%replica, ?reason, "forgetting replica");
                    if reason == reconcile::ForgetReason::Failed
                        && let Some(rec) = self.replicas.get(&replica)
                    {
                        let why = rec
                            .exit
                            .map_or_else(|| "ended".to_owned(), |e| format!("ended with exit {e}"));
                        let app = rec.app.clone();
                        self.back_off(&app, &why, now);
                    }
                    if reason == reconcile::ForgetReason::NodeLost
                        && let Some(rec) = self.replicas.get(&replica)
                        && let Some(port) = rec.port
                        && let Some(node) = self.nodes.get(&rec.node)
                    {
                        effects.push(Effect::Deregister {
                            app: rec.app.clone(),
                            backend: SocketAddr::new(node.addr, port),
                        });
                    }
                    self.replicas.remove(&replica);
                    changes.push(Change::DeleteReplica(replica));
                }
                Action::Pending { app, missing } => {
                    self.pending.insert(app, missing);
                }
                Action::RolloutEnd { app, outcome } => {
                    changes.extend(self.end_rollout(&app, outcome))
                }
                Action::RolloutWait { app, detail } => {
                    if let Some(r) = self.rollouts.get_mut(&app)
                        && r.detail != detail
                    {
                        self.outbox
                            .push(Event::new(EventKind::RolloutStep, detail.clone()).app(&app));
                        r.detail = detail;
                    }
                }
            }
        }
        // A revert is over once no replica of the abandoned generation is left.
        let reverted: Vec<AppName> = self
            .rollouts
            .values()
            .filter(|r| r.state == RolloutState::Reverting)
            .filter(|r| {
                !self
                    .replicas
                    .values()
                    .any(|rep| rep.app == r.app && rep.generation == r.to_generation)
            })
            .map(|r| r.app.clone())
            .collect();
        for app in reverted {
            if let Some(r) = self.rollouts.get_mut(&app) {
                r.state = RolloutState::Reverted;
                tracing::warn!(%app, reason = %r.detail, "rollout reverted");
                self.outbox
                    .push(Event::new(EventKind::RolloutReverted, r.detail.clone()).app(&app));
                changes.push(Change::PutRollout(Box::new(r.clone())));
            }
        }
        if self.seq != seq_before {
            changes.push(Change::Seq(self.seq));
        }
        (changes, effects)
    }

    /// Applies `scale {}` blocks: each app's desired count follows its replicas' CPU.
    fn autoscale(&mut self, now: Instant) -> Vec<Change> {
        let mut changes = Vec::new();
        let names: Vec<AppName> = self.apps.keys().cloned().collect();
        for name in names {
            if self.rollouts.get(&name).is_some_and(Rollout::active) {
                continue;
            }
            let Some(app) = self.apps.get(&name) else {
                continue;
            };
            let Some(scale) = app.spec.scale.clone() else {
                continue;
            };
            let cpu: Vec<f64> = self
                .replicas
                .values()
                .filter(|r| r.app == name && r.generation == app.generation)
                .filter(|r| matches!(r.phase, ReplicaPhase::Running | ReplicaPhase::Healthy))
                .filter_map(|r| {
                    let node = self.nodes.get(&r.node)?;
                    node.replicas
                        .iter()
                        .find(|rep| rep.id == r.id)
                        .map(|rep| f64::from(rep.cpu_pct))
                })
                .collect();
            let limit = app.spec.cpu.map(|c| f64::from(c.millicores) / 1000.0);
            let track = self.scale_tracks.entry(name.clone()).or_default();
            if let Some(desired) =
                super::autoscale::evaluate(track, &scale, app.desired, &cpu, limit, now)
                && let Some(app) = self.apps.get_mut(&name)
            {
                tracing::info!(app = %name, from = app.desired, to = desired, "autoscale");
                self.outbox.push(
                    Event::new(
                        EventKind::Scaled,
                        format!("autoscale: {} to {desired} replica(s)", app.desired),
                    )
                    .app(&name),
                );
                app.desired = desired;
                changes.push(Change::PutApp(Box::new(app.clone())));
            }
        }
        changes
    }

    fn end_rollout(&mut self, app: &AppName, outcome: RolloutEnd) -> Vec<Change> {
        let Some(rollout) = self.rollouts.get_mut(app) else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        match outcome {
            RolloutEnd::Complete => {
                rollout.state = RolloutState::Complete;
                rollout.detail = format!("generation {} serving", rollout.to_generation);
                tracing::info!(%app, generation = rollout.to_generation, "rollout complete");
                self.outbox
                    .push(Event::new(EventKind::RolloutComplete, rollout.detail.clone()).app(app));
            }
            RolloutEnd::Abort(why) => {
                let auto_revert = self
                    .apps
                    .get(app)
                    .is_none_or(|a| a.spec.rollout.auto_revert);
                if auto_revert {
                    rollout.state = RolloutState::Reverting;
                    rollout.detail = format!("reverting: {why}");
                    if let Some(record) = self.apps.get_mut(app) {
                        record.spec = rollout.previous.clone();
                        record.generation = rollout.from_generation;
                        record.desired = rollout.previous_desired;
                        changes.push(Change::PutApp(Box::new(record.clone())));
                    }
                    tracing::warn!(%app, reason = %why, "rollout aborted, reverting");
                    self.outbox.push(
                        Event::new(EventKind::RolloutStep, format!("aborted, reverting: {why}"))
                            .app(app),
                    );
                } else {
                    rollout.state = RolloutState::Failed;
                    rollout.detail = format!("failed (auto-revert off): {why}");
                    tracing::warn!(%app, reason = %why, "rollout failed");
                    self.outbox.push(
                        Event::new(EventKind::RolloutFailed, rollout.detail.clone()).app(app),
                    );
                }
            }
        }
        changes.push(Change::PutRollout(Box::new(rollout.clone())));
        changes
    }

    /// The node confirmed a launch.
    pub fn launched(&mut self, replica: &ReplicaId, pid: u32, port: u16) -> Vec<Change> {
        let Some(rec) = self.replicas.get_mut(replica) else {
            return Vec::new();
        };
        if let Some(b) = self.backoff.get_mut(&rec.app) {
            b.failures = 0;
        }
        if rec.phase == ReplicaPhase::Launching {
            rec.phase = ReplicaPhase::Running;
        }
        rec.pid = (pid != 0).then_some(pid);
        rec.port = (port != 0).then_some(port);
        let change = Change::PutReplica(rec.clone());
        let detail = match rec.port {
            Some(port) => format!("pid {pid}, port {port}"),
            None => format!("pid {pid}"),
        };
        let event = Event::new(EventKind::Launched, detail)
            .app(&rec.app)
            .replica(&rec.id)
            .node(&rec.node);
        self.note(event);
        vec![change]
    }

    /// The node refused or failed a launch: the record goes, the app backs off.
    pub fn launch_failed(&mut self, replica: &ReplicaId, error: &str, now: Instant) -> Vec<Change> {
        let Some(rec) = self.replicas.remove(replica) else {
            return Vec::new();
        };
        self.back_off(&rec.app, error, now);
        tracing::warn!(%replica, app = %rec.app, error, "launch failed");
        self.note(
            Event::new(EventKind::LaunchFailed, error)
                .app(&rec.app)
                .replica(replica)
                .node(&rec.node),
        );
        vec![Change::DeleteReplica(replica.clone())]
    }

    /// A replica of `app` failed (`error`): its next launch waits, longer with each failure in
    /// a row (250 ms doubling, up to [`MAX_BACKOFF`]).
    fn back_off(&mut self, app: &AppName, error: &str, now: Instant) {
        let entry = self.backoff.entry(app.clone()).or_insert(Backoff {
            until: now,
            failures: 0,
            last_error: String::new(),
        });
        entry.failures = entry.failures.saturating_add(1);
        let wait = Duration::from_millis(250)
            .saturating_mul(1 << entry.failures.min(16).saturating_sub(1))
            .min(MAX_BACKOFF);
        entry.until = now + wait;
        entry.last_error = error.to_string();
        tracing::info!(%app, retry_in_ms = wait.as_millis(), "launches back off");
    }

    /// DIED from a node: the replica's exit is kept (for `status`), and when the node does not
    /// restart it, its fate is decided now ([`reconcile::fate`]) rather than at the next
    /// heartbeat: done replicas end here; those to replace are left to reconcile, which sees
    /// them ended in the node's reports (or gone from them).
    pub fn died(&mut self, died: &Died) -> Vec<Change> {
        let Some(rec) = self.replicas.get_mut(&died.replica) else {
            return Vec::new();
        };
        if rec.node != died.node {
            return Vec::new();
        }
        rec.exit = Some(died.exit);
        let kind = if died.exit == Exit::OomKilled {
            EventKind::OomKilled
        } else {
            EventKind::Exited
        };
        let mut detail = format!("exit {}", died.exit);
        if died.restarting {
            detail.push_str("; the node restarts it");
        }
        self.outbox.push(
            Event::new(kind, detail)
                .app(&rec.app)
                .replica(&rec.id)
                .node(&rec.node),
        );
        let Some(rec) = self.replicas.get_mut(&died.replica) else {
            return Vec::new();
        };
        let policy = self.apps.get(&rec.app).map(|a| a.spec.restart);
        let done = !died.restarting
            && !matches!(rec.phase, ReplicaPhase::Stopping | ReplicaPhase::Ended)
            && policy.is_some_and(|p| reconcile::fate(p, died.exit.success()) == Fate::Done);
        if done {
            tracing::info!(replica = %rec.id, exit = %died.exit, "replica ended for good");
            rec.phase = ReplicaPhase::Ended;
            rec.pid = None;
        }
        let change = Change::PutReplica(rec.clone());
        if done {
            let event = ended_event(rec);
            self.note(event);
        }
        vec![change]
    }

    /// Notes each node that fell silent past the expiry since its last heartbeat, once.
    fn note_lost_nodes(&mut self, now: Instant) {
        let expiry = self.timings.node_expiry;
        let newly: Vec<(NodeId, u64)> = self
            .nodes
            .values()
            .filter(|n| now.saturating_duration_since(n.last_seen) > expiry)
            .filter(|n| !self.lost.contains(&n.id))
            .map(|n| {
                let silent = now.saturating_duration_since(n.last_seen).as_millis();
                (n.id.clone(), u64::try_from(silent).unwrap_or(u64::MAX))
            })
            .collect();
        for (node, silent_ms) in newly {
            self.lost.insert(node.clone());
            self.note(
                Event::new(EventKind::NodeLost, format!("silent for {silent_ms} ms")).node(&node),
            );
        }
    }

    /// The daemon's latest finding of which running rollouts' new replicas the edge routes to
    /// (see [`State::edge_waits`]); whether that changed anything.
    pub fn set_edge_ready(&mut self, ready: HashSet<AppName>) -> bool {
        let changed = self.edge_ready != ready;
        self.edge_ready = ready;
        changed
    }
}

/// Stored generations kept per app (older ones are forgotten as new ones come).
pub const GENERATIONS_KEPT: u64 = 20;

/// Why PROMOTE or ROLLBACK changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutCommandError {
    #[error("no such app")]
    UnknownApp,
    #[error("no canary of the app waits to be promoted")]
    NoCanary,
    #[error("generation {0} is what runs already")]
    AlreadyThere(u64),
    #[error("a rollout of the app is running; roll it back first")]
    Busy,
}

/// The changes that keep `record`'s generation and forget the one [`GENERATIONS_KEPT`] back.
fn generation_kept(record: &AppRecord, now_ms: u64) -> Vec<Change> {
    let app = record.spec.name.clone();
    let mut out = vec![Change::PutGeneration(Box::new(GenerationRecord {
        app: app.clone(),
        generation: record.generation,
        at_ms: now_ms,
        desired: record.desired,
        spec: record.spec.clone(),
    }))];
    if let Some(old) = record.generation.checked_sub(GENERATIONS_KEPT)
        && old > 0
    {
        out.push(Change::DeleteGeneration(app, old));
    }
    out
}

/// The event of `rec` ending for good.
fn ended_event(rec: &ReplicaRecord) -> Event {
    let detail = match rec.exit {
        Some(exit) if exit.success() => "finished".to_owned(),
        Some(exit) => format!("exit {exit}; not restarted (restart policy)"),
        None => "ended".to_owned(),
    };
    Event::new(EventKind::Ended, detail)
        .app(&rec.app)
        .replica(&rec.id)
        .node(&rec.node)
}

#[cfg(test)]
mod tests;
