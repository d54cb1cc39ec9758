//! Proptest generators of every wire message: each value they produce is one `encode` must
//! write and `decode` must read back unchanged. Text fields are biased towards the characters
//! that could break a message (`|`, `:`, `,`, line breaks, `b64:`), IPs towards IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::manifest::strategy as manifest;
use crate::name::{AppName, NodeId, ReplicaId, ServiceName};
use crate::wire::*;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,12}",
        "[a-z]{1,8}\\.g[0-9]{1,3}\\.r[0-9]{1,3}",
        "[A-Za-z0-9._-]{1,63}".prop_filter("`.` and `..` are refused", |s| s != "." && s != ".."),
    ]
}

pub(super) fn app_name() -> impl Strategy<Value = AppName> {
    name().prop_map(|s| AppName::new(s).expect("valid"))
}

pub(super) fn service() -> impl Strategy<Value = ServiceName> {
    name().prop_map(|s| ServiceName::new(s).expect("valid"))
}

/// A node id; never `pending`, which the SUBMITTED reply reserves.
pub(super) fn node_id() -> impl Strategy<Value = NodeId> {
    name()
        .prop_filter("reserved", |s| s != "pending")
        .prop_map(|s| NodeId::new(s).expect("valid"))
}

pub(super) fn replica_id() -> impl Strategy<Value = ReplicaId> {
    name().prop_map(|s| ReplicaId::new(s).expect("valid"))
}

pub(super) fn ip() -> BoxedStrategy<IpAddr> {
    prop_oneof![
        any::<IpAddr>(),
        any::<Ipv6Addr>().prop_map(IpAddr::V6),
        Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        Just(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        any::<Ipv4Addr>().prop_map(|v4| IpAddr::V6(v4.to_ipv6_mapped())),
        Just(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ]
    .boxed()
}

pub(super) fn backend() -> BoxedStrategy<Backend> {
    (ip(), any::<u16>())
        .prop_map(|(ip, port)| Backend { ip, port })
        .boxed()
}

pub(super) fn cpu() -> BoxedStrategy<CpuPercent> {
    prop_oneof![
        0..=CpuPercent::MAX.hundredths(),
        0_u32..=10_000,
        (0_u32..=100).prop_map(|p| p * 100),
        (0_u32..=1000).prop_map(|p| p * 10),
    ]
    .prop_map(|h| CpuPercent::from_hundredths(h).expect("in range"))
    .boxed()
}

fn limit_mechanism() -> impl Strategy<Value = LimitMechanism> {
    proptest::sample::select(LimitMechanism::ALL)
}

pub(super) fn exit() -> impl Strategy<Value = Exit> {
    prop_oneof![
        any::<u8>().prop_map(Exit::Code),
        any::<u8>().prop_map(Exit::Signal),
        Just(Exit::OomKilled)
    ]
}

pub(super) fn replica_state() -> impl Strategy<Value = ReplicaState> {
    proptest::sample::select(ReplicaState::ALL)
}

pub(super) fn rollout_state() -> impl Strategy<Value = RolloutState> {
    proptest::sample::select(RolloutState::ALL)
}

/// Any text at all, biased towards separators and line breaks.
pub(super) fn free_text() -> BoxedStrategy<String> {
    prop_oneof![
        ".*",
        "[a-z |:,\n\r\\[\\]]{0,20}",
        Just(String::new()),
        Just("|".to_owned()),
        Just("a||b|".to_owned()),
        Just("b64:".to_owned()),
        Just("\n".to_owned()),
    ]
    .boxed()
}

pub(super) fn one_line() -> BoxedStrategy<OneLine> {
    prop_oneof![
        "[^\r\n]*",
        "[a-z |:,]{0,20}",
        Just(String::new()),
        Just("NOT_FOUND|x".to_owned()),
        Just("|".to_owned()),
    ]
    .prop_map(|s| OneLine::new(s).expect("no line break"))
    .boxed()
}

pub(super) fn host_path() -> BoxedStrategy<HostPath> {
    prop_oneof![
        "/[a-z/._-]{0,30}\\.skr8tr",
        ".+".prop_filter("not inline", |s| !s.starts_with("b64:")),
        Just("/a|b/c.skr8tr".to_owned()),
        Just("b64".to_owned()),
    ]
    .prop_map(|s| HostPath::new(s).expect("valid path"))
    .boxed()
}

pub(super) fn manifest_source() -> BoxedStrategy<ManifestSource> {
    prop_oneof![
        host_path().prop_map(ManifestSource::Path),
        free_text().prop_map(ManifestSource::Inline)
    ]
    .boxed()
}

pub(super) fn error_reply() -> BoxedStrategy<ErrorReply> {
    (proptest::sample::select(ErrorCode::ALL), one_line())
        .prop_map(|(code, detail)| ErrorReply { code, detail })
        .boxed()
}

pub(super) fn logs_reply() -> BoxedStrategy<LogsReply> {
    (replica_id(), vec(one_line(), 0..6))
        .prop_map(|(replica, lines)| LogsReply { replica, lines })
        .boxed()
}

pub(super) fn exec_reply() -> BoxedStrategy<ExecReply> {
    (replica_id(), exit(), free_text())
        .prop_map(|(replica, exit, output)| ExecReply {
            replica,
            exit,
            output,
        })
        .boxed()
}

pub(super) fn conductor_request() -> BoxedStrategy<ConductorRequest> {
    use ConductorRequest as R;
    prop_oneof![
        manifest_source().prop_map(R::Submit),
        app_name().prop_map(R::Evict),
        manifest_source().prop_map(R::Rollout),
        (app_name(), any::<u32>()).prop_map(|(app, replicas)| R::Scale { app, replicas }),
        Just(R::List),
        option::of(app_name()).prop_map(|app| R::Status { app }),
        Just(R::Apps),
        Just(R::Nodes),
        Just(R::Ping),
        (app_name(), option::of(replica_id())).prop_map(|(app, replica)| R::Logs { app, replica }),
        (app_name(), free_text()).prop_map(|(app, cmd)| R::Exec { app, cmd }),
        app_name().prop_map(R::RolloutStatus),
        (any::<u64>(), option::of(app_name())).prop_map(|(after, app)| R::Events { after, app }),
        manifest_source().prop_map(R::Plan),
        app_name().prop_map(R::History),
        (app_name(), option::of(any::<u64>()))
            .prop_map(|(app, generation)| R::Rollback { app, generation }),
        app_name().prop_map(R::Promote),
    ]
    .boxed()
}

fn generation_entry() -> BoxedStrategy<GenerationEntry> {
    (any::<u64>(), any::<u64>(), any::<u32>(), "[0-9a-f]{1,64}")
        .prop_map(|(generation, at_ms, desired, digest)| GenerationEntry {
            generation,
            at_ms,
            desired,
            digest: SpecDigest::new(digest).unwrap(),
        })
        .boxed()
}

fn event_entry() -> BoxedStrategy<EventEntry> {
    let kinds: Vec<EventKind> = EventKind::all().collect();
    (
        any::<u64>(),
        any::<u64>(),
        proptest::sample::select(kinds),
        option::of(app_name()),
        option::of(replica_id()),
        option::of(node_id()),
        one_line(),
    )
        .prop_map(
            |(seq, at_ms, kind, app, replica, node, detail)| EventEntry {
                seq,
                at_ms,
                kind,
                app,
                replica,
                node,
                detail,
            },
        )
        .boxed()
}

fn replica_status() -> BoxedStrategy<ReplicaStatus> {
    (
        (
            app_name(),
            replica_id(),
            option::of(node_id()),
            any::<u32>(),
            replica_state(),
        ),
        (
            any::<u64>(),
            any::<u16>(),
            any::<u32>(),
            any::<u64>(),
            cpu(),
            any::<u64>(),
        ),
        (option::of(exit()), option::of(limit_mechanism())),
    )
        .prop_map(
            |(
                (app, replica, node, pid, state),
                (generation, port, restarts, uptime_s, cpu, rss_kb),
                (exit, limits),
            )| {
                ReplicaStatus {
                    app,
                    replica,
                    node,
                    pid,
                    state,
                    generation,
                    port,
                    restarts,
                    uptime_s,
                    cpu,
                    rss_kb,
                    exit,
                    limits,
                }
            },
        )
        .boxed()
}

fn app_status() -> BoxedStrategy<AppStatus> {
    (
        app_name(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        rollout_state(),
        option::of((option::of(any::<u64>()), option::of(any::<u64>()))),
    )
        .prop_map(
            |(app, desired, running, healthy, generation, rollout, runs)| AppStatus {
                app,
                desired,
                running,
                healthy,
                generation,
                rollout,
                runs: runs.map(|(next_ms, last_ms)| RunTimes { next_ms, last_ms }),
            },
        )
        .boxed()
}

pub(super) fn conductor_reply() -> BoxedStrategy<ConductorReply> {
    use ConductorReply as R;
    let placement =
        (app_name(), vec(node_id(), 0..4)).prop_map(|(app, nodes)| Placement { app, nodes });
    let list_entry = (app_name(), node_id(), any::<u32>()).prop_map(|(app, node, pid)| ListEntry {
        app,
        node,
        pid,
    });
    let node_entry =
        (node_id(), ip(), cpu(), any::<u64>()).prop_map(|(node, ip, cpu, ram_free_mb)| NodeEntry {
            node,
            ip,
            cpu,
            ram_free_mb,
        });
    let progress = (
        app_name(),
        rollout_state(),
        any::<u32>(),
        any::<u32>(),
        one_line(),
    )
        .prop_map(|(app, state, done, total, detail)| RolloutProgress {
            app,
            state,
            done,
            total,
            detail,
        });
    prop_oneof![
        vec(placement, 0..4).prop_map(R::Submitted),
        app_name().prop_map(R::Evicted),
        app_name().prop_map(R::RolloutStarted),
        (app_name(), any::<u32>()).prop_map(|(app, replicas)| R::Scaled { app, replicas }),
        vec(list_entry, 0..5).prop_map(R::List),
        vec(replica_status(), 0..5).prop_map(R::Status),
        vec(app_status(), 0..5).prop_map(R::Apps),
        vec(node_entry, 0..5).prop_map(R::Nodes),
        Just(R::Pong),
        logs_reply().prop_map(R::Logs),
        exec_reply().prop_map(R::Exec),
        progress.prop_map(R::RolloutStatus),
        (any::<u64>(), vec(event_entry(), 0..5))
            .prop_map(|(last_seq, events)| R::Events { last_seq, events }),
        (any::<bool>(), vec(one_line(), 0..5))
            .prop_map(|(changed, lines)| R::Plan { changed, lines }),
        (app_name(), any::<u64>(), vec(generation_entry(), 0..5)).prop_map(
            |(app, current, generations)| R::History {
                app,
                current,
                generations
            }
        ),
        (app_name(), any::<u64>()).prop_map(|(app, generation)| R::RollingBack { app, generation }),
        app_name().prop_map(R::Promoted),
        error_reply().prop_map(R::Error),
    ]
    .boxed()
}

/// Node requests; `with_launch` adds LAUNCH, whose app comes from the manifest generators.
pub(super) fn node_request(with_launch: bool) -> impl Strategy<Value = NodeRequest> {
    use NodeRequest as R;
    let others = prop_oneof![
        (node_id(), replica_id()).prop_map(|(node, replica)| R::Kill { node, replica }),
        Just(R::Status),
        (node_id(), replica_id()).prop_map(|(node, replica)| R::Logs { node, replica }),
        (node_id(), replica_id(), any::<u32>(), free_text()).prop_map(
            |(node, replica, timeout_ms, cmd)| R::Exec {
                node,
                replica,
                timeout_ms,
                cmd
            }
        ),
        Just(R::Ping),
    ];
    if with_launch {
        prop_oneof![launch().prop_map(|spec| R::Launch(Box::new(spec))), others].boxed()
    } else {
        others.boxed()
    }
}

pub(super) fn launch() -> BoxedStrategy<LaunchSpec> {
    (node_id(), replica_id(), any::<u64>(), manifest::app())
        .prop_map(|(node, replica, generation, app)| LaunchSpec {
            node,
            replica,
            generation,
            app,
        })
        .boxed()
}

pub(super) fn node_reply() -> BoxedStrategy<NodeReply> {
    use NodeReply as R;
    let entry =
        (replica_id(), any::<u32>()).prop_map(|(replica, pid)| NodeStatusEntry { replica, pid });
    prop_oneof![
        (replica_id(), any::<u32>(), any::<u16>()).prop_map(|(replica, pid, port)| R::Launched {
            replica,
            pid,
            port
        }),
        replica_id().prop_map(R::Killed),
        vec(entry, 0..5).prop_map(R::Status),
        logs_reply().prop_map(R::Logs),
        exec_reply().prop_map(R::Exec),
        node_id().prop_map(R::Pong),
        error_reply().prop_map(R::Error),
    ]
    .boxed()
}

pub(super) fn mesh_event() -> BoxedStrategy<MeshEvent> {
    let report = (
        (replica_id(), app_name(), any::<u64>(), any::<u32>()),
        (replica_state(), any::<u16>(), cpu(), any::<u64>()),
        (option::of(limit_mechanism()), any::<u32>(), any::<u64>()),
    )
        .prop_map(
            |(
                (replica, app, generation, pid),
                (state, port, cpu, rss_kb),
                (limits, restarts, uptime_s),
            )| ReplicaReport {
                replica,
                app,
                generation,
                pid,
                state,
                port,
                cpu,
                rss_kb,
                limits,
                restarts,
                uptime_s,
            },
        );
    let detail = (
        ip(),
        any::<u16>(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        vec(report, 0..5),
        any::<u32>(),
    )
        .prop_map(
            |(advertise, agent_port, ram_total_mb, cpu_millicores, seq, replicas, gpus)| {
                HeartbeatDetail {
                    advertise,
                    agent_port,
                    ram_total_mb,
                    cpu_millicores,
                    seq,
                    replicas,
                    gpus,
                }
            },
        );
    let heartbeat = (node_id(), cpu(), any::<u64>(), option::of(detail)).prop_map(
        |(node, cpu, ram_free_mb, detail)| Heartbeat {
            node,
            cpu,
            ram_free_mb,
            detail,
        },
    );
    let died = (node_id(), replica_id(), app_name(), exit(), any::<bool>()).prop_map(
        |(node, replica, app, exit, restarting)| Died {
            node,
            replica,
            app,
            exit,
            restarting,
        },
    );
    prop_oneof![
        heartbeat.prop_map(MeshEvent::Heartbeat),
        died.prop_map(MeshEvent::Died)
    ]
    .boxed()
}

pub(super) fn tower_request() -> BoxedStrategy<TowerRequest> {
    use TowerRequest as R;
    prop_oneof![
        (service(), backend(), option::of(any::<u32>())).prop_map(|(service, backend, ttl_s)| {
            R::Register {
                service,
                backend,
                ttl_s,
            }
        }),
        (service(), backend()).prop_map(|(service, backend)| R::Deregister { service, backend }),
        service().prop_map(R::Lookup),
        Just(R::List),
        Just(R::Ping),
        (vec(service(), 0..5), any::<u32>())
            .prop_map(|(services, lease_s)| R::Watch { services, lease_s }),
        service().prop_map(R::Unwatch),
        (service(), any::<u64>(), any::<bool>()).prop_map(|(service, version, drained)| R::Ack {
            service,
            version,
            drained
        }),
        (service(), any::<u64>()).prop_map(|(service, version)| R::Drained { service, version }),
        (app_name(), vec(manifest::route(), 0..4))
            .prop_map(|(app, routes)| R::PublishRoutes { app, routes }),
        Just(R::Routes),
        any::<u32>().prop_map(|lease_s| R::WatchRoutes { lease_s }),
        (app_name(), any::<u64>()).prop_map(|(app, version)| R::AckRoutes { app, version }),
    ]
    .boxed()
}

pub(super) fn tower_reply() -> BoxedStrategy<TowerReply> {
    use TowerReply as R;
    let entry =
        (service(), backend(), any::<u32>()).prop_map(|(service, backend, ttl_s)| TowerEntry {
            service,
            backend,
            ttl_s,
        });
    let drain = (service(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
        |(service, version, acked, subscribers)| DrainStatus {
            service,
            version,
            acked,
            subscribers,
        },
    );
    prop_oneof![
        service().prop_map(R::Registered),
        service().prop_map(R::Deregistered),
        (service(), backend()).prop_map(|(service, backend)| R::Lookup { service, backend }),
        vec(entry, 0..5).prop_map(R::List),
        Just(R::Pong),
        any::<u32>().prop_map(|lease_s| R::Watching { lease_s }),
        service().prop_map(R::Unwatched),
        (service(), any::<u64>()).prop_map(|(service, version)| R::Acked { service, version }),
        drain.prop_map(R::Drained),
        (app_name(), any::<u64>()).prop_map(|(app, version)| R::Published { app, version }),
        vec(
            (app_name(), manifest::route()).prop_map(|(app, route)| PublishedRoute { app, route }),
            0..5
        )
        .prop_map(R::Routes),
        (app_name(), any::<u64>()).prop_map(|(app, version)| R::AckedRoutes { app, version }),
        error_reply().prop_map(R::Error),
    ]
    .boxed()
}

pub(super) fn tower_push() -> BoxedStrategy<TowerPush> {
    (service(), any::<u64>(), vec(backend(), 0..6))
        .prop_map(|(service, version, backends)| TowerPush::Update {
            service,
            version,
            backends,
        })
        .boxed()
}

pub(super) fn routes_update() -> BoxedStrategy<RoutesUpdate> {
    (app_name(), any::<u64>(), vec(manifest::route(), 0..4))
        .prop_map(|(app, version, routes)| RoutesUpdate {
            app,
            version,
            routes,
        })
        .boxed()
}
