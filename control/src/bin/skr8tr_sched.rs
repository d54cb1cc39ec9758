//! `skr8tr_sched`, the Conductor: placement, replica enforcement, durable state (UDP 7771 for
//! commands, 7770 for heartbeats). Logic in `skr8tr_control::conductor`, flags in
//! `skr8tr_control::options::ConductorArgs`.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use anyhow::Context as _;
use skr8tr_control::conductor::server::{ConductorConfig, run};
use skr8tr_control::options::ConductorArgs;
use skr8tr_daemon::{Gate, UdpEndpoint};
use skr8tr_proto::auth::KeyRole;

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_sched", real_main)
}

fn real_main(args: ConductorArgs) -> anyhow::Result<()> {
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
    config.admin = skr8tr_daemon::admin::bind(
        "--admin",
        &args.admin,
        skr8tr_control::options::CONDUCTOR_ADMIN_PORT,
    )?;
    let admin = config.admin.as_ref().and_then(|l| l.local_addr().ok());
    skr8tr_daemon::run("conductor", |driver| async move {
        let commands = UdpEndpoint::bind(driver, listen)
            .with_context(|| format!("cannot listen on udp {listen}"))?;
        let heartbeats = UdpEndpoint::bind(driver, hb_listen)
            .with_context(|| format!("cannot listen on udp {hb_listen}"))?;
        let (cmd_addr, hb_addr) = (commands.local_addr()?, heartbeats.local_addr()?);
        tracing::info!(
            commands = %cmd_addr,
            heartbeats = %hb_addr,
            ?admin,
            operator_auth = config.operator_gate.enforcing(),
            mesh_auth = config.mesh_gate.enforcing(),
            "conductor ready"
        );
        skr8tr_daemon::supervisor::ready(format!(
            "commands on udp {cmd_addr}, heartbeats on udp {hb_addr}"
        ));
        let shutdown = skr8tr_daemon::shutdown_requested();
        run(driver, commands, heartbeats, config, shutdown)
            .await
            .context("conductor stopped")
    })?
}
