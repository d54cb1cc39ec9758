//! The task that supervises one replica: one tokio task per replica, driven by a `select!`
//! over its process's exit, its health-probe timer, its back-off timer, its log-poll tick and
//! the engine's commands. It applies the pure [`Lifecycle`] and [`HealthTracker`] decisions,
//! keeps the replica's [`View`] (what `status` and `logs` read) and its replica record current,
//! and emits [`Event`]s.
//!
//! It owns the replica's process from its first start (done by the engine through
//! [`Replica::start`], so launch errors are returned to the caller) until the replica ends for
//! good, and starts every later process through the same function; it never touches another
//! replica. Invariant: when the task returns, either the replica is terminal (no process, port
//! released, record marked ended) or it was detached (process left running, record kept for the
//! next agent to adopt).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Command, Ctx, Replica, Running, SharedView, StartKind, View, lock_view};
use crate::events::{Event, StopGate};
use crate::health::{self, HealthTracker, ProbeError, Verdict};
use crate::limits;
use crate::logs;
use crate::process;
use crate::records::EndedRecord;
use crate::supervise::{ExitDecision, Lifecycle, Phase, StopCause, Termination, UnhealthyAction};
use skr8tr_proto::manifest::Hypervisor;

type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), ProbeError>> + Send>>;

/// The supervision state of one replica.
pub(crate) struct ReplicaTask {
    replica: Replica,
    ctx: Arc<Ctx>,
    view: SharedView,
    lifecycle: Lifecycle,
    proc: Option<Running>,
    adopted: bool,
    health: Option<HealthTracker>,
    next_probe: Option<Instant>,
    probe: Option<ProbeFuture>,
    restart_at: Option<Instant>,
}

impl std::fmt::Debug for ReplicaTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaTask")
            .field("id", &self.replica.id)
            .field("phase", &self.lifecycle.phase())
            .field("pid", &self.proc.as_ref().map(|p| p.pid))
            .finish_non_exhaustive()
    }
}

async fn wait_proc(proc: &mut Option<Running>) -> Termination {
    match proc {
        Some(running) => running.handle.wait().await,
        None => std::future::pending().await,
    }
}

/// `termination`, or [`Termination::OomKilled`] when it is a SIGKILL and the process's memory
/// cgroup counted an OOM kill.
fn oom_or(termination: Termination, running: &Running) -> Termination {
    if termination == Termination::Signal(libc::SIGKILL) && limits::oom_killed(&running.cgroup_dirs)
    {
        Termination::OomKilled
    } else {
        termination
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn poll_probe(probe: &mut Option<ProbeFuture>) -> Result<(), ProbeError> {
    match probe {
        Some(fut) => fut.await,
        None => std::future::pending().await,
    }
}

impl ReplicaTask {
    /// Takes over `running`, the replica's current process (`adopted` from an earlier agent,
    /// which had restarted it `restarts` times, or just started), and records it.
    pub(crate) fn new(
        replica: Replica,
        ctx: Arc<Ctx>,
        view: SharedView,
        running: Running,
        adopted: bool,
        restarts: u32,
    ) -> Self {
        let mut lifecycle = Lifecycle::new(replica.app.restart, ctx.config.backoff);
        lifecycle.set_restarts(restarts);
        let mut task = Self {
            replica,
            ctx,
            view,
            lifecycle,
            proc: Some(running),
            adopted,
            health: None,
            next_probe: None,
            probe: None,
            restart_at: None,
        };
        // Recorded before `launch` returns: an agent crash right after must not orphan it.
        task.record_start();
        task
    }

    /// Supervises the replica until it ends for good (or the engine aborts the task).
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.announce_start();
        let mut log_tick = tokio::time::interval(self.ctx.config.log_poll);
        log_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Kill(done)) => {
                        self.kill().await;
                        let _ = done.send(());
                        return;
                    }
                    // The engine is gone without killing us: leave the process to the next
                    // agent, which adopts it from its record.
                    None => return,
                },
                termination = wait_proc(&mut self.proc) => {
                    self.on_exit(termination, None);
                }
                () = sleep_opt(self.next_probe) => self.start_probe(),
                result = poll_probe(&mut self.probe) => self.on_probe(result).await,
                () = sleep_opt(self.restart_at) => self.restart().await,
                _ = log_tick.tick() => self.view().logs.poll(),
            }
            if self.lifecycle.phase().is_terminal() {
                return;
            }
        }
    }

    fn view(&self) -> MutexGuard<'_, View> {
        lock_view(&self.view)
    }

    fn emit(&self, event: Event) {
        self.ctx.events.send(event);
    }

    /// A process is running (first start, adoption or restart): show it and record it.
    fn record_start(&mut self) {
        let Some(running) = &self.proc else {
            return;
        };
        let (pid, limits) = (running.pid, running.limits);
        self.lifecycle.on_started();
        {
            let mut view = self.view();
            view.phase = Phase::Starting;
            view.pid = Some(pid);
            view.limits = limits;
            view.restarts = self.lifecycle.restarts();
            view.started_at = Some(std::time::Instant::now());
            view.adopted = self.adopted;
        }
        self.persist();
    }

    /// Tells the glue about the started process and starts judging its health.
    fn announce_start(&mut self) {
        let Some(pid) = self.proc.as_ref().map(|r| r.pid) else {
            return;
        };
        self.emit(Event::Started {
            replica: self.replica.id.clone(),
            app: self.replica.app.name.clone(),
            pid,
            port: self.replica.port,
            adopted: self.adopted,
        });
        match &self.replica.app.health {
            Some(h) => {
                let now = Instant::now();
                self.health = Some(HealthTracker::new(
                    h,
                    self.ctx.config.fast_probe,
                    now.into_std(),
                ));
                self.next_probe = Some(now);
            }
            None => self.became_healthy(),
        }
    }

    fn persist(&self) {
        let Some(running) = &self.proc else {
            return;
        };
        let record = self.replica.record(running, self.lifecycle.restarts());
        if let Err(e) = self.ctx.store.upsert(record) {
            tracing::error!(replica = %self.replica.id, error = %e, "cannot write the replica record");
        }
    }

    fn became_healthy(&mut self) {
        if self.lifecycle.on_healthy() {
            self.view().phase = Phase::Healthy;
            self.emit(Event::Healthy {
                replica: self.replica.id.clone(),
                app: self.replica.app.name.clone(),
                port: self.replica.port,
            });
        }
    }

    fn start_probe(&mut self) {
        self.next_probe = None;
        let Some(health) = &self.replica.app.health else {
            return;
        };
        let (check, port, timeout) = (health.check.clone(), self.replica.port, health.timeout);
        self.probe = Some(Box::pin(async move {
            health::probe(&check, port, timeout).await
        }));
    }

    async fn on_probe(&mut self, result: Result<(), ProbeError>) {
        self.probe = None;
        let Some(tracker) = &mut self.health else {
            return;
        };
        let now = Instant::now();
        if let Err(e) = &result {
            tracing::debug!(replica = %self.replica.id, error = %e, "health probe failed");
        }
        let verdict = tracker.record(result.is_ok(), now.into_std());
        self.next_probe = Some(now + tracker.next_delay());
        match verdict {
            Verdict::Unchanged => {}
            Verdict::BecameHealthy => self.became_healthy(),
            Verdict::BecameUnhealthy => {
                let Some(action) = self.lifecycle.on_unhealthy() else {
                    return;
                };
                self.view().phase = Phase::Unhealthy;
                self.emit(Event::Unhealthy {
                    replica: self.replica.id.clone(),
                    app: self.replica.app.name.clone(),
                    port: self.replica.port,
                });
                if action == UnhealthyAction::Restart {
                    let note = match &result {
                        Err(e) => format!("health check failed ({e}); restarting"),
                        Ok(()) => "health check failed; restarting".to_owned(),
                    };
                    logs::append_note(&self.replica.log_path, &note);
                    if let Some((termination, uptime)) = self.stop(StopCause::Restart).await {
                        self.on_exit(termination, Some(uptime));
                    }
                }
            }
        }
    }

    /// Stops the running process: `Stopping` event (waiting for its gate), SIGTERM, drain,
    /// SIGKILL. Returns how it ended and how long it ran; `None` when nothing was running.
    async fn stop(&mut self, cause: StopCause) -> Option<(Termination, Duration)> {
        let running = self.proc.as_mut()?;
        self.lifecycle.begin_stop(cause);
        lock_view(&self.view).phase = Phase::Stopping;
        self.probe = None;
        self.next_probe = None;
        let (gate, released) = StopGate::new();
        self.ctx.events.send(Event::Stopping {
            replica: self.replica.id.clone(),
            app: self.replica.app.name.clone(),
            port: self.replica.port,
            gate,
        });
        let gate_timeout = self.ctx.config.stop_gate_timeout;
        let pid = running.pid;
        let drain = self.replica.app.drain;
        let qmp = self
            .replica
            .app
            .vm
            .as_ref()
            .filter(|vm| vm.hypervisor == Hypervisor::Qemu)
            .map(|_| {
                let work_dir = crate::spawn::vm_work_dir(&self.ctx.config.state_dir);
                crate::spawn::plan::qmp_socket(&work_dir, &self.replica.id)
            });
        let log_path = self.replica.log_path.clone();
        let termination = tokio::select! {
            _ = tokio::time::timeout(gate_timeout, released) => match &qmp {
                Some(socket) => {
                    logs::append_note(&log_path, "pressing the guest's ACPI power button (QMP system_powerdown)");
                    let (t, clean) = process::stop_vm(&mut running.handle, pid, socket, drain).await;
                    let how = if clean {
                        "the guest powered off"
                    } else {
                        "the guest did not power off: QEMU signalled"
                    };
                    logs::append_note(&log_path, how);
                    let _ = std::fs::remove_file(socket);
                    t
                }
                None => process::stop_group(&mut running.handle, pid, drain).await,
            },
            t = running.handle.wait() => {
                process::kill_group_leftovers(pid);
                t
            }
        };
        let uptime = running.started.elapsed();
        let termination = oom_or(termination, running);
        // on_exit does the rest of the bookkeeping; the process is already reaped, so the
        // exit branch of the select loop would see it again: take it out now.
        let _ = self.proc_cleanup();
        Some((termination, uptime))
    }

    /// Removes the ended process: its cgroups, a final log poll.
    fn proc_cleanup(&mut self) -> Option<Running> {
        let running = self.proc.take()?;
        limits::remove_cgroup_dirs(&running.cgroup_dirs);
        let mut view = self.view();
        view.pid = None;
        view.logs.finish();
        drop(view);
        Some(running)
    }

    /// The process ended (by itself, or stopped with `uptime` already measured).
    fn on_exit(&mut self, termination: Termination, uptime: Option<Duration>) {
        let uptime = match (uptime, self.proc.as_ref()) {
            (Some(u), _) => u,
            (None, Some(running)) => running.started.elapsed(),
            (None, None) => Duration::ZERO,
        };
        let mut termination = termination;
        if let Some(running) = self.proc.as_ref() {
            // Helpers the leader left behind (its process group) do not outlive it.
            process::kill_group_leftovers(running.pid);
            termination = oom_or(termination, running);
        }
        let _ = self.proc_cleanup();
        self.health = None;
        self.probe = None;
        self.next_probe = None;
        let decision = self.lifecycle.on_exit(termination, uptime);
        self.after_exit(termination, decision);
    }

    fn after_exit(&mut self, termination: Termination, decision: ExitDecision) {
        {
            let mut view = self.view();
            view.last_exit = Some(termination);
            view.phase = self.lifecycle.phase();
        }
        let restart_in = match decision {
            ExitDecision::Restart { after } => {
                logs::append_note(
                    &self.replica.log_path,
                    &format!("{termination}; restarting in {after:?}"),
                );
                self.restart_at = Some(Instant::now() + after);
                Some(after)
            }
            ExitDecision::Finish(phase) => {
                if !matches!(termination, Termination::Signal(_)) || phase == Phase::Failed {
                    logs::append_note(&self.replica.log_path, &format!("{termination}"));
                }
                self.finish(phase);
                None
            }
        };
        self.emit(Event::Exited {
            replica: self.replica.id.clone(),
            app: self.replica.app.name.clone(),
            termination,
            restart_in,
        });
    }

    /// The replica ended for good: free its port, mark its record ended (kept until the
    /// engine forgets the replica, so a restarted agent still reports how it ended).
    fn finish(&mut self, phase: Phase) {
        self.restart_at = None;
        if let Some(port) = self.replica.port {
            self.ctx.ports.release(port, &self.replica.id);
        }
        let mut view = self.view();
        view.phase = phase;
        view.ended_at = Some(std::time::Instant::now());
        view.logs.finish();
        let ended = EndedRecord {
            failed: phase == Phase::Failed,
            termination: view.last_exit.unwrap_or(Termination::Unknown),
        };
        drop(view);
        if let Err(e) = self.ctx.store.mark_ended(&self.replica.id, ended) {
            tracing::error!(replica = %self.replica.id, error = %e, "cannot write the replica record");
        }
    }

    /// Kill command: stop what runs (or cancel a pending restart), end for good.
    async fn kill(&mut self) {
        if let Some((termination, uptime)) = self.stop(StopCause::Kill).await {
            let decision = self.lifecycle.on_exit(termination, uptime);
            self.after_exit(termination, decision);
        } else if !self.lifecycle.phase().is_terminal() {
            self.lifecycle.on_kill_while_idle();
            let termination = self.view().last_exit.unwrap_or(Termination::Unknown);
            self.after_exit(termination, ExitDecision::Finish(Phase::Exited));
        }
    }

    /// The back-off delay passed: start a new process (without re-running `build`).
    async fn restart(&mut self) {
        self.restart_at = None;
        match self.replica.start(&self.ctx, StartKind::Restart).await {
            Ok(running) => {
                self.adopted = false;
                self.proc = Some(running);
                self.record_start();
                self.announce_start();
            }
            Err(e) => {
                logs::append_note(&self.replica.log_path, &format!("restart failed: {e}"));
                tracing::warn!(replica = %self.replica.id, error = %e, "restart failed");
                let decision = self.lifecycle.on_launch_failed();
                self.after_exit(Termination::LaunchFailed, decision);
            }
        }
    }
}
