//! The Conductor daemon: two sockets (operator commands, node heartbeats), the reconcile loop,
//! and the calls to node agents. Decisions live in [`State`]; this module moves bytes.
//!
//! ```text
//! :7771 ─Gate(operator)─▶ ConductorRequest ─▶ task ─▶ State ─▶ Store ─▶ reply
//! :7770 ─Gate(mesh)────▶ MeshEvent ────────▶ State.heartbeat ─▶ Store
//! every 250 ms or on wake: State.reconcile ─▶ Store ─▶ LAUNCH/KILL to nodes (mesh-signed)
//! ```
//! Every request runs in its own task, so a SUBMIT waiting for its launches never holds up a
//! LIST or a heartbeat. Unparseable datagrams and replies are logged and never answered.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skr8tr_daemon::{Admission, Driver, Gate, Patience, UdpEndpoint};
use skr8tr_proto::auth::SigningKey;
use skr8tr_proto::manifest::{self, MAX_REPLICAS};
use skr8tr_proto::name::{AppName, ReplicaId};
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, ErrorCode, ErrorReply, MAX_SIGNED_MESSAGE, ManifestSource,
    MeshEvent, Message, NodeReply, NodeRequest, OneLine, Placement, Request, RolloutProgress,
    RolloutState,
};
use tokio::sync::Notify;

use super::model::ReplicaPhase;
use super::state::{Effect, State, Timings};
use super::store::{Change, Store, StoreError};

/// How often reconcile runs when nothing wakes it.
const RECONCILE_EVERY: Duration = Duration::from_millis(250);
/// How long SUBMIT waits for its launches to be confirmed before answering.
const SUBMIT_WAIT: Duration = Duration::from_secs(5);
/// How often a rollout asks the Tower whether the edge routes to its new replicas.
const EDGE_POLL: Duration = Duration::from_millis(100);
/// Largest manifest file SUBMIT reads from the Conductor's disk.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// What the Conductor is started with.
#[derive(Debug)]
pub struct ConductorConfig {
    /// Verifies operator-signed commands (`None`: dev mode, loopback only).
    pub operator_gate: Gate,
    /// Verifies mesh-signed heartbeats.
    pub mesh_gate: Gate,
    /// Signs LAUNCH/KILL/LOGS/EXEC to nodes.
    pub mesh_key: Option<SigningKey>,
    pub state_dir: PathBuf,
    pub timings: Timings,
    /// How long an EXEC may run on the node.
    pub exec_timeout: Duration,
    /// The Tower, asked during rollouts whether the edge routes to new replicas (`None`: no
    /// edge to wait for).
    pub tower: Option<std::net::SocketAddr>,
}

impl ConductorConfig {
    /// Dev mode: no keys, default timings, a 10 s EXEC limit, no Tower to ask.
    #[must_use]
    pub fn dev(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            operator_gate: Gate::new(None),
            mesh_gate: Gate::new(None),
            mesh_key: None,
            state_dir: state_dir.into(),
            timings: Timings::default(),
            exec_timeout: Duration::from_secs(10),
            tower: None,
        }
    }
}

/// Why the Conductor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    #[error("cannot open the state")]
    Store(#[from] StoreError),
    #[error("socket failed")]
    Io(#[from] std::io::Error),
}

/// What one launch came to, for SUBMIT's answer.
#[derive(Debug, Clone)]
enum LaunchOutcome {
    Launched,
    Failed(String),
    Unconfirmed,
}

struct Ctx {
    driver: Driver,
    state: RefCell<State>,
    store: Store,
    mesh_key: Option<SigningKey>,
    commands: UdpEndpoint,
    wake: Notify,
    exec_timeout: Duration,
    tower: Option<std::net::SocketAddr>,
}

type Shared = Rc<Ctx>;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs the Conductor on its two sockets until `shutdown` resolves.
///
/// # Errors
/// The state cannot be opened, or a socket fails as a whole.
pub async fn run(
    driver: Driver,
    commands: UdpEndpoint,
    heartbeats: UdpEndpoint,
    config: ConductorConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ConductorError> {
    let store = Store::open(&config.state_dir)?;
    let loaded = store.load()?;
    tracing::info!(
        apps = loaded.apps.len(),
        replicas = loaded.replicas.len(),
        state_dir = %config.state_dir.display(),
        "state loaded"
    );
    let state = State::new(loaded, config.timings, Instant::now());
    let ctx: Shared = Rc::new(Ctx {
        driver,
        state: RefCell::new(state),
        store,
        mesh_key: config.mesh_key,
        commands,
        wake: Notify::new(),
        exec_timeout: config.exec_timeout,
        tower: config.tower,
    });
    let mut operator_gate = config.operator_gate;
    let mut mesh_gate = config.mesh_gate;

    let reconciler = {
        let ctx = ctx.clone();
        skr8tr_daemon::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(RECONCILE_EVERY) => {}
                    () = ctx.wake.notified() => {}
                }
                reconcile(&ctx);
            }
        })
    };

    let edge_watch = {
        let ctx = ctx.clone();
        skr8tr_daemon::spawn(async move {
            loop {
                tokio::time::sleep(EDGE_POLL).await;
                update_edge(&ctx).await;
            }
        })
    };

    let heartbeat_loop = {
        let ctx = ctx.clone();
        async move {
            let mut buf = Vec::with_capacity(skr8tr_proto::wire::MAX_DATAGRAM + 1);
            loop {
                let (res, data) = heartbeats.recv_from(buf).await;
                match res {
                    Ok(from) => on_mesh_datagram(&ctx, &mut mesh_gate, &data, from),
                    Err(e) if crate::tower::server::is_transient(&e) => {}
                    Err(e) => return Err::<(), _>(ConductorError::Io(e)),
                }
                buf = data;
            }
        }
    };

    let command_loop = {
        let ctx = ctx.clone();
        async move {
            let mut buf = Vec::with_capacity(skr8tr_proto::wire::MAX_DATAGRAM + 1);
            loop {
                let (res, data) = ctx.commands.recv_from(buf).await;
                match res {
                    Ok(from) => on_command_datagram(&ctx, &mut operator_gate, &data, from),
                    Err(e) if crate::tower::server::is_transient(&e) => {}
                    Err(e) => return Err::<(), _>(ConductorError::Io(e)),
                }
                buf = data;
            }
        }
    };

    let result = tokio::select! {
        r = heartbeat_loop => r,
        r = command_loop => r,
        () = shutdown => Ok(()),
    };
    reconciler.abort();
    edge_watch.abort();
    result
}

fn persist(ctx: &Ctx, changes: &[Change]) {
    if changes.is_empty() {
        return;
    }
    if let Err(e) = ctx.store.apply(changes) {
        tracing::error!(error = %e, "cannot persist state; continuing from memory");
    }
}

/// One reconcile pass: plan, persist, send. Returns the launches it started.
fn reconcile(ctx: &Shared) -> Vec<(AppName, tokio::task::JoinHandle<LaunchOutcome>)> {
    let (changes, effects) = ctx.state.borrow_mut().reconcile(Instant::now(), now_ms());
    persist(ctx, &changes);
    let mut launches = Vec::new();
    for effect in effects {
        match effect {
            Effect::Launch { to, spec } => {
                let app = spec.app.name.clone();
                let replica = spec.replica.clone();
                let ctx2 = ctx.clone();
                let request = NodeRequest::Launch(spec);
                let handle = skr8tr_daemon::spawn(async move {
                    let outcome = launch(&ctx2, to, &replica, &request).await;
                    ctx2.wake.notify_one();
                    outcome
                });
                launches.push((app, handle));
            }
            Effect::Deregister { app, backend } => {
                let Some(tower) = ctx.tower else { continue };
                let Ok(service) = skr8tr_proto::name::ServiceName::new(app.as_str()) else {
                    continue;
                };
                let ctx2 = ctx.clone();
                skr8tr_daemon::spawn(async move {
                    let request = skr8tr_proto::wire::TowerRequest::Deregister {
                        service,
                        backend: skr8tr_proto::wire::Backend::new(backend.ip(), backend.port()),
                    }
                    .encode();
                    match skr8tr_daemon::call(
                        ctx2.driver,
                        tower,
                        &request,
                        ctx2.mesh_key.as_ref(),
                        Patience::DEFAULT,
                    )
                    .await
                    {
                        Ok(_) => {
                            tracing::info!(%app, %backend, "deregistered a lost node's replica")
                        }
                        Err(e) => {
                            tracing::warn!(%app, %backend, error = %e, "could not deregister; its TTL will")
                        }
                    }
                });
            }
            Effect::Kill { to, node, replica } => {
                let ctx2 = ctx.clone();
                skr8tr_daemon::spawn(async move {
                    let request = NodeRequest::Kill {
                        node,
                        replica: replica.clone(),
                    };
                    match node_call(&ctx2, to, &request).await {
                        Ok(NodeReply::Killed(_)) => tracing::debug!(%replica, "kill acknowledged"),
                        Ok(other) => {
                            tracing::warn!(%replica, reply = %other.encode(), "unexpected KILL reply")
                        }
                        Err(e) => {
                            tracing::warn!(%replica, error = %e, "KILL not delivered; retried by reconcile")
                        }
                    }
                });
            }
        }
    }
    launches
}

async fn launch(
    ctx: &Shared,
    to: std::net::SocketAddr,
    replica: &ReplicaId,
    request: &NodeRequest,
) -> LaunchOutcome {
    match node_call(ctx, to, request).await {
        Ok(NodeReply::Launched { pid, port, .. }) => {
            let changes = ctx.state.borrow_mut().launched(replica, pid, port);
            persist(ctx, &changes);
            tracing::info!(%replica, pid, port, "replica launched");
            LaunchOutcome::Launched
        }
        Ok(NodeReply::Error(err)) => {
            let detail = format!("{}: {}", err.code.keyword(), err.detail.as_str());
            let changes = ctx
                .state
                .borrow_mut()
                .launch_failed(replica, &detail, Instant::now());
            persist(ctx, &changes);
            LaunchOutcome::Failed(detail)
        }
        Ok(other) => {
            tracing::warn!(%replica, reply = %other.encode(), "unexpected LAUNCH reply");
            LaunchOutcome::Unconfirmed
        }
        Err(e) => {
            tracing::warn!(%replica, error = %e, "LAUNCH unconfirmed; the node's heartbeats will tell");
            LaunchOutcome::Unconfirmed
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum NodeCallError {
    #[error(transparent)]
    Call(#[from] skr8tr_daemon::CallError),
    #[error("request too large for a datagram: {0}")]
    TooLarge(skr8tr_proto::wire::WireError),
    #[error("undecodable reply: {0}")]
    BadReply(skr8tr_proto::wire::WireError),
}

async fn node_call(
    ctx: &Ctx,
    to: std::net::SocketAddr,
    request: &NodeRequest,
) -> Result<NodeReply, NodeCallError> {
    let text = request
        .encode_within(MAX_SIGNED_MESSAGE)
        .map_err(NodeCallError::TooLarge)?;
    let reply = skr8tr_daemon::call(
        ctx.driver,
        to,
        &text,
        ctx.mesh_key.as_ref(),
        Patience::DEFAULT,
    )
    .await?;
    NodeReply::decode(reply.as_bytes()).map_err(NodeCallError::BadReply)
}

fn on_mesh_datagram(ctx: &Shared, gate: &mut Gate, data: &[u8], from: std::net::SocketAddr) {
    let admission = gate.admit(data);
    let text = match admission {
        Admission::Drop => return,
        Admission::Refused(ref e) => {
            tracing::warn!(%from, reason = e.code(), "refused a mesh message");
            return;
        }
        Admission::Signed(t) | Admission::Unsigned(t) => t,
    };
    let event = match MeshEvent::decode(text.as_bytes()) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(%from, error = %e, "dropped an unparseable mesh datagram");
            return;
        }
    };
    if !gate.allows(event.auth(), &admission) {
        tracing::warn!(%from, verb = event.verb(), "refused an unsigned mesh message");
        return;
    }
    match event {
        MeshEvent::Heartbeat(hb) => {
            if hb.node.as_str() == "pending" {
                tracing::warn!(%from, "refused a node named `pending` (reserved)");
                return;
            }
            let now = Instant::now();
            let is_new = !ctx.state.borrow().live_nodes(now).any(|n| n.id == hb.node);
            let node = hb.node.clone();
            let changes = ctx.state.borrow_mut().heartbeat(hb, from.ip(), now);
            persist(ctx, &changes);
            if is_new {
                tracing::info!(%node, %from, "node joined");
                ctx.wake.notify_one();
            }
        }
        MeshEvent::Died(d) => {
            tracing::info!(node = %d.node, replica = %d.replica, exit = %d.exit, restarting = d.restarting, "replica died");
            ctx.wake.notify_one();
        }
    }
}

fn on_command_datagram(ctx: &Shared, gate: &mut Gate, data: &[u8], from: std::net::SocketAddr) {
    let admission = gate.admit(data);
    let reply_now = |reply: ConductorReply| {
        let ctx = ctx.clone();
        skr8tr_daemon::spawn(async move { send_reply(&ctx, reply, from).await });
    };
    let text = match admission {
        Admission::Drop => return,
        Admission::Refused(ref e) => {
            tracing::warn!(%from, reason = e.code(), "refused a signed command");
            reply_now(err(ErrorCode::Unauthorized, ""));
            return;
        }
        Admission::Signed(t) | Admission::Unsigned(t) => t,
    };
    let request = match ConductorRequest::decode(text.as_bytes()) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%from, error = %e, "dropped an unparseable command");
            return;
        }
    };
    if !gate.allows(request.auth(), &admission) {
        tracing::warn!(%from, verb = request.verb(), "refused an unsigned command");
        reply_now(err(ErrorCode::Unauthorized, ""));
        return;
    }
    tracing::debug!(%from, verb = request.verb(), signed = matches!(admission, Admission::Signed(_)), "command");
    let ctx = ctx.clone();
    skr8tr_daemon::spawn(async move {
        let reply = handle(&ctx, request).await;
        send_reply(&ctx, reply, from).await;
    });
}

async fn send_reply(ctx: &Ctx, reply: ConductorReply, to: std::net::SocketAddr) {
    let text = match reply.encode_within(skr8tr_proto::wire::MAX_DATAGRAM) {
        Ok(t) => t,
        Err(e) => err(ErrorCode::Internal, &format!("reply too large: {e}")).encode(),
    };
    if let Err(e) = ctx.commands.send_to(text.into_bytes(), to).await {
        tracing::debug!(%to, error = %e, "reply not sent");
    }
}

fn err(code: ErrorCode, detail: &str) -> ConductorReply {
    ConductorReply::Error(ErrorReply::lossy(code, detail))
}

async fn handle(ctx: &Shared, request: ConductorRequest) -> ConductorReply {
    let now = Instant::now();
    match request {
        ConductorRequest::Ping => ConductorReply::Pong,
        ConductorRequest::List => ConductorReply::List(ctx.state.borrow().list()),
        ConductorRequest::Nodes => ConductorReply::Nodes(ctx.state.borrow().node_entries(now)),
        ConductorRequest::Status { app } => {
            ConductorReply::Status(ctx.state.borrow().status(app.as_ref(), now_ms()))
        }
        ConductorRequest::Apps => ConductorReply::Apps(ctx.state.borrow().app_entries()),
        ConductorRequest::Submit(source) => submit(ctx, source, false).await,
        ConductorRequest::Rollout(source) => submit(ctx, source, true).await,
        ConductorRequest::Evict(app) => {
            let changes = ctx.state.borrow_mut().evict(&app);
            match changes {
                Some(changes) => {
                    persist(ctx, &changes);
                    tracing::info!(%app, "evicted");
                    reconcile(ctx);
                    ConductorReply::Evicted(app)
                }
                None => err(ErrorCode::NotFound, app.as_str()),
            }
        }
        ConductorRequest::Scale { app, replicas } => {
            if replicas > MAX_REPLICAS {
                return err(
                    ErrorCode::BadRequest,
                    &format!("replicas must be at most {MAX_REPLICAS}"),
                );
            }
            let changes = ctx.state.borrow_mut().scale(&app, replicas);
            match changes {
                Some(changes) => {
                    persist(ctx, &changes);
                    tracing::info!(%app, replicas, "scaled");
                    reconcile(ctx);
                    ConductorReply::Scaled { app, replicas }
                }
                None => err(ErrorCode::NotFound, app.as_str()),
            }
        }
        ConductorRequest::RolloutStatus(app) => rollout_status(ctx, &app),
        ConductorRequest::Logs { app, replica } => {
            let target = pick(ctx, &app, replica.as_ref());
            let Some((to, node, replica)) = target else {
                return err(ErrorCode::NotFound, &format!("no replica of {app}"));
            };
            match node_call(ctx, to, &NodeRequest::Logs { node, replica }).await {
                Ok(NodeReply::Logs(logs)) => ConductorReply::Logs(logs),
                Ok(NodeReply::Error(e)) => ConductorReply::Error(e),
                Ok(other) => err(
                    ErrorCode::Internal,
                    &format!("unexpected node reply {}", other.encode()),
                ),
                Err(e) => err(ErrorCode::Timeout, &e.to_string()),
            }
        }
        ConductorRequest::Exec { app, cmd } => {
            let Some((to, node, replica)) = pick(ctx, &app, None) else {
                return err(ErrorCode::NotFound, &format!("no replica of {app}"));
            };
            let timeout_ms = u32::try_from(ctx.exec_timeout.as_millis()).unwrap_or(u32::MAX);
            let request = NodeRequest::Exec {
                node,
                replica,
                timeout_ms,
                cmd,
            };
            match node_call(ctx, to, &request).await {
                Ok(NodeReply::Exec(out)) => ConductorReply::Exec(out),
                Ok(NodeReply::Error(e)) => ConductorReply::Error(e),
                Ok(other) => err(
                    ErrorCode::Internal,
                    &format!("unexpected node reply {}", other.encode()),
                ),
                Err(e) => err(ErrorCode::Timeout, &e.to_string()),
            }
        }
    }
}

fn pick(
    ctx: &Ctx,
    app: &AppName,
    replica: Option<&ReplicaId>,
) -> Option<(std::net::SocketAddr, skr8tr_proto::name::NodeId, ReplicaId)> {
    let state = ctx.state.borrow();
    let rec = state.pick_replica(app, replica)?;
    let to = state.agent_addr(&rec.node)?;
    Some((to, rec.node.clone(), rec.id.clone()))
}

/// SUBMIT (waits for its launches) or ROLLOUT (answers at once; progress is polled).
async fn submit(ctx: &Shared, source: ManifestSource, rollout: bool) -> ConductorReply {
    let (file, text) = match source {
        ManifestSource::Inline(text) => ("<inline>".to_string(), text),
        ManifestSource::Path(path) => {
            let p = PathBuf::from(path.as_str());
            match read_manifest(&p) {
                Ok(text) => (p.display().to_string(), text),
                Err(e) => return err(ErrorCode::BadManifest, &e),
            }
        }
    };
    let manifest = match manifest::parse(&file, &text) {
        Ok(m) => m,
        Err(e) => return err(ErrorCode::BadManifest, &e.to_string().replace('\n', "; ")),
    };
    let names: Vec<AppName> = manifest.apps.iter().map(|a| a.name.clone()).collect();
    let submitted = ctx.state.borrow_mut().submit(manifest.apps, now_ms());
    match submitted {
        Ok(changes) => persist(ctx, &changes),
        Err(busy) => {
            return err(
                ErrorCode::Busy,
                &format!(
                    "a rollout of {busy} is running; wait for it (skr8tr rollout shows progress)"
                ),
            );
        }
    }
    for name in &names {
        tracing::info!(app = %name, "submitted");
    }
    let launches = reconcile(ctx);
    if rollout {
        ctx.wake.notify_one();
        return match names.first() {
            Some(app) => ConductorReply::RolloutStarted(app.clone()),
            None => err(ErrorCode::BadManifest, "no app"),
        };
    }
    let mine = launches.into_iter().filter(|(app, _)| names.contains(app));
    let mut failures = Vec::new();
    let deadline = tokio::time::Instant::now() + SUBMIT_WAIT;
    for (app, handle) in mine {
        match tokio::time::timeout_at(deadline, handle).await {
            Ok(Ok(LaunchOutcome::Failed(e))) => failures.push(format!("{app}: {e}")),
            Ok(Ok(LaunchOutcome::Launched | LaunchOutcome::Unconfirmed)) | Ok(Err(_)) | Err(_) => {}
        }
    }
    if !failures.is_empty() {
        return err(ErrorCode::LaunchFailed, &failures.join("; "));
    }
    let state = ctx.state.borrow();
    let placements = names
        .iter()
        .map(|name| Placement {
            app: name.clone(),
            nodes: state
                .replicas
                .values()
                .filter(|r| &r.app == name && r.phase != ReplicaPhase::Stopping)
                .filter(|r| {
                    state
                        .apps
                        .get(name)
                        .is_some_and(|a| a.generation == r.generation)
                })
                .map(|r| r.node.clone())
                .collect(),
        })
        .collect();
    ConductorReply::Submitted(placements)
}

fn read_manifest(path: &std::path::Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{}: larger than {MAX_MANIFEST_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn rollout_status(ctx: &Ctx, app: &AppName) -> ConductorReply {
    match ctx.state.borrow().rollout_progress(app) {
        None => err(ErrorCode::NotFound, app.as_str()),
        Some((state, done, total, detail)) => ConductorReply::RolloutStatus(RolloutProgress {
            app: app.clone(),
            state,
            done,
            total,
            detail: OneLine::lossy(&detail),
        }),
    }
}

/// Refreshes which running rollouts' new replicas the edge routes to: every healthy new
/// replica is in the Tower, and every subscriber acknowledged the Tower's current version.
async fn update_edge(ctx: &Shared) {
    use skr8tr_proto::wire::{TowerReply, TowerRequest};
    let wanted: Vec<(AppName, Vec<std::net::SocketAddr>)> = {
        let state = ctx.state.borrow();
        state
            .rollouts
            .values()
            .filter(|r| r.state == RolloutState::Running)
            .map(|r| {
                let backends = state
                    .replicas
                    .values()
                    .filter(|rep| rep.app == r.app && rep.generation == r.to_generation)
                    .filter(|rep| rep.phase == ReplicaPhase::Healthy)
                    .filter_map(|rep| {
                        let ip = state.nodes.get(&rep.node)?.addr;
                        rep.port.map(|port| std::net::SocketAddr::new(ip, port))
                    })
                    .collect();
                (r.app.clone(), backends)
            })
            .collect()
    };
    if wanted.is_empty() {
        return;
    }
    let mut ready = std::collections::HashSet::new();
    for (app, backends) in wanted {
        let serves = ctx
            .state
            .borrow()
            .apps
            .get(&app)
            .is_some_and(|a| a.spec.port.is_some());
        let Some(tower) = ctx.tower.filter(|_| serves) else {
            ready.insert(app);
            continue;
        };
        let patience = Patience {
            attempts: 2,
            first_wait: Duration::from_millis(100),
        };
        let listed = match skr8tr_daemon::call(
            ctx.driver,
            tower,
            &TowerRequest::List.encode(),
            None,
            patience,
        )
        .await
        {
            Ok(reply) => match TowerReply::decode(reply.as_bytes()) {
                Ok(TowerReply::List(entries)) => entries
                    .into_iter()
                    .filter(|e| e.service.as_str() == app.as_str())
                    .map(|e| std::net::SocketAddr::new(e.backend.ip, e.backend.port))
                    .collect::<Vec<_>>(),
                _ => continue,
            },
            Err(_) => continue,
        };
        if !backends.iter().all(|b| listed.contains(b)) {
            continue;
        }
        let Ok(service) = skr8tr_proto::name::ServiceName::new(app.as_str()) else {
            continue;
        };
        let ask = TowerRequest::Drained {
            service,
            version: 0,
        }
        .encode();
        if let Ok(reply) = skr8tr_daemon::call(ctx.driver, tower, &ask, None, patience).await
            && let Ok(TowerReply::Drained(d)) = TowerReply::decode(reply.as_bytes())
            && d.all()
        {
            ready.insert(app);
        }
    }
    let changed = ctx.state.borrow().edge_ready != ready;
    ctx.state.borrow_mut().edge_ready = ready;
    if changed {
        ctx.wake.notify_one();
    }
}
