//! skr8tr's edge: an HTTP/1.1 reverse proxy that routes by host and longest path prefix to backends it
//! learns from the Tower, thread-per-core on monoio (io_uring, epoll fallback), and the small
//! static file server behind `serve { static … }` workloads.
//!
//! ```text
//! config ─▶ start() ─▶ N cores: thread + runtime + SO_REUSEPORT listener    [runtime, accept]
//!                      │   per core: view, balancer, pool, drain, counters    [cores]
//!                      │   client conn ─(tls)─▶ http (parse, rewrite) ─▶ proxy (relay) ─▶ upstream
//!                      ├─ discovery thread: Tower WATCH/UPDATE/ACK ─▶ directory ─▶ cores
//!                      └─ admin thread: /metrics, /healthz                     [metrics]
//! ```
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | flags and the validated configuration |
//! | [`client`] | the client's address: the peer, or `X-Forwarded-For` from a trusted proxy |
//! | [`route`] | the routes (flags, routes file), their host + longest-prefix lookup, strip-prefix |
//! | [`directory`] | the view every core routes by, published across threads |
//! | [`discovery`] | keeping the view in step with the Tower (WATCH, UPDATE, ACK) |
//! | [`runtime`] | listeners, runtimes, the shutdown signal: shared with the static file server |
//! | [`accept`] | each core's thread, accept loop, housekeeping and drain |
//! | [`cores`] | one core's state: [`cores::balance`], [`cores::pool`], [`cores::drain`] |
//! | [`http`] | parsing and rewriting heads, chunked framing |
//! | [`proxy`] | one client connection's exchanges, body relay, tunnel |
//! | [`upstream`] | connecting to a backend, the link timeout |
//! | [`stream`] | socket reads and writes with owned buffers; TCP and TLS alike |
//! | [`tls`] | TLS termination |
//! | [`error`] | what each failure answers |
//! | [`access`], [`metrics`] | the access log; counters and the admin listener |
//! | [`handle`] | [`IngressHandle`]: reloads, drain, stop |
//! | [`static_files`] | `skr8tr_serve`, the static file server |
//!
//! The binaries (`skr8tr_ingress`, `skr8tr_serve`) only parse flags, set up logging
//! (`skr8tr_daemon::init_logging`) and signals, and call [`start`] / [`static_files::start`].
//! Tests start the real proxy in-process on `127.0.0.1:0` and own its shutdown through
//! [`IngressHandle`].

pub mod accept;
pub mod access;
pub mod client;
pub mod config;
pub mod cores;
pub mod directory;
pub mod discovery;
pub mod error;
pub mod handle;
pub mod http;
pub mod metrics;
pub mod proxy;
pub mod route;
pub mod runtime;
pub mod static_files;
pub mod stream;
pub mod tls;
pub mod upstream;

use std::sync::Arc;

pub use config::{Config, IngressArgs, Timeouts};
pub use handle::IngressHandle;
pub use runtime::StartError;

use directory::{Directory, View};
use metrics::Hub;

/// Starts the ingress: binds every listener (so a busy port fails here), then starts the cores,
/// the admin thread and, with a Tower, the discovery thread.
///
/// # Errors
/// [`StartError`]: bad routes, a listener or the admin port that cannot be bound, an unreadable
/// mesh key, a thread that cannot start.
pub fn start(config: Config) -> Result<IngressHandle, StartError> {
    start_on(config, None)
}

/// [`start`], serving `inherited` (a listening socket the service manager passed, see
/// [`runtime::activated_listener`]) instead of binding `config.listen`. Draining then leaves
/// that socket open, for the next process to accept what waits in its backlog.
///
/// # Errors
/// As [`start`].
pub fn start_on(
    mut config: Config,
    inherited: Option<std::net::TcpListener>,
) -> Result<IngressHandle, StartError> {
    let routes = config.operator_routes()?;
    let tls = config.tls.as_ref().map(tls::load).transpose()?;
    let view = View::initial(routes, &config.static_backends, tls)?;
    let threads = config.threads.max(1);
    let dir = Arc::new(Directory::new(threads, view));
    let (local_addr, listeners) = match inherited {
        Some(listener) => {
            config.activated = true;
            runtime::share(listener, threads)?
        }
        None => runtime::bind_all(config.listen, threads)?,
    };
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
            lease_s: config.watch_lease_s,
            mesh_key,
            static_backends: config.static_backends.clone(),
        };
        helpers.push(discovery::spawn(discovery, Arc::clone(&dir)).map_err(StartError::Thread)?);
    }
    let config = Arc::new(config);
    let cores = accept::spawn_cores(listeners, &dir, &config, &hub)?;
    tracing::info!(listen = %local_addr, threads, admin = ?admin_addr, tls = config.tls.is_some(), socket_activated = config.activated, "ingress started");
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
