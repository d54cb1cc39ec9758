//! The Conductor's command socket (UDP 7771): what the operator (CLI) asks, and the replies.
//!
//! ```text
//! skr8tr ──ConductorRequest──▶ skr8tr_sched :7771 ──ConductorReply──▶ skr8tr
//! ```
//! Formats are the seed's where it had them (`SUBMIT|<path>`, `LIST`, `NODES`, `PING`, …),
//! byte for byte. Which requests must be operator-signed is [`ConductorRequest::auth`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use super::error::WireError;
use super::events::{self, EventEntry};
use super::fields::{self, Encoder, Fields, part, parts, parts_around_ip, write_parts};
use super::message::{Auth, MAX_DATAGRAM, Message, Request};
use super::reply::{self, ErrorReply, ExecReply, LogsReply, Opened};
use super::types::{CpuPercent, Exit, LimitMechanism, OneLine, ReplicaState, RolloutState};
use crate::name::{AppName, NodeId, ReplicaId};

/// The prefix that marks an inline manifest in SUBMIT and ROLLOUT.
const INLINE_PREFIX: &str = "b64:";

/// The node list of an app none of whose replicas could be placed.
const PENDING: &str = "pending";

/// A request to the Conductor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConductorRequest {
    /// `SUBMIT|<source>`: run the manifest's apps (idempotent: an unchanged app is left as is).
    Submit(ManifestSource),
    /// `EVICT|<app>`: stop every replica of the app and forget it.
    Evict(AppName),
    /// `ROLLOUT|<source>`: replace the app's replicas with the manifest's new version.
    Rollout(ManifestSource),
    /// `SCALE|<app>|<replicas>`: set the number of replicas.
    Scale { app: AppName, replicas: u32 },
    /// `LIST`: the seed's placement list.
    List,
    /// `STATUS[|<app>]`: every replica (of one app).
    Status { app: Option<AppName> },
    /// `APPS`: one summary line per app.
    Apps,
    /// `NODES`: live nodes and their load.
    Nodes,
    /// `PING`.
    Ping,
    /// `LOGS|<app>[|<replica_id>]`: the newest output lines of one replica (by default the
    /// app's first).
    Logs {
        app: AppName,
        replica: Option<ReplicaId>,
    },
    /// `EXEC|<app>|<cmd>`: run `cmd` (the last field, may contain `|`) beside one replica.
    Exec { app: AppName, cmd: String },
    /// `ROLLOUT_STATUS|<app>`: progress of the app's current or last rollout.
    RolloutStatus(AppName),
    /// `EVENTS[|<after>[|<app>]]`: the events after sequence number `after` (0: the oldest
    /// kept), of one app when given, oldest first, as many as fit one reply.
    Events { after: u64, app: Option<AppName> },
    /// `PLAN|<source>`: what SUBMIT or ROLLOUT of the manifest would change, changing nothing.
    Plan(ManifestSource),
    /// `HISTORY|<app>`: the app's stored generations.
    History(AppName),
    /// `ROLLBACK|<app>[|<generation>]`: drop a running rollout or canary (restoring the
    /// previous generation), or, with none running, roll to the spec of `generation` (default:
    /// the one before the current) through a normal rollout.
    Rollback {
        app: AppName,
        generation: Option<u64>,
    },
    /// `PROMOTE|<app>`: a rollout waiting at its canaries goes on.
    Promote(AppName),
}

const VERBS: &[&str] = &[
    "SUBMIT",
    "EVICT",
    "ROLLOUT",
    "SCALE",
    "LIST",
    "STATUS",
    "APPS",
    "NODES",
    "PING",
    "LOGS",
    "EXEC",
    "ROLLOUT_STATUS",
    "EVENTS",
    "PLAN",
    "HISTORY",
    "ROLLBACK",
    "PROMOTE",
];

impl Request for ConductorRequest {
    fn verb(&self) -> &'static str {
        match self {
            Self::Submit(_) => "SUBMIT",
            Self::Evict(_) => "EVICT",
            Self::Rollout(_) => "ROLLOUT",
            Self::Scale { .. } => "SCALE",
            Self::List => "LIST",
            Self::Status { .. } => "STATUS",
            Self::Apps => "APPS",
            Self::Nodes => "NODES",
            Self::Ping => "PING",
            Self::Logs { .. } => "LOGS",
            Self::Exec { .. } => "EXEC",
            Self::RolloutStatus(_) => "ROLLOUT_STATUS",
            Self::Events { .. } => "EVENTS",
            Self::Plan(_) => "PLAN",
            Self::History(_) => "HISTORY",
            Self::Rollback { .. } => "ROLLBACK",
            Self::Promote(_) => "PROMOTE",
        }
    }

    /// Operator-signed: everything that changes what runs or reveals workload output.
    fn auth(&self) -> Auth {
        match self {
            Self::Submit(_)
            | Self::Evict(_)
            | Self::Rollout(_)
            | Self::Scale { .. }
            | Self::Logs { .. }
            | Self::Exec { .. }
            | Self::Plan(_)
            | Self::Rollback { .. }
            | Self::Promote(_) => Auth::Operator,
            Self::List
            | Self::Status { .. }
            | Self::Apps
            | Self::Nodes
            | Self::Ping
            | Self::RolloutStatus(_)
            | Self::Events { .. }
            | Self::History(_) => Auth::Unsigned,
        }
    }
}

impl Message for ConductorRequest {
    fn encode(&self) -> String {
        let enc = Encoder::new(self.verb());
        match self {
            Self::Submit(source) | Self::Rollout(source) | Self::Plan(source) => enc.field(source),
            Self::Evict(app)
            | Self::RolloutStatus(app)
            | Self::Status { app: Some(app) }
            | Self::History(app)
            | Self::Promote(app) => enc.field(app),
            Self::Rollback { app, generation } => match generation {
                Some(generation) => enc.field(app).field(generation),
                None => enc.field(app),
            },
            Self::Scale { app, replicas } => enc.field(app).field(replicas),
            Self::List | Self::Apps | Self::Nodes | Self::Ping | Self::Status { app: None } => enc,
            Self::Logs { app, replica } => match replica {
                Some(replica) => enc.field(app).field(replica),
                None => enc.field(app),
            },
            Self::Exec { app, cmd } => enc.field(app).field(cmd),
            Self::Events { after, app } => match app {
                Some(app) => enc.field(after).field(app),
                None if *after == 0 => enc,
                None => enc.field(after),
            },
        }
        .finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut f = fields::open(bytes, VERBS)?;
        let verb = f.verb();
        let msg = match verb {
            "SUBMIT" => Self::Submit(ManifestSource::decode(&mut f)?),
            "ROLLOUT" => Self::Rollout(ManifestSource::decode(&mut f)?),
            "EVICT" => Self::Evict(f.parse("app")?),
            "SCALE" => Self::Scale {
                app: f.parse("app")?,
                replicas: f.parse("replicas")?,
            },
            "LIST" => Self::List,
            "STATUS" => Self::Status {
                app: f.parse_opt("app")?,
            },
            "APPS" => Self::Apps,
            "NODES" => Self::Nodes,
            "PING" => Self::Ping,
            "LOGS" => Self::Logs {
                app: f.parse("app")?,
                replica: f.parse_opt("replica_id")?,
            },
            "EXEC" => Self::Exec {
                app: f.parse("app")?,
                cmd: f.rest("cmd")?.to_owned(),
            },
            "ROLLOUT_STATUS" => Self::RolloutStatus(f.parse("app")?),
            "EVENTS" => Self::Events {
                after: f.parse_opt("after")?.unwrap_or(0),
                app: f.parse_opt("app")?,
            },
            "PLAN" => Self::Plan(ManifestSource::decode(&mut f)?),
            "HISTORY" => Self::History(f.parse("app")?),
            "ROLLBACK" => Self::Rollback {
                app: f.parse("app")?,
                generation: f.parse_opt("generation")?,
            },
            "PROMOTE" => Self::Promote(f.parse("app")?),
            _ => return Err(fields::unknown_verb(verb)),
        };
        f.finish()?;
        Ok(msg)
    }
}

/// Where SUBMIT and ROLLOUT find the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// A path on the Conductor's host (the seed's form).
    Path(HostPath),
    /// The manifest text itself, sent as `b64:<standard base64>` so that a Conductor on
    /// another host need not read the operator's file.
    Inline(String),
}

impl ManifestSource {
    fn decode(f: &mut Fields<'_>) -> Result<Self, WireError> {
        let raw = f.rest("source")?;
        match raw.strip_prefix(INLINE_PREFIX) {
            Some(b64) => {
                let bytes = BASE64.decode(b64).map_err(|_| WireError::BadBase64 {
                    verb: f.verb(),
                    field: "source",
                })?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| f.bad("source", "the inline manifest is not UTF-8"))?;
                Ok(Self::Inline(text))
            }
            None => HostPath::new(raw)
                .map(Self::Path)
                .map_err(|_| f.bad("source", "empty path")),
        }
    }
}

impl fmt::Display for ManifestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => f.write_str(path.as_str()),
            Self::Inline(text) => write!(f, "{INLINE_PREFIX}{}", BASE64.encode(text)),
        }
    }
}

/// A manifest path on the Conductor's host: not empty, and not starting with `b64:` (which
/// marks an inline manifest). It is the last field of its message, so it may contain `|`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPath(String);

impl HostPath {
    /// # Errors
    /// [`WireError::Unencodable`] when `path` is empty or starts with `b64:`.
    pub fn new(path: impl Into<String>) -> Result<Self, WireError> {
        let path = path.into();
        if path.is_empty() {
            return Err(WireError::Unencodable {
                field: "path",
                reason: "empty",
            });
        }
        if path.starts_with(INLINE_PREFIX) {
            return Err(WireError::Unencodable {
                field: "path",
                reason: "starts with `b64:`",
            });
        }
        Ok(Self(path))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reply of the Conductor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConductorReply {
    /// `OK|SUBMITTED|<app>|<nodes>[|<app>|<nodes>…]`, one pair per app of the manifest.
    Submitted(Vec<Placement>),
    /// `OK|EVICTED|<app>`.
    Evicted(AppName),
    /// `OK|ROLLOUT|<app>`: the rollout started (or was already running with this spec).
    RolloutStarted(AppName),
    /// `OK|SCALED|<app>|<replicas>`.
    Scaled { app: AppName, replicas: u32 },
    /// `OK|LIST|<n>|<app:node_id:pid>,…`.
    List(Vec<ListEntry>),
    /// `OK|STATUS|<n>|<replica entries>`.
    Status(Vec<ReplicaStatus>),
    /// `OK|APPS|<n>|<app entries>`.
    Apps(Vec<AppStatus>),
    /// `OK|NODES|<n>|<node_id:ip:cpu%:ram_free_mb>,…`.
    Nodes(Vec<NodeEntry>),
    /// `OK|PONG|conductor`.
    Pong,
    /// `OK|LOGS|…`, relayed from the node.
    Logs(LogsReply),
    /// `OK|EXEC|…`, relayed from the node.
    Exec(ExecReply),
    /// `OK|ROLLOUT_STATUS|<app>|<state>|<done>|<total>|<detail>`.
    RolloutStatus(RolloutProgress),
    /// `OK|EVENTS|<last_seq>|<n>|<event entries>`: the events asked for and the newest
    /// sequence number the Conductor has (below the one asked after: it restarted).
    Events {
        last_seq: u64,
        events: Vec<EventEntry>,
    },
    /// `OK|PLAN|<changed 0/1>|<n>|<line>\n<line>…`: what the manifest would change, one line
    /// for people each (secret values never shown), and whether anything would.
    Plan { changed: bool, lines: Vec<OneLine> },
    /// `OK|HISTORY|<app>|<current>|<n>|<generation entries>`: the stored generations, oldest
    /// first, and which one runs.
    History {
        app: AppName,
        current: u64,
        generations: Vec<GenerationEntry>,
    },
    /// `OK|ROLLBACK|<app>|<generation>`: rolling back to the spec of `generation`.
    RollingBack { app: AppName, generation: u64 },
    /// `OK|PROMOTED|<app>`: the canary rollout goes on.
    Promoted(AppName),
    /// `ERR|<CODE>[|<detail>]`.
    Error(ErrorReply),
}

const TAGS: &[&str] = &[
    "OK|SUBMITTED",
    "OK|EVICTED",
    "OK|ROLLOUT",
    "OK|SCALED",
    "OK|LIST",
    "OK|STATUS",
    "OK|APPS",
    "OK|NODES",
    "OK|PONG",
    "OK|LOGS",
    "OK|EXEC",
    "OK|ROLLOUT_STATUS",
    "OK|EVENTS",
    "OK|PLAN",
    "OK|HISTORY",
    "OK|ROLLBACK",
    "OK|PROMOTED",
];

impl Message for ConductorReply {
    fn encode(&self) -> String {
        match self {
            Self::Submitted(placements) => {
                let mut enc = Encoder::new("OK|SUBMITTED");
                for p in placements {
                    enc = enc.field(&p.app);
                    enc = match p.nodes.as_slice() {
                        [] => enc.field(PENDING),
                        nodes => enc.list(nodes, |out, node| write!(out, "{node}")),
                    };
                }
                enc.finish()
            }
            Self::Evicted(app) => Encoder::new("OK|EVICTED").field(app).finish(),
            Self::RolloutStarted(app) => Encoder::new("OK|ROLLOUT").field(app).finish(),
            Self::Scaled { app, replicas } => Encoder::new("OK|SCALED")
                .field(app)
                .field(replicas)
                .finish(),
            Self::List(entries) => Encoder::new("OK|LIST")
                .counted_list(entries, |out, e| {
                    write_parts(out, &[&e.app, &e.node, &e.pid])
                })
                .finish(),
            Self::Status(entries) => Encoder::new("OK|STATUS")
                .counted_list(entries, ReplicaStatus::write)
                .finish(),
            Self::Apps(entries) => Encoder::new("OK|APPS")
                .counted_list(entries, AppStatus::write)
                .finish(),
            Self::Nodes(entries) => Encoder::new("OK|NODES")
                .counted_list(entries, |out, e| {
                    write_parts(out, &[&e.node, &e.ip, &e.cpu, &e.ram_free_mb])
                })
                .finish(),
            Self::Pong => "OK|PONG|conductor".to_owned(),
            Self::Logs(logs) => logs.encode(),
            Self::Exec(exec) => exec.encode(),
            Self::RolloutStatus(p) => Encoder::new("OK|ROLLOUT_STATUS")
                .field(&p.app)
                .field(p.state)
                .field(p.done)
                .field(p.total)
                .field(&p.detail)
                .finish(),
            Self::Events { last_seq, events } => Encoder::new("OK|EVENTS")
                .field(last_seq)
                .counted_list(events, events::write)
                .finish(),
            Self::Plan { changed, lines } => {
                let mut out = Encoder::new("OK|PLAN")
                    .field(u8::from(*changed))
                    .field(lines.len())
                    .finish();
                out.push('|');
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str(line.as_str());
                }
                out
            }
            Self::History {
                app,
                current,
                generations,
            } => Encoder::new("OK|HISTORY")
                .field(app)
                .field(current)
                .counted_list(generations, |out, g| {
                    write_parts(out, &[&g.generation, &g.at_ms, &g.desired, &g.digest])
                })
                .finish(),
            Self::RollingBack { app, generation } => Encoder::new("OK|ROLLBACK")
                .field(app)
                .field(generation)
                .finish(),
            Self::Promoted(app) => Encoder::new("OK|PROMOTED").field(app).finish(),
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
            "OK|SUBMITTED" => Self::Submitted(Placement::decode_all(&mut f)?),
            "OK|EVICTED" => Self::Evicted(f.parse("app")?),
            "OK|ROLLOUT" => Self::RolloutStarted(f.parse("app")?),
            "OK|SCALED" => Self::Scaled {
                app: f.parse("app")?,
                replicas: f.parse("replicas")?,
            },
            "OK|LIST" => Self::List(f.counted_list("entries", |e| ListEntry::parse(label, e))?),
            "OK|STATUS" => {
                Self::Status(f.counted_list("entries", |e| ReplicaStatus::parse(label, e))?)
            }
            "OK|APPS" => Self::Apps(f.counted_list("entries", |e| AppStatus::parse(label, e))?),
            "OK|NODES" => Self::Nodes(f.counted_list("entries", |e| NodeEntry::parse(label, e))?),
            "OK|PONG" => match f.next("who")? {
                "conductor" => Self::Pong,
                _ => return Err(f.bad("who", "expected `conductor`")),
            },
            "OK|LOGS" => return LogsReply::decode_fields(f).map(Self::Logs),
            "OK|EXEC" => return ExecReply::decode_fields(f).map(Self::Exec),
            "OK|ROLLOUT_STATUS" => Self::RolloutStatus(RolloutProgress {
                app: f.parse("app")?,
                state: f.parse("state")?,
                done: f.parse("done")?,
                total: f.parse("total")?,
                detail: f.rest("detail").and_then(|d| part(label, "detail", d))?,
            }),
            "OK|EVENTS" => Self::Events {
                last_seq: f.parse("last_seq")?,
                events: f.counted_list("events", |e| events::read(label, e))?,
            },
            "OK|PLAN" => {
                let changed = f.parse("changed")?;
                let n: usize = f.uint("n", 0..=MAX_DATAGRAM as u64)?;
                let text = if n == 0 && !f.has_more() {
                    ""
                } else {
                    f.rest("lines")?
                };
                let lines: Vec<OneLine> = match (n, text) {
                    (0, "") => Vec::new(),
                    _ => text
                        .split('\n')
                        .map(|l| part(label, "lines", l))
                        .collect::<Result<_, _>>()?,
                };
                if lines.len() != n {
                    return Err(f.bad("n", format!("says {n} lines, found {}", lines.len())));
                }
                return Ok(Self::Plan { changed, lines });
            }
            "OK|HISTORY" => Self::History {
                app: f.parse("app")?,
                current: f.parse("current")?,
                generations: f.counted_list("generations", |e| GenerationEntry::parse(label, e))?,
            },
            "OK|ROLLBACK" => Self::RollingBack {
                app: f.parse("app")?,
                generation: f.parse("generation")?,
            },
            "OK|PROMOTED" => Self::Promoted(f.parse("app")?),
            _ => return Err(fields::unknown_verb(label)),
        };
        f.finish()?;
        Ok(msg)
    }
}

/// One generation in `OK|HISTORY`: `generation:at_ms:desired:digest`, where `digest` is the
/// first 12 hex digits of the SHA-256 of the normalised spec with secret values left out (two
/// generations with equal digests differ at most in secret values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationEntry {
    pub generation: u64,
    /// When it was submitted, Unix milliseconds.
    pub at_ms: u64,
    /// The replica count it was submitted with.
    pub desired: u32,
    pub digest: SpecDigest,
}

impl GenerationEntry {
    fn parse(verb: &'static str, entry: &str) -> Result<Self, WireError> {
        let [generation, at_ms, desired, digest] = parts(verb, "generations", entry)?;
        Ok(Self {
            generation: part(verb, "generation", generation)?,
            at_ms: part(verb, "at_ms", at_ms)?,
            desired: part(verb, "desired", desired)?,
            digest: SpecDigest::new(digest).map_err(|_| {
                fields::bad(verb, "digest", "expected 1 to 64 lowercase hex digits")
            })?,
        })
    }
}

/// A spec digest: 1 to 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpecDigest(String);

impl SpecDigest {
    /// # Errors
    /// [`WireError::Unencodable`] when `hex` is empty, longer than 64 or not lowercase hex.
    pub fn new(hex: impl Into<String>) -> Result<Self, WireError> {
        let hex = hex.into();
        if hex.is_empty()
            || hex.len() > 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(WireError::Unencodable {
                field: "digest",
                reason: "not 1 to 64 lowercase hex digits",
            });
        }
        Ok(Self(hex))
    }

    /// The hex of `bytes` (the first 32 of them).
    #[must_use]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let mut hex = String::with_capacity(bytes.len().min(32) * 2);
        for b in bytes.iter().take(32) {
            let _ = write!(hex, "{b:02x}");
        }
        if hex.is_empty() {
            hex.push('0');
        }
        Self(hex)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpecDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where SUBMIT placed an app's replicas: one node id per placed replica (a node may repeat);
/// empty (written `pending`) when none could be placed yet. A node must therefore never be
/// called `pending`, which the Conductor refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub app: AppName,
    pub nodes: Vec<NodeId>,
}

impl Placement {
    fn decode_all(f: &mut Fields<'_>) -> Result<Vec<Self>, WireError> {
        let verb = f.verb();
        let mut out = Vec::new();
        while f.has_more() {
            let app = f.parse("app")?;
            let nodes = match f.next("nodes")? {
                PENDING => Vec::new(),
                list => fields::list(list, |node| part(verb, "nodes", node))?,
            };
            out.push(Self { app, nodes });
        }
        Ok(out)
    }
}

/// One entry of `OK|LIST`: `app:node_id:pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub app: AppName,
    pub node: NodeId,
    pub pid: u32,
}

impl ListEntry {
    fn parse(verb: &'static str, entry: &str) -> Result<Self, WireError> {
        let [app, node, pid] = parts(verb, "entries", entry)?;
        Ok(Self {
            app: part(verb, "app", app)?,
            node: part(verb, "node_id", node)?,
            pid: part(verb, "pid", pid)?,
        })
    }
}

/// One replica in `OK|STATUS`:
/// `app:replica_id:node_id:pid:state:generation:port:restarts:uptime_s:cpu_pct:rss_kb[:exit[:limits]]`
/// (`exit` once its process ended: `0`, `3`, `-9`, `oom-killed`, else empty when `limits`
/// follows; `limits` what enforces them on its node, when the node said it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub app: AppName,
    pub replica: ReplicaId,
    /// Empty on the wire while the replica is not placed.
    pub node: Option<NodeId>,
    /// 0 while no process runs.
    pub pid: u32,
    pub state: ReplicaState,
    pub generation: u64,
    /// The port it listens on; 0 when none.
    pub port: u16,
    /// Restarts since the Conductor placed it.
    pub restarts: u32,
    /// Seconds since the process started (0 when not running).
    pub uptime_s: u64,
    pub cpu: CpuPercent,
    /// Resident memory in KiB.
    pub rss_kb: u64,
    /// How its last process ended, once one did (a finished job's exit code).
    pub exit: Option<Exit>,
    /// What enforces its `ram`/`cpu` limits on its node.
    pub limits: Option<LimitMechanism>,
}

impl ReplicaStatus {
    fn write(out: &mut String, e: &Self) -> fmt::Result {
        let node = e.node.as_ref().map_or("", NodeId::as_str);
        let tail = match (e.exit, e.limits) {
            (exit, Some(limits)) => {
                let exit = exit.map(|x| x.to_string()).unwrap_or_default();
                format!(":{exit}:{limits}")
            }
            (Some(exit), None) => format!(":{exit}"),
            (None, None) => String::new(),
        };
        write_parts(
            out,
            &[
                &e.app,
                &e.replica,
                &node,
                &e.pid,
                &e.state,
                &e.generation,
                &e.port,
                &e.restarts,
                &e.uptime_s,
                &e.cpu,
                &e.rss_kb,
            ],
        )?;
        out.push_str(&tail);
        Ok(())
    }

    fn parse(verb: &'static str, entry: &str) -> Result<Self, WireError> {
        // The seed's eleven parts, then the exit and what enforces the limits, when known.
        let (entry, limits) = match parts::<13>(verb, "entries", entry) {
            Ok(all) => {
                let cut = entry.len() - all[12].len() - 1;
                (&entry[..cut], Some(part(verb, "limits", all[12])?))
            }
            Err(_) => (entry, None),
        };
        let (entry, exit) = match parts::<12>(verb, "entries", entry) {
            Ok(all) => {
                let cut = entry.len() - all[11].len() - 1;
                let exit = match all[11] {
                    "" if limits.is_some() => None,
                    raw => Some(part(verb, "exit", raw)?),
                };
                (&entry[..cut], exit)
            }
            Err(_) => (entry, None),
        };
        let [
            app,
            replica,
            node,
            pid,
            state,
            generation,
            port,
            restarts,
            uptime,
            cpu,
            rss,
        ] = parts(verb, "entries", entry)?;
        Ok(Self {
            app: part(verb, "app", app)?,
            replica: part(verb, "replica_id", replica)?,
            node: match node {
                "" => None,
                node => Some(part(verb, "node_id", node)?),
            },
            pid: part(verb, "pid", pid)?,
            state: part(verb, "state", state)?,
            generation: part(verb, "generation", generation)?,
            port: part(verb, "port", port)?,
            restarts: part(verb, "restarts", restarts)?,
            uptime_s: part(verb, "uptime_s", uptime)?,
            cpu: part(verb, "cpu_pct", cpu)?,
            rss_kb: part(verb, "rss_kb", rss)?,
            exit,
            limits,
        })
    }
}

/// One app in `OK|APPS`: `app:desired:running:healthy:generation:rollout_state`, then for a
/// scheduled job `:next_run_ms:last_run_ms` (either empty when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    pub app: AppName,
    /// Replicas wanted (the manifest's, or the last SCALE).
    pub desired: u32,
    /// Replicas with a live process (a rollout may run more than `desired`).
    pub running: u32,
    /// Replicas passing their health check.
    pub healthy: u32,
    /// The generation new replicas are launched with.
    pub generation: u64,
    pub rollout: RolloutState,
    /// A scheduled job's runs; `None` for any other app.
    pub runs: Option<RunTimes>,
}

/// When a scheduled job runs next and when its last run (since the Conductor started) began,
/// in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunTimes {
    pub next_ms: Option<u64>,
    pub last_ms: Option<u64>,
}

impl AppStatus {
    fn write(out: &mut String, e: &Self) -> fmt::Result {
        write_parts(
            out,
            &[
                &e.app,
                &e.desired,
                &e.running,
                &e.healthy,
                &e.generation,
                &e.rollout,
            ],
        )?;
        if let Some(runs) = e.runs {
            let text = |ms: Option<u64>| ms.map(|ms| ms.to_string()).unwrap_or_default();
            out.push_str(&format!(":{}:{}", text(runs.next_ms), text(runs.last_ms)));
        }
        Ok(())
    }

    fn parse(verb: &'static str, entry: &str) -> Result<Self, WireError> {
        let optional = |field: &'static str, raw: &str| -> Result<Option<u64>, WireError> {
            match raw {
                "" => Ok(None),
                raw => part(verb, field, raw).map(Some),
            }
        };
        let (entry, runs) = match parts::<8>(verb, "entries", entry) {
            Ok(all) => {
                let cut = entry.len() - all[6].len() - all[7].len() - 2;
                let runs = RunTimes {
                    next_ms: optional("next_run_ms", all[6])?,
                    last_ms: optional("last_run_ms", all[7])?,
                };
                (&entry[..cut], Some(runs))
            }
            Err(_) => (entry, None),
        };
        let [app, desired, running, healthy, generation, rollout] = parts(verb, "entries", entry)?;
        Ok(Self {
            runs,
            app: part(verb, "app", app)?,
            desired: part(verb, "desired", desired)?,
            running: part(verb, "running", running)?,
            healthy: part(verb, "healthy", healthy)?,
            generation: part(verb, "generation", generation)?,
            rollout: part(verb, "rollout_state", rollout)?,
        })
    }
}

/// One node in `OK|NODES`: `node_id:ip:cpu%:ram_free_mb` (the address may be IPv6, which
/// is why it is the middle part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEntry {
    pub node: NodeId,
    pub ip: IpAddr,
    pub cpu: CpuPercent,
    pub ram_free_mb: u64,
}

impl NodeEntry {
    fn parse(verb: &'static str, entry: &str) -> Result<Self, WireError> {
        let ([node], ip, [cpu, ram]) = parts_around_ip::<1, 2>(verb, "entries", entry)?;
        Ok(Self {
            node: part(verb, "node_id", node)?,
            ip: part(verb, "ip", ip)?,
            cpu: part(verb, "cpu_pct", cpu)?,
            ram_free_mb: part(verb, "ram_free_mb", ram)?,
        })
    }
}

/// `OK|ROLLOUT_STATUS|<app>|<state>|<done>|<total>|<detail>`: `done` of `total` replicas
/// replaced; `detail` (one line, may be empty) says what the rollout is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutProgress {
    pub app: AppName,
    pub state: RolloutState,
    pub done: u32,
    pub total: u32,
    pub detail: OneLine,
}
