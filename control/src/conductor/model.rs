//! The Conductor's view of the cluster: desired apps, placed replicas, and live nodes.
//!
//! These are plain data, shared by the pure planners ([`super::placement`],
//! [`super::reconcile`]), the durable store and the daemon. Nothing here does I/O.

use std::net::IpAddr;
use std::time::Instant;

use skr8tr_proto::manifest::{App, PortSpec};
use skr8tr_proto::name::{AppName, NodeId, ReplicaId};
use skr8tr_proto::wire::{Exit, LimitMechanism};

/// What the operator asked for one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    pub spec: App,
    /// Increases with every ROLLOUT; replicas carry the generation they were launched with.
    pub generation: u64,
    /// Desired replica count (the manifest's `replicas`, then SCALE or autoscale).
    pub desired: u32,
}

/// Where a replica is in its life, as the Conductor knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaPhase {
    /// Placed; LAUNCH sent or about to be, not yet confirmed.
    Launching,
    /// The node confirmed it (LAUNCHED or a heartbeat listing it).
    Running,
    /// The node reports it healthy (registered in the Tower).
    Healthy,
    /// Being stopped (drain, then kill); no longer counted.
    Stopping,
    /// Ended for good on its node and not to be replaced (a finished job, a `restart never`
    /// app that died; see [`super::reconcile::fate`]). Still counted as placed, so nothing
    /// runs in its stead, but holds nothing on its node; kept, as the app's run history, until
    /// the app is evicted or resubmitted. Never forgotten because its node is gone or no
    /// longer lists it.
    Ended,
}

impl ReplicaPhase {
    /// The word `status` shows.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Launching => "launching",
            Self::Running => "running",
            Self::Healthy => "healthy",
            Self::Stopping => "stopping",
            Self::Ended => "ended",
        }
    }
}

/// One placed replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRecord {
    pub id: ReplicaId,
    pub app: AppName,
    pub generation: u64,
    pub node: NodeId,
    pub phase: ReplicaPhase,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    /// The app's `port` at placement, so placement can refuse a second fixed port per node.
    pub port_spec: Option<PortSpec>,
    /// Reservations taken at placement (bytes, millicores).
    pub ram: u64,
    pub cpu_millis: u32,
    /// Unix milliseconds when it was placed (durable, unlike `Instant`).
    pub placed_at_ms: u64,
    /// How its last process ended, once its node said so (DIED).
    pub exit: Option<Exit>,
    /// GPUs reserved on its node at placement (the app's `gpu`).
    pub gpus: u32,
}

/// What a node said about one of its replicas in its last heartbeat.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedReplica {
    pub id: ReplicaId,
    pub app: AppName,
    pub generation: u64,
    pub pid: u32,
    /// The node's state word (`starting`, `healthy`, `unhealthy`, `exited`, `failed`, …).
    pub state: String,
    pub port: u16,
    pub cpu_pct: f32,
    pub rss_kb: u64,
    /// What enforces its limits there, when the node said it.
    pub limits: Option<LimitMechanism>,
    /// Times the node restarted it.
    pub restarts: u32,
    /// Seconds since its current process started.
    pub uptime_s: u64,
}

/// A node as its heartbeats describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub id: NodeId,
    /// Where its agent listens for LAUNCH/KILL.
    pub addr: IpAddr,
    pub agent_port: u16,
    pub cpu_pct: f32,
    pub ram_free_mb: u64,
    pub ram_total_mb: u64,
    pub cpu_millis: u32,
    /// GPUs the node reports (found or declared with `--gpus`).
    pub gpus: u32,
    pub last_seen: Instant,
    pub replicas: Vec<ReportedReplica>,
}
