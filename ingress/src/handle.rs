//! [`IngressHandle`]: a running ingress, as `start` returns it to the binary, to `skr8tr dev`
//! and to tests: its addresses and counters, live reloads (routes, TLS certificate, access log
//! file, backends), and the drain and stop.
//!
//! Owns no state of its own: a reload publishes a new view through the [`Directory`], which
//! every core adopts at its next request; the drain fires the directory's shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::access::AccessLog;
use crate::config::Config;
use crate::directory::{Directory, ServiceSet};
use crate::metrics::Hub;
use crate::route::RouteError;
use crate::tls;

/// A running ingress.
#[derive(Debug)]
pub struct IngressHandle {
    pub(crate) local_addr: SocketAddr,
    pub(crate) admin_addr: Option<SocketAddr>,
    pub(crate) config: Arc<Config>,
    pub(crate) dir: Arc<Directory>,
    pub(crate) hub: Arc<Hub>,
    /// The core threads.
    pub(crate) cores: Vec<JoinHandle<()>>,
    /// The admin, discovery and access-log threads.
    pub(crate) helpers: Vec<JoinHandle<()>>,
    pub(crate) access: Option<AccessLog>,
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

    /// Each core's heartbeat: every core beats once its listener is up, and keeps beating while
    /// its event loop turns (`skr8tr_daemon::supervisor::watch` tells systemd).
    #[must_use]
    pub fn heartbeats(&self) -> Vec<Arc<skr8tr_daemon::supervisor::Heartbeat>> {
        self.dir.heartbeats()
    }

    /// The Prometheus text of the current counters.
    #[must_use]
    pub fn metrics_text(&self) -> String {
        self.hub.render()
    }

    /// Re-reads the operator's routes (flags and routes file) and publishes them to every
    /// core, composed with the apps' routes as before. Open connections are kept. A bad file
    /// keeps the old routes.
    ///
    /// # Errors
    /// The [`RouteError`] of the new routes (which were not applied).
    pub fn reload_routes(&self) -> Result<(), RouteError> {
        let routes = Arc::new(self.config.operator_routes()?);
        let n = routes.len();
        self.dir
            .publish_routes(move |view| view.operator_routes = routes)?;
        tracing::info!(routes = n, "routes reloaded");
        Ok(())
    }

    /// The route table in force (operator and app routes, as composed).
    #[must_use]
    pub fn routes(&self) -> Arc<crate::route::RouteTable> {
        Arc::clone(&self.dir.view().routes)
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
