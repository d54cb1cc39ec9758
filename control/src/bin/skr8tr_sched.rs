//! `skr8tr_sched`, the Conductor: placement, replica enforcement, durable state (UDP 7771 for
//! commands, 7770 for heartbeats). Logic in `skr8tr_control::conductor`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use skr8tr_control::conductor::server::{ConductorConfig, run};
use skr8tr_control::options::ConductorOptions;
use skr8tr_daemon::{Gate, KeyArgs, UdpEndpoint};
use skr8tr_proto::auth::KeyRole;

/// The skr8tr Conductor: places replicas on nodes and keeps them running.
#[derive(Debug, Parser)]
#[command(name = "skr8tr_sched", version)]
struct Args {
    /// UDP address for operator commands (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7771")]
    listen: String,
    /// UDP address for node heartbeats.
    #[arg(long, default_value = "0.0.0.0:7770")]
    heartbeat_listen: String,
    /// Where the durable state lives (created 0700).
    #[arg(long, default_value = "/var/lib/skr8tr/conductor")]
    state_dir: PathBuf,
    #[command(flatten)]
    keys: KeyArgs,
    /// The Tower (`HOST[:PORT]`), asked during rollouts whether the edge routes to the new
    /// replicas before an old one is stopped.
    #[arg(long, default_value = "127.0.0.1:7772")]
    tower: String,
    #[command(flatten)]
    conductor: ConductorOptions,
}

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_sched", real_main)
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let auth = args.keys.load()?;
    let policy = auth.bind_policy(&[KeyRole::Operator, KeyRole::Mesh]);
    let listen = skr8tr_daemon::listen_addr("--listen", &args.listen, 7771, policy)?;
    let hb_listen =
        skr8tr_daemon::listen_addr("--heartbeat-listen", &args.heartbeat_listen, 7770, policy)?;
    let mut config = ConductorConfig::dev(args.state_dir);
    config.operator_gate = Gate::new(auth.operator_verifier());
    config.mesh_gate = Gate::new(auth.mesh_verifier());
    config.mesh_key = auth.mesh_signing_key().cloned();
    config.tower = Some(
        skr8tr_daemon::parse_host_port(&args.tower, IpAddr::V4(Ipv4Addr::LOCALHOST), 7772)
            .context("--tower")?,
    );
    args.conductor.apply(&mut config)?;
    skr8tr_daemon::run("conductor", |driver| async move {
        let commands = UdpEndpoint::bind(driver, listen)
            .with_context(|| format!("cannot listen on udp {listen}"))?;
        let heartbeats = UdpEndpoint::bind(driver, hb_listen)
            .with_context(|| format!("cannot listen on udp {hb_listen}"))?;
        tracing::info!(
            commands = %commands.local_addr()?,
            heartbeats = %heartbeats.local_addr()?,
            operator_auth = config.operator_gate.enforcing(),
            mesh_auth = config.mesh_gate.enforcing(),
            "conductor ready"
        );
        let shutdown = skr8tr_daemon::shutdown_requested();
        run(driver, commands, heartbeats, config, shutdown)
            .await
            .context("conductor stopped")
    })?
}
