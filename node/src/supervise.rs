//! The replica lifecycle as a pure state machine: which phase a replica is in, and whether an
//! exit, a failed launch or a failed health check leads to a restart and after how long.
//!
//! ```text
//!         launch or restart (Replica::start), or adoption
//!                            │
//!                            ▼
//!        ┌─────────────── Starting ──── first probe passes ──────▶ Healthy
//!        │                   │            (or no health block)      │    ▲
//!        │                   │ no pass within retries × interval    │    │ probe passes
//!        │                   ▼                                      ▼    │
//!        │               Unhealthy ◀──── retries consecutive failures ───┘
//!        │                   │
//!        │                   │ policy ≠ never: restart        kill (any running phase)
//!        │                   ▼                                      │
//!        │               Stopping ◀─────────────────────────────────┘
//!        │                   │ SIGTERM, drain, SIGKILL, reaped
//!        ▼ process exits     ▼
//!  ┌─────────────────────────────────────────────────────────────────────────┐
//!  │ stopped by kill ──────────────────────────────────────────▶ Exited     │
//!  │ stopped for restart, or policy says restart ─▶ BackingOff ─▶ Starting  │
//!  │ otherwise: exit code 0 ─▶ Exited, anything else ─▶ Failed              │
//!  └─────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Restart policy: `always` restarts after any exit, `on-failure` after a non-zero exit, a
//! signal, an unknown status (an adopted process) or a failed launch, `never` after nothing (an
//! unhealthy replica under `never` keeps running and keeps being probed). Back-off doubles from
//! [`BackoffPolicy::initial`] up to [`BackoffPolicy::max`] and starts over once a replica has
//! stayed up for [`BackoffPolicy::reset_after`], so a crash loop never becomes a fork storm.
//!
//! This module owns no process, timer or clock: the replica task (module `replica`) feeds it
//! what happened (with durations it measured) and carries out what it answers, starting every
//! process through the one start path, `Replica::start`.

use std::fmt;
use std::time::Duration;

use skr8tr_proto::manifest::RestartPolicy;

/// Where a replica is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Launched; its health check has not passed yet.
    Starting,
    /// Running and passing its health check (or running, when it has none).
    Healthy,
    /// Running and failing its health check.
    Unhealthy,
    /// Being stopped: SIGTERM sent, waiting for it to exit within `drain`.
    Stopping,
    /// Exited; waiting for the back-off delay before it is started again.
    BackingOff,
    /// Ended for good, successfully or because it was stopped (terminal).
    Exited,
    /// Ended for good with a failure the policy does not restart (terminal).
    Failed,
}

impl Phase {
    /// `Exited` or `Failed`: nothing will run for this replica any more.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Exited | Self::Failed)
    }

    /// A process exists for the replica in this phase.
    #[must_use]
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Self::Starting | Self::Healthy | Self::Unhealthy | Self::Stopping
        )
    }

    /// The lowercase word `status` shows.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Stopping => "stopping",
            Self::BackingOff => "backing-off",
            Self::Exited => "exited",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a replica's process ended (serialised into replica records as `{"Code": 0}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Termination {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
    /// The kernel's OOM killer killed it (SIGKILL) for going over its `ram` limit (seen in its
    /// memory cgroup's `oom_kill` counter).
    OomKilled,
    /// It ended, but the status is unknown: it was adopted after an agent restart, so it was
    /// not our child and could not be reaped by us.
    Unknown,
    /// No process ran: the (re)launch itself failed.
    LaunchFailed,
}

impl Termination {
    /// Exit code 0.
    #[must_use]
    pub fn is_success(self) -> bool {
        self == Self::Code(0)
    }
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit code {c}"),
            Self::Signal(s) => write!(f, "signal {s}"),
            Self::OomKilled => f.write_str("oom-killed (over its ram limit)"),
            Self::Unknown => f.write_str("unknown status (adopted process)"),
            Self::LaunchFailed => f.write_str("launch failed"),
        }
    }
}

/// Why the node stops a running replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The Conductor (or a shutdown) asked: the replica ends for good.
    Kill,
    /// It failed its health check and the policy restarts it.
    Restart,
}

/// Exponential back-off parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Delay before the first restart of a crash loop.
    pub initial: Duration,
    /// The delay doubles per consecutive restart, up to this.
    pub max: Duration,
    /// A replica that stayed up this long before exiting starts over at `initial`.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
        }
    }
}

/// What the replica task must do after an exit or a failed launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitDecision {
    /// Start it again after this delay (the phase is now `BackingOff`).
    Restart { after: Duration },
    /// Nothing more: the phase is now this terminal one.
    Finish(Phase),
}

/// What the replica task must do when the health check turned bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnhealthyAction {
    /// Stop it with [`StopCause::Restart`], then restart it.
    Restart,
    /// Leave it running (policy `never`) and keep probing.
    KeepRunning,
}

/// One replica's lifecycle: phase, restart count and back-off.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    policy: RestartPolicy,
    backoff: BackoffPolicy,
    phase: Phase,
    /// Consecutive quick restarts: the exponent of the next delay.
    attempt: u32,
    restarts: u32,
    stop_cause: Option<StopCause>,
}

impl Lifecycle {
    /// A replica that is about to be launched for the first time (phase `Starting`).
    #[must_use]
    pub fn new(policy: RestartPolicy, backoff: BackoffPolicy) -> Self {
        Self {
            policy,
            backoff,
            phase: Phase::Starting,
            attempt: 0,
            restarts: 0,
            stop_cause: None,
        }
    }

    #[must_use]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// How many times the replica was started again after its first launch.
    #[must_use]
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Sets the restart count (an adopted replica keeps the count its replica record had).
    pub fn set_restarts(&mut self, restarts: u32) {
        self.restarts = restarts;
    }

    /// A process was started (first launch, adoption or restart). Returns `true` when this is a
    /// restart, i.e. the replica was backing off.
    pub fn on_started(&mut self) -> bool {
        let restart = self.phase == Phase::BackingOff;
        if restart {
            self.restarts = self.restarts.saturating_add(1);
        }
        self.phase = Phase::Starting;
        self.stop_cause = None;
        restart
    }

    /// The health check passed (or there is none). Returns `true` when the phase changed.
    pub fn on_healthy(&mut self) -> bool {
        if matches!(self.phase, Phase::Starting | Phase::Unhealthy) {
            self.phase = Phase::Healthy;
            true
        } else {
            false
        }
    }

    /// The health check failed for good (see the health module). `None` when the phase does
    /// not allow it (not running, or already unhealthy).
    pub fn on_unhealthy(&mut self) -> Option<UnhealthyAction> {
        if !matches!(self.phase, Phase::Starting | Phase::Healthy) {
            return None;
        }
        self.phase = Phase::Unhealthy;
        Some(match self.policy {
            RestartPolicy::Never => UnhealthyAction::KeepRunning,
            RestartPolicy::Always | RestartPolicy::OnFailure => UnhealthyAction::Restart,
        })
    }

    /// The node begins stopping the running process.
    pub fn begin_stop(&mut self, cause: StopCause) {
        if self.phase.is_running() {
            self.phase = Phase::Stopping;
            // A kill overrides a restart already under way, never the reverse.
            if self.stop_cause != Some(StopCause::Kill) {
                self.stop_cause = Some(cause);
            }
        }
    }

    /// A kill arrived while no process runs (backing off): the replica ends here.
    pub fn on_kill_while_idle(&mut self) {
        if !self.phase.is_terminal() {
            self.phase = Phase::Exited;
        }
    }

    /// The process ended after running for `uptime`.
    pub fn on_exit(&mut self, termination: Termination, uptime: Duration) -> ExitDecision {
        let cause = self.stop_cause.take();
        if uptime >= self.backoff.reset_after {
            self.attempt = 0;
        }
        let restart = match cause {
            Some(StopCause::Kill) => false,
            Some(StopCause::Restart) => true,
            None => self.policy_restarts(termination),
        };
        if restart {
            self.schedule_restart()
        } else {
            let phase = if cause == Some(StopCause::Kill) || termination.is_success() {
                Phase::Exited
            } else {
                Phase::Failed
            };
            self.phase = phase;
            ExitDecision::Finish(phase)
        }
    }

    /// A restart attempt could not start a process.
    pub fn on_launch_failed(&mut self) -> ExitDecision {
        self.stop_cause = None;
        if self.policy_restarts(Termination::LaunchFailed) {
            self.schedule_restart()
        } else {
            self.phase = Phase::Failed;
            ExitDecision::Finish(Phase::Failed)
        }
    }

    fn policy_restarts(&self, termination: Termination) -> bool {
        match self.policy {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !termination.is_success(),
            RestartPolicy::Never => false,
        }
    }

    fn schedule_restart(&mut self) -> ExitDecision {
        let after = backoff_delay(&self.backoff, self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::BackingOff;
        ExitDecision::Restart { after }
    }
}

/// `initial × 2^attempt`, capped at `max`.
#[must_use]
pub fn backoff_delay(policy: &BackoffPolicy, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    policy
        .initial
        .checked_mul(factor)
        .map_or(policy.max, |d| d.min(policy.max))
}

#[cfg(test)]
mod tests;
