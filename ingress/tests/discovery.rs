//! Backends from a Tower: a fake Tower (a UDP socket in the test) receives WATCH, pushes
//! UPDATEs and checks the ACKs; with a mesh key, unsigned pushes are dropped.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use skr8tr_proto::auth::{KeyRole, SigningKey, Verifier, sign_command};

use crate::util::backend::{Action, Backend, ok};
use crate::util::client::{Conn, get};
use crate::util::ingress_with;

struct FakeTower {
    socket: UdpSocket,
    verifier: Option<Verifier>,
    key: Option<SigningKey>,
}

impl FakeTower {
    fn new(key: Option<SigningKey>) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let verifier = key
            .as_ref()
            .map(|k| Verifier::new(KeyRole::Mesh, [k.verifying_key()]));
        Self {
            socket,
            verifier,
            key,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next datagram starting with `verb` (verified when keyed), and its sender.
    fn expect(&mut self, verb: &str, within: Duration) -> (String, SocketAddr) {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8(buf[..n].to_vec()).unwrap();
            let cmd = match self.verifier.as_mut() {
                Some(v) => v.verify(&text).expect("mesh-signed").to_owned(),
                None => text,
            };
            if cmd.starts_with(verb) {
                return (cmd, from);
            }
        }
        panic!("no {verb} within {within:?}");
    }

    fn push(&self, to: SocketAddr, cmd: &str, signed: bool) {
        let datagram = match (&self.key, signed) {
            (Some(k), true) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                sign_command(k, cmd, now).unwrap()
            }
            _ => cmd.to_owned(),
        };
        self.socket.send_to(datagram.as_bytes(), to).unwrap();
    }
}

#[test]
fn watch_update_route_and_ack_after_drain() {
    let slow_started = Arc::new(AtomicU64::new(0));
    let flag = Arc::clone(&slow_started);
    let a = Backend::start(move |req| {
        if req.head.starts_with("GET /slow") {
            flag.store(1, Ordering::SeqCst);
            Action::Delay(Duration::from_millis(800), ok("a-slow"))
        } else {
            Action::Reply(ok("a"))
        }
    });
    let b = Backend::start(|_| Action::Reply(ok("b")));
    let mut tower = FakeTower::new(None);
    let proxy = ingress_with(&[], |c| c.tower = Some(tower.addr()));
    let (watch, ingress_addr) = tower.expect("WATCH|", Duration::from_secs(3));
    assert_eq!(watch, "WATCH|web|30");
    tower.push(ingress_addr, "OK|WATCHING|30", false);
    assert_eq!(
        get(proxy.port(), "/").status,
        503,
        "no backend before the first UPDATE"
    );

    tower.push(ingress_addr, &format!("UPDATE|web|1|1|{}", a.addr), false);
    let (ack, _) = tower.expect("ACK|web|1|", Duration::from_secs(3));
    assert_eq!(ack, "ACK|web|1|1");
    tower.push(ingress_addr, "OK|ACKED|web|1", false);
    assert_eq!(get(proxy.port(), "/").text(), "a");

    // A request in flight to `a` when version 2 removes it: ACK 0 now, ACK 1 once it ends.
    let port = proxy.port();
    let slow = std::thread::spawn(move || get(port, "/slow").text());
    while slow_started.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    tower.push(ingress_addr, &format!("UPDATE|web|2|1|{}", b.addr), false);
    let (ack, _) = tower.expect("ACK|web|2|", Duration::from_secs(3));
    assert_eq!(ack, "ACK|web|2|0", "still in flight to the removed backend");
    assert_eq!(get(proxy.port(), "/").text(), "b");
    let (ack, _) = tower.expect("ACK|web|2|1", Duration::from_secs(3));
    assert_eq!(ack, "ACK|web|2|1");
    assert_eq!(
        slow.join().unwrap(),
        "a-slow",
        "the in-flight request completed"
    );
    tower.push(ingress_addr, "OK|ACKED|web|2", false);

    // An older version is ignored; the Tower going silent keeps the last set.
    tower.push(ingress_addr, &format!("UPDATE|web|1|1|{}", a.addr), false);
    drop(tower);
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        assert_eq!(get(proxy.port(), "/").text(), "b");
    }
    proxy.stop();
}

#[test]
fn with_a_mesh_key_watch_is_signed_and_unsigned_updates_are_dropped() {
    let backend = Backend::start(|_| Action::Reply(ok("signed")));
    let (key, _) = SigningKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("mesh.sec");
    key.save(&key_file, false).unwrap();
    let mut tower = FakeTower::new(Some(SigningKey::load(&key_file).unwrap()));
    let proxy = ingress_with(&[], |c| {
        c.tower = Some(tower.addr());
        c.mesh_key = Some(key_file.clone());
    });
    let (watch, ingress_addr) = tower.expect("WATCH|", Duration::from_secs(3));
    assert_eq!(watch, "WATCH|web|30");
    tower.push(
        ingress_addr,
        &format!("UPDATE|web|1|1|{}", backend.addr),
        false,
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(proxy.port(), "/").status,
        503,
        "an unsigned UPDATE is dropped"
    );
    tower.push(
        ingress_addr,
        &format!("UPDATE|web|1|1|{}", backend.addr),
        true,
    );
    let (ack, _) = tower.expect("ACK|web|1|1", Duration::from_secs(3));
    assert_eq!(ack, "ACK|web|1|1");
    let mut c = Conn::open(proxy.port());
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).text(), "signed");
    proxy.stop();
}

#[test]
fn a_reload_naming_a_new_service_watches_it_and_a_bad_file_is_kept_out() {
    let api = Backend::start(|req| {
        Action::Reply(ok(&format!(
            "api saw {}",
            req.head.lines().next().unwrap_or("")
        )))
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.routes");
    std::fs::write(&file, "route / web\n").unwrap();
    let mut tower = FakeTower::new(None);
    let proxy = ingress_with(&[], |c| {
        c.routes.clear();
        c.routes_file = Some(file.clone());
        c.tower = Some(tower.addr());
    });
    let (watch, ingress_addr) = tower.expect("WATCH|", Duration::from_secs(3));
    assert_eq!(watch, "WATCH|web|30");
    tower.push(ingress_addr, "OK|WATCHING|30", false);

    // The reload names `api`, never watched: it is watched at once and served once the Tower
    // sends its backends (before this fix: 503 until a restart).
    std::fs::write(
        &file,
        "route / web\nroute api.example.com/api {\n  service api\n  strip-prefix\n}\n",
    )
    .unwrap();
    proxy.reload_routes().unwrap();
    let (watch, _) = tower.expect("WATCH|", Duration::from_secs(3));
    assert_eq!(watch, "WATCH|web,api|30");
    tower.push(ingress_addr, &format!("UPDATE|api|1|1|{}", api.addr), false);
    tower.expect("ACK|api|1|", Duration::from_secs(3));
    let mut c = Conn::open(proxy.port());
    c.send(b"GET /api/users?x=1 HTTP/1.1\r\nHost: API.example.com:8080\r\n\r\n");
    assert_eq!(c.read(false).text(), "api saw GET /users?x=1 HTTP/1.1");

    // A bad file is refused with its position, and the routes in force stay.
    std::fs::write(&file, "route / web\nroute /x {\n  servce x\n}\n").unwrap();
    let err = proxy.reload_routes().unwrap_err().to_string();
    assert!(
        err.ends_with(
            "edge.routes:3:3: unknown key `servce` in the `route` block; did you mean `service`?"
        ),
        "{err}"
    );
    let mut c = Conn::open(proxy.port());
    c.send(b"GET /api HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    assert_eq!(c.read(false).text(), "api saw GET / HTTP/1.1");
    proxy.stop();
}
