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
    t.lookup(None, path).map(|r| r.service.as_str())
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
        Err(RouteError::Target { .. })
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
    let dir = tempdir();
    let path = dir.join("edge.routes");
    std::fs::write(
        &path,
        "# edge routes\n/api api-service  # the API\n\n/:frontend\n",
    )
    .unwrap();
    let flags = [
        Route::parse_flag("/api:old").unwrap(),
        Route::parse_flag("/x:x").unwrap(),
    ];
    let t = RouteTable::load(&flags, Some(&path), false).unwrap();
    let got: Vec<_> = t
        .routes()
        .iter()
        .map(|r| (r.label.as_str(), r.service.as_str(), r.source.to_string()))
        .collect();
    // The file's `/api` wins over the flag's.
    assert_eq!(
        got,
        vec![
            ("/x", "x", "flag".to_owned()),
            ("/api", "api-service", "file".to_owned()),
            ("/", "frontend", "file".to_owned()),
        ]
    );
    std::fs::write(&path, "/a b\nnope\nroute /c { servce c }\n").unwrap();
    let err = RouteTable::load(&[], Some(&path), false).unwrap_err();
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("edge.routes:2:1: `nope`"), "{text}");
    assert!(
        lines[1].contains("edge.routes:3:12: unknown key `servce`"),
        "{text}"
    );
    let missing = RouteTable::load(&[], Some(&dir.join("none")), false).unwrap_err();
    assert!(matches!(missing, RouteError::Read { .. }), "{missing}");
    std::fs::remove_dir_all(&dir).ok();
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "skr8tr-routes-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn services_are_distinct() {
    let t = table(&["/a:x", "/b:x", "/:y"]);
    let names: Vec<_> = t.services().iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(names.len(), 2);
}

fn edge_table() -> RouteTable {
    table(&[
        "api.example.com/api:exact-api",
        "api.example.com/:exact-root",
        "*.example.com/api:wild-api",
        "*.example.com/static/:wild-static",
        "example.com/:apex",
        "/api:any-api",
        "/:any-root",
        "10.0.0.1/ip:ipv4",
        "[::1]/v6:ipv6",
        "xn--bcher-kva.example/:punycode",
        "only.example.org/only:only",
    ])
}

#[test]
fn hosts_then_wildcards_then_hostless_then_longest_prefix() {
    let t = edge_table();
    let cases: &[(Option<&str>, &str, Option<&str>)] = &[
        // Exact host: its own routes first, longest prefix.
        (Some("api.example.com"), "/api", Some("exact-api")),
        (Some("api.example.com"), "/api/users", Some("exact-api")),
        (Some("api.example.com"), "/api?q=1", Some("exact-api")),
        (Some("api.example.com"), "/apiary", Some("exact-root")),
        (Some("api.example.com"), "/", Some("exact-root")),
        (Some("api.example.com"), "/other", Some("exact-root")),
        // Case and port do not matter; a trailing dot neither.
        (Some("API.Example.COM"), "/api", Some("exact-api")),
        (Some("api.example.com:8080"), "/api/x", Some("exact-api")),
        (Some("Api.Example.Com:443"), "/x", Some("exact-root")),
        (Some("api.example.com."), "/api", Some("exact-api")),
        (Some(" api.example.com "), "/api", Some("exact-api")),
        // One-label wildcard.
        (Some("a.example.com"), "/api", Some("wild-api")),
        (Some("a.example.com"), "/api/v1", Some("wild-api")),
        (Some("A.EXAMPLE.com:81"), "/api", Some("wild-api")),
        (Some("a.example.com"), "/static/app.js", Some("wild-static")),
        (Some("a.example.com"), "/static", Some("any-root")),
        (Some("a.example.com"), "/apix", Some("any-root")),
        (Some("a.example.com"), "/", Some("any-root")),
        // Two labels deep: not the wildcard.
        (Some("a.b.example.com"), "/api", Some("any-api")),
        (Some("a.b.example.com"), "/static/x", Some("any-root")),
        // The apex: not the wildcard, its own exact route.
        (Some("example.com"), "/api", Some("apex")),
        (Some("example.com"), "/static/x", Some("apex")),
        (Some("EXAMPLE.COM:80"), "/", Some("apex")),
        // Unknown hosts and no host: host-less routes.
        (Some("other.net"), "/api", Some("any-api")),
        (Some("other.net"), "/api/", Some("any-api")),
        (Some("other.net"), "/apiary", Some("any-root")),
        (None, "/api", Some("any-api")),
        (None, "/", Some("any-root")),
        (Some(""), "/api", Some("any-api")),
        (Some("example.com.evil"), "/api", Some("any-api")),
        // IP literals and punycode, as they are.
        (Some("10.0.0.1"), "/ip", Some("ipv4")),
        (Some("10.0.0.1:8080"), "/ip/x", Some("ipv4")),
        (Some("10.0.0.1"), "/", Some("any-root")),
        (Some("[::1]:80"), "/v6", Some("ipv6")),
        (Some("[::1]"), "/v6/x", Some("ipv6")),
        (Some("[::1]:80"), "/v", Some("any-root")),
        (Some("xn--bcher-kva.example"), "/x", Some("punycode")),
        (Some("XN--BCHER-KVA.example:1"), "/", Some("punycode")),
        // A host whose routes do not match falls through to the host-less ones.
        (Some("only.example.org"), "/only/x", Some("only")),
        (Some("only.example.org"), "/elsewhere", Some("any-root")),
        (Some("only.example.org"), "/onlyx", Some("any-root")),
        // Paths that are not origin-form paths match nothing.
        (Some("api.example.com"), "*", None),
        (None, "", None),
    ];
    assert!(cases.len() >= 40);
    for (host, path, expected) in cases {
        assert_eq!(
            t.lookup(*host, path).map(|r| r.service.as_str()),
            *expected,
            "{host:?} {path}"
        );
    }
}

#[test]
fn without_a_hostless_route_unknown_hosts_get_nothing() {
    let t = table(&["api.example.com/:api", "*.example.com/:wild"]);
    assert_eq!(
        t.lookup(Some("other.net"), "/").map(|r| r.label.as_str()),
        None
    );
    assert_eq!(t.lookup(None, "/"), None);
    assert_eq!(
        t.lookup(Some("x.example.com"), "/")
            .map(|r| r.label.as_str()),
        Some("*.example.com/")
    );
}

#[test]
fn the_same_prefix_on_different_hosts_is_no_duplicate() {
    let t = table(&["a.example.com/api:a", "b.example.com/api:b", "/api:c"]);
    assert_eq!(t.routes().len(), 3);
    let dup = RouteTable::new(vec![
        Route::parse_flag("A.example.com/api:x").unwrap(),
        Route::parse_flag("a.example.com/api:y").unwrap(),
    ]);
    assert!(matches!(dup, Err(RouteError::Duplicate(l)) if l == "a.example.com/api"));
}

#[test]
fn route_hosts_are_checked() {
    for bad in [
        "api.example.com:8080/api:svc",
        "*/api:svc",
        "a.*.example.com/api:svc",
        "**.example.com/:svc",
        "exa mple.com/:svc",
        "[zz]/:svc",
        "[::1/:svc",
        "a..b/:svc",
        "api.example.com:svc",
    ] {
        assert!(
            matches!(Route::parse_flag(bad), Err(RouteError::Target { .. })),
            "{bad}"
        );
    }
    let r = Route::parse_flag("API.Example.com/api:api-service").unwrap();
    assert_eq!(r.host, Some(RouteHost::Exact("api.example.com".into())));
    assert_eq!(r.label, "api.example.com/api");
    let r = Route::parse_flag("*.Example.com/:w").unwrap();
    assert_eq!(r.host, Some(RouteHost::Wildcard("example.com".into())));
    let r = Route::parse_flag("[::1]/v6:w").unwrap();
    assert_eq!(r.label, "[::1]/v6");
}

#[test]
fn strip_prefix_targets() {
    let mut api = Route::parse_flag("/api:svc").unwrap();
    let mut slash = Route::parse_flag("/api/:svc").unwrap();
    let mut root = Route::parse_flag("/:svc").unwrap();
    assert_eq!(stripped_target(&api, "/api/users"), None, "off by default");
    api.strip_prefix = true;
    slash.strip_prefix = true;
    root.strip_prefix = true;
    let cases: &[(&Route, &str, &str)] = &[
        (&api, "/api/users", "/users"),
        (&api, "/api", "/"),
        (&api, "/api/", "/"),
        (&api, "/api?x=1", "/?x=1"),
        (&api, "/api/?x=1", "/?x=1"),
        (&api, "/api/a/b?c=d", "/a/b?c=d"),
        (&api, "/api#f", "/#f"),
        (&slash, "/api/users", "/users"),
        (&slash, "/api/", "/"),
        (&root, "/x/y", "/x/y"),
        (&root, "/", "/"),
    ];
    for (route, path, expected) in cases {
        let (lead, rest) = stripped_target(route, path).unwrap_or(("", path));
        assert_eq!(
            format!("{lead}{rest}"),
            *expected,
            "{} {path}",
            route.prefix
        );
    }
    // `/apix` is not under `/api`, so it never reaches the strip.
    let t = RouteTable::new(vec![api]).unwrap();
    assert!(t.lookup(None, "/apix").is_none());
}

#[test]
fn https_only_needs_a_tls_listener() {
    let dir = tempdir();
    let path = dir.join("https.routes");
    std::fs::write(&path, "route /pay {\n  service pay\n  https-only\n}\n").unwrap();
    let err = RouteTable::load(&[], Some(&path), false).unwrap_err();
    assert!(
        matches!(err, RouteError::HttpsOnlyWithoutTls(ref l) if l == "/pay"),
        "{err}"
    );
    let t = RouteTable::load(&[], Some(&path), true).unwrap();
    assert!(t.routes()[0].https_only);
    std::fs::remove_dir_all(&dir).ok();
}

proptest::proptest! {
    /// Whatever the text, the routes-file parser answers (routes or a positioned error) and
    /// never panics; the same property the cargo-fuzz target checks.
    #[test]
    fn routes_file_never_panics(text in "(route|service|strip-prefix|https-only|max-body|[a-z*./:\\[\\]]{0,12}|[{};#\n \t]|\u{e9}){0,40}") {
        check_routes_file(&text);
    }

    #[test]
    fn lookup_never_panics(host in "\\PC{0,20}", path in "/\\PC{0,30}") {
        let t = edge_table();
        let _ = t.lookup(Some(&host), &path);
    }
}

#[test]
fn the_fuzz_seed_corpus_says_what_it_is() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/routes_file");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        check_routes_file(&text);
        let parsed = skr8tr_proto::manifest::parse_routes(&name, &text);
        if name.starts_with("ok-") {
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        } else {
            assert!(name.starts_with("reject-") && parsed.is_err(), "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 10);
}

fn app(name: &str) -> AppName {
    AppName::new(name).unwrap()
}

fn spec(target: &str) -> RouteSpec {
    let (host, prefix) = skr8tr_proto::route::parse_target(target).unwrap();
    RouteSpec::new(host, prefix)
}

#[test]
fn apps_routes_compose_under_the_operators() {
    let operator = vec![
        Route::parse_flag("/:frontend").unwrap(),
        Route::parse_flag("api.example.com/api:pinned").unwrap(),
    ];
    let mut https = spec("pay.example.com/");
    https.options.https_only = true;
    let apps = BTreeMap::from([
        (
            app("api"),
            vec![spec("api.example.com/api"), spec("api.example.com/v2")],
        ),
        (app("blog"), vec![spec("blog.example.com/"), spec("/")]),
        (app("pay"), vec![https.clone()]),
        (app("zeta"), vec![spec("blog.example.com/")]),
    ]);
    let (t, refused) = RouteTable::compose(&operator, &apps, false).unwrap();
    let served = |host: &str, path: &str| {
        t.lookup(Some(host), path)
            .map(|r| (r.service.as_str().to_owned(), r.source.to_string()))
    };
    assert_eq!(
        served("api.example.com", "/api/x"),
        Some(("pinned".into(), "flag".into()))
    );
    assert_eq!(
        served("api.example.com", "/v2"),
        Some(("api".into(), "app:api".into()))
    );
    assert_eq!(
        served("blog.example.com", "/post"),
        Some(("blog".into(), "app:blog".into()))
    );
    assert_eq!(
        served("other.net", "/"),
        Some(("frontend".into(), "flag".into()))
    );
    // https-only without TLS: not served, so the host-less `/` answers instead.
    assert_eq!(
        served("pay.example.com", "/"),
        Some(("frontend".into(), "flag".into()))
    );
    assert_eq!(
        refused,
        vec![
            Refused::Taken {
                route: "api.example.com/api".into(),
                app: app("api"),
                by: RouteSource::Flag,
            },
            Refused::Taken {
                route: "/".into(),
                app: app("blog"),
                by: RouteSource::Flag,
            },
            Refused::HttpsOnlyWithoutTls {
                route: "pay.example.com/".into(),
                app: app("pay"),
            },
            Refused::Taken {
                route: "blog.example.com/".into(),
                app: app("zeta"),
                by: RouteSource::App(app("blog")),
            },
        ]
    );
    assert!(
        refused[0].to_string().contains("held by flag"),
        "{}",
        refused[0]
    );
    // With TLS the https-only route is served.
    let (t, refused) = RouteTable::compose(&operator, &apps, true).unwrap();
    assert_eq!(refused.len(), 3);
    assert_eq!(
        t.lookup(Some("pay.example.com"), "/")
            .map(|r| r.service.as_str()),
        Some("pay")
    );
    // Every app's service is watched.
    let services: Vec<String> = t.services().iter().map(|s| s.as_str().to_owned()).collect();
    for s in ["frontend", "pinned", "api", "blog", "pay"] {
        assert!(services.contains(&s.to_owned()), "{s}");
    }
}
