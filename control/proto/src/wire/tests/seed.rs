//! Exact datagrams: the seed's documented formats and each message skr8tr adds decode to the
//! expected value and re-encode byte for byte.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{accepts, app, exact, node, rid, svc};
use crate::wire::*;

fn line(s: &str) -> OneLine {
    OneLine::new(s).unwrap()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn path(s: &str) -> ManifestSource {
    ManifestSource::Path(HostPath::new(s).unwrap())
}

fn cpu(hundredths: u32) -> CpuPercent {
    CpuPercent::from_hundredths(hundredths).unwrap()
}

#[test]
fn conductor_requests_of_the_seed() {
    use ConductorRequest as R;
    exact(
        "SUBMIT|/opt/apps/api.skr8tr",
        R::Submit(path("/opt/apps/api.skr8tr")),
    );
    exact("EVICT|api-server", R::Evict(app("api-server")));
    exact(
        "ROLLOUT|/opt/apps/api-v2.skr8tr",
        R::Rollout(path("/opt/apps/api-v2.skr8tr")),
    );
    exact("LIST", R::List);
    exact("NODES", R::Nodes);
    exact("PING", R::Ping);
    exact(
        "LOGS|api-server",
        R::Logs {
            app: app("api-server"),
            replica: None,
        },
    );
    exact(
        "EXEC|api-server|uptime",
        R::Exec {
            app: app("api-server"),
            cmd: "uptime".into(),
        },
    );
}

#[test]
fn conductor_requests_added_by_skr8tr() {
    use ConductorRequest as R;
    let text = "app api\n  exec /bin/true\n";
    let inline = format!("SUBMIT|b64:{}", BASE64.encode(text));
    assert_eq!(inline, "SUBMIT|b64:YXBwIGFwaQogIGV4ZWMgL2Jpbi90cnVlCg==");
    exact(&inline, R::Submit(ManifestSource::Inline(text.into())));
    exact(
        "ROLLOUT|b64:",
        R::Rollout(ManifestSource::Inline(String::new())),
    );
    exact(
        "SCALE|api|3",
        R::Scale {
            app: app("api"),
            replicas: 3,
        },
    );
    exact(
        "SCALE|api|0",
        R::Scale {
            app: app("api"),
            replicas: 0,
        },
    );
    exact("STATUS", R::Status { app: None });
    exact(
        "STATUS|api",
        R::Status {
            app: Some(app("api")),
        },
    );
    exact("APPS", R::Apps);
    exact(
        "LOGS|api|api.g1.r2",
        R::Logs {
            app: app("api"),
            replica: Some(rid("api.g1.r2")),
        },
    );
    exact(
        "EXEC|api|ls -l | wc -l",
        R::Exec {
            app: app("api"),
            cmd: "ls -l | wc -l".into(),
        },
    );
    exact(
        "EXEC|api|",
        R::Exec {
            app: app("api"),
            cmd: String::new(),
        },
    );
    exact("ROLLOUT_STATUS|api", R::RolloutStatus(app("api")));
    exact(
        "EVENTS",
        R::Events {
            after: 0,
            app: None,
        },
    );
    exact(
        "EVENTS|41",
        R::Events {
            after: 41,
            app: None,
        },
    );
    exact("HISTORY|api", R::History(app("api")));
    exact(
        "ROLLBACK|api",
        R::Rollback {
            app: app("api"),
            generation: None,
        },
    );
    exact(
        "ROLLBACK|api|3",
        R::Rollback {
            app: app("api"),
            generation: Some(3),
        },
    );
    exact("PROMOTE|api", R::Promote(app("api")));
    exact(
        "EVENTS|41|api",
        R::Events {
            after: 41,
            app: Some(app("api")),
        },
    );
    // A path is the last field: `|` in it is part of the path.
    exact("SUBMIT|/srv/a|b.skr8tr", R::Submit(path("/srv/a|b.skr8tr")));
}

#[test]
fn a_bare_verb_may_end_in_a_newline() {
    accepts("LIST\n", ConductorRequest::List);
    accepts("PING\r\n", ConductorRequest::Ping);
    accepts("STATUS\n", NodeRequest::Status);
    // With fields, a newline belongs to the last field.
    accepts(
        "EXEC|api|ls\n",
        ConductorRequest::Exec {
            app: app("api"),
            cmd: "ls\n".into(),
        },
    );
}

#[test]
fn conductor_replies() {
    use ConductorReply as R;
    let placed = |a: &str, nodes: &[&str]| Placement {
        app: app(a),
        nodes: nodes.iter().map(|n| node(n)).collect(),
    };
    exact(
        "OK|SUBMITTED|api-server|node-a",
        R::Submitted(vec![placed("api-server", &["node-a"])]),
    );
    exact(
        "OK|SUBMITTED|api|node-a,node-b,node-a|web|pending",
        R::Submitted(vec![
            placed("api", &["node-a", "node-b", "node-a"]),
            placed("web", &[]),
        ]),
    );
    accepts("OK|SUBMITTED|web|", R::Submitted(vec![placed("web", &[])]));
    exact("OK|EVICTED|api-server", R::Evicted(app("api-server")));
    exact(
        "OK|ROLLOUT|api-server",
        R::RolloutStarted(app("api-server")),
    );
    exact(
        "OK|SCALED|api|5",
        R::Scaled {
            app: app("api"),
            replicas: 5,
        },
    );
    exact(
        "OK|LIST|2|api:node-a:1234,web:node-b:99",
        R::List(vec![
            ListEntry {
                app: app("api"),
                node: node("node-a"),
                pid: 1234,
            },
            ListEntry {
                app: app("web"),
                node: node("node-b"),
                pid: 99,
            },
        ]),
    );
    exact("OK|LIST|0|", R::List(vec![]));
    accepts("OK|LIST|0", R::List(vec![]));
    exact(
        "OK|NODES|2|node-a:10.0.0.5:12.5:2048,node-b:::1:0:512",
        R::Nodes(vec![
            NodeEntry {
                node: node("node-a"),
                ip: v4(10, 0, 0, 5),
                cpu: cpu(1250),
                ram_free_mb: 2048,
            },
            NodeEntry {
                node: node("node-b"),
                ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                cpu: cpu(0),
                ram_free_mb: 512,
            },
        ]),
    );
    exact("OK|PONG|conductor", R::Pong);
}

#[test]
fn conductor_status_and_apps() {
    use ConductorReply as R;
    exact(
        "OK|STATUS|2|api:api.g2.r1:node-a:4242:healthy:2:8080:1:3600:12.5:20480,\
         api:api.g2.r2::0:pending:2:0:0:0:0:0",
        R::Status(vec![
            ReplicaStatus {
                app: app("api"),
                replica: rid("api.g2.r1"),
                node: Some(node("node-a")),
                pid: 4242,
                state: ReplicaState::Healthy,
                generation: 2,
                port: 8080,
                restarts: 1,
                uptime_s: 3600,
                cpu: cpu(1250),
                rss_kb: 20480,
                exit: None,
                limits: None,
            },
            ReplicaStatus {
                app: app("api"),
                replica: rid("api.g2.r2"),
                node: None,
                pid: 0,
                state: ReplicaState::Pending,
                generation: 2,
                port: 0,
                restarts: 0,
                uptime_s: 0,
                cpu: CpuPercent::ZERO,
                rss_kb: 0,
                exit: None,
                limits: None,
            },
        ]),
    );
    exact(
        "OK|APPS|2|api:3:4:3:2:running,job:0:0:0:1:none",
        R::Apps(vec![
            AppStatus {
                app: app("api"),
                desired: 3,
                running: 4,
                healthy: 3,
                generation: 2,
                rollout: RolloutState::Running,
                runs: None,
            },
            AppStatus {
                app: app("job"),
                desired: 0,
                running: 0,
                healthy: 0,
                generation: 1,
                rollout: RolloutState::None,
                runs: None,
            },
        ]),
    );
    exact(
        "OK|APPS|2|nightly:1:1:0:3:none:1796698800000:1796612400000,hourly:1:0:0:1:none::",
        R::Apps(vec![
            AppStatus {
                app: app("nightly"),
                desired: 1,
                running: 1,
                healthy: 0,
                generation: 3,
                rollout: RolloutState::None,
                runs: Some(RunTimes {
                    next_ms: Some(1_796_698_800_000),
                    last_ms: Some(1_796_612_400_000),
                }),
            },
            AppStatus {
                app: app("hourly"),
                desired: 1,
                running: 0,
                healthy: 0,
                generation: 1,
                rollout: RolloutState::None,
                runs: Some(RunTimes::default()),
            },
        ]),
    );
    exact(
        "OK|ROLLOUT_STATUS|api|running|1|3|waiting for api.g2.r2 to be healthy",
        R::RolloutStatus(RolloutProgress {
            app: app("api"),
            state: RolloutState::Running,
            done: 1,
            total: 3,
            detail: line("waiting for api.g2.r2 to be healthy"),
        }),
    );
    exact(
        "OK|EVENTS|43|2|42:1765152000123:exited:api:api.g2.r1:node-a:exit 3,43:1765152000200:node-lost::::silent for 5s",
        R::Events {
            last_seq: 43,
            events: vec![
                EventEntry {
                    seq: 42,
                    at_ms: 1_765_152_000_123,
                    kind: EventKind::Exited,
                    app: Some(app("api")),
                    replica: Some(rid("api.g2.r1")),
                    node: Some(super::node("node-a")),
                    detail: line("exit 3"),
                },
                EventEntry {
                    seq: 43,
                    at_ms: 1_765_152_000_200,
                    kind: EventKind::NodeLost,
                    app: None,
                    replica: None,
                    node: None,
                    detail: line("silent for 5s"),
                },
            ],
        },
    );
    exact(
        "OK|PLAN|1|2|app api: rollout to generation 4\n  replicas: 3 -> 5",
        R::Plan {
            changed: true,
            lines: vec![
                line("app api: rollout to generation 4"),
                line("  replicas: 3 -> 5"),
            ],
        },
    );
    exact(
        "OK|PLAN|0|0|",
        R::Plan {
            changed: false,
            lines: vec![],
        },
    );
    exact(
        "OK|HISTORY|api|3|2|2:1765152000123:3:0a1b2c3d4e5f,3:1765152999000:5:ffee00112233",
        R::History {
            app: app("api"),
            current: 3,
            generations: vec![
                GenerationEntry {
                    generation: 2,
                    at_ms: 1_765_152_000_123,
                    desired: 3,
                    digest: SpecDigest::new("0a1b2c3d4e5f").unwrap(),
                },
                GenerationEntry {
                    generation: 3,
                    at_ms: 1_765_152_999_000,
                    desired: 5,
                    digest: SpecDigest::new("ffee00112233").unwrap(),
                },
            ],
        },
    );
    exact(
        "OK|ROLLBACK|api|2",
        R::RollingBack {
            app: app("api"),
            generation: 2,
        },
    );
    exact("OK|PROMOTED|api", R::Promoted(app("api")));
    exact(
        "OK|ROLLOUT_STATUS|api|none|0|0|",
        R::RolloutStatus(RolloutProgress {
            app: app("api"),
            state: RolloutState::None,
            done: 0,
            total: 0,
            detail: OneLine::empty(),
        }),
    );
}

#[test]
fn logs_and_exec_replies() {
    let logs = |lines: &[&str]| LogsReply {
        replica: rid("api.g1.r1"),
        lines: lines.iter().map(|l| line(l)).collect(),
    };
    exact(
        "OK|LOGS|api.g1.r1|3|starting\nGET /a|b 200\n",
        ConductorReply::Logs(logs(&["starting", "GET /a|b 200", ""])),
    );
    exact("OK|LOGS|api.g1.r1|0|", ConductorReply::Logs(logs(&[])));
    accepts("OK|LOGS|api.g1.r1|0", ConductorReply::Logs(logs(&[])));
    exact("OK|LOGS|api.g1.r1|1|", NodeReply::Logs(logs(&[""])));
    exact("OK|LOGS|api.g1.r1|2|\n", NodeReply::Logs(logs(&["", ""])));
    exact(
        "OK|EXEC|api.g1.r1|0|total 0\n-rw| x\n",
        ConductorReply::Exec(ExecReply {
            replica: rid("api.g1.r1"),
            exit: Exit::Code(0),
            output: "total 0\n-rw| x\n".into(),
        }),
    );
    exact(
        "OK|EXEC|api.g1.r1|-9|",
        NodeReply::Exec(ExecReply {
            replica: rid("api.g1.r1"),
            exit: Exit::Signal(9),
            output: String::new(),
        }),
    );
}

#[test]
fn error_replies() {
    let err = |code, detail: &str| ErrorReply {
        code,
        detail: line(detail),
    };
    exact(
        "ERR|UNAUTHORIZED",
        ConductorReply::Error(err(ErrorCode::Unauthorized, "")),
    );
    exact(
        "ERR|NOT_FOUND|api",
        TowerReply::Error(err(ErrorCode::NotFound, "api")),
    );
    exact(
        "ERR|BAD_MANIFEST|api.skr8tr:3:5: unknown key `exce` (did you mean `exec`?)",
        ConductorReply::Error(err(
            ErrorCode::BadManifest,
            "api.skr8tr:3:5: unknown key `exce` (did you mean `exec`?)",
        )),
    );
    exact(
        "ERR|BUSY|rollout of api running|1/3",
        ConductorReply::Error(err(ErrorCode::Busy, "rollout of api running|1/3")),
    );
    for code in ErrorCode::ALL {
        exact(&format!("ERR|{code}|x"), NodeReply::Error(err(*code, "x")));
        exact(&format!("ERR|{code}"), NodeReply::Error(err(*code, "")));
    }
    // A reason that is not a code (an old or new peer) is kept whole as the detail.
    accepts(
        "ERR|no nodes available",
        ConductorReply::Error(err(ErrorCode::Unknown, "no nodes available")),
    );
    accepts(
        "ERR|QUOTA|over|quota",
        ConductorReply::Error(err(ErrorCode::Unknown, "QUOTA|over|quota")),
    );
    accepts(
        "ERR|not_found",
        ConductorReply::Error(err(ErrorCode::Unknown, "not_found")),
    );
    accepts("ERR", ConductorReply::Error(err(ErrorCode::Unknown, "")));
    accepts("ERR|", ConductorReply::Error(err(ErrorCode::Unknown, "")));
    accepts(
        "ERR|TIMEOUT|",
        ConductorReply::Error(err(ErrorCode::Timeout, "")),
    );
    assert_eq!(
        err(ErrorCode::Unknown, "no nodes").encode(),
        "ERR|UNKNOWN|no nodes"
    );
}

#[test]
fn heartbeats() {
    let hb = |detail| {
        MeshEvent::Heartbeat(Heartbeat {
            node: node("node-a"),
            cpu: cpu(1250),
            ram_free_mb: 2048,
            detail,
        })
    };
    exact("HEARTBEAT|node-a|12.5|2048", hb(None));
    exact(
        "HEARTBEAT|node-a|12.5|2048|10.0.0.5|7775|8192|4000|17|\
         api.g1.r1:api:1:4242:healthy:8080:3.25:20480,job.g1.r1:job:1:0:exited:0:0:0",
        hb(Some(HeartbeatDetail {
            advertise: v4(10, 0, 0, 5),
            agent_port: 7775,
            ram_total_mb: 8192,
            cpu_millicores: 4000,
            seq: 17,
            gpus: 0,
            replicas: vec![
                ReplicaReport {
                    replica: rid("api.g1.r1"),
                    app: app("api"),
                    generation: 1,
                    pid: 4242,
                    state: ReplicaState::Healthy,
                    port: 8080,
                    cpu: cpu(325),
                    rss_kb: 20480,
                    limits: None,
                    restarts: 0,
                    uptime_s: 0,
                },
                ReplicaReport {
                    replica: rid("job.g1.r1"),
                    app: app("job"),
                    generation: 1,
                    pid: 0,
                    state: ReplicaState::Exited,
                    port: 0,
                    cpu: CpuPercent::ZERO,
                    rss_kb: 0,
                    limits: None,
                    restarts: 0,
                    uptime_s: 0,
                },
            ],
        })),
    );
    exact(
        "HEARTBEAT|node-a|12.5|2048|fd00::5|7775|8192|4000|1|",
        hb(Some(HeartbeatDetail {
            advertise: "fd00::5".parse().unwrap(),
            agent_port: 7775,
            ram_total_mb: 8192,
            cpu_millicores: 4000,
            seq: 1,
            gpus: 0,
            replicas: vec![],
        })),
    );
    // C's `%f` and `%.2f` are read too.
    accepts("HEARTBEAT|node-a|12.500000|2048", hb(None));
    accepts("HEARTBEAT|node-a|12.50|2048", hb(None));
}

#[test]
fn deaths() {
    let died = |replica: &str, a: &str, exit, restarting| {
        MeshEvent::Died(Died {
            node: node("node-a"),
            replica: rid(replica),
            app: app(a),
            exit,
            restarting,
        })
    };
    exact(
        "DIED|node-a|api.g1.r1|api|-9|1",
        died("api.g1.r1", "api", Exit::Signal(9), true),
    );
    exact(
        "DIED|node-a|job.g1.r1|job|3|0",
        died("job.g1.r1", "job", Exit::Code(3), false),
    );
    exact(
        "DIED|node-a|job.g1.r1|job|0|0",
        died("job.g1.r1", "job", Exit::Code(0), false),
    );
}

#[test]
fn node_requests_and_replies() {
    exact(
        "KILL|node-a|api.g1.r1",
        NodeRequest::Kill {
            node: node("node-a"),
            replica: rid("api.g1.r1"),
        },
    );
    exact("STATUS", NodeRequest::Status);
    exact(
        "LOGS|node-a|api.g1.r1",
        NodeRequest::Logs {
            node: node("node-a"),
            replica: rid("api.g1.r1"),
        },
    );
    exact(
        "EXEC|node-a|api.g1.r1|5000|cat /etc/hostname | tr a-z A-Z",
        NodeRequest::Exec {
            node: node("node-a"),
            replica: rid("api.g1.r1"),
            timeout_ms: 5000,
            cmd: "cat /etc/hostname | tr a-z A-Z".into(),
        },
    );
    exact("PING", NodeRequest::Ping);
    exact(
        "OK|LAUNCHED|api.g1.r1|4242|8080",
        NodeReply::Launched {
            replica: rid("api.g1.r1"),
            pid: 4242,
            port: 8080,
        },
    );
    exact(
        "OK|LAUNCHED|job.g1.r1|4243|0",
        NodeReply::Launched {
            replica: rid("job.g1.r1"),
            pid: 4243,
            port: 0,
        },
    );
    exact("OK|KILLED|api.g1.r1", NodeReply::Killed(rid("api.g1.r1")));
    exact(
        "OK|STATUS|2|api.g1.r1:4242,api.g1.r2:4243",
        NodeReply::Status(vec![
            NodeStatusEntry {
                replica: rid("api.g1.r1"),
                pid: 4242,
            },
            NodeStatusEntry {
                replica: rid("api.g1.r2"),
                pid: 4243,
            },
        ]),
    );
    exact("OK|STATUS|0|", NodeReply::Status(vec![]));
    exact("OK|PONG|node-a", NodeReply::Pong(node("node-a")));
}

#[test]
fn launch_carries_the_whole_app() {
    use crate::manifest::{App, EnvVar, SecretValue, SecretVar};
    let mut api = App::with_defaults(app("api"), Some("/usr/local/bin/api".into()));
    api.env.push(EnvVar {
        key: "MODE".into(),
        value: "prod|eu".into(),
    });
    api.secrets.push(SecretVar {
        key: "TOKEN".into(),
        value: SecretValue::new("s3cr3t"),
    });
    let msg = NodeRequest::Launch(Box::new(LaunchSpec {
        node: node("node-a"),
        replica: rid("api.g3.r1"),
        generation: 3,
        app: api,
    }));
    let text = msg.encode();
    assert!(text.starts_with("LAUNCH|node-a|api.g3.r1|3|"), "{text}");
    let b64 = text.rsplit('|').next().unwrap();
    let printed = String::from_utf8(BASE64.decode(b64).unwrap()).unwrap();
    assert!(
        printed.contains("s3cr3t"),
        "LAUNCH must carry secrets unredacted:\n{printed}"
    );
    assert_eq!(NodeRequest::decode(text.as_bytes()), Ok(msg));
}

#[test]
fn tower_requests() {
    use TowerRequest as R;
    let be = |ip: IpAddr, port| Backend { ip, port };
    exact(
        "REGISTER|api|10.0.0.5|8080",
        R::Register {
            service: svc("api"),
            backend: be(v4(10, 0, 0, 5), 8080),
            ttl_s: None,
        },
    );
    exact(
        "REGISTER|api|::1|8080|30",
        R::Register {
            service: svc("api"),
            backend: be(IpAddr::V6(Ipv6Addr::LOCALHOST), 8080),
            ttl_s: Some(30),
        },
    );
    exact(
        "DEREGISTER|api|10.0.0.5|8080",
        R::Deregister {
            service: svc("api"),
            backend: be(v4(10, 0, 0, 5), 8080),
        },
    );
    exact("LOOKUP|api", R::Lookup(svc("api")));
    exact("LIST", R::List);
    exact("PING", R::Ping);
    exact(
        "WATCH|api,web|30",
        R::Watch {
            services: vec![svc("api"), svc("web")],
            lease_s: 30,
        },
    );
    exact(
        "WATCH|api|30",
        R::Watch {
            services: vec![svc("api")],
            lease_s: 30,
        },
    );
    exact("UNWATCH|api", R::Unwatch(svc("api")));
    exact(
        "ACK|api|7|1",
        R::Ack {
            service: svc("api"),
            version: 7,
            drained: true,
        },
    );
    exact(
        "ACK|api|7|0",
        R::Ack {
            service: svc("api"),
            version: 7,
            drained: false,
        },
    );
    exact(
        "DRAINED|api|7",
        R::Drained {
            service: svc("api"),
            version: 7,
        },
    );
}

#[test]
fn tower_replies_and_pushes() {
    use TowerReply as R;
    let be = |ip: IpAddr, port| Backend { ip, port };
    let v6: IpAddr = "fd00::5".parse().unwrap();
    exact("OK|REGISTERED|api", R::Registered(svc("api")));
    exact("OK|DEREGISTERED|api", R::Deregistered(svc("api")));
    exact(
        "OK|LOOKUP|api|10.0.0.5|8080",
        R::Lookup {
            service: svc("api"),
            backend: be(v4(10, 0, 0, 5), 8080),
        },
    );
    exact(
        "OK|LOOKUP|api|fd00::5|8080",
        R::Lookup {
            service: svc("api"),
            backend: be(v6, 8080),
        },
    );
    exact(
        "OK|LIST|2|api:10.0.0.5:8080:28,api:fd00::5:8081:30",
        R::List(vec![
            TowerEntry {
                service: svc("api"),
                backend: be(v4(10, 0, 0, 5), 8080),
                ttl_s: 28,
            },
            TowerEntry {
                service: svc("api"),
                backend: be(v6, 8081),
                ttl_s: 30,
            },
        ]),
    );
    exact("OK|PONG|tower", R::Pong);
    exact("OK|WATCHING|30", R::Watching { lease_s: 30 });
    exact("OK|UNWATCHED|api", R::Unwatched(svc("api")));
    exact(
        "OK|ACKED|api|7",
        R::Acked {
            service: svc("api"),
            version: 7,
        },
    );
    let drain = |acked, subscribers| DrainStatus {
        service: svc("api"),
        version: 7,
        acked,
        subscribers,
    };
    exact("OK|DRAINED|api|7|0|1|2", R::Drained(drain(1, 2)));
    exact("OK|DRAINED|api|7|1|2|2", R::Drained(drain(2, 2)));
    exact("OK|DRAINED|api|7|1|0|0", R::Drained(drain(0, 0)));
    exact(
        "UPDATE|api|7|2|10.0.0.5:8080,[fd00::5]:8081",
        TowerPush::Update {
            service: svc("api"),
            version: 7,
            backends: vec![be(v4(10, 0, 0, 5), 8080), be(v6, 8081)],
        },
    );
    exact(
        "UPDATE|api|8|0|",
        TowerPush::Update {
            service: svc("api"),
            version: 8,
            backends: vec![],
        },
    );
}

#[test]
fn conductor_status_of_ended_replicas_says_how_they_ended() {
    // after the seed's eleven parts: the exit code, or the signal as `-N`
    exact(
        "OK|STATUS|2|job:job.g1.r1:node-a:0:exited:1:0:0:0:0:0:0,\
         job:job.g1.r2:node-a:0:failed:1:0:0:0:0:0:-9",
        ConductorReply::Status(
            [
                (1, ReplicaState::Exited, Exit::Code(0)),
                (2, ReplicaState::Failed, Exit::Signal(9)),
            ]
            .into_iter()
            .map(|(n, state, exit)| ReplicaStatus {
                app: app("job"),
                replica: rid(&format!("job.g1.r{n}")),
                node: Some(node("node-a")),
                pid: 0,
                state,
                generation: 1,
                port: 0,
                restarts: 0,
                uptime_s: 0,
                cpu: CpuPercent::ZERO,
                rss_kb: 0,
                exit: Some(exit),
                limits: None,
            })
            .collect(),
        ),
    );
}

#[test]
fn limits_mechanisms_travel_in_heartbeats_and_status() {
    exact(
        "HEARTBEAT|node-a|5|100|10.0.0.5|7775|8192|4000|1|a.g1.r1:a:1:42:healthy:0:0:100:cgroup-v1",
        MeshEvent::Heartbeat(Heartbeat {
            node: node("node-a"),
            cpu: CpuPercent::from_f64(5.0),
            ram_free_mb: 100,
            detail: Some(HeartbeatDetail {
                advertise: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)),
                agent_port: 7775,
                ram_total_mb: 8192,
                cpu_millicores: 4000,
                seq: 1,
                gpus: 0,
                replicas: vec![ReplicaReport {
                    replica: rid("a.g1.r1"),
                    app: app("a"),
                    generation: 1,
                    pid: 42,
                    state: ReplicaState::Healthy,
                    port: 0,
                    cpu: CpuPercent::ZERO,
                    rss_kb: 100,
                    limits: Some(LimitMechanism::CgroupV1),
                    restarts: 0,
                    uptime_s: 0,
                }],
            }),
        }),
    );
    exact(
        "HEARTBEAT|gpu-box|0|100|10.0.0.6|7775|8192|4000|3||4",
        MeshEvent::Heartbeat(Heartbeat {
            node: node("gpu-box"),
            cpu: CpuPercent::ZERO,
            ram_free_mb: 100,
            detail: Some(HeartbeatDetail {
                advertise: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 6)),
                agent_port: 7775,
                ram_total_mb: 8192,
                cpu_millicores: 4000,
                seq: 3,
                replicas: vec![],
                gpus: 4,
            }),
        }),
    );
    let entry = |exit, limits| ReplicaStatus {
        app: app("a"),
        replica: rid("a.g1.r1"),
        node: Some(node("n")),
        pid: 0,
        state: ReplicaState::Failed,
        generation: 1,
        port: 0,
        restarts: 0,
        uptime_s: 0,
        cpu: CpuPercent::ZERO,
        rss_kb: 0,
        exit,
        limits,
    };
    exact(
        "OK|STATUS|2|a:a.g1.r1:n:0:failed:1:0:0:0:0:0::rlimit,\
         a:a.g1.r1:n:0:failed:1:0:0:0:0:0:oom-killed:cgroup-v2",
        ConductorReply::Status(vec![
            entry(None, Some(LimitMechanism::Rlimit)),
            entry(Some(Exit::OomKilled), Some(LimitMechanism::CgroupV2)),
        ]),
    );
}
