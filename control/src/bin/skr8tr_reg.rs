//! `skr8tr_reg`, the Tower: the service registry (UDP 7772). Logic in `skr8tr_control::tower`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use skr8tr_control::options::TowerOptions;
use skr8tr_control::tower::server::{TowerConfig, run};
use skr8tr_daemon::{Gate, MeshKeyArgs, UdpEndpoint};
use skr8tr_proto::auth::KeyRole;

/// The skr8tr Tower: service registry with TTLs, round-robin LOOKUP and WATCH pushes.
#[derive(Debug, Parser)]
#[command(name = "skr8tr_reg", version)]
struct Args {
    /// UDP address to listen on (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7772")]
    listen: String,
    #[command(flatten)]
    keys: MeshKeyArgs,
    #[command(flatten)]
    tower: TowerOptions,
}

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_reg", real_main)
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let auth = args.keys.load()?;
    let listen = skr8tr_daemon::listen_addr(
        "--listen",
        &args.listen,
        7772,
        auth.bind_policy(&[KeyRole::Mesh]),
    )?;
    let mut config = TowerConfig::dev();
    config.gate = Gate::new(auth.mesh_verifier());
    config.mesh_key = auth.mesh_signing_key().cloned();
    args.tower.apply(&mut config)?;
    skr8tr_daemon::run("tower", |driver| async move {
        let socket = UdpEndpoint::bind(driver, listen)
            .with_context(|| format!("cannot listen on udp {listen}"))?;
        tracing::info!(listen = %socket.local_addr()?, authenticated = config.gate.enforcing(), "tower ready");
        run(socket, config, skr8tr_daemon::shutdown_requested())
            .await
            .context("tower stopped")
    })?
}
