//! Backends from the Tower (SPEC §2 "Tower WATCH"): one plain std thread with a blocking UDP
//! socket. A thread, not a runtime: the work is a few datagrams a second plus ML-DSA signing,
//! and a blocking socket with a short read timeout keeps the renewal, the ACK retries and the
//! drain polling in one readable loop without a second async runtime in the process.
//!
//! ```text
//! WATCH|svc,…|lease (signed) ──▶ Tower        renewed every 2 s (at most half the lease; 1 s retry until OK|WATCHING)
//! UPDATE|svc|v|n|backends (verified) ──▶ Directory::publish (generation G) ──▶ every core
//! every core adopted G ──▶ ACK|svc|v|0;   every core drained G ──▶ ACK|svc|v|1 (retried until OK|ACKED)
//!
//! WATCH_ROUTES|lease (signed) ──▶ Tower      with every WATCH
//! ROUTES_UPDATE|app|v|n|routes (verified) ──▶ Directory::publish_routes (app's routes, G)
//! every core adopted G ──▶ ACK_ROUTES|app|v (retried until OK|ACKED_ROUTES)
//! ```
//!
//! Owns the subscriptions and the ACK bookkeeping. The services watched are those of the routes
//! in force, re-read whenever the directory publishes: a route reload, or an app's published
//! route, that names a new service sends a WATCH for it at once. An app's routes replace its
//! earlier ones whole; an empty set withdraws them. Keeps the last known backend sets while the
//! Tower is silent or unreachable; an UPDATE older than the known version is ignored; with a
//! mesh key, an UPDATE that is unsigned or fails verification is dropped.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use skr8tr_proto::auth::{KeyRole, SignedCommand, SigningKey, SystemClock, Verifier, sign_command};
use skr8tr_proto::name::{AppName, ServiceName};
use skr8tr_proto::wire::{Message, RoutesUpdate, TowerPush, TowerReply, TowerRequest};

use crate::directory::{Directory, ServiceSet, with_static};

/// Longest time between two WATCH renewals (a restarted Tower relearns its watchers).
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How often an unanswered ACK is sent again.
const ACK_RETRY: Duration = Duration::from_secs(1);
/// How soon an unanswered WATCH is sent again.
const WATCH_RETRY: Duration = Duration::from_secs(1);

/// What the discovery thread needs.
#[derive(Debug)]
pub struct DiscoveryConfig {
    /// The Tower's address.
    pub tower: SocketAddr,
    /// The lease asked for.
    pub lease_s: u32,
    /// Signs WATCH/ACK and (its public half) verifies UPDATE.
    pub mesh_key: Option<SigningKey>,
    /// Fixed backends merged into every published set.
    pub static_backends: Vec<(ServiceName, SocketAddr)>,
}

/// An app's route set adopted at `generation`, to acknowledge once every core routes by it.
#[derive(Debug)]
struct PendingRoutesAck {
    version: u64,
    generation: u64,
    sent: Option<Instant>,
}

#[derive(Debug)]
struct PendingAck {
    version: u64,
    generation: u64,
    sent_routed: bool,
    sent_drained: Option<Instant>,
}

/// Starts the discovery thread; it ends when the directory's shutdown fires.
///
/// # Errors
/// The UDP socket could not be opened or the thread started.
pub fn spawn(config: DiscoveryConfig, dir: Arc<Directory>) -> std::io::Result<JoinHandle<()>> {
    let local: SocketAddr = if config.tower.is_ipv4() {
        "0.0.0.0:0".parse().map_err(std::io::Error::other)?
    } else {
        "[::]:0".parse().map_err(std::io::Error::other)?
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(config.tower)?;
    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
    std::thread::Builder::new()
        .name("ingress-discovery".into())
        .spawn(move || Watcher::new(config, dir, socket).run())
}

struct Watcher {
    config: DiscoveryConfig,
    verifier: Option<Verifier>,
    dir: Arc<Directory>,
    socket: UdpSocket,
    known: HashMap<String, (u64, Vec<SocketAddr>)>,
    acks: HashMap<String, PendingAck>,
    lease: Duration,
    next_watch: Instant,
    /// The services of the routes in force (re-read when the directory's generation moves).
    services: Vec<ServiceName>,
    /// The generation `services` was read at.
    services_at: u64,
    /// The version of each app's routes in force.
    route_versions: HashMap<AppName, u64>,
    route_acks: HashMap<AppName, PendingRoutesAck>,
}

impl Watcher {
    fn new(config: DiscoveryConfig, dir: Arc<Directory>, socket: UdpSocket) -> Self {
        let verifier = config
            .mesh_key
            .as_ref()
            .map(|k| Verifier::new(KeyRole::Mesh, [k.verifying_key()]));
        Self {
            lease: Duration::from_secs(u64::from(config.lease_s)),
            config,
            verifier,
            dir,
            socket,
            known: HashMap::new(),
            acks: HashMap::new(),
            next_watch: Instant::now(),
            services: Vec::new(),
            services_at: 0,
            route_versions: HashMap::new(),
            route_acks: HashMap::new(),
        }
    }

    fn run(mut self) {
        self.follow_routes();
        tracing::info!(tower = %self.config.tower, services = self.services.len(), "watching the Tower");
        let mut buf = vec![0u8; 65_536];
        while !self.dir.shutdown().is_fired() {
            self.follow_routes();
            if Instant::now() >= self.next_watch {
                self.send_watch();
            }
            match self.socket.recv(&mut buf) {
                Ok(n) => self.on_datagram(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => {
                    // e.g. ECONNREFUSED from an earlier send while the Tower is down.
                    tracing::debug!(error = %e, "tower socket");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            self.progress_acks();
        }
    }

    fn send(&self, request: &TowerRequest) {
        let text = request.encode();
        let datagram = match &self.config.mesh_key {
            Some(key) => match sign_command(key, &text, SystemClock::now()) {
                Ok(signed) => signed,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot sign");
                    return;
                }
            },
            None => text,
        };
        if let Err(e) = self.socket.send(datagram.as_bytes()) {
            tracing::debug!(error = %e, "cannot send to the Tower");
        }
    }

    /// Re-reads the routed services when the view changed; a service the routes name that
    /// was not watched yet (a reload added it) is watched at once.
    fn follow_routes(&mut self) {
        let generation = self.dir.generation();
        if generation == self.services_at {
            return;
        }
        self.services_at = generation;
        let services = self.dir.view().routes.services();
        if services.iter().any(|s| !self.services.contains(s)) {
            if !self.services.is_empty() {
                tracing::info!(
                    services = services.len(),
                    "routes name new services; watching them"
                );
            }
            self.next_watch = Instant::now();
        }
        self.services = services;
    }

    fn send_watch(&mut self) {
        let request = TowerRequest::Watch {
            services: self.services.clone(),
            lease_s: self.config.lease_s,
        };
        self.send(&request);
        self.send(&TowerRequest::WatchRoutes {
            lease_s: self.config.lease_s,
        });
        // Until OK|WATCHING arrives, try again soon; then renew at half the lease.
        self.next_watch = Instant::now() + WATCH_RETRY.min(self.lease / 2);
    }

    fn on_datagram(&mut self, bytes: &[u8]) {
        if bytes.starts_with(b"OK|") || bytes.starts_with(b"ERR|") {
            match TowerReply::decode(bytes) {
                Ok(TowerReply::Watching { lease_s }) => {
                    self.lease = Duration::from_secs(u64::from(lease_s.max(2)));
                    // Renew often (cheap: one datagram, answered with the current sets), so a
                    // restarted Tower, which has forgotten its watchers, learns of this
                    // ingress within RENEW_EVERY rather than half a lease.
                    self.next_watch = Instant::now() + (self.lease / 2).min(RENEW_EVERY);
                }
                Ok(TowerReply::Acked { service, version }) => {
                    if self
                        .acks
                        .get(service.as_str())
                        .is_some_and(|p| p.version <= version && p.sent_drained.is_some())
                    {
                        self.acks.remove(service.as_str());
                    }
                }
                Ok(TowerReply::AckedRoutes { app, version }) => {
                    if self
                        .route_acks
                        .get(&app)
                        .is_some_and(|p| p.version <= version)
                    {
                        self.route_acks.remove(&app);
                    }
                }
                Ok(TowerReply::Error(e)) => tracing::warn!(error = ?e, "the Tower refused"),
                Ok(other) => tracing::debug!(reply = ?other, "unexpected Tower reply"),
                Err(e) => tracing::debug!(error = %e, "undecodable Tower reply"),
            }
            return;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        let command = match self.verifier.as_mut() {
            Some(v) => match v.verify(text) {
                Ok(cmd) => cmd,
                Err(e) => {
                    tracing::warn!(error = %e, "dropped a Tower push that failed verification");
                    return;
                }
            },
            // No key: a signed push (from a Tower that has one) is read without its signature.
            None => match SignedCommand::parse(text) {
                Ok(signed) => signed.command(),
                Err(_) => text,
            },
        };
        if command.starts_with("ROUTES_UPDATE|") {
            match RoutesUpdate::decode(command.as_bytes()) {
                Ok(update) => self.apply_routes(update),
                Err(e) => tracing::warn!(error = %e, "dropped an undecodable ROUTES_UPDATE"),
            }
            return;
        }
        match TowerPush::decode(command.as_bytes()) {
            Ok(TowerPush::Update {
                service,
                version,
                backends,
            }) => {
                let addrs = backends
                    .iter()
                    .map(|b| SocketAddr::new(b.ip, b.port))
                    .collect();
                self.apply(&service, version, addrs);
            }
            Err(e) => tracing::debug!(error = %e, "undecodable Tower push"),
        }
    }

    fn apply(&mut self, service: &ServiceName, version: u64, backends: Vec<SocketAddr>) {
        let name = service.as_str().to_owned();
        if let Some((known, _)) = self.known.get(&name) {
            if version < *known {
                return;
            }
            if version == *known {
                // A renewal's re-push: answer again if the ACK is still outstanding.
                if let Some(p) = self.acks.get_mut(&name) {
                    p.sent_routed = false;
                }
                return;
            }
        }
        let merged = with_static(backends.clone(), &self.config.static_backends, service);
        tracing::info!(service = %name, version, backends = merged.len(), "backend set updated");
        self.known.insert(name.clone(), (version, backends));
        let set = Arc::new(ServiceSet {
            version,
            backends: merged,
        });
        let key = name.clone();
        let generation = self.dir.publish(move |view| {
            view.services.insert(key, set);
        });
        self.acks.insert(
            name,
            PendingAck {
                version,
                generation,
                sent_routed: false,
                sent_drained: None,
            },
        );
        self.progress_acks();
    }

    /// An app's route set from the Tower: newer than the one in force, it replaces it (empty:
    /// the app's routes are withdrawn); the same version again is a renewal's re-push.
    fn apply_routes(&mut self, update: RoutesUpdate) {
        let RoutesUpdate {
            app,
            version,
            routes,
        } = update;
        if let Some(&known) = self.route_versions.get(&app) {
            if version < known {
                return;
            }
            if version == known {
                if let Some(p) = self.route_acks.get_mut(&app) {
                    p.sent = None;
                } else {
                    // Acknowledged before, yet pushed again: the Tower missed the ACK.
                    self.send(&TowerRequest::AckRoutes { app, version });
                }
                return;
            }
        } else if routes.is_empty() {
            // A withdrawal of routes never served here: nothing to change, but say so.
            self.route_versions.insert(app.clone(), version);
            self.send(&TowerRequest::AckRoutes { app, version });
            return;
        }
        let count = routes.len();
        let key = app.clone();
        let published = self.dir.publish_routes(move |view| {
            let apps = Arc::make_mut(&mut view.app_routes);
            if routes.is_empty() {
                apps.remove(&key);
            } else {
                apps.insert(key, routes);
            }
        });
        match published {
            Ok(generation) => {
                tracing::info!(%app, version, routes = count, "app routes updated");
                self.route_versions.insert(app.clone(), version);
                self.route_acks.insert(
                    app,
                    PendingRoutesAck {
                        version,
                        generation,
                        sent: None,
                    },
                );
                self.progress_acks();
            }
            Err(e) => tracing::error!(%app, error = %e, "app routes not applied"),
        }
    }

    fn progress_acks(&mut self) {
        if self.acks.is_empty() && self.route_acks.is_empty() {
            return;
        }
        let adopted = self.dir.adopted_everywhere();
        let now = Instant::now();
        let mut route_acks = Vec::new();
        for (app, p) in &mut self.route_acks {
            if adopted >= p.generation && p.sent.is_none_or(|t| now.duration_since(t) >= ACK_RETRY)
            {
                p.sent = Some(now);
                route_acks.push((app.clone(), p.version));
            }
        }
        for (app, version) in route_acks {
            self.send(&TowerRequest::AckRoutes { app, version });
        }
        if self.acks.is_empty() {
            return;
        }
        let adopted = self.dir.adopted_everywhere();
        let drained = self.dir.drained_everywhere();
        let now = Instant::now();
        let mut to_send = Vec::new();
        for (name, p) in &mut self.acks {
            let is_drained = drained >= p.generation;
            if is_drained {
                if p.sent_drained
                    .is_none_or(|t| now.duration_since(t) >= ACK_RETRY)
                {
                    p.sent_drained = Some(now);
                    p.sent_routed = true;
                    to_send.push((name.clone(), p.version, true));
                }
            } else if adopted >= p.generation && !p.sent_routed {
                p.sent_routed = true;
                to_send.push((name.clone(), p.version, false));
            }
        }
        for (name, version, drained) in to_send {
            if let Ok(service) = ServiceName::new(name) {
                self.send(&TowerRequest::Ack {
                    service,
                    version,
                    drained,
                });
            }
        }
    }
}
