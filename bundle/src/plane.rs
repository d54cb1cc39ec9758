//! The Tower, the Conductor and a node agent in one process: what `skr8tr_server` (a
//! control-plane host, as `nomad agent -server -client`) and `skr8tr dev` run.
//!
//! Each daemon keeps its own thread and its own runtime, exactly as it runs alone, so a slow
//! store commit in the Conductor never delays a Tower lookup. This module owns only the threads
//! and their order: the Tower starts first and stops last, the node starts last and stops first
//! (it deregisters its replicas from a Tower that still answers). Each runtime beats a
//! heartbeat of its own ([`Host::heartbeats`]) for the service manager's watchdog.
//! `skr8tr_server`'s command line is [`ServerArgs`]. What each daemon does is in
//! [`skr8tr_control::tower`], [`skr8tr_control::conductor`] and [`skr8tr_node::agent`].
//!
//! One process rather than three is the smallest control plane: the three share one copy of
//! libc, the loader, the runtime and the protocol code in memory (`loadtest/control-plane.sh`
//! measures both ways).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, bail};
use skr8tr_daemon::supervisor::{self, Heartbeat};
use skr8tr_daemon::{KeyArgs, UdpEndpoint};
use skr8tr_node::agent::{AgentConfig, AgentExit, AgentOptions};
use tokio::sync::{mpsc, oneshot};

use skr8tr_control::conductor::server::{ConductorConfig, run as run_conductor};
use skr8tr_control::options::{ConductorOptions, TowerOptions};
use skr8tr_control::tower::server::{TowerConfig, run as run_tower};

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
#[derive(Debug, clap::Parser)]
#[command(
    name = "skr8tr_server",
    version,
    mut_arg("advertise", |a| a.help(
        "The address replicas are registered at [default: the Tower's listen address, or the \
         address of the default route when it listens on every address]"
    ))
)]
pub struct ServerArgs {
    /// UDP address of the Tower (`[HOST][:PORT]`, IPv4 or IPv6).
    #[arg(long, default_value = "0.0.0.0:7772")]
    pub tower_listen: String,
    /// UDP address for operator commands to the Conductor.
    #[arg(long, default_value = "0.0.0.0:7771")]
    pub conductor_listen: String,
    /// UDP address for node heartbeats.
    #[arg(long, default_value = "0.0.0.0:7770")]
    pub heartbeat_listen: String,
    /// UDP address of the node agent's command socket.
    #[arg(long, default_value = "0.0.0.0:7775")]
    pub node_listen: String,
    /// TCP address of the Conductor's admin listener (`/metrics`, `/healthz`, the live status
    /// page at `/`; read-only), or `off`.
    #[arg(long, default_value = "127.0.0.1:9181")]
    pub admin: String,
    /// TCP address of the Tower's admin listener (`/metrics`, `/healthz`), or `off`.
    #[arg(long, default_value = "127.0.0.1:9182")]
    pub tower_admin: String,
    /// Where the state lives: `conductor/` (the durable store) and `node/` (the node's id, its
    /// replicas' records and their logs).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/skr8tr")]
    pub state_dir: PathBuf,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub tower: TowerOptions,
    #[command(flatten)]
    pub conductor: ConductorOptions,
    #[command(flatten)]
    pub agent: AgentOptions,
}

/// How long a daemon may take to bind its sockets before its start counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves when the daemon is asked to stop.
pub type Stop = oneshot::Receiver<()>;
/// Where a daemon reports that it listens (the bound addresses) or why it could not start.
pub type Ready = std::sync::mpsc::Sender<anyhow::Result<Vec<SocketAddr>>>;

/// One daemon thread and the way to stop it.
struct Daemon {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e.context(format!("{} stopped with an error", self.name))),
            Some(Err(_)) => bail!("{} panicked", self.name),
        }
    }
}

/// Daemons running on threads of this process. Dropping it stops them, the last started first.
pub struct Host {
    daemons: Vec<Daemon>,
    /// Each daemon's event loop beats its own (for the service manager's watchdog).
    hearts: Vec<Arc<Heartbeat>>,
    exited_tx: mpsc::UnboundedSender<&'static str>,
    exited_rx: mpsc::UnboundedReceiver<&'static str>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.daemons.iter().map(|d| d.name))
            .finish()
    }
}

impl Default for Host {
    fn default() -> Self {
        let (exited_tx, exited_rx) = mpsc::unbounded_channel();
        Self {
            daemons: Vec::new(),
            hearts: Vec::new(),
            exited_tx,
            exited_rx,
        }
    }
}

impl Host {
    /// Starts `serve` on a thread of its own with its own runtime, and returns once it listens
    /// (the addresses it sent on [`Ready`]) or failed to (its error).
    ///
    /// # Errors
    /// The thread cannot start, `serve` failed before it was ready, or it took longer than
    /// 10 s.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, serve: F) -> anyhow::Result<Vec<SocketAddr>>
    where
        F: FnOnce(skr8tr_daemon::Driver, Stop, Ready) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let exited = self.exited_tx.clone();
        let heart = Heartbeat::new();
        self.hearts.push(Arc::clone(&heart));
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || -> anyhow::Result<()> {
                let ready_err = ready_tx.clone();
                let result = skr8tr_daemon::run(name, |driver| async move {
                    skr8tr_daemon::spawn(supervisor::beat(heart));
                    serve(driver, stop_rx, ready_tx).await
                })
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
                if let Err(e) = &result {
                    // Unheard once the daemon was ready: then `exited` tells.
                    let _ = ready_err.send(Err(anyhow::anyhow!("{e:#}")));
                }
                let _ = exited.send(name);
                result
            })
            .with_context(|| format!("cannot start the {name} thread"))?;
        let mut daemon = Daemon {
            name,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(addrs)) => {
                self.daemons.push(daemon);
                Ok(addrs)
            }
            Ok(Err(e)) => {
                let _ = daemon.stop();
                Err(e.context(format!("{name} failed to start")))
            }
            Err(_) => {
                // Leave the thread be: it may be stuck; the process is about to report failure.
                bail!("{name} did not start within {START_TIMEOUT:?}")
            }
        }
    }

    /// The heartbeats of the daemons' event loops, one each ([`supervisor::watch`]).
    #[must_use]
    pub fn heartbeats(&self) -> Vec<Arc<Heartbeat>> {
        self.hearts.clone()
    }

    /// Resolves with the name of the first daemon whose thread ends, failed or not: a host
    /// that lost one of its daemons should stop the others rather than run half a plane.
    pub async fn exited(&mut self) -> &'static str {
        loop {
            // `self` holds a sender, so the channel never closes.
            let name = self.exited_rx.recv().await.unwrap_or("?");
            // A daemon that failed at start was never hosted: its spawn returned the error.
            if self.daemons.iter().any(|d| d.name == name) {
                return name;
            }
        }
    }

    /// Stops every daemon, the last started first, and returns what each one stopped with.
    pub fn stop(mut self) -> Vec<anyhow::Error> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        while let Some(mut d) = self.daemons.pop() {
            if let Err(e) = d.stop() {
                errors.push(e);
            }
        }
        errors
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for e in self.stop_all() {
            tracing::error!(error = %format!("{e:#}"), "daemon stopped");
        }
    }
}

/// Where the three daemons of a plane listen and how each is configured. The node's Conductor
/// and Tower, and the Conductor's Tower, are set by [`start`] to the plane's own.
#[derive(Debug)]
pub struct PlaneConfig {
    pub tower_listen: SocketAddr,
    pub tower: TowerConfig,
    pub conductor_listen: SocketAddr,
    pub heartbeat_listen: SocketAddr,
    pub conductor: ConductorConfig,
    pub node_listen: SocketAddr,
    pub node: AgentConfig,
}

/// The addresses a started plane listens on (ports resolved when 0 was asked for).
#[derive(Debug, Clone, Copy)]
pub struct PlaneAddrs {
    pub tower: SocketAddr,
    pub conductor: SocketAddr,
    pub heartbeat: SocketAddr,
    pub node: SocketAddr,
}

/// Where a daemon of this process reaches one listening on `addr`: itself, or loopback when it
/// listens on every address.
fn reach(addr: SocketAddr) -> SocketAddr {
    if !addr.ip().is_unspecified() {
        return addr;
    }
    let loopback = if addr.is_ipv4() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    };
    SocketAddr::new(loopback, addr.port())
}

/// Where the node registers its replicas when `--advertise` is not given. Alone, a node takes
/// its address on the route to the Tower; here the Tower is reached on loopback when it listens
/// on every address, and loopback is no use to an ingress on another host, so the node takes
/// the address of this host's default route instead (a route lookup, nothing is sent). `None`
/// (the node's own rule) when the Tower listens on one address.
fn default_advertise(tower_listen: SocketAddr) -> Option<IpAddr> {
    if !tower_listen.ip().is_unspecified() {
        return None;
    }
    // TEST-NET-1 / the IPv6 documentation prefix: reached, if at all, by the default route.
    let probe = if tower_listen.is_ipv4() {
        SocketAddr::from(([192, 0, 2, 1], 9))
    } else {
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 9))
    };
    let ip = skr8tr_node::agent::route_address(probe);
    tracing::info!(advertise = %ip, "replicas are registered at the address of the default route (--advertise to choose)");
    Some(ip)
}

fn first(addrs: &[SocketAddr], name: &str) -> anyhow::Result<SocketAddr> {
    addrs
        .first()
        .copied()
        .with_context(|| format!("{name} reported no address"))
}

/// Starts the Tower, then the Conductor, then the node agent, each once the one before
/// listens; on any failure the ones already started are stopped again.
///
/// # Errors
/// An address is busy or a daemon fails at start (its error, naming it).
pub fn start(config: PlaneConfig) -> anyhow::Result<(Host, PlaneAddrs)> {
    let PlaneConfig {
        tower_listen,
        tower,
        conductor_listen,
        heartbeat_listen,
        mut conductor,
        node_listen,
        node: mut agent,
    } = config;
    let mut host = Host::default();

    let addrs = host.spawn("tower", move |driver, stop, ready| async move {
        let socket = UdpEndpoint::bind(driver, tower_listen)
            .with_context(|| format!("cannot listen on udp {tower_listen} (tower)"))?;
        let local = socket.local_addr()?;
        tracing::info!(listen = %local, authenticated = tower.gate.enforcing(), "tower ready");
        let _ = ready.send(Ok(vec![local]));
        run_tower(socket, tower, async {
            let _ = stop.await;
        })
        .await
        .context("tower")
    })?;
    let tower_addr = first(&addrs, "tower")?;

    conductor.tower = Some(reach(tower_addr));
    let addrs = host.spawn("conductor", move |driver, stop, ready| async move {
        let commands = UdpEndpoint::bind(driver, conductor_listen)
            .with_context(|| format!("cannot listen on udp {conductor_listen} (conductor)"))?;
        let heartbeats = UdpEndpoint::bind(driver, heartbeat_listen)
            .with_context(|| format!("cannot listen on udp {heartbeat_listen} (heartbeats)"))?;
        let local = vec![commands.local_addr()?, heartbeats.local_addr()?];
        tracing::info!(
            commands = %local[0],
            heartbeats = %local[1],
            operator_auth = conductor.operator_gate.enforcing(),
            mesh_auth = conductor.mesh_gate.enforcing(),
            "conductor ready"
        );
        let _ = ready.send(Ok(local));
        run_conductor(driver, commands, heartbeats, conductor, async {
            let _ = stop.await;
        })
        .await
        .context("conductor")
    })?;
    let conductor_addr = first(&addrs, "conductor")?;
    let heartbeat_addr = first(addrs.get(1..).unwrap_or_default(), "conductor heartbeats")?;

    agent.conductor = reach(heartbeat_addr);
    agent.tower = reach(tower_addr);
    if agent.advertise.is_none() {
        agent.advertise = default_advertise(tower_addr);
    }
    let addrs = host.spawn("node", move |driver, stop, ready| async move {
        let socket = UdpEndpoint::bind(driver, node_listen)
            .with_context(|| format!("cannot listen on udp {node_listen} (node)"))?;
        let local = socket.local_addr()?;
        tracing::info!(listen = %local, authenticated = agent.gate.enforcing(), "node agent listening");
        let _ = ready.send(Ok(vec![local]));
        let exit = skr8tr_node::agent::run(driver, socket, agent, async {
            let _ = stop.await;
        })
        .await
        .context("node")?;
        match exit {
            AgentExit::Detached => {
                tracing::info!("node stopped; workloads left running for the next agent");
            }
            AgentExit::StoppedWorkloads => tracing::info!("node stopped with its workloads"),
        }
        Ok(())
    })?;
    let node_addr = first(&addrs, "node")?;
    Ok((
        host,
        PlaneAddrs {
            tower: tower_addr,
            conductor: conductor_addr,
            heartbeat: heartbeat_addr,
            node: node_addr,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemons_reach_a_wildcard_listener_on_loopback_and_others_where_they_listen() {
        let cases = [
            ("0.0.0.0:7772", "127.0.0.1:7772"),
            ("[::]:7772", "[::1]:7772"),
            ("10.0.0.5:7772", "10.0.0.5:7772"),
            ("127.0.0.1:9", "127.0.0.1:9"),
        ];
        for (listen, expected) in cases {
            let listen: SocketAddr = listen.parse().expect("address");
            assert_eq!(reach(listen).to_string(), expected, "{listen}");
        }
    }

    #[test]
    fn a_tower_on_every_address_makes_the_node_advertise_its_default_route_address() {
        let specific: SocketAddr = "127.0.0.1:7772".parse().expect("address");
        assert_eq!(default_advertise(specific), None);
        let every: SocketAddr = "0.0.0.0:7772".parse().expect("address");
        let probe: SocketAddr = "192.0.2.1:9".parse().expect("address");
        assert_eq!(
            default_advertise(every),
            Some(skr8tr_node::agent::route_address(probe))
        );
    }

    #[test]
    fn a_daemon_failing_before_ready_fails_spawn_with_its_error_and_leaves_nothing() {
        let mut host = Host::default();
        let err = host
            .spawn("broken", |_, _, _| async { bail!("no such directory") })
            .expect_err("spawn must fail");
        let text = format!("{err:#}");
        assert!(text.contains("broken failed to start"), "{text}");
        assert!(text.contains("no such directory"), "{text}");
        assert!(host.stop().is_empty());
    }

    #[test]
    fn exited_names_the_daemon_that_ended_and_stop_goes_in_reverse_order() {
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut host = Host::default();
        for name in ["first", "second"] {
            let order = std::sync::Arc::clone(&order);
            host.spawn(name, move |_, stop, ready| async move {
                let _ = ready.send(Ok(Vec::new()));
                let _ = stop.await;
                order.lock().expect("lock").push(name);
                Ok(())
            })
            .expect("spawn");
        }
        host.spawn("quitter", |_, _, ready| async move {
            let _ = ready.send(Ok(Vec::new()));
            bail!("lost its socket")
        })
        .expect("spawn");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let name = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), host.exited())
                .await
                .expect("a daemon exits")
        });
        assert_eq!(name, "quitter");
        let errors = host.stop();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(format!("{:#}", errors[0]).contains("lost its socket"));
        assert_eq!(*order.lock().expect("lock"), ["second", "first"]);
    }
}
