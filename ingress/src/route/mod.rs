//! Host and path-prefix routing: which service a request goes to (SPEC §5 "Ingress", §7.1).
//!
//! ```text
//! --route [HOST]/PREFIX:SERVICE ─┐
//! --routes-file (file::parse) ───┴─▶ Vec<Route> ─RouteTable::new─▶ exact host ─▶ PathTrie
//!                                                                   *.suffix   ─▶ PathTrie
//!                                                                   any host   ─▶ PathTrie
//! ```
//!
//! Owns the route table and the matching rule: the request's host (absolute-form target, else
//! `Host`; see [`host::normalize`]) picks the exact host's routes, then the wildcard's, then the
//! host-less ones, falling through to the next when none of a group's prefixes matches the
//! path; within a group the longest prefix on a path-segment boundary wins ([`trie`]). A lookup
//! costs O(host + path length) whatever the number of routes and allocates nothing. With
//! `strip-prefix`, [`stripped_target`] gives the target sent upstream. Pure: no I/O except
//! [`RouteTable::load`] (reads the routes file).

pub mod file;
pub mod host;
pub mod trie;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use skr8tr_proto::name::ServiceName;

pub use host::HostPattern;
use trie::PathTrie;

/// One route: requests for `host` (any host when `None`) under `prefix` go to `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The host the route is for; `None`: any host.
    pub host: Option<HostPattern>,
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
    pub rate: Option<Rate>,
    /// `HOST/PREFIX` (or `PREFIX`): the route in logs and metrics.
    pub label: String,
}

/// A rate limit: `per_s` requests a second after a burst of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_s: u32,
    /// Most tokens held (at least 1).
    pub burst: u32,
}

/// Why a route (or a routes file) is refused.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Not `[HOST]/PREFIX:SERVICE`.
    #[error("expected [HOST]/PREFIX:SERVICE, got `{0}`")]
    Syntax(String),
    /// The prefix does not start with `/`, or holds a space, `?` or `#`.
    #[error("route prefix `{0}` must start with `/` and hold no space, `?` or `#`")]
    BadPrefix(String),
    /// The host is not a name, an IP literal or `*.` and a name.
    #[error("route host `{0}` must be a name, an IP literal or `*.` and a name, without a port")]
    BadHost(String),
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
    /// The routes file is wrong at a position.
    #[error(transparent)]
    File(#[from] file::RoutesFileError),
    /// The routes file cannot be read.
    #[error("cannot read the routes file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Route {
    /// A host-less route from a prefix and a service name, validated.
    ///
    /// # Errors
    /// [`RouteError::BadPrefix`] or [`RouteError::BadService`].
    pub fn new(prefix: &str, service: &str) -> Result<Self, RouteError> {
        Self::for_spec(prefix, service)
    }

    /// A route from `[HOST]/PREFIX` and a service name, validated.
    ///
    /// # Errors
    /// [`RouteError::BadHost`], [`RouteError::BadPrefix`] or [`RouteError::BadService`].
    pub fn for_spec(spec: &str, service: &str) -> Result<Self, RouteError> {
        let (host, prefix) = split_spec(spec)?;
        if !prefix.starts_with('/') || prefix.contains([' ', '\t', '?', '#']) {
            return Err(RouteError::BadPrefix(prefix.to_owned()));
        }
        let service = ServiceName::new(service.to_owned())
            .map_err(|_| RouteError::BadService(service.to_owned()))?;
        let label = match &host {
            Some(h) => format!("{h}{prefix}"),
            None => prefix.to_owned(),
        };
        Ok(Self {
            host,
            prefix: prefix.to_owned(),
            service,
            strip_prefix: false,
            https_only: false,
            timeout: None,
            max_body: None,
            rate: None,
            label,
        })
    }

    /// Parses the flag form `[HOST]/PREFIX:SERVICE` (split at the last `:`).
    ///
    /// # Errors
    /// As [`Route::for_spec`], or [`RouteError::Syntax`] without a `:`.
    pub fn parse_flag(spec: &str) -> Result<Self, RouteError> {
        let (prefix, service) = spec
            .rsplit_once(':')
            .ok_or_else(|| RouteError::Syntax(spec.to_owned()))?;
        Self::for_spec(prefix, service)
    }
}

/// `[HOST]/PREFIX` → the host pattern (if any) and the prefix.
fn split_spec(spec: &str) -> Result<(Option<HostPattern>, &str), RouteError> {
    if spec.starts_with('/') || spec.is_empty() {
        return Ok((None, spec));
    }
    let slash = spec
        .find('/')
        .ok_or_else(|| RouteError::BadPrefix(spec.to_owned()))?;
    Ok((Some(HostPattern::parse(&spec[..slash])?), &spec[slash..]))
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
                Some(HostPattern::Exact(h)) => {
                    table.exact.entry(Box::from(h.as_str())).or_default()
                }
                Some(HostPattern::Wildcard(s)) => {
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

    /// The table from `flags` plus the routes file at `file`, if any (file routes win on the
    /// same host and prefix). With `tls == false`, a route that is https-only is refused.
    ///
    /// # Errors
    /// A bad file (unreadable or wrong), duplicates within one source, or
    /// [`RouteError::HttpsOnlyWithoutTls`].
    pub fn load(flags: &[Route], file: Option<&Path>, tls: bool) -> Result<Self, RouteError> {
        let mut routes = flags.to_vec();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| RouteError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let from_file = file::parse(&path.display().to_string(), &text)?;
            Self::new(from_file.clone())?;
            routes.retain(|r| {
                !from_file
                    .iter()
                    .any(|f| f.prefix == r.prefix && f.host == r.host)
            });
            routes.extend(from_file);
        }
        if !tls && let Some(r) = routes.iter().find(|r| r.https_only) {
            return Err(RouteError::HttpsOnlyWithoutTls(r.label.clone()));
        }
        Self::new(routes)
    }
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
    match file::parse("f", text) {
        Err(e) => {
            let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX);
            assert!(
                e.line >= 1 && e.line <= lines.max(1),
                "{e} outside the text"
            );
            assert!(e.col >= 1, "{e}");
        }
        Ok(routes) => {
            let Ok(table) = RouteTable::new(routes) else {
                return;
            };
            for r in table.routes() {
                let host = match &r.host {
                    Some(HostPattern::Exact(h)) => Some(h.clone()),
                    Some(HostPattern::Wildcard(s)) => Some(format!("x.{s}")),
                    None => None,
                };
                let found = table.lookup(host.as_deref(), &r.prefix);
                assert!(found.is_some(), "{} not found by its own prefix", r.label);
            }
        }
    }
}
