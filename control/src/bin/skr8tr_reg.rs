//! `skr8tr_reg`, the Tower: the service registry (UDP 7772). Logic in `skr8tr_control::tower`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use skr8tr_control::tower::server::{TowerConfig, run};
use skr8tr_daemon::{Gate, UdpEndpoint};
use skr8tr_proto::auth::{AuthConfig, KeyRole, SigningKey};

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
    /// Seconds a registration lives without a refresh.
    #[arg(long, default_value_t = 30)]
    ttl: u64,
}

fn main() -> ExitCode {
    skr8tr_daemon::init_logging();
    match real_main(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skr8tr_reg: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: Args) -> anyhow::Result<()> {
    let auth = AuthConfig::load(&[] as &[PathBuf], args.mesh_key.as_deref(), args.insecure)
        .context("loading keys")?;
    let requested =
        skr8tr_daemon::parse_host_port(&args.listen, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7772)?;
    let ip = auth.bind_policy(&[KeyRole::Mesh]).resolve(requested.ip())?;
    if ip != requested.ip() {
        tracing::warn!(requested = %requested.ip(), listening = %ip, "no mesh key: dev mode, loopback only");
    }
    let listen = std::net::SocketAddr::new(ip, requested.port());
    if args.ttl == 0 {
        anyhow::bail!("--ttl must be at least 1 second");
    }
    let config = TowerConfig {
        gate: Gate::new(auth.mesh_verifier()),
        mesh_key: args
            .mesh_key
            .as_deref()
            .map(SigningKey::load)
            .transpose()
            .context("loading the mesh key")?,
        default_ttl: Duration::from_secs(args.ttl),
    };
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
