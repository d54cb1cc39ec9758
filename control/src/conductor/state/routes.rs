//! The Conductor's decisions about edge routes (SPEC §7.1): which app may claim a route, and
//! the route sets to publish to the Tower. Pure reads of the [`State`]; the daemon
//! (`conductor::server`) sends what these return.
//!
//! A route is claimed by its target, `[HOST]/PREFIX` with the host lower-cased: two apps may
//! not hold the same one, whatever their options. An app may always re-claim its own routes
//! (an unchanged SUBMIT, a ROLLOUT that keeps them).

use std::collections::BTreeMap;

use skr8tr_proto::manifest::App;
use skr8tr_proto::name::AppName;
use skr8tr_proto::route::RouteSpec;

use super::State;

/// A route a SUBMIT or ROLLOUT claims that another app holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target} held by {holder}")]
pub struct RouteTaken {
    /// `[HOST]/PREFIX`.
    pub target: String,
    /// The app holding it: one already running, or an earlier app of the same manifest.
    pub holder: AppName,
}

impl State {
    /// The first route of `apps` (in manifest order) that another app holds, if any: an app
    /// already known under another name, or an earlier app of the same submission.
    #[must_use]
    pub fn route_conflict(&self, apps: &[App]) -> Option<RouteTaken> {
        let mut held: BTreeMap<String, &AppName> = BTreeMap::new();
        for (name, record) in &self.apps {
            if apps.iter().any(|a| a.name == *name) {
                // Resubmitted: its old routes are replaced by the new spec's.
                continue;
            }
            for route in &record.spec.routes {
                held.insert(route.target(), name);
            }
        }
        for app in apps {
            for route in &app.routes {
                let target = route.target();
                if let Some(holder) = held.get(&target).filter(|h| ***h != app.name) {
                    return Some(RouteTaken {
                        target,
                        holder: (*holder).clone(),
                    });
                }
            }
            for route in &app.routes {
                held.insert(route.target(), &app.name);
            }
        }
        None
    }

    /// Every known app with its current route set (empty for an app without routes, so a
    /// publish also withdraws routes a new spec dropped), by name.
    #[must_use]
    pub fn route_sets(&self) -> Vec<(AppName, Vec<RouteSpec>)> {
        self.apps
            .iter()
            .map(|(name, record)| (name.clone(), record.spec.routes.clone()))
            .collect()
    }

    /// The route set of `app` to publish: its routes, or none when it is not known (evicted).
    #[must_use]
    pub fn route_set(&self, app: &AppName) -> Vec<RouteSpec> {
        self.apps
            .get(app)
            .map(|r| r.spec.routes.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use skr8tr_proto::route::{RouteHost, parse_target};

    use super::super::super::store::Loaded;
    use super::super::Timings;
    use super::*;

    fn app(name: &str, targets: &[&str]) -> App {
        let mut a = App::with_defaults(AppName::new(name).unwrap(), Some("/bin/true".into()));
        a.routes = targets
            .iter()
            .map(|t| {
                let (host, prefix) = parse_target(t).unwrap();
                RouteSpec::new(host, prefix)
            })
            .collect();
        a
    }

    fn state_with(apps: Vec<App>) -> State {
        let mut s = State::new(Loaded::default(), Timings::default(), Instant::now());
        s.submit(apps, 0).unwrap();
        s
    }

    fn taken(target: &str, holder: &str) -> Option<RouteTaken> {
        Some(RouteTaken {
            target: target.into(),
            holder: AppName::new(holder).unwrap(),
        })
    }

    #[test]
    fn conflicts() {
        let running = || {
            state_with(vec![
                app("api", &["api.example.com/api", "/health"]),
                app("web", &["*.example.com/"]),
            ])
        };
        let cases: Vec<(Vec<App>, Option<RouteTaken>)> = vec![
            // Nothing shared.
            (vec![app("new", &["api.example.com/v2", "/"])], None),
            (vec![app("new", &[])], None),
            // Exactly the same target, whatever the case of the host.
            (
                vec![app("new", &["API.example.com/api"])],
                taken("api.example.com/api", "api"),
            ),
            (vec![app("new", &["/health"])], taken("/health", "api")),
            (
                vec![app("new", &["*.example.com/"])],
                taken("*.example.com/", "web"),
            ),
            // Same prefix on another host, or another host form: not the same route.
            (vec![app("new", &["other.com/api", "/api"])], None),
            (vec![app("new", &["x.example.com/"])], None),
            (vec![app("new", &["/api/"])], None),
            // An app re-claims its own routes, and may hand one to another app it changes
            // in the same submission.
            (vec![app("api", &["api.example.com/api"])], None),
            (
                vec![
                    app("api", &["api.example.com/v1"]),
                    app("web", &["api.example.com/api"]),
                ],
                None,
            ),
            // Two apps of one manifest: the later one is refused, naming the earlier.
            (
                vec![app("a", &["/x"]), app("b", &["/y", "/x"])],
                taken("/x", "a"),
            ),
            // The first conflict in manifest order is the one reported.
            (
                vec![app("new", &["/ok", "/health", "*.example.com/"])],
                taken("/health", "api"),
            ),
        ];
        for (apps, want) in cases {
            let names: Vec<_> = apps.iter().map(|a| a.name.to_string()).collect();
            assert_eq!(running().route_conflict(&apps), want, "{names:?}");
        }
    }

    #[test]
    fn route_sets_follow_the_apps() {
        let mut s = state_with(vec![app("api", &["api.example.com/api"]), app("b", &[])]);
        let api = AppName::new("api").unwrap();
        assert_eq!(
            s.route_sets(),
            vec![
                (
                    api.clone(),
                    vec![RouteSpec::new(
                        Some(RouteHost::Exact("api.example.com".into())),
                        "/api"
                    )]
                ),
                (AppName::new("b").unwrap(), vec![]),
            ]
        );
        s.evict(&api).unwrap();
        assert_eq!(s.route_set(&api), vec![]);
        assert_eq!(s.route_sets().len(), 1);
    }

    #[test]
    fn the_error_names_the_holder() {
        let t = taken("api.example.com/api", "api").unwrap();
        assert_eq!(t.to_string(), "api.example.com/api held by api");
    }
}
