//! Path-prefix routing: which service a request path goes to (SPEC §5 "Ingress").
//!
//! Owns the route table (from `--route PREFIX:SERVICE` flags and the `--routes-file`) and the
//! matching rule: the longest prefix wins, and a prefix matches only on a path-segment
//! boundary (`/api` matches `/api`, `/api/`, `/api/x`, `/api?x=1`, never `/apiary`). The
//! path is never rewritten. Pure: no I/O except [`RouteTable::load`] (reads the routes file).

use std::path::Path;
use std::sync::Arc;

use skr8tr_proto::name::ServiceName;

/// One route: requests under `prefix` go to `service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Starts with `/`.
    pub prefix: String,
    /// The Tower service name.
    pub service: ServiceName,
}

/// Why a route (or a routes file) is refused.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// Not `PREFIX:SERVICE` / `PREFIX SERVICE`.
    #[error("expected PREFIX:SERVICE, got `{0}`")]
    Syntax(String),
    /// The prefix does not start with `/`, or holds a space, `?` or `#`.
    #[error("route prefix `{0}` must start with `/` and hold no space, `?` or `#`")]
    BadPrefix(String),
    /// The service is not a valid name.
    #[error("invalid service name `{0}`")]
    BadService(String),
    /// Two routes with the same prefix.
    #[error("prefix `{0}` routed twice")]
    Duplicate(String),
    /// An error on a line of the routes file.
    #[error("line {line}: {source}")]
    AtLine {
        line: usize,
        #[source]
        source: Box<RouteError>,
    },
    /// The routes file cannot be read.
    #[error("cannot read the routes file")]
    Read(#[source] std::io::Error),
}

impl Route {
    /// A route from a prefix and a service name, validated.
    ///
    /// # Errors
    /// [`RouteError::BadPrefix`] or [`RouteError::BadService`].
    pub fn new(prefix: &str, service: &str) -> Result<Self, RouteError> {
        if !prefix.starts_with('/') || prefix.contains([' ', '\t', '?', '#']) {
            return Err(RouteError::BadPrefix(prefix.to_owned()));
        }
        let service = ServiceName::new(service.to_owned())
            .map_err(|_| RouteError::BadService(service.to_owned()))?;
        Ok(Self {
            prefix: prefix.to_owned(),
            service,
        })
    }

    /// Parses the flag form `PREFIX:SERVICE` (split at the last `:`).
    ///
    /// # Errors
    /// As [`Route::new`], or [`RouteError::Syntax`] without a `:`.
    pub fn parse_flag(spec: &str) -> Result<Self, RouteError> {
        let (prefix, service) = spec
            .rsplit_once(':')
            .ok_or_else(|| RouteError::Syntax(spec.to_owned()))?;
        Self::new(prefix, service)
    }

    /// Whether `path` (without query) is under this route's prefix.
    fn matches(&self, path: &str) -> bool {
        let p = self.prefix.as_str();
        path.starts_with(p)
            && (p.ends_with('/') || path.len() == p.len() || path.as_bytes()[p.len()] == b'/')
    }
}

/// Routes, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// A shared, immutable route table.
pub type SharedRoutes = Arc<RouteTable>;

impl RouteTable {
    /// A table of `routes`.
    ///
    /// # Errors
    /// [`RouteError::Duplicate`] when two routes share a prefix.
    pub fn new(mut routes: Vec<Route>) -> Result<Self, RouteError> {
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(a.prefix.cmp(&b.prefix))
        });
        if let Some(w) = routes.windows(2).find(|w| w[0].prefix == w[1].prefix) {
            return Err(RouteError::Duplicate(w[0].prefix.clone()));
        }
        Ok(Self { routes })
    }

    /// The routes, longest prefix first.
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request path (query and fragment ignored), and its index.
    #[must_use]
    pub fn lookup(&self, target_path: &str) -> Option<(usize, &Route)> {
        let end = target_path.find(['?', '#']).unwrap_or(target_path.len());
        let path = &target_path[..end];
        self.routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(path))
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

    /// Parses a routes file: one `PREFIX SERVICE` (or `PREFIX:SERVICE`) per line, `#` comments,
    /// blank lines ignored.
    ///
    /// # Errors
    /// The first bad line, as [`RouteError::AtLine`].
    pub fn parse_file(text: &str) -> Result<Vec<Route>, RouteError> {
        let mut routes = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = |source| RouteError::AtLine {
                line: i + 1,
                source: Box::new(source),
            };
            let mut words = line.split_whitespace();
            let route = match (words.next(), words.next(), words.next()) {
                (Some(prefix), Some(service), None) => Route::new(prefix, service),
                (Some(spec), None, None) => Route::parse_flag(spec),
                _ => Err(RouteError::Syntax(line.to_owned())),
            }
            .map_err(at)?;
            routes.push(route);
        }
        Ok(routes)
    }

    /// The table from `flags` plus the routes file at `file`, if any (file routes win on the
    /// same prefix).
    ///
    /// # Errors
    /// A bad file (unreadable or with a bad line) or duplicate prefixes within one source.
    pub fn load(flags: &[Route], file: Option<&Path>) -> Result<Self, RouteError> {
        let mut routes = flags.to_vec();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(RouteError::Read)?;
            let from_file = Self::parse_file(&text)?;
            Self::new(from_file.clone())?;
            routes.retain(|r| !from_file.iter().any(|f| f.prefix == r.prefix));
            routes.extend(from_file);
        }
        Self::new(routes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(specs: &[&str]) -> RouteTable {
        RouteTable::new(
            specs
                .iter()
                .map(|s| Route::parse_flag(s).unwrap())
                .collect(),
        )
        .unwrap()
    }

    fn service<'a>(t: &'a RouteTable, path: &str) -> Option<&'a str> {
        t.lookup(path).map(|(_, r)| r.service.as_str())
    }

    #[test]
    fn seed_routes() {
        let t = table(&["/api:api-service", "/:frontend"]);
        for p in [
            "/api",
            "/api/",
            "/api/x",
            "/api?x=1",
            "/api/x/y?z#f",
            "/api#frag",
        ] {
            assert_eq!(service(&t, p), Some("api-service"), "{p}");
        }
        for p in ["/apiary", "/", "/x", "/ap", "/API", "/apix/y"] {
            assert_eq!(service(&t, p), Some("frontend"), "{p}");
        }
    }

    #[test]
    fn longest_prefix_wins_whatever_the_order() {
        let t = table(&["/a:one", "/a/b/c:three", "/a/b:two"]);
        assert_eq!(service(&t, "/a/b/c/d"), Some("three"));
        assert_eq!(service(&t, "/a/b/cd"), Some("two"));
        assert_eq!(service(&t, "/a/bc"), Some("one"));
        assert_eq!(service(&t, "/b"), None);
    }

    #[test]
    fn trailing_slash_prefix_needs_the_slash() {
        let t = table(&["/static/:files"]);
        assert_eq!(service(&t, "/static/x.css"), Some("files"));
        assert_eq!(service(&t, "/static/"), Some("files"));
        assert_eq!(service(&t, "/static"), None);
    }

    #[test]
    fn bad_routes_are_refused() {
        assert!(matches!(
            Route::parse_flag("api"),
            Err(RouteError::Syntax(_))
        ));
        assert!(matches!(
            Route::parse_flag("api:svc"),
            Err(RouteError::BadPrefix(_))
        ));
        assert!(matches!(
            Route::parse_flag("/a:bad name"),
            Err(RouteError::BadService(_))
        ));
        assert!(matches!(
            Route::parse_flag("/a:"),
            Err(RouteError::BadService(_))
        ));
        let dup = RouteTable::new(vec![
            Route::parse_flag("/a:x").unwrap(),
            Route::parse_flag("/a:y").unwrap(),
        ]);
        assert!(matches!(dup, Err(RouteError::Duplicate(_))));
    }

    #[test]
    fn routes_file() {
        let text = "# edge routes\n/api api-service  # the API\n\n/:frontend\n";
        let routes = RouteTable::parse_file(text).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].prefix, "/api");
        let err = RouteTable::parse_file("/a b\nnope\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
        assert!(RouteTable::parse_file("/a b c\n").is_err());
    }

    #[test]
    fn services_are_distinct() {
        let t = table(&["/a:x", "/b:x", "/:y"]);
        let names: Vec<_> = t.services().iter().map(|s| s.as_str().to_owned()).collect();
        assert_eq!(names.len(), 2);
    }
}
