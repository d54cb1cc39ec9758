//! The Conductor's Prometheus metrics (SPEC §7.4, `/metrics` on its admin listener).
//!
//! ```text
//! events (placed, launch-failed, rollout-*) ──observe_event──▶ counters
//! command socket ──command(verb, result) / auth_rejected(reason)──▶ counters
//! reconcile pass ──reconciled(seconds)──▶ histogram
//! scrape ──render(state)──▶ gauges set from the state, then the text format
//! ```
//! Owns the metric names. Gauges (nodes by state, apps, replicas by state) are read from the
//! state at each scrape, so they cannot drift from it; counters count what happened since the
//! daemon started. Label values come from fixed sets (verbs, result codes, phases, reasons),
//! never from a request's free text, so a flood of odd requests cannot grow the series.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use skr8tr_proto::wire::{EventEntry, EventKind};

use super::model::ReplicaPhase;
use super::state::State;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    verb: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

const PHASES: [ReplicaPhase; 5] = [
    ReplicaPhase::Launching,
    ReplicaPhase::Running,
    ReplicaPhase::Healthy,
    ReplicaPhase::Stopping,
    ReplicaPhase::Ended,
];

/// The Conductor's series.
#[derive(Debug)]
pub struct ConductorMetrics {
    registry: Registry,
    nodes: Family<StateLabel, Gauge>,
    apps: Gauge,
    replicas: Family<StateLabel, Gauge>,
    placements: Counter,
    launch_failures: Counter,
    reconcile_seconds: Histogram,
    commands: Family<CommandLabels, Counter>,
    auth_rejections: Family<ReasonLabel, Counter>,
    rollouts: Family<OutcomeLabel, Counter>,
    events: Family<KindLabel, Counter>,
    uptime_start: Instant,
    uptime_seconds: Gauge<f64, AtomicU64>,
}

impl Default for ConductorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ConductorMetrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("skr8tr_conductor");
        let nodes = Family::<StateLabel, Gauge>::default();
        let apps = Gauge::default();
        let replicas = Family::<StateLabel, Gauge>::default();
        let placements = Counter::default();
        let launch_failures = Counter::default();
        // 100 µs to about 3 s.
        let reconcile_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let commands = Family::<CommandLabels, Counter>::default();
        let auth_rejections = Family::<ReasonLabel, Counter>::default();
        let rollouts = Family::<OutcomeLabel, Counter>::default();
        let events = Family::<KindLabel, Counter>::default();
        let uptime_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "nodes",
            "Nodes by state (live: heard within the expiry; lost: silent past it)",
            nodes.clone(),
        );
        registry.register("apps", "Apps the Conductor runs", apps.clone());
        registry.register(
            "replicas",
            "Replica records by state (launching, running, healthy, stopping, ended)",
            replicas.clone(),
        );
        registry.register(
            "placements",
            "Replicas placed on a node (LAUNCH sent)",
            placements.clone(),
        );
        registry.register(
            "launch_failures",
            "Launches a node refused or failed",
            launch_failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile pass took (plan and apply, not the calls it starts)",
            reconcile_seconds.clone(),
        );
        registry.register(
            "commands",
            "Operator commands by verb and result (ok, or the error code)",
            commands.clone(),
        );
        registry.register(
            "auth_rejections",
            "Datagrams refused for their signature, by reason",
            auth_rejections.clone(),
        );
        registry.register(
            "rollouts",
            "Rollouts that ended, by outcome (complete, reverted, failed)",
            rollouts.clone(),
        );
        registry.register("events", "Events noted, by kind", events.clone());
        registry.register(
            "uptime_seconds",
            "Seconds since this Conductor started",
            uptime_seconds.clone(),
        );
        Self {
            registry,
            nodes,
            apps,
            replicas,
            placements,
            launch_failures,
            reconcile_seconds,
            commands,
            auth_rejections,
            rollouts,
            events,
            uptime_start: Instant::now(),
            uptime_seconds,
        }
    }

    /// Counts what an event says happened.
    pub fn observe_event(&self, event: &EventEntry) {
        self.events
            .get_or_create(&KindLabel {
                kind: event.kind.keyword(),
            })
            .inc();
        match event.kind {
            EventKind::Placed => {
                self.placements.inc();
            }
            EventKind::LaunchFailed => {
                self.launch_failures.inc();
            }
            EventKind::RolloutComplete => self.rollout("complete"),
            EventKind::RolloutReverted => self.rollout("reverted"),
            EventKind::RolloutFailed => self.rollout("failed"),
            _ => {}
        }
    }

    fn rollout(&self, outcome: &'static str) {
        self.rollouts.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// One operator command answered: `result` is `ok` or the error code.
    pub fn command(&self, verb: &'static str, result: &'static str) {
        self.commands
            .get_or_create(&CommandLabels { verb, result })
            .inc();
    }

    /// A datagram refused for its signature (`unsigned`, `bad_signature`, `replayed`, …).
    pub fn auth_rejected(&self, reason: &'static str) {
        self.auth_rejections
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// One reconcile pass took `seconds`.
    pub fn reconciled(&self, seconds: f64) {
        self.reconcile_seconds.observe(seconds);
    }

    /// The text format, with the gauges read from `state` at `now`.
    #[must_use]
    pub fn render(&self, state: &State, now: Instant) -> String {
        let live = state.live_nodes(now).count();
        let lost = state.nodes.len().saturating_sub(live);
        for (label, n) in [("live", live), ("lost", lost)] {
            self.nodes
                .get_or_create(&StateLabel { state: label })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.apps
            .set(i64::try_from(state.apps.len()).unwrap_or(i64::MAX));
        for phase in PHASES {
            let n = state.replicas.values().filter(|r| r.phase == phase).count();
            self.replicas
                .get_or_create(&StateLabel {
                    state: phase.word(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.uptime_seconds.set(
            now.saturating_duration_since(self.uptime_start)
                .as_secs_f64(),
        );
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
