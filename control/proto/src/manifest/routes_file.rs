//! [`RawManifest`] → routes: an edge's routes file (SPEC §7.1), in the manifest language.
//!
//! ```text
//! route api.example.com/api {      # a block (braces or indentation), keys as in an app's route
//!   service api-service            #   plus `service`, or the service after the target
//!   strip-prefix
//! }
//! route /  frontend                # one-line form
//! /legacy legacy-service           # the first format, kept: /PREFIX SERVICE or /PREFIX:SERVICE
//! ```
//! A route's keys go in braces, or on the lines after a `route` line that has none: as with
//! `app NAME`, the keys that follow belong to the route above them (indenting them is the
//! readable way to write it). Owns the file level: which statements a routes file holds, and
//! that no host + prefix is given twice. A route's own keys are read by `blocks::route`, the same reader an app's
//! `route` key uses, so both read and check alike. Every error of the file is reported, in
//! source order; a file with no route is valid (an edge with no operator routes).

use std::collections::HashMap;

use super::blocks::{self, RouteIn};
use super::error::{ManifestErrorKind, ManifestErrors};
use super::lexer;
use super::suggest;
use super::syntax::{self, Block, RawManifest, Stmt};
use super::values::{BLOCK_KEYS, Checker};
use crate::route::ServiceRoute;

/// See [`super::parse_routes`].
pub(super) fn parse(file: &str, text: &str) -> Result<Vec<ServiceRoute>, ManifestErrors> {
    let mut errors = Vec::new();
    let lexed = lexer::lex(text, &mut errors);
    let raw = syntax::build(&lexed, &mut errors);
    let routes = validate(
        raw,
        &mut Checker {
            errors: &mut errors,
        },
    );
    if errors.is_empty() {
        return Ok(routes);
    }
    Err(ManifestErrors::of_file(file, errors))
}

/// The keys of a route block.
fn route_keys() -> &'static [&'static str] {
    BLOCK_KEYS
        .iter()
        .find(|(name, _)| *name == "route")
        .map_or(&[], |&(_, keys)| keys)
}

/// The top-level statements with the keys that follow a block-less `route` line moved into
/// its block. A route key with no such `route` above it stays where it is (and is reported).
fn group(stmts: Vec<Stmt>) -> Vec<Stmt> {
    let keys = route_keys();
    let mut out: Vec<Stmt> = Vec::new();
    // Whether the last statement is a `route` that takes the keys that follow.
    let mut open = false;
    for stmt in stmts {
        if open && keys.contains(&stmt.key.text.as_str()) {
            if let Some(route) = out.last_mut() {
                let block = route.block.get_or_insert_with(|| Block {
                    line: stmt.key.line,
                    col: stmt.key.col,
                    stmts: Vec::new(),
                });
                block.stmts.push(stmt);
            }
            continue;
        }
        open = stmt.key.text == "route" && stmt.block.is_none();
        out.push(stmt);
    }
    out
}

fn validate(raw: RawManifest, c: &mut Checker<'_>) -> Vec<ServiceRoute> {
    let mut routes = Vec::new();
    let mut first_lines: HashMap<String, u32> = HashMap::new();
    for stmt in &group(raw.stmts) {
        if stmt.broken {
            continue;
        }
        let route = if stmt.key.text == "route" {
            blocks::route(stmt, RouteIn::File, c).and_then(|r| {
                Some(ServiceRoute {
                    route: r.spec,
                    service: r.service?,
                })
            })
        } else if stmt.key.text.starts_with('/') {
            blocks::bare_route(stmt, c)
        } else if route_keys().contains(&stmt.key.text.as_str()) {
            let kind = ManifestErrorKind::KeyOutsideBlock {
                key: stmt.key.text.clone(),
                block: "route".to_owned(),
            };
            c.at(&stmt.key, kind);
            None
        } else {
            let kind = ManifestErrorKind::NotARoute {
                key: stmt.key.text.clone(),
                suggestion: suggest::nearest(&stmt.key.text, &["route"]).map(str::to_owned),
            };
            c.at(&stmt.key, kind);
            None
        };
        let Some(route) = route else { continue };
        let target = route.route.target();
        if let Some(&first_line) = first_lines.get(&target) {
            let at = stmt.values.first().unwrap_or(&stmt.key);
            c.at(at, ManifestErrorKind::DuplicateRoute { target, first_line });
            continue;
        }
        first_lines.insert(target, stmt.key.line);
        routes.push(route);
    }
    routes
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::parse_routes;
    use crate::route::{RateLimit, RouteHost};

    #[test]
    fn every_form_reads() {
        let text = "\
# edge routes
route api.example.com/api {
  service api-service
  strip-prefix          # /api/users -> /users
}
route /  frontend       # one-line form
route *.example.com/app { service app; strip-prefix }
route /docs
{
  service docs
}
route /ind
  service indented
  strip-prefix
  timeout 1500ms
  max-body 10MB
  rate 100/s burst 200
  https-only
route \"[::1]/v6\" local
/legacy legacy-service
/old:old-service
";
        let routes = parse_routes("edge.routes", text).unwrap();
        let got: Vec<_> = routes
            .iter()
            .map(|r| {
                (
                    r.route.target(),
                    r.service.as_str(),
                    r.route.options.strip_prefix,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("api.example.com/api".into(), "api-service", true),
                ("/".into(), "frontend", false),
                ("*.example.com/app".into(), "app", true),
                ("/docs".into(), "docs", false),
                ("/ind".into(), "indented", true),
                ("[::1]/v6".into(), "local", false),
                ("/legacy".into(), "legacy-service", false),
                ("/old".into(), "old-service", false),
            ]
        );
        let ind = &routes[4].route.options;
        assert_eq!(ind.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(ind.max_body, Some(10 << 20));
        assert_eq!(
            ind.rate,
            Some(RateLimit {
                per_second: 100,
                burst: 200
            })
        );
        assert!(ind.https_only);
        assert_eq!(routes[0].route.options.timeout, None);
        assert_eq!(
            routes[2].route.host,
            Some(RouteHost::Wildcard("example.com".into()))
        );
        assert!(
            parse_routes("empty", "# nothing yet\n\n")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn errors_have_exact_positions() {
        let cases: &[(&str, &str)] = &[
            (
                "route /api {\n  servce api\n}\n",
                "r:2:3: unknown key `servce` in the `route` block; did you mean `service`?",
            ),
            (
                "route /api {\n  service api\n  strip-prefx\n}\n",
                "r:3:3: unknown key `strip-prefx` in the `route` block; did you mean `strip-prefix`?",
            ),
            (
                "\n  rout /api api\n",
                "r:2:3: `rout` is not a routes-file statement: expected `route [HOST]/PREFIX SERVICE` or `/PREFIX SERVICE`; did you mean `route`?",
            ),
            (
                "route /api {\n  service api\n",
                "r:1:12: the `route` block opened on line 1 is never closed: missing `}`",
            ),
            (
                "route /api {\n  strip-prefix\n}\n",
                "r:1:7: route `/api` names no service: add it after the route or as `service NAME`",
            ),
            (
                "route /api {\n  service api\n  max-body 10 mb\n}\n",
                "r:3:15: `max-body` takes one value, found 2; write the number and its unit together, like `16gb`",
            ),
            (
                "route /api {\n  service api\n  max-body 10xb\n}\n",
                "r:3:12: `max-body`: invalid size `10xb`: unknown unit `xb`; expected b, kb, mb, gb or tb",
            ),
            (
                "route /api { service api; timeout 30 }\n",
                "r:1:35: `timeout`: expected a duration with a unit: ms, s, m or h, found `30`",
            ),
            (
                "route /api {\n  service api\n  timeout 2h\n}\n",
                "r:3:11: `timeout` must be between 10ms and 1h, found `2h`",
            ),
            (
                "route /api {\n  service api\n  rate 100 burst 200\n}\n",
                "r:3:8: `rate`: expected `N/s` or `N/s burst M`, like `rate 100/s burst 200`, found `100`",
            ),
            (
                "route /api {\n  service api\n  rate 100/s burst 0\n}\n",
                "r:3:20: `burst` must be between 1 and 10000000, found `0`",
            ),
            (
                "route /api {\n  service api\n  strip-prefix yes\n}\n",
                "r:3:16: `strip-prefix` takes no value, found `yes`",
            ),
            (
                "route /api api {\n  service other\n}\n",
                "r:2:3: route `/api` names its service twice (after the route and as `service`)",
            ),
            (
                "route api.example.com:80/api svc\n",
                "r:1:7: invalid route `api.example.com:80/api`: the host label `com:80` may only hold letters, digits and `-`, not at its start or end",
            ),
            (
                "route /api bad_name!\n",
                "r:1:12: invalid service name: a name may contain only letters, digits, `.`, `_` and `-`; found '!' at position 8",
            ),
            (
                "}\n",
                "r:1:1: unexpected `}`: there is no open block to close",
            ),
            (
                "route /api a b\n",
                "r:1:14: `route` takes one value, found 3; a route takes its target and its service; options go in a block, like `route /api api { strip-prefix }`",
            ),
            (
                "route /a a\nroute /b {\n  service b\n  service c\n}\n",
                "r:4:3: `service` is given twice (first on line 3)",
            ),
            (
                "route /a a\n/a:b\n",
                "r:2:1: route `/a` is given twice (first on line 1)",
            ),
            (
                "/a\n",
                "r:1:1: route `/a` names no service: add it after the route or as `service NAME`",
            ),
            (
                "/a b x\n",
                "r:1:6: `/a` takes one value, found 2; the first routes-file format is `/PREFIX SERVICE`; options need `route /PREFIX SERVICE { … }`",
            ),
            (
                "/abc:b!\n",
                "r:1:6: invalid service name: a name may contain only letters, digits, `.`, `_` and `-`; found '!' at position 1",
            ),
            (
                "strip-prefix\nroute /a a\n",
                "r:1:1: `strip-prefix` belongs in a `route` block",
            ),
            (
                "route /a { service a }\nstrip-prefix\n",
                "r:2:1: `strip-prefix` belongs in a `route` block",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_routes("r", text).unwrap_err();
            assert_eq!(err.errors[0].to_string(), *expected, "{text:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, the parser answers: routes, or errors at positions inside it.
        #[test]
        fn never_panics_and_errors_point_inside(
            text in "(route|service|strip-prefix|rate|timeout|[a-z*./:\\[\\]\"]{0,12}|[{};#\n \t]|\u{e9}){0,40}"
        ) {
            if let Err(errors) = parse_routes("f", &text) {
                let lines = u32::try_from(text.lines().count()).unwrap_or(u32::MAX).max(1);
                proptest::prop_assert!(!errors.errors.is_empty());
                for e in &errors.errors {
                    proptest::prop_assert!(e.line >= 1 && e.line <= lines, "{}", e);
                    proptest::prop_assert!(e.column >= 1, "{}", e);
                }
            }
        }
    }

    #[test]
    fn every_error_of_a_file_is_reported() {
        let err = parse_routes("r", "route /a\nroute /b { servce b }\nnope\n").unwrap_err();
        let lines: Vec<u32> = err.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3], "{err}");
    }
}
