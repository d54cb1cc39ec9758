//! The task that supervises one replica: one tokio task per replica, driven by a `select!`
//! over its process's exit, its health-probe timer, its back-off timer, its log-poll tick and
//! the engine's commands. It applies the pure [`Lifecycle`] and [`HealthTracker`] decisions,
//! keeps the replica's [`View`] (what `status` and `logs` read) and its replica record current,
//! and emits [`Event`]s.
//!
//! It owns the replica's process from its first start (done by the engine, so launch errors
//! are returned to the caller) until the replica ends for good; it never touches another
//! replica. Invariant: when the task returns, either the replica is terminal (no process, port
//! released, record removed) or it was detached (process left running, record kept for the
//! next agent to adopt).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use skr8tr_proto::manifest::App;
use skr8tr_proto::name::ReplicaId;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::engine::EngineConfig;
use crate::events::{Event, EventSink, StopGate};
use crate::health::{self, HealthTracker, ProbeError, Verdict};
use crate::limits::{self, AppliedLimits, CgroupBackend};
use crate::logs::{self, LogTail};
use crate::ports::PortTable;
use crate::process::{self, ProcHandle};
use crate::records::{RecordStore, RecordedApp, ReplicaRecord};
use crate::spawn::{self, SpawnSpec};
use crate::supervise::{ExitDecision, Lifecycle, Phase, StopCause, Termination, UnhealthyAction};

/// What every replica task shares with the engine.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub config: EngineConfig,
    pub store: RecordStore,
    pub ports: PortTable,
    pub events: EventSink,
    pub cgroups: CgroupBackend,
}

/// What the engine reads about a replica (status, logs, exec), updated by its task.
#[derive(Debug)]
pub(crate) struct View {
    pub app: Arc<App>,
    pub generation: u64,
    pub port: Option<u16>,
    pub phase: Phase,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub limits: AppliedLimits,
    pub last_exit: Option<Termination>,
    pub adopted: bool,
    pub started_at: Option<std::time::Instant>,
    pub ended_at: Option<std::time::Instant>,
    pub logs: LogTail,
}

pub(crate) type SharedView = Arc<Mutex<View>>;

pub(crate) fn lock_view(view: &SharedView) -> MutexGuard<'_, View> {
    // Every update is a plain field assignment: a panic elsewhere cannot leave it half-done.
    view.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request from the engine.
#[derive(Debug)]
pub(crate) enum Command {
    /// Stop the replica for good; the sender is answered (or dropped) once it has ended.
    Kill(oneshot::Sender<()>),
}

/// A process of the replica that is (or was, until reaped) running.
#[derive(Debug)]
pub(crate) struct Running {
    pub handle: ProcHandle,
    pub pid: u32,
    pub start_time: u64,
    pub started: Instant,
    pub limits: AppliedLimits,
    pub cgroup_dirs: Vec<PathBuf>,
}

type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), ProbeError>> + Send>>;

/// The supervision state of one replica.
pub(crate) struct ReplicaTask {
    pub id: ReplicaId,
    pub generation: u64,
    pub app: Arc<App>,
    pub port: Option<u16>,
    pub log_path: PathBuf,
    pub ctx: Arc<Ctx>,
    pub view: SharedView,
    pub lifecycle: Lifecycle,
    pub proc: Option<Running>,
    pub adopted: bool,
    health: Option<HealthTracker>,
    next_probe: Option<Instant>,
    probe: Option<ProbeFuture>,
    restart_at: Option<Instant>,
}

impl std::fmt::Debug for ReplicaTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaTask")
            .field("id", &self.id)
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
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: ReplicaId,
        generation: u64,
        app: Arc<App>,
        port: Option<u16>,
        log_path: PathBuf,
        ctx: Arc<Ctx>,
        view: SharedView,
        running: Running,
        adopted: bool,
        restarts: u32,
    ) -> Self {
        let mut lifecycle = Lifecycle::new(app.restart, ctx.config.backoff);
        lifecycle.set_restarts(restarts);
        let mut task = Self {
            id,
            generation,
            app,
            port,
            log_path,
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
                () = sleep_opt(self.restart_at) => self.restart(),
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
            replica: self.id.clone(),
            app: self.app.name.clone(),
            pid,
            port: self.port,
            adopted: self.adopted,
        });
        match &self.app.health {
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
        let record = ReplicaRecord {
            replica: self.id.clone(),
            generation: self.generation,
            pid: running.pid,
            start_time: running.start_time,
            port: self.port,
            log_path: self.log_path.clone(),
            restarts: self.lifecycle.restarts(),
            limits: running.limits,
            cgroup_dirs: running.cgroup_dirs.clone(),
            app: RecordedApp::new(&self.app),
        };
        if let Err(e) = self.ctx.store.upsert(record) {
            tracing::error!(replica = %self.id, error = %e, "cannot write the replica record");
        }
    }

    fn became_healthy(&mut self) {
        if self.lifecycle.on_healthy() {
            self.view().phase = Phase::Healthy;
            self.emit(Event::Healthy {
                replica: self.id.clone(),
                app: self.app.name.clone(),
                port: self.port,
            });
        }
    }

    fn start_probe(&mut self) {
        self.next_probe = None;
        let Some(health) = &self.app.health else {
            return;
        };
        let (check, port, timeout) = (health.check.clone(), self.port, health.timeout);
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
            tracing::debug!(replica = %self.id, error = %e, "health probe failed");
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
                    replica: self.id.clone(),
                    app: self.app.name.clone(),
                    port: self.port,
                });
                if action == UnhealthyAction::Restart {
                    let note = match &result {
                        Err(e) => format!("health check failed ({e}); restarting"),
                        Ok(()) => "health check failed; restarting".to_owned(),
                    };
                    logs::append_note(&self.log_path, &note);
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
            replica: self.id.clone(),
            app: self.app.name.clone(),
            port: self.port,
            gate,
        });
        let gate_timeout = self.ctx.config.stop_gate_timeout;
        let pid = running.pid;
        let termination = tokio::select! {
            _ = tokio::time::timeout(gate_timeout, released) => {
                process::stop_group(&mut running.handle, pid, self.app.drain).await
            }
            t = running.handle.wait() => {
                process::kill_group_leftovers(pid);
                t
            }
        };
        let uptime = running.started.elapsed();
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
        if let Some(running) = self.proc.as_ref() {
            // Helpers the leader left behind (its process group) do not outlive it.
            process::kill_group_leftovers(running.pid);
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
                    &self.log_path,
                    &format!("{termination}; restarting in {after:?}"),
                );
                self.restart_at = Some(Instant::now() + after);
                Some(after)
            }
            ExitDecision::Finish(phase) => {
                if !matches!(termination, Termination::Signal(_)) || phase == Phase::Failed {
                    logs::append_note(&self.log_path, &format!("{termination}"));
                }
                self.finish(phase);
                None
            }
        };
        self.emit(Event::Exited {
            replica: self.id.clone(),
            app: self.app.name.clone(),
            termination,
            restart_in,
        });
    }

    /// The replica ended for good: free its port, forget its record.
    fn finish(&mut self, phase: Phase) {
        self.restart_at = None;
        if let Some(port) = self.port {
            self.ctx.ports.release(port, &self.id);
        }
        if let Err(e) = self.ctx.store.remove(&self.id) {
            tracing::error!(replica = %self.id, error = %e, "cannot remove the replica record");
        }
        let mut view = self.view();
        view.phase = phase;
        view.ended_at = Some(std::time::Instant::now());
        view.logs.finish();
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
    fn restart(&mut self) {
        self.restart_at = None;
        let spec = SpawnSpec {
            app: &self.app,
            replica: &self.id,
            generation: self.generation,
            port: self.port,
            state_dir: &self.ctx.config.state_dir,
            log_path: &self.log_path,
            cgroups: &self.ctx.cgroups,
        };
        let started = spawn::prepare(&spec).and_then(|planned| spawn::spawn(&spec, &planned));
        match started {
            Ok(spawned) => {
                self.adopted = false;
                self.proc = Some(Running {
                    handle: ProcHandle::Child(spawned.child),
                    pid: spawned.pid,
                    start_time: spawned.start_time,
                    started: Instant::now(),
                    limits: spawned.limits,
                    cgroup_dirs: spawned.cgroup_dirs,
                });
                self.record_start();
                self.announce_start();
            }
            Err(e) => {
                logs::append_note(&self.log_path, &format!("restart failed: {e}"));
                tracing::warn!(replica = %self.id, error = %e, "restart failed");
                let decision = self.lifecycle.on_launch_failed();
                self.after_exit(Termination::LaunchFailed, decision);
            }
        }
    }
}
