//! The Tower daemon on loopback: the seed's exchange, TTL expiry, WATCH pushes, mesh
//! authentication, and garbage that must never crash it or be answered — on both drivers.

use std::net::UdpSocket;
use std::time::Duration;

use skr8tr_control::tower::server::{TowerConfig, run};
use skr8tr_daemon::Gate;
use skr8tr_proto::auth::{KeyRole, SigningKey, SystemClock, Verifier, sign_command};

use crate::util::{Running, ask, ask_within, eventually, start};

fn tower(epoll: bool, config: TowerConfig) -> Running {
    start(
        "tower",
        epoll,
        1,
        move |_driver, mut sockets, stop| async move {
            let socket = sockets.remove(0);
            run(socket, config, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        },
    )
}

#[test]
fn seed_exchange_and_ttl_on_both_drivers() {
    for epoll in [false, true] {
        let t = tower(
            epoll,
            TowerConfig {
                default_ttl: Duration::from_secs(1),
                admin: None,
                ..TowerConfig::dev()
            },
        );
        let a = t.addr();
        assert_eq!(ask(a, "PING"), "OK|PONG|tower");
        assert_eq!(ask(a, "REGISTER|api|127.0.0.1|8080"), "OK|REGISTERED|api");
        assert_eq!(
            ask(a, "REGISTER|api|127.0.0.1|8081|30"),
            "OK|REGISTERED|api"
        );
        assert_eq!(ask(a, "LOOKUP|api"), "OK|LOOKUP|api|127.0.0.1|8080");
        assert_eq!(ask(a, "LOOKUP|api"), "OK|LOOKUP|api|127.0.0.1|8081");
        // The 1 s entry expires; the 30 s one stays.
        eventually(Duration::from_secs(5), "expiry", || {
            ask(a, "LIST")
                .starts_with("OK|LIST|1|api:127.0.0.1:8081:")
                .then_some(())
        });
        assert_eq!(ask(a, "LOOKUP|nope"), "ERR|NOT_FOUND|nope");
    }
}

#[test]
fn watchers_get_versioned_updates_and_drain_acks_count() {
    let t = tower(false, TowerConfig::dev());
    let a = t.addr();
    let edge = UdpSocket::bind("127.0.0.1:0").unwrap();
    edge.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut recv = || {
        let (n, _) = edge.recv_from(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    edge.send_to(b"WATCH|api|10", a).unwrap();
    assert_eq!(recv(), "OK|WATCHING|10");
    assert_eq!(
        recv(),
        "UPDATE|api|0|0|",
        "a service never registered is at version 0"
    );
    ask(a, "REGISTER|api|127.0.0.1|9001");
    // Versions start above the Tower's epoch (its start time), so a restarted Tower's are newer.
    let first = recv();
    let v1 = version_in(&first, 2);
    assert!(v1 > 1_000_000, "{first}");
    assert_eq!(first, format!("UPDATE|api|{v1}|1|127.0.0.1:9001"));
    ask(a, "DEREGISTER|api|127.0.0.1|9001");
    let v2 = v1 + 1;
    assert_eq!(recv(), format!("UPDATE|api|{v2}|0|"));
    assert_eq!(
        ask(a, &format!("DRAINED|api|{v2}")),
        format!("OK|DRAINED|api|{v2}|0|0|1")
    );
    edge.send_to(format!("ACK|api|{v2}|1").as_bytes(), a)
        .unwrap();
    assert_eq!(recv(), format!("OK|ACKED|api|{v2}"));
    assert_eq!(
        ask(a, &format!("DRAINED|api|{v2}")),
        format!("OK|DRAINED|api|{v2}|1|1|1")
    );
}

/// The `index`th `|`-field of `text` as a version number.
fn version_in(text: &str, index: usize) -> u64 {
    text.split('|')
        .nth(index)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no version at field {index} of {text}"))
}

#[test]
fn a_restarted_towers_versions_are_newer() {
    let first = tower(false, TowerConfig::dev());
    let a = first.addr();
    for port in 1..=20 {
        ask(a, &format!("REGISTER|api|127.0.0.1|{port}"));
    }
    let published = ask(a, "PUBLISH_ROUTES|api|1|-:/:-:-:-:-:-");
    let old_routes = version_in(&published, 3);
    let edge = UdpSocket::bind("127.0.0.1:0").unwrap();
    edge.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = vec![0u8; 65536];
    edge.send_to(b"WATCH|api|10", a).unwrap();
    let mut old_backends = 0;
    while old_backends == 0 {
        let (n, _) = edge.recv_from(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("UPDATE|") {
            old_backends = version_in(&text, 2);
        }
    }
    drop(first);
    std::thread::sleep(Duration::from_millis(5));
    let second = tower(false, TowerConfig::dev());
    let b = second.addr();
    ask(b, "REGISTER|api|127.0.0.1|1");
    let published = ask(b, "PUBLISH_ROUTES|api|0|");
    assert_eq!(published, "OK|PUBLISHED|api|0", "nothing to withdraw yet");
    let published = ask(b, "PUBLISH_ROUTES|api|1|-:/:-:-:-:-:-");
    assert!(version_in(&published, 3) > old_routes, "{published}");
    edge.send_to(b"WATCH|api|10", b).unwrap();
    loop {
        let (n, _) = edge.recv_from(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("UPDATE|") {
            assert!(version_in(&text, 2) > old_backends, "{text}");
            break;
        }
    }
}

#[test]
fn with_a_mesh_key_unsigned_and_forged_mutations_change_nothing() {
    let (mesh, public) = SigningKey::generate().unwrap();
    let (other, _) = SigningKey::generate().unwrap();
    let config = TowerConfig {
        gate: Gate::new(Some(Verifier::new(KeyRole::Mesh, [public]))),
        mesh_key: None,
        default_ttl: Duration::from_secs(30),
        admin: None,
    };
    let t = tower(false, config);
    let a = t.addr();
    assert_eq!(ask(a, "REGISTER|api|127.0.0.1|8080"), "ERR|UNAUTHORIZED");
    let forged = sign_command(&other, "REGISTER|api|127.0.0.1|8080", SystemClock::now()).unwrap();
    assert_eq!(ask(a, &forged), "ERR|UNAUTHORIZED");
    let stale = sign_command(
        &mesh,
        "REGISTER|api|127.0.0.1|8080",
        SystemClock::now() - 31,
    )
    .unwrap();
    assert_eq!(ask(a, &stale), "ERR|UNAUTHORIZED");
    assert_eq!(ask(a, "LIST"), "OK|LIST|0|", "nothing registered");
    let good = sign_command(&mesh, "REGISTER|api|127.0.0.1|8080", SystemClock::now()).unwrap();
    assert_eq!(ask(a, &good), "OK|REGISTERED|api");
    assert_eq!(ask(a, &good), "ERR|UNAUTHORIZED", "a replay is refused");
    assert_eq!(
        ask(a, "LOOKUP|api"),
        "OK|LOOKUP|api|127.0.0.1|8080",
        "lookups need no key"
    );
}

#[test]
fn garbage_truncated_oversized_and_replies_are_never_answered() {
    let t = tower(false, TowerConfig::dev());
    let a = t.addr();
    let big = vec![b'A'; 65_000];
    let cases: Vec<&[u8]> = vec![
        b"",
        b"\xff\xfe\x00garbage",
        b"REGISTER|api",
        b"REGISTER|a|b|c|d|e|f",
        b"REGISTER|api|not-an-ip|80",
        b"REGISTER|a|b\n",
        b"OK|PONG|tower",
        b"ERR|UNAUTHORIZED",
        b"UPDATE|api|1|0",
        &big,
    ];
    for case in &cases {
        assert_eq!(
            ask_within(a, case, Duration::from_millis(150)),
            None,
            "answered {:?}",
            String::from_utf8_lossy(&case[..case.len().min(40)])
        );
    }
    assert_eq!(ask(a, "PING"), "OK|PONG|tower", "still alive");
}

#[test]
fn route_watchers_get_versioned_pushes_on_both_drivers() {
    for epoll in [false, true] {
        let t = tower(epoll, TowerConfig::dev());
        let a = t.addr();
        let edge = UdpSocket::bind("127.0.0.1:0").unwrap();
        edge.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut recv = || {
            let (n, _) = edge.recv_from(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let published = ask(a, "PUBLISH_ROUTES|api|1|api.example.com:/api:s:-:-:-:-");
        let api1 = version_in(&published, 3);
        assert_eq!(published, format!("OK|PUBLISHED|api|{api1}"));
        edge.send_to(b"WATCH_ROUTES|10", a).unwrap();
        assert_eq!(recv(), "OK|WATCHING|10");
        assert_eq!(
            recv(),
            format!("ROUTES_UPDATE|api|{api1}|1|api.example.com:/api:s:-:-:-:-")
        );
        edge.send_to(format!("ACK_ROUTES|api|{api1}").as_bytes(), a)
            .unwrap();
        assert_eq!(recv(), format!("OK|ACKED_ROUTES|api|{api1}"));
        let published = ask(a, "PUBLISH_ROUTES|web|1|-:/:-:-:-:-:-");
        let web1 = version_in(&published, 3);
        assert_eq!(web1, api1, "every app starts at the same epoch");
        assert_eq!(recv(), format!("ROUTES_UPDATE|web|{web1}|1|-:/:-:-:-:-:-"));
        // Not acknowledged: the Tower sends it again.
        assert_eq!(recv(), format!("ROUTES_UPDATE|web|{web1}|1|-:/:-:-:-:-:-"));
        edge.send_to(format!("ACK_ROUTES|web|{web1}").as_bytes(), a)
            .unwrap();
        assert_eq!(recv(), format!("OK|ACKED_ROUTES|web|{web1}"));
        let api2 = api1 + 1;
        assert_eq!(
            ask(a, "PUBLISH_ROUTES|api|0|"),
            format!("OK|PUBLISHED|api|{api2}")
        );
        assert_eq!(recv(), format!("ROUTES_UPDATE|api|{api2}|0|"));
        assert_eq!(ask(a, "ROUTES"), "OK|ROUTES|1|web:-:/:-:-:-:-:-");
    }
}

#[test]
fn with_a_mesh_key_routes_are_published_only_signed() {
    let (mesh, public) = SigningKey::generate().unwrap();
    let (other, _) = SigningKey::generate().unwrap();
    let config = TowerConfig {
        gate: Gate::new(Some(Verifier::new(KeyRole::Mesh, [public]))),
        mesh_key: None,
        default_ttl: Duration::from_secs(30),
        admin: None,
    };
    let t = tower(false, config);
    let a = t.addr();
    let publish = "PUBLISH_ROUTES|api|1|-:/:-:-:-:-:-";
    assert_eq!(ask(a, publish), "ERR|UNAUTHORIZED");
    let forged = sign_command(&other, publish, SystemClock::now()).unwrap();
    assert_eq!(ask(a, &forged), "ERR|UNAUTHORIZED");
    assert_eq!(ask(a, "WATCH_ROUTES|10"), "ERR|UNAUTHORIZED");
    assert_eq!(ask(a, "ROUTES"), "OK|ROUTES|0|", "reading needs no key");
    let good = sign_command(&mesh, publish, SystemClock::now()).unwrap();
    assert!(ask(a, &good).starts_with("OK|PUBLISHED|api|"));
    assert_eq!(ask(a, "ROUTES"), "OK|ROUTES|1|api:-:/:-:-:-:-:-");
}

#[test]
fn the_admin_listener_counts_entries_watchers_pushes_acks_and_refusals() {
    let (_mesh, public) = SigningKey::generate().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = listener.local_addr().unwrap();
    let dev = tower(
        false,
        TowerConfig {
            admin: Some(listener),
            ..TowerConfig::dev()
        },
    );
    let a = dev.addr();
    ask(a, "REGISTER|api|127.0.0.1|9001");
    ask(a, "REGISTER|api|127.0.0.1|9002");
    ask(a, "REGISTER|web|127.0.0.1|9003");
    let edge = UdpSocket::bind("127.0.0.1:0").unwrap();
    edge.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    edge.send_to(b"WATCH|api|10", a).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut version = 0;
    while version == 0 {
        let (n, _) = edge.recv_from(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("UPDATE|") {
            version = version_in(&text, 2);
        }
    }
    edge.send_to(format!("ACK|api|{version}|1").as_bytes(), a)
        .unwrap();
    let metric = |line: &str| {
        eventually(Duration::from_secs(5), line, || {
            let (status, text) = crate::util::http(admin, "GET", "/metrics");
            assert_eq!(status, 200);
            text.lines().any(|l| l == line).then_some(())
        });
    };
    metric("skr8tr_tower_entries 3");
    metric("skr8tr_tower_services 2");
    metric("skr8tr_tower_watchers{kind=\"backends\"} 1");
    metric("skr8tr_tower_watchers{kind=\"routes\"} 0");
    metric("skr8tr_tower_requests_total{verb=\"REGISTER\",result=\"ok\"} 3");
    metric("skr8tr_tower_pushes_total{verb=\"UPDATE\"} 1");
    metric("skr8tr_tower_acks_total{kind=\"backends\"} 1");
    assert_eq!(crate::util::http(admin, "GET", "/healthz").0, 200);
    assert_eq!(crate::util::http(admin, "POST", "/metrics").0, 405);
    drop(dev);

    // With a mesh key, refusals are counted by reason.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = listener.local_addr().unwrap();
    let keyed = tower(
        false,
        TowerConfig {
            gate: Gate::new(Some(Verifier::new(KeyRole::Mesh, [public]))),
            admin: Some(listener),
            ..TowerConfig::dev()
        },
    );
    assert_eq!(
        ask(keyed.addr(), "REGISTER|api|127.0.0.1|80"),
        "ERR|UNAUTHORIZED"
    );
    let (other, _) = SigningKey::generate().unwrap();
    let forged = sign_command(&other, "REGISTER|api|127.0.0.1|80", SystemClock::now()).unwrap();
    assert_eq!(ask(keyed.addr(), &forged), "ERR|UNAUTHORIZED");
    eventually(Duration::from_secs(5), "refusals counted", || {
        let (_, text) = crate::util::http(admin, "GET", "/metrics");
        (text.contains("skr8tr_tower_auth_rejections_total{reason=\"unsigned\"} 1")
            && text.contains("skr8tr_tower_auth_rejections_total{reason=\"bad_signature\"} 1"))
        .then_some(())
    });
}
