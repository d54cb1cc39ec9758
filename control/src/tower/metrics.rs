//! The Tower's Prometheus metrics (SPEC §7.4, `/metrics` on its admin listener): entries,
//! watchers, pushes sent, acknowledgements, requests and refusals.
//!
//! Gauges (entries, services, watchers, apps with routes) are read from the [`Tower`] at each
//! scrape; counters count since the daemon started. Label values come from fixed sets (verbs,
//! result codes, reasons), never from a datagram's free text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::time::Instant;

use super::server::Tower;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabel {
    verb: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The Tower's series.
#[derive(Debug)]
pub struct TowerMetrics {
    registry: Registry,
    entries: Gauge,
    services: Gauge,
    watchers: Family<KindLabel, Gauge>,
    route_apps: Gauge,
    requests: Family<RequestLabels, Counter>,
    pushes: Family<VerbLabel, Counter>,
    acks: Family<KindLabel, Counter>,
    auth_rejections: Family<ReasonLabel, Counter>,
}

impl Default for TowerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl TowerMetrics {
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("skr8tr_tower");
        let entries = Gauge::default();
        let services = Gauge::default();
        let watchers = Family::<KindLabel, Gauge>::default();
        let route_apps = Gauge::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let pushes = Family::<VerbLabel, Counter>::default();
        let acks = Family::<KindLabel, Counter>::default();
        let auth_rejections = Family::<ReasonLabel, Counter>::default();
        registry.register("entries", "Live registrations (backends)", entries.clone());
        registry.register(
            "services",
            "Services with at least one live backend",
            services.clone(),
        );
        registry.register(
            "watchers",
            "Subscribers with a live lease, by what they watch (backends, routes)",
            watchers.clone(),
        );
        registry.register(
            "route_apps",
            "Apps whose routes the Tower holds",
            route_apps.clone(),
        );
        registry.register(
            "requests",
            "Requests by verb and result (ok, or the error code)",
            requests.clone(),
        );
        registry.register(
            "pushes",
            "Pushes sent to watchers, by verb (UPDATE, ROUTES_UPDATE; re-sends included)",
            pushes.clone(),
        );
        registry.register(
            "acks",
            "Acknowledgements received, by kind (backends, routes)",
            acks.clone(),
        );
        registry.register(
            "auth_rejections",
            "Datagrams refused for their signature, by reason",
            auth_rejections.clone(),
        );
        Self {
            registry,
            entries,
            services,
            watchers,
            route_apps,
            requests,
            pushes,
            acks,
            auth_rejections,
        }
    }

    /// One request answered.
    pub fn request(&self, verb: &'static str, result: &'static str) {
        self.requests
            .get_or_create(&RequestLabels { verb, result })
            .inc();
        let kind = match verb {
            "ACK" => "backends",
            "ACK_ROUTES" => "routes",
            _ => return,
        };
        self.acks.get_or_create(&KindLabel { kind }).inc();
    }

    /// A push sent.
    pub fn pushed(&self, verb: &'static str) {
        self.pushes.get_or_create(&VerbLabel { verb }).inc();
    }

    /// A datagram refused for its signature.
    pub fn auth_rejected(&self, reason: &'static str) {
        self.auth_rejections
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// The text format, with the gauges read from `tower` at `now`.
    #[must_use]
    pub fn render(&self, tower: &Tower, now: Instant) -> String {
        let listed = tower.registry.list(now);
        let mut services: Vec<&str> = listed.iter().map(|l| l.service.as_str()).collect();
        services.dedup();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.entries.set(count(listed.len()));
        self.services.set(count(services.len()));
        self.watchers
            .get_or_create(&KindLabel { kind: "backends" })
            .set(count(tower.registry.watcher_count(now)));
        self.watchers
            .get_or_create(&KindLabel { kind: "routes" })
            .set(count(tower.routes.watcher_count(now)));
        let mut apps: Vec<String> = tower
            .routes
            .routes()
            .into_iter()
            .map(|(app, _)| app.as_str().to_owned())
            .collect();
        apps.dedup();
        self.route_apps.set(count(apps.len()));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
