//! The Conductor daemon: its two sockets (operator commands, node heartbeats), each request
//! dispatched to [`State`], what State returns persisted in the [`Store`] and its effects
//! handed to [`Calls`]; the reconcile loop, and the loop that asks the Tower whether the edge
//! routes to a rollout's new replicas. Decisions live in [`State`], the calls to nodes and the
//! Tower in [`Calls`]; this module moves bytes between them.
//!
//! ```text
//! :7771 ─serve(Gate(operator))─▶ ConductorRequest ─▶ task ─▶ State ─▶ Store ─▶ reply
//! :7770 ─serve(Gate(mesh))─────▶ MeshEvent ────────▶ State.heartbeat / died ─▶ Store
//! every 250 ms or on wake: State.reconcile ─▶ Store ─▶ Calls (LAUNCH/KILL to nodes, DEREGISTER)
//! every 100 ms: State.edge_waits ─▶ Calls (Tower LIST, DRAINED) ─▶ State.set_edge_ready
//! SUBMIT/ROLLOUT/EVICT, at start and every 5 s: State.route_sets ─▶ Calls (PUBLISH_ROUTES)
//! after each of those: State.take_events ─▶ EventLog (stamped) ─▶ metrics; the status changed
//! every 250 ms while a page watches: status::snapshot ─▶ the /events stream
//! --admin TCP: /metrics, /healthz, / (status page), /status.json, /events (status::answer)
//! ```
//! Routes are published again every few seconds (from the durable store after a restart), so
//! a restarted Tower has them back as it has the nodes' backends back, and routes the Tower
//! holds for an app the Conductor does not know are withdrawn.
//! Every request runs in its own task, so a SUBMIT waiting for its launches never holds up a
//! LIST or a heartbeat. Unparseable datagrams and replies are logged and never answered.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skr8tr_daemon::{Driver, Gate, Handler, Origin, UdpEndpoint};
use skr8tr_proto::auth::SigningKey;
use skr8tr_proto::manifest::{self, MAX_REPLICAS};
use skr8tr_proto::name::AppName;
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, ErrorCode, ErrorReply, GenerationEntry, LaunchSpec,
    ManifestSource, MeshEvent, Message, OneLine, Request, SpecDigest,
};
use tokio::sync::{Notify, watch};

use super::calls::{Calls, Launch};
use super::events::EventLog;
use super::metrics::ConductorMetrics;
use super::state::{EdgeWait, Effect, GENERATIONS_KEPT, RolloutCommandError, State, Timings};
use super::store::{Change, Store, StoreError};

/// How often reconcile runs when nothing wakes it.
const RECONCILE_EVERY: Duration = Duration::from_millis(250);
/// How long SUBMIT waits for its launches to be confirmed before answering.
const SUBMIT_WAIT: Duration = Duration::from_secs(5);
/// How often a rollout asks the Tower whether the edge routes to its new replicas.
const EDGE_POLL: Duration = Duration::from_millis(100);
/// How often every app's routes are published again to the Tower.
const ROUTES_EVERY: Duration = Duration::from_secs(5);
/// Largest manifest file SUBMIT reads from the Conductor's disk.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// How often the status snapshot is rebuilt while a status page watches and something changed.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// Most events one EVENTS reply carries (fewer when they would not fit a datagram).
const EVENTS_PER_REPLY: usize = 400;

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
    pub tower: Option<SocketAddr>,
    /// The admin listener (`/metrics`, `/healthz`, the status page), already bound so that a
    /// busy port is reported by `main`; `None`: off.
    pub admin: Option<std::net::TcpListener>,
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
            admin: None,
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

struct Ctx {
    state: RefCell<State>,
    store: Store,
    calls: Calls,
    commands: UdpEndpoint,
    wake: Notify,
    events: RefCell<EventLog>,
    metrics: ConductorMetrics,
    /// The status snapshot the status page's event streams follow.
    status: watch::Sender<String>,
    /// Something the status page shows changed since the last snapshot.
    status_dirty: Cell<bool>,
}

type Shared = Rc<Ctx>;

/// The signature window (SPEC §3: ±30 s): how long an accepted command is kept for the replay
/// check after a restart.
const REPLAY_WINDOW_S: u64 = skr8tr_proto::auth::DEFAULT_WINDOW_SECS;

fn now_s() -> u64 {
    now_ms() / 1000
}

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
    // A state directory from before generations were kept: keep each app's current one now,
    // so that HISTORY and ROLLBACK have it.
    let mut kept = Vec::new();
    for app in &loaded.apps {
        if store.generation(&app.spec.name, app.generation)?.is_none() {
            kept.push(Change::PutGeneration(Box::new(
                super::store::GenerationRecord {
                    app: app.spec.name.clone(),
                    generation: app.generation,
                    at_ms: now_ms(),
                    desired: app.desired,
                    spec: app.spec.clone(),
                },
            )));
        }
    }
    store.apply(&kept)?;
    // Operator commands accepted within the signature window before a restart stay refused
    // as replays (SPEC §3): the replay cache outlives the process.
    let window_start = now_s().saturating_sub(REPLAY_WINDOW_S + 1);
    let accepted = store.accepted_since(window_start)?;
    let remembered = accepted.len();
    let mut operator_gate = config.operator_gate;
    if let Err(e) = operator_gate.remember(accepted) {
        tracing::warn!(error = %e, "cannot remember every command accepted before the restart");
    }
    store.apply(&[Change::ForgetAcceptedBefore(window_start)])?;
    if remembered > 0 {
        tracing::info!(
            remembered,
            "operator commands from before the restart stay refused as replays"
        );
    }
    let state = State::new(loaded, config.timings, Instant::now());
    let ctx: Shared = Rc::new(Ctx {
        state: RefCell::new(state),
        store,
        calls: Calls::new(driver, config.mesh_key, config.tower, config.exec_timeout),
        commands,
        wake: Notify::new(),
        events: RefCell::new(EventLog::new()),
        metrics: ConductorMetrics::new(),
        status: watch::Sender::new(String::new()),
        status_dirty: Cell::new(true),
    });
    take_events(&ctx);

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

    let route_publisher = {
        let ctx = ctx.clone();
        skr8tr_daemon::spawn(async move {
            let mut every = tokio::time::interval(ROUTES_EVERY);
            loop {
                every.tick().await;
                republish_routes(&ctx).await;
            }
        })
    };

    let status_publisher = {
        let ctx = ctx.clone();
        skr8tr_daemon::spawn(async move {
            let mut every = tokio::time::interval(STATUS_EVERY);
            loop {
                every.tick().await;
                if ctx.status_dirty.get() && ctx.status.receiver_count() > 0 {
                    publish_status(&ctx);
                }
            }
        })
    };
    let admin = match config.admin {
        Some(listener) => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let ctx = ctx.clone();
            let pages = Rc::new(move |path: &str| admin_page(&ctx, path));
            Some(skr8tr_daemon::spawn(skr8tr_daemon::admin::serve(
                listener, pages,
            )))
        }
        None => None,
    };

    let heartbeat_loop = skr8tr_daemon::serve(
        &heartbeats,
        config.mesh_gate,
        Heartbeats { ctx: ctx.clone() },
    );
    let command_loop =
        skr8tr_daemon::serve(&ctx.commands, operator_gate, Commands { ctx: ctx.clone() });
    let result = tokio::select! {
        r = heartbeat_loop => r.map_err(ConductorError::Io),
        r = command_loop => r.map_err(ConductorError::Io),
        () = shutdown => Ok(()),
    };
    reconciler.abort();
    edge_watch.abort();
    route_publisher.abort();
    status_publisher.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    result
}

/// Stamps the events State noted since the last call and keeps them; the status changed.
fn take_events(ctx: &Ctx) {
    let noted = ctx.state.borrow_mut().take_events();
    ctx.status_dirty.set(true);
    if noted.is_empty() {
        return;
    }
    let at = now_ms();
    let mut log = ctx.events.borrow_mut();
    for event in noted {
        let entry = log.push(event, at);
        ctx.metrics.observe_event(entry);
    }
}

/// Rebuilds the status snapshot for the pages watching it.
fn publish_status(ctx: &Ctx) {
    let json = super::status::snapshot(
        &ctx.state.borrow(),
        &ctx.events.borrow(),
        Instant::now(),
        now_ms(),
    );
    ctx.status_dirty.set(false);
    ctx.status.send_replace(json.to_string());
}

/// What the admin listener answers for `path`.
fn admin_page(ctx: &Ctx, path: &str) -> skr8tr_daemon::admin::AdminReply {
    if path.split('?').next() == Some("/events") {
        // A new page starts from a fresh snapshot.
        publish_status(ctx);
    }
    super::status::answer(
        path,
        &ctx.state.borrow(),
        &ctx.events.borrow(),
        &ctx.metrics,
        &ctx.status.subscribe(),
        Instant::now(),
        now_ms(),
    )
}

/// Publishes every app's routes (none for apps without), and withdraws the routes the Tower
/// holds for apps the Conductor does not know (evicted while the Tower was away).
async fn republish_routes(ctx: &Shared) {
    if !ctx.calls.has_tower() {
        return;
    }
    let sets = ctx.state.borrow().route_sets();
    for (app, routes) in sets {
        ctx.calls.publish_routes(&app, routes).await;
    }
    let Some(held) = ctx.calls.route_apps().await else {
        return;
    };
    for app in held {
        let known = ctx.state.borrow().apps.contains_key(&app);
        if !known {
            tracing::info!(%app, "withdrawing routes of an app no longer known");
            ctx.calls.publish_routes(&app, Vec::new()).await;
        }
    }
}

/// Publishes the current route set of each of `apps` (none for an evicted one), in the
/// background.
fn publish_routes(ctx: &Shared, apps: Vec<AppName>) {
    if !ctx.calls.has_tower() {
        return;
    }
    let ctx = ctx.clone();
    skr8tr_daemon::spawn(async move {
        for app in apps {
            let routes = ctx.state.borrow().route_set(&app);
            ctx.calls.publish_routes(&app, routes).await;
        }
    });
}

/// The heartbeat socket: HEARTBEAT and DIED from node agents, never answered.
struct Heartbeats {
    ctx: Shared,
}

impl Handler for Heartbeats {
    type Request = MeshEvent;
    const NOUN: &'static str = "mesh message";

    fn unauthorized(&mut self, reason: &'static str) -> Option<String> {
        self.ctx.metrics.auth_rejected(reason);
        None
    }

    async fn handle(&mut self, event: MeshEvent, origin: Origin) -> Option<String> {
        on_mesh_event(&self.ctx, event, origin.from);
        take_events(&self.ctx);
        None
    }
}

/// The operator command socket: each command in its own task, which sends the reply.
struct Commands {
    ctx: Shared,
}

impl Handler for Commands {
    type Request = ConductorRequest;
    const NOUN: &'static str = "command";

    /// Kept before the command runs, so a crash right after cannot let it be replayed.
    fn signed(&mut self, timestamp: u64, replay_id: [u8; 32]) {
        let forget = now_s().saturating_sub(REPLAY_WINDOW_S + 1);
        persist(
            &self.ctx,
            &[
                Change::Accepted(timestamp, replay_id),
                Change::ForgetAcceptedBefore(forget),
            ],
        );
    }

    fn unauthorized(&mut self, reason: &'static str) -> Option<String> {
        self.ctx.metrics.auth_rejected(reason);
        self.ctx
            .metrics
            .command("unknown", ErrorCode::Unauthorized.keyword());
        Some(err(ErrorCode::Unauthorized, "").encode())
    }

    async fn handle(&mut self, request: ConductorRequest, origin: Origin) -> Option<String> {
        let from = origin.from;
        tracing::debug!(%from, verb = request.verb(), signed = origin.signed, "command");
        let ctx = self.ctx.clone();
        skr8tr_daemon::spawn(async move {
            let verb = request.verb();
            let reply = handle(&ctx, request).await;
            take_events(&ctx);
            let result = match &reply {
                ConductorReply::Error(e) => e.code.keyword(),
                _ => "ok",
            };
            ctx.metrics.command(verb, result);
            send_reply(&ctx, reply, from).await;
        });
        None
    }
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
fn reconcile(ctx: &Shared) -> Vec<(AppName, tokio::task::JoinHandle<Launch>)> {
    let started = Instant::now();
    let (changes, effects) = ctx.state.borrow_mut().reconcile(started, now_ms());
    persist(ctx, &changes);
    ctx.metrics.reconciled(started.elapsed().as_secs_f64());
    take_events(ctx);
    let mut launches = Vec::new();
    for effect in effects {
        let ctx = ctx.clone();
        match effect {
            Effect::Launch { to, spec } => {
                let app = spec.app.name.clone();
                let handle = skr8tr_daemon::spawn(async move {
                    let outcome = launch(&ctx, to, spec).await;
                    ctx.wake.notify_one();
                    outcome
                });
                launches.push((app, handle));
            }
            Effect::Deregister { app, backend } => {
                skr8tr_daemon::spawn(async move { ctx.calls.deregister(app, backend).await });
            }
            Effect::Kill { to, node, replica } => {
                skr8tr_daemon::spawn(async move { ctx.calls.kill(to, node, replica).await });
            }
        }
    }
    launches
}

/// LAUNCH, then what the node answered into the state.
async fn launch(ctx: &Shared, to: SocketAddr, spec: Box<LaunchSpec>) -> Launch {
    let replica = spec.replica.clone();
    let outcome = ctx.calls.launch(to, spec).await;
    match &outcome {
        Launch::Launched { pid, port } => {
            let changes = ctx.state.borrow_mut().launched(&replica, *pid, *port);
            persist(ctx, &changes);
            tracing::info!(%replica, pid, port, "replica launched");
        }
        Launch::Failed(detail) => {
            let changes = ctx
                .state
                .borrow_mut()
                .launch_failed(&replica, detail, Instant::now());
            persist(ctx, &changes);
        }
        Launch::Unconfirmed => {}
    }
    take_events(ctx);
    outcome
}

fn on_mesh_event(ctx: &Shared, event: MeshEvent, from: SocketAddr) {
    match event {
        MeshEvent::Heartbeat(hb) => {
            if hb.node.as_str() == "pending" {
                tracing::warn!(%from, "refused a node named `pending` (reserved)");
                return;
            }
            let now = Instant::now();
            let is_new = !ctx.state.borrow().is_live(&hb.node, now);
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
            let changes = ctx.state.borrow_mut().died(&d);
            persist(ctx, &changes);
            ctx.wake.notify_one();
        }
    }
}

async fn send_reply(ctx: &Ctx, reply: ConductorReply, to: SocketAddr) {
    let text = match reply.encode_within(skr8tr_proto::wire::MAX_DATAGRAM) {
        Ok(t) => t,
        Err(e) => err(ErrorCode::Internal, &format!("reply too large: {e}")).encode(),
    };
    skr8tr_daemon::send_reply(&ctx.commands, text, to).await;
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
            ConductorReply::Status(ctx.state.borrow().status(app.as_ref()))
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
                    publish_routes(ctx, vec![app.clone()]);
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
        ConductorRequest::Plan(source) => plan(ctx, source),
        ConductorRequest::History(app) => history(ctx, &app),
        ConductorRequest::Rollback { app, generation } => rollback(ctx, app, generation),
        ConductorRequest::Promote(app) => {
            let promoted = ctx.state.borrow_mut().promote(&app);
            match promoted {
                Ok(changes) => {
                    persist(ctx, &changes);
                    tracing::info!(%app, "canary promoted");
                    ctx.wake.notify_one();
                    ConductorReply::Promoted(app)
                }
                Err(e @ RolloutCommandError::UnknownApp) => {
                    err(ErrorCode::NotFound, &e.to_string())
                }
                Err(e) => err(ErrorCode::BadRequest, &e.to_string()),
            }
        }
        ConductorRequest::Events { after, app } => {
            let log = ctx.events.borrow();
            events_reply(
                log.last_seq(),
                log.since(after, app.as_ref(), EVENTS_PER_REPLY),
            )
        }
        ConductorRequest::RolloutStatus(app) => match ctx.state.borrow().rollout_progress(&app) {
            Some(progress) => ConductorReply::RolloutStatus(progress),
            None => err(ErrorCode::NotFound, app.as_str()),
        },
        ConductorRequest::Logs { app, replica } => {
            let target = ctx.state.borrow().replica_target(&app, replica.as_ref());
            match target {
                Some(target) => ctx.calls.logs(target).await,
                None => err(ErrorCode::NotFound, &format!("no replica of {app}")),
            }
        }
        ConductorRequest::Exec { app, cmd } => {
            let target = ctx.state.borrow().replica_target(&app, None);
            match target {
                Some(target) => ctx.calls.exec(target, cmd).await,
                None => err(ErrorCode::NotFound, &format!("no replica of {app}")),
            }
        }
    }
}

/// SUBMIT (waits for its launches) or ROLLOUT (answers at once; progress is polled).
async fn submit(ctx: &Shared, source: ManifestSource, rollout: bool) -> ConductorReply {
    let manifest = match read_source(source) {
        Ok(m) => m,
        Err(reply) => return reply,
    };
    let names: Vec<AppName> = manifest.apps.iter().map(|a| a.name.clone()).collect();
    if let Some(taken) = ctx.state.borrow().route_conflict(&manifest.apps) {
        return err(ErrorCode::RouteTaken, &taken.to_string());
    }
    let submitted = ctx.state.borrow_mut().submit(manifest.apps, now_ms());
    match submitted {
        Ok(changes) => {
            persist(ctx, &changes);
            publish_routes(ctx, names.clone());
        }
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
            Ok(Ok(Launch::Failed(e))) => failures.push(format!("{app}: {e}")),
            Ok(Ok(Launch::Launched { .. } | Launch::Unconfirmed)) | Ok(Err(_)) | Err(_) => {}
        }
    }
    if !failures.is_empty() {
        return err(ErrorCode::LaunchFailed, &failures.join("; "));
    }
    ConductorReply::Submitted(ctx.state.borrow().placements(&names))
}

/// The manifest of a SUBMIT, ROLLOUT or PLAN: read (a path on this host, or inline) and parsed.
fn read_source(source: ManifestSource) -> Result<manifest::Manifest, ConductorReply> {
    let (file, text) = match source {
        ManifestSource::Inline(text) => ("<inline>".to_string(), text),
        ManifestSource::Path(path) => {
            let p = PathBuf::from(path.as_str());
            match read_manifest(&p) {
                Ok(text) => (p.display().to_string(), text),
                Err(e) => return Err(err(ErrorCode::BadManifest, &e)),
            }
        }
    };
    manifest::parse(&file, &text)
        .map_err(|e| err(ErrorCode::BadManifest, &e.to_string().replace('\n', "; ")))
}

/// PLAN: what SUBMIT would change, refused as SUBMIT would be (a taken route, a running
/// rollout of a changed app).
fn plan(ctx: &Shared, source: ManifestSource) -> ConductorReply {
    let manifest = match read_source(source) {
        Ok(m) => m,
        Err(reply) => return reply,
    };
    let state = ctx.state.borrow();
    if let Some(taken) = state.route_conflict(&manifest.apps) {
        return err(ErrorCode::RouteTaken, &taken.to_string());
    }
    let mut changed = false;
    let mut lines = Vec::new();
    for app in &manifest.apps {
        let current = state.apps.get(&app.name);
        if let Some(cur) = current
            && cur.spec != *app
            && state.rollouts.get(&app.name).is_some_and(|r| r.active())
        {
            return err(
                ErrorCode::Busy,
                &format!(
                    "a rollout of {} is running; SUBMIT would be refused",
                    app.name
                ),
            );
        }
        let ended = current.is_some_and(|cur| state.ended_for_good(cur));
        let p = super::plan::plan_app(current, ended, app);
        changed |= p.changed;
        lines.extend(p.lines.iter().map(|l| OneLine::lossy(l)));
    }
    ConductorReply::Plan { changed, lines }
}

/// The digest HISTORY shows for a spec: SHA-256 of its normalised text with secret values
/// left out, first 12 hex digits.
fn spec_digest(spec: &skr8tr_proto::manifest::App) -> SpecDigest {
    use sha2::Digest as _;
    let text = manifest::print(
        &manifest::Manifest {
            apps: vec![spec.clone()],
        },
        &manifest::PrintOptions {
            redact_secrets: true,
        },
    );
    SpecDigest::of_bytes(&sha2::Sha256::digest(text.as_bytes())[..6])
}

/// HISTORY: the app's stored generations.
fn history(ctx: &Shared, app: &AppName) -> ConductorReply {
    let current = ctx.state.borrow().apps.get(app).map(|a| a.generation);
    let stored = match ctx.store.generations(app) {
        Ok(g) => g,
        Err(e) => return err(ErrorCode::Internal, &format!("{e:#}")),
    };
    let Some(current) = current else {
        return err(ErrorCode::NotFound, app.as_str());
    };
    ConductorReply::History {
        app: app.clone(),
        current,
        generations: stored
            .iter()
            .map(|g| GenerationEntry {
                generation: g.generation,
                at_ms: g.at_ms,
                desired: g.desired,
                digest: spec_digest(&g.spec),
            })
            .collect(),
    }
}

/// ROLLBACK: drop a running rollout or canary, else roll to a stored generation's spec.
fn rollback(ctx: &Shared, app: AppName, generation: Option<u64>) -> ConductorReply {
    let aborted = ctx.state.borrow_mut().abort_rollout(&app);
    if let Some((changes, from)) = aborted {
        persist(ctx, &changes);
        tracing::info!(%app, generation = from, "rollout rolled back by the operator");
        reconcile(ctx);
        publish_routes(ctx, vec![app.clone()]);
        return ConductorReply::RollingBack {
            app,
            generation: from,
        };
    }
    let Some(current) = ctx.state.borrow().apps.get(&app).map(|a| a.generation) else {
        return err(ErrorCode::NotFound, app.as_str());
    };
    let stored = match ctx.store.generations(&app) {
        Ok(g) => g,
        Err(e) => return err(ErrorCode::Internal, &format!("{e:#}")),
    };
    let target = match generation {
        Some(g) => stored.into_iter().find(|r| r.generation == g),
        None => stored.into_iter().rev().find(|r| r.generation < current),
    };
    let Some(target) = target else {
        let what = generation.map_or_else(
            || "no earlier generation is kept".to_owned(),
            |g| format!("generation {g} is not kept (the last {GENERATIONS_KEPT} are)"),
        );
        return err(ErrorCode::NotFound, &what);
    };
    if let Some(taken) = ctx
        .state
        .borrow()
        .route_conflict(std::slice::from_ref(&target.spec))
    {
        return err(ErrorCode::RouteTaken, &taken.to_string());
    }
    let rolled = ctx
        .state
        .borrow_mut()
        .rollback_to(&app, target.spec, target.generation, now_ms());
    match rolled {
        Ok(changes) => {
            persist(ctx, &changes);
            tracing::info!(%app, to = target.generation, "rolling back");
            publish_routes(ctx, vec![app.clone()]);
            reconcile(ctx);
            ctx.wake.notify_one();
            ConductorReply::RollingBack {
                app,
                generation: target.generation,
            }
        }
        Err(e @ RolloutCommandError::Busy) => err(ErrorCode::Busy, &e.to_string()),
        Err(e @ RolloutCommandError::UnknownApp) => err(ErrorCode::NotFound, &e.to_string()),
        Err(e) => err(ErrorCode::BadRequest, &e.to_string()),
    }
}

/// `OK|EVENTS` with as many of `events` (oldest first) as fit one datagram; the client asks
/// again after the last one it got.
fn events_reply(last_seq: u64, mut events: Vec<skr8tr_proto::wire::EventEntry>) -> ConductorReply {
    loop {
        let reply = ConductorReply::Events {
            last_seq,
            events: events.clone(),
        };
        if events.len() <= 1 || reply.encode().len() <= skr8tr_proto::wire::MAX_DATAGRAM {
            return reply;
        }
        events.truncate(events.len() / 2);
    }
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

/// Refreshes which running rollouts' new replicas the edge routes to: every healthy new
/// replica is in the Tower, and every subscriber acknowledged the Tower's current version.
async fn update_edge(ctx: &Shared) {
    let waits = ctx.state.borrow().edge_waits(ctx.calls.has_tower());
    if waits.is_empty() {
        return;
    }
    let mut ready = HashSet::new();
    for (app, wait) in waits {
        let routed = match wait {
            EdgeWait::Nothing => true,
            EdgeWait::Listed(_) => match ctx.calls.tower_list(&app).await {
                Some(listed) => wait.is_listed_in(&listed) && ctx.calls.tower_drained(&app).await,
                None => false,
            },
        };
        if routed {
            ready.insert(app);
        }
    }
    if ctx.state.borrow_mut().set_edge_ready(ready) {
        ctx.wake.notify_one();
    }
}
