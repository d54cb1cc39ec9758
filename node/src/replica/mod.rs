//! One replica: what it is ([`Replica`]: id, generation, app, port and log file, the same
//! across its restarts), the one way a process of it starts ([`Replica::start`], for its first
//! launch and every restart alike), what the engine reads about it ([`View`]), and the task
//! that supervises it ([`ReplicaTask`]).
//!
//! ```text
//! Engine::launch ── Replica::start(Launch: build steps, then fork+exec) ──▶ Running ─┐
//! Engine::start  ── adoption (pidfd on the recorded pid) ─────────────────▶ Running ─┤
//!                                                                                    ▼
//!       ReplicaTask::run ── exit or failed health check, policy restarts ──▶ back-off
//!            ▲                                                                  │
//!            └──── Running ◀── Replica::start(Restart: fork+exec, no build) ◀───┘
//! ```
//! The phases and the back-off are the pure state machine of [`crate::supervise`]; the task
//! carries them out. This module does not know the engine: the engine makes replicas, starts
//! their first process and their task, and reads their views.

mod task;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use skr8tr_proto::manifest::App;
use skr8tr_proto::name::ReplicaId;
use tokio::sync::oneshot;
use tokio::time::Instant;

pub(crate) use task::ReplicaTask;

use crate::config::EngineConfig;
use crate::events::EventSink;
use crate::limits::{AppliedLimits, CgroupBackend};
use crate::logs::LogTail;
use crate::ports::PortTable;
use crate::process::ProcHandle;
use crate::records::{RecordStore, RecordedApp, ReplicaRecord};
use crate::spawn::{self, SpawnError, SpawnSpec};
use crate::supervise::{Phase, Termination};

/// What every replica task shares with the engine.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub config: EngineConfig,
    pub store: RecordStore,
    pub ports: PortTable,
    pub events: EventSink,
    pub cgroups: CgroupBackend,
}

/// A replica as it was launched (or adopted): what stays the same across its restarts.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pub id: ReplicaId,
    pub generation: u64,
    pub app: Arc<App>,
    /// The port it listens on (held in the engine's port table until it ends).
    pub port: Option<u16>,
    /// Its output, and the engine's notes about it.
    pub log_path: PathBuf,
}

/// Which start of a replica's process [`Replica::start`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartKind {
    /// The first: the app's `build` steps run before the process starts.
    Launch,
    /// A later one (after an exit or a failed health check): `build` does not run again.
    Restart,
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

impl Replica {
    fn spawn_spec<'a>(&'a self, ctx: &'a Ctx) -> SpawnSpec<'a> {
        SpawnSpec {
            app: &self.app,
            replica: &self.id,
            generation: self.generation,
            port: self.port,
            state_dir: &ctx.config.state_dir,
            log_path: &self.log_path,
            cgroups: &ctx.cgroups,
            vm_accel: ctx.config.vm_accel,
        }
    }

    /// Starts a process of this replica: plans it, runs its `build` steps when `kind` is
    /// [`StartKind::Launch`], and forks and execs it in its own process group with its limits.
    ///
    /// # Errors
    /// [`SpawnError`]: nothing is left running.
    ///
    /// # Cancel safety
    /// Not cancel safe while `build` steps run (see [`spawn::run_build`]).
    pub(crate) async fn start(&self, ctx: &Ctx, kind: StartKind) -> Result<Running, SpawnError> {
        let spec = self.spawn_spec(ctx);
        let planned = spawn::prepare(&spec)?;
        if kind == StartKind::Launch {
            spawn::run_build(&spec, &planned.env).await?;
        }
        let spawned = spawn::spawn(&spec, &planned)?;
        Ok(Running {
            handle: ProcHandle::Child(spawned.child),
            pid: spawned.pid,
            start_time: spawned.start_time,
            started: Instant::now(),
            limits: spawned.limits,
            cgroup_dirs: spawned.cgroup_dirs,
        })
    }

    /// The environment its processes get, for `exec` into it.
    pub(crate) fn environment(&self, ctx: &Ctx) -> Vec<(String, OsString)> {
        spawn::replica_environment(&self.spawn_spec(ctx))
    }

    /// What lets a later agent adopt `running`, a process of this replica.
    pub(crate) fn record(&self, running: &Running, restarts: u32) -> ReplicaRecord {
        ReplicaRecord {
            replica: self.id.clone(),
            generation: self.generation,
            pid: running.pid,
            start_time: running.start_time,
            port: self.port,
            log_path: self.log_path.clone(),
            restarts,
            limits: running.limits,
            cgroup_dirs: running.cgroup_dirs.clone(),
            app: RecordedApp::new(&self.app),
            ended: None,
        }
    }
}

/// What the engine reads about a replica (status, logs, exec), updated by its task.
#[derive(Debug)]
pub(crate) struct View {
    pub replica: Replica,
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

impl View {
    /// A replica that has no process yet.
    pub(crate) fn new(replica: Replica, logs: LogTail) -> Self {
        Self {
            replica,
            phase: Phase::Starting,
            pid: None,
            restarts: 0,
            limits: AppliedLimits::default(),
            last_exit: None,
            adopted: false,
            started_at: None,
            ended_at: None,
            logs,
        }
    }
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
