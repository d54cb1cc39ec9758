//! `skr8tr routes`: the live table of routes apps publish to the Tower (SPEC §7.1), with each
//! route's source, as an aligned table or `--json`.
//!
//! ```text
//! ROUTES (unsigned) ─▶ Tower ─▶ OK|ROUTES ─▶ table / JSON
//! HOST             PREFIX  SOURCE   OPTIONS
//! api.example.com  /api    app:api  strip-prefix, max-body 10mb, timeout 30s
//! ```
//! Only published routes are in the Tower: routes an ingress has from `--route` or its routes
//! file are its own and show in its own logs and metrics, not here. The functions from the
//! reply to table and JSON are pure and tested here; `run` is the thin network call.

use std::process::ExitCode;

use serde_json::{Value, json};
use skr8tr_proto::route::RouteSpec;
use skr8tr_proto::wire::{PublishedRoute, TowerReply, TowerRequest};

use super::global::GlobalArgs;
use super::output::{emit, success};
use super::remote::{Endpoint, unexpected};
use super::table::Table;

/// Where a route in the table comes from: `app:<name>` for a published one.
fn source(entry: &PublishedRoute) -> String {
    format!("app:{}", entry.app)
}

/// `10mb`, `512kb`, `1500b`: the largest unit that divides the size exactly.
fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "tb"),
        (1 << 30, "gb"),
        (1 << 20, "mb"),
        (1 << 10, "kb"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || format!("{bytes}b"),
            |(unit, name)| format!("{}{name}", bytes / unit),
        )
}

/// A route's options as the manifest writes them, `-` when it has none.
fn options(route: &RouteSpec) -> String {
    let o = &route.options;
    let mut parts = Vec::new();
    if o.strip_prefix {
        parts.push("strip-prefix".to_owned());
    }
    if let Some(bytes) = o.max_body {
        parts.push(format!("max-body {}", size(bytes)));
    }
    if let Some(t) = o.timeout {
        let ms = t.as_millis();
        parts.push(if ms.is_multiple_of(1000) {
            format!("timeout {}s", ms / 1000)
        } else {
            format!("timeout {ms}ms")
        });
    }
    if let Some(r) = o.rate {
        parts.push(format!("rate {}/s burst {}", r.per_second, r.burst));
    }
    if o.https_only {
        parts.push("https-only".to_owned());
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The table of `skr8tr routes`; a route for any host shows `*any*`.
#[must_use]
pub fn routes_table(entries: &[PublishedRoute]) -> Table {
    let mut t = Table::new(["HOST", "PREFIX", "SOURCE", "OPTIONS"]);
    for e in entries {
        let host = e
            .route
            .host
            .as_ref()
            .map_or_else(|| "*any*".to_owned(), ToString::to_string);
        t.row([host, e.route.prefix.clone(), source(e), options(&e.route)]);
    }
    t
}

/// The JSON of `skr8tr routes --json`: `host` is `null` for any host, unset options `null`.
#[must_use]
pub fn routes_json(entries: &[PublishedRoute]) -> Value {
    let routes: Vec<Value> = entries
        .iter()
        .map(|e| {
            let o = &e.route.options;
            json!({
                "host": e.route.host.as_ref().map(ToString::to_string),
                "prefix": e.route.prefix,
                "source": source(e),
                "app": e.app.as_str(),
                "strip_prefix": o.strip_prefix,
                "max_body": o.max_body,
                "timeout_ms": o.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                "rate": o.rate.map(|r| json!({ "per_second": r.per_second, "burst": r.burst })),
                "https_only": o.https_only,
            })
        })
        .collect();
    success("routes", json!({ "routes": routes }))
}

/// `skr8tr routes`.
///
/// # Errors
/// The Tower refused or did not answer; bad flags; stdout gone.
pub fn run(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let tower = Endpoint::tower(global)?;
    match tower.ask_tower(&TowerRequest::Routes)? {
        TowerReply::Routes(entries) => emit(
            global.json,
            || routes_table(&entries).render(),
            || routes_json(&entries),
        )?,
        other => return Err(unexpected("tower", "ROUTES", &other).into()),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use skr8tr_proto::name::AppName;
    use skr8tr_proto::route::{RateLimit, RouteHost, RouteOptions};

    use super::*;

    fn entries() -> Vec<PublishedRoute> {
        let api = AppName::new("api").unwrap();
        let full = RouteSpec {
            host: Some(RouteHost::Exact("api.example.com".into())),
            prefix: "/api".into(),
            options: RouteOptions {
                strip_prefix: true,
                max_body: Some(10 << 20),
                timeout: Some(Duration::from_millis(1500)),
                rate: Some(RateLimit {
                    per_second: 100,
                    burst: 200,
                }),
                https_only: true,
            },
        };
        vec![
            PublishedRoute {
                app: api.clone(),
                route: full,
            },
            PublishedRoute {
                app: AppName::new("web").unwrap(),
                route: RouteSpec::new(Some(RouteHost::Wildcard("example.com".into())), "/"),
            },
            PublishedRoute {
                app: api,
                route: RouteSpec::new(None, "/health"),
            },
        ]
    }

    #[test]
    fn table() {
        assert_eq!(
            routes_table(&entries()).render(),
            "HOST             PREFIX   SOURCE   OPTIONS\n\
             api.example.com  /api     app:api  strip-prefix, max-body 10mb, timeout 1500ms, rate 100/s burst 200, https-only\n\
             *.example.com    /        app:web  -\n\
             *any*            /health  app:api  -\n"
        );
        assert_eq!(
            routes_table(&[]).render(),
            "HOST  PREFIX  SOURCE  OPTIONS\n"
        );
    }

    #[test]
    fn json() {
        let v = routes_json(&entries());
        assert_eq!(v["command"], "routes");
        assert_eq!(v["routes"][0]["host"], "api.example.com");
        assert_eq!(v["routes"][0]["source"], "app:api");
        assert_eq!(v["routes"][0]["max_body"], 10 << 20);
        assert_eq!(v["routes"][0]["timeout_ms"], 1500);
        assert_eq!(v["routes"][0]["rate"]["burst"], 200);
        assert_eq!(v["routes"][1]["host"], "*.example.com");
        assert_eq!(v["routes"][1]["rate"], Value::Null);
        assert_eq!(v["routes"][2]["host"], Value::Null);
        assert_eq!(v["routes"][2]["strip_prefix"], false);
    }

    #[test]
    fn sizes() {
        for (bytes, text) in [
            (1, "1b"),
            (1536, "1536b"),
            (2048, "2kb"),
            (10 << 20, "10mb"),
            (1 << 40, "1tb"),
        ] {
            assert_eq!(size(bytes), text);
        }
    }
}
