//! What every core routes by, shared across threads without a lock on the request path.
//!
//! ```text
//! discovery / reload ──publish──▶ Directory { generation: AtomicU64, view: Mutex<Arc<View>> }
//!                                        │ cores compare `generation` per request (one load)
//!                                        ▼ and clone the Arc only when it changed
//!                                  core-local Arc<View>
//! cores ──CoreStatus { adopted, drained }──▶ discovery (when to ACK a version as drained)
//! ```
//!
//! Owns the published [`View`] (routes plus each service's backend set and its Tower version),
//! the ingress's shutdown signal, and each core's progress. The lock is taken only to publish and when a
//! core adopts a new generation, never per request. The route table is composed in the view
//! from what it is made of (the operator's routes, every app's published routes, whether TLS
//! is on), so a change to any of them rebuilds it the same way ([`Directory::publish_routes`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use skr8tr_daemon::supervisor::Heartbeat;
use skr8tr_proto::name::{AppName, ServiceName};
use skr8tr_proto::route::RouteSpec;

use crate::route::{Refused, Route, RouteError, RouteTable};
use crate::runtime::Shutdown;

/// A service's backend set at one Tower version (0: static backends only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSet {
    /// The Tower's version of the set.
    pub version: u64,
    /// The backends, in a stable order.
    pub backends: Vec<SocketAddr>,
}

/// Everything a core routes by, at one generation.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Increases with every publish.
    pub generation: u64,
    /// The routes, composed from `operator_routes` and `app_routes`.
    pub routes: Arc<RouteTable>,
    /// The operator's routes (flags, then the routes file), validated.
    pub operator_routes: Arc<Vec<Route>>,
    /// Every app's published routes (Tower `ROUTES_UPDATE`), by app.
    pub app_routes: Arc<BTreeMap<AppName, Vec<RouteSpec>>>,
    /// The app routes the table leaves out, and why (the admin listener's `/routes`).
    pub refused: Arc<Vec<Refused>>,
    /// Service name → backends.
    pub services: HashMap<String, Arc<ServiceSet>>,
    /// The TLS configuration of new client connections, when the listener terminates TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl View {
    /// The view the ingress starts with: the `operator` routes, the services of
    /// `static_backends` at version 0, and `tls`.
    ///
    /// # Errors
    /// [`RouteError::Duplicate`] when `operator` holds a host and prefix twice.
    pub fn initial(
        operator: Vec<Route>,
        static_backends: &[(ServiceName, SocketAddr)],
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, RouteError> {
        let mut services = HashMap::new();
        for (svc, _) in static_backends {
            services.entry(svc.as_str().to_owned()).or_insert_with(|| {
                Arc::new(ServiceSet {
                    version: 0,
                    backends: with_static(Vec::new(), static_backends, svc),
                })
            });
        }
        let mut view = Self {
            generation: 0,
            routes: Arc::default(),
            operator_routes: Arc::new(operator),
            app_routes: Arc::default(),
            refused: Arc::default(),
            services,
            tls,
        };
        view.compose_routes()?;
        Ok(view)
    }

    /// Rebuilds `routes` from `operator_routes` and `app_routes` (https-only app routes only
    /// with TLS); logs each app route left out and why.
    ///
    /// # Errors
    /// [`RouteError::Duplicate`] when the operator's routes hold a host and prefix twice.
    pub fn compose_routes(&mut self) -> Result<(), RouteError> {
        let (table, refused) =
            RouteTable::compose(&self.operator_routes, &self.app_routes, self.tls.is_some())?;
        for r in &refused {
            tracing::warn!(refused = %r, "app route not served");
        }
        self.routes = Arc::new(table);
        self.refused = Arc::new(refused);
        Ok(())
    }

    /// Whether `addr` is a backend of any service in this view.
    #[must_use]
    pub fn has_backend(&self, addr: SocketAddr) -> bool {
        self.services.values().any(|s| s.backends.contains(&addr))
    }
}

/// `backends` followed by the static backends of `service` it does not hold yet (`--backend`
/// flags are merged into every set the Tower sends).
#[must_use]
pub fn with_static(
    mut backends: Vec<SocketAddr>,
    static_backends: &[(ServiceName, SocketAddr)],
    service: &ServiceName,
) -> Vec<SocketAddr> {
    for (svc, addr) in static_backends {
        if svc == service && !backends.contains(addr) {
            backends.push(*addr);
        }
    }
    backends
}

/// One core's progress, read by the discovery thread.
#[derive(Debug, Default)]
pub struct CoreStatus {
    /// The generation the core routes by.
    pub adopted: AtomicU64,
    /// The newest generation for which no request is in flight to a backend it (or an earlier
    /// one) removed.
    pub drained: AtomicU64,
}

/// The shared directory.
#[derive(Debug)]
pub struct Directory {
    generation: AtomicU64,
    view: Mutex<Arc<View>>,
    cores: Vec<Arc<CoreStatus>>,
    shutdown: Shutdown,
    /// Client connections open over all cores (counted per connection, not per request).
    pub connections: AtomicUsize,
    /// Each core's heartbeat, beaten by its housekeeping (the service manager's watchdog).
    hearts: Vec<Arc<Heartbeat>>,
}

impl Directory {
    /// A directory for `cores` cores starting at `view` (generation 1).
    #[must_use]
    pub fn new(cores: usize, mut view: View) -> Self {
        view.generation = 1;
        Self {
            generation: AtomicU64::new(1),
            view: Mutex::new(Arc::new(view)),
            cores: (0..cores)
                .map(|_| Arc::new(CoreStatus::default()))
                .collect(),
            shutdown: Shutdown::default(),
            connections: AtomicUsize::new(0),
            hearts: (0..cores).map(|_| Heartbeat::new()).collect(),
        }
    }

    /// Core `core`'s event loop turns (called from its housekeeping).
    pub fn beat(&self, core: usize) {
        if let Some(h) = self.hearts.get(core) {
            h.beat();
        }
    }

    /// Every core's heartbeat, for [`skr8tr_daemon::supervisor::watch`].
    #[must_use]
    pub fn heartbeats(&self) -> Vec<Arc<Heartbeat>> {
        self.hearts.clone()
    }

    /// The current generation (one atomic load: the per-request check).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Publishes a change made by `edit` to a copy of the current view; returns the new
    /// generation.
    pub fn publish(&self, edit: impl FnOnce(&mut View)) -> u64 {
        let mut guard = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = View::clone(&guard);
        edit(&mut next);
        next.generation = guard.generation + 1;
        let generation = next.generation;
        *guard = Arc::new(next);
        self.generation.store(generation, Ordering::Release);
        generation
    }

    /// Publishes a change made by `edit` to what the routes are made of (operator routes, app
    /// routes, TLS), with the route table composed again; returns the new generation. Nothing
    /// is published when the table cannot be built.
    ///
    /// # Errors
    /// The table's [`RouteError`]; the view in force stays.
    pub fn publish_routes(&self, edit: impl FnOnce(&mut View)) -> Result<u64, RouteError> {
        let mut guard = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = View::clone(&guard);
        edit(&mut next);
        next.compose_routes()?;
        next.generation = guard.generation + 1;
        let generation = next.generation;
        *guard = Arc::new(next);
        self.generation.store(generation, Ordering::Release);
        Ok(generation)
    }

    /// Core `i`'s status.
    #[must_use]
    pub fn core(&self, i: usize) -> Arc<CoreStatus> {
        Arc::clone(&self.cores[i.min(self.cores.len() - 1)])
    }

    /// The lowest generation every core has drained.
    #[must_use]
    pub fn drained_everywhere(&self) -> u64 {
        self.cores
            .iter()
            .map(|c| c.drained.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// The lowest generation every core routes by.
    #[must_use]
    pub fn adopted_everywhere(&self) -> u64 {
        self.cores
            .iter()
            .map(|c| c.adopted.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// The shutdown signal.
    #[must_use]
    pub const fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    fn statics(pairs: &[(&str, &str)]) -> Vec<(ServiceName, SocketAddr)> {
        pairs
            .iter()
            .map(|(svc, a)| (ServiceName::new(*svc).expect("a name"), addr(a)))
            .collect()
    }

    #[test]
    fn static_backends_follow_the_towers_once_each() {
        let fixed = statics(&[
            ("web", "10.0.0.9:1"),
            ("api", "10.0.0.8:1"),
            ("web", "10.0.0.1:1"),
        ]);
        let web = ServiceName::new("web").expect("a name");
        for (tower, expected) in [
            (vec![], vec!["10.0.0.9:1", "10.0.0.1:1"]),
            (vec!["10.0.0.1:1"], vec!["10.0.0.1:1", "10.0.0.9:1"]),
            (
                vec!["10.0.0.2:1"],
                vec!["10.0.0.2:1", "10.0.0.9:1", "10.0.0.1:1"],
            ),
        ] {
            let tower: Vec<SocketAddr> = tower.iter().map(|a| addr(a)).collect();
            let expected: Vec<SocketAddr> = expected.iter().map(|a| addr(a)).collect();
            assert_eq!(with_static(tower, &fixed, &web), expected);
        }
    }

    #[test]
    fn the_initial_view_holds_each_static_service_at_version_0() {
        let fixed = statics(&[
            ("web", "10.0.0.9:1"),
            ("web", "10.0.0.9:1"),
            ("api", "10.0.0.8:1"),
        ]);
        let view = View::initial(Vec::new(), &fixed, None).unwrap();
        assert_eq!(view.services.len(), 2);
        assert_eq!(
            *view.services["web"],
            ServiceSet {
                version: 0,
                backends: vec![addr("10.0.0.9:1")]
            }
        );
        assert_eq!(view.services["api"].backends, vec![addr("10.0.0.8:1")]);
    }
}
