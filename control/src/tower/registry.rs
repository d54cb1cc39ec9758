//! The Tower's registry as a pure state machine: service entries with TTLs, round-robin
//! lookup, and WATCH subscribers with versioned backend sets and drain acknowledgements.
//!
//! It owns no socket and reads no clock: every operation takes `now`, and changes come back as
//! [`Push`]es for the daemon to send. The daemon (`tower::server`) turns datagrams into calls.
//!
//! ```text
//! REGISTER/DEREGISTER/expiry ──▶ service.version += 1 ──▶ Push to every live watcher
//! watcher ACK(version)  ──▶ acked[watcher] = version
//! DRAINED(version)      ──▶ every live watcher of the service has acked ≥ version?
//! ```
//! Invariant: a service's version increases exactly when its set of live backends changes, so
//! a subscriber that acknowledged version `v` routes by a set that excludes every backend
//! removed at or before `v`. Versions start at the registry's epoch ([`Registry::with_epoch`];
//! the daemon uses its start time, [`epoch_now`]), so a restarted Tower's versions are above
//! every version the one before it sent and a subscriber that ignores older versions does not
//! ignore it.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use skr8tr_proto::name::ServiceName;

/// Default time an entry lives without a refresh (SPEC §5: 30 s).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Longest TTL or lease a client may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// Most services one WATCH may name, and most watchers the Tower keeps, so a flood of
/// subscriptions cannot grow memory without bound.
pub const MAX_WATCHERS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    backend: SocketAddr,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Service {
    /// In registration order, so round-robin is fair to new entries.
    entries: Vec<Entry>,
    next: usize,
    version: u64,
}

/// A subscriber: until when its lease runs, and per watched key (a service here, an app in
/// the route table) the highest version it acknowledged.
#[derive(Debug)]
pub(super) struct Watcher<K> {
    pub(super) lease_until: Instant,
    pub(super) acked: BTreeMap<K, u64>,
}

/// Subscribes (or renews) `who` in `watchers` for `lease` (at most [`MAX_TTL`]).
///
/// # Errors
/// [`WatchError::TooManyWatchers`] when a new watcher would exceed [`MAX_WATCHERS`].
pub(super) fn subscribe<K>(
    watchers: &mut HashMap<SocketAddr, Watcher<K>>,
    who: SocketAddr,
    lease: Duration,
    now: Instant,
) -> Result<&mut Watcher<K>, WatchError> {
    if !watchers.contains_key(&who) && watchers.len() >= MAX_WATCHERS {
        return Err(WatchError::TooManyWatchers);
    }
    let watcher = watchers.entry(who).or_insert_with(|| Watcher {
        lease_until: now,
        acked: BTreeMap::new(),
    });
    watcher.lease_until = now + lease.min(MAX_TTL);
    Ok(watcher)
}

/// How many of `watchers` hold a live lease.
pub(super) fn live_count<K>(watchers: &HashMap<SocketAddr, Watcher<K>>, now: Instant) -> usize {
    watchers.values().filter(|w| w.lease_until > now).count()
}

/// A backend set to send to one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub to: SocketAddr,
    pub service: ServiceName,
    pub version: u64,
    pub backends: Vec<SocketAddr>,
}

/// One line of `LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub service: ServiceName,
    pub backend: SocketAddr,
    pub ttl_left: Duration,
}

/// The answer to `DRAINED|service|version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainState {
    /// Every live watcher of the service has acknowledged the version (true when none watch).
    pub all: bool,
    pub acked: usize,
    pub subscribers: usize,
}

/// Why a watch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    #[error("the Tower already has {MAX_WATCHERS} watchers")]
    TooManyWatchers,
}

/// A version epoch for a Tower starting now: its start time in Unix milliseconds times a
/// million. A Tower that made fewer than a million changes a millisecond (it makes a few a
/// second) never reaches the epoch of one started later; `u64` holds such epochs for
/// another 500 years.
#[must_use]
pub fn epoch_now() -> u64 {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    ms.saturating_mul(1_000_000)
}

/// The registry: services by name, watchers by address.
#[derive(Debug, Default)]
pub struct Registry {
    services: HashMap<ServiceName, Service>,
    watchers: HashMap<SocketAddr, Watcher<ServiceName>>,
    /// The version a service starts at (its first change makes it `epoch + 1`).
    epoch: u64,
}

impl Registry {
    /// A registry whose versions start at 0 (tests).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry whose versions start above `epoch`.
    #[must_use]
    pub fn with_epoch(epoch: u64) -> Self {
        Self {
            epoch,
            ..Self::default()
        }
    }

    /// Adds `backend` to `service` or refreshes its TTL. Returns the pushes the change causes
    /// (none for a mere refresh).
    pub fn register(
        &mut self,
        service: &ServiceName,
        backend: SocketAddr,
        ttl: Duration,
        now: Instant,
    ) -> Vec<Push> {
        let expires = now + ttl.min(MAX_TTL);
        let epoch = self.epoch;
        let svc = self
            .services
            .entry(service.clone())
            .or_insert_with(|| Service {
                version: epoch,
                ..Service::default()
            });
        if let Some(entry) = svc.entries.iter_mut().find(|e| e.backend == backend) {
            entry.expires = expires;
            return Vec::new();
        }
        svc.entries.push(Entry { backend, expires });
        svc.version += 1;
        self.pushes_for(service, now)
    }

    /// Removes `backend` from `service`. Returns the pushes the change causes (none when it
    /// was not registered, so DEREGISTER is idempotent).
    pub fn deregister(
        &mut self,
        service: &ServiceName,
        backend: SocketAddr,
        now: Instant,
    ) -> Vec<Push> {
        let Some(svc) = self.services.get_mut(service) else {
            return Vec::new();
        };
        let before = svc.entries.len();
        svc.entries.retain(|e| e.backend != backend);
        if svc.entries.len() == before {
            return Vec::new();
        }
        svc.version += 1;
        self.pushes_for(service, now)
    }

    /// The next live backend of `service`, round-robin; `None` when it has none.
    pub fn lookup(&mut self, service: &ServiceName, now: Instant) -> Option<SocketAddr> {
        let svc = self.services.get_mut(service)?;
        let n = svc.entries.len();
        for _ in 0..n {
            let i = svc.next % n;
            svc.next = (i + 1) % n;
            if let Some(entry) = svc.entries.get(i)
                && entry.expires > now
            {
                return Some(entry.backend);
            }
        }
        None
    }

    /// Every live entry, by service name then registration order.
    #[must_use]
    pub fn list(&self, now: Instant) -> Vec<Listed> {
        let mut names: Vec<&ServiceName> = self.services.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if let Some(svc) = self.services.get(name) {
                for e in svc.entries.iter().filter(|e| e.expires > now) {
                    out.push(Listed {
                        service: name.clone(),
                        backend: e.backend,
                        ttl_left: e.expires.saturating_duration_since(now),
                    });
                }
            }
        }
        out
    }

    /// The live backends of `service` and the version that set has.
    #[must_use]
    pub fn backends(&self, service: &ServiceName, now: Instant) -> (u64, Vec<SocketAddr>) {
        match self.services.get(service) {
            Some(svc) => (
                svc.version,
                svc.entries
                    .iter()
                    .filter(|e| e.expires > now)
                    .map(|e| e.backend)
                    .collect(),
            ),
            None => (0, Vec::new()),
        }
    }

    /// Drops expired entries and watchers whose lease ran out; returns the pushes caused by
    /// services whose set changed.
    pub fn expire(&mut self, now: Instant) -> Vec<Push> {
        self.watchers.retain(|_, w| w.lease_until > now);
        let mut changed = Vec::new();
        for (name, svc) in &mut self.services {
            let before = svc.entries.len();
            svc.entries.retain(|e| e.expires > now);
            if svc.entries.len() != before {
                svc.version += 1;
                changed.push(name.clone());
            }
        }
        let epoch = self.epoch;
        self.services
            .retain(|_, svc| !svc.entries.is_empty() || svc.version > epoch);
        changed.sort();
        changed
            .iter()
            .flat_map(|name| self.pushes_for(name, now))
            .collect()
    }

    /// Subscribes (or renews) `who` to `services` for `lease`, and returns the current set of
    /// each, which the daemon sends at once (a renewal doubles as a periodic re-send).
    ///
    /// # Errors
    /// [`WatchError::TooManyWatchers`] when a new watcher would exceed [`MAX_WATCHERS`].
    pub fn watch(
        &mut self,
        who: SocketAddr,
        services: &[ServiceName],
        lease: Duration,
        now: Instant,
    ) -> Result<Vec<Push>, WatchError> {
        let watcher = subscribe(&mut self.watchers, who, lease, now)?;
        for service in services {
            watcher.acked.entry(service.clone()).or_insert(0);
        }
        Ok(services
            .iter()
            .map(|service| {
                let (version, backends) = self.backends(service, now);
                Push {
                    to: who,
                    service: service.clone(),
                    version,
                    backends,
                }
            })
            .collect())
    }

    /// Stops `who` watching `service`; the watcher goes when it watches nothing.
    pub fn unwatch(&mut self, who: SocketAddr, service: &ServiceName) {
        if let Some(w) = self.watchers.get_mut(&who) {
            w.acked.remove(service);
            if w.acked.is_empty() {
                self.watchers.remove(&who);
            }
        }
    }

    /// Records that `who` routes by `version` of `service` and has nothing in flight to a
    /// backend that version removed. Acks from non-watchers and stale versions are ignored.
    pub fn ack(&mut self, who: SocketAddr, service: &ServiceName, version: u64) {
        if let Some(acked) = self
            .watchers
            .get_mut(&who)
            .and_then(|w| w.acked.get_mut(service))
        {
            *acked = (*acked).max(version);
        }
    }

    /// Whether every live watcher of `service` has acknowledged `version` (or later).
    #[must_use]
    pub fn drained(&self, service: &ServiceName, version: u64, now: Instant) -> DrainState {
        let mut subscribers = 0;
        let mut acked = 0;
        for w in self.watchers.values().filter(|w| w.lease_until > now) {
            if let Some(&v) = w.acked.get(service) {
                subscribers += 1;
                if v >= version {
                    acked += 1;
                }
            }
        }
        DrainState {
            all: acked == subscribers,
            acked,
            subscribers,
        }
    }

    /// Pushes for every live watcher that has not yet acknowledged the current version of a
    /// service it watches: the daemon re-sends these periodically, so a lost UPDATE heals.
    #[must_use]
    pub fn unacked(&self, now: Instant) -> Vec<Push> {
        let mut out = Vec::new();
        for (who, w) in self.watchers.iter().filter(|(_, w)| w.lease_until > now) {
            for (service, &acked) in &w.acked {
                let (version, backends) = self.backends(service, now);
                if acked < version {
                    out.push(Push {
                        to: *who,
                        service: service.clone(),
                        version,
                        backends,
                    });
                }
            }
        }
        out
    }

    /// Number of live watchers (for metrics and tests).
    #[must_use]
    pub fn watcher_count(&self, now: Instant) -> usize {
        live_count(&self.watchers, now)
    }

    fn pushes_for(&self, service: &ServiceName, now: Instant) -> Vec<Push> {
        let (version, backends) = self.backends(service, now);
        let mut out: Vec<Push> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.lease_until > now && w.acked.contains_key(service))
            .map(|(who, _)| Push {
                to: *who,
                service: service.clone(),
                version,
                backends: backends.clone(),
            })
            .collect();
        out.sort_by_key(|p| p.to);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(s: &str) -> ServiceName {
        ServiceName::new(s).unwrap()
    }
    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_later_registry_versions_above_an_earlier_one() {
        let t = Instant::now();
        let api = svc("api");
        let mut first = Registry::with_epoch(epoch_now());
        for port in 1..=50 {
            first.register(&api, addr(&format!("10.0.0.1:{port}")), DEFAULT_TTL, t);
        }
        let (old, _) = first.backends(&api, t);
        std::thread::sleep(Duration::from_millis(2));
        let mut restarted = Registry::with_epoch(epoch_now());
        restarted.register(&api, addr("10.0.0.1:1"), DEFAULT_TTL, t);
        let (new, backends) = restarted.backends(&api, t);
        assert!(new > old, "{new} <= {old}");
        assert_eq!(backends.len(), 1);
        // An unknown service is still version 0, below anything a subscriber holds.
        assert_eq!(restarted.backends(&svc("nope"), t).0, 0);
    }

    #[test]
    fn lookup_round_robins_over_every_live_entry_including_new_ones() {
        let mut r = Registry::new();
        let t = Instant::now();
        let api = svc("api");
        r.register(&api, addr("10.0.0.1:80"), DEFAULT_TTL, t);
        r.register(&api, addr("10.0.0.2:80"), DEFAULT_TTL, t);
        assert_eq!(r.lookup(&api, t), Some(addr("10.0.0.1:80")));
        r.register(&api, addr("10.0.0.3:80"), DEFAULT_TTL, t);
        let seen: Vec<_> = (0..3).map(|_| r.lookup(&api, t).unwrap()).collect();
        assert_eq!(
            seen,
            vec![
                addr("10.0.0.2:80"),
                addr("10.0.0.3:80"),
                addr("10.0.0.1:80")
            ]
        );
        assert_eq!(r.lookup(&svc("nope"), t), None);
    }

    #[test]
    fn entries_expire_unless_refreshed_and_lookup_skips_expired() {
        let mut r = Registry::new();
        let t = Instant::now();
        let api = svc("api");
        r.register(&api, addr("10.0.0.1:80"), Duration::from_secs(30), t);
        r.register(&api, addr("10.0.0.2:80"), Duration::from_secs(30), t);
        // refresh only the second one at t+20s
        let refresh = r.register(
            &api,
            addr("10.0.0.2:80"),
            Duration::from_secs(30),
            t + Duration::from_secs(20),
        );
        assert!(refresh.is_empty(), "a refresh is not a change");
        let later = t + Duration::from_secs(31);
        for _ in 0..4 {
            assert_eq!(r.lookup(&api, later), Some(addr("10.0.0.2:80")));
        }
        r.expire(later);
        assert_eq!(r.list(later).len(), 1);
        assert_eq!(r.backends(&api, later).0, 3, "two adds and one expiry");
    }

    #[test]
    fn deregister_is_idempotent_and_bumps_the_version_once() {
        let mut r = Registry::new();
        let t = Instant::now();
        let api = svc("api");
        r.register(&api, addr("10.0.0.1:80"), DEFAULT_TTL, t);
        r.deregister(&api, addr("10.0.0.1:80"), t);
        r.deregister(&api, addr("10.0.0.1:80"), t);
        assert_eq!(r.backends(&api, t), (2, vec![]));
        assert_eq!(r.lookup(&api, t), None);
    }

    #[test]
    fn watchers_get_pushed_every_change_and_the_current_set_on_watch() {
        let mut r = Registry::new();
        let t = Instant::now();
        let api = svc("api");
        let edge = addr("127.0.0.1:5000");
        r.register(&api, addr("10.0.0.1:80"), DEFAULT_TTL, t);
        let first = r
            .watch(edge, std::slice::from_ref(&api), Duration::from_secs(10), t)
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].version, 1);
        assert_eq!(first[0].backends, vec![addr("10.0.0.1:80")]);
        let pushes = r.register(&api, addr("10.0.0.2:80"), DEFAULT_TTL, t);
        assert_eq!(pushes.len(), 1);
        assert_eq!(pushes[0].to, edge);
        assert_eq!(pushes[0].version, 2);
        assert_eq!(pushes[0].backends.len(), 2);
        // other services do not push to this watcher
        assert!(
            r.register(&svc("web"), addr("10.0.0.9:80"), DEFAULT_TTL, t)
                .is_empty()
        );
    }

    #[test]
    fn drained_waits_for_every_live_watcher_and_ignores_dead_ones() {
        let mut r = Registry::new();
        let t = Instant::now();
        let api = svc("api");
        let (a, b) = (addr("127.0.0.1:5000"), addr("127.0.0.1:5001"));
        r.register(&api, addr("10.0.0.1:80"), DEFAULT_TTL, t);
        r.register(&api, addr("10.0.0.2:80"), DEFAULT_TTL, t);
        r.watch(a, std::slice::from_ref(&api), Duration::from_secs(10), t)
            .unwrap();
        r.watch(b, std::slice::from_ref(&api), Duration::from_secs(5), t)
            .unwrap();
        r.deregister(&api, addr("10.0.0.1:80"), t);
        let v = r.backends(&api, t).0;
        assert_eq!(
            r.drained(&api, v, t),
            DrainState {
                all: false,
                acked: 0,
                subscribers: 2
            }
        );
        r.ack(a, &api, v);
        assert_eq!(
            r.drained(&api, v, t),
            DrainState {
                all: false,
                acked: 1,
                subscribers: 2
            }
        );
        assert_eq!(r.unacked(t).len(), 1, "b still needs the update");
        // b's lease runs out: it no longer blocks a rollout
        let later = t + Duration::from_secs(6);
        assert!(r.drained(&api, v, later).all);
        // an ack for an older version does not regress
        r.ack(a, &api, v - 1);
        assert!(r.drained(&api, v, later).all);
        // nobody watching: drained at once
        assert!(r.drained(&svc("web"), 7, t).all);
    }

    #[test]
    fn watcher_count_is_bounded() {
        let mut r = Registry::new();
        let t = Instant::now();
        for i in 0..MAX_WATCHERS {
            let who = SocketAddr::from(([127, 0, 0, 1], u16::try_from(i + 1000).unwrap()));
            r.watch(who, &[svc("api")], Duration::from_secs(10), t)
                .unwrap();
        }
        let extra = addr("127.0.0.2:1");
        assert_eq!(
            r.watch(extra, &[svc("api")], Duration::from_secs(10), t),
            Err(WatchError::TooManyWatchers)
        );
        // renewal of an existing watcher still works
        let existing = SocketAddr::from(([127, 0, 0, 1], 1000));
        assert!(
            r.watch(existing, &[svc("api")], Duration::from_secs(10), t)
                .is_ok()
        );
        r.unwatch(existing, &svc("api"));
        assert_eq!(r.watcher_count(t), MAX_WATCHERS - 1);
    }
}
