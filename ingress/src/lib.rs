//! skr8tr's edge: an HTTP/1.1 reverse proxy that routes by longest path prefix to backends it
//! learns from the Tower, thread-per-core on monoio (io_uring, epoll fallback), and the small
//! static file server behind `serve { static … }` workloads.
//!
//! ```text
//! config ─▶ start() ─▶ N cores (runtime + SO_REUSEPORT listener + pool + view)   [server, core]
//!                      │   client conn ─▶ http (parse, rewrite) ─▶ proxy (relay) ─▶ upstream
//!                      ├─ discovery thread: Tower WATCH/UPDATE/ACK ─▶ directory ─▶ cores
//!                      └─ admin thread: /metrics, /healthz                          [metrics]
//! ```
//!
//! The binaries (`skr8tr_ingress`, `skr8tr_serve`) only parse flags, set up logging and
//! signals, and call [`start`] / [`serve::start`]. Tests start the real proxy in-process on
//! `127.0.0.1:0` and own its shutdown through [`IngressHandle`].

pub mod access;
pub mod config;
pub mod core;
pub mod directory;
pub mod discovery;
pub mod error;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod route;
pub mod serve;
pub mod server;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{Config, IngressArgs, Timeouts};
pub use server::StartError;

use directory::{Directory, ServiceSet, View};
use metrics::Hub;
use route::RouteError;

/// A running ingress.
#[derive(Debug)]
pub struct IngressHandle {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    config: Arc<Config>,
    dir: Arc<Directory>,
    hub: Arc<Hub>,
    cores: Vec<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
    access: Option<access::AccessLog>,
}

/// Starts the ingress: binds every listener (so a busy port fails here), then starts the cores,
/// the admin thread and, with a Tower, the discovery thread.
///
/// # Errors
/// [`StartError`]: bad routes, a listener or the admin port that cannot be bound, an unreadable
/// mesh key, a thread that cannot start.
pub fn start(config: Config) -> Result<IngressHandle, StartError> {
    let routes = config.route_table()?;
    let services = routes.services();
    let mut sets: HashMap<String, ServiceSet> = HashMap::new();
    for (svc, addr) in &config.static_backends {
        let set = sets.entry(svc.as_str().to_owned()).or_insert(ServiceSet {
            version: 0,
            backends: Vec::new(),
        });
        if !set.backends.contains(addr) {
            set.backends.push(*addr);
        }
    }
    let tls = config.tls.as_ref().map(tls::load).transpose()?;
    let view = View {
        generation: 0,
        routes: Arc::new(routes),
        services: sets.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        tls,
    };
    let threads = config.threads.max(1);
    let dir = Arc::new(Directory::new(threads, view));
    let (local_addr, listeners) = server::bind_all(config.listen, threads)?;
    let mut helpers = Vec::new();
    let mut access = None;
    if let Some(target) = &config.access_log {
        let (log, writer) = access::AccessLog::start(target.clone())?;
        helpers.push(writer);
        access = Some(log);
    }
    let hub = Arc::new(Hub::new(threads, Arc::clone(&dir), access.clone()));
    let mut admin_addr = None;
    if let Some(addr) = config.admin {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|source| StartError::Bind { addr, source })?;
        admin_addr = listener.local_addr().ok();
        let hub = Arc::clone(&hub);
        helpers.push(
            std::thread::Builder::new()
                .name("ingress-admin".into())
                .spawn(move || metrics::serve_admin(listener, hub))
                .map_err(StartError::Thread)?,
        );
    }
    if let Some(tower) = config.tower {
        let mesh_key = config
            .mesh_key
            .as_deref()
            .map(skr8tr_proto::auth::SigningKey::load)
            .transpose()
            .map_err(StartError::MeshKey)?;
        let discovery = discovery::DiscoveryConfig {
            tower,
            services,
            lease_s: config.watch_lease_s,
            mesh_key,
            static_backends: config.static_backends.clone(),
        };
        helpers.push(discovery::spawn(discovery, Arc::clone(&dir)).map_err(StartError::Thread)?);
    }
    let config = Arc::new(config);
    let cores = server::spawn_cores(listeners, &dir, &config, &hub)?;
    tracing::info!(listen = %local_addr, threads, admin = ?admin_addr, tls = config.tls.is_some(), "ingress started");
    Ok(IngressHandle {
        local_addr,
        admin_addr,
        config,
        dir,
        hub,
        cores,
        helpers,
        access,
    })
}

impl IngressHandle {
    /// The proxy's listening address.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The proxy's port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The admin listener's address, if any.
    #[must_use]
    pub const fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The Prometheus text of the current counters.
    #[must_use]
    pub fn metrics_text(&self) -> String {
        self.hub.render()
    }

    /// Re-reads the routes (flags and routes file) and publishes them to every core. Open
    /// connections are kept. A bad file keeps the old routes.
    ///
    /// # Errors
    /// The [`RouteError`] of the new routes (which were not applied).
    pub fn reload_routes(&self) -> Result<(), RouteError> {
        let routes = Arc::new(self.config.route_table()?);
        let n = routes.routes().len();
        self.dir.publish(move |view| view.routes = routes);
        tracing::info!(routes = n, "routes reloaded");
        Ok(())
    }

    /// Re-reads the TLS certificate and key (when the listener terminates TLS) and publishes
    /// them to every core: new connections get the new certificate, open ones keep theirs. A
    /// bad pair keeps the old one. Returns whether TLS is configured.
    ///
    /// # Errors
    /// The [`tls::TlsError`] of the new files (which were not applied).
    pub fn reload_tls(&self) -> Result<bool, tls::TlsError> {
        let Some(files) = &self.config.tls else {
            return Ok(false);
        };
        let tls = tls::load(files)?;
        self.dir.publish(move |view| view.tls = Some(tls));
        tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
        Ok(true)
    }

    /// Opens the access log file again (after log rotation moved it); SIGHUP in the binary.
    pub fn reopen_access_log(&self) {
        if let Some(log) = &self.access {
            log.reopen();
        }
    }

    /// Replaces the backends of `service` (as a Tower UPDATE would; for embedding and tests).
    pub fn set_backends(&self, service: &str, version: u64, backends: Vec<SocketAddr>) -> u64 {
        let set = Arc::new(ServiceSet { version, backends });
        let key = service.to_owned();
        self.dir.publish(move |view| {
            view.services.insert(key, set);
        })
    }

    /// The shared directory (for tests that watch drain progress).
    #[must_use]
    pub fn directory(&self) -> &Arc<Directory> {
        &self.dir
    }

    /// Starts the graceful drain: stop accepting, finish in-flight requests, close idle
    /// keep-alive connections. Returns at once; see [`IngressHandle::wait`].
    pub fn drain(&self) {
        self.dir.shutdown().fire();
    }

    /// Waits until every core has finished (drained or hit the drain timeout) and the helper
    /// threads have stopped.
    pub fn wait(self) {
        for t in self.cores {
            let _ = t.join();
        }
        self.dir.shutdown().fire();
        // The cores have handed over their last lines.
        if let Some(log) = &self.access {
            log.stop();
        }
        for t in self.helpers {
            let _ = t.join();
        }
    }

    /// Drains and waits.
    pub fn stop(self) {
        self.drain();
        self.wait();
    }

    /// The configured drain timeout.
    #[must_use]
    pub fn drain_timeout(&self) -> Duration {
        self.config.timeouts.drain
    }
}
