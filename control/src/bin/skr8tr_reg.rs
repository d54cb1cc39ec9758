//! `skr8tr_reg`, the Tower: the service registry (UDP 7772). Logic in `skr8tr_control::tower`,
//! flags in `skr8tr_control::options::TowerArgs`.

use std::process::ExitCode;

use anyhow::Context as _;
use skr8tr_control::options::TowerArgs;
use skr8tr_control::tower::server::{TowerConfig, run};
use skr8tr_daemon::{Gate, UdpEndpoint};
use skr8tr_proto::auth::KeyRole;

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_reg", real_main)
}

fn real_main(args: TowerArgs) -> anyhow::Result<()> {
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
    config.admin = skr8tr_daemon::admin::bind(
        "--admin",
        &args.admin,
        skr8tr_control::options::TOWER_ADMIN_PORT,
    )?;
    let admin = config.admin.as_ref().and_then(|l| l.local_addr().ok());
    skr8tr_daemon::run("tower", |driver| async move {
        let socket = UdpEndpoint::bind(driver, listen)
            .with_context(|| format!("cannot listen on udp {listen}"))?;
        let addr = socket.local_addr()?;
        tracing::info!(listen = %addr, ?admin, authenticated = config.gate.enforcing(), "tower ready");
        skr8tr_daemon::supervisor::ready(format!("listening on udp {addr}"));
        run(socket, config, skr8tr_daemon::shutdown_requested())
            .await
            .context("tower stopped")
    })?
}
