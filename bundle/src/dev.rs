//! `skr8tr dev`: a whole mesh in one process — Tower, Conductor and one node agent
//! ([`crate::plane`]) and the ingress, each on its own thread(s) and runtime exactly as the
//! separate daemons run — then the given
//! manifests (or the bundled example service) deployed through the real Conductor and served
//! through the ingress, and everything, workloads included, stopped on Ctrl-C.
//!
//! Dev mode has no keys, so every daemon listens on loopback only. State lives in a temporary
//! directory that is removed on exit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use skr8tr_control::cli::remote::Endpoint;
use skr8tr_control::conductor::server::ConductorConfig;
use skr8tr_control::tower::server::TowerConfig;
use skr8tr_ingress::route::Route;
use skr8tr_proto::manifest::{self, App};
use skr8tr_proto::name::ServiceName;
use skr8tr_proto::route::RouteHost;
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, ManifestSource, TowerReply, TowerRequest,
};

use crate::plane::{self, PlaneConfig};

/// Where the dev mesh listens.
#[derive(Debug, Clone)]
pub struct DevOptions {
    pub files: Vec<PathBuf>,
    pub tower_port: u16,
    pub conductor_port: u16,
    pub heartbeat_port: u16,
    pub node_port: u16,
    /// The ingress's HTTP port: each app's own `route`s, and for an app that declares none,
    /// `/APP` (and `/` for the first of them, unless an app's route holds it).
    pub ingress_port: u16,
    /// How long to wait for every replica to become healthy.
    pub ready_timeout: Duration,
    /// Stop right after deploying (for tests and scripts) instead of waiting for Ctrl-C.
    pub exit_when_ready: bool,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            tower_port: 7772,
            conductor_port: 7771,
            heartbeat_port: 7770,
            node_port: 7775,
            ingress_port: 8080,
            ready_timeout: Duration::from_secs(30),
            exit_when_ready: false,
        }
    }
}

fn lo(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
}

/// The bundled example: the example service (this very binary, `skr8tr example-service`),
/// two replicas on automatic ports, health-checked, served at `/` by its own route.
fn example_manifest(exe: &Path) -> String {
    format!(
        "# The example service bundled with skr8tr dev.\n\
         app hello\n  exec \"{}\"\n  args example-service\n  port auto\n  replicas 2\n  health GET /healthz 200\n  route /\n",
        exe.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

/// Runs the dev mesh. Returns when interrupted (or, with `exit_when_ready`, once deployed).
///
/// # Errors
/// A port is busy, a manifest is invalid, or the deployment does not become healthy in time.
pub fn run(options: DevOptions) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut sources = Vec::new();
    if options.files.is_empty() {
        sources.push(("<bundled example>".to_string(), example_manifest(&exe)));
    }
    for file in &options.files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        sources.push((file.display().to_string(), text));
    }
    let mut apps = Vec::new();
    for (name, text) in &sources {
        match manifest::parse(name, text) {
            Ok(m) => apps.extend(m.apps),
            Err(e) => bail!("invalid manifest:\n{e}"),
        }
    }

    let state = tempfile::Builder::new()
        .prefix("skr8tr-dev-")
        .tempdir()
        .context("cannot make a state directory")?;
    let conductor_state = state.path().join("conductor");
    let node_state = state.path().join("node");

    let mut node = skr8tr_node::agent::AgentConfig::new(node_state);
    node.stop_workloads_on_exit = true;
    let (plane, _) = plane::start(PlaneConfig {
        tower_listen: lo(options.tower_port),
        tower: TowerConfig::dev(),
        conductor_listen: lo(options.conductor_port),
        heartbeat_listen: lo(options.heartbeat_port),
        conductor: ConductorConfig::dev(conductor_state),
        node_listen: lo(options.node_port),
        node,
    })?;
    let routes = dev_routes(&apps);
    let probe = probe(&apps, &routes);
    let mut ingress_config = skr8tr_ingress::Config::local(routes, Vec::new());
    ingress_config.listen = lo(options.ingress_port);
    ingress_config.tower = Some(lo(options.tower_port));
    let ingress = match skr8tr_ingress::start(ingress_config) {
        Ok(handle) => handle,
        Err(e) => {
            report(plane.stop());
            bail!(
                "the ingress cannot start on {}: {e}",
                lo(options.ingress_port)
            );
        }
    };
    let outcome = deploy(&options, &sources, &apps, &probe, started);
    let code = match outcome {
        Ok(()) if options.exit_when_ready => ExitCode::SUCCESS,
        Ok(()) => {
            println!("\nskr8tr dev is running; Ctrl-C stops the mesh and every workload.");
            wait_for_interrupt()?;
            println!("\nstopping…");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skr8tr dev: {e:#}");
            ExitCode::FAILURE
        }
    };
    ingress.stop();
    // Node first, so its workloads are deregistered and stopped while the Tower still runs.
    report(plane.stop());
    drop(state);
    Ok(code)
}

/// The flag routes dev gives the ingress: `/APP` for each app that declares no route of its
/// own, and `/` for the first of those unless an app's own route is host-less `/`. Apps that
/// declare routes are served by them (published through the Tower), and only by them.
fn dev_routes(apps: &[App]) -> Vec<Route> {
    let root_taken = apps
        .iter()
        .flat_map(|a| &a.routes)
        .any(|r| r.host.is_none() && r.prefix == "/");
    let mut routes = Vec::new();
    for (i, app) in apps.iter().filter(|a| a.routes.is_empty()).enumerate() {
        let name = &app.name;
        routes.extend(Route::parse_flag(&format!("/{name}:{name}")).ok());
        if i == 0 && !root_taken {
            routes.extend(Route::parse_flag(&format!("/:{name}")).ok());
        }
    }
    routes
}

/// Where to look for the first 200: a host (for the `Host` header, `None`: the ingress's
/// address) and a path, on the first app's first route.
#[derive(Debug, Clone)]
struct Probe {
    host: Option<String>,
    path: String,
}

fn probe(apps: &[App], flags: &[Route]) -> Probe {
    let own = apps.first().and_then(|a| a.routes.first());
    match own {
        Some(r) => Probe {
            host: r.host.as_ref().map(|h| match h {
                RouteHost::Exact(name) => name.clone(),
                RouteHost::Wildcard(suffix) => format!("dev.{suffix}"),
            }),
            path: r.prefix.clone(),
        },
        None => Probe {
            host: None,
            path: flags
                .first()
                .map_or_else(|| "/".to_owned(), |r| r.prefix.clone()),
        },
    }
}

/// `curl` lines for `app`: its own routes, or the `/APP` flag route dev gave it.
fn curl_lines(app: &App, url_addr: SocketAddr) -> Vec<String> {
    if app.routes.is_empty() {
        return vec![format!("curl http://{url_addr}/{}", app.name)];
    }
    app.routes
        .iter()
        .map(|r| match &r.host {
            None => format!("curl http://{url_addr}{}", r.prefix),
            Some(host) => format!("curl -H 'Host: {host}' http://{url_addr}{}", r.prefix),
        })
        .collect()
}

fn deploy(
    options: &DevOptions,
    sources: &[(String, String)],
    apps: &[App],
    probe: &Probe,
    started: Instant,
) -> anyhow::Result<()> {
    let conductor = Endpoint::new(
        "conductor",
        lo(options.conductor_port),
        Duration::from_secs(10),
        None,
    );
    let tower = Endpoint::new(
        "tower",
        lo(options.tower_port),
        Duration::from_secs(2),
        None,
    );
    // The node's first heartbeat makes it schedulable.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if matches!(conductor.ask_conductor(&ConductorRequest::Nodes)?, ConductorReply::Nodes(n) if !n.is_empty())
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the node did not join the Conductor within 5 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let submitted = Instant::now();
    for (name, text) in sources {
        let submit = ConductorRequest::Submit(ManifestSource::Inline(text.clone()));
        match conductor.ask_conductor(&submit) {
            Ok(ConductorReply::Submitted(_)) => {}
            Ok(other) => bail!("{name}: unexpected reply {other:?}"),
            Err(e) => bail!("{name}: {e}"),
        }
    }
    let deadline = Instant::now() + options.ready_timeout;
    let url_addr = lo(options.ingress_port);
    let (mut first_200, mut healthy_in) = (None, None);
    while first_200.is_none() || healthy_in.is_none() {
        // The first 200 through the ingress: the edge has learnt of a replica from the Tower.
        if first_200.is_none() && http_status(url_addr, probe) == Some(200) {
            first_200 = Some(submitted.elapsed());
        }
        if healthy_in.is_none()
            && let ConductorReply::Apps(list) = conductor.ask_conductor(&ConductorRequest::Apps)?
            && apps.iter().all(|app| {
                list.iter()
                    .any(|a| a.app == app.name && a.healthy >= a.desired)
            })
        {
            healthy_in = Some(submitted.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "not every replica became healthy and served through {url_addr} within {:?}; `skr8tr status` and `skr8tr logs APP` tell why",
                options.ready_timeout
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (first_200, healthy_in) = (
        first_200.unwrap_or_default(),
        healthy_in.unwrap_or_default(),
    );
    println!(
        "skr8tr dev: tower {}, conductor {}, node {}, ingress {} (loopback, dev mode: no keys)",
        lo(options.tower_port),
        lo(options.conductor_port),
        lo(options.node_port),
        url_addr
    );
    println!(
        "deployed {} app(s): first 200 through the ingress {} ms after submit, every replica healthy after {} ms ({} ms after start)",
        apps.len(),
        first_200.as_millis(),
        healthy_in.as_millis(),
        started.elapsed().as_millis()
    );
    println!();
    for app in apps {
        let name = &app.name;
        let direct = match tower.ask_tower(&TowerRequest::Lookup(ServiceName::from(name.clone()))) {
            Ok(TowerReply::Lookup { backend, .. }) => {
                format!("   (a replica directly: http://{backend}/)")
            }
            _ => String::new(),
        };
        for (i, line) in curl_lines(app, url_addr).iter().enumerate() {
            let tail = if i == 0 { direct.as_str() } else { "" };
            println!("  {name}: {line}{tail}");
        }
    }
    println!();
    println!("next: skr8tr status · skr8tr logs APP · skr8tr list · skr8tr nodes");
    Ok(())
}

fn report(errors: Vec<anyhow::Error>) {
    for e in errors {
        eprintln!("skr8tr dev: {e:#}");
    }
}

fn wait_for_interrupt() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(skr8tr_daemon::shutdown_signal())?;
    Ok(())
}

/// The status code of `GET probe.path` on `addr`, or `None` when there is no HTTP answer.
fn http_status(addr: SocketAddr, probe: &Probe) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let host = probe.host.clone().unwrap_or_else(|| addr.to_string());
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        probe.path
    )
    .ok()?;
    let mut head = [0u8; 16];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}
