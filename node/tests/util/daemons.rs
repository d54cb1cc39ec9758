//! Real daemons for the agent tests, each on its own thread and runtime with ephemeral
//! loopback ports: the node agent (`skr8tr_node::agent::run`), the real Tower
//! (`skr8tr_control::tower::server::run`), a fake Conductor (a plain UDP socket the test reads
//! heartbeats and deaths from), and a stand-in HTTP health endpoint.
//!
//! Every handle stops its daemon when dropped (a failing test included); the agents of these
//! tests stop their workloads on exit unless a test asks to detach.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use skr8tr_control::tower::server::{TowerConfig, run as run_tower};
use skr8tr_daemon::{Gate, UdpEndpoint};
use skr8tr_node::{AgentConfig, AgentError, AgentExit};
use skr8tr_proto::auth::{KeyRole, SigningKey, SystemClock, Verifier, VerifyingKey, sign_command};
use skr8tr_proto::manifest::App;
use skr8tr_proto::name::{NodeId, ReplicaId};
use skr8tr_proto::wire::{LaunchSpec, Message, NodeRequest, TowerEntry, TowerReply};
use tokio::sync::oneshot;

use super::PATIENCE;

const LOOPBACK_ANY: &str = "127.0.0.1:0";

/// A mesh key pair; `key()` hands out copies (the daemons and the test each need one).
pub struct Mesh {
    secret: Vec<u8>,
    pub public: VerifyingKey,
}

impl Mesh {
    pub fn generate() -> Self {
        let (secret, public) = SigningKey::generate().unwrap();
        Self {
            secret: secret.to_bytes().to_vec(),
            public,
        }
    }

    pub fn key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.secret).unwrap()
    }

    pub fn gate(&self) -> Gate {
        Gate::new(Some(Verifier::new(KeyRole::Mesh, [self.public.clone()])))
    }

    pub fn sign(&self, text: &str) -> String {
        sign_command(&self.key(), text, SystemClock::now()).unwrap()
    }
}

/// Sends `datagram` to `to` from a fresh socket and returns the first answer, if one comes
/// within `wait`.
pub fn ask_within(to: SocketAddr, datagram: &[u8], wait: Duration) -> Option<String> {
    let socket = UdpSocket::bind(LOOPBACK_ANY).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(datagram, to).unwrap();
    let mut buf = vec![0; 65_536];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

/// [`ask_within`] with [`PATIENCE`], failing the test when nothing answers.
pub fn ask(to: SocketAddr, text: &str) -> String {
    ask_within(to, text.as_bytes(), PATIENCE).unwrap_or_else(|| panic!("no answer to {text:?}"))
}

/// The real Tower on an ephemeral loopback port.
pub struct Tower {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Tower {
    pub fn start(mesh: Option<&Mesh>) -> Self {
        Self::start_at(mesh, LOOPBACK_ANY.parse().unwrap()).unwrap()
    }

    /// A Tower on a port below the kernel's ephemeral range, so that it can be restarted on the
    /// same port ([`Tower::start_at`]) without another test's socket taking it meanwhile.
    pub fn start_restartable() -> Self {
        let seed = std::process::id() as usize;
        for i in 0..200 {
            let port = 20_000 + (seed * 7 + i * 131) % 12_000;
            let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).unwrap()));
            if let Ok(tower) = Self::start_at(None, addr) {
                return tower;
            }
        }
        panic!("no free port for a restartable Tower");
    }

    /// A Tower on `addr` (e.g. the address of one that was stopped: a Tower restart).
    pub fn start_at(mesh: Option<&Mesh>, addr: SocketAddr) -> std::io::Result<Self> {
        let (gate, key) = match mesh {
            Some(m) => (m.gate(), Some(m.key())),
            None => (Gate::new(None), None),
        };
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            skr8tr_daemon::run_with("tower", false, |driver| async move {
                let socket = match UdpEndpoint::bind(driver, addr) {
                    Ok(s) => s,
                    Err(e) => {
                        addr_tx.send(Err(e)).unwrap();
                        return;
                    }
                };
                addr_tx.send(Ok(socket.local_addr().unwrap())).unwrap();
                let config = TowerConfig {
                    gate,
                    mesh_key: key,
                    default_ttl: Duration::from_secs(30),
                    admin: None,
                };
                run_tower(socket, config, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            })
            .unwrap();
        });
        let bound = addr_rx.recv_timeout(PATIENCE).unwrap();
        let addr = match bound {
            Ok(addr) => addr,
            Err(e) => {
                let _ = thread.join();
                return Err(e);
            }
        };
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn list(&self) -> Vec<TowerEntry> {
        match TowerReply::decode(ask(self.addr, "LIST").as_bytes()).unwrap() {
            TowerReply::List(entries) => entries,
            other => panic!("LIST answered {other:?}"),
        }
    }

    /// The ports registered for `service`.
    pub fn ports(&self, service: &str) -> Vec<u16> {
        self.list()
            .into_iter()
            .filter(|e| e.service.as_str() == service)
            .map(|e| e.backend.port)
            .collect()
    }
}

impl Drop for Tower {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How to start an agent.
pub struct AgentOptions<'a> {
    pub epoll: bool,
    pub mesh: Option<&'a Mesh>,
    pub tower: SocketAddr,
    pub state_dir: PathBuf,
    pub metrics: bool,
    pub stop_workloads_on_exit: bool,
    pub node_id: Option<&'a str>,
    pub advertise: Option<std::net::IpAddr>,
    pub reregister: Option<Duration>,
    /// A real Conductor's heartbeat socket to report to, instead of the fake one.
    pub conductor: Option<SocketAddr>,
    /// `--gpus N`.
    pub gpus: Option<u32>,
}

impl<'a> AgentOptions<'a> {
    pub fn new(tower: &Tower, state_dir: &std::path::Path) -> Self {
        Self {
            epoll: false,
            mesh: None,
            tower: tower.addr,
            state_dir: state_dir.to_path_buf(),
            metrics: false,
            stop_workloads_on_exit: true,
            node_id: None,
            advertise: None,
            reregister: None,
            conductor: None,
            gpus: None,
        }
    }
}

/// A running node agent, with the fake Conductor it reports to.
pub struct Agent {
    pub addr: SocketAddr,
    pub node: NodeId,
    pub metrics: Option<SocketAddr>,
    pub conductor: UdpSocket,
    mesh_public: Option<VerifyingKey>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<AgentExit, AgentError>>>,
}

impl Agent {
    pub fn start(opts: AgentOptions<'_>) -> Self {
        if std::env::var_os("SKR8TR_LOG").is_some() {
            skr8tr_daemon::init_logging();
        }
        let conductor = UdpSocket::bind(LOOPBACK_ANY).unwrap();
        let mut config = AgentConfig::new(&opts.state_dir);
        config.conductor = opts
            .conductor
            .unwrap_or_else(|| conductor.local_addr().unwrap());
        config.tower = opts.tower;
        config.heartbeat = Duration::from_millis(100);
        config.stop_workloads_on_exit = opts.stop_workloads_on_exit;
        config.node_id = opts.node_id.map(|n| NodeId::new(n).unwrap());
        config.advertise = opts.advertise;
        config.gpus = opts.gpus;
        if let Some(every) = opts.reregister {
            config.reregister = every;
        }
        if let Some(m) = opts.mesh {
            config.gate = m.gate();
            config.mesh_key = Some(m.key());
        }
        let metrics = opts
            .metrics
            .then(|| TcpListener::bind(LOOPBACK_ANY).unwrap());
        let metrics_addr = metrics.as_ref().map(|l| l.local_addr().unwrap());
        config.metrics = metrics;
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let epoll = opts.epoll;
        let thread = std::thread::spawn(move || {
            skr8tr_daemon::run_with("node", epoll, |driver| async move {
                let socket = UdpEndpoint::bind(driver, LOOPBACK_ANY.parse().unwrap()).unwrap();
                addr_tx.send(socket.local_addr().unwrap()).unwrap();
                skr8tr_node::agent::run(driver, socket, config, async {
                    let _ = stopped.await;
                })
                .await
            })
            .unwrap()
        });
        let addr = addr_rx.recv_timeout(PATIENCE).unwrap();
        let pong = wait_answer(addr, "PING");
        let node = NodeId::new(pong.strip_prefix("OK|PONG|").unwrap()).unwrap();
        Self {
            addr,
            node,
            metrics: metrics_addr,
            conductor,
            mesh_public: opts.mesh.map(|m| m.public.clone()),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// An unsigned request and its answer.
    pub fn ask(&self, text: &str) -> String {
        ask(self.addr, text)
    }

    /// Sends `text` and expects no answer within `wait`.
    pub fn silent(&self, datagram: &[u8], wait: Duration) {
        if let Some(answer) = ask_within(self.addr, datagram, wait) {
            panic!(
                "{:?} was answered with {answer:?}",
                String::from_utf8_lossy(&datagram[..datagram.len().min(80)])
            );
        }
    }

    /// `LAUNCH` of `app` as `replica`, addressed to this node, as the datagram text.
    pub fn launch_text(&self, replica: &str, app: App) -> String {
        NodeRequest::Launch(Box::new(LaunchSpec {
            node: self.node.clone(),
            replica: ReplicaId::new(replica).unwrap(),
            generation: 1,
            app,
        }))
        .encode()
    }

    /// LAUNCH, expecting `OK|LAUNCHED`; the pid.
    pub fn launch(&self, replica: &str, app: App) -> u32 {
        let reply = self.ask(&self.launch_text(replica, app));
        let fields: Vec<&str> = reply.split('|').collect();
        assert_eq!(fields[..3], ["OK", "LAUNCHED", replica], "{reply}");
        fields[3].parse().unwrap()
    }

    /// [`Agent::launch`], signed with `mesh`.
    pub fn launch_signed(&self, mesh: &Mesh, replica: &str, app: App) -> u32 {
        let reply = self.ask(&mesh.sign(&self.launch_text(replica, app)));
        let fields: Vec<&str> = reply.split('|').collect();
        assert_eq!(fields[..3], ["OK", "LAUNCHED", replica], "{reply}");
        fields[3].parse().unwrap()
    }

    /// The next datagram from the agent to the Conductor that `pick` accepts (signatures
    /// verified and stripped when the agent signs), within [`PATIENCE`].
    pub fn reported(&self, pick: impl Fn(&str) -> bool) -> String {
        let mut verifier = self
            .mesh_public
            .as_ref()
            .map(|k| Verifier::new(KeyRole::Mesh, [k.clone()]));
        let deadline = Instant::now() + PATIENCE;
        let mut buf = vec![0; 65_536];
        while Instant::now() < deadline {
            self.conductor
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let Ok((n, _)) = self.conductor.recv_from(&mut buf) else {
                continue;
            };
            let text = String::from_utf8(buf[..n].to_vec()).unwrap();
            let bare = match verifier.as_mut() {
                Some(v) => v
                    .verify(&text)
                    .unwrap_or_else(|e| panic!("badly signed report {text:.60}: {e}"))
                    .to_owned(),
                None => text,
            };
            if pick(&bare) {
                return bare;
            }
        }
        panic!("no matching report to the Conductor within {PATIENCE:?}");
    }

    /// Stops the agent (as on SIGTERM) and returns how it ended.
    pub fn stop(mut self) -> AgentExit {
        self.shutdown().unwrap()
    }

    fn shutdown(&mut self) -> Option<AgentExit> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take()?;
        Some(thread.join().unwrap().unwrap())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        } else if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Asks until an answer comes (the daemon may still be starting): re-sends every 200 ms from
/// one socket, so a late answer to an earlier attempt still counts.
pub fn wait_answer(to: SocketAddr, text: &str) -> String {
    let socket = UdpSocket::bind(LOOPBACK_ANY).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut buf = vec![0; 65_536];
    while Instant::now() < deadline {
        socket.send_to(text.as_bytes(), to).unwrap();
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    panic!("{to} never answered {text:?}");
}

/// Polls `f` every 20 ms until it holds or [`PATIENCE`] passes.
pub fn until(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A stand-in for a replica's HTTP listener on a fixed port: answers every request with the
/// status it is set to. Stops when dropped.
pub struct HealthEndpoint {
    pub port: u16,
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
}

impl HealthEndpoint {
    pub fn start(status: u16) -> Self {
        use std::io::{Read, Write};
        let listener = TcpListener::bind(LOOPBACK_ANY).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(status));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (status.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0; 1024];
                        let _ = conn.read(&mut buf);
                        let code = s.load(Ordering::Relaxed);
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { port, status, stop }
    }

    pub fn set(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }
}

impl Drop for HealthEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `GET path` on 127.0.0.1:`port`; the whole response (head and body).
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
