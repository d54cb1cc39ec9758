//! Bad datagrams are refused, each with the variant of [`WireError`] that names what is wrong.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::refused;
use crate::name::NameError;
use crate::wire::*;

/// Asserts `err` is a `BadField` of `field`.
#[track_caller]
fn bad_field(err: WireError, field: &str) {
    match err {
        WireError::BadField { field: f, .. } if f == field => {}
        other => panic!("expected BadField of `{field}`, got {other:?}"),
    }
}

/// Asserts `err` is a `BadName` of `field` for `reason`.
#[track_caller]
fn bad_name(err: WireError, field: &str, reason: &NameError) {
    match err {
        WireError::BadName {
            field: f, source, ..
        } if f == field && &source == reason => {}
        other => panic!("expected BadName of `{field}` ({reason:?}), got {other:?}"),
    }
}

#[test]
fn datagram_level_errors_are_the_same_for_every_decoder() {
    fn check<M: Message + std::fmt::Debug>() {
        assert_eq!(refused::<M>(b""), WireError::Empty);
        assert_eq!(refused::<M>(b"PING\xff"), WireError::NotUtf8);
        assert_eq!(refused::<M>(b"OK|\xc3"), WireError::NotUtf8);
        let huge = vec![b'A'; MAX_DATAGRAM + 1];
        assert_eq!(
            refused::<M>(&huge),
            WireError::TooLarge {
                len: MAX_DATAGRAM + 1,
                max: MAX_DATAGRAM
            }
        );
    }
    check::<ConductorRequest>();
    check::<ConductorReply>();
    check::<NodeRequest>();
    check::<NodeReply>();
    check::<TowerRequest>();
    check::<TowerReply>();
    check::<TowerPush>();
    check::<RoutesUpdate>();
    check::<MeshEvent>();
}

#[test]
fn the_size_limit_is_inclusive() {
    let head = "EXEC|api|";
    let at_limit = format!("{head}{}", "x".repeat(MAX_DATAGRAM - head.len()));
    assert_eq!(at_limit.len(), MAX_DATAGRAM);
    assert!(ConductorRequest::decode(at_limit.as_bytes()).is_ok());
    let over = format!("{at_limit}x");
    assert_eq!(
        refused::<ConductorRequest>(&over),
        WireError::TooLarge {
            len: MAX_DATAGRAM + 1,
            max: MAX_DATAGRAM
        }
    );
    let msg = ConductorRequest::Exec {
        app: super::app("api"),
        cmd: "x".repeat(MAX_DATAGRAM),
    };
    assert!(matches!(
        msg.encode_within(MAX_DATAGRAM),
        Err(WireError::TooLarge { .. })
    ));
    assert_eq!(
        ConductorRequest::Ping
            .encode_within(MAX_SIGNED_MESSAGE)
            .as_deref(),
        Ok("PING")
    );
    assert_eq!(MAX_SIGNED_MESSAGE + SIGNATURE_OVERHEAD, MAX_DATAGRAM);
}

#[test]
fn unknown_verbs() {
    let unknown = |verb: &str| WireError::UnknownVerb {
        verb: verb.to_owned(),
    };
    assert_eq!(refused::<ConductorRequest>("FOO"), unknown("FOO"));
    assert_eq!(refused::<ConductorRequest>("list"), unknown("list"));
    assert_eq!(refused::<ConductorRequest>(" LIST"), unknown(" LIST"));
    assert_eq!(refused::<ConductorRequest>("|LIST"), unknown(""));
    assert_eq!(
        refused::<ConductorRequest>("LAUNCH|r|1|x"),
        unknown("LAUNCH")
    );
    assert_eq!(refused::<NodeRequest>("SUBMIT|/a"), unknown("SUBMIT"));
    assert_eq!(
        refused::<TowerRequest>("UPDATE|api|1|0|"),
        unknown("UPDATE")
    );
    assert_eq!(refused::<TowerPush>("WATCH|api|30"), unknown("WATCH"));
    assert_eq!(refused::<MeshEvent>("PING"), unknown("PING"));
    // A reply is not a request, and the other way round.
    assert_eq!(
        refused::<ConductorRequest>("OK|PONG|conductor"),
        unknown("OK")
    );
    assert_eq!(refused::<ConductorReply>("PING"), unknown("PING"));
    assert_eq!(refused::<ConductorReply>("OK|BOGUS|x"), unknown("OK|BOGUS"));
    assert_eq!(
        refused::<ConductorReply>("OK|LAUNCHED|r|1|0"),
        unknown("OK|LAUNCHED")
    );
    assert_eq!(
        refused::<NodeReply>("OK|SUBMITTED|api|n"),
        unknown("OK|SUBMITTED")
    );
    assert_eq!(
        refused::<TowerReply>("OK|EVICTED|api"),
        unknown("OK|EVICTED")
    );
    // Long verbs are quoted only in part.
    let long = "X".repeat(1000);
    assert_eq!(refused::<ConductorRequest>(&long), unknown(&"X".repeat(32)));
}

#[test]
fn missing_fields() {
    let missing = |verb, field| WireError::MissingField { verb, field };
    assert_eq!(
        refused::<ConductorRequest>("EVICT"),
        missing("EVICT", "app")
    );
    assert_eq!(
        refused::<ConductorRequest>("SUBMIT"),
        missing("SUBMIT", "source")
    );
    assert_eq!(
        refused::<ConductorRequest>("SCALE|api"),
        missing("SCALE", "replicas")
    );
    assert_eq!(
        refused::<ConductorRequest>("EXEC|api"),
        missing("EXEC", "cmd")
    );
    assert_eq!(refused::<ConductorReply>("OK"), missing("OK", "tag"));
    assert_eq!(
        refused::<ConductorReply>("OK|LIST"),
        missing("OK|LIST", "n")
    );
    assert_eq!(
        refused::<ConductorReply>("OK|LIST|2"),
        missing("OK|LIST", "entries")
    );
    assert_eq!(
        refused::<ConductorReply>("OK|SUBMITTED|api"),
        missing("OK|SUBMITTED", "nodes")
    );
    assert_eq!(
        refused::<ConductorReply>("OK|PONG"),
        missing("OK|PONG", "who")
    );
    assert_eq!(
        refused::<ConductorReply>("OK|EXEC|r|0"),
        missing("OK|EXEC", "output")
    );
    assert_eq!(
        refused::<ConductorReply>("OK|LOGS|r|2"),
        missing("OK|LOGS", "lines")
    );
    assert_eq!(
        refused::<ConductorReply>("OK|ROLLOUT_STATUS|a|running|1|3"),
        missing("OK|ROLLOUT_STATUS", "detail")
    );
    assert_eq!(
        refused::<MeshEvent>("HEARTBEAT|n|1"),
        missing("HEARTBEAT", "ram_free_mb")
    );
    assert_eq!(
        refused::<MeshEvent>("HEARTBEAT|n|1|2|10.0.0.1"),
        missing("HEARTBEAT", "agent_port")
    );
    assert_eq!(
        refused::<MeshEvent>("HEARTBEAT|n|1|2|10.0.0.1|7775|3|4|5"),
        missing("HEARTBEAT", "replicas")
    );
    assert_eq!(
        refused::<MeshEvent>("DIED|n|r|a|0"),
        missing("DIED", "restarting")
    );
    assert_eq!(
        refused::<NodeRequest>("LAUNCH|n|r|1"),
        missing("LAUNCH", "app")
    );
    assert_eq!(
        refused::<NodeRequest>("EXEC|n|r|100"),
        missing("EXEC", "cmd")
    );
    // The seed-era forms without the target node are refused, never misread.
    assert_eq!(
        refused::<NodeRequest>("KILL|r"),
        missing("KILL", "replica_id")
    );
    assert_eq!(
        refused::<NodeRequest>("LOGS|r"),
        missing("LOGS", "replica_id")
    );
    assert_eq!(
        refused::<NodeReply>("OK|LAUNCHED|r|1"),
        missing("OK|LAUNCHED", "port")
    );
    assert_eq!(
        refused::<TowerRequest>("REGISTER|api|10.0.0.1"),
        missing("REGISTER", "port")
    );
    assert_eq!(
        refused::<TowerRequest>("WATCH|api"),
        missing("WATCH", "lease_s")
    );
    assert_eq!(
        refused::<TowerRequest>("ACK|api|1"),
        missing("ACK", "drained")
    );
    assert_eq!(
        refused::<TowerReply>("OK|DRAINED|api|1|1|0"),
        missing("OK|DRAINED", "subscribers")
    );
    assert_eq!(
        refused::<TowerPush>("UPDATE|api|1|1"),
        missing("UPDATE", "backends")
    );
    assert_eq!(
        refused::<RoutesUpdate>("ROUTES_UPDATE|api|1|1"),
        missing("ROUTES_UPDATE", "routes")
    );
    assert_eq!(
        refused::<TowerRequest>("PUBLISH_ROUTES|api"),
        missing("PUBLISH_ROUTES", "n")
    );
    assert_eq!(
        refused::<TowerRequest>("ACK_ROUTES|api"),
        missing("ACK_ROUTES", "version")
    );
}

#[test]
fn bad_routes_are_refused() {
    for text in [
        "PUBLISH_ROUTES|api|1|-:api:-:-:-:-:-",
        "PUBLISH_ROUTES|api|1|a_b.com:/:-:-:-:-:-",
        "PUBLISH_ROUTES|api|1|-:/%3F:-:-:-:-:-",
        "PUBLISH_ROUTES|api|1|-:/:-:0:-:-:-",
        "PUBLISH_ROUTES|api|2|-:/:-:-:-:-:-",
        "PUBLISH_ROUTES|a b|0|",
        "WATCH_ROUTES|x",
        "ROUTES|x",
    ] {
        assert!(TowerRequest::decode(text.as_bytes()).is_err(), "{text}");
    }
    assert!(TowerReply::decode(b"OK|ROUTES|1|-:/:-:-:-:-:-").is_err());
    assert!(RoutesUpdate::decode(b"ROUTES_UPDATE|api|1|1|-:/:-:-:-:1:-").is_err());
    assert!(RoutesUpdate::decode(b"UPDATE|api|1|0|").is_err());
    assert!(TowerPush::decode(b"ROUTES_UPDATE|api|1|0|").is_err());
    // The same, well formed, decode.
    assert!(TowerRequest::decode(b"PUBLISH_ROUTES|api|1|-:/:-:-:-:-:-").is_ok());
    assert!(TowerReply::decode(b"OK|ROUTES|1|api:-:/:-:-:-:-:-").is_ok());
    assert!(RoutesUpdate::decode(b"ROUTES_UPDATE|api|1|1|-:/:-:-:-:1:1").is_ok());
}

#[test]
fn extra_fields() {
    let extra = |verb| WireError::ExtraField { verb };
    assert_eq!(refused::<ConductorRequest>("PING|x"), extra("PING"));
    assert_eq!(refused::<ConductorRequest>("LIST|"), extra("LIST"));
    assert_eq!(refused::<ConductorRequest>("EVICT|api|x"), extra("EVICT"));
    assert_eq!(refused::<ConductorRequest>("SCALE|api|3|4"), extra("SCALE"));
    assert_eq!(refused::<ConductorRequest>("LOGS|api|r|x"), extra("LOGS"));
    assert_eq!(refused::<ConductorRequest>("STATUS|api|x"), extra("STATUS"));
    assert_eq!(
        refused::<ConductorReply>("OK|PONG|conductor|x"),
        extra("OK|PONG")
    );
    assert_eq!(refused::<ConductorReply>("OK|LIST|0||"), extra("OK|LIST"));
    assert_eq!(refused::<MeshEvent>("DIED|n|r|a|0|1|x"), extra("DIED"));
    assert_eq!(
        refused::<MeshEvent>("HEARTBEAT|n|1|2|::1|7775|3|4|5||"),
        extra("HEARTBEAT")
    );
    assert_eq!(refused::<NodeRequest>("KILL|n|r|x"), extra("KILL"));
    assert_eq!(refused::<NodeRequest>("LOGS|n|r|x"), extra("LOGS"));
    assert_eq!(
        refused::<TowerRequest>("REGISTER|api|::1|80|30|x"),
        extra("REGISTER")
    );
    assert_eq!(refused::<TowerPush>("UPDATE|api|1|0||"), extra("UPDATE"));
    assert_eq!(
        refused::<TowerReply>("OK|DRAINED|api|1|1|0|0|x"),
        extra("OK|DRAINED")
    );
}

#[test]
fn bad_numbers() {
    for n in [
        "-1",
        "+3",
        "3.0",
        "",
        " 3",
        "3 ",
        "0x10",
        "4294967296",
        "99999999999999999999999",
        "٣",
    ] {
        bad_field(
            refused::<ConductorRequest>(format!("SCALE|api|{n}")),
            "replicas",
        );
    }
    bad_field(refused::<NodeReply>("OK|LAUNCHED|r|1|65536"), "port");
    bad_field(refused::<NodeReply>("OK|LAUNCHED|r|-1|80"), "pid");
    bad_field(
        refused::<TowerRequest>("REGISTER|api|10.0.0.1|65536"),
        "port",
    );
    bad_field(
        refused::<TowerRequest>("ACK|api|18446744073709551616|1"),
        "version",
    );
    for cpu in [
        "abc", "12.", ".5", "12.5.1", "-1", "NaN", "inf", "1e3", "1000001", "12,5", "+1",
    ] {
        bad_field(
            refused::<MeshEvent>(format!("HEARTBEAT|n|{cpu}|2048")),
            "cpu_pct",
        );
    }
    for exit in ["256", "-256", "--9", "-", "x", "+1"] {
        bad_field(refused::<MeshEvent>(format!("DIED|n|r|a|{exit}|1")), "exit");
    }
    for flag in ["2", "", "true", "01"] {
        bad_field(
            refused::<MeshEvent>(format!("DIED|n|r|a|0|{flag}")),
            "restarting",
        );
        bad_field(
            refused::<TowerRequest>(format!("ACK|api|1|{flag}")),
            "drained",
        );
    }
}

#[test]
fn bad_addresses() {
    for ip in [
        "10.0.0.300",
        "[::1]",
        "localhost",
        "",
        "::1%eth0",
        "10.0.0.1:80",
        "1.2.3",
    ] {
        bad_field(
            refused::<TowerRequest>(format!("REGISTER|api|{ip}|80")),
            "ip",
        );
        bad_field(
            refused::<MeshEvent>(format!("HEARTBEAT|n|1|2|{ip}|7775|3|4|5|")),
            "advertise_ip",
        );
    }
    for backend in [
        "::1:80",
        "[1.2.3.4]:80",
        "[::1]80",
        "10.0.0.1",
        "10.0.0.1:",
        "10.0.0.1:http",
        "[::1]:65536",
    ] {
        bad_field(
            refused::<TowerPush>(format!("UPDATE|api|1|1|{backend}")),
            "backends",
        );
    }
    bad_field(refused::<ConductorReply>("OK|NODES|1|n:10.0.0.x:1:2"), "ip");
    bad_field(refused::<ConductorReply>("OK|NODES|1|n:1:2"), "entries");
    bad_field(
        refused::<TowerReply>("OK|LIST|1|api:10.0.0.1:80"),
        "entries",
    );
    bad_field(refused::<TowerReply>("OK|LIST|1|api:::1:80"), "ip");
    bad_field(refused::<TowerReply>("OK|LOOKUP|api|[::1]|80"), "ip");
}

#[test]
fn bad_lists_and_entries() {
    bad_field(refused::<ConductorReply>("OK|LIST|3|a:n:1"), "n");
    bad_field(refused::<ConductorReply>("OK|LIST|0|a:n:1"), "n");
    bad_field(refused::<ConductorReply>("OK|LIST|1|a:n"), "entries");
    bad_field(refused::<ConductorReply>("OK|LIST|1|a:n:1:2"), "entries");
    bad_field(refused::<ConductorReply>("OK|LIST|99999999|"), "n");
    bad_field(
        refused::<ConductorReply>("OK|APPS|1|a:1:1:1:1:paused"),
        "rollout_state",
    );
    bad_field(
        refused::<ConductorReply>("OK|STATUS|1|a:r:n:1:zombie:1:0:0:0:0:0"),
        "state",
    );
    bad_field(
        refused::<ConductorReply>("OK|STATUS|1|a:r:n:1:healthy:1:0:0:0:0"),
        "entries",
    );
    bad_field(
        refused::<ConductorReply>("OK|STATUS|1|a:r:n:1:exited:1:0:0:0:0:0:x"),
        "exit",
    );
    bad_field(
        refused::<ConductorReply>("OK|STATUS|1|a:r:n:1:exited:1:0:0:0:0:0:0:0"),
        "limits",
    );
    bad_field(
        refused::<ConductorReply>("OK|STATUS|1|a:r:n:1:exited:1:0:0:0:0:0:0:none:x"),
        "entries",
    );
    bad_field(
        refused::<ConductorReply>("OK|ROLLOUT_STATUS|a|paused|1|3|x"),
        "state",
    );
    bad_field(refused::<ConductorReply>("OK|PONG|tower"), "who");
    bad_field(refused::<TowerReply>("OK|PONG|conductor"), "who");
    bad_field(refused::<TowerReply>("OK|DRAINED|api|7|1|1|2"), "all");
    bad_field(refused::<TowerReply>("OK|DRAINED|api|7|0|2|2"), "all");
    bad_field(refused::<TowerPush>("UPDATE|api|1|2|10.0.0.1:80"), "n");
    bad_field(
        refused::<MeshEvent>("HEARTBEAT|n|1|2|::1|7775|3|4|5|r:a:1:1:healthy:80:1"),
        "replicas",
    );
    bad_field(refused::<NodeReply>("OK|STATUS|1|r"), "entries");
}

#[test]
fn bad_text() {
    bad_field(refused::<ConductorReply>("ERR|NOT_FOUND|a\nb"), "detail");
    bad_field(refused::<ConductorReply>("ERR|no such\rthing"), "detail");
    bad_field(
        refused::<ConductorReply>("OK|ROLLOUT_STATUS|a|running|1|3|x\ny"),
        "detail",
    );
    bad_field(refused::<ConductorReply>("OK|LOGS|r|2|a"), "n");
    bad_field(refused::<ConductorReply>("OK|LOGS|r|1|a\nb"), "n");
    bad_field(refused::<ConductorReply>("OK|LOGS|r|0|a"), "lines");
    bad_field(refused::<NodeReply>("OK|LOGS|r|1|a\r"), "lines");
    bad_field(refused::<ConductorRequest>("SUBMIT|"), "source");
    bad_field(refused::<ConductorRequest>("ROLLOUT|"), "source");
}

#[test]
fn bad_names() {
    bad_name(
        refused::<ConductorRequest>("EVICT|a b"),
        "app",
        &NameError::BadCharacter {
            found: ' ',
            position: 1,
        },
    );
    bad_name(
        refused::<ConductorRequest>("EVICT|"),
        "app",
        &NameError::Empty,
    );
    bad_name(
        refused::<ConductorRequest>("EVICT|.."),
        "app",
        &NameError::DotName,
    );
    bad_name(
        refused::<ConductorRequest>("EVICT|é"),
        "app",
        &NameError::BadCharacter {
            found: 'é',
            position: 0,
        },
    );
    bad_name(
        refused::<ConductorRequest>(format!("EVICT|{}", "x".repeat(64))),
        "app",
        &NameError::TooLong { len: 64 },
    );
    bad_name(
        refused::<ConductorRequest>("LOGS|api|r/1"),
        "replica_id",
        &NameError::BadCharacter {
            found: '/',
            position: 1,
        },
    );
    bad_name(
        refused::<TowerRequest>("LOOKUP|a:b"),
        "name",
        &NameError::BadCharacter {
            found: ':',
            position: 1,
        },
    );
    bad_name(
        refused::<TowerRequest>("WATCH|api,,web|30"),
        "services",
        &NameError::Empty,
    );
    bad_name(
        refused::<TowerRequest>("WATCH|api,w b|30"),
        "services",
        &NameError::BadCharacter {
            found: ' ',
            position: 1,
        },
    );
    bad_name(
        refused::<ConductorReply>("OK|LIST|1|a b:n:1"),
        "app",
        &NameError::BadCharacter {
            found: ' ',
            position: 1,
        },
    );
    bad_name(
        refused::<ConductorReply>("OK|SUBMITTED|api|n1,,n2"),
        "nodes",
        &NameError::Empty,
    );
    bad_name(
        refused::<MeshEvent>("HEARTBEAT|node\0|1|2"),
        "node_id",
        &NameError::BadCharacter {
            found: '\0',
            position: 4,
        },
    );
    bad_name(
        refused::<NodeRequest>("KILL|"),
        "node_id",
        &NameError::Empty,
    );
    bad_name(
        refused::<NodeRequest>("KILL|n|"),
        "replica_id",
        &NameError::Empty,
    );
    bad_name(
        refused::<TowerPush>("UPDATE|a,b|1|0|"),
        "service",
        &NameError::BadCharacter {
            found: ',',
            position: 1,
        },
    );
    // A `|` inside a name splits it into fields, so the message no longer has the right shape.
    assert_eq!(
        refused::<ConductorRequest>("EVICT|a|b"),
        WireError::ExtraField { verb: "EVICT" }
    );
    assert_eq!(
        refused::<ConductorReply>("OK|SUBMITTED|api|a|b"),
        WireError::MissingField {
            verb: "OK|SUBMITTED",
            field: "nodes"
        }
    );
    bad_field(refused::<TowerRequest>("REGISTER|a|b|10.0.0.1|80"), "ip");
}

#[test]
fn bad_inline_manifests() {
    assert_eq!(
        refused::<ConductorRequest>("SUBMIT|b64:!!!"),
        WireError::BadBase64 {
            verb: "SUBMIT",
            field: "source"
        }
    );
    assert_eq!(
        refused::<ConductorRequest>("ROLLOUT|b64:YQ"),
        WireError::BadBase64 {
            verb: "ROLLOUT",
            field: "source"
        }
    );
    let not_utf8 = format!("SUBMIT|b64:{}", BASE64.encode([0xff, 0xfe]));
    bad_field(refused::<ConductorRequest>(not_utf8), "source");
    assert_eq!(
        refused::<NodeRequest>("LAUNCH|n|r|1|***"),
        WireError::BadBase64 {
            verb: "LAUNCH",
            field: "app"
        }
    );
    assert_eq!(
        refused::<NodeRequest>("LAUNCH|n|r|1|"),
        WireError::BadManifest {
            verb: "LAUNCH",
            detail: refused_detail(""),
        }
    );
    let garbage = format!("LAUNCH|n|r|1|{}", BASE64.encode("this is not a manifest {"));
    assert!(matches!(
        refused::<NodeRequest>(garbage),
        WireError::BadManifest { verb: "LAUNCH", .. }
    ));
    bad_field(
        refused::<NodeRequest>(format!("LAUNCH|n|r|1|{}", BASE64.encode([0xc3]))),
        "app",
    );
    bad_field(
        refused::<NodeRequest>(format!("LAUNCH|n|r|x|{}", BASE64.encode("app a"))),
        "generation",
    );
}

/// What the manifest parser says about `text`, as LAUNCH reports it.
fn refused_detail(text: &str) -> String {
    match crate::manifest::parse("<LAUNCH>", text) {
        Err(errors) => errors.to_string(),
        Ok(m) => format!("expected exactly one app, found {}", m.apps.len()),
    }
}

#[test]
fn launch_needs_exactly_one_app() {
    use crate::manifest::{App, Manifest, PrintOptions};
    let two = Manifest {
        apps: vec![
            App::with_defaults(super::app("a"), Some("/bin/true".into())),
            App::with_defaults(super::app("b"), Some("/bin/true".into())),
        ],
    };
    let text = crate::manifest::print(
        &two,
        &PrintOptions {
            redact_secrets: false,
        },
    );
    let datagram = format!("LAUNCH|n|r|1|{}", BASE64.encode(&text));
    assert_eq!(
        refused::<NodeRequest>(datagram),
        WireError::BadManifest {
            verb: "LAUNCH",
            detail: refused_detail(&text)
        }
    );
}
