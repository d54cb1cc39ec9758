//! Host routing and strip-prefix through the proxy (SPEC §7.1): which backend a request
//! reaches, and the target it sees.

use std::time::Duration;

use crate::util::backend::{Action, Backend, ok};
use crate::util::client::{Conn, roundtrip};
use crate::util::ingress_with;

use skr8tr_ingress::route::Route;

fn echo(name: &'static str) -> Backend {
    Backend::start(move |req| {
        Action::Reply(ok(&format!(
            "{name} {}",
            req.head.lines().next().unwrap_or("")
        )))
    })
}

/// An ingress whose only routes are the routes file `text`, with `service` at `backend`, on the
/// epoll driver when `epoll` (else io_uring); `tune` applied last. The file's directory lives as
/// long as the returned guard.
fn with_routes_file(
    epoll: bool,
    text: &str,
    service: &str,
    backend: std::net::SocketAddr,
    tune: impl FnOnce(&mut skr8tr_ingress::Config),
) -> (skr8tr_ingress::IngressHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.routes");
    std::fs::write(&file, text).unwrap();
    let proxy = ingress_with(&[], |c| {
        c.routes.clear();
        c.routes_file = Some(file.clone());
        c.static_backends = vec![(service.parse().unwrap(), backend)];
        c.force_epoll = epoll;
        tune(c);
    });
    (proxy, dir)
}

/// Waits (the cores publish their counters every 250 ms) until `/metrics` holds `line`.
fn metric_reaches(proxy: &skr8tr_ingress::IngressHandle, line: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !proxy.metrics_text().lines().any(|l| l == line) {
        assert!(
            std::time::Instant::now() < deadline,
            "no `{line}` in\n{}",
            proxy.metrics_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hosts_wildcards_and_strip_prefix_through_the_proxy() {
    let api = echo("api");
    let wild = echo("wild");
    let web = echo("web");
    let proxy = ingress_with(&[web.addr], |c| {
        let mut stripped = Route::parse_flag("api.example.com/api:api").unwrap();
        stripped.strip_prefix = true;
        c.routes.push(stripped);
        c.routes
            .push(Route::parse_flag("*.example.com/:wild").unwrap());
        c.static_backends.push(("api".parse().unwrap(), api.addr));
        c.static_backends.push(("wild".parse().unwrap(), wild.addr));
    });
    let ask = |host: &str, target: &str| {
        let mut c = Conn::open(proxy.port());
        c.send(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        c.read(false).text()
    };
    let cases = [
        ("api.example.com", "/api/users", "api GET /users HTTP/1.1"),
        ("API.EXAMPLE.COM:8080", "/api", "api GET / HTTP/1.1"),
        ("api.example.com", "/api?x=1", "api GET /?x=1 HTTP/1.1"),
        ("api.example.com", "/apix", "wild GET /apix HTTP/1.1"),
        (
            "a.example.com",
            "/api/users",
            "wild GET /api/users HTTP/1.1",
        ),
        ("a.b.example.com", "/api", "web GET /api HTTP/1.1"),
        ("example.com", "/x", "web GET /x HTTP/1.1"),
        ("[::1]:80", "/x", "web GET /x HTTP/1.1"),
        // The absolute-form target's host wins over Host.
        (
            "other.test",
            "http://api.example.com/api/v1",
            "api GET /v1 HTTP/1.1",
        ),
        (
            "api.example.com",
            "http://z.example.com/api/v1",
            "wild GET http://z.example.com/api/v1 HTTP/1.1",
        ),
    ];
    for (host, target, expected) in cases {
        assert_eq!(ask(host, target), expected, "{host} {target}");
    }
    proxy.stop();
}

#[test]
fn no_route_for_the_host_is_404_with_the_seeds_text() {
    let api = echo("api");
    let proxy = ingress_with(&[], |c| {
        c.routes = vec![Route::parse_flag("api.example.com/:api").unwrap()];
        c.static_backends = vec![("api".parse().unwrap(), api.addr)];
    });
    let r = roundtrip(
        proxy.port(),
        b"GET / HTTP/1.1\r\nHost: other.example.com\r\n\r\n",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "No route for this path.\n");
    let r = roundtrip(
        proxy.port(),
        b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n",
    );
    assert_eq!(r.text(), "api GET / HTTP/1.1");
    proxy.stop();
}

#[test]
fn https_only_without_tls_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.routes");
    std::fs::write(&file, "route /pay {\n  service pay\n  https-only\n}\n").unwrap();
    let mut config = skr8tr_ingress::Config::local(Vec::new(), Vec::new());
    config.routes_file = Some(file);
    let err = skr8tr_ingress::start(config).unwrap_err();
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(
        text.contains("route `/pay` is https-only but the ingress has no TLS listener"),
        "{text}"
    );
}

#[test]
fn a_routes_timeout_answers_504_when_the_upstream_misses_it() {
    for epoll in [false, true] {
        let slow = Backend::start(|_| Action::Delay(Duration::from_millis(600), ok("late")));
        // The ingress-wide default stays at 5 s: only the route's own timeout can give 504.
        let (proxy, _dir) = with_routes_file(
            epoll,
            "route /strict {\n  service slow\n  timeout 100ms\n}\nroute /patient slow\n",
            "slow",
            slow.addr,
            |_| {},
        );
        let r = roundtrip(proxy.port(), b"GET /strict HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 504);
        let r = roundtrip(proxy.port(), b"GET /patient HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "late");
        metric_reaches(
            &proxy,
            "skr8tr_ingress_limited_total{route=\"/strict\",limit=\"timeout\"} 1",
        );
        proxy.stop();
    }
}

#[test]
fn max_body_refuses_a_large_content_length_before_the_upstream_and_cuts_a_chunked_body() {
    for epoll in [false, true] {
        let up = echo("up");
        let (proxy, _dir) = with_routes_file(
            epoll,
            "route /upload {\n  service up\n  max-body 10b\n}\n",
            "up",
            up.addr,
            |_| {},
        );
        // At the limit: forwarded.
        let r = roundtrip(
            proxy.port(),
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        );
        assert_eq!(r.status, 200);
        assert_eq!(up.requests().len(), 1);
        // Over it by Content-Length: 413, the upstream never contacted.
        let mut c = Conn::open(proxy.port());
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
        let r = c.read(false);
        assert_eq!(r.status, 413);
        assert_eq!(r.header("connection").as_deref(), Some("close"));
        assert!(c.is_closed());
        // A chunked body within the limit passes; one that grows past it is cut with a 413.
        let r = roundtrip(
            proxy.port(),
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
        );
        assert_eq!(r.status, 200);
        let mut c = Conn::open(proxy.port());
        c.send(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n",
        );
        c.send(b"6\r\n567890\r\n");
        let r = c.read(false);
        assert_eq!(r.status, 413);
        assert!(c.is_closed());
        // The upstream saw the two bodies within the limit, and the cut one never completed.
        std::thread::sleep(Duration::from_millis(100));
        let seen = up.requests();
        assert_eq!(
            seen.len(),
            2,
            "{:?}",
            seen.iter().map(|s| &s.head).collect::<Vec<_>>()
        );
        metric_reaches(
            &proxy,
            "skr8tr_ingress_limited_total{route=\"/upload\",limit=\"max_body\"} 2",
        );
        proxy.stop();
    }
}

#[test]
fn rate_limit_answers_429_with_retry_after_then_recovers() {
    for epoll in [false, true] {
        let up = echo("up");
        let (proxy, _dir) = with_routes_file(
            epoll,
            "route /limited {\n  service up\n  rate 1/s burst 2\n}\nroute / up\n",
            "up",
            up.addr,
            |_| {},
        );
        let mut c = Conn::open(proxy.port());
        let mut ask = |path: &str| {
            c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            c.read(false)
        };
        // The burst passes; the next is refused, on the same kept connection.
        assert_eq!(ask("/limited").status, 200);
        assert_eq!(ask("/limited").status, 200);
        let r = ask("/limited");
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after").as_deref(), Some("1"));
        assert_eq!(r.text(), "Too many requests.\n");
        // Other routes are not limited.
        assert_eq!(ask("/other").status, 200);
        // After Retry-After, a token is back (polled: the refill is time-based, not asserted).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            std::thread::sleep(Duration::from_millis(1100));
            if ask("/limited").status == 200 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never recovered");
        }
        assert!(up.requests().len() >= 4);
        metric_reaches(
            &proxy,
            "skr8tr_ingress_limited_total{route=\"/limited\",limit=\"rate\"} 1",
        );
        proxy.stop();
    }
}

#[test]
fn forwarded_for_names_the_client_only_from_a_trusted_proxy() {
    for (trusted, epoll) in [(true, false), (false, false), (true, true), (false, true)] {
        let up =
            Backend::start(|req| Action::Reply(ok(&req.header("x-real-ip").unwrap_or_default())));
        let (proxy, _dir) = with_routes_file(
            epoll,
            "route / {\n  service up\n  rate 1/s burst 1\n}\n",
            "up",
            up.addr,
            |c| {
                if trusted {
                    c.trusted_proxies =
                        vec![skr8tr_ingress::client::Cidr::parse("127.0.0.0/8").unwrap()];
                }
            },
        );
        let ask = |xff: &str| {
            roundtrip(
                proxy.port(),
                format!("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {xff}\r\n\r\n").as_bytes(),
            )
        };
        let first = ask("198.51.100.1");
        assert_eq!(first.status, 200);
        let second = ask("198.51.100.2");
        if trusted {
            // Each named client has its own bucket, and the backend is told who it is.
            assert_eq!(first.text(), "198.51.100.1");
            assert_eq!(second.status, 200);
            assert_eq!(second.text(), "198.51.100.2");
            assert_eq!(ask("198.51.100.1").status, 429);
        } else {
            // The header is not believed: one client (the peer), one bucket.
            assert_eq!(first.text(), "127.0.0.1");
            assert_eq!(second.status, 429);
        }
        proxy.stop();
    }
}
