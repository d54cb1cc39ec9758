//! `skr8tr routes`: a live route table with each route's source (SPEC §7.1), as an aligned
//! table or `--json`. Two tables exist: the routes apps publish, which the Tower holds for every
//! ingress, and one ingress's table in force, which adds the routes it has from `--route` and
//! its routes file and says which app routes it leaves out.
//!
//! ```text
//! skr8tr routes                 ROUTES (unsigned) ─▶ Tower ─▶ OK|ROUTES ─▶ rows
//! skr8tr routes --ingress ADDR  GET /routes ─▶ that ingress's admin listener ─▶ JSON ─▶ rows
//! HOST             PREFIX  SERVICE  SOURCE   OPTIONS
//! api.example.com  /api    api      app:api  strip-prefix, max-body 10mb, timeout 30s
//! ```
//! The functions from a reply to rows, table and JSON are pure and tested here; `run` is the
//! thin network call.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};
use skr8tr_proto::route::{self, RateLimit, RouteOptions, RouteSpec};
use skr8tr_proto::wire::{PublishedRoute, TowerReply, TowerRequest};

use super::global::GlobalArgs;
use super::output::{emit, success};
use super::remote::{Endpoint, unexpected};
use super::table::Table;

/// The ingress admin listener's default port.
pub const INGRESS_ADMIN_PORT: u16 = 9180;

/// One route of a table, whichever table it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub route: RouteSpec,
    pub service: String,
    /// `flag`, `file` or `app:<name>`.
    pub source: String,
}

/// The rows of the Tower's `OK|ROUTES`: each app is its routes' service.
#[must_use]
pub fn rows_of_tower(entries: &[PublishedRoute]) -> Vec<Row> {
    entries
        .iter()
        .map(|e| Row {
            route: e.route.clone(),
            service: e.app.as_str().to_owned(),
            source: format!("app:{}", e.app),
        })
        .collect()
}

/// The rows and the refused app routes (one line each) of an ingress's `/routes` JSON.
///
/// # Errors
/// The JSON is not what an ingress serves.
pub fn rows_of_ingress(v: &Value) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let bad = |what: &str| anyhow::anyhow!("the ingress's /routes has {what}");
    let mut rows = Vec::new();
    for r in v["routes"]
        .as_array()
        .ok_or_else(|| bad("no `routes` list"))?
    {
        let text = |k: &str| {
            r[k].as_str()
                .ok_or_else(|| bad(&format!("a route without `{k}`")))
        };
        let target = match r["host"].as_str() {
            Some(host) => format!("{host}{}", text("prefix")?),
            None => text("prefix")?.to_owned(),
        };
        let (host, prefix) = route::parse_target(&target)
            .map_err(|e| bad(&format!("a bad route `{target}` ({e})")))?;
        let timeout = r["timeout_ms"].as_u64().map(Duration::from_millis);
        let rate = match (
            r["rate"]["per_second"].as_u64(),
            r["rate"]["burst"].as_u64(),
        ) {
            (Some(per_second), Some(burst)) => Some(RateLimit {
                per_second: u32::try_from(per_second).map_err(|_| bad("a bad rate"))?,
                burst: u32::try_from(burst).map_err(|_| bad("a bad burst"))?,
            }),
            _ => None,
        };
        rows.push(Row {
            route: RouteSpec {
                host,
                prefix,
                options: RouteOptions {
                    strip_prefix: r["strip_prefix"].as_bool().unwrap_or(false),
                    max_body: r["max_body"].as_u64(),
                    timeout,
                    rate,
                    https_only: r["https_only"].as_bool().unwrap_or(false),
                },
            },
            service: text("service")?.to_owned(),
            source: text("source")?.to_owned(),
        });
    }
    let refused = v["refused"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|r| {
                    r.as_str()
                        .or_else(|| r["reason"].as_str())
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((rows, refused))
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
pub fn routes_table(rows: &[Row]) -> Table {
    let mut t = Table::new(["HOST", "PREFIX", "SERVICE", "SOURCE", "OPTIONS"]);
    for r in rows {
        let host = r
            .route
            .host
            .as_ref()
            .map_or_else(|| "*any*".to_owned(), ToString::to_string);
        t.row([
            host,
            r.route.prefix.clone(),
            r.service.clone(),
            r.source.clone(),
            options(&r.route),
        ]);
    }
    t
}

/// The JSON of `skr8tr routes --json`: `host` is `null` for any host, unset options `null`;
/// `refused` lists the app routes an ingress leaves out (empty for the Tower's table).
#[must_use]
pub fn routes_json(rows: &[Row], refused: &[String]) -> Value {
    let routes: Vec<Value> = rows
        .iter()
        .map(|r| {
            let o = &r.route.options;
            json!({
                "host": r.route.host.as_ref().map(ToString::to_string),
                "prefix": r.route.prefix,
                "service": r.service,
                "source": r.source,
                "strip_prefix": o.strip_prefix,
                "max_body": o.max_body,
                "timeout_ms": o.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                "rate": o.rate.map(|r| json!({ "per_second": r.per_second, "burst": r.burst })),
                "https_only": o.https_only,
            })
        })
        .collect();
    success("routes", json!({ "routes": routes, "refused": refused }))
}

/// `GET /routes` on an ingress's admin listener: its JSON body.
fn ingress_routes(addr: SocketAddr, timeout: Duration) -> anyhow::Result<Value> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot reach the ingress admin listener at {addr}"))?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET /routes HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    s.take(16 << 20).read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("{addr} answered no HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default();
        anyhow::bail!("{addr} answered `{status}` to GET /routes (is it an ingress's --admin?)");
    }
    serde_json::from_str(body).with_context(|| format!("{addr} sent no JSON route table"))
}

/// `skr8tr routes [--ingress ADDR]`.
///
/// # Errors
/// The Tower (or the ingress) refused or did not answer; bad flags; stdout gone.
pub fn run(global: &GlobalArgs, ingress: Option<&str>) -> anyhow::Result<ExitCode> {
    let (rows, refused) = match ingress {
        Some(addr) => {
            let addr = super::global::resolve(addr, INGRESS_ADMIN_PORT).context("--ingress")?;
            rows_of_ingress(&ingress_routes(addr, global.timeout())?)?
        }
        None => {
            let tower = Endpoint::tower(global)?;
            match tower.ask_tower(&TowerRequest::Routes)? {
                TowerReply::Routes(entries) => (rows_of_tower(&entries), Vec::new()),
                other => return Err(unexpected("tower", "ROUTES", &other).into()),
            }
        }
    };
    emit(
        global.json,
        || {
            let mut text = routes_table(&rows).render();
            for r in &refused {
                text.push_str(&format!("not served: {r}\n"));
            }
            text
        },
        || routes_json(&rows, &refused),
    )?;
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
            routes_table(&rows_of_tower(&entries())).render(),
            "HOST             PREFIX   SERVICE  SOURCE   OPTIONS\n\
             api.example.com  /api     api      app:api  strip-prefix, max-body 10mb, timeout 1500ms, rate 100/s burst 200, https-only\n\
             *.example.com    /        web      app:web  -\n\
             *any*            /health  api      app:api  -\n"
        );
        assert_eq!(
            routes_table(&[]).render(),
            "HOST  PREFIX  SERVICE  SOURCE  OPTIONS\n"
        );
    }

    #[test]
    fn an_ingress_table_reads_back_to_the_same_rows() {
        let rows = rows_of_tower(&entries());
        let mut flag = rows[2].clone();
        flag.source = "flag".into();
        flag.service = "frontend".into();
        let rows = vec![rows[0].clone(), rows[1].clone(), flag];
        let refused = vec!["route `/` of app `web` is held by flag; flag wins".to_owned()];
        let v = routes_json(&rows, &refused);
        assert_eq!(rows_of_ingress(&v).unwrap(), (rows, refused));
        for bad in [
            json!({}),
            json!({"routes": [{"prefix": "/"}]}),
            json!({"routes": [{"prefix": "nope", "service": "a", "source": "flag"}]}),
        ] {
            assert!(rows_of_ingress(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json() {
        let v = routes_json(&rows_of_tower(&entries()), &[]);
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
        assert_eq!(v["routes"][2]["service"], "api");
        assert_eq!(v["refused"], json!([]));
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
