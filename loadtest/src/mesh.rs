//! A mesh of the release binaries as child processes: the Tower, the Conductor, node agents
//! and the ingress, each on a [`Host`] (loopback, or a network namespace), and how the runner
//! talks to it.
//!
//! ```text
//! Layout (hosts, ports, keys) ─Mesh::start─▶ Tower ▸ Conductor ▸ nodes ▸ ingress (route / → api)
//!   changes:  the `skr8tr` CLI (signed with the operator key when the mesh has keys)
//!   reads:    unsigned UDP (STATUS, APPS, NODES, ROLLOUT_STATUS, Tower LIST), typed by skr8tr-proto
//!   drop:     Conductor ▸ nodes (stop their workloads) ▸ ingress ▸ Tower, then any replica left
//! ```

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use skr8tr_proto::wire::{
    AppStatus, ConductorReply, Message as _, NodeEntry, ReplicaStatus, RolloutProgress, TowerReply,
};

use crate::procs::{self, Proc};

/// The app every scenario deploys; the ingress routes `/` to it.
pub const APP: &str = "api";

/// How often wait loops poll.
pub const POLL: Duration = Duration::from_millis(20);

/// Where the binaries and the run's files are.
#[derive(Debug, Clone)]
pub struct Env {
    /// `target/release`.
    pub bins: PathBuf,
    /// This run's directory: logs and state, one sub-directory per mesh.
    pub work: PathBuf,
}

impl Env {
    /// The path of a release binary.
    #[must_use]
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }
}

/// Where a daemon runs: the runner's own network namespace (`ns: None`) or a named one.
#[derive(Debug, Clone)]
pub struct Host {
    pub ns: Option<String>,
    pub ip: Ipv4Addr,
}

impl Host {
    /// The runner's own namespace, on 127.0.0.1.
    #[must_use]
    pub fn loopback() -> Self {
        Self {
            ns: None,
            ip: Ipv4Addr::LOCALHOST,
        }
    }

    /// A command that runs `program` on this host.
    #[must_use]
    pub fn command(&self, program: &Path) -> Command {
        match &self.ns {
            None => Command::new(program),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
        }
    }

    /// Moves the calling thread into this host's network namespace (sockets it opens from now
    /// on live there).
    ///
    /// # Errors
    /// The namespace does not exist or setns(2) is refused.
    pub fn enter(&self) -> anyhow::Result<()> {
        let Some(ns) = &self.ns else {
            return Ok(());
        };
        let file = std::fs::File::open(format!("/run/netns/{ns}"))
            .with_context(|| format!("opening network namespace {ns}"))?;
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .with_context(|| format!("entering network namespace {ns}"))
    }

    /// Runs `f` on a thread inside this host's namespace (or here, for the runner's own).
    ///
    /// # Errors
    /// The namespace cannot be entered, or `f` panicked.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        if self.ns.is_none() {
            return Ok(f());
        }
        std::thread::scope(|s| {
            s.spawn(|| self.enter().map(|()| f()))
                .join()
                .map_err(|_| anyhow::anyhow!("a thread in {:?} panicked", self.ns))?
        })
    }
}

/// The operator and mesh keys of a mesh that authenticates.
#[derive(Debug, Clone)]
pub struct Keys {
    pub mesh_secret: PathBuf,
    pub operator_secret: PathBuf,
    pub operator_public: PathBuf,
}

/// Hosts, ports and keys of a mesh.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Tower, Conductor and ingress.
    pub control: Host,
    pub nodes: Vec<Host>,
    pub keys: Option<Keys>,
    pub tower: u16,
    pub conductor: u16,
    pub heartbeat: u16,
    pub node_ports: Vec<u16>,
    pub ingress: u16,
}

impl Layout {
    /// Everything on loopback, dev mode (no keys), on ports the kernel says are free now.
    ///
    /// # Errors
    /// No free port could be found.
    pub fn loopback(nodes: usize) -> anyhow::Result<Self> {
        let mut held_udp = Vec::new();
        let mut udp = || -> anyhow::Result<u16> {
            let s = UdpSocket::bind("127.0.0.1:0").context("finding a free UDP port")?;
            let port = s.local_addr()?.port();
            held_udp.push(s);
            Ok(port)
        };
        let (tower, conductor, heartbeat) = (udp()?, udp()?, udp()?);
        let node_ports = (0..nodes).map(|_| udp()).collect::<anyhow::Result<_>>()?;
        let ingress = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free TCP port")?
            .port();
        Ok(Self {
            control: Host::loopback(),
            nodes: vec![Host::loopback(); nodes],
            keys: None,
            tower,
            conductor,
            heartbeat,
            node_ports,
            ingress,
        })
    }

    fn addr(host: &Host, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(host.ip), port)
    }

    #[must_use]
    pub fn tower_addr(&self) -> SocketAddr {
        Self::addr(&self.control, self.tower)
    }

    #[must_use]
    pub fn conductor_addr(&self) -> SocketAddr {
        Self::addr(&self.control, self.conductor)
    }

    #[must_use]
    pub fn ingress_addr(&self) -> SocketAddr {
        Self::addr(&self.control, self.ingress)
    }
}

/// The example service as the app [`APP`] of `replicas` replicas with a fast health check,
/// the environment `vars`, and `extra` manifest lines (blocks indented by two spaces).
#[must_use]
pub fn example_manifest(
    env: &Env,
    layout: &Layout,
    replicas: u32,
    vars: &[(&str, &str)],
    extra: &str,
) -> String {
    let mut vars = vars.to_vec();
    // On separate hosts the ingress reaches replicas over the bridge, not loopback.
    if layout.control.ns.is_some() {
        vars.push(("BIND", "0.0.0.0"));
    }
    let env_block = if vars.is_empty() {
        String::new()
    } else {
        let lines: String = vars.iter().map(|(k, v)| format!("    {k} {v}\n")).collect();
        format!("  env {{\n{lines}  }}\n")
    };
    format!(
        "app {APP}\n  exec \"{}\"\n  args example-service\n  port auto\n  replicas {replicas}\n  \
         health {{\n    check GET /healthz 200\n    interval 500ms\n  }}\n{env_block}{extra}",
        env.bin("skr8tr").display()
    )
}

/// A running mesh; dropping it stops everything it started.
#[derive(Debug)]
pub struct Mesh {
    pub env: Env,
    pub layout: Layout,
    /// Logs and state of this mesh.
    pub dir: PathBuf,
    tower: Option<Proc>,
    conductor: Option<Proc>,
    nodes: Vec<Option<Proc>>,
    ingress: Option<Proc>,
    /// Every replica pid a status reply named (killed at the end if still running).
    seen: Mutex<BTreeSet<u32>>,
}

impl Mesh {
    /// Starts the Tower, the Conductor, the nodes and the ingress under `env.work/label`, and
    /// waits until every node is known and the ingress accepts connections.
    ///
    /// # Errors
    /// A daemon does not start or does not answer in time.
    pub fn start(env: &Env, layout: Layout, label: &str) -> anyhow::Result<Self> {
        let dir = env.work.join(label);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let nodes = layout.nodes.len();
        let mut mesh = Self {
            env: env.clone(),
            layout,
            dir,
            tower: None,
            conductor: None,
            nodes: (0..nodes).map(|_| None).collect(),
            ingress: None,
            seen: Mutex::new(BTreeSet::new()),
        };
        mesh.start_tower()?;
        mesh.start_conductor()?;
        for i in 0..nodes {
            mesh.start_node(i)?;
        }
        mesh.wait_nodes(nodes, Duration::from_secs(10))?;
        mesh.start_ingress()?;
        Ok(mesh)
    }

    fn spawn(&self, name: &str, host: &Host, bin: &str, args: &[String]) -> anyhow::Result<Proc> {
        let mut cmd = host.command(&self.env.bin(bin));
        cmd.args(args)
            .env("SKR8TR_LOG", "info")
            .env("NO_COLOR", "1");
        Proc::spawn(name, cmd, &self.dir.join(format!("{name}.log")))
    }

    fn key_args(&self, with_pubkey: bool) -> Vec<String> {
        let Some(keys) = &self.layout.keys else {
            return Vec::new();
        };
        let mut a = vec!["--mesh-key".into(), keys.mesh_secret.display().to_string()];
        if with_pubkey {
            a.extend([
                "--pubkey".into(),
                keys.operator_public.display().to_string(),
            ]);
        }
        a
    }

    /// Starts (or restarts) the Tower and waits until it answers.
    ///
    /// # Errors
    /// It does not start or answer within 5 s.
    pub fn start_tower(&mut self) -> anyhow::Result<()> {
        // The admin listener on a free port: several meshes may run on one machine.
        let mut args = vec![
            "--listen".into(),
            self.layout.tower_addr().to_string(),
            "--admin".into(),
            Layout::addr(&self.layout.control, 0).to_string(),
        ];
        args.extend(self.key_args(false));
        let p = self.spawn("tower", &self.layout.control, "skr8tr_reg", &args)?;
        self.tower = Some(p);
        let to = self.layout.tower_addr();
        wait_until(Duration::from_secs(5), "the Tower to answer PING", || {
            Ok(self
                .ask(to, "PING")
                .ok()
                .filter(|r| r.starts_with("OK|PONG")))
        })?;
        Ok(())
    }

    /// Starts (or restarts) the Conductor on its state directory and waits until it answers.
    ///
    /// # Errors
    /// It does not start or answer within 5 s.
    pub fn start_conductor(&mut self) -> anyhow::Result<()> {
        let l = &self.layout;
        let mut args: Vec<String> = vec![
            "--listen".into(),
            l.conductor_addr().to_string(),
            "--heartbeat-listen".into(),
            Layout::addr(&l.control, l.heartbeat).to_string(),
            "--tower".into(),
            l.tower_addr().to_string(),
            "--state-dir".into(),
            self.dir.join("conductor-state").display().to_string(),
            "--admin".into(),
            Layout::addr(&l.control, 0).to_string(),
        ];
        args.extend(self.key_args(true));
        let p = self.spawn("conductor", &self.layout.control, "skr8tr_sched", &args)?;
        self.conductor = Some(p);
        wait_until(
            Duration::from_secs(5),
            "the Conductor to answer PING",
            || Ok(self.conductor_ask("PING").ok()),
        )?;
        Ok(())
    }

    /// Starts (or restarts) node `i` (`node1`, `node2`, …) on its own state directory.
    ///
    /// # Errors
    /// It cannot be started.
    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let l = &self.layout;
        let host = l.nodes.get(i).context("no such node")?.clone();
        let port = *l.node_ports.get(i).context("no port for node")?;
        let mut args: Vec<String> = vec![
            "--listen".into(),
            Layout::addr(&host, port).to_string(),
            "--conductor".into(),
            Layout::addr(&l.control, l.heartbeat).to_string(),
            "--tower".into(),
            l.tower_addr().to_string(),
            "--advertise".into(),
            host.ip.to_string(),
            "--node-id".into(),
            node_id(i),
            "--state-dir".into(),
            self.dir
                .join(format!("{}-state", node_id(i)))
                .display()
                .to_string(),
            "--metrics".into(),
            "off".into(),
            "--stop-workloads-on-exit".into(),
        ];
        args.extend(self.key_args(false));
        let p = self.spawn(&node_id(i), &host, "skr8tr_node", &args)?;
        if let Some(slot) = self.nodes.get_mut(i) {
            *slot = Some(p);
        }
        Ok(())
    }

    fn start_ingress(&mut self) -> anyhow::Result<()> {
        let l = &self.layout;
        let mut args: Vec<String> = vec![
            "--listen".into(),
            l.ingress_addr().to_string(),
            "--tower".into(),
            l.tower_addr().to_string(),
            "--route".into(),
            format!("/:{APP}"),
            "--admin".into(),
            "off".into(),
            "--threads".into(),
            "1".into(),
        ];
        args.extend(self.key_args(false));
        let p = self.spawn("ingress", &self.layout.control, "skr8tr_ingress", &args)?;
        self.ingress = Some(p);
        let addr = self.layout.ingress_addr();
        let host = self.layout.control.clone();
        wait_until(Duration::from_secs(5), "the ingress to accept", || {
            host.run(|| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
                .map(|ok| ok.then_some(()))
        })
    }

    /// `kill -9` of the Tower.
    pub fn kill_tower(&mut self) {
        if let Some(p) = self.tower.take() {
            p.kill9();
        }
    }

    /// `kill -9` of the Conductor.
    pub fn kill_conductor(&mut self) {
        if let Some(p) = self.conductor.take() {
            p.kill9();
        }
    }

    /// `kill -9` of node agent `i` (its process group; its workloads live in their own).
    pub fn kill_node(&mut self, i: usize) {
        if let Some(p) = self.nodes.get_mut(i).and_then(Option::take) {
            p.kill9();
        }
    }

    /// Runs the operator CLI on the control host; its stdout.
    ///
    /// # Errors
    /// It cannot run, or exits non-zero (the error carries its stderr).
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.cli_command(args).output().context("running skr8tr")?;
        if !out.status.success() {
            bail!(
                "skr8tr {}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The operator CLI on the control host, with this mesh's addresses and key, not started.
    #[must_use]
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let l = &self.layout;
        let mut cmd = l.control.command(&self.env.bin("skr8tr"));
        cmd.arg("--conductor")
            .arg(l.conductor_addr().to_string())
            .arg("--tower")
            .arg(l.tower_addr().to_string())
            .args(["--timeout-ms", "5000"]);
        if let Some(keys) = &l.keys {
            cmd.arg("--key").arg(&keys.operator_secret);
        }
        cmd.args(args);
        cmd
    }

    /// Writes `text` as `NAME.skr8tr` in the mesh directory.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn manifest_file(&self, name: &str, text: &str) -> anyhow::Result<String> {
        let path = self.dir.join(format!("{name}.skr8tr"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    }

    /// `skr8tr up` of `manifest`, then waits until `replicas` are healthy, registered and
    /// served through the ingress; how long that took.
    ///
    /// # Errors
    /// `up` is refused or the app does not get there within 20 s.
    pub fn deploy(&self, manifest: &str, replicas: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let file = self.manifest_file("v1", manifest)?;
        self.cli(&["up", &file])?;
        self.wait_serving(replicas, Duration::from_secs(20))?;
        Ok(started.elapsed())
    }

    /// Waits until `n` replicas are healthy, the Tower lists exactly `n` backends that each
    /// answer `/healthz`, and `/` through the ingress answers 200.
    ///
    /// # Errors
    /// Not so within `timeout`.
    pub fn wait_serving(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        let what = format!("{n} replicas healthy, registered and served through the ingress");
        wait_until(timeout, &what, || {
            let healthy = self
                .status()?
                .iter()
                .filter(|r| r.state.keyword() == "healthy")
                .count();
            if healthy != n {
                return Ok(None);
            }
            let backends = self.tower_backends()?;
            if backends.len() != n || !backends.iter().all(|b| self.http_ok(*b, "/healthz")) {
                return Ok(None);
            }
            Ok(self.http_ok(self.layout.ingress_addr(), "/").then_some(()))
        })
    }

    /// One UDP request from the control host; the reply text. Retries for up to 2 s.
    ///
    /// # Errors
    /// No reply.
    pub fn ask(&self, to: SocketAddr, text: &str) -> anyhow::Result<String> {
        let from = IpAddr::V4(self.layout.control.ip);
        self.layout.control.run(|| ask_udp(from, to, text))?
    }

    fn conductor_ask(&self, text: &str) -> anyhow::Result<ConductorReply> {
        let reply = self.ask(self.layout.conductor_addr(), text)?;
        let decoded = ConductorReply::decode(reply.as_bytes())
            .with_context(|| format!("conductor reply to {text}: {reply}"))?;
        if let ConductorReply::Error(e) = &decoded {
            bail!("conductor refused {text}: {e:?}");
        }
        Ok(decoded)
    }

    /// Every replica of the app, as the Conductor reports it.
    ///
    /// # Errors
    /// No or an unexpected reply.
    pub fn status(&self) -> anyhow::Result<Vec<ReplicaStatus>> {
        match self.conductor_ask(&format!("STATUS|{APP}"))? {
            ConductorReply::Status(s) => {
                if let Ok(mut seen) = self.seen.lock() {
                    seen.extend(s.iter().map(|r| r.pid).filter(|p| *p != 0));
                }
                Ok(s)
            }
            other => bail!("unexpected STATUS reply {other:?}"),
        }
    }

    /// The app's summary line.
    ///
    /// # Errors
    /// No or an unexpected reply, or the app is unknown.
    pub fn app(&self) -> anyhow::Result<AppStatus> {
        match self.conductor_ask("APPS")? {
            ConductorReply::Apps(apps) => apps
                .into_iter()
                .find(|a| a.app.as_str() == APP)
                .context("the app is not known to the Conductor"),
            other => bail!("unexpected APPS reply {other:?}"),
        }
    }

    /// The progress of the app's current or last rollout.
    ///
    /// # Errors
    /// No or an unexpected reply.
    pub fn rollout(&self) -> anyhow::Result<RolloutProgress> {
        match self.conductor_ask(&format!("ROLLOUT_STATUS|{APP}"))? {
            ConductorReply::RolloutStatus(p) => Ok(p),
            other => bail!("unexpected ROLLOUT_STATUS reply {other:?}"),
        }
    }

    /// The live nodes.
    ///
    /// # Errors
    /// No or an unexpected reply.
    pub fn nodes(&self) -> anyhow::Result<Vec<NodeEntry>> {
        match self.conductor_ask("NODES")? {
            ConductorReply::Nodes(n) => Ok(n),
            other => bail!("unexpected NODES reply {other:?}"),
        }
    }

    fn wait_nodes(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        wait_until(timeout, &format!("{n} nodes"), || {
            Ok((self.nodes()?.len() == n).then_some(()))
        })
    }

    /// The app's backends in the Tower.
    ///
    /// # Errors
    /// No or an unexpected reply.
    pub fn tower_backends(&self) -> anyhow::Result<Vec<SocketAddr>> {
        let reply = self.ask(self.layout.tower_addr(), "LIST")?;
        match TowerReply::decode(reply.as_bytes()).context("Tower LIST reply")? {
            TowerReply::List(entries) => Ok(entries
                .into_iter()
                .filter(|e| e.service.as_str() == APP)
                .map(|e| SocketAddr::new(e.backend.ip, e.backend.port))
                .collect()),
            other => bail!("unexpected LIST reply {other:?}"),
        }
    }

    /// Whether `GET path` at `addr` (from the control host) answers 2xx.
    #[must_use]
    pub fn http_ok(&self, addr: SocketAddr, path: &str) -> bool {
        self.layout
            .control
            .run(|| http_status(addr, path))
            .ok()
            .flatten()
            .is_some_and(|s| (200..300).contains(&s))
    }

    /// The pid of node agent `i`, when running.
    #[must_use]
    pub fn node_pid(&self, i: usize) -> Option<u32> {
        self.nodes.get(i).and_then(Option::as_ref).map(Proc::pid)
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // Conductor first (nothing is rescheduled), then every node at once (each stops its
        // workloads, deregistered while the ingress and the Tower still run), then the rest.
        if let Some(p) = self.conductor.take() {
            p.stop(Duration::from_secs(3));
        }
        let mut nodes: Vec<Proc> = self.nodes.iter_mut().filter_map(Option::take).collect();
        for n in &mut nodes {
            n.terminate();
        }
        for n in nodes {
            n.stop(Duration::from_secs(15));
        }
        if let Some(p) = self.ingress.take() {
            p.stop(Duration::from_secs(3));
        }
        if let Some(p) = self.tower.take() {
            p.stop(Duration::from_secs(3));
        }
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        for pid in seen {
            procs::reap_workload(pid);
        }
    }
}

/// The id node `i` runs with.
#[must_use]
pub fn node_id(i: usize) -> String {
    format!("node{}", i + 1)
}

/// Polls `f` every [`POLL`] until it returns `Some`; errors from `f` count as "not yet".
///
/// # Errors
/// Timeout (naming `what` and the last error) or interrupt.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        procs::check_interrupt()?;
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            match last_err {
                Some(e) => {
                    bail!("timed out after {timeout:?} waiting for {what} (last error: {e:#})")
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        std::thread::sleep(POLL);
    }
}

fn ask_udp(from: IpAddr, to: SocketAddr, text: &str) -> anyhow::Result<String> {
    let sock = UdpSocket::bind((from, 0)).context("binding a UDP socket")?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = vec![0u8; 65_536];
    loop {
        sock.send_to(text.as_bytes(), to)
            .with_context(|| format!("sending {text} to {to}"))?;
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, peer)) if peer == to => {
                    return Ok(String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if Instant::now() >= deadline {
            bail!("no reply from {to} to {text}");
        }
    }
}

/// `GET path` on a fresh connection (`Connection: close`); the status code.
#[must_use]
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: loadtest\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()
}
