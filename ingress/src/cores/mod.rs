//! One core's state, handed to every connection on that core: its view of routes and backends
//! (adopted from the directory), the generations it has drained, its counters and its batch of
//! access-log lines, and the parts below, tied together where they meet (an ejection empties
//! the pool and is counted; nothing is pooled while draining or for a backend that left).
//!
//! ```text
//! request ─refresh (1 atomic load)─▶ route ─pick (balance)─▶ checkout (pool, or connect)
//!         ─begin/end (in flight per backend)─▶ drained generation ─▶ CoreStatus (for ACK|…|1)
//! ```
//!
//! | part | owns |
//! | --- | --- |
//! | [`balance`] | round-robin choice, in-flight counts, ejection |
//! | [`pool`] | idle upstream keep-alive connections |
//! | [`drain`] | the drain flag and the tasks waiting for it |
//! | [`limit`] | per-route rate limits by client address (token buckets) |
//!
//! Lives on one thread (`Rc`, `Cell`, `RefCell`); nothing here is shared with other cores.
//! The thread itself, its accept loop and its housekeeping are `crate::accept`'s; the requests
//! are `crate::proxy`'s.
//! Invariant: a backend removed by generation G is counted in `pending` until its last
//! in-flight request ends, and the core reports G drained only after that.

pub mod balance;
pub mod drain;
pub mod limit;
pub mod pool;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::access::{CoreLog, Entry};
use crate::config::Config;
use crate::directory::{CoreStatus, Directory, View};
use crate::error::ProxyError;
use crate::metrics::{CoreCounters, Hub};
use crate::upstream::UpConn;
use balance::Balancer;
use drain::{Drain, DrainWait};
use pool::Pool;

/// A core's state.
#[derive(Debug)]
pub struct Core {
    /// The core's index.
    pub id: usize,
    /// The shared directory.
    pub dir: Arc<Directory>,
    /// The configuration.
    pub config: Arc<Config>,
    hub: Arc<Hub>,
    status: Arc<CoreStatus>,
    view: RefCell<Arc<View>>,
    seen: Cell<u64>,
    balance: Balancer,
    pool: Pool,
    pending: RefCell<Vec<(u64, Vec<SocketAddr>)>>,
    drain: Drain,
    /// Client connections open on this core.
    pub active: Cell<usize>,
    /// This core's counters.
    pub counters: RefCell<CoreCounters>,
    /// This core's rate-limit buckets (reset when the routes change).
    pub limiter: RefCell<limit::Limiter>,
    access: Option<CoreLog>,
}

impl Core {
    /// The state of core `id`.
    #[must_use]
    pub fn new(id: usize, dir: Arc<Directory>, config: Arc<Config>, hub: Arc<Hub>) -> Rc<Self> {
        let view = dir.view();
        let status = dir.core(id);
        status.adopted.store(view.generation, Ordering::Release);
        status.drained.store(view.generation, Ordering::Release);
        let access = hub.access.clone().map(CoreLog::new);
        Rc::new(Self {
            id,
            access,
            seen: Cell::new(view.generation),
            view: RefCell::new(view),
            dir,
            config,
            hub,
            status,
            balance: Balancer::default(),
            pool: Pool::default(),
            pending: RefCell::default(),
            drain: Drain::default(),
            active: Cell::new(0),
            counters: RefCell::default(),
            limiter: RefCell::default(),
        })
    }

    /// Whether responses are written to the access log.
    #[must_use]
    pub const fn logs_access(&self) -> bool {
        self.access.is_some()
    }

    /// Adds one response to the access log (batched; never waits on the writer).
    pub fn log_access(&self, entry: &Entry<'_>) {
        if let Some(log) = &self.access {
            let dropped = log.push(entry);
            if dropped > 0 {
                self.counters.borrow_mut().access_log_dropped += dropped;
            }
        }
    }

    /// Hands this core's batch of access-log lines to the writer.
    pub fn flush_access_log(&self) {
        if let Some(log) = &self.access {
            let dropped = log.flush();
            if dropped > 0 {
                self.counters.borrow_mut().access_log_dropped += dropped;
            }
        }
    }

    /// Adopts the directory's view if it changed (one atomic load when it did not).
    pub fn refresh(&self) {
        let generation = self.dir.generation();
        if generation == self.seen.get() {
            return;
        }
        let next = self.dir.view();
        let removed: Vec<SocketAddr> = {
            let old = self.view.borrow();
            let mut removed: Vec<SocketAddr> = old
                .services
                .values()
                .flat_map(|s| s.backends.iter().copied())
                .filter(|a| !next.has_backend(*a))
                .collect();
            removed.sort_unstable();
            removed.dedup();
            removed
        };
        for addr in &removed {
            self.pool.remove(*addr);
        }
        self.seen.set(next.generation);
        self.status
            .adopted
            .store(next.generation, Ordering::Release);
        if !removed.is_empty() {
            self.pending.borrow_mut().push((next.generation, removed));
        }
        if !Arc::ptr_eq(&self.view.borrow().routes, &next.routes) {
            self.limiter.borrow_mut().reset();
        }
        *self.view.borrow_mut() = next;
        self.update_drained();
    }

    fn update_drained(&self) {
        let mut pending = self.pending.borrow_mut();
        pending.retain(|(_, addrs)| self.balance.any_in_flight(addrs));
        let drained = pending
            .iter()
            .map(|(g, _)| g - 1)
            .min()
            .unwrap_or_else(|| self.seen.get());
        self.status.drained.store(drained, Ordering::Release);
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.borrow())
    }

    /// Runs `f` on the current view without touching its (shared) reference count: the
    /// request path's way to read it.
    pub fn with_view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        f(&self.view.borrow())
    }

    /// Picks a backend of `service` in the current view ([`Balancer::pick`]).
    ///
    /// # Errors
    /// [`crate::error::ErrorKind::NoBackend`] when the service has no backend.
    pub fn pick(&self, service: &str, exclude: &[SocketAddr]) -> Result<SocketAddr, ProxyError> {
        self.balance.pick(&self.view.borrow(), service, exclude)
    }

    /// A request to `addr` starts.
    pub fn begin(&self, addr: SocketAddr) {
        self.balance.begin(addr);
    }

    /// A request to `addr` ended.
    pub fn end(&self, addr: SocketAddr) {
        self.balance.end(addr);
        if !self.pending.borrow().is_empty() {
            self.update_drained();
        }
    }

    /// A connect to `addr` timed out: the host (or the path to it) is in trouble, not one
    /// process, so every backend on that IP is ejected, and requests stop paying a connect
    /// timeout for each of that host's replicas in turn (a partitioned node).
    pub fn eject_host(&self, addr: SocketAddr) {
        let same_host = balance::same_host(&self.view.borrow(), addr);
        for b in same_host {
            self.eject(b);
        }
    }

    /// `addr` refused or reset: keep it out for a growing period, and close its pooled
    /// connections.
    pub fn eject(&self, addr: SocketAddr) {
        let Some(penalty) = self.balance.eject(addr) else {
            return;
        };
        self.pool.remove(addr);
        self.counters.borrow_mut().ejections += 1;
        tracing::warn!(core = self.id, backend = %addr, ?penalty, "backend ejected");
    }

    /// `addr` answered: its next ejection starts short again.
    pub fn succeeded(&self, addr: SocketAddr) {
        self.balance.succeeded(addr);
    }

    /// A pooled connection to `addr` that has not been idle too long.
    pub fn take_pooled(&self, addr: SocketAddr) -> Option<UpConn> {
        self.pool.take(addr, self.config.timeouts.upstream_idle)
    }

    /// Returns a finished upstream connection to the pool, unless the core drains or `addr`
    /// is no longer a backend.
    pub fn put_pooled(&self, addr: SocketAddr, conn: UpConn) {
        if self.drain.is_draining() || !self.view.borrow().has_backend(addr) {
            return;
        }
        self.pool.put(addr, conn);
    }

    /// Drops pooled connections idle longer than the upstream idle timeout.
    pub fn sweep_pool(&self) {
        self.pool.sweep(self.config.timeouts.upstream_idle);
    }

    /// Whether the core is draining (no new requests on kept-alive connections).
    pub fn draining(&self) -> bool {
        self.drain.is_draining()
    }

    /// Starts draining: idle pooled connections are closed and no more are pooled.
    pub fn start_drain(&self) {
        self.drain.start();
        self.pool.clear();
    }

    /// Resolves when the core starts draining (for idle keep-alive waits and the accept loop).
    pub fn drain_signal(&self) -> DrainWait<'_> {
        self.drain.signal()
    }

    /// Publishes this core's counters to the hub.
    pub fn publish_counters(&self) {
        self.hub.publish(self.id, &self.counters.borrow());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ServiceSet;
    use crate::error::ErrorKind;

    fn core_with(backends: &[&str]) -> Rc<Core> {
        let backends: Vec<SocketAddr> = backends.iter().map(|a| a.parse().unwrap()).collect();
        let mut view = View::default();
        view.services.insert(
            "web".to_owned(),
            Arc::new(ServiceSet {
                version: 1,
                backends,
            }),
        );
        let dir = Arc::new(Directory::new(1, view));
        let hub = Arc::new(Hub::new(1, Arc::clone(&dir), None));
        let config = Arc::new(Config::local(Vec::new(), Vec::new()));
        Core::new(0, dir, config, hub)
    }

    #[test]
    fn pick_round_robins_over_every_backend() {
        let core = core_with(&["10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:1"]);
        let mut seen: Vec<SocketAddr> = (0..3).map(|_| core.pick("web", &[]).unwrap()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3);
        assert_eq!(
            core.pick("nobody", &[]).unwrap_err().kind,
            ErrorKind::NoBackend
        );
    }

    #[test]
    fn after_a_failure_pick_prefers_another_host() {
        let core = core_with(&["10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:1"]);
        let failed: SocketAddr = "10.0.0.1:1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(
                core.pick("web", &[failed]).unwrap(),
                "10.0.0.2:1".parse().unwrap()
            );
        }
        // The other host failed too: the failed host's other replica is still tried.
        let both = [failed, "10.0.0.2:1".parse().unwrap()];
        assert_eq!(
            core.pick("web", &both).unwrap(),
            "10.0.0.1:2".parse().unwrap()
        );
        // Ejected backends on another host come after usable ones on the same host.
        core.eject("10.0.0.2:1".parse().unwrap());
        assert_eq!(
            core.pick("web", &[failed]).unwrap(),
            "10.0.0.1:2".parse().unwrap()
        );
    }

    #[test]
    fn a_connect_timeout_ejects_every_backend_of_that_host() {
        let core = core_with(&["10.0.0.1:1", "10.0.0.1:2", "10.0.0.2:1"]);
        core.eject_host("10.0.0.1:1".parse().unwrap());
        for _ in 0..5 {
            assert_eq!(
                core.pick("web", &[]).unwrap(),
                "10.0.0.2:1".parse().unwrap()
            );
        }
    }
}
