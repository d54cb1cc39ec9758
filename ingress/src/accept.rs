//! The ingress's cores at work: one std thread per core, each with its own monoio runtime and
//! `SO_REUSEPORT` listener (`crate::runtime`); the accept loop spawns one task per connection
//! (after the TLS handshake when the listener terminates TLS) and never waits on an upstream.
//!
//! ```text
//! spawn_cores ─▶ N core threads ─▶ accept loop ─spawn─▶ proxy::serve_connection
//!                                └ housekeeping every 50 ms: beat the core's heartbeat (watchdog),
//!                                  adopt the view, flush the access log,
//!                                  publish counters (250 ms), sweep the pool (1 s)
//! IngressHandle::drain ─Shutdown::fire─▶ each core: stop accepting, close idle keep-alive
//!               connections, wait for in-flight ones (up to the drain timeout), exit
//! ```
//!
//! Owns lifecycle only: nothing here parses HTTP or chooses backends.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use monoio::net::TcpListener;
use socket2::Socket;

use crate::config::Config;
use crate::cores::Core;
use crate::directory::Directory;
use crate::metrics::Hub;
use crate::runtime::{StartError, run_runtime};

/// Spawns the core threads serving `listeners`.
///
/// # Errors
/// [`StartError::Thread`].
pub fn spawn_cores(
    listeners: Vec<StdListener>,
    dir: &Arc<Directory>,
    config: &Arc<Config>,
    hub: &Arc<Hub>,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let mut threads = Vec::new();
    for (id, listener) in listeners.into_iter().enumerate() {
        let (dir, config, hub) = (Arc::clone(dir), Arc::clone(config), Arc::clone(hub));
        let handle = std::thread::Builder::new()
            .name(format!("ingress-core-{id}"))
            .spawn(move || {
                let force = config.force_epoll;
                let result = run_runtime(force, |driver| {
                    tracing::info!(core = id, driver = driver.as_str(), "core started");
                    run_core(id, listener, dir, config, hub)
                });
                if let Err(e) = result {
                    tracing::error!(core = id, error = %e, "cannot build the runtime");
                }
            })
            .map_err(StartError::Thread)?;
        threads.push(handle);
    }
    Ok(threads)
}

async fn run_core(
    id: usize,
    listener: StdListener,
    dir: Arc<Directory>,
    config: Arc<Config>,
    hub: Arc<Hub>,
) {
    // A second descriptor of the same socket: shutting it down on drain makes the kernel stop
    // accepting at once, even while the runtime still holds the first one.
    let closer = Socket::from(match listener.try_clone() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(core = id, error = %e, "cannot duplicate the listener");
            return;
        }
    });
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(core = id, error = %e, "cannot register the listener");
            return;
        }
    };
    let core = Core::new(id, Arc::clone(&dir), Arc::clone(&config), hub);
    // Housekeeping: adopt new views while idle, sweep the pool, publish counters.
    monoio::spawn(housekeeping(Rc::clone(&core)));
    // The cross-thread shutdown signal becomes this core's drain.
    {
        let core = Rc::clone(&core);
        monoio::spawn(async move {
            core.dir.shutdown().wait().await;
            core.start_drain();
        });
    }
    // The pending accept is cancelable and awaited to its end on drain, so a connection the
    // kernel hands it at that moment is served, not dropped (with a passed socket, where the
    // next process takes over the queue, that would be a refused request).
    let mut canceller = monoio::io::Canceller::new();
    let mut accepting = Box::pin(listener.cancelable_accept(canceller.handle()));
    let mut draining = false;
    loop {
        let accepted = if draining {
            accepting.as_mut().await
        } else {
            monoio::select! {
                biased;
                () = core.drain_signal() => {
                    draining = true;
                    canceller = canceller.cancel();
                    continue;
                }
                r = accepting.as_mut() => r,
            }
        };
        if !draining {
            accepting.set(listener.cancelable_accept(canceller.handle()));
        }
        match accepted {
            Ok((stream, _))
                if dir.connections.load(Ordering::Relaxed) >= config.max_connections =>
            {
                tracing::debug!(core = id, "connection limit reached");
                drop(stream);
            }
            Ok((stream, peer)) => {
                dir.connections.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let core = Rc::clone(&core);
                core.active.set(core.active.get() + 1);
                let tls = core.with_view(|view| view.tls.clone());
                monoio::spawn(async move {
                    match tls {
                        None => {
                            crate::proxy::serve_connection(Rc::clone(&core), stream, peer).await
                        }
                        Some(tls) => serve_tls(&core, stream, peer, tls).await,
                    }
                    core.active.set(core.active.get() - 1);
                    core.dir.connections.fetch_sub(1, Ordering::Relaxed);
                });
            }
            Err(_) if draining => {}
            Err(e) => {
                tracing::warn!(core = id, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        if draining {
            break;
        }
    }
    drop(accepting);
    // A bound listener is shut, so the kernel refuses new connections at once. A passed one
    // belongs to the service manager and outlives this process: it stays open, and the next
    // process accepts what waits in its backlog.
    if !config.activated {
        let _ = closer.shutdown(std::net::Shutdown::Both);
    }
    drop(closer);
    drop(listener);
    let deadline = Instant::now() + config.timeouts.drain;
    while core.active.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    core.flush_access_log();
    core.publish_counters();
    tracing::info!(core = id, left = core.active.get(), "core drained");
}

/// Runs the TLS handshake (bounded by the request-head timeout, so a silent client cannot hold
/// the connection), then serves the connection as any other.
async fn serve_tls(
    core: &Rc<Core>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) {
    let limit = core.config.timeouts.request_head;
    match monoio::time::timeout(limit, crate::tls::accept(stream, tls)).await {
        Ok(Ok(conn)) => crate::proxy::serve_connection(Rc::clone(core), conn, peer).await,
        Ok(Err(e)) => {
            core.counters.borrow_mut().tls_handshake_failures += 1;
            tracing::debug!(core = core.id, %peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            core.counters.borrow_mut().tls_handshake_failures += 1;
            tracing::debug!(core = core.id, %peer, "TLS handshake timed out");
        }
    }
}

async fn housekeeping(core: Rc<Core>) {
    let mut tick = 0u32;
    loop {
        monoio::time::sleep(Duration::from_millis(50)).await;
        core.dir.beat(core.id);
        core.refresh();
        core.flush_access_log();
        tick = tick.wrapping_add(1);
        if tick.is_multiple_of(5) {
            core.publish_counters();
        }
        if tick.is_multiple_of(20) {
            core.sweep_pool();
        }
    }
}
