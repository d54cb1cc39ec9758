//! Backend choice on one core: round-robin over a service's backends, skipping ejected ones
//! and, after a failure, preferring another host; requests in flight per backend; ejection
//! with a doubling penalty.
//!
//! ```text
//! pick(view, service, exclude) ─round-robin from the service's counter─▶ another host than `exclude`
//!   ─▶ else any usable (not ejected, not excluded) ─▶ else any not excluded (all ejected)
//! failure ─eject─▶ out for 1 s, 2 s, 4 s … 30 s        success ─succeeded─▶ next penalty starts at 1 s
//! ```
//!
//! Owns only this core's per-backend bookkeeping (`RefCell`, one thread). It reads the view it
//! is given and never changes it; what an ejection does to the pool and the counters is the
//! core's business (`Core::eject`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::directory::View;
use crate::error::{ErrorKind, ProxyError};

/// First ejection period; doubled on each further failure, up to [`MAX_EJECTION`].
pub const FIRST_EJECTION: Duration = Duration::from_secs(1);
/// Longest ejection period.
pub const MAX_EJECTION: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct BackendState {
    inflight: u32,
    eject_until: Option<Instant>,
    penalty: Option<Duration>,
}

/// One core's round-robin counters and per-backend state.
#[derive(Debug, Default)]
pub struct Balancer {
    rr: RefCell<HashMap<String, usize>>,
    backends: RefCell<HashMap<SocketAddr, BackendState>>,
}

impl Balancer {
    /// Picks a backend of `service` in `view`, round-robin, skipping ejected ones (unless all
    /// are) and those in `exclude`. After a failure (`exclude` not empty) a backend on another
    /// host than the failed ones comes first: when a node dies, its other replicas are most
    /// likely dead too.
    ///
    /// # Errors
    /// [`ErrorKind::NoBackend`] when the service has no backend.
    pub fn pick(
        &self,
        view: &View,
        service: &str,
        exclude: &[SocketAddr],
    ) -> Result<SocketAddr, ProxyError> {
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
    }

    /// Whether a request to any of `addrs` is in flight.
    pub fn any_in_flight(&self, addrs: &[SocketAddr]) -> bool {
        let backends = self.backends.borrow();
        addrs
            .iter()
            .any(|a| backends.get(a).is_some_and(|b| b.inflight > 0))
    }

    /// Keeps `addr` out for a growing period; returns that period, or `None` when it is out
    /// already.
    pub fn eject(&self, addr: SocketAddr) -> Option<Duration> {
        let mut backends = self.backends.borrow_mut();
        let b = backends.entry(addr).or_default();
        let now = Instant::now();
        if b.eject_until.is_some_and(|u| u > now) {
            return None;
        }
        let penalty = b
            .penalty
            .map_or(FIRST_EJECTION, |p| (p * 2).min(MAX_EJECTION));
        b.penalty = Some(penalty);
        b.eject_until = Some(now + penalty);
        Some(penalty)
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
}

/// Every backend in `view` on `addr`'s host, `addr` included, each once (what a connect
/// timeout ejects: the host or the path to it is in trouble, not one process).
#[must_use]
pub fn same_host(view: &View, addr: SocketAddr) -> Vec<SocketAddr> {
    let mut same_host: Vec<SocketAddr> = view
        .services
        .values()
        .flat_map(|set| set.backends.iter().copied())
        .filter(|b| b.ip() == addr.ip())
        .collect();
    same_host.sort_unstable();
    same_host.dedup();
    if !same_host.contains(&addr) {
        same_host.push(addr);
    }
    same_host
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::ServiceSet;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn same_host_lists_each_backend_of_that_ip_once() {
        let mut view = View::default();
        for (svc, backends) in [
            ("web", ["10.0.0.1:2", "10.0.0.2:1"]),
            ("api", ["10.0.0.1:1", "10.0.0.1:2"]),
        ] {
            let backends = backends.iter().map(|a| addr(a)).collect();
            let set = Arc::new(ServiceSet {
                version: 1,
                backends,
            });
            view.services.insert(svc.to_owned(), set);
        }
        for (failed, expected) in [
            ("10.0.0.1:1", vec!["10.0.0.1:1", "10.0.0.1:2"]),
            ("10.0.0.2:1", vec!["10.0.0.2:1"]),
            ("10.0.0.3:9", vec!["10.0.0.3:9"]),
        ] {
            let expected: Vec<SocketAddr> = expected.iter().map(|a| addr(a)).collect();
            assert_eq!(same_host(&view, addr(failed)), expected, "{failed}");
        }
    }

    #[test]
    fn an_ejected_backend_is_not_ejected_again_until_its_period_ends() {
        let b = Balancer::default();
        assert_eq!(b.eject(addr("10.0.0.1:1")), Some(FIRST_EJECTION));
        assert_eq!(b.eject(addr("10.0.0.1:1")), None);
        assert_eq!(b.eject(addr("10.0.0.1:2")), Some(FIRST_EJECTION));
    }

    #[test]
    fn in_flight_counts_begin_and_end() {
        let b = Balancer::default();
        let (one, two) = (addr("10.0.0.1:1"), addr("10.0.0.1:2"));
        assert!(!b.any_in_flight(&[one, two]));
        b.begin(one);
        b.begin(one);
        b.end(one);
        assert!(b.any_in_flight(&[two, one]));
        b.end(one);
        b.end(one);
        assert!(!b.any_in_flight(&[one]));
    }
}
