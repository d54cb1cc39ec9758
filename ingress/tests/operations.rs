//! Operations: streaming with bounded memory, the epoll fallback, the connection limit, and
//! the binary's signals (SIGHUP reload, SIGTERM drain).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::backend::{Action, Backend, ok};
use crate::util::client::{Conn, get, roundtrip};
use crate::util::{ingress, ingress_with, rss_kib};

const MIB: u64 = 1024 * 1024;

/// Samples this process's RSS until stopped; returns the peak in KiB.
fn rss_sampler() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut peak = 0;
        while !s.load(Ordering::Relaxed) {
            peak = peak.max(rss_kib());
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    (stop, handle)
}

fn stream_upload_and_download(size: u64) {
    let backend = Backend::start(|req| {
        if req.head.starts_with("GET /big") {
            Action::Big(req.head.split(' ').nth(1).unwrap()[5..].parse().unwrap())
        } else {
            Action::Reply(ok(&String::from_utf8_lossy(&req.body)))
        }
    });
    let proxy = ingress(backend.addr);
    let before = rss_kib();
    let (stop, sampler) = rss_sampler();
    let started = Instant::now();
    // Upload.
    let mut c = Conn::open(proxy.port());
    c.send(format!("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n").as_bytes());
    let block = vec![b'u'; 256 * 1024];
    let mut left = size;
    while left > 0 {
        let k = left.min(block.len() as u64) as usize;
        c.s.write_all(&block[..k]).unwrap();
        left -= k as u64;
    }
    let r = c.read(false);
    assert_eq!(r.text(), format!("{size} bytes"));
    // Download, counted and dropped.
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
    s.write_all(
        format!("GET /big/{size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("{e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert!(total > size && total < size + 4096, "{total}");
    let grew_mib = peak.saturating_sub(before) / 1024;
    eprintln!(
        "streamed {} MiB up and down in {:?}; RSS {} MiB → peak {} MiB",
        size / MIB,
        started.elapsed(),
        before / 1024,
        peak / 1024
    );
    assert!(grew_mib < 64, "RSS grew by {grew_mib} MiB");
    proxy.stop();
}

#[test]
fn streams_1_gib_both_ways_in_bounded_memory() {
    stream_upload_and_download(1024 * MIB);
}

#[test]
fn epoll_fallback_runs_the_representative_cases() {
    let backend = Backend::start(|req| {
        if req.head.starts_with("GET /ws") {
            Action::Echo(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n".to_vec())
        } else if req.head.starts_with("GET /chunked") {
            Action::Reply(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                    .to_vec(),
            )
        } else {
            Action::Reply(ok(&format!("{} bytes in", req.body.len())))
        }
    });
    let proxy = ingress_with(&[backend.addr], |c| c.force_epoll = true);
    // Keep-alive and pipelining.
    let mut c = Conn::open(proxy.port());
    c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).text(), "0 bytes in");
    assert_eq!(c.read(false).text(), "hi");
    // Chunked request.
    c.send(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(c.read(false).text(), "3 bytes in");
    // A rejection.
    assert_eq!(
        roundtrip(proxy.port(), b"GET / HTTP/1.1\r\n\r\n").status,
        400
    );
    // Upgrade.
    let mut w = Conn::open(proxy.port());
    w.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
    assert_eq!(w.read(false).status, 101);
    w.s.write_all(b"echo").unwrap();
    let mut got = [0u8; 4];
    w.s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"echo");
    proxy.stop();
}

#[test]
fn connection_limit() {
    let backend = Backend::ok();
    let proxy = ingress_with(&[backend.addr], |c| c.max_connections = 2);
    let mut a = Conn::open(proxy.port());
    let mut b = Conn::open(proxy.port());
    a.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    b.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(a.read(false).status, 200);
    assert_eq!(b.read(false).status, 200);
    let mut third = Conn::open(proxy.port());
    assert!(third.is_closed(), "a third connection is refused");
    drop(a);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(proxy.port(), "/").status, 200);
    proxy.stop();
}

#[test]
fn in_process_drain_finishes_in_flight_requests() {
    let backend = Backend::start(|_| Action::Delay(Duration::from_millis(400), ok("slow")));
    let proxy = ingress(backend.addr);
    let port = proxy.port();
    // A kept-alive connection that served a request and now idles.
    let mut idle = Conn::open(port);
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.read(false).text(), "slow");
    let mut c = Conn::open(port);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    // Connected, its first request not sent yet.
    let mut fresh = Conn::open(port);
    std::thread::sleep(Duration::from_millis(50));
    proxy.drain();
    let r = c.read(false);
    assert_eq!(r.text(), "slow");
    assert!(idle.is_closed(), "idle keep-alive connections are closed");
    // A connection accepted before the drain still gets its first request answered (then is
    // closed): its client could not know the ingress was stopping.
    fresh.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = fresh.read(false);
    assert_eq!(r.text(), "slow");
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(fresh.is_closed());
    proxy.wait();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no longer accepting"
    );
}

// ---- the binary: signals ----

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_binary(args: &[String]) -> (Proc, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_skr8tr_ingress"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin",
            "off",
            "--threads",
            "2",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the binary did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Proc(child), port)
}

fn signal(p: &Proc, sig: &str) {
    let status = Command::new("kill")
        .args(["-s", sig, &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_reloads_the_routes_file_and_keeps_connections() {
    let one = Backend::start(|_| Action::Reply(ok("one")));
    let two = Backend::start(|_| Action::Reply(ok("two")));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes");
    std::fs::write(&file, "/ one\n").unwrap();
    let (proc_, port) = spawn_binary(&[
        "--routes-file".into(),
        file.display().to_string(),
        "--backend".into(),
        format!("one={}", one.addr),
        "--backend".into(),
        format!("two={}", two.addr),
    ]);
    let mut kept = Conn::open(port);
    kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(kept.read(false).text(), "one");
    std::fs::write(&file, "# now two\n/ two\n").unwrap();
    signal(&proc_, "HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(port, "/").text() != "two" {
        assert!(Instant::now() < deadline, "routes not reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The connection opened before the reload still works, with the new routes.
    kept.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(kept.read(false).text(), "two");
    // A bad file keeps the old routes.
    std::fs::write(&file, "not a route line at all\n").unwrap();
    signal(&proc_, "HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(port, "/").text(), "two");
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    let backend = Backend::start(|_| Action::Delay(Duration::from_millis(500), ok("done")));
    let (mut proc_, port) = spawn_binary(&[
        "--route".into(),
        "/:web".into(),
        "--backend".into(),
        format!("web={}", backend.addr),
    ]);
    let finished = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let finished = Arc::clone(&finished);
        clients.push(std::thread::spawn(move || {
            let mut c = Conn::open(port);
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            if c.read(false).text() == "done" {
                finished.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    signal(&proc_, "TERM");
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(
        finished.load(Ordering::SeqCst),
        4,
        "in-flight requests completed"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = proc_.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "new connections refused"
    );
}

#[test]
fn seed_command_line_is_accepted() {
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_skr8tr_ingress"))
        .args([
            "--listen",
            "80",
            "--tower",
            "127.0.0.1",
            "--route",
            "/api:api-service",
            "--route",
            "/:frontend",
            "--help",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let _ = port;
    let bad = Command::new(env!("CARGO_BIN_EXE_skr8tr_ingress"))
        .args(["--listen", "nope", "--route", "/:x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid address"));
}

#[test]
fn static_file_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").unwrap();
    std::fs::write(dir.path().join("app.js"), "x()").unwrap();
    let config = skr8tr_ingress::static_files::ServeConfig::new(
        dir.path().canonicalize().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    );
    let server = skr8tr_ingress::static_files::start(config).unwrap();
    let port = server.local_addr().port();
    let mut c = Conn::open(port);
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read(false);
    assert_eq!((r.status, r.text().as_str()), (200, "<h1>hi</h1>"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    c.send(b"HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read(true);
    assert_eq!(r.header("content-length").as_deref(), Some("3"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    c.send(b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).status, 404);
    c.send(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).status, 405);
    server.stop();
}

#[test]
fn the_admin_listener_serves_metrics_and_healthz_over_http() {
    use std::io::{Read as _, Write as _};
    let backend = Backend::ok();
    let proxy = crate::util::ingress_with(&[backend.addr], |c| {
        c.admin = Some("127.0.0.1:0".parse().unwrap());
    });
    let admin = proxy.admin_addr().expect("admin listener");
    assert_eq!(crate::util::client::get(proxy.port(), "/").status, 200);
    let fetch = |path: &str| {
        let mut s = std::net::TcpStream::connect(admin).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let health = fetch("/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Counters are published every 250 ms.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let metrics = fetch("/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        if metrics.contains("skr8tr_ingress_requests_total") && metrics.contains("2xx") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request counted: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(fetch("/nope").starts_with("HTTP/1.1 404"));
    proxy.stop();
}

#[test]
fn access_log_records_each_response_and_is_reopened_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let backend = Backend::ok();
    let proxy = ingress_with(&[backend.addr], |c| {
        c.access_log = Some(skr8tr_ingress::access::Target::File(path.clone()));
        c.routes
            .push(skr8tr_ingress::route::Route::parse_flag("/api:nobody").unwrap());
    });
    let wait_lines = |path: &std::path::Path, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= n {
                return text;
            }
            assert!(Instant::now() < deadline, "log has {text:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(get(proxy.port(), "/hello?x=1").status, 200);
    assert_eq!(get(proxy.port(), "/api/x").status, 503);
    assert_eq!(
        roundtrip(proxy.port(), b"GET / HTTP/1.1\r\n\r\n").status,
        400
    );
    let text = wait_lines(&path, 3);
    let lines: Vec<&str> = text.lines().collect();
    let upstream = backend.addr.to_string();
    assert!(
        lines[0].contains(" 127.0.0.1 \"GET /hello?x=1 HTTP/1.1\" 200 "),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(&format!(" / {upstream}")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("\"GET /api/x HTTP/1.1\" 503 "),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(" /api -"), "{}", lines[1]);
    assert!(lines[2].contains(" \"-\" 400 "), "{}", lines[2]);
    assert!(lines[2].ends_with(" none -"), "{}", lines[2]);
    // Rotation: move the file away, reopen (SIGHUP), and new lines go to a new file.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    proxy.reopen_access_log();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(proxy.port(), "/after").status, 200);
    let text = wait_lines(&path, 1);
    assert!(text.contains("\"GET /after HTTP/1.1\" 200"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap().lines().count(),
        3
    );
    proxy.stop();
}

/// The binary on the listening socket `listener`, passed as systemd does (fd 3, `LISTEN_PID`,
/// `LISTEN_FDS`): a shell moves it from stdin to fd 3 and execs the ingress in its own pid.
fn spawn_activated(listener: &std::net::TcpListener, epoll: bool, args: &[String]) -> Proc {
    let fd = std::os::fd::OwnedFd::from(listener.try_clone().unwrap());
    let child = Command::new("sh")
        .args([
            "-c",
            "exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_skr8tr_ingress"),
            "--listen",
            "127.0.0.1:1",
            "--admin",
            "off",
            "--threads",
            "2",
        ])
        .args(args)
        .env("SKR8TR_FORCE_EPOLL", if epoll { "1" } else { "0" })
        .stdin(Stdio::from(fd))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

#[test]
fn a_socket_activated_ingress_restarts_without_refusing_a_connection() {
    for epoll in [false, true] {
        let backend = Backend::start(|_| Action::Reply(ok("up")));
        // The socket systemd would hold: bound and listening before any ingress runs.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let args = [
            "--route".to_owned(),
            "/:web".to_owned(),
            "--backend".to_owned(),
            format!("web={}", backend.addr),
        ];
        let mut first = spawn_activated(&listener, epoll, &args);
        assert_eq!(
            get(port, "/").text(),
            "up",
            "served through the passed socket"
        );
        // Clients keep connecting, one request per connection, while the ingress restarts.
        let stop = Arc::new(AtomicBool::new(false));
        let (ok_n, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let clients: Vec<_> = (0..2)
            .map(|_| {
                let (stop, ok_n, failed) = (stop.clone(), ok_n.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let answered = TcpStream::connect(("127.0.0.1", port)).ok().and_then(|s| {
                            let mut c = Conn::over(s);
                            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                            c.try_read(false)
                        });
                        match answered {
                            Some(r) if r.status == 200 => ok_n.fetch_add(1, Ordering::SeqCst),
                            _ => failed.fetch_add(1, Ordering::SeqCst),
                        };
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        signal(&first, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while first.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the first ingress did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        // The gap between the two: connections queue in the socket's backlog.
        std::thread::sleep(Duration::from_millis(200));
        let _second = spawn_activated(&listener, epoll, &args);
        std::thread::sleep(Duration::from_millis(700));
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            c.join().unwrap();
        }
        let (ok_n, failed) = (ok_n.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
        assert_eq!(
            failed,
            0,
            "{failed} of {} requests failed across the restart",
            ok_n + failed
        );
        assert!(ok_n > 20, "too few requests to mean anything: {ok_n}");
        let _ = first.0.wait();
    }
}
