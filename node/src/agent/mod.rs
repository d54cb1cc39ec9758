//! The node agent daemon: the glue between datagrams and the [`Engine`]. It owns the command
//! socket, the Conductor reports (heartbeats, deaths), the Tower registrations and the metrics
//! endpoint; the engine owns the processes.
//!
//! ```text
//!  Conductor ──LAUNCH/KILL/LOGS/EXEC/STATUS/PING──▶ server ──▶ Engine ──▶ replicas
//!      ▲                      (reply to the sender) ◀──┘          │
//!      │                                                          │ Events
//!      ├── HEARTBEAT every --heartbeat-ms ◀── heartbeat ◀── status + node stats
//!      └── DIED ◀───────────────────────────── lifecycle ◀────────┘
//!  Tower ◀── REGISTER on Healthy, every 10 s ─┘  └── DEREGISTER on Unhealthy/Stopping/exit,
//!                                                    answered before the StopGate opens
//!  Prometheus ──GET /metrics──▶ metrics (figures of the last heartbeat)
//! ```
//! Everything runs on the daemon's one thread (io_uring or epoll, see [`skr8tr_daemon::run`]):
//! shared state is `Rc`/`RefCell`, never held across an `.await`. Nothing blocks the receive
//! loop: requests that take time (LAUNCH, KILL, EXEC) run in their own tasks and send their
//! reply when done.
//!
//! On shutdown the agent stops receiving and, by default, *detaches*: the workloads keep
//! running (still registered with the Tower until their TTL) and the next agent started on the
//! same `--state-dir` adopts them. With [`AgentConfig::stop_workloads_on_exit`] it stops them
//! instead, each deregistered before it is signalled.

mod heartbeat;
mod lifecycle;
mod metrics;
mod options;
mod server;
mod tower;

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use skr8tr_daemon::{Driver, Gate, UdpEndpoint};
use skr8tr_proto::auth::SigningKey;
use skr8tr_proto::name::{NodeId, ReplicaId};
use tokio::sync::oneshot;

use crate::engine::{Engine, EngineConfig, EngineError};

use metrics::Metrics;
pub use options::{AgentOptions, NodeArgs, OptionsError};

/// Default UDP port of the agent's command socket.
pub const DEFAULT_PORT: u16 = 7775;
/// Default UDP port of the Conductor's heartbeat socket.
pub const DEFAULT_CONDUCTOR_PORT: u16 = 7770;
/// Default UDP port of the Tower.
pub const DEFAULT_TOWER_PORT: u16 = 7772;
/// Default TCP port of the metrics endpoint.
pub const DEFAULT_METRICS_PORT: u16 = 9100;

/// What the agent is started with; [`AgentConfig::new`] gives the defaults.
#[derive(Debug)]
pub struct AgentConfig {
    /// The engine's settings (`--state-dir` and the supervision timings).
    pub engine: EngineConfig,
    /// `--node-id`: overrides the engine's stable id (kept in the state directory).
    pub node_id: Option<NodeId>,
    /// Verifies mesh-signed requests; `Gate::new(None)` is dev mode (nothing checked, loopback).
    pub gate: Gate,
    /// Signs heartbeats, deaths and Tower registrations; `None` in dev mode.
    pub mesh_key: Option<SigningKey>,
    /// The Conductor's heartbeat socket.
    pub conductor: SocketAddr,
    /// The Tower.
    pub tower: SocketAddr,
    /// `--advertise`: the address replicas are registered at; `None`: the local address of the
    /// route to the Tower.
    pub advertise: Option<IpAddr>,
    /// Time between heartbeats.
    pub heartbeat: Duration,
    /// Time between re-registrations of every healthy replica (well within the Tower's TTL).
    pub reregister: Duration,
    /// The metrics endpoint, already bound (so a busy port is reported by `main`); `None`
    /// disables it.
    pub metrics: Option<std::net::TcpListener>,
    /// Stop the workloads on shutdown instead of leaving them to the next agent.
    pub stop_workloads_on_exit: bool,
    /// `--gpus N`: the GPUs this node offers to `gpu N` apps; `None`: the `/dev/nvidiaN`
    /// device files counted at start.
    pub gpus: Option<u32>,
}

impl AgentConfig {
    /// Dev-mode defaults around `state_dir`: no keys, Conductor and Tower on loopback, a
    /// heartbeat a second, no metrics endpoint.
    #[must_use]
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let mut engine = EngineConfig::new(state_dir);
        // Room for a DEREGISTER with its retries (tower::DEREGISTER_PATIENCE) and the wait for
        // the edge to drain the replica (lifecycle::EDGE_DRAIN_LIMIT) before the engine signals
        // a replica whose gate is still closed.
        engine.stop_gate_timeout = Duration::from_secs(10);
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            engine,
            node_id: None,
            gate: Gate::new(None),
            mesh_key: None,
            conductor: SocketAddr::new(lo, DEFAULT_CONDUCTOR_PORT),
            tower: SocketAddr::new(lo, DEFAULT_TOWER_PORT),
            advertise: None,
            heartbeat: Duration::from_secs(1),
            reregister: Duration::from_secs(10),
            metrics: None,
            stop_workloads_on_exit: false,
            gpus: None,
        }
    }
}

/// Why the agent could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot start the node engine")]
    Engine(#[from] EngineError),
    #[error("the command socket failed")]
    Socket(#[source] std::io::Error),
    #[error("cannot serve metrics")]
    Metrics(#[source] std::io::Error),
}

/// How the agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentExit {
    /// The workloads were left running for the next agent.
    Detached,
    /// The workloads were stopped.
    StoppedWorkloads,
}

/// The state every part of the agent shares (one thread, behind an `Rc`).
#[derive(Debug)]
pub(crate) struct Agent {
    pub(crate) driver: Driver,
    pub(crate) engine: Engine,
    pub(crate) node: NodeId,
    pub(crate) socket: Rc<UdpEndpoint>,
    pub(crate) mesh_key: Option<SigningKey>,
    pub(crate) conductor: SocketAddr,
    pub(crate) advertise: IpAddr,
    pub(crate) agent_port: u16,
    /// GPUs this node reports in its heartbeats.
    pub(crate) gpus: u32,
    pub(crate) tower: tower::Registrar,
    pub(crate) metrics: Metrics,
    /// LAUNCHes being started, with every address to answer when they are.
    pub(crate) launching: RefCell<HashMap<ReplicaId, Vec<SocketAddr>>>,
    /// KILL replies waiting for their replica's stop to begin (its gate released).
    pub(crate) stop_waiters: RefCell<HashMap<ReplicaId, Vec<oneshot::Sender<()>>>>,
    /// Wakes the heartbeat loop for an early heartbeat (a replica started, became healthy or
    /// ended), so the Conductor learns of it within milliseconds rather than at the next tick.
    pub(crate) heartbeat_now: tokio::sync::Notify,
    /// When each replica ended for good (for trimming heartbeats: the oldest go first).
    pub(crate) ended_at: RefCell<HashMap<ReplicaId, std::time::Instant>>,
}

impl Agent {
    /// Sends `text` (a mesh event: HEARTBEAT or DIED, signed with the mesh key when there is
    /// one) to the Conductor once; a lost datagram is only logged at debug, since the next
    /// heartbeat repeats what the Conductor needs to know.
    pub(crate) async fn tell_conductor(&self, text: &str, what: &'static str) {
        if let Err(e) =
            skr8tr_daemon::notify(&self.socket, self.conductor, text, self.mesh_key.as_ref()).await
        {
            tracing::debug!(conductor = %self.conductor, error = %e, "{what} not sent");
        }
    }

    /// Wakes the KILLs waiting for `replica`'s stop to begin.
    pub(crate) fn stop_begun(&self, replica: &ReplicaId) {
        if let Some(waiters) = self.stop_waiters.borrow_mut().remove(replica) {
            for w in waiters {
                let _ = w.send(());
            }
        }
    }
}

/// Runs the agent on `socket` until `shutdown` resolves: starts the engine on the state
/// directory (adopting the workloads of an earlier agent), serves requests, reports to the
/// Conductor and the Tower, and serves metrics.
///
/// # Errors
/// [`AgentError::Engine`] when the state directory cannot be used (e.g. another agent holds
/// it); [`AgentError::Socket`] when the command socket itself fails; [`AgentError::Metrics`]
/// when the metrics listener cannot be registered with the runtime.
///
/// # Cancel safety
/// Not cancel safe: dropping the future abandons the engine without detaching or stopping
/// (like an agent crash: the workloads keep running and the next agent adopts them).
pub async fn run(
    driver: Driver,
    socket: UdpEndpoint,
    config: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<AgentExit, AgentError> {
    let agent_port = socket.local_addr().map_err(AgentError::Socket)?.port();
    let metrics_listener = config
        .metrics
        .map(|l| {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        })
        .transpose()
        .map_err(AgentError::Metrics)?;
    let (engine, events, report) = Engine::start(config.engine).await?;
    let node = config.node_id.unwrap_or_else(|| engine.node_id().clone());
    let advertise = config
        .advertise
        .unwrap_or_else(|| route_address(config.tower));
    tracing::info!(
        node = %node,
        adopted = report.adopted.len(),
        forgotten = report.forgotten.len(),
        %advertise,
        conductor = %config.conductor,
        tower = %config.tower,
        authenticated = config.gate.enforcing(),
        "node agent ready"
    );
    let agent = Rc::new(Agent {
        driver,
        engine: engine.clone(),
        node,
        socket: Rc::new(socket),
        mesh_key: config.mesh_key,
        conductor: config.conductor,
        advertise,
        agent_port,
        gpus: config.gpus.unwrap_or_else(crate::stats::node_gpus),
        tower: tower::Registrar::new(config.tower),
        metrics: Metrics::new(),
        launching: RefCell::default(),
        stop_waiters: RefCell::default(),
        ended_at: RefCell::default(),
        heartbeat_now: tokio::sync::Notify::new(),
    });

    let lifecycle = skr8tr_daemon::spawn(lifecycle::run(agent.clone(), events));
    let background = vec![
        skr8tr_daemon::spawn(heartbeat::run(agent.clone(), config.heartbeat)),
        skr8tr_daemon::spawn(tower::refresh(agent.clone(), config.reregister)),
    ];
    let metrics_task =
        metrics_listener.map(|l| skr8tr_daemon::spawn(metrics::serve(agent.metrics.clone(), l)));

    let result = tokio::select! {
        r = server::serve(agent.clone(), config.gate) => r.map_err(AgentError::Socket),
        () = shutdown => Ok(()),
    };
    for task in background.into_iter().chain(metrics_task) {
        task.abort();
        let _ = task.await;
    }
    let exit = if config.stop_workloads_on_exit {
        tracing::info!("stopping the workloads (--stop-workloads-on-exit)");
        // The lifecycle task keeps running meanwhile: each Stopping is deregistered first.
        engine.shutdown().await;
        AgentExit::StoppedWorkloads
    } else {
        tracing::info!(
            "detaching: the workloads keep running and the next agent on this state directory adopts them"
        );
        engine.detach().await;
        AgentExit::Detached
    };
    lifecycle.abort();
    let _ = lifecycle.await;
    result.map(|()| exit)
}

/// The local address of the route to `to` (what `to` sees as our address), found by
/// connecting a UDP socket (no datagram is sent). Loopback when there is no route.
#[must_use]
pub fn route_address(to: SocketAddr) -> IpAddr {
    let (unspecified, loopback) = match to {
        SocketAddr::V4(_) => (
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ),
        SocketAddr::V6(_) => (
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ),
    };
    let found = std::net::UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .and_then(|s| {
            s.connect(to)?;
            s.local_addr()
        })
        .map(|a| a.ip());
    match found {
        Ok(ip) if !ip.is_unspecified() => ip,
        Ok(_) => loopback,
        Err(e) => {
            tracing::warn!(tower = %to, error = %e, "no route to the Tower; advertising loopback");
            loopback
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_to_a_loopback_tower_is_loopback() {
        let lo: SocketAddr = "127.0.0.1:7772".parse().unwrap();
        assert_eq!(route_address(lo), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let lo6: SocketAddr = "[::1]:7772".parse().unwrap();
        let got = route_address(lo6);
        assert!(got.is_loopback(), "{got}");
    }
}
