//! `skr8tr_node`, the node agent: launches workloads by fork+exec, checks their health, reports
//! to the Conductor and registers them with the Tower (UDP 7775, metrics on TCP 9100). Logic
//! in `skr8tr_node::agent`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use skr8tr_daemon::{Gate, UdpEndpoint};
use skr8tr_node::agent::{
    self, AgentConfig, AgentExit, DEFAULT_CONDUCTOR_PORT, DEFAULT_METRICS_PORT, DEFAULT_PORT,
    DEFAULT_TOWER_PORT,
};
use skr8tr_proto::auth::{AuthConfig, KeyRole, SigningKey};
use skr8tr_proto::name::NodeId;

/// The skr8tr node agent: runs the replicas the Conductor places here.
///
/// On SIGTERM/SIGINT it stops taking requests and leaves the workloads running; the next agent
/// started on the same --state-dir adopts them (an agent upgrade does not restart services).
/// With --stop-workloads-on-exit it stops them instead, each deregistered from the Tower first.
#[derive(Debug, Parser)]
#[command(name = "skr8tr_node", version)]
struct Args {
    /// UDP address of the command socket (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7775")]
    listen: String,
    /// The Conductor's heartbeat socket (`HOST[:PORT]`, port 7770 by default).
    #[arg(long, default_value = "127.0.0.1:7770")]
    conductor: String,
    /// The Tower (`HOST[:PORT]`, port 7772 by default).
    #[arg(long, default_value = "127.0.0.1:7772")]
    tower: String,
    /// The address replicas are registered at [default: the local address of the route to
    /// the Tower].
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
    /// TCP address of the Prometheus endpoint (`GET /metrics`), or `off`.
    #[arg(long, default_value = "127.0.0.1:9100")]
    metrics: String,
    /// Where the node keeps its id, its replicas' records (for adoption) and their logs.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skr8tr/node")]
    state_dir: PathBuf,
    /// The mesh secret key (its public half beside it); without it the agent runs in dev mode
    /// on loopback only.
    #[arg(long, value_name = "FILE")]
    mesh_key: Option<PathBuf>,
    /// Listen on a non-loopback address without authentication.
    #[arg(long)]
    insecure: bool,
    /// Use this node id instead of the one kept in the state directory.
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
    /// Milliseconds between heartbeats to the Conductor.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    heartbeat_ms: u64,
    /// On SIGTERM/SIGINT, stop the workloads instead of leaving them to the next agent.
    #[arg(long)]
    stop_workloads_on_exit: bool,
}

fn main() -> ExitCode {
    skr8tr_daemon::init_logging();
    match real_main(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skr8tr_node: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let auth = AuthConfig::load(&[] as &[PathBuf], args.mesh_key.as_deref(), args.insecure)
        .context("loading keys")?;
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let requested = skr8tr_daemon::parse_host_port(&args.listen, any, DEFAULT_PORT)?;
    let ip = auth.bind_policy(&[KeyRole::Mesh]).resolve(requested.ip())?;
    if ip != requested.ip() {
        tracing::warn!(requested = %requested.ip(), listening = %ip, "no mesh key: dev mode, loopback only");
    }
    let listen = SocketAddr::new(ip, requested.port());
    if args.heartbeat_ms == 0 {
        anyhow::bail!("--heartbeat-ms must be at least 1");
    }
    let mut config = AgentConfig::new(&args.state_dir);
    config.conductor = skr8tr_daemon::parse_host_port(&args.conductor, lo, DEFAULT_CONDUCTOR_PORT)
        .context("--conductor")?;
    config.tower =
        skr8tr_daemon::parse_host_port(&args.tower, lo, DEFAULT_TOWER_PORT).context("--tower")?;
    config.advertise = args
        .advertise
        .as_deref()
        .map(|a| {
            let ip = skr8tr_daemon::parse_host_port(a, lo, 0)?.ip();
            anyhow::ensure!(
                !ip.is_unspecified(),
                "cannot advertise {ip}: give a reachable address"
            );
            Ok(ip)
        })
        .transpose()
        .context("--advertise")?;
    config.node_id = args
        .node_id
        .map(NodeId::new)
        .transpose()
        .context("--node-id")?;
    config.heartbeat = Duration::from_millis(args.heartbeat_ms);
    config.stop_workloads_on_exit = args.stop_workloads_on_exit;
    config.gate = Gate::new(auth.mesh_verifier());
    config.mesh_key = args
        .mesh_key
        .as_deref()
        .map(SigningKey::load)
        .transpose()
        .context("loading the mesh key")?;
    if args.metrics != "off" {
        let addr = skr8tr_daemon::parse_host_port(&args.metrics, lo, DEFAULT_METRICS_PORT)
            .context("--metrics")?;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot serve metrics on tcp {addr}"))?;
        config.metrics = Some(listener);
    }
    skr8tr_daemon::run("node", |driver| async move {
        let socket = UdpEndpoint::bind(driver, listen)
            .with_context(|| format!("cannot listen on udp {listen}"))?;
        tracing::info!(listen = %socket.local_addr()?, authenticated = config.gate.enforcing(), "node agent listening");
        let shutdown = async {
            match skr8tr_daemon::shutdown_signal().await {
                Ok(sig) => tracing::info!(signal = sig, "shutting down"),
                Err(e) => tracing::error!(error = %e, "no signal handler; running until killed"),
            }
        };
        let exit = agent::run(driver, socket, config, shutdown)
            .await
            .context("node agent stopped")?;
        match exit {
            AgentExit::Detached => {
                tracing::info!("stopped; workloads left running for the next agent")
            }
            AgentExit::StoppedWorkloads => tracing::info!("stopped with its workloads"),
        }
        Ok(())
    })?
}
