//! `skr8tr_reg`, the Tower: the service registry (UDP 7772). Logic in `skr8tr_control::tower`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use skr8tr_control::options::TowerOptions;
use skr8tr_control::tower::server::{TowerConfig, run};
use skr8tr_daemon::{Gate, UdpEndpoint};
use skr8tr_proto::auth::{AuthConfig, KeyRole};

/// The skr8tr Tower: service registry with TTLs, round-robin LOOKUP and WATCH pushes.
#[derive(Debug, Parser)]
#[command(name = "skr8tr_reg", version)]
struct Args {
    /// UDP address to listen on (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7772")]
    listen: String,
    /// The mesh secret key (its public half beside it); without it the Tower runs in dev mode
    /// on loopback only.
    #[arg(long, value_name = "FILE")]
    mesh_key: Option<PathBuf>,
    /// Listen on a non-loopback address without authentication.
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    tower: TowerOptions,
}

fn main() -> ExitCode {
    skr8tr_daemon::init_logging();
    skr8tr_daemon::exit_code("skr8tr_reg", real_main(Args::parse()))
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let auth = AuthConfig::load(&[] as &[PathBuf], args.mesh_key.as_deref(), args.insecure)
        .context("loading keys")?;
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
        let shutdown = async {
            match skr8tr_daemon::shutdown_signal().await {
                Ok(sig) => tracing::info!(signal = sig, "shutting down"),
                Err(e) => tracing::error!(error = %e, "no signal handler; running until killed"),
            }
        };
        run(socket, config, shutdown).await.context("tower stopped")
    })?
}
