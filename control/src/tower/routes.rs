//! The Tower's route table as a pure state machine: each app's published routes with a
//! version, and the WATCH_ROUTES subscribers with what each has acknowledged (SPEC §7.1).
//!
//! Like [`super::registry`] it owns no socket and reads no clock: every operation takes `now`,
//! and changes come back as [`RoutesPush`]es for the daemon to send.
//!
//! ```text
//! PUBLISH_ROUTES(app, set) ──set differs?──▶ app.version += 1 ──▶ push to every live watcher
//! WATCH_ROUTES             ──▶ push every app's current set to the watcher
//! ACK_ROUTES(app, v)       ──▶ acked[watcher][app] = max(acked, v); unacked ones are re-sent
//! ```
//! Invariant: an app's version increases exactly when its route set changes, from the table's
//! epoch up (as in [`super::registry`], so a restarted Tower's versions are newer); a withdrawn app
//! (empty set) stays as a tombstone with its version, so a watcher that missed the withdrawal
//! is told again. It does not arbitrate between apps: the Conductor refuses a route another
//! app holds before it publishes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use skr8tr_proto::name::AppName;
use skr8tr_proto::route::RouteSpec;

use super::registry::{WatchError, Watcher, live_count, subscribe};

/// Most apps whose routes the Tower keeps (tombstones included), so a flood of publishes with
/// made-up names cannot grow memory without bound.
pub const MAX_APPS: usize = 65_536;

#[derive(Debug, Default)]
struct AppRoutes {
    routes: Vec<RouteSpec>,
    version: u64,
}

/// One app's route set to send to one subscriber (`ROUTES_UPDATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesPush {
    pub to: SocketAddr,
    pub app: AppName,
    pub version: u64,
    pub routes: Vec<RouteSpec>,
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("the Tower already holds routes of {MAX_APPS} apps")]
    TooManyApps,
}

/// The route table: apps by name, subscribers by address.
#[derive(Debug, Default)]
pub struct RouteTable {
    apps: BTreeMap<AppName, AppRoutes>,
    watchers: HashMap<SocketAddr, Watcher<AppName>>,
    /// The version an app starts at (its first publish makes it `epoch + 1`).
    epoch: u64,
}

impl RouteTable {
    /// A table whose versions start at 0 (tests).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A table whose versions start above `epoch` ([`super::registry::epoch_now`]).
    #[must_use]
    pub fn with_epoch(epoch: u64) -> Self {
        Self {
            epoch,
            ..Self::default()
        }
    }

    /// Replaces `app`'s routes with `routes` (empty: withdraws them). Returns the app's version
    /// and the pushes the change causes (none when the set is unchanged).
    ///
    /// # Errors
    /// [`PublishError::TooManyApps`] when a new app would exceed [`MAX_APPS`].
    pub fn publish(
        &mut self,
        app: &AppName,
        routes: Vec<RouteSpec>,
        now: Instant,
    ) -> Result<(u64, Vec<RoutesPush>), PublishError> {
        if !self.apps.contains_key(app) {
            if routes.is_empty() {
                // Withdrawing what was never published changes nothing.
                return Ok((0, Vec::new()));
            }
            if self.apps.len() >= MAX_APPS {
                return Err(PublishError::TooManyApps);
            }
        }
        let epoch = self.epoch;
        let entry = self.apps.entry(app.clone()).or_insert_with(|| AppRoutes {
            routes: Vec::new(),
            version: epoch,
        });
        // A new entry's empty set always differs: withdrawing the unknown returned above.
        if entry.routes == routes {
            return Ok((entry.version, Vec::new()));
        }
        entry.routes = routes;
        entry.version += 1;
        let version = entry.version;
        let mut pushes: Vec<RoutesPush> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.lease_until > now)
            .map(|(who, _)| self.push(*who, app))
            .collect();
        pushes.sort_by_key(|p| p.to);
        Ok((version, pushes))
    }

    /// Every published route with its app, by app name then in the app's order.
    #[must_use]
    pub fn routes(&self) -> Vec<(AppName, RouteSpec)> {
        self.apps
            .iter()
            .flat_map(|(app, r)| {
                r.routes
                    .iter()
                    .map(move |route| (app.clone(), route.clone()))
            })
            .collect()
    }

    /// The current version and routes of `app` (version 0: never published).
    #[must_use]
    pub fn of(&self, app: &AppName) -> (u64, Vec<RouteSpec>) {
        self.apps
            .get(app)
            .map_or((0, Vec::new()), |r| (r.version, r.routes.clone()))
    }

    /// Subscribes (or renews) `who` for `lease`; returns every app's current set, which the
    /// daemon sends at once (a renewal doubles as a periodic re-send).
    ///
    /// # Errors
    /// [`WatchError::TooManyWatchers`] when a new watcher would exceed
    /// [`MAX_WATCHERS`](super::registry::MAX_WATCHERS).
    pub fn watch(
        &mut self,
        who: SocketAddr,
        lease: Duration,
        now: Instant,
    ) -> Result<Vec<RoutesPush>, WatchError> {
        subscribe(&mut self.watchers, who, lease, now)?;
        Ok(self.apps.keys().map(|app| self.push(who, app)).collect())
    }

    /// Records that `who` serves `version` of `app`'s routes. Acks from non-watchers are
    /// ignored, stale versions change nothing.
    pub fn ack(&mut self, who: SocketAddr, app: &AppName, version: u64) {
        if let Some(w) = self.watchers.get_mut(&who) {
            let acked = w.acked.entry(app.clone()).or_insert(0);
            *acked = (*acked).max(version);
        }
    }

    /// Pushes for every live watcher that has not acknowledged the current version of an app:
    /// the daemon re-sends these periodically, so a lost ROUTES_UPDATE heals.
    #[must_use]
    pub fn unacked(&self, now: Instant) -> Vec<RoutesPush> {
        let mut out = Vec::new();
        for (who, w) in self.watchers.iter().filter(|(_, w)| w.lease_until > now) {
            for (app, r) in &self.apps {
                if w.acked.get(app).copied().unwrap_or(0) < r.version {
                    out.push(self.push(*who, app));
                }
            }
        }
        out.sort_by(|a, b| (a.to, &a.app).cmp(&(b.to, &b.app)));
        out
    }

    /// Forgets watchers whose lease ran out.
    pub fn expire(&mut self, now: Instant) {
        self.watchers.retain(|_, w| w.lease_until > now);
    }

    /// Number of live watchers (for tests and metrics).
    #[must_use]
    pub fn watcher_count(&self, now: Instant) -> usize {
        live_count(&self.watchers, now)
    }

    fn push(&self, to: SocketAddr, app: &AppName) -> RoutesPush {
        let (version, routes) = self.of(app);
        RoutesPush {
            to,
            app: app.clone(),
            version,
            routes,
        }
    }
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::route::RouteHost;

    use super::super::registry::MAX_WATCHERS;
    use super::*;

    fn app(s: &str) -> AppName {
        AppName::new(s).unwrap()
    }

    fn route(prefix: &str) -> RouteSpec {
        RouteSpec::new(Some(RouteHost::Exact("example.com".into())), prefix)
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn publish_bumps_the_version_only_on_change() {
        let mut t = RouteTable::new();
        let now = Instant::now();
        assert_eq!(t.publish(&app("api"), vec![], now), Ok((0, vec![])));
        assert_eq!(t.routes(), vec![]);
        assert_eq!(t.publish(&app("api"), vec![route("/a")], now).unwrap().0, 1);
        assert_eq!(t.publish(&app("api"), vec![route("/a")], now).unwrap().0, 1);
        assert_eq!(t.publish(&app("web"), vec![route("/")], now).unwrap().0, 1);
        assert_eq!(
            t.publish(&app("api"), vec![route("/a"), route("/b")], now)
                .unwrap()
                .0,
            2
        );
        assert_eq!(
            t.routes(),
            vec![
                (app("api"), route("/a")),
                (app("api"), route("/b")),
                (app("web"), route("/")),
            ]
        );
        // Withdrawn: gone from the table, its version still increases.
        assert_eq!(t.publish(&app("api"), vec![], now).unwrap().0, 3);
        assert_eq!(t.routes(), vec![(app("web"), route("/"))]);
        assert_eq!(t.of(&app("api")), (3, vec![]));
    }

    #[test]
    fn versions_start_above_the_epoch() {
        let mut t = RouteTable::with_epoch(5_000);
        let now = Instant::now();
        assert_eq!(t.publish(&app("api"), vec![], now), Ok((0, vec![])));
        assert_eq!(
            t.publish(&app("api"), vec![route("/a")], now).unwrap().0,
            5_001
        );
        assert_eq!(
            t.publish(&app("api"), vec![route("/a")], now).unwrap().0,
            5_001
        );
        assert_eq!(t.publish(&app("api"), vec![], now).unwrap().0, 5_002);
    }

    #[test]
    fn watchers_get_every_app_then_each_change_until_they_ack() {
        let mut t = RouteTable::new();
        let now = Instant::now();
        let lease = Duration::from_secs(10);
        t.publish(&app("api"), vec![route("/a")], now).unwrap();
        let first = t.watch(addr(1), lease, now).unwrap();
        assert_eq!(
            first,
            vec![RoutesPush {
                to: addr(1),
                app: app("api"),
                version: 1,
                routes: vec![route("/a")],
            }]
        );
        // Not acknowledged yet: re-sent.
        assert_eq!(t.unacked(now), first);
        t.ack(addr(1), &app("api"), 1);
        assert_eq!(t.unacked(now), vec![]);
        // A change goes to the watcher, and is re-sent until acknowledged.
        let (_, pushes) = t.publish(&app("api"), vec![], now).unwrap();
        assert_eq!(pushes.len(), 1);
        assert_eq!((pushes[0].version, pushes[0].routes.len()), (2, 0));
        assert_eq!(t.unacked(now), pushes);
        // A stale ack does not undo a newer one.
        t.ack(addr(1), &app("api"), 2);
        t.ack(addr(1), &app("api"), 1);
        assert_eq!(t.unacked(now), vec![]);
        // Acks from strangers are ignored.
        t.ack(addr(9), &app("api"), 2);
        assert_eq!(t.watcher_count(now), 1);
        // The lease runs out: no more pushes.
        let later = now + lease + Duration::from_secs(1);
        t.expire(later);
        assert_eq!(t.watcher_count(later), 0);
        let (_, pushes) = t.publish(&app("api"), vec![route("/x")], later).unwrap();
        assert_eq!(pushes, vec![]);
    }

    #[test]
    fn watcher_count_is_bounded() {
        let mut t = RouteTable::new();
        let now = Instant::now();
        for port in 0..MAX_WATCHERS {
            let port = u16::try_from(port).unwrap();
            t.watch(addr(port), Duration::from_secs(5), now).unwrap();
        }
        assert_eq!(
            t.watch(addr(u16::MAX), Duration::from_secs(5), now),
            Err(WatchError::TooManyWatchers)
        );
        // A renewal of an existing watcher is still accepted.
        assert!(t.watch(addr(0), Duration::from_secs(5), now).is_ok());
    }
}
