//! `skr8tr_server`: the Tower, the Conductor and a node agent in one process, for the machine
//! that hosts a cluster's control plane (other machines run `skr8tr_node`). Logic in
//! `skr8tr_bundle::plane` (flags: `ServerArgs`).

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use skr8tr_bundle::plane::{self, PlaneConfig, ServerArgs};
use skr8tr_control::conductor::server::ConductorConfig;
use skr8tr_control::tower::server::TowerConfig;
use skr8tr_daemon::{Gate, listen_addr};
use skr8tr_node::agent::AgentConfig;
use skr8tr_proto::auth::KeyRole;

fn main() -> ExitCode {
    skr8tr_daemon::start("skr8tr_server", real_main)
}

fn real_main(args: ServerArgs) -> anyhow::Result<()> {
    let auth = args.keys.load()?;
    let mesh = auth.bind_policy(&[KeyRole::Mesh]);
    let both = auth.bind_policy(&[KeyRole::Operator, KeyRole::Mesh]);
    let mut tower = TowerConfig::dev();
    tower.gate = Gate::new(auth.mesh_verifier());
    tower.mesh_key = auth.mesh_signing_key().cloned();
    args.tower.apply(&mut tower)?;
    tower.admin = skr8tr_daemon::admin::bind(
        "--tower-admin",
        &args.tower_admin,
        skr8tr_control::options::TOWER_ADMIN_PORT,
    )?;

    let mut conductor = ConductorConfig::dev(args.state_dir.join("conductor"));
    conductor.operator_gate = Gate::new(auth.operator_verifier());
    conductor.mesh_gate = Gate::new(auth.mesh_verifier());
    conductor.mesh_key = auth.mesh_signing_key().cloned();
    args.conductor.apply(&mut conductor)?;
    conductor.admin = skr8tr_daemon::admin::bind(
        "--admin",
        &args.admin,
        skr8tr_control::options::CONDUCTOR_ADMIN_PORT,
    )?;
    let admin = conductor.admin.as_ref().and_then(|l| l.local_addr().ok());

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
        ?admin,
        "server ready"
    );
    skr8tr_daemon::supervisor::watch(
        host.heartbeats(),
        format!(
            "tower on udp {}, conductor on udp {} (heartbeats {}), node on udp {}",
            addrs.tower, addrs.conductor, addrs.heartbeat, addrs.node
        ),
    )
    .context("cannot start the service-manager watcher")?;
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
