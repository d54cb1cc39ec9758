//! TLS termination: HTTPS in, HTTP to the backend, with everything the plain listener does
//! (keep-alive, pipelining, streamed bodies, Upgrade tunnels), on both drivers; bad clients
//! and bad certificate files; and the certificate reloaded for new connections only.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use skr8tr_ingress::IngressHandle;
use skr8tr_ingress::tls::TlsFiles;

use crate::util::backend::{Action, Backend, ok};
use crate::util::client::Conn;
use crate::util::ingress_with;
use crate::util::tls::{TestCert, client_config, connect, make_cert, try_connect};

const MIB: usize = 1024 * 1024;

fn tls_ingress(backend: &Backend, cert: &TestCert, force_epoll: bool) -> IngressHandle {
    ingress_with(&[backend.addr], |c| {
        c.enable_tls(cert.files.clone());
        c.force_epoll = force_epoll;
    })
}

/// A backend that says how many body bytes it got, streams `Big` bodies on /big, and turns
/// /ws into an echoing tunnel.
fn scripted_backend() -> Backend {
    Backend::start(|req| {
        if req.head.starts_with("GET /ws") {
            Action::Echo(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
                    .to_vec(),
            )
        } else if req.head.starts_with("POST /up") {
            // Big bodies are counted, not kept: the body says "N bytes".
            Action::Reply(ok(&String::from_utf8_lossy(&req.body)))
        } else if req.head.starts_with("GET /big") {
            Action::Big(8 * MIB as u64)
        } else {
            Action::Reply(ok(&format!("{} bytes in", req.body.len())))
        }
    })
}

fn proxies_https(force_epoll: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path(), "a");
    let backend = scripted_backend();
    let proxy = tls_ingress(&backend, &cert, force_epoll);
    let config = client_config(&cert.der);
    let mut c = connect(proxy.port(), &config);
    assert_eq!(c.s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    // Keep-alive, then two pipelined requests in one write.
    c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).text(), "0 bytes in");
    c.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(c.read(false).text(), "0 bytes in");
    assert_eq!(c.read(false).text(), "3 bytes in");
    let seen = backend.requests();
    assert_eq!(seen.len(), 3);
    for req in &seen {
        assert_eq!(req.header("x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(req.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
        assert_eq!(req.header("host").as_deref(), Some("x"));
    }
    // An Upgrade is tunnelled both ways inside TLS, small messages and a large one.
    let mut w = connect(proxy.port(), &config);
    w.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
    assert_eq!(w.read(false).status, 101);
    for msg in [&b"ping"[..], b"second message"] {
        w.s.write_all(msg).unwrap();
        let mut got = vec![0u8; msg.len()];
        w.s.read_exact(&mut got).unwrap();
        assert_eq!(got, msg);
    }
    let big: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let mut writer = w.s.sock.try_clone().unwrap();
    // Write and read at once (the echo cannot buffer a whole MiB in the socket pairs):
    // rustls' stream is not Sync, so encrypt everything first, then send it from a thread.
    let mut records = Vec::new();
    for piece in big.chunks(16 * 1024) {
        w.s.conn.writer().write_all(piece).unwrap();
        while w.s.conn.wants_write() {
            w.s.conn.write_tls(&mut records).unwrap();
        }
    }
    let sender = std::thread::spawn(move || writer.write_all(&records).unwrap());
    let mut echoed = vec![0u8; big.len()];
    w.s.read_exact(&mut echoed).unwrap();
    sender.join().unwrap();
    assert!(echoed == big, "the tunnel corrupted the echo");
    proxy.stop();
}

#[test]
fn terminates_tls_and_forwards_plain_http_with_https_headers() {
    proxies_https(false);
}

#[test]
fn terminates_tls_on_the_epoll_fallback() {
    proxies_https(true);
}

#[test]
fn streams_large_bodies_both_ways_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path(), "a");
    let backend = scripted_backend();
    let proxy = tls_ingress(&backend, &cert, false);
    let config = client_config(&cert.der);
    let mut c = connect(proxy.port(), &config);
    // 8 MiB up, with Content-Length.
    let body = vec![b'u'; 8 * MIB];
    c.send(
        format!(
            "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    assert_eq!(c.read(false).text(), format!("{} bytes", 8 * MIB));
    // 8 MiB down on the same connection.
    c.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = c.read(false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 8 * MIB);
    proxy.stop();
}

#[test]
fn plain_http_and_silent_clients_on_the_tls_port_are_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path(), "a");
    let backend = Backend::ok();
    let proxy = ingress_with(&[backend.addr], |c| {
        c.enable_tls(cert.files.clone());
        c.timeouts.request_head = Duration::from_millis(300);
    });
    // Plain HTTP: a TLS alert at most, never an HTTP response, then the close.
    let mut plain = Conn::open(proxy.port());
    plain.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut got = Vec::new();
    let _ = plain.s.read_to_end(&mut got);
    assert!(!got.starts_with(b"HTTP/"), "answered plain HTTP: {got:?}");
    // A client that connects and says nothing is cut at the head timeout.
    let started = Instant::now();
    let mut silent = Conn::open(proxy.port());
    assert!(silent.is_closed());
    assert!(started.elapsed() < Duration::from_secs(3));
    // Nothing reached the backend, both failures are counted, and the listener still serves.
    assert!(backend.requests().is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy
        .metrics_text()
        .contains("tls_handshake_failures_total 2")
    {
        assert!(Instant::now() < deadline, "{}", proxy.metrics_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = connect(proxy.port(), &client_config(&cert.der));
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).status, 200);
    proxy.stop();
}

#[test]
fn a_client_that_does_not_trust_the_certificate_gets_nothing_through() {
    let dir = tempfile::tempdir().unwrap();
    let cert = make_cert(dir.path(), "a");
    let other = make_cert(dir.path(), "other");
    let backend = Backend::ok();
    let proxy = tls_ingress(&backend, &cert, false);
    assert!(try_connect(proxy.port(), &client_config(&other.der)).is_err());
    assert!(backend.requests().is_empty());
    proxy.stop();
}

#[test]
fn bad_certificate_files_are_refused_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert(dir.path(), "a");
    let b = make_cert(dir.path(), "b");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let cases = [
        (
            TlsFiles {
                cert: dir.path().join("missing.crt"),
                key: a.files.key.clone(),
            },
            "missing.crt",
        ),
        (
            TlsFiles {
                cert: empty.clone(),
                key: a.files.key.clone(),
            },
            "no certificate in",
        ),
        (
            TlsFiles {
                cert: a.files.cert.clone(),
                key: empty,
            },
            "private key",
        ),
        // A key that is not the certificate's.
        (
            TlsFiles {
                cert: a.files.cert.clone(),
                key: b.files.key.clone(),
            },
            "do not make a server configuration",
        ),
    ];
    for (files, expected) in cases {
        let err = skr8tr_ingress::tls::load(&files).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expected), "{text} lacks {expected}");
        let mut config = skr8tr_ingress::Config::local(Vec::new(), Vec::new());
        config.routes = vec![skr8tr_ingress::route::Route::parse_flag("/:web").unwrap()];
        config.enable_tls(files);
        assert!(matches!(
            skr8tr_ingress::start(config),
            Err(skr8tr_ingress::StartError::Tls(_))
        ));
    }
}

#[test]
fn tls_flags_come_in_pairs() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    let a = make_cert(dir.path(), "a");
    let cert = a.files.cert.to_str().unwrap();
    let key = a.files.key.to_str().unwrap();
    let parse = |extra: &[&str]| {
        let mut argv = vec!["skr8tr_ingress", "--listen", "0", "--route", "/:web"];
        argv.extend_from_slice(extra);
        skr8tr_ingress::IngressArgs::try_parse_from(argv)
    };
    assert!(parse(&["--tls-cert", cert]).is_err());
    assert!(parse(&["--tls-key", key]).is_err());
    let config = parse(&["--tls-cert", cert, "--tls-key", key])
        .unwrap()
        .into_config()
        .unwrap();
    assert_eq!(config.proto, "https");
    assert_eq!(config.tls, Some(a.files.clone()));
    // A bad pair is a flag error, before anything binds.
    let bad = parse(&["--tls-cert", key, "--tls-key", key]).unwrap();
    assert!(bad.into_config().is_err());
}

#[test]
fn reload_swaps_the_certificate_for_new_connections_only() {
    let dir = tempfile::tempdir().unwrap();
    let old = make_cert(dir.path(), "live");
    let old_config = client_config(&old.der);
    let backend = Backend::ok();
    let proxy = tls_ingress(&backend, &old, false);
    let mut open = connect(proxy.port(), &old_config);
    open.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(open.read(false).status, 200);
    // New files at the same paths, then the reload (SIGHUP in the binary).
    let new = make_cert(dir.path(), "live");
    assert!(proxy.reload_tls().unwrap());
    let new_config = client_config(&new.der);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut fresh = loop {
        match try_connect(proxy.port(), &new_config) {
            Ok(c) => break c,
            Err(e) => assert!(Instant::now() < deadline, "new certificate not served: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    fresh.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(fresh.read(false).status, 200);
    assert!(try_connect(proxy.port(), &old_config).is_err());
    // The connection made before the reload keeps working.
    open.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(open.read(false).status, 200);
    // A broken file is refused and the served certificate stays.
    std::fs::write(&new.files.key, "not a key").unwrap();
    assert!(proxy.reload_tls().is_err());
    let mut still = connect(proxy.port(), &new_config);
    still.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(still.read(false).status, 200);
    proxy.stop();
}
