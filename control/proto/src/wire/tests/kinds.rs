//! How requests are told from replies (`classify`) and who must sign each request
//! (`Request::auth`, SPEC §3).

use super::{app, rid, svc};
use crate::wire::*;

fn path(s: &str) -> ManifestSource {
    ManifestSource::Path(HostPath::new(s).unwrap())
}

#[test]
fn classify_needs_no_decoding() {
    for reply in [
        "OK|PONG|tower",
        "ERR|UNAUTHORIZED",
        "OK",
        "ERR",
        "OK|",
        "ERR|x|y",
        "OK|\u{ff}",
    ] {
        assert_eq!(classify(reply.as_bytes()), Kind::Reply, "{reply}");
    }
    let requests: [&[u8]; 10] = [
        b"PING",
        b"OKAY|x",
        b"ERRX",
        b"ok|x",
        b"",
        b"\xff\xfe",
        b"|OK",
        b"UPDATE|api|1|0|",
        b" OK|x",
        b"OK\n",
    ];
    for request in requests {
        assert_eq!(classify(request), Kind::Request, "{request:?}");
    }
    // A signed request is still a request: the signature is appended at the end.
    assert_eq!(
        classify(b"SUBMIT|/opt/apps/api.skr8tr|1743890400|3a4f8b2c"),
        Kind::Request
    );
}

#[test]
fn verbs_and_auth_follow_spec_section_3() {
    use ConductorRequest as C;
    let signed = [
        C::Submit(path("/a")),
        C::Evict(app("a")),
        C::Rollout(path("/a")),
        C::Scale {
            app: app("a"),
            replicas: 1,
        },
        C::Logs {
            app: app("a"),
            replica: None,
        },
        C::Exec {
            app: app("a"),
            cmd: "x".into(),
        },
    ];
    for msg in signed {
        assert_eq!(msg.auth(), Auth::Operator, "{msg:?}");
    }
    let open = [
        C::List,
        C::Status { app: None },
        C::Apps,
        C::Nodes,
        C::Ping,
        C::RolloutStatus(app("a")),
        C::Events {
            after: 3,
            app: Some(app("a")),
        },
        C::History(app("a")),
    ];
    for msg in open {
        assert_eq!(msg.auth(), Auth::Unsigned, "{msg:?}");
    }
    let (n, r) = (super::node("n"), rid("r"));
    let kill = NodeRequest::Kill {
        node: n.clone(),
        replica: r.clone(),
    };
    assert_eq!(kill.auth(), Auth::Mesh);
    assert_eq!(kill.target(), Some(&n));
    let logs = NodeRequest::Logs {
        node: n.clone(),
        replica: r,
    };
    assert_eq!(logs.auth(), Auth::Mesh);
    assert_eq!(logs.target(), Some(&n));
    assert_eq!(NodeRequest::Status.target(), None);
    assert_eq!(NodeRequest::Ping.target(), None);
    assert_eq!(
        NodeRequest::Exec {
            node: n,
            replica: rid("r"),
            timeout_ms: 1,
            cmd: String::new()
        }
        .auth(),
        Auth::Mesh
    );
    assert_eq!(NodeRequest::Status.auth(), Auth::Unsigned);
    assert_eq!(NodeRequest::Ping.auth(), Auth::Unsigned);
    assert_eq!(
        TowerRequest::Watch {
            services: vec![],
            lease_s: 1
        }
        .auth(),
        Auth::Mesh
    );
    assert_eq!(
        TowerRequest::Ack {
            service: svc("a"),
            version: 1,
            drained: true
        }
        .auth(),
        Auth::Mesh
    );
    assert_eq!(TowerRequest::Lookup(svc("a")).auth(), Auth::Unsigned);
    assert_eq!(
        TowerRequest::Drained {
            service: svc("a"),
            version: 1
        }
        .auth(),
        Auth::Unsigned
    );
    let push = TowerPush::Update {
        service: svc("a"),
        version: 1,
        backends: vec![],
    };
    assert_eq!((push.verb(), push.auth()), ("UPDATE", Auth::Mesh));
    // Publishing routes and watching them are the mesh's; reading the table is not.
    let app = app("a");
    assert_eq!(
        TowerRequest::PublishRoutes {
            app: app.clone(),
            routes: vec![]
        }
        .auth(),
        Auth::Mesh
    );
    assert_eq!(TowerRequest::WatchRoutes { lease_s: 1 }.auth(), Auth::Mesh);
    assert_eq!(
        TowerRequest::AckRoutes {
            app: app.clone(),
            version: 1
        }
        .auth(),
        Auth::Mesh
    );
    assert_eq!(TowerRequest::Routes.auth(), Auth::Unsigned);
    let push = RoutesUpdate {
        app,
        version: 1,
        routes: vec![],
    };
    assert_eq!((push.verb(), push.auth()), ("ROUTES_UPDATE", Auth::Mesh));
}

#[test]
fn auth_names_the_key_role() {
    use crate::auth::KeyRole;
    assert_eq!(Auth::Unsigned.key_role(), None);
    assert_eq!(Auth::Operator.key_role(), Some(KeyRole::Operator));
    assert_eq!(Auth::Mesh.key_role(), Some(KeyRole::Mesh));
}
