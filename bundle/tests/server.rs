//! `skr8tr_server` as an operator runs it: the Tower, the Conductor and a node agent in one
//! process, driven by the `skr8tr` CLI. Dev mode serves a deployment and stops its workloads
//! on SIGTERM; with keys, only signed commands change anything and the node's mesh-signed
//! heartbeats and registrations are accepted; a daemon that cannot start stops the others.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use skr8tr_proto::auth::SigningKey;

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `skr8tr_server` on four loopback ports, with its state in a temporary directory.
struct Server {
    dir: tempfile::TempDir,
    tower: String,
    conductor: String,
    child: Child,
}

impl Server {
    /// Starts the server; `extra` flags are added, and a listen flag in it replaces the
    /// free port this picks.
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut listen: Vec<(&str, String)> = [
            "--tower-listen",
            "--conductor-listen",
            "--heartbeat-listen",
            "--node-listen",
        ]
        .into_iter()
        .map(|flag| (flag, format!("127.0.0.1:{}", free_udp_port())))
        .collect();
        listen.retain(|(flag, _)| !extra.contains(flag));
        let find = |flag: &str| {
            listen
                .iter()
                .find(|(f, _)| *f == flag)
                .map(|(_, a)| a.clone())
                .unwrap_or_default()
        };
        let (tower, conductor) = (find("--tower-listen"), find("--conductor-listen"));
        let child = Command::new(env!("CARGO_BIN_EXE_skr8tr_server"))
            .args(listen.iter().flat_map(|(f, a)| [*f, a.as_str()]))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--metrics", "off", "--stop-workloads-on-exit"])
            .args(["--admin", "127.0.0.1:0", "--tower-admin", "127.0.0.1:0"])
            .args(extra)
            .env("SKR8TR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self {
            dir,
            tower,
            conductor,
            child,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `skr8tr ARGS…` against this server, with an empty `HOME` (no default key).
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_skr8tr"))
            .args(["--conductor", &self.conductor, "--tower", &self.tower])
            .args(["--timeout-ms", "2000"])
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("SKR8TR_CONDUCTOR")
            .env_remove("SKR8TR_TOWER")
            .output()
            .unwrap()
    }

    /// Waits until the node has joined the Conductor.
    fn wait_for_node(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.cli(&["--json", "nodes"]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                if v["nodes"].as_array().is_some_and(|n| n.len() == 1) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the node never joined");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A manifest of `replicas` example-service replicas, written beside the state.
    fn manifest(&self, replicas: usize) -> PathBuf {
        let path = self.path("hello.skr8tr");
        std::fs::write(
            &path,
            format!(
                "app hello\n  exec \"{}\"\n  args example-service\n  port auto\n  replicas {replicas}\n  health GET /healthz 200\n",
                env!("CARGO_BIN_EXE_skr8tr")
            ),
        )
        .unwrap();
        path
    }

    /// The pids of `app`'s replicas once all `n` are healthy.
    fn wait_healthy(&self, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.cli(&["--json", "status"]);
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                let healthy: Vec<u32> = v["replicas"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["state"] == "healthy")
                    .filter_map(|r| r["pid"].as_u64())
                    .map(|p| u32::try_from(p).unwrap())
                    .collect();
                if healthy.len() == n {
                    return healthy;
                }
            }
            assert!(Instant::now() < deadline, "replicas not healthy in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then the exit status and what the server printed.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        signal(self.child.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, stderr_of(&mut self.child))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn stderr_of(child: &mut Child) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut text).unwrap();
    }
    text
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn server_runs_a_deployment_and_sigterm_stops_it_with_its_workloads() {
    let server = Server::start(&[]);
    server.wait_for_node();
    let manifest = server.manifest(2);
    let out = server.cli(&["up", manifest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let pids = server.wait_healthy(2);
    // Registered with the in-process Tower by the in-process node.
    let out = server.cli(&["lookup", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("127.0.0.1:"),
        "{}",
        text(&out.stdout)
    );

    let (status, stderr) = server.terminate();
    assert!(status.success(), "{status:?}: {stderr}");
    for pid in pids {
        assert!(!alive(pid), "workload {pid} survived the server");
    }
}

#[test]
fn server_with_keys_takes_only_signed_commands_and_its_node_is_trusted() {
    let keys = tempfile::tempdir().unwrap();
    let (operator, operator_pub) = SigningKey::generate().unwrap();
    operator.save(&keys.path().join("op.sec"), false).unwrap();
    operator_pub
        .save(&keys.path().join("op.pub"), false)
        .unwrap();
    let (mesh, mesh_pub) = SigningKey::generate().unwrap();
    mesh.save(&keys.path().join("mesh.sec"), false).unwrap();
    mesh_pub.save(&keys.path().join("mesh.pub"), false).unwrap();
    let (op_pub, mesh_sec) = (keys.path().join("op.pub"), keys.path().join("mesh.sec"));
    let server = Server::start(&[
        "--pubkey",
        op_pub.to_str().unwrap(),
        "--mesh-key",
        mesh_sec.to_str().unwrap(),
    ]);
    // NODES is a read: unsigned is fine. The node is listed only if its mesh-signed heartbeat
    // passed the Conductor's gate.
    server.wait_for_node();
    let manifest = server.manifest(1);
    let manifest = manifest.to_str().unwrap();

    let out = server.cli(&["up", manifest]);
    assert!(!out.status.success(), "an unsigned up was accepted");
    assert!(
        text(&out.stderr).contains("UNAUTHORIZED"),
        "{}",
        text(&out.stderr)
    );
    let (wrong, _) = SigningKey::generate().unwrap();
    wrong.save(&server.path("wrong.sec"), false).unwrap();
    let out = server.cli(&[
        "--key",
        server.path("wrong.sec").to_str().unwrap(),
        "up",
        manifest,
    ]);
    assert!(!out.status.success(), "a wrong key's up was accepted");
    assert!(
        text(&out.stderr).contains("UNAUTHORIZED"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cli(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["replicas"].as_array().map(Vec::len), Some(0), "{v}");

    let op_sec = keys.path().join("op.sec");
    let out = server.cli(&["--key", op_sec.to_str().unwrap(), "up", manifest]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Healthy means the mesh-signed LAUNCH reached the node; the lookup means its mesh-signed
    // REGISTER passed the Tower's gate.
    let pids = server.wait_healthy(1);
    let out = server.cli(&["lookup", "hello"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let (status, stderr) = server.terminate();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!alive(pids[0]), "workload survived the server");
}

#[test]
fn a_daemon_that_cannot_start_stops_the_server_and_is_named() {
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let mut server = Server::start(&["--conductor-listen", &busy_addr]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the server kept running");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr_of(&mut server.child);
    assert!(!status.success());
    assert!(stderr.contains("conductor failed to start"), "{stderr}");
    assert!(stderr.contains(&busy_addr), "{stderr}");

    // Without keys, a non-loopback address is refused before anything starts.
    let mut server = Server::start(&["--node-listen", "192.0.2.1:7775"]);
    let status = server.child.wait().unwrap();
    let stderr = stderr_of(&mut server.child);
    assert!(!status.success());
    assert!(
        stderr.contains("--node-listen 192.0.2.1:7775: refusing"),
        "{stderr}"
    );
}
