//! `skr8tr_server`: the Tower, the Conductor and a node agent in one process, for the machine
//! that hosts a cluster's control plane (other machines run `skr8tr_node`). Logic in
//! `skr8tr_bundle::plane`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Parser;
use skr8tr_bundle::plane::{self, PlaneConfig};
use skr8tr_control::conductor::server::ConductorConfig;
use skr8tr_control::options::{ConductorOptions, TowerOptions};
use skr8tr_control::tower::server::TowerConfig;
use skr8tr_daemon::{Gate, KeyArgs, listen_addr};
use skr8tr_node::agent::{AgentConfig, AgentOptions};
use skr8tr_proto::auth::KeyRole;

/// The skr8tr control plane of one host in one process: the Tower, the Conductor and a node
/// agent, each on its own thread exactly as the separate daemons (`skr8tr_reg`,
/// `skr8tr_sched`, `skr8tr_node`) run, sharing one copy of their code in memory.
///
/// The node reports to this Conductor and registers with this Tower; with the Tower on every
/// address, its replicas are registered at the address of the default route unless --advertise
/// says otherwise. On SIGTERM/SIGINT the node
/// stops first (its workloads left to the next agent, or stopped with
/// --stop-workloads-on-exit), then the Conductor, then the Tower. If one of the three stops on
/// its own, the others are stopped and the exit status is non-zero.
#[derive(Debug, Parser)]
#[command(
    name = "skr8tr_server",
    version,
    mut_arg("advertise", |a| a.help(
        "The address replicas are registered at [default: the Tower's listen address, or the \
         address of the default route when it listens on every address]"
    ))
)]
struct Args {
    /// UDP address of the Tower (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7772")]
    tower_listen: String,
    /// UDP address for operator commands to the Conductor.
    #[arg(long, default_value = "0.0.0.0:7771")]
    conductor_listen: String,
    /// UDP address for node heartbeats.
    #[arg(long, default_value = "0.0.0.0:7770")]
    heartbeat_listen: String,
    /// UDP address of the node agent's command socket.
    #[arg(long, default_value = "0.0.0.0:7775")]
    node_listen: String,
    /// Where the state lives: `conductor/` (the durable store) and `node/` (the node's id, its
    /// replicas' records and their logs).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skr8tr")]
    state_dir: PathBuf,
    #[command(flatten)]
    keys: KeyArgs,
    #[command(flatten)]
    tower: TowerOptions,
    #[command(flatten)]
    conductor: ConductorOptions,
    #[command(flatten)]
    agent: AgentOptions,
}

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_server", real_main)
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let auth = args.keys.load()?;
    let mesh = auth.bind_policy(&[KeyRole::Mesh]);
    let both = auth.bind_policy(&[KeyRole::Operator, KeyRole::Mesh]);
    let mut tower = TowerConfig::dev();
    tower.gate = Gate::new(auth.mesh_verifier());
    tower.mesh_key = auth.mesh_signing_key().cloned();
    args.tower.apply(&mut tower)?;

    let mut conductor = ConductorConfig::dev(args.state_dir.join("conductor"));
    conductor.operator_gate = Gate::new(auth.operator_verifier());
    conductor.mesh_gate = Gate::new(auth.mesh_verifier());
    conductor.mesh_key = auth.mesh_signing_key().cloned();
    args.conductor.apply(&mut conductor)?;

    let mut node = AgentConfig::new(args.state_dir.join("node"));
    node.gate = Gate::new(auth.mesh_verifier());
    node.mesh_key = auth.mesh_signing_key().cloned();
    let node_listen = listen_addr("--node-listen", &args.node_listen, 7775, mesh)?;
    args.agent.clone().apply(&mut node)?;

    let (mut host, addrs) = plane::start(PlaneConfig {
        tower_listen: listen_addr("--tower-listen", &args.tower_listen, 7772, mesh)?,
        tower,
        conductor_listen: listen_addr("--conductor-listen", &args.conductor_listen, 7771, both)?,
        heartbeat_listen: listen_addr("--heartbeat-listen", &args.heartbeat_listen, 7770, both)?,
        conductor,
        node_listen,
        node,
    })?;
    tracing::info!(
        tower = %addrs.tower,
        conductor = %addrs.conductor,
        heartbeats = %addrs.heartbeat,
        node = %addrs.node,
        "server ready"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the signal runtime")?;
    let lost = rt.block_on(async {
        tokio::select! {
            () = skr8tr_daemon::shutdown_requested() => None,
            name = host.exited() => Some(name),
        }
    });
    let errors = host.stop();
    for e in &errors {
        tracing::error!(error = %format!("{e:#}"), "daemon stopped");
    }
    match (lost, errors.into_iter().next()) {
        (Some(name), Some(e)) => Err(e.context(format!("the {name} stopped; stopped the others"))),
        (Some(name), None) => bail!("the {name} stopped; stopped the others"),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(()),
    }
}
