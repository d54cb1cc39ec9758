//! What nodes tell the Conductor on its heartbeat socket (UDP 7770): heartbeats and deaths.
//!
//! ```text
//! skr8tr_node ──HEARTBEAT (every second) / DIED (at once)──▶ skr8tr_sched :7770   (no reply)
//! ```
//! Fire-and-forget: the Conductor never answers on 7770. A lost HEARTBEAT is repaired by the
//! next one, a lost DIED by the next heartbeat's replica list (which shows the state). Both are
//! mesh-signed.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use super::error::WireError;
use super::fields::{self, Encoder, Fields, part, parts, write_parts};
use super::message::{Auth, Message, Request};
use super::types::{CpuPercent, Exit, LimitMechanism, ReplicaState};
use crate::name::{AppName, NodeId, ReplicaId};

/// A datagram sent to the Conductor's heartbeat socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshEvent {
    /// `HEARTBEAT|<node_id>|<cpu_pct>|<ram_free_mb>[|<detail…>]`.
    Heartbeat(Heartbeat),
    /// `DIED|<node_id>|<replica_id>|<app>|<exit>|<restarting>`.
    Died(Died),
}

/// A node's periodic report. The seed sends only the first three fields; skr8tr nodes always
/// add the [`HeartbeatDetail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub node: NodeId,
    /// Whole-node CPU load (0–100, all cores together).
    pub cpu: CpuPercent,
    pub ram_free_mb: u64,
    pub detail: Option<HeartbeatDetail>,
}

/// The fields a skr8tr node adds to the seed's heartbeat:
/// `|<advertise_ip>|<agent_port>|<ram_total_mb>|<cpu_millicores>|<seq>|<replica entries>[|<gpus>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatDetail {
    /// The address at which its replicas are registered with the Tower.
    pub advertise: IpAddr,
    /// The UDP port its agent takes LAUNCH/KILL/LOGS/EXEC on (7775 by default).
    pub agent_port: u16,
    pub ram_total_mb: u64,
    /// CPU capacity in thousandths of a core (4 cores: 4000).
    pub cpu_millicores: u32,
    /// Increases by one per heartbeat since the agent started, so the Conductor can drop a
    /// late datagram that arrives after a newer one.
    pub seq: u64,
    /// Every replica the node knows, running or recently ended (may be empty).
    pub replicas: Vec<ReplicaReport>,
    /// GPUs the node has (found or declared); written only when not 0.
    pub gpus: u32,
}

/// One replica in a heartbeat:
/// `<replica_id>:<app>:<generation>:<pid>:<state>:<port>:<cpu_pct>:<rss_kb>[:<limits>[:<restarts>:<uptime_s>]]`
/// (`limits` may be empty when `restarts` follows; agents that predate a part leave it out, and
/// it reads as absent or 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaReport {
    pub replica: ReplicaId,
    pub app: AppName,
    pub generation: u64,
    /// 0 when no process runs.
    pub pid: u32,
    pub state: ReplicaState,
    /// The port it listens on; 0 when none.
    pub port: u16,
    /// CPU load in percent of one core.
    pub cpu: CpuPercent,
    /// Resident memory in KiB.
    pub rss_kb: u64,
    /// What enforces its limits (absent from agents that predate it).
    pub limits: Option<LimitMechanism>,
    /// Times its node restarted it (the restart policy); 0 from agents that predate it.
    pub restarts: u32,
    /// Seconds since its current process started (0 when none runs, or from an older agent).
    pub uptime_s: u64,
}

/// A replica's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Died {
    pub node: NodeId,
    pub replica: ReplicaId,
    pub app: AppName,
    pub exit: Exit,
    /// Whether the node restarts it itself (restart policy, after back-off); when false the
    /// Conductor decides.
    pub restarting: bool,
}

const VERBS: &[&str] = &["HEARTBEAT", "DIED"];

impl Request for MeshEvent {
    fn verb(&self) -> &'static str {
        match self {
            Self::Heartbeat(_) => "HEARTBEAT",
            Self::Died(_) => "DIED",
        }
    }

    fn auth(&self) -> Auth {
        Auth::Mesh
    }
}

impl Message for MeshEvent {
    fn encode(&self) -> String {
        let enc = Encoder::new(self.verb());
        match self {
            Self::Heartbeat(hb) => {
                let enc = enc.field(&hb.node).field(hb.cpu).field(hb.ram_free_mb);
                match &hb.detail {
                    None => enc,
                    Some(d) => {
                        let enc = enc
                            .field(d.advertise)
                            .field(d.agent_port)
                            .field(d.ram_total_mb)
                            .field(d.cpu_millicores)
                            .field(d.seq)
                            .list(&d.replicas, ReplicaReport::write);
                        if d.gpus == 0 { enc } else { enc.field(d.gpus) }
                    }
                }
            }
            Self::Died(d) => enc
                .field(&d.node)
                .field(&d.replica)
                .field(&d.app)
                .field(d.exit)
                .field(u8::from(d.restarting)),
        }
        .finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut f = fields::open(bytes, VERBS)?;
        let verb = f.verb();
        let msg = match verb {
            "HEARTBEAT" => Self::Heartbeat(Heartbeat {
                node: f.parse("node_id")?,
                cpu: f.parse("cpu_pct")?,
                ram_free_mb: f.parse("ram_free_mb")?,
                detail: if f.has_more() {
                    Some(HeartbeatDetail::decode(&mut f)?)
                } else {
                    None
                },
            }),
            "DIED" => Self::Died(Died {
                node: f.parse("node_id")?,
                replica: f.parse("replica_id")?,
                app: f.parse("app")?,
                exit: f.parse("exit")?,
                restarting: f.parse("restarting")?,
            }),
            _ => return Err(fields::unknown_verb(verb)),
        };
        f.finish()?;
        Ok(msg)
    }
}

impl HeartbeatDetail {
    fn decode(f: &mut Fields<'_>) -> Result<Self, WireError> {
        let verb = f.verb();
        Ok(Self {
            advertise: f.parse("advertise_ip")?,
            agent_port: f.parse("agent_port")?,
            ram_total_mb: f.parse("ram_total_mb")?,
            cpu_millicores: f.parse("cpu_millicores")?,
            seq: f.parse("seq")?,
            replicas: fields::list(f.next("replicas")?, |e| ReplicaReport::parse(verb, e))?,
            // Optional and last; an empty field there is an extra field, as before it existed.
            gpus: match f.next_opt() {
                None => 0,
                Some("") => return Err(WireError::ExtraField { verb }),
                Some(raw) => part(verb, "gpus", raw)?,
            },
        })
    }
}

impl ReplicaReport {
    fn write(out: &mut String, e: &Self) -> fmt::Result {
        write_parts(
            out,
            &[
                &e.replica,
                &e.app,
                &e.generation,
                &e.pid,
                &e.state,
                &e.port,
                &e.cpu,
                &e.rss_kb,
            ],
        )?;
        if e.restarts != 0 || e.uptime_s != 0 {
            let limits = e.limits.map(|l| l.to_string()).unwrap_or_default();
            return write!(out, ":{limits}:{}:{}", e.restarts, e.uptime_s);
        }
        match e.limits {
            Some(limits) => write!(out, ":{limits}"),
            None => Ok(()),
        }
    }

    fn parse(verb: &'static str, entry: &str) -> Result<Self, WireError> {
        // Eight parts; then what enforces its limits; then restarts and uptime.
        let (entry, restarts, uptime_s) = match parts::<11>(verb, "replicas", entry) {
            Ok(all) => {
                let cut = entry.len() - all[9].len() - all[10].len() - 2;
                let restarts = part(verb, "restarts", all[9])?;
                (&entry[..cut], restarts, part(verb, "uptime_s", all[10])?)
            }
            Err(_) => (entry, 0, 0),
        };
        let (entry, limits) = match parts::<9>(verb, "replicas", entry) {
            Ok(all) => {
                let cut = entry.len() - all[8].len() - 1;
                let limits = match all[8] {
                    "" if restarts != 0 || uptime_s != 0 => None,
                    raw => Some(part(verb, "limits", raw)?),
                };
                (&entry[..cut], limits)
            }
            Err(_) => (entry, None),
        };
        let [replica, app, generation, pid, state, port, cpu, rss] =
            parts(verb, "replicas", entry)?;
        Ok(Self {
            replica: part(verb, "replica_id", replica)?,
            app: part(verb, "app", app)?,
            generation: part(verb, "generation", generation)?,
            pid: part(verb, "pid", pid)?,
            state: part(verb, "state", state)?,
            port: part(verb, "port", port)?,
            cpu: part(verb, "cpu_pct", cpu)?,
            rss_kb: part(verb, "rss_kb", rss)?,
            limits,
            restarts,
            uptime_s,
        })
    }
}
