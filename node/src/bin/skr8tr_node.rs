//! `skr8tr_node`, the node agent: launches workloads by fork+exec, checks their health, reports
//! to the Conductor and registers them with the Tower (UDP 7775, metrics on TCP 9100). Logic
//! in `skr8tr_node::agent`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use skr8tr_daemon::{Gate, MeshKeyArgs, UdpEndpoint};
use skr8tr_node::agent::{
    self, AgentConfig, AgentExit, AgentOptions, DEFAULT_CONDUCTOR_PORT, DEFAULT_PORT,
    DEFAULT_TOWER_PORT,
};
use skr8tr_proto::auth::KeyRole;

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
    /// Where the node keeps its id, its replicas' records (for adoption) and their logs.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skr8tr/node")]
    state_dir: PathBuf,
    #[command(flatten)]
    keys: MeshKeyArgs,
    #[command(flatten)]
    agent: AgentOptions,
}

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_node", real_main)
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let auth = args.keys.load()?;
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let listen = skr8tr_daemon::listen_addr(
        "--listen",
        &args.listen,
        DEFAULT_PORT,
        auth.bind_policy(&[KeyRole::Mesh]),
    )?;
    let mut config = AgentConfig::new(&args.state_dir);
    config.conductor = skr8tr_daemon::parse_host_port(&args.conductor, lo, DEFAULT_CONDUCTOR_PORT)
        .context("--conductor")?;
    config.tower =
        skr8tr_daemon::parse_host_port(&args.tower, lo, DEFAULT_TOWER_PORT).context("--tower")?;
    args.agent.apply(&mut config)?;
    config.gate = Gate::new(auth.mesh_verifier());
    config.mesh_key = auth.mesh_signing_key().cloned();
    skr8tr_daemon::run("node", |driver| async move {
        let socket = UdpEndpoint::bind(driver, listen)
            .with_context(|| format!("cannot listen on udp {listen}"))?;
        tracing::info!(listen = %socket.local_addr()?, authenticated = config.gate.enforcing(), "node agent listening");
        let exit = agent::run(driver, socket, config, skr8tr_daemon::shutdown_requested())
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
