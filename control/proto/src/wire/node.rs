//! The node agent's command socket (UDP 7775): what the Conductor asks a node, and the replies.
//!
//! ```text
//! skr8tr_sched ──NodeRequest──▶ skr8tr_node :7775 ──NodeReply──▶ skr8tr_sched
//! ```
//! Replicas are addressed by their [`ReplicaId`], never by app name. Every mesh-signed request
//! names the node it is for (its first field), and a node refuses one addressed to another: a
//! signature is only remembered by the replay cache of the node that saw it, so without the
//! target a LAUNCH or KILL recorded on its way to one node could be replayed to another within
//! the signature's validity window. LAUNCH carries the whole
//! app spec as the printed single-app manifest (secrets included, so LAUNCH is mesh-signed and
//! never logged: [`crate::manifest::print_app`]), and decoding parses it with
//! [`crate::manifest::parse_app`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::WireError;
use super::fields::{self, Encoder, Fields, part, parts, write_parts};
use super::message::{Auth, Message, Request};
use super::reply::{self, ErrorReply, ExecReply, LogsReply, Opened};
use crate::manifest::{self, App};
use crate::name::{NodeId, ReplicaId};

/// The file name the manifest parser reports for a LAUNCH's app spec.
const LAUNCH_FILE: &str = "<LAUNCH>";

/// A request to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRequest {
    /// `LAUNCH|<node_id>|<replica_id>|<generation>|<base64 of the printed single-app
    /// manifest>`. Idempotent: a replica that already runs with this id is not started twice.
    Launch(Box<LaunchSpec>),
    /// `KILL|<node_id>|<replica_id>`: deregister, SIGTERM, `drain` grace, SIGKILL. Idempotent.
    Kill { node: NodeId, replica: ReplicaId },
    /// `STATUS`: the node's replicas and their pids.
    Status,
    /// `LOGS|<node_id>|<replica_id>`.
    Logs { node: NodeId, replica: ReplicaId },
    /// `EXEC|<node_id>|<replica_id>|<timeout_ms>|<cmd>`: run `cmd` (last field) with the
    /// replica's environment; killed after `timeout_ms`.
    Exec {
        node: NodeId,
        replica: ReplicaId,
        timeout_ms: u32,
        cmd: String,
    },
    /// `PING`.
    Ping,
}

/// What LAUNCH starts: one replica of `app` at `generation`, on `node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The node the request is for; any other node refuses it.
    pub node: NodeId,
    pub replica: ReplicaId,
    pub generation: u64,
    pub app: App,
}

const VERBS: &[&str] = &["LAUNCH", "KILL", "STATUS", "LOGS", "EXEC", "PING"];

impl NodeRequest {
    /// The node a mesh-signed request is addressed to; `None` for `STATUS` and `PING`, which
    /// any node answers.
    #[must_use]
    pub fn target(&self) -> Option<&NodeId> {
        match self {
            Self::Launch(spec) => Some(&spec.node),
            Self::Kill { node, .. } | Self::Logs { node, .. } | Self::Exec { node, .. } => {
                Some(node)
            }
            Self::Status | Self::Ping => None,
        }
    }
}

impl Request for NodeRequest {
    fn verb(&self) -> &'static str {
        match self {
            Self::Launch(_) => "LAUNCH",
            Self::Kill { .. } => "KILL",
            Self::Status => "STATUS",
            Self::Logs { .. } => "LOGS",
            Self::Exec { .. } => "EXEC",
            Self::Ping => "PING",
        }
    }

    fn auth(&self) -> Auth {
        match self {
            Self::Launch(_) | Self::Kill { .. } | Self::Logs { .. } | Self::Exec { .. } => {
                Auth::Mesh
            }
            Self::Status | Self::Ping => Auth::Unsigned,
        }
    }
}

impl Message for NodeRequest {
    fn encode(&self) -> String {
        let enc = Encoder::new(self.verb());
        match self {
            Self::Launch(spec) => enc
                .field(&spec.node)
                .field(&spec.replica)
                .field(spec.generation)
                .field(BASE64.encode(manifest::print_app(&spec.app))),
            Self::Kill { node, replica } | Self::Logs { node, replica } => {
                enc.field(node).field(replica)
            }
            Self::Exec {
                node,
                replica,
                timeout_ms,
                cmd,
            } => enc.field(node).field(replica).field(timeout_ms).field(cmd),
            Self::Status | Self::Ping => enc,
        }
        .finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut f = fields::open(bytes, VERBS)?;
        let verb = f.verb();
        let msg = match verb {
            "LAUNCH" => Self::Launch(Box::new(LaunchSpec {
                node: f.parse("node_id")?,
                replica: f.parse("replica_id")?,
                generation: f.parse("generation")?,
                app: decode_app(&mut f)?,
            })),
            "KILL" => Self::Kill {
                node: f.parse("node_id")?,
                replica: f.parse("replica_id")?,
            },
            "STATUS" => Self::Status,
            "LOGS" => Self::Logs {
                node: f.parse("node_id")?,
                replica: f.parse("replica_id")?,
            },
            "EXEC" => Self::Exec {
                node: f.parse("node_id")?,
                replica: f.parse("replica_id")?,
                timeout_ms: f.parse("timeout_ms")?,
                cmd: f.rest("cmd")?.to_owned(),
            },
            "PING" => Self::Ping,
            _ => return Err(fields::unknown_verb(verb)),
        };
        f.finish()?;
        Ok(msg)
    }
}

/// The LAUNCH app spec: base64 → UTF-8 → manifest with exactly one app.
fn decode_app(f: &mut Fields<'_>) -> Result<App, WireError> {
    let verb = f.verb();
    let b64 = f.next("app")?;
    let bytes = BASE64
        .decode(b64)
        .map_err(|_| WireError::BadBase64 { verb, field: "app" })?;
    let text = String::from_utf8(bytes).map_err(|_| f.bad("app", "the manifest is not UTF-8"))?;
    manifest::parse_app(LAUNCH_FILE, &text).map_err(|e| WireError::BadManifest {
        verb,
        detail: e.to_string(),
    })
}

/// A node's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeReply {
    /// `OK|LAUNCHED|<replica_id>|<pid>|<port>` (port 0 when the app listens on none).
    Launched {
        replica: ReplicaId,
        pid: u32,
        port: u16,
    },
    /// `OK|KILLED|<replica_id>`.
    Killed(ReplicaId),
    /// `OK|STATUS|<n>|<replica_id:pid>,…` (the seed's `name:pid`, with replica ids).
    Status(Vec<NodeStatusEntry>),
    /// `OK|LOGS|…`.
    Logs(LogsReply),
    /// `OK|EXEC|…`.
    Exec(ExecReply),
    /// `OK|PONG|<node_id>`.
    Pong(NodeId),
    /// `ERR|<CODE>[|<detail>]`.
    Error(ErrorReply),
}

/// One replica in the node's `OK|STATUS`: `replica_id:pid` (pid 0 when not running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatusEntry {
    pub replica: ReplicaId,
    pub pid: u32,
}

const TAGS: &[&str] = &[
    "OK|LAUNCHED",
    "OK|KILLED",
    "OK|STATUS",
    "OK|LOGS",
    "OK|EXEC",
    "OK|PONG",
];

impl Message for NodeReply {
    fn encode(&self) -> String {
        match self {
            Self::Launched { replica, pid, port } => Encoder::new("OK|LAUNCHED")
                .field(replica)
                .field(pid)
                .field(port)
                .finish(),
            Self::Killed(replica) => Encoder::new("OK|KILLED").field(replica).finish(),
            Self::Status(entries) => Encoder::new("OK|STATUS")
                .counted_list(entries, |out, e| write_parts(out, &[&e.replica, &e.pid]))
                .finish(),
            Self::Logs(logs) => logs.encode(),
            Self::Exec(exec) => exec.encode(),
            Self::Pong(node) => Encoder::new("OK|PONG").field(node).finish(),
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
            "OK|LAUNCHED" => Self::Launched {
                replica: f.parse("replica_id")?,
                pid: f.parse("pid")?,
                port: f.parse("port")?,
            },
            "OK|KILLED" => Self::Killed(f.parse("replica_id")?),
            "OK|STATUS" => Self::Status(f.counted_list("entries", |e| {
                let [replica, pid] = parts(label, "entries", e)?;
                Ok(NodeStatusEntry {
                    replica: part(label, "replica_id", replica)?,
                    pid: part(label, "pid", pid)?,
                })
            })?),
            "OK|LOGS" => return LogsReply::decode_fields(f).map(Self::Logs),
            "OK|EXEC" => return ExecReply::decode_fields(f).map(Self::Exec),
            "OK|PONG" => Self::Pong(f.parse("node_id")?),
            _ => return Err(fields::unknown_verb(label)),
        };
        f.finish()?;
        Ok(msg)
    }
}
