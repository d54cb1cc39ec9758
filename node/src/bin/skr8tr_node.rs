//! `skr8tr_node`, the node agent: launches workloads by fork+exec, checks their health, reports
//! to the Conductor and registers them with the Tower (UDP 7775, metrics on TCP 9100). Logic
//! and flags (`NodeArgs`) in `skr8tr_node::agent`.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use anyhow::Context as _;
use skr8tr_daemon::{Gate, UdpEndpoint};
use skr8tr_node::agent::{
    self, AgentConfig, AgentExit, DEFAULT_CONDUCTOR_PORT, DEFAULT_PORT, DEFAULT_TOWER_PORT,
    NodeArgs,
};
use skr8tr_proto::auth::KeyRole;

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_node", real_main)
}

fn real_main(args: NodeArgs) -> anyhow::Result<()> {
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
        let addr = socket.local_addr()?;
        tracing::info!(listen = %addr, authenticated = config.gate.enforcing(), "node agent listening");
        skr8tr_daemon::supervisor::ready(format!("listening on udp {addr}"));
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
