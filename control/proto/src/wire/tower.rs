//! The Tower's socket (UDP 7772): registrations, lookups, and WATCH subscriptions with their
//! versioned pushes and drain acknowledgements.
//!
//! ```text
//! node ──REGISTER/DEREGISTER──▶ Tower                 (replicas come and go)
//! ingress ──WATCH svc,…|lease──▶ Tower ──OK|WATCHING──▶ ingress
//!          Tower ──UPDATE|svc|version|n|backends──▶ ingress   (push: on change and on renewal)
//! ingress ──ACK|svc|version|drained──▶ Tower ──OK|ACKED──▶ ingress
//! conductor ──DRAINED|svc|version──▶ Tower ──OK|DRAINED|…|all|acked|subscribers──▶ conductor
//! ```
//! Routes apps declare (SPEC §7.1) travel the same way, per app instead of per service:
//! ```text
//! conductor ──PUBLISH_ROUTES|app|n|routes──▶ Tower ──OK|PUBLISHED|app|version──▶ conductor
//! ingress ──WATCH_ROUTES|lease──▶ Tower ──OK|WATCHING──▶ ingress
//!          Tower ──ROUTES_UPDATE|app|version|n|routes──▶ ingress   (on change and on renewal)
//! ingress ──ACK_ROUTES|app|version──▶ Tower ──OK|ACKED_ROUTES──▶ ingress
//! cli ──ROUTES──▶ Tower ──OK|ROUTES|n|app:route,…──▶ cli
//! ```
//! An app's routes are replaced as a whole; an empty set withdraws them (EVICT).
//!
//! Versions of a service's backend set only increase. An ACK for a version also acknowledges
//! every earlier one. `drained` 1 means: the subscriber routes by this version and no request
//! it forwarded is still in flight to a backend this (or an earlier) version removed; 0 means
//! it routes by it but is still waiting for such requests.

use std::net::IpAddr;

use super::error::WireError;
use super::fields::{self, Encoder, part, parts_around_ip, write_parts};
use super::message::{Auth, Message, Request};
use super::reply::{self, ErrorReply, Opened};
use super::routes;
use super::types::Backend;
use crate::name::{AppName, ServiceName};
use crate::route::RouteSpec;

/// A request to the Tower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TowerRequest {
    /// `REGISTER|<name>|<ip>|<port>[|<ttl_s>]`: add or refresh a backend (default TTL 30 s).
    Register {
        service: ServiceName,
        backend: Backend,
        ttl_s: Option<u32>,
    },
    /// `DEREGISTER|<name>|<ip>|<port>`.
    Deregister {
        service: ServiceName,
        backend: Backend,
    },
    /// `LOOKUP|<name>`: one backend, round-robin.
    Lookup(ServiceName),
    /// `LIST`: every live entry.
    List,
    /// `PING`.
    Ping,
    /// `WATCH|<service>[,<service>…]|<lease_s>`: subscribe (or renew) for `lease_s` seconds.
    Watch {
        services: Vec<ServiceName>,
        lease_s: u32,
    },
    /// `UNWATCH|<service>`: end the subscription to one service.
    Unwatch(ServiceName),
    /// `ACK|<service>|<version>|<drained 0/1>`: see the module doc.
    Ack {
        service: ServiceName,
        version: u64,
        drained: bool,
    },
    /// `DRAINED|<service>|<version>`: has every live subscriber drained `version`?
    Drained { service: ServiceName, version: u64 },
    /// `PUBLISH_ROUTES|<app>|<n>|<route>,…`: the whole route set of `app` (none: withdraw).
    PublishRoutes {
        app: AppName,
        routes: Vec<RouteSpec>,
    },
    /// `ROUTES`: every published route.
    Routes,
    /// `WATCH_ROUTES|<lease_s>`: subscribe (or renew) to every app's routes for `lease_s`.
    WatchRoutes { lease_s: u32 },
    /// `ACK_ROUTES|<app>|<version>`: the subscriber serves `version` of `app`'s routes.
    AckRoutes { app: AppName, version: u64 },
}

const VERBS: &[&str] = &[
    "PUBLISH_ROUTES",
    "ROUTES",
    "WATCH_ROUTES",
    "ACK_ROUTES",
    "REGISTER",
    "DEREGISTER",
    "LOOKUP",
    "LIST",
    "PING",
    "WATCH",
    "UNWATCH",
    "ACK",
    "DRAINED",
];

impl Request for TowerRequest {
    fn verb(&self) -> &'static str {
        match self {
            Self::Register { .. } => "REGISTER",
            Self::Deregister { .. } => "DEREGISTER",
            Self::Lookup(_) => "LOOKUP",
            Self::List => "LIST",
            Self::Ping => "PING",
            Self::Watch { .. } => "WATCH",
            Self::Unwatch(_) => "UNWATCH",
            Self::Ack { .. } => "ACK",
            Self::Drained { .. } => "DRAINED",
            Self::PublishRoutes { .. } => "PUBLISH_ROUTES",
            Self::Routes => "ROUTES",
            Self::WatchRoutes { .. } => "WATCH_ROUTES",
            Self::AckRoutes { .. } => "ACK_ROUTES",
        }
    }

    fn auth(&self) -> Auth {
        match self {
            Self::Register { .. }
            | Self::Deregister { .. }
            | Self::Watch { .. }
            | Self::Unwatch(_)
            | Self::Ack { .. }
            | Self::PublishRoutes { .. }
            | Self::WatchRoutes { .. }
            | Self::AckRoutes { .. } => Auth::Mesh,
            Self::Lookup(_) | Self::List | Self::Ping | Self::Drained { .. } | Self::Routes => {
                Auth::Unsigned
            }
        }
    }
}

impl Message for TowerRequest {
    fn encode(&self) -> String {
        let enc = Encoder::new(self.verb());
        match self {
            Self::Register {
                service,
                backend,
                ttl_s,
            } => {
                let enc = enc.field(service).field(backend.ip).field(backend.port);
                match ttl_s {
                    Some(ttl) => enc.field(ttl),
                    None => enc,
                }
            }
            Self::Deregister { service, backend } => {
                enc.field(service).field(backend.ip).field(backend.port)
            }
            Self::Lookup(service) | Self::Unwatch(service) => enc.field(service),
            Self::List | Self::Ping => enc,
            Self::Watch { services, lease_s } => enc
                .list(services, |out, s| {
                    out.push_str(s.as_str());
                    Ok(())
                })
                .field(lease_s),
            Self::Ack {
                service,
                version,
                drained,
            } => enc.field(service).field(version).field(u8::from(*drained)),
            Self::Drained { service, version } => enc.field(service).field(version),
            Self::PublishRoutes { app, routes } => {
                enc.field(app).counted_list(routes, routes::write)
            }
            Self::Routes => enc,
            Self::WatchRoutes { lease_s } => enc.field(lease_s),
            Self::AckRoutes { app, version } => enc.field(app).field(version),
        }
        .finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut f = fields::open(bytes, VERBS)?;
        let verb = f.verb();
        let msg = match verb {
            "REGISTER" => Self::Register {
                service: f.parse("name")?,
                backend: Backend {
                    ip: f.parse("ip")?,
                    port: f.parse("port")?,
                },
                ttl_s: f.parse_opt("ttl_s")?,
            },
            "DEREGISTER" => Self::Deregister {
                service: f.parse("name")?,
                backend: Backend {
                    ip: f.parse("ip")?,
                    port: f.parse("port")?,
                },
            },
            "LOOKUP" => Self::Lookup(f.parse("name")?),
            "LIST" => Self::List,
            "PING" => Self::Ping,
            "WATCH" => Self::Watch {
                services: fields::list(f.next("services")?, |s| part(verb, "services", s))?,
                lease_s: f.parse("lease_s")?,
            },
            "UNWATCH" => Self::Unwatch(f.parse("service")?),
            "ACK" => Self::Ack {
                service: f.parse("service")?,
                version: f.parse("version")?,
                drained: f.parse("drained")?,
            },
            "DRAINED" => Self::Drained {
                service: f.parse("service")?,
                version: f.parse("version")?,
            },
            "PUBLISH_ROUTES" => Self::PublishRoutes {
                app: f.parse("app")?,
                routes: f.counted_list("routes", |r| routes::read(verb, r))?,
            },
            "ROUTES" => Self::Routes,
            "WATCH_ROUTES" => Self::WatchRoutes {
                lease_s: f.parse("lease_s")?,
            },
            "ACK_ROUTES" => Self::AckRoutes {
                app: f.parse("app")?,
                version: f.parse("version")?,
            },
            _ => return Err(fields::unknown_verb(verb)),
        };
        f.finish()?;
        Ok(msg)
    }
}

/// A Tower reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TowerReply {
    /// `OK|REGISTERED|<name>`.
    Registered(ServiceName),
    /// `OK|DEREGISTERED|<name>`.
    Deregistered(ServiceName),
    /// `OK|LOOKUP|<name>|<ip>|<port>`.
    Lookup {
        service: ServiceName,
        backend: Backend,
    },
    /// `OK|LIST|<n>|<name:ip:port:ttl_s>,…`.
    List(Vec<TowerEntry>),
    /// `OK|PONG|tower`.
    Pong,
    /// `OK|WATCHING|<lease_s>`: the lease granted (the Tower may shorten the one asked for).
    Watching { lease_s: u32 },
    /// `OK|UNWATCHED|<service>`.
    Unwatched(ServiceName),
    /// `OK|ACKED|<service>|<version>`.
    Acked { service: ServiceName, version: u64 },
    /// `OK|DRAINED|<service>|<version>|<all 0/1>|<acked>|<subscribers>`.
    Drained(DrainStatus),
    /// `OK|PUBLISHED|<app>|<version>`: the version the app's routes are at now.
    Published { app: AppName, version: u64 },
    /// `OK|ROUTES|<n>|<app>:<route>,…`: every published route, by app then in the app's order.
    Routes(Vec<PublishedRoute>),
    /// `OK|ACKED_ROUTES|<app>|<version>`.
    AckedRoutes { app: AppName, version: u64 },
    /// `ERR|<CODE>[|<detail>]`, e.g. the seed's `ERR|NOT_FOUND|<name>`.
    Error(ErrorReply),
}

/// One entry of the Tower's `OK|LIST`: `name:ip:port:ttl_s` (the address may be IPv6, which is
/// why it is the middle part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TowerEntry {
    pub service: ServiceName,
    pub backend: Backend,
    /// Seconds until the entry expires unless refreshed.
    pub ttl_s: u32,
}

/// One entry of `OK|ROUTES`: a route and the app that published it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedRoute {
    pub app: AppName,
    pub route: RouteSpec,
}

/// The answer to DRAINED: `acked` of the `subscribers` live subscribers of `service` have
/// acknowledged `version` with `drained` 1. On the wire `all` is written before the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainStatus {
    pub service: ServiceName,
    pub version: u64,
    pub acked: u32,
    pub subscribers: u32,
}

impl DrainStatus {
    /// Whether every live subscriber has drained the version (true when there are none).
    #[must_use]
    pub fn all(&self) -> bool {
        self.acked >= self.subscribers
    }
}

const TAGS: &[&str] = &[
    "OK|REGISTERED",
    "OK|DEREGISTERED",
    "OK|LOOKUP",
    "OK|LIST",
    "OK|PONG",
    "OK|WATCHING",
    "OK|UNWATCHED",
    "OK|ACKED",
    "OK|DRAINED",
    "OK|PUBLISHED",
    "OK|ROUTES",
    "OK|ACKED_ROUTES",
];

impl Message for TowerReply {
    fn encode(&self) -> String {
        match self {
            Self::Registered(service) => Encoder::new("OK|REGISTERED").field(service).finish(),
            Self::Deregistered(service) => Encoder::new("OK|DEREGISTERED").field(service).finish(),
            Self::Lookup { service, backend } => Encoder::new("OK|LOOKUP")
                .field(service)
                .field(backend.ip)
                .field(backend.port)
                .finish(),
            Self::List(entries) => Encoder::new("OK|LIST")
                .counted_list(entries, |out, e| {
                    write_parts(out, &[&e.service, &e.backend.ip, &e.backend.port, &e.ttl_s])
                })
                .finish(),
            Self::Pong => "OK|PONG|tower".to_owned(),
            Self::Watching { lease_s } => Encoder::new("OK|WATCHING").field(lease_s).finish(),
            Self::Unwatched(service) => Encoder::new("OK|UNWATCHED").field(service).finish(),
            Self::Acked { service, version } => Encoder::new("OK|ACKED")
                .field(service)
                .field(version)
                .finish(),
            Self::Drained(d) => Encoder::new("OK|DRAINED")
                .field(&d.service)
                .field(d.version)
                .field(u8::from(d.all()))
                .field(d.acked)
                .field(d.subscribers)
                .finish(),
            Self::Published { app, version } => Encoder::new("OK|PUBLISHED")
                .field(app)
                .field(version)
                .finish(),
            Self::Routes(entries) => Encoder::new("OK|ROUTES")
                .counted_list(entries, |out, e| {
                    out.push_str(e.app.as_str());
                    out.push(':');
                    routes::write(out, &e.route)
                })
                .finish(),
            Self::AckedRoutes { app, version } => Encoder::new("OK|ACKED_ROUTES")
                .field(app)
                .field(version)
                .finish(),
            Self::Error(err) => err.encode(),
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut f = match reply::open(bytes, TAGS)? {
            Opened::Ok(f) => f,
            Opened::Err(err) => return Ok(Self::Error(err)),
        };
        let label = f.verb();
        let msg = match label {
            "OK|REGISTERED" => Self::Registered(f.parse("name")?),
            "OK|DEREGISTERED" => Self::Deregistered(f.parse("name")?),
            "OK|LOOKUP" => Self::Lookup {
                service: f.parse("name")?,
                backend: Backend {
                    ip: f.parse("ip")?,
                    port: f.parse("port")?,
                },
            },
            "OK|LIST" => Self::List(f.counted_list("entries", |e| {
                let ([name], ip, [port, ttl]) = parts_around_ip::<1, 2>(label, "entries", e)?;
                Ok(TowerEntry {
                    service: part(label, "name", name)?,
                    backend: Backend {
                        ip: part::<IpAddr>(label, "ip", ip)?,
                        port: part(label, "port", port)?,
                    },
                    ttl_s: part(label, "ttl_s", ttl)?,
                })
            })?),
            "OK|PONG" => match f.next("who")? {
                "tower" => Self::Pong,
                _ => return Err(f.bad("who", "expected `tower`")),
            },
            "OK|WATCHING" => Self::Watching {
                lease_s: f.parse("lease_s")?,
            },
            "OK|UNWATCHED" => Self::Unwatched(f.parse("service")?),
            "OK|ACKED" => Self::Acked {
                service: f.parse("service")?,
                version: f.parse("version")?,
            },
            "OK|DRAINED" => {
                let service = f.parse("service")?;
                let version = f.parse("version")?;
                let all: bool = f.parse("all")?;
                let status = DrainStatus {
                    service,
                    version,
                    acked: f.parse("acked")?,
                    subscribers: f.parse("subscribers")?,
                };
                if status.all() != all {
                    return Err(f.bad("all", "disagrees with acked and subscribers"));
                }
                Self::Drained(status)
            }
            "OK|PUBLISHED" => Self::Published {
                app: f.parse("app")?,
                version: f.parse("version")?,
            },
            "OK|ROUTES" => Self::Routes(f.counted_list("routes", |e| {
                let (app, route) = e
                    .split_once(':')
                    .ok_or_else(|| fields::bad(label, "routes", "expected `<app>:<route>`"))?;
                Ok(PublishedRoute {
                    app: part(label, "app", app)?,
                    route: routes::read(label, route)?,
                })
            })?),
            "OK|ACKED_ROUTES" => Self::AckedRoutes {
                app: f.parse("app")?,
                version: f.parse("version")?,
            },
            _ => return Err(fields::unknown_verb(label)),
        };
        f.finish()?;
        Ok(msg)
    }
}

/// A datagram the Tower sends to a subscriber unasked. It is request-kind (it does not start
/// with `OK`/`ERR`); the subscriber answers it with an [`TowerRequest::Ack`], not a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TowerPush {
    /// `UPDATE|<service>|<version>|<n>|<ip:port>,…` (IPv6 as `[addr]:port`): the whole
    /// current backend set of `service` at `version`.
    Update {
        service: ServiceName,
        version: u64,
        backends: Vec<Backend>,
    },
}

const PUSH_VERBS: &[&str] = &["UPDATE"];

impl Request for TowerPush {
    fn verb(&self) -> &'static str {
        match self {
            Self::Update { .. } => "UPDATE",
        }
    }

    fn auth(&self) -> Auth {
        Auth::Mesh
    }
}

impl Message for TowerPush {
    fn encode(&self) -> String {
        match self {
            Self::Update {
                service,
                version,
                backends,
            } => Encoder::new(self.verb())
                .field(service)
                .field(version)
                .counted_list(backends, |out, b| write_parts(out, &[b]))
                .finish(),
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut f = fields::open(bytes, PUSH_VERBS)?;
        let verb = f.verb();
        let msg = match verb {
            "UPDATE" => Self::Update {
                service: f.parse("service")?,
                version: f.parse("version")?,
                backends: f.counted_list("backends", |b| part(verb, "backends", b))?,
            },
            _ => return Err(fields::unknown_verb(verb)),
        };
        f.finish()?;
        Ok(msg)
    }
}

/// The Tower's other push, to WATCH_ROUTES subscribers:
/// `ROUTES_UPDATE|<app>|<version>|<n>|<route>,…`, the whole current route set of `app` at
/// `version` (none: the app's routes are withdrawn). Request-kind like [`TowerPush`]; the
/// subscriber answers it with [`TowerRequest::AckRoutes`]. A type of its own, so a backend
/// subscriber's decoder of [`TowerPush`] stays as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesUpdate {
    pub app: AppName,
    pub version: u64,
    pub routes: Vec<RouteSpec>,
}

const ROUTES_PUSH_VERBS: &[&str] = &["ROUTES_UPDATE"];

impl Request for RoutesUpdate {
    fn verb(&self) -> &'static str {
        "ROUTES_UPDATE"
    }

    fn auth(&self) -> Auth {
        Auth::Mesh
    }
}

impl Message for RoutesUpdate {
    fn encode(&self) -> String {
        Encoder::new(self.verb())
            .field(&self.app)
            .field(self.version)
            .counted_list(&self.routes, routes::write)
            .finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut f = fields::open(bytes, ROUTES_PUSH_VERBS)?;
        let verb = f.verb();
        let msg = Self {
            app: f.parse("app")?,
            version: f.parse("version")?,
            routes: f.counted_list("routes", |r| routes::read(verb, r))?,
        };
        f.finish()?;
        Ok(msg)
    }
}
