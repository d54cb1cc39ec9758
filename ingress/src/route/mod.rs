//! Host and path-prefix routing: which service a request goes to (SPEC §5 "Ingress", §7.1).
//!
//! ```text
//! --route [HOST]/PREFIX:SERVICE ──┐ operator routes                exact host ─▶ PathTrie
//! --routes-file (manifest::parse_routes)┴─▶ win on a clash ─┐        *.suffix   ─▶ PathTrie
//! apps' routes (Tower ROUTES_UPDATE) ──────────────────────┴─compose─▶ any host ─▶ PathTrie
//! ```
//!
//! Owns the route table and the matching rule: the request's host (absolute-form target, else
//! `Host`; see [`host::normalize`]) picks the exact host's routes, then the wildcard's, then the
//! host-less ones, falling through to the next when none of a group's prefixes matches the
//! path; within a group the longest prefix on a path-segment boundary wins ([`trie`]). A lookup
//! costs O(host + path length) whatever the number of routes and allocates nothing. With
//! `strip-prefix`, [`stripped_target`] gives the target sent upstream. The grammar of a route
//! and of the routes file is the contract crate's (`skr8tr_proto::route`,
//! `skr8tr_proto::manifest::parse_routes`), so a route reads the same in a flag, a routes file
//! and an app's manifest. Pure: no I/O except [`load_operator_routes`] (reads the routes file).

pub mod host;
pub mod trie;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use skr8tr_proto::manifest::{self, ManifestErrors};
use skr8tr_proto::name::{AppName, ServiceName};
use skr8tr_proto::route::{self as spec, RouteSpec, ServiceRoute};
pub use skr8tr_proto::route::{RateLimit, RouteHost};
use trie::PathTrie;

/// Where a route comes from; on a clash the operator's (flag, file) win over an app's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteSource {
    /// `--route`.
    Flag,
    /// The routes file.
    File,
    /// An app's manifest, published through the Tower.
    App(AppName),
}

impl fmt::Display for RouteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag => f.write_str("flag"),
            Self::File => f.write_str("file"),
            Self::App(app) => write!(f, "app:{app}"),
        }
    }
}

/// One route: requests for `host` (any host when `None`) under `prefix` go to `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The host the route is for; `None`: any host.
    pub host: Option<RouteHost>,
    /// Starts with `/`.
    pub prefix: String,
    /// The Tower service name.
    pub service: ServiceName,
    /// Send the path without `prefix` (`/api/users` → `/users`, `/api` → `/`).
    pub strip_prefix: bool,
    /// Serve only over HTTPS (a start-up error without a TLS listener).
    pub https_only: bool,
    /// How long the upstream has to send its response head (`None`: the ingress's
    /// `--response-timeout`); missed → 504.
    pub timeout: Option<std::time::Duration>,
    /// Most request body bytes (`max-body`): a larger Content-Length gets 413 before any
    /// upstream is contacted; a chunked body growing past it is cut (upstream request aborted,
    /// 413).
    pub max_body: Option<u64>,
    /// Requests per second per client address (`rate N/s burst M`); over it → 429.
    pub rate: Option<RateLimit>,
    /// `HOST/PREFIX` (or `PREFIX`): the route in logs and metrics, and the key two routes
    /// cannot share.
    pub label: String,
    /// Where it comes from.
    pub source: RouteSource,
}

/// Why a route (or a routes file) is refused.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Not `[HOST]/PREFIX:SERVICE`.
    #[error("expected [HOST]/PREFIX:SERVICE, got `{0}`")]
    Syntax(String),
    /// The host or the prefix is wrong.
    #[error("route `{route}`: {problem}")]
    Target {
        route: String,
        #[source]
        problem: spec::RouteError,
    },
    /// The service is not a valid name.
    #[error("invalid service name `{0}`")]
    BadService(String),
    /// Two routes with the same host and prefix.
    #[error("route `{0}` given twice")]
    Duplicate(String),
    /// `https-only` without a TLS listener.
    #[error(
        "route `{0}` is https-only but the ingress has no TLS listener (give --tls-cert and --tls-key)"
    )]
    HttpsOnlyWithoutTls(String),
    /// The routes file is wrong (every error, each at its file:line:col).
    #[error("{0}")]
    File(#[from] ManifestErrors),
    /// The routes file cannot be read.
    #[error("cannot read the routes file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Route {
    /// The route `spec` to `service`.
    #[must_use]
    pub fn new(spec: RouteSpec, service: ServiceName, source: RouteSource) -> Self {
        let label = spec.target();
        let RouteSpec {
            host,
            prefix,
            options,
        } = spec;
        Self {
            host,
            prefix,
            service,
            strip_prefix: options.strip_prefix,
            https_only: options.https_only,
            timeout: options.timeout,
            max_body: options.max_body,
            rate: options.rate,
            label,
            source,
        }
    }

    /// One of an app's own routes: the app is the service.
    #[must_use]
    pub fn of_app(app: &AppName, spec: RouteSpec) -> Self {
        Self::new(
            spec,
            ServiceName::from(app.clone()),
            RouteSource::App(app.clone()),
        )
    }

    /// A host-less route from a prefix and a service name, validated.
    ///
    /// # Errors
    /// [`RouteError::Target`] or [`RouteError::BadService`].
    pub fn for_spec(target: &str, service: &str) -> Result<Self, RouteError> {
        let (host, prefix) = spec::parse_target(target).map_err(|problem| RouteError::Target {
            route: target.to_owned(),
            problem,
        })?;
        let service = ServiceName::new(service.to_owned())
            .map_err(|_| RouteError::BadService(service.to_owned()))?;
        Ok(Self::new(
            RouteSpec::new(host, prefix),
            service,
            RouteSource::Flag,
        ))
    }

    /// Parses the flag form `[HOST]/PREFIX:SERVICE` (split at the last `:`).
    ///
    /// # Errors
    /// As [`Route::for_spec`], or [`RouteError::Syntax`] without a `:`.
    pub fn parse_flag(flag: &str) -> Result<Self, RouteError> {
        let (target, service) = flag
            .rsplit_once(':')
            .ok_or_else(|| RouteError::Syntax(flag.to_owned()))?;
        Self::for_spec(target, service)
    }
}

/// An app's route the table does not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// An operator's route (or an earlier app's) holds the same host and prefix.
    Taken {
        route: String,
        app: AppName,
        by: RouteSource,
    },
    /// `https-only` on an ingress without a TLS listener: not served over plain HTTP.
    HttpsOnlyWithoutTls { route: String, app: AppName },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Taken { route, app, by } => {
                write!(
                    f,
                    "route `{route}` of app `{app}` is held by {by}; {by} wins"
                )
            }
            Self::HttpsOnlyWithoutTls { route, app } => write!(
                f,
                "route `{route}` of app `{app}` is https-only and this ingress has no TLS listener; not served"
            ),
        }
    }
}

/// The operator's routes: `flags`, then the routes file at `file`, if any (a file route wins
/// over a flag route with the same host and prefix). With `tls == false`, a route that is
/// https-only is refused.
///
/// # Errors
/// A bad file (unreadable, or wrong: every error with its position), duplicates among the
/// flags, or [`RouteError::HttpsOnlyWithoutTls`].
pub fn load_operator_routes(
    flags: &[Route],
    file: Option<&Path>,
    tls: bool,
) -> Result<Vec<Route>, RouteError> {
    let mut routes = flags.to_vec();
    RouteTable::new(routes.clone())?;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| RouteError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let from_file: Vec<Route> = manifest::parse_routes(&path.display().to_string(), &text)?
            .into_iter()
            .map(|ServiceRoute { route, service }| Route::new(route, service, RouteSource::File))
            .collect();
        routes.retain(|r| !from_file.iter().any(|f| f.label == r.label));
        routes.extend(from_file);
    }
    if !tls && let Some(r) = routes.iter().find(|r| r.https_only) {
        return Err(RouteError::HttpsOnlyWithoutTls(r.label.clone()));
    }
    Ok(routes)
}

/// The request target sent upstream when `route` strips its prefix from `target_path` (the
/// path the router saw, query included): a leading part (`/` or empty) and the rest of the
/// path. `/api/users` → `/users`, `/api` → `/`, `/api?x=1` → `/?x=1`. `None`: the target is
/// sent as received.
#[must_use]
pub fn stripped_target<'p>(route: &Route, target_path: &'p str) -> Option<(&'static str, &'p str)> {
    if !route.strip_prefix {
        return None;
    }
    let cut = route.prefix.strip_suffix('/').unwrap_or(&route.prefix);
    let rest = target_path.get(cut.len()..)?;
    if cut.is_empty() {
        return None;
    }
    Some(if rest.starts_with('/') {
        ("", rest)
    } else {
        ("/", rest)
    })
}

/// The routes and their index by host, then path.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    exact: HashMap<Box<str>, PathTrie>,
    wildcard: HashMap<Box<str>, PathTrie>,
    any: PathTrie,
}

/// A shared, immutable route table.
pub type SharedRoutes = Arc<RouteTable>;

impl RouteTable {
    /// A table of `routes`.
    ///
    /// # Errors
    /// [`RouteError::Duplicate`] when two routes share a host and a prefix.
    pub fn new(routes: Vec<Route>) -> Result<Self, RouteError> {
        let mut table = Self::default();
        for (i, route) in routes.iter().enumerate() {
            let index = u32::try_from(i).map_err(|_| RouteError::Duplicate(route.label.clone()))?;
            let trie = match &route.host {
                None => &mut table.any,
                Some(RouteHost::Exact(h)) => table.exact.entry(Box::from(h.as_str())).or_default(),
                Some(RouteHost::Wildcard(s)) => {
                    table.wildcard.entry(Box::from(s.as_str())).or_default()
                }
            };
            trie.insert(&route.prefix, index)
                .map_err(|_| RouteError::Duplicate(route.label.clone()))?;
        }
        table.routes = routes;
        Ok(table)
    }

    /// The routes, in the order given.
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request and its index in [`RouteTable::routes`] (stable until the
    /// table is replaced); see [`RouteTable::lookup`].
    #[must_use]
    pub fn lookup_indexed(&self, host: Option<&str>, target_path: &str) -> Option<(u32, &Route)> {
        let end = target_path.find(['?', '#']).unwrap_or(target_path.len());
        let path = &target_path[..end];
        if !path.starts_with('/') {
            return None;
        }
        let mut buf = [0u8; host::MAX_HOST];
        let host = host.and_then(|h| host::normalize(h, &mut buf));
        let found = host
            .and_then(|h| {
                let exact = self.exact.get(h).and_then(|t| t.lookup(path));
                exact.or_else(|| {
                    host::wildcard_suffix(h)
                        .and_then(|s| self.wildcard.get(s))
                        .and_then(|t| t.lookup(path))
                })
            })
            .or_else(|| self.any.lookup(path))?;
        Some((found, self.routes.get(usize::try_from(found).ok()?)?))
    }

    /// The route for a request to `host` (a `Host` value or absolute-form authority, as
    /// received; `None` when the request named none) and `target_path` (query and fragment
    /// ignored). Allocates nothing.
    #[must_use]
    pub fn lookup(&self, host: Option<&str>, target_path: &str) -> Option<&Route> {
        self.lookup_indexed(host, target_path).map(|(_, r)| r)
    }

    /// Every distinct service routed to.
    #[must_use]
    pub fn services(&self) -> Vec<ServiceName> {
        let mut out: Vec<ServiceName> = Vec::new();
        for r in &self.routes {
            if !out.contains(&r.service) {
                out.push(r.service.clone());
            }
        }
        out
    }

    /// The table of the operator's routes ([`load_operator_routes`]) alone.
    ///
    /// # Errors
    /// As [`load_operator_routes`].
    pub fn load(flags: &[Route], file: Option<&Path>, tls: bool) -> Result<Self, RouteError> {
        Self::new(load_operator_routes(flags, file, tls)?)
    }

    /// The table of `operator` routes (flags and file, validated) and every app's published
    /// routes, by app name. An app's route whose host and prefix an operator's route (or an
    /// app earlier by name) holds is left out; so is an https-only app route when `tls` is
    /// false. Returns what was left out, for the log.
    ///
    /// # Errors
    /// [`RouteError::Duplicate`] when `operator` holds a host and prefix twice.
    pub fn compose(
        operator: &[Route],
        apps: &BTreeMap<AppName, Vec<RouteSpec>>,
        tls: bool,
    ) -> Result<(Self, Vec<Refused>), RouteError> {
        let mut routes = operator.to_vec();
        let mut held: HashMap<String, RouteSource> = operator
            .iter()
            .map(|r| (r.label.clone(), r.source.clone()))
            .collect();
        let mut refused = Vec::new();
        for (app, specs) in apps {
            let mut own = HashSet::new();
            for spec in specs {
                let route = Route::of_app(app, spec.clone());
                if !own.insert(route.label.clone()) {
                    continue;
                }
                if let Some(by) = held.get(&route.label) {
                    refused.push(Refused::Taken {
                        route: route.label,
                        app: app.clone(),
                        by: by.clone(),
                    });
                } else if route.https_only && !tls {
                    refused.push(Refused::HttpsOnlyWithoutTls {
                        route: route.label,
                        app: app.clone(),
                    });
                } else {
                    held.insert(route.label.clone(), route.source.clone());
                    routes.push(route);
                }
            }
        }
        Ok((Self::new(routes)?, refused))
    }
}

/// The route table as the admin listener's `/routes` serves it (and `skr8tr routes --ingress`
/// reads it): every route in force with its service and source, then the app routes left out.
/// `host` is `null` for any host, unset options `null`.
#[must_use]
pub fn table_json(table: &RouteTable, refused: &[Refused]) -> serde_json::Value {
    use serde_json::json;
    let routes: Vec<serde_json::Value> = table
        .routes()
        .iter()
        .map(|r| {
            json!({
                "host": r.host.as_ref().map(ToString::to_string),
                "prefix": r.prefix,
                "service": r.service.as_str(),
                "source": r.source.to_string(),
                "strip_prefix": r.strip_prefix,
                "max_body": r.max_body,
                "timeout_ms": r.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                "rate": r.rate.map(|l| json!({ "per_second": l.per_second, "burst": l.burst })),
                "https_only": r.https_only,
            })
        })
        .collect();
    let refused: Vec<serde_json::Value> = refused
        .iter()
        .map(|r| {
            let (route, app) = match r {
                Refused::Taken { route, app, .. } | Refused::HttpsOnlyWithoutTls { route, app } => {
                    (route, app)
                }
            };
            json!({ "route": route, "app": app.as_str(), "reason": r.to_string() })
        })
        .collect();
    json!({ "routes": routes, "refused": refused })
}

#[cfg(test)]
mod tests;

/// The routes-file property the cargo-fuzz target `routes_file` and a proptest check: any text
/// parses to routes or to an error at a position inside the text (never a panic); parsed routes
/// that build a table are each found again by their own host and prefix.
///
/// # Panics
/// When the property does not hold (that is the point).
#[cfg(any(test, feature = "fuzzing"))]
pub fn check_routes_file(text: &str) {
    match manifest::parse_routes("f", text) {
        Err(errors) => {
            let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
            assert!(!errors.errors.is_empty());
            for e in &errors.errors {
                assert!(
                    e.line >= 1 && e.line <= lines.max(1),
                    "{e} outside the text"
                );
                assert!(e.column >= 1, "{e}");
            }
        }
        Ok(routes) => {
            let routes = routes
                .into_iter()
                .map(|r| Route::new(r.route, r.service, RouteSource::File))
                .collect();
            let Ok(table) = RouteTable::new(routes) else {
                return;
            };
            for r in table.routes() {
                let host = match &r.host {
                    Some(RouteHost::Exact(h)) => Some(h.clone()),
                    Some(RouteHost::Wildcard(s)) => Some(format!("x.{s}")),
                    None => None,
                };
                let found = table.lookup(host.as_deref(), &r.prefix);
                assert!(found.is_some(), "{} not found by its own prefix", r.label);
            }
        }
    }
}
