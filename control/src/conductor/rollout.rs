//! Rollouts: replacing an app's replicas with a new generation one at a time, surge first,
//! without a moment of fewer healthy replicas than desired, and reverting on failure.
//!
//! ```text
//! ROLLOUT ─▶ Running: launch 1 new ─▶ new healthy (or settled) and the edge routes to it
//!               ▲                         │
//!               └── stop 1 old (the node deregisters it, waits until the edge drained it,
//!                   then SIGTERM, drain, SIGKILL) ◀┘        … until no old is left ─▶ Complete
//! a new replica not healthy within `healthy-deadline` ─▶ Reverting (previous spec back, its
//!   missing replicas relaunched, every new one stopped) ─▶ Reverted   (no auto-revert: Failed)
//! ```
//! This module holds the durable record and the pure per-app planning rule; `reconcile` calls
//! [`plan_app`] instead of its usual rule for an app whose rollout is running.

use skr8tr_proto::manifest::App;
use skr8tr_proto::name::{AppName, ReplicaId};
use skr8tr_proto::wire::RolloutState;

use super::model::{AppRecord, ReplicaPhase, ReplicaRecord};

/// The durable record of an app's current or last rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub app: AppName,
    pub from_generation: u64,
    pub to_generation: u64,
    /// The spec and count to restore on revert.
    pub previous: App,
    pub previous_desired: u32,
    pub state: RolloutState,
    pub started_ms: u64,
    /// Old replicas stopped so far.
    pub replaced: u32,
    /// One line for people: what it waits for, or why it ended.
    pub detail: String,
}

impl Rollout {
    /// Whether the rollout still decides what happens to the app.
    #[must_use]
    pub fn active(&self) -> bool {
        matches!(
            self.state,
            RolloutState::Running | RolloutState::Canary | RolloutState::Reverting
        )
    }
}

/// What the rollout wants this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Place this many new-generation replicas (normally 1: the surge).
    Launch(u32),
    /// Stop this old replica (it is drained at the edge before it is signalled).
    StopOld(ReplicaId),
    /// A new replica missed its deadline: revert (or fail without auto-revert).
    Abort(String),
    /// Every old replica is gone and enough new ones are healthy.
    Complete,
    /// Waiting; the string says for what.
    Wait(String),
}

/// The replicas of one app as the rollout sees them.
#[derive(Debug)]
pub struct AppView<'a> {
    pub record: &'a AppRecord,
    /// Every replica of the app, stopping ones included.
    pub replicas: Vec<&'a ReplicaRecord>,
    /// The Tower has every healthy new replica and every subscriber routes by that set.
    pub edge_ready: bool,
    pub now_ms: u64,
}

/// The next step of a running rollout (`Reverting` is left to the normal rule, which restores
/// the previous generation and then supersedes the new one).
#[must_use]
pub fn plan_app(rollout: &Rollout, view: &AppView<'_>) -> Step {
    let policy = &view.record.spec.rollout;
    let desired = view.record.desired;
    let live = |r: &&&ReplicaRecord| r.phase != ReplicaPhase::Stopping;
    let new: Vec<&&ReplicaRecord> = view
        .replicas
        .iter()
        .filter(live)
        .filter(|r| r.generation == rollout.to_generation)
        .collect();
    let old: Vec<&&ReplicaRecord> = view
        .replicas
        .iter()
        .filter(live)
        .filter(|r| r.generation != rollout.to_generation)
        .collect();
    let old_stopping = view
        .replicas
        .iter()
        .any(|r| r.phase == ReplicaPhase::Stopping && r.generation != rollout.to_generation);
    let deadline_ms = u64::try_from(policy.healthy_deadline.as_millis()).unwrap_or(u64::MAX);
    let settle_ms = u64::try_from(policy.settle.as_millis()).unwrap_or(u64::MAX);
    let has_health = view.record.spec.health.is_some();
    // A new replica counts as ready when its health check passes, or — without a health
    // check — once it has run for `settle`.
    let ready = |r: &ReplicaRecord| {
        r.phase == ReplicaPhase::Healthy
            && (has_health || view.now_ms.saturating_sub(r.placed_at_ms) >= settle_ms)
    };
    if let Some(late) = new.iter().find(|r| {
        r.phase != ReplicaPhase::Healthy && view.now_ms.saturating_sub(r.placed_at_ms) > deadline_ms
    }) {
        return Step::Abort(format!(
            "replica {} not healthy within {} ms",
            late.id, deadline_ms
        ));
    }
    let old_live = u32::try_from(old.len()).unwrap_or(u32::MAX);
    let have_new = u32::try_from(new.len()).unwrap_or(u32::MAX);
    if rollout.state == RolloutState::Canary {
        // The canaries run beside every old replica; nothing old stops until PROMOTE.
        let want = canary_count(policy.canary, desired);
        if have_new < want {
            return Step::Launch(want - have_new);
        }
        if let Some(not_ready) = new.iter().find(|r| !ready(r)) {
            return Step::Wait(format!("canary {} to become healthy", not_ready.id));
        }
        return Step::Wait(format!(
            "canary: {have_new} new beside {old_live} old; skr8tr promote {app} or skr8tr rollback {app}",
            app = rollout.app
        ));
    }
    if old_live == 0 {
        let ready_new = new.iter().filter(|r| ready(r)).count();
        if have_new < desired {
            return Step::Launch(desired - have_new);
        }
        if ready_new >= desired as usize && !old_stopping {
            return Step::Complete;
        }
        return Step::Wait("the last old replicas to stop and the new ones to be ready".into());
    }
    // Surge: one more than the replicas still missing.
    let target_new = desired
        .saturating_sub(old_live)
        .saturating_add(1)
        .min(desired.max(1));
    if have_new < target_new {
        return Step::Launch(target_new - have_new);
    }
    if let Some(not_ready) = new.iter().find(|r| !ready(r)) {
        return Step::Wait(format!("new replica {} to become healthy", not_ready.id));
    }
    if !view.edge_ready {
        return Step::Wait("the ingress to route to the new replica".into());
    }
    if old_stopping {
        return Step::Wait("the previous old replica to finish draining".into());
    }
    match old.iter().min_by_key(|r| (r.placed_at_ms, r.id.as_str())) {
        Some(victim) => Step::StopOld(victim.id.clone()),
        None => Step::Wait("nothing".into()),
    }
}

/// How many canaries a rollout of an app wanting `desired` replicas runs for `canary N`: N,
/// but at least one and at most `desired` (an app scaled to 0 still gets one to try).
#[must_use]
pub fn canary_count(canary: u32, desired: u32) -> u32 {
    canary.min(desired).max(1)
}

#[cfg(test)]
mod tests;
