//! One core's state: its view of routes and backends, balancing and ejection, its upstream
//! connection pool, its drain flag and its counters. Lives on one thread (`Rc`, `Cell`,
//! `RefCell`); nothing here is shared with other cores.
//!
//! ```text
//! request ─refresh (1 atomic load)─▶ route ─pick (round-robin, skip ejected)─▶ checkout (pool or connect)
//!         ─begin/end (in-flight per backend)─▶ drained generation ─▶ CoreStatus (for ACK|…|1)
//! ```
//!
//! Invariants: a pooled connection is never older than the upstream idle timeout when handed
//! out; a backend removed by generation G is counted in `pending` until its last in-flight
//! request ends, and the core reports G drained only after that.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::access::{CoreLog, Entry};
use crate::config::Config;
use crate::directory::{CoreStatus, Directory, View};
use crate::error::{ErrorKind, ProxyError};
use crate::metrics::{CoreCounters, Hub};
use crate::proxy::upstream::UpConn;

/// First ejection period; doubled on each further failure, up to [`MAX_EJECTION`].
pub const FIRST_EJECTION: Duration = Duration::from_secs(1);
/// Longest ejection period.
pub const MAX_EJECTION: Duration = Duration::from_secs(30);
/// Most idle connections pooled per backend per core.
const MAX_POOLED: usize = 256;

#[derive(Debug, Default)]
struct BackendState {
    inflight: u32,
    eject_until: Option<Instant>,
    penalty: Option<Duration>,
}

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
    rr: RefCell<HashMap<String, usize>>,
    backends: RefCell<HashMap<SocketAddr, BackendState>>,
    pool: RefCell<HashMap<SocketAddr, Vec<UpConn>>>,
    pending: RefCell<Vec<(u64, Vec<SocketAddr>)>>,
    draining: Cell<bool>,
    waiters: RefCell<HashMap<u64, Waker>>,
    next_waiter: Cell<u64>,
    /// Client connections open on this core.
    pub active: Cell<usize>,
    /// This core's counters.
    pub counters: RefCell<CoreCounters>,
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
            rr: RefCell::default(),
            backends: RefCell::default(),
            pool: RefCell::default(),
            pending: RefCell::default(),
            draining: Cell::new(false),
            waiters: RefCell::default(),
            next_waiter: Cell::new(0),
            active: Cell::new(0),
            counters: RefCell::default(),
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
            self.pool.borrow_mut().remove(addr);
        }
        self.seen.set(next.generation);
        self.status
            .adopted
            .store(next.generation, Ordering::Release);
        if !removed.is_empty() {
            self.pending.borrow_mut().push((next.generation, removed));
        }
        *self.view.borrow_mut() = next;
        self.update_drained();
    }

    fn update_drained(&self) {
        let backends = self.backends.borrow();
        let mut pending = self.pending.borrow_mut();
        pending.retain(|(_, addrs)| {
            addrs
                .iter()
                .any(|a| backends.get(a).is_some_and(|b| b.inflight > 0))
        });
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

    /// Picks a backend of `service`, round-robin, skipping ejected ones (unless all are) and
    /// those in `exclude`. After a failure (`exclude` not empty) a backend on another host than
    /// the failed ones comes first: when a node dies, its other replicas are most likely dead
    /// too.
    ///
    /// # Errors
    /// [`ErrorKind::NoBackend`] when the service has no backend.
    pub fn pick(&self, service: &str, exclude: &[SocketAddr]) -> Result<SocketAddr, ProxyError> {
        let view = self.view.borrow();
        let set = view
            .services
            .get(service)
            .filter(|s| !s.backends.is_empty())
            .ok_or(ProxyError::new(ErrorKind::NoBackend))?;
        let n = set.backends.len();
        let start = {
            let mut rr = self.rr.borrow_mut();
            let counter = if let Some(c) = rr.get_mut(service) {
                c
            } else {
                rr.entry(service.to_owned()).or_insert(0)
            };
            *counter = counter.wrapping_add(1);
            *counter
        };
        let now = Instant::now();
        let backends = self.backends.borrow();
        let usable = |a: &SocketAddr| {
            !exclude.contains(a)
                && backends
                    .get(a)
                    .and_then(|b| b.eject_until)
                    .is_none_or(|until| until <= now)
        };
        let other_host = |a: &SocketAddr| exclude.iter().all(|x| x.ip() != a.ip());
        let elsewhere = if exclude.is_empty() {
            None
        } else {
            (0..n)
                .map(|i| set.backends[(start + i) % n])
                .find(|a| usable(a) && other_host(a))
        };
        elsewhere
            .or_else(|| (0..n).map(|i| set.backends[(start + i) % n]).find(usable))
            .or_else(|| {
                (0..n)
                    .map(|i| set.backends[(start + i) % n])
                    .find(|a| !exclude.contains(a))
            })
            .ok_or(ProxyError::new(ErrorKind::NoBackend))
    }

    /// A request to `addr` starts.
    pub fn begin(&self, addr: SocketAddr) {
        self.backends.borrow_mut().entry(addr).or_default().inflight += 1;
    }

    /// A request to `addr` ended.
    pub fn end(&self, addr: SocketAddr) {
        if let Some(b) = self.backends.borrow_mut().get_mut(&addr) {
            b.inflight = b.inflight.saturating_sub(1);
        }
        if !self.pending.borrow().is_empty() {
            self.update_drained();
        }
    }

    /// A connect to `addr` timed out: the host (or the path to it) is in trouble, not one
    /// process, so every backend on that IP is ejected, and requests stop paying a connect
    /// timeout for each of that host's replicas in turn (a partitioned node).
    pub fn eject_host(&self, addr: SocketAddr) {
        let view = self.view.borrow();
        let mut same_host: Vec<SocketAddr> = view
            .services
            .values()
            .flat_map(|set| set.backends.iter().copied())
            .filter(|b| b.ip() == addr.ip())
            .collect();
        drop(view);
        same_host.sort_unstable();
        same_host.dedup();
        if !same_host.contains(&addr) {
            same_host.push(addr);
        }
        for b in same_host {
            self.eject(b);
        }
    }

    /// `addr` refused or reset: keep it out for a growing period.
    pub fn eject(&self, addr: SocketAddr) {
        let mut backends = self.backends.borrow_mut();
        let b = backends.entry(addr).or_default();
        let now = Instant::now();
        if b.eject_until.is_some_and(|u| u > now) {
            return;
        }
        let penalty = b
            .penalty
            .map_or(FIRST_EJECTION, |p| (p * 2).min(MAX_EJECTION));
        b.penalty = Some(penalty);
        b.eject_until = Some(now + penalty);
        self.pool.borrow_mut().remove(&addr);
        self.counters.borrow_mut().ejections += 1;
        tracing::warn!(core = self.id, backend = %addr, ?penalty, "backend ejected");
    }

    /// `addr` answered: its next ejection starts short again.
    pub fn succeeded(&self, addr: SocketAddr) {
        if let Some(b) = self.backends.borrow_mut().get_mut(&addr)
            && b.penalty.is_some()
            && b.eject_until.is_none_or(|u| u <= Instant::now())
        {
            b.penalty = None;
            b.eject_until = None;
        }
    }

    /// A pooled connection to `addr` that has not been idle too long.
    pub fn take_pooled(&self, addr: SocketAddr) -> Option<UpConn> {
        let idle = self.config.timeouts.upstream_idle;
        let mut pool = self.pool.borrow_mut();
        let conns = pool.get_mut(&addr)?;
        while let Some(conn) = conns.pop() {
            if conn.idle_since.elapsed() < idle {
                return Some(conn);
            }
        }
        None
    }

    /// Returns a finished upstream connection to the pool.
    pub fn put_pooled(&self, addr: SocketAddr, mut conn: UpConn) {
        if self.draining.get() || !self.view.borrow().has_backend(addr) {
            return;
        }
        conn.idle_since = Instant::now();
        let mut pool = self.pool.borrow_mut();
        let conns = pool.entry(addr).or_default();
        if conns.len() < MAX_POOLED {
            conns.push(conn);
        }
    }

    /// Drops pooled connections idle longer than the upstream idle timeout.
    pub fn sweep_pool(&self) {
        let idle = self.config.timeouts.upstream_idle;
        for conns in self.pool.borrow_mut().values_mut() {
            conns.retain(|c| c.idle_since.elapsed() < idle);
        }
    }

    /// Whether the core is draining (no new requests on kept-alive connections).
    pub fn draining(&self) -> bool {
        self.draining.get()
    }

    /// Starts draining: idle pooled connections are closed and no more are pooled.
    pub fn start_drain(&self) {
        self.draining.set(true);
        self.pool.borrow_mut().clear();
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters.into_values() {
            w.wake();
        }
    }

    /// Resolves when the core starts draining (for idle keep-alive waits and the accept loop).
    pub fn drain_signal(&self) -> DrainWait<'_> {
        DrainWait {
            core: self,
            id: None,
        }
    }

    /// Publishes this core's counters to the hub.
    pub fn publish_counters(&self) {
        self.hub.publish(self.id, &self.counters.borrow());
    }
}

/// See [`Core::drain_signal`].
#[derive(Debug)]
pub struct DrainWait<'a> {
    core: &'a Core,
    id: Option<u64>,
}

impl Future for DrainWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.core.draining.get() {
            return Poll::Ready(());
        }
        let id = if let Some(id) = self.id {
            id
        } else {
            let id = self.core.next_waiter.get();
            self.core.next_waiter.set(id.wrapping_add(1));
            self.id = Some(id);
            id
        };
        self.core
            .waiters
            .borrow_mut()
            .insert(id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for DrainWait<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.core.waiters.borrow_mut().remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ServiceSet;

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
