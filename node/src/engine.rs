//! The node engine: the one facade the daemon glue calls — launch, kill, status, logs, exec,
//! node stats — plus the stream of [`Event`]s it reacts to.
//!
//! ```text
//! glue ──launch/kill/status/logs/exec──▶ Engine ──Replica::start, then──▶ one ReplicaTask
//!  ▲                                       │ replica records (adopt on start)  per replica
//!  └────────────── Events ◀────────────────┴──────────────────────────────────────┘
//! ```
//! Launch and kill are idempotent per replica id, as the wire protocol's retries require. On
//! [`Engine::start`] every replica recorded under `--state-dir` whose process is still the
//! same (pid and start time) is adopted; the others are reported as exited and forgotten, so
//! an agent restart neither orphans nor duplicates workloads; replicas recorded as ended for
//! good are listed again as they ended (a finished job stays finished). The engine owns the table of
//! replicas (slots) and the ports; how a replica starts and is supervised is `replica`'s. It
//! uses only tokio APIs that work on a current-thread runtime (such as tokio-uring's) and
//! starts no thread.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use skr8tr_proto::manifest::{App, PortSpec};
use skr8tr_proto::name::{AppName, NodeId, ReplicaId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use crate::config::{EngineConfig, VmAccel};
use crate::events::{Event, EventSink, Events};
use crate::exec::{self, ExecError, ExecOutput};
use crate::limits::{AppliedLimits, CgroupBackend};
use crate::logs::{self, LogTail};
use crate::ports::{PortError, PortTable};
use crate::records::{self, DirLock, RecordStore, RecordsError};
use crate::replica::{
    Command, Ctx, Replica, ReplicaTask, Running, SharedView, StartKind, View, lock_view,
};
use crate::spawn::SpawnError;
use crate::stats::{GroupSampler, NodeSampler, NodeStats};
use crate::supervise::{Phase, Termination};

mod adopt;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Records(#[from] RecordsError),
}

/// Why a launch did not start the replica.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("replica {replica} is already being launched")]
    InProgress { replica: ReplicaId },
    #[error("launch of replica {replica} was cancelled by a kill")]
    Cancelled { replica: ReplicaId },
    #[error("no port for replica {replica}")]
    Port {
        replica: ReplicaId,
        #[source]
        source: PortError,
    },
    #[error("cannot start replica {replica}")]
    Spawn {
        replica: ReplicaId,
        #[source]
        source: SpawnError,
    },
}

/// Why an `exec` did not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecRequestError {
    #[error("no replica {replica} on this node")]
    UnknownReplica { replica: ReplicaId },
    #[error("replica {replica} has ended")]
    NotRunning { replica: ReplicaId },
    #[error("exec in replica {replica} failed")]
    Exec {
        replica: ReplicaId,
        #[source]
        source: ExecError,
    },
}

/// What `launch` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launched {
    /// The current process (`None` while the replica is backing off between restarts).
    pub pid: Option<u32>,
    pub port: Option<u16>,
    /// The replica was already running: nothing was started.
    pub already_running: bool,
}

/// What `kill` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillOutcome {
    /// The replica was running (or backing off) and has now ended.
    Stopped,
    /// It had already ended.
    AlreadyEnded,
    /// No such replica on this node.
    NotFound,
    /// It was still launching; the launch will stop it and report [`LaunchError::Cancelled`].
    Cancelled,
}

/// One line of `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    pub replica: ReplicaId,
    pub app: AppName,
    pub generation: u64,
    pub pid: Option<u32>,
    pub phase: Phase,
    pub port: Option<u16>,
    pub restarts: u32,
    /// CPU of its process group since the previous `status` call, in percent of one core.
    pub cpu_percent: f32,
    /// Resident memory of its process group.
    pub rss_bytes: u64,
    pub limits: AppliedLimits,
    /// The app asks for `ram` or `cpu` (so `limits` saying none means: not enforceable here).
    pub limited: bool,
    pub last_exit: Option<Termination>,
    /// Started by an earlier agent and adopted.
    pub adopted: bool,
    /// Time since this engine started (or adopted) the current process.
    pub uptime: Option<Duration>,
}

/// What `start` found in the state directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StartReport {
    /// Replicas whose processes were still running and are supervised again.
    pub adopted: Vec<ReplicaId>,
    /// Replicas recorded but gone (dead, replaced pid, reboot): reported as exited.
    pub forgotten: Vec<ReplicaId>,
    /// Replicas recorded as ended for good: listed again as they ended.
    pub ended: Vec<ReplicaId>,
}

/// The node engine. Cheap to clone; all clones drive the same replicas.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctx: Arc<Ctx>,
    node_id: NodeId,
    slots: Mutex<Slots>,
    groups: Mutex<GroupSampler>,
    node: Mutex<NodeSampler>,
    _lock: DirLock,
}

#[derive(Debug, Default)]
struct Slots {
    map: BTreeMap<ReplicaId, Slot>,
    /// Replicas between the start of `launch` and their task; `true` once a kill came.
    launching: HashMap<ReplicaId, bool>,
}

#[derive(Debug)]
struct Slot {
    view: SharedView,
    commands: Option<mpsc::UnboundedSender<Command>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    /// The last handle is gone without `shutdown`: like an agent crash, the replica tasks stop
    /// (they never run again) and the processes keep running, to be adopted by the next engine.
    fn drop(&mut self) {
        let slots = self.slots.get_mut().unwrap_or_else(PoisonError::into_inner);
        for slot in slots.map.values() {
            if let Some(task) = &slot.task {
                task.abort();
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Engine {
    /// Opens (and locks) the state directory, detects cgroups, and adopts the replicas of an
    /// earlier agent. Must be called inside a tokio runtime (current-thread is fine).
    ///
    /// # Errors
    /// [`EngineError::Records`]: the directory cannot be created, is locked by another agent, or
    /// its records file is unreadable.
    pub async fn start(config: EngineConfig) -> Result<(Self, Events, StartReport), EngineError> {
        let (store, loaded, dir_lock) = RecordStore::open(&config.state_dir)?;
        let node_id = records::load_or_create_node_id(&config.state_dir)?;
        records::ensure_dir(&config.state_dir.join("logs"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let cgroups = CgroupBackend::detect(config.cgroups);
        tracing::info!(?cgroups, "resource limits backend");
        let ctx = Arc::new(Ctx {
            config,
            store,
            ports: PortTable::new(),
            events: EventSink(tx),
            cgroups,
        });
        let engine = Self {
            inner: Arc::new(Inner {
                ctx,
                node_id,
                slots: Mutex::new(Slots::default()),
                groups: Mutex::new(GroupSampler::default()),
                node: Mutex::new(NodeSampler::default()),
                _lock: dir_lock,
            }),
        };
        let report = engine.adopt_all(loaded);
        engine.inner.ctx.store.flush()?;
        Ok((engine, Events(rx), report))
    }

    /// This node's stable id (stored in the state directory).
    #[must_use]
    pub fn node_id(&self) -> &NodeId {
        &self.inner.node_id
    }

    /// Starts replica `replica` of `app`: its port, its `build` steps, its first process, and
    /// the task that supervises it. Idempotent: a replica that is already running (or backing
    /// off) is left alone and its current process reported. `app` is one the manifest parser
    /// accepts (as LAUNCH delivers it): its record keeps it as manifest text, and after an
    /// agent restart a replica is adopted only if that text parses again.
    ///
    /// # Errors
    /// [`LaunchError`]; a launch error leaves an ended replica behind whose `logs` show why.
    ///
    /// # Cancel safety
    /// Not cancel safe: while `build` steps run, dropping the future leaves the replica id
    /// marked as launching.
    pub async fn launch(
        &self,
        replica: ReplicaId,
        generation: u64,
        app: App,
    ) -> Result<Launched, LaunchError> {
        {
            let mut slots = lock(&self.inner.slots);
            if let Some(slot) = slots.map.get(&replica) {
                let view = lock_view(&slot.view);
                if !view.phase.is_terminal() {
                    return Ok(Launched {
                        pid: view.pid,
                        port: view.replica.port,
                        already_running: true,
                    });
                }
            }
            if slots.launching.contains_key(&replica) {
                return Err(LaunchError::InProgress { replica });
            }
            slots.launching.insert(replica.clone(), false);
        }
        let result = self.launch_new(&replica, generation, Arc::new(app)).await;
        let cancelled = lock(&self.inner.slots)
            .launching
            .remove(&replica)
            .unwrap_or(false);
        match result {
            Ok(launched) if cancelled => {
                self.kill(&replica).await;
                let _ = launched;
                Err(LaunchError::Cancelled { replica })
            }
            other => other,
        }
    }

    async fn launch_new(
        &self,
        id: &ReplicaId,
        generation: u64,
        app: Arc<App>,
    ) -> Result<Launched, LaunchError> {
        let ctx = &self.inner.ctx;
        let port_error = |source| LaunchError::Port {
            replica: id.clone(),
            source,
        };
        let port = match (app.port, app.serve.as_ref().and_then(|s| s.port)) {
            (Some(PortSpec::Fixed(p)), _) | (None, Some(p)) => {
                ctx.ports.hold_fixed(p, id).map_err(port_error)?;
                Some(p)
            }
            (Some(PortSpec::Auto), _) => Some(ctx.ports.hold_auto(id).map_err(port_error)?),
            (None, None) => None,
        };
        let replica = Replica {
            id: id.clone(),
            generation,
            app,
            port,
            log_path: self.log_path(id),
        };
        let logs = LogTail::from_end(&replica.log_path);
        match replica.start(ctx, StartKind::Launch).await {
            Ok(running) => {
                let pid = running.pid;
                self.insert_running(replica, logs, running, false, 0);
                Ok(Launched {
                    pid: Some(pid),
                    port,
                    already_running: false,
                })
            }
            Err(source) => {
                logs::append_note(&replica.log_path, &format!("launch failed: {source}"));
                if let Some(p) = port {
                    ctx.ports.release(p, id);
                }
                let ended = (Phase::Failed, Termination::LaunchFailed);
                self.insert_ended(replica, logs, ended);
                Err(LaunchError::Spawn {
                    replica: id.clone(),
                    source,
                })
            }
        }
    }

    fn log_path(&self, replica: &ReplicaId) -> PathBuf {
        self.inner
            .ctx
            .config
            .state_dir
            .join("logs")
            .join(format!("{replica}.log"))
    }

    /// A replica whose process runs (just started, or adopted), with the task that supervises
    /// it from now on.
    fn insert_running(
        &self,
        replica: Replica,
        logs: LogTail,
        running: Running,
        adopted: bool,
        restarts: u32,
    ) {
        let id = replica.id.clone();
        let view = Arc::new(Mutex::new(View::new(replica.clone(), logs)));
        let (tx, rx) = mpsc::unbounded_channel();
        let task = ReplicaTask::new(
            replica,
            self.inner.ctx.clone(),
            view.clone(),
            running,
            adopted,
            restarts,
        );
        let handle = tokio::spawn(task.run(rx));
        let slot = Slot {
            view,
            commands: Some(tx),
            task: Some(handle),
        };
        self.insert_slot(id, slot);
    }

    /// An ended replica (launch failed, or recorded but gone), kept for `status` and `logs`.
    fn insert_ended(
        &self,
        replica: Replica,
        mut logs: LogTail,
        (phase, termination): (Phase, Termination),
    ) {
        logs.finish();
        let id = replica.id.clone();
        let mut view = View::new(replica, logs);
        view.phase = phase;
        view.last_exit = Some(termination);
        view.ended_at = Some(std::time::Instant::now());
        let slot = Slot {
            view: Arc::new(Mutex::new(view)),
            commands: None,
            task: None,
        };
        self.insert_slot(id, slot);
    }

    fn insert_slot(&self, replica: ReplicaId, slot: Slot) {
        let mut slots = lock(&self.inner.slots);
        slots.map.insert(replica, slot);
        // Forget the oldest ended replicas beyond `keep_finished`, with their log files.
        let mut ended: Vec<(std::time::Instant, ReplicaId, PathBuf)> = slots
            .map
            .iter()
            .filter_map(|(id, s)| {
                let v = lock_view(&s.view);
                let at = v.ended_at.filter(|_| v.phase.is_terminal())?;
                Some((at, id.clone(), v.logs.path().to_path_buf()))
            })
            .collect();
        let excess = ended
            .len()
            .saturating_sub(self.inner.ctx.config.keep_finished);
        if excess > 0 {
            ended.sort_by_key(|(at, _, _)| *at);
            for (_, id, path) in ended.into_iter().take(excess) {
                slots.map.remove(&id);
                let _ = std::fs::remove_file(path);
                if let Err(e) = self.inner.ctx.store.remove(&id) {
                    tracing::error!(replica = %id, error = %e, "cannot remove the replica record");
                }
            }
        }
    }

    /// Stops replica `replica` for good: `Stopping` event, SIGTERM to its process group,
    /// `drain`, SIGKILL, reaped. Idempotent.
    ///
    /// # Cancel safety
    /// Cancel safe: the stop goes on in the replica's task.
    pub async fn kill(&self, replica: &ReplicaId) -> KillOutcome {
        let sender = {
            let mut slots = lock(&self.inner.slots);
            if let Some(cancel) = slots.launching.get_mut(replica) {
                *cancel = true;
                return KillOutcome::Cancelled;
            }
            match slots.map.get(replica) {
                None => return KillOutcome::NotFound,
                Some(slot) if lock_view(&slot.view).phase.is_terminal() => {
                    return KillOutcome::AlreadyEnded;
                }
                Some(slot) => slot.commands.clone(),
            }
        };
        let (tx, rx) = oneshot::channel();
        match sender.map(|s| s.send(Command::Kill(tx))) {
            Some(Ok(())) => {
                // Answered when the replica has ended; a dropped sender means the task ended
                // by itself meanwhile, which is just as final.
                let _ = rx.await;
                KillOutcome::Stopped
            }
            _ => KillOutcome::AlreadyEnded,
        }
    }

    /// Every replica this engine knows, running or ended, sorted by id.
    #[must_use]
    pub fn status(&self) -> Vec<ReplicaStatus> {
        let views: Vec<(ReplicaId, SharedView)> = lock(&self.inner.slots)
            .map
            .iter()
            .map(|(id, s)| (id.clone(), s.view.clone()))
            .collect();
        let pids: Vec<u32> = views.iter().filter_map(|(_, v)| lock_view(v).pid).collect();
        let usage = lock(&self.inner.groups).sample(&pids);
        views
            .into_iter()
            .map(|(replica, view)| {
                let v = lock_view(&view);
                let (cpu_percent, rss_bytes) = v
                    .pid
                    .and_then(|p| usage.get(&p).copied())
                    .unwrap_or_default();
                ReplicaStatus {
                    replica,
                    app: v.replica.app.name.clone(),
                    generation: v.replica.generation,
                    pid: v.pid,
                    phase: v.phase,
                    port: v.replica.port,
                    restarts: v.restarts,
                    cpu_percent,
                    rss_bytes,
                    limits: v.limits,
                    limited: v.replica.app.ram.is_some() || v.replica.app.cpu.is_some(),
                    last_exit: v.last_exit,
                    adopted: v.adopted,
                    uptime: v.pid.and(v.started_at).map(|t| t.elapsed()),
                }
            })
            .collect()
    }

    /// The newest lines of the replica's output (read up to now), oldest first; `None` for an
    /// unknown replica. Kept after the replica ended.
    #[must_use]
    pub fn logs(&self, replica: &ReplicaId) -> Option<Vec<String>> {
        let view = lock(&self.inner.slots).map.get(replica)?.view.clone();
        let mut v = lock_view(&view);
        v.logs.poll();
        Some(v.logs.lines())
    }

    /// Runs `sh -c command` with the replica's environment, killed after `timeout`.
    ///
    /// # Errors
    /// [`ExecRequestError`]: unknown or ended replica, or the shell could not start.
    ///
    /// # Cancel safety
    /// Not cancel safe (see [`exec::run`]).
    pub async fn exec(
        &self,
        replica: &ReplicaId,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, ExecRequestError> {
        let view = lock(&self.inner.slots)
            .map
            .get(replica)
            .map(|s| s.view.clone())
            .ok_or_else(|| ExecRequestError::UnknownReplica {
                replica: replica.clone(),
            })?;
        let running = {
            let v = lock_view(&view);
            if v.phase.is_terminal() {
                return Err(ExecRequestError::NotRunning {
                    replica: replica.clone(),
                });
            }
            v.replica.clone()
        };
        let env = running.environment(&self.inner.ctx);
        exec::run(&env, command, timeout)
            .await
            .map_err(|source| ExecRequestError::Exec {
                replica: replica.clone(),
                source,
            })
    }

    /// The node's CPU% since the previous call and its memory, for heartbeats.
    #[must_use]
    pub fn node_stats(&self) -> NodeStats {
        lock(&self.inner.node).sample()
    }

    /// Stops supervising without touching any process (an agent restart or upgrade): the
    /// replicas keep running and the next engine on the same state directory adopts them.
    pub async fn detach(self) {
        let tasks: Vec<JoinHandle<()>> = lock(&self.inner.slots)
            .map
            .values_mut()
            .filter_map(|s| s.task.take())
            .collect();
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
    }

    /// Kills every replica (each with its drain, all at once), then stops.
    pub async fn shutdown(self) {
        let ids: Vec<ReplicaId> = lock(&self.inner.slots).map.keys().cloned().collect();
        let kills: Vec<JoinHandle<KillOutcome>> = ids
            .into_iter()
            .map(|id| {
                let engine = self.clone();
                tokio::spawn(async move { engine.kill(&id).await })
            })
            .collect();
        for k in kills {
            let _ = k.await;
        }
        self.detach().await;
    }

    pub(crate) fn ctx(&self) -> &Arc<Ctx> {
        &self.inner.ctx
    }

    pub(crate) fn events(&self) -> &EventSink {
        &self.inner.ctx.events
    }
}

impl Event {
    pub(crate) fn forgotten(replica: ReplicaId, app: AppName) -> Self {
        Self::Exited {
            replica,
            app,
            termination: Termination::Unknown,
            restart_in: None,
        }
    }
}
