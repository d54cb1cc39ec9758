//! What the proxy does with well-formed traffic: keep-alive, pipelining, both body framings
//! both ways, HEAD, 1xx and 100-continue, 204/304, close-delimited responses, Upgrade, and the
//! header rewriting.

use std::io::{Read, Write};
use std::time::Duration;

use crate::util::backend::{Action, Backend, ok};
use crate::util::client::{Conn, get, roundtrip};
use crate::util::{ingress, ingress_with};

#[test]
fn keep_alive_reuses_both_connections() {
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    for _ in 0..5 {
        c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read(false);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(backend.requests().len(), 5);
    assert_eq!(
        backend.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "upstream reused"
    );
    proxy.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let backend = Backend::start(|req| {
        let path = req.head.split(' ').nth(1).unwrap().to_owned();
        // The first one is slow: order must still hold.
        if path == "/1" {
            Action::Delay(Duration::from_millis(100), ok(&path))
        } else {
            Action::Reply(ok(&path))
        }
    });
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nPOST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /4 HTTP/1.1\r\nHost: x\r\n\r\n");
    for want in ["/1", "/2", "/3", "/4"] {
        assert_eq!(c.read(false).text(), want);
    }
    let seen = backend.requests();
    assert_eq!(seen[2].body, b"abc");
    proxy.stop();
}

#[test]
fn chunked_request_body_is_reencoded() {
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    let r = roundtrip(
        proxy.port(),
        b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = &backend.requests()[0];
    assert_eq!(seen.body, b"hello world");
    assert_eq!(seen.header("transfer-encoding").as_deref(), Some("chunked"));
    assert!(
        !backend.raw_text().contains("ext=1"),
        "extensions are dropped"
    );
    assert!(
        !backend.raw_text().contains("X-Trailer"),
        "trailers are dropped"
    );
    proxy.stop();
}

#[test]
fn content_length_request_body() {
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    let r = roundtrip(
        proxy.port(),
        b"PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(r.status, 200);
    assert_eq!(backend.requests()[0].body, b"hello world");
    assert_eq!(
        backend.requests()[0].header("content-length").as_deref(),
        Some("11")
    );
    proxy.stop();
}

#[test]
fn chunked_response_to_http11_client() {
    let backend = Backend::start(|_| {
        Action::Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n".to_vec())
    });
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    for _ in 0..2 {
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read(false);
        assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
        assert_eq!(r.text(), "abcdefg");
    }
    proxy.stop();
}

#[test]
fn chunked_response_to_http10_client_is_dechunked_and_closed() {
    let backend = Backend::start(|_| {
        Action::Reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec(),
        )
    });
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert_eq!(r.text(), "abc");
    proxy.stop();
}

#[test]
fn http10_keep_alive() {
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    for _ in 0..2 {
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read(false);
        assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
    }
    // Without keep-alive, HTTP/1.0 closes; Host is filled in upstream.
    c.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(c.read(false).header("connection").as_deref(), Some("close"));
    assert!(c.is_closed());
    assert!(backend.requests()[0].header("host").is_some());
    proxy.stop();
}

#[test]
fn head_response_has_no_body() {
    let backend = Backend::start(|req| {
        if req.head.starts_with("HEAD") {
            Action::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec())
        } else {
            Action::Reply(ok("after"))
        }
    });
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read(true);
    assert_eq!(r.header("content-length").as_deref(), Some("1000"));
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        c.read(false).text(),
        "after",
        "the connection stayed in sync"
    );
    proxy.stop();
}

#[test]
fn no_body_for_204_and_304() {
    let backend = Backend::start(|req| {
        if req.head.starts_with("GET /204") {
            Action::Reply(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec())
        } else if req.head.starts_with("GET /304") {
            Action::Reply(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n".to_vec())
        } else {
            Action::Reply(ok("next"))
        }
    });
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"GET /204 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).status, 204);
    c.send(b"GET /304 HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read(false);
    assert_eq!(
        (r.status, r.header("etag").as_deref()),
        (304, Some("\"a\""))
    );
    c.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).text(), "next");
    proxy.stop();
}

#[test]
fn close_delimited_response() {
    let backend =
        Backend::start(|_| Action::ReplyClose(b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec()));
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.text(), "until the end");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    proxy.stop();
}

#[test]
fn expect_100_continue() {
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read(false);
    assert_eq!(interim.status, 100);
    c.send(b"data");
    let r = c.read(false);
    assert_eq!(r.status, 200);
    assert_eq!(backend.requests()[0].body, b"data");
    assert_eq!(backend.requests()[0].header("expect"), None);
    proxy.stop();
}

#[test]
fn interim_responses_are_forwarded() {
    let backend = Backend::start(|_| {
        Action::Reply(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
    });
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let hints = c.read(false);
    assert_eq!(hints.status, 103);
    assert!(hints.header("link").is_some());
    assert_eq!(c.read(false).text(), "ok");
    proxy.stop();
}

#[test]
fn upgrade_is_tunnelled_both_ways() {
    let backend = Backend::start(|_| {
        Action::Echo(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec())
    });
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.status, 101);
    assert_eq!(r.header("upgrade").as_deref(), Some("websocket"));
    let seen = &backend.requests()[0];
    assert_eq!(seen.header("upgrade").as_deref(), Some("websocket"));
    assert_eq!(seen.header("connection").as_deref(), Some("upgrade"));
    for msg in [&b"ping"[..], b"frames both ways"] {
        c.s.write_all(msg).unwrap();
        let mut got = vec![0u8; msg.len()];
        c.s.read_exact(&mut got).unwrap();
        assert_eq!(got, msg);
    }
    proxy.stop();
}

#[test]
fn upgrade_header_dropped_without_connection_upgrade() {
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    let r = roundtrip(
        proxy.port(),
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(backend.requests()[0].header("upgrade"), None);
    proxy.stop();
}

#[test]
fn hop_by_hop_fields_are_removed_and_forwarding_fields_set() {
    let backend = Backend::start(|_| {
        Action::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nConnection: X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\n\r\nok".to_vec())
    });
    let proxy = ingress(backend.addr);
    let r = roundtrip(
        proxy.port(),
        b"GET /p?q=1 HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, X-Private\r\nX-Private: p\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nX-Forwarded-For: 10.0.0.1\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Custom: c\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-secret"), None);
    assert_eq!(r.header("keep-alive"), None);
    assert_eq!(r.header("x-kept").as_deref(), Some("k"));
    let seen = &backend.requests()[0];
    assert!(
        seen.head.starts_with("GET /p?q=1 HTTP/1.1\r\n"),
        "{}",
        seen.head
    );
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
    ] {
        assert!(
            !seen.names().contains(&gone.to_owned()),
            "{gone} forwarded: {}",
            seen.head
        );
    }
    assert_eq!(seen.header("host").as_deref(), Some("example.test"));
    assert_eq!(
        seen.header("x-forwarded-for").as_deref(),
        Some("10.0.0.1, 127.0.0.1")
    );
    assert_eq!(seen.header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(seen.header("x-custom").as_deref(), Some("c"));
    proxy.stop();
}

#[test]
fn longest_prefix_routing_through_the_proxy() {
    let api = Backend::start(|_| Action::Reply(ok("api")));
    let web = Backend::start(|_| Action::Reply(ok("web")));
    let proxy = ingress_with(&[web.addr], |c| {
        c.routes
            .push(skr8tr_ingress::route::Route::parse_flag("/api:api-service").unwrap());
        c.static_backends
            .push(("api-service".parse().unwrap(), api.addr));
    });
    assert_eq!(get(proxy.port(), "/api").text(), "api");
    assert_eq!(get(proxy.port(), "/api/x?y=1").text(), "api");
    assert_eq!(get(proxy.port(), "/apiary").text(), "web");
    assert_eq!(get(proxy.port(), "/").text(), "web");
    assert!(
        api.requests()[1].head.starts_with("GET /api/x?y=1 "),
        "path unchanged"
    );
    proxy.stop();
}
