//! The Tower daemon: datagrams in, [`Registry`] and [`RouteTable`] calls, replies and pushes
//! out.
//!
//! ```text
//! datagram ─Gate(mesh)─▶ TowerRequest ─handle()─▶ TowerReply ─▶ sender
//!                                          └──▶ UPDATE / ROUTES_UPDATE (mesh-signed) ─▶ watchers
//! tick (250 ms): expire entries and leases ─▶ pushes; every second re-send unacked pushes
//! --admin TCP: /metrics (TowerMetrics), /healthz
//! ```
//! `handle` is a pure function of the registry and the request, so it is unit-tested without
//! sockets; [`run`] only moves bytes, on `skr8tr_daemon`'s datagram server. Unparseable
//! datagrams and replies are logged and dropped, never answered.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use skr8tr_daemon::{Gate, Handler, Origin, UdpEndpoint};
use skr8tr_proto::auth::{SigningKey, SystemClock, sign_command};
use skr8tr_proto::wire::{
    Backend, DrainStatus, ErrorCode, ErrorReply, Message, PublishedRoute, Request, RoutesUpdate,
    TowerEntry, TowerPush, TowerReply, TowerRequest,
};

use super::metrics::TowerMetrics;
use super::registry::{DEFAULT_TTL, MAX_TTL, Push, Registry};
use super::routes::{RouteTable, RoutesPush};

/// How often entries and leases are expired.
const TICK: Duration = Duration::from_millis(250);
/// How often an UPDATE a watcher has not acknowledged is sent again.
const RESEND: Duration = Duration::from_secs(1);

/// What the Tower is started with.
#[derive(Debug)]
pub struct TowerConfig {
    /// Verifies mesh-signed requests; `None` is dev mode (loopback only, nothing checked).
    pub gate: Gate,
    /// Signs UPDATE pushes; `None` in dev mode.
    pub mesh_key: Option<SigningKey>,
    /// TTL of a REGISTER that names none.
    pub default_ttl: Duration,
    /// The admin listener (`/metrics`, `/healthz`), already bound; `None`: off.
    pub admin: Option<std::net::TcpListener>,
}

impl TowerConfig {
    /// Dev mode: no keys, default TTL.
    #[must_use]
    pub fn dev() -> Self {
        Self {
            gate: Gate::new(None),
            mesh_key: None,
            default_ttl: DEFAULT_TTL,
            admin: None,
        }
    }
}

/// What the Tower knows: the service registry and the route table.
#[derive(Debug, Default)]
pub struct Tower {
    pub registry: Registry,
    pub routes: RouteTable,
}

impl Tower {
    /// An empty Tower whose versions start at `epoch` ([`super::registry::epoch_now`]).
    #[must_use]
    pub fn with_epoch(epoch: u64) -> Self {
        Self {
            registry: Registry::with_epoch(epoch),
            routes: RouteTable::with_epoch(epoch),
        }
    }
}

/// A push (`UPDATE` or `ROUTES_UPDATE`), encoded, and the subscriber it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: SocketAddr,
    pub verb: &'static str,
    /// The bare push, signed when it is sent.
    pub text: String,
}

impl Outgoing {
    fn new(to: SocketAddr, push: &impl Request) -> Self {
        Self {
            to,
            verb: push.verb(),
            text: push.encode(),
        }
    }
}

fn updates(pushes: Vec<Push>) -> Vec<Outgoing> {
    pushes
        .into_iter()
        .map(|p| {
            let update = TowerPush::Update {
                service: p.service,
                version: p.version,
                backends: p.backends.into_iter().map(backend).collect(),
            };
            Outgoing::new(p.to, &update)
        })
        .collect()
}

fn routes_updates(pushes: Vec<RoutesPush>) -> Vec<Outgoing> {
    pushes
        .into_iter()
        .map(|p| {
            let update = RoutesUpdate {
                app: p.app,
                version: p.version,
                routes: p.routes,
            };
            Outgoing::new(p.to, &update)
        })
        .collect()
}

fn lease_of(lease_s: u32) -> Duration {
    Duration::from_secs(u64::from(lease_s)).clamp(Duration::from_secs(1), MAX_TTL)
}

fn watching(lease: Duration) -> TowerReply {
    TowerReply::Watching {
        lease_s: u32::try_from(lease.as_secs()).unwrap_or(u32::MAX),
    }
}

/// Answers one request. Returns the reply and the pushes the request caused.
pub fn handle(
    tower: &mut Tower,
    request: TowerRequest,
    from: SocketAddr,
    default_ttl: Duration,
    now: Instant,
) -> (TowerReply, Vec<Outgoing>) {
    let (reply, pushes) = match request {
        TowerRequest::PublishRoutes { app, routes } => {
            return match tower.routes.publish(&app, routes, now) {
                Ok((version, pushes)) => (
                    TowerReply::Published { app, version },
                    routes_updates(pushes),
                ),
                Err(e) => (
                    TowerReply::Error(ErrorReply::lossy(ErrorCode::Busy, &e.to_string())),
                    Vec::new(),
                ),
            };
        }
        TowerRequest::Routes => {
            let entries = tower
                .routes
                .routes()
                .into_iter()
                .map(|(app, route)| PublishedRoute { app, route })
                .collect();
            return (TowerReply::Routes(entries), Vec::new());
        }
        TowerRequest::WatchRoutes { lease_s } => {
            let lease = lease_of(lease_s);
            return match tower.routes.watch(from, lease, now) {
                Ok(pushes) => (watching(lease), routes_updates(pushes)),
                Err(e) => (
                    TowerReply::Error(ErrorReply::lossy(ErrorCode::Busy, &e.to_string())),
                    Vec::new(),
                ),
            };
        }
        TowerRequest::AckRoutes { app, version } => {
            tower.routes.ack(from, &app, version);
            return (TowerReply::AckedRoutes { app, version }, Vec::new());
        }
        other => handle_registry(&mut tower.registry, other, from, default_ttl, now),
    };
    (reply, updates(pushes))
}

/// The registry's requests (REGISTER … DRAINED).
fn handle_registry(
    registry: &mut Registry,
    request: TowerRequest,
    from: SocketAddr,
    default_ttl: Duration,
    now: Instant,
) -> (TowerReply, Vec<Push>) {
    match request {
        TowerRequest::Register {
            service,
            backend,
            ttl_s,
        } => {
            if backend.port == 0 {
                return (bad_request("port 0 cannot be registered"), Vec::new());
            }
            let ttl = ttl_s.map_or(default_ttl, |s| Duration::from_secs(u64::from(s)));
            if ttl.is_zero() {
                return (bad_request("a TTL of 0 s would expire at once"), Vec::new());
            }
            let pushes = registry.register(&service, addr(backend), ttl, now);
            (TowerReply::Registered(service), pushes)
        }
        TowerRequest::Deregister { service, backend } => {
            let pushes = registry.deregister(&service, addr(backend), now);
            (TowerReply::Deregistered(service), pushes)
        }
        TowerRequest::Lookup(service) => match registry.lookup(&service, now) {
            Some(b) => (
                TowerReply::Lookup {
                    service,
                    backend: backend(b),
                },
                Vec::new(),
            ),
            None => (
                TowerReply::Error(ErrorReply::lossy(ErrorCode::NotFound, service.as_str())),
                Vec::new(),
            ),
        },
        TowerRequest::List => {
            let entries = registry
                .list(now)
                .into_iter()
                .map(|l| TowerEntry {
                    service: l.service,
                    backend: backend(l.backend),
                    ttl_s: u32::try_from(l.ttl_left.as_secs()).unwrap_or(u32::MAX),
                })
                .collect();
            (TowerReply::List(entries), Vec::new())
        }
        TowerRequest::Ping => (TowerReply::Pong, Vec::new()),
        TowerRequest::Watch { services, lease_s } => {
            let lease = lease_of(lease_s);
            match registry.watch(from, &services, lease, now) {
                Ok(pushes) => (watching(lease), pushes),
                Err(e) => (
                    TowerReply::Error(ErrorReply::lossy(ErrorCode::Busy, &e.to_string())),
                    Vec::new(),
                ),
            }
        }
        TowerRequest::Unwatch(service) => {
            registry.unwatch(from, &service);
            (TowerReply::Unwatched(service), Vec::new())
        }
        TowerRequest::Ack {
            service,
            version,
            drained,
        } => {
            if drained {
                registry.ack(from, &service, version);
            }
            (TowerReply::Acked { service, version }, Vec::new())
        }
        TowerRequest::Drained { service, version } => {
            // Version 0 asks about the service's current version, which the reply names.
            let version = if version == 0 {
                registry.backends(&service, now).0
            } else {
                version
            };
            let state = registry.drained(&service, version, now);
            (
                TowerReply::Drained(DrainStatus {
                    service,
                    version,
                    acked: u32::try_from(state.acked).unwrap_or(u32::MAX),
                    subscribers: u32::try_from(state.subscribers).unwrap_or(u32::MAX),
                }),
                Vec::new(),
            )
        }
        TowerRequest::PublishRoutes { .. }
        | TowerRequest::Routes
        | TowerRequest::WatchRoutes { .. }
        | TowerRequest::AckRoutes { .. } => (
            bad_request("a route request reached the registry"),
            Vec::new(),
        ),
    }
}

fn bad_request(detail: &str) -> TowerReply {
    TowerReply::Error(ErrorReply::lossy(ErrorCode::BadRequest, detail))
}

fn addr(b: Backend) -> SocketAddr {
    SocketAddr::new(b.ip, b.port)
}

fn backend(a: SocketAddr) -> Backend {
    Backend::new(a.ip(), a.port())
}

/// Serves the Tower on `socket` until `shutdown` resolves.
///
/// # Errors
/// Only a receive error that is not about one datagram (the socket itself failed).
pub async fn run(
    socket: UdpEndpoint,
    mut config: TowerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let socket = Rc::new(socket);
    let tower = Rc::new(RefCell::new(
        Tower::with_epoch(super::registry::epoch_now()),
    ));
    let mesh_key = Rc::new(config.mesh_key.take());
    let metrics = Rc::new(TowerMetrics::new());
    let admin = match config.admin.take() {
        Some(listener) => {
            listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let (tower, metrics) = (tower.clone(), metrics.clone());
            let pages = Rc::new(move |path: &str| admin_page(&tower.borrow(), &metrics, path));
            Some(skr8tr_daemon::spawn(skr8tr_daemon::admin::serve(
                listener, pages,
            )))
        }
        None => None,
    };

    // Expiry and re-send of unacknowledged updates.
    let ticker = {
        let (socket, tower, mesh_key) = (socket.clone(), tower.clone(), mesh_key.clone());
        let metrics = metrics.clone();
        skr8tr_daemon::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            let mut last_resend = Instant::now();
            loop {
                tick.tick().await;
                let now = Instant::now();
                let mut pushes = {
                    let mut tower = tower.borrow_mut();
                    tower.routes.expire(now);
                    updates(tower.registry.expire(now))
                };
                if now.duration_since(last_resend) >= RESEND {
                    last_resend = now;
                    let tower = tower.borrow();
                    pushes.extend(updates(tower.registry.unacked(now)));
                    pushes.extend(routes_updates(tower.routes.unacked(now)));
                }
                send_pushes(&socket, mesh_key.as_ref().as_ref(), &metrics, pushes).await;
            }
        })
    };

    let requests = Requests {
        socket: socket.clone(),
        tower,
        mesh_key,
        default_ttl: config.default_ttl,
        metrics,
    };
    let result = tokio::select! {
        r = skr8tr_daemon::serve(&socket, config.gate, requests) => r,
        () = shutdown => Ok(()),
    };
    ticker.abort();
    if let Some(admin) = admin {
        admin.abort();
    }
    result
}

/// What the Tower's admin listener answers for `path`.
fn admin_page(
    tower: &Tower,
    metrics: &TowerMetrics,
    path: &str,
) -> skr8tr_daemon::admin::AdminReply {
    use skr8tr_daemon::admin::{AdminReply, METRICS_CONTENT_TYPE};
    match path.split('?').next().unwrap_or(path) {
        "/metrics" => AdminReply::ok(METRICS_CONTENT_TYPE, metrics.render(tower, Instant::now())),
        "/healthz" => AdminReply::text(200, "ok\n"),
        _ => AdminReply::not_found(),
    }
}

/// The Tower's socket handler: [`handle`] on the shared registry, then the pushes it caused.
struct Requests {
    socket: Rc<UdpEndpoint>,
    tower: Rc<RefCell<Tower>>,
    mesh_key: Rc<Option<SigningKey>>,
    default_ttl: Duration,
    metrics: Rc<TowerMetrics>,
}

impl Handler for Requests {
    type Request = TowerRequest;
    const NOUN: &'static str = "request";

    fn unauthorized(&mut self, reason: &'static str) -> Option<String> {
        self.metrics.auth_rejected(reason);
        Some(TowerReply::Error(ErrorReply::lossy(ErrorCode::Unauthorized, "")).encode())
    }

    async fn handle(&mut self, request: TowerRequest, origin: Origin) -> Option<String> {
        let from = origin.from;
        let verb = request.verb();
        tracing::debug!(%from, verb, "request");
        let (reply, pushes) = handle(
            &mut self.tower.borrow_mut(),
            request,
            from,
            self.default_ttl,
            Instant::now(),
        );
        if let TowerReply::Registered(s) | TowerReply::Deregistered(s) = &reply {
            tracing::info!(%from, service = %s, watchers_told = pushes.len(), "{}", reply_word(&reply));
        }
        if let TowerReply::Published { app, version } = &reply
            && !pushes.is_empty()
        {
            tracing::info!(%from, %app, version, watchers_told = pushes.len(), "routes published");
        }
        let result = match &reply {
            TowerReply::Error(e) => e.code.keyword(),
            _ => "ok",
        };
        self.metrics.request(verb, result);
        // The reply first, so a watcher learns its lease before the first UPDATE.
        skr8tr_daemon::send_reply(&self.socket, reply.encode(), from).await;
        send_pushes(
            &self.socket,
            self.mesh_key.as_ref().as_ref(),
            &self.metrics,
            pushes,
        )
        .await;
        None
    }
}

fn reply_word(reply: &TowerReply) -> &'static str {
    match reply {
        TowerReply::Registered(_) => "registered",
        TowerReply::Deregistered(_) => "deregistered",
        _ => "answered",
    }
}

async fn send_pushes(
    socket: &UdpEndpoint,
    key: Option<&SigningKey>,
    metrics: &TowerMetrics,
    pushes: Vec<Outgoing>,
) {
    for Outgoing { to, verb, text } in pushes {
        metrics.pushed(verb);
        let datagram = match key {
            Some(key) => match sign_command(key, &text, SystemClock::now()) {
                Ok(signed) => signed,
                Err(e) => {
                    tracing::error!(error = %e, verb, "cannot sign a push");
                    continue;
                }
            },
            None => text,
        };
        if let Err(e) = socket.send_to(datagram.into_bytes(), to).await {
            tracing::debug!(%to, error = %e, verb, "push not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::name::ServiceName;

    use super::*;

    fn req(text: &str) -> TowerRequest {
        TowerRequest::decode(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_seed_exchange() {
        let mut r = Tower::default();
        let from: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let t = Instant::now();
        let mut say = |text: &str| handle(&mut r, req(text), from, DEFAULT_TTL, t).0.encode();
        assert_eq!(say("PING"), "OK|PONG|tower");
        assert_eq!(say("REGISTER|api|127.0.0.1|8080"), "OK|REGISTERED|api");
        assert_eq!(say("REGISTER|api|127.0.0.1|8081"), "OK|REGISTERED|api");
        assert_eq!(say("LOOKUP|api"), "OK|LOOKUP|api|127.0.0.1|8080");
        assert_eq!(say("LOOKUP|api"), "OK|LOOKUP|api|127.0.0.1|8081");
        assert_eq!(
            say("LIST"),
            "OK|LIST|2|api:127.0.0.1:8080:30,api:127.0.0.1:8081:30"
        );
        assert_eq!(say("DEREGISTER|api|127.0.0.1|8080"), "OK|DEREGISTERED|api");
        assert_eq!(say("LOOKUP|nope"), "ERR|NOT_FOUND|nope");
        assert!(say("REGISTER|api|127.0.0.1|0").starts_with("ERR|BAD_REQUEST"));
    }

    #[test]
    fn watch_ack_drained() {
        let mut r = Tower::default();
        let edge: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let node: SocketAddr = "127.0.0.1:6001".parse().unwrap();
        let t = Instant::now();
        handle(
            &mut r,
            req("REGISTER|api|10.0.0.1|80"),
            node,
            DEFAULT_TTL,
            t,
        );
        let (reply, pushes) = handle(&mut r, req("WATCH|api|10"), edge, DEFAULT_TTL, t);
        assert_eq!(reply.encode(), "OK|WATCHING|10");
        assert_eq!(pushes.len(), 1);
        let (_, pushes) = handle(
            &mut r,
            req("DEREGISTER|api|10.0.0.1|80"),
            node,
            DEFAULT_TTL,
            t,
        );
        assert_eq!(pushes.len(), 1);
        let v = match TowerPush::decode(pushes[0].text.as_bytes()) {
            Ok(TowerPush::Update { version, .. }) => version,
            other => panic!("{other:?}"),
        };
        let drained = |r: &mut Tower| {
            handle(r, req(&format!("DRAINED|api|{v}")), node, DEFAULT_TTL, t)
                .0
                .encode()
        };
        assert_eq!(drained(&mut r), format!("OK|DRAINED|api|{v}|0|0|1"));
        // Routing by it but requests still in flight: not drained yet.
        handle(&mut r, req(&format!("ACK|api|{v}|0")), edge, DEFAULT_TTL, t);
        assert_eq!(drained(&mut r), format!("OK|DRAINED|api|{v}|0|0|1"));
        handle(&mut r, req(&format!("ACK|api|{v}|1")), edge, DEFAULT_TTL, t);
        assert_eq!(drained(&mut r), format!("OK|DRAINED|api|{v}|1|1|1"));
        let svc = ServiceName::new("api").unwrap();
        assert_eq!(r.registry.backends(&svc, t).1, vec![]);
    }

    #[test]
    fn publish_watch_ack_routes() {
        let mut r = Tower::default();
        let conductor: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let edge: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let t = Instant::now();
        let mut say = |text: &str, from: SocketAddr| {
            let (reply, pushes) = handle(&mut r, req(text), from, DEFAULT_TTL, t);
            let pushes: Vec<String> = pushes
                .into_iter()
                .map(|p| {
                    assert_eq!(p.to, edge);
                    p.text
                })
                .collect();
            (reply.encode(), pushes)
        };
        assert_eq!(say("ROUTES", edge), ("OK|ROUTES|0|".into(), vec![]));
        let publish = "PUBLISH_ROUTES|api|2|api.example.com:/api:s:-:-:-:-,-:/:-:-:-:-:-";
        assert_eq!(say(publish, conductor).0, "OK|PUBLISHED|api|1");
        // The same set again: same version, nothing pushed.
        assert_eq!(
            say(publish, conductor),
            ("OK|PUBLISHED|api|1".into(), vec![])
        );
        assert_eq!(
            say("ROUTES", edge).0,
            "OK|ROUTES|2|api:api.example.com:/api:s:-:-:-:-,api:-:/:-:-:-:-:-"
        );
        assert_eq!(
            say("WATCH_ROUTES|30", edge),
            (
                "OK|WATCHING|30".into(),
                vec!["ROUTES_UPDATE|api|1|2|api.example.com:/api:s:-:-:-:-,-:/:-:-:-:-:-".into()]
            )
        );
        assert_eq!(say("ACK_ROUTES|api|1", edge).0, "OK|ACKED_ROUTES|api|1");
        // EVICT withdraws them: pushed to the watcher, gone from the table.
        assert_eq!(
            say("PUBLISH_ROUTES|api|0|", conductor),
            (
                "OK|PUBLISHED|api|2".into(),
                vec!["ROUTES_UPDATE|api|2|0|".into()]
            )
        );
        assert_eq!(say("ROUTES", edge).0, "OK|ROUTES|0|");
    }
}
