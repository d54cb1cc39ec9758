//! A host whose network link can be cut: a network namespace joined to this one by a veth pair,
//! running `skr8tr_serve`. Cutting takes the far end of the link down, so packets to the host
//! vanish without an error, as when a machine dies or a switch port fails. Needs root and
//! iproute2 (`ip`); [`FarHost::start`] says why when it cannot run.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The far host: its namespace, link and file server; removed on drop.
pub struct FarHost {
    ns: String,
    far_if: String,
    /// Where its file server listens (`GET /` answers 200).
    pub addr: SocketAddr,
    server: Child,
    _dir: tempfile::TempDir,
}

impl FarHost {
    /// Creates the namespace and link and starts the file server; `Err` says why not (no root,
    /// no `ip`).
    pub fn start() -> Result<Self, String> {
        let pid = std::process::id();
        let ns = format!("skr8ti{pid}");
        // Interface names are at most 15 bytes; the /30 subnet is picked from the pid.
        let (near_if, far_if) = (format!("sk{pid}a"), format!("sk{pid}b"));
        let (a, b) = ((pid / 64) % 250 + 1, (pid % 64) * 4);
        let (near_ip, far_ip) = (
            format!("10.252.{a}.{}", b + 1),
            format!("10.252.{a}.{}", b + 2),
        );
        ip(&["netns", "add", &ns])?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("index.html"), "far\n").map_err(|e| e.to_string())?;
        let mut host = Self {
            ns: ns.clone(),
            far_if: far_if.clone(),
            addr: format!("{far_ip}:8080")
                .parse()
                .map_err(|e| format!("{e}"))?,
            // Replaced below; `true` exits at once.
            server: Command::new("true").spawn().map_err(|e| e.to_string())?,
            _dir: dir,
        };
        ip(&[
            "link", "add", &near_if, "type", "veth", "peer", "name", &far_if, "netns", &ns,
        ])?;
        ip(&["addr", "add", &format!("{near_ip}/30"), "dev", &near_if])?;
        ip(&["link", "set", &near_if, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{far_ip}/30"),
            "dev",
            &far_if,
        ])?;
        ip(&["-n", &ns, "link", "set", &far_if, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        let _ = host.server.wait();
        host.server = Command::new("ip")
            .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_skr8tr_serve")])
            .arg("--dir")
            .arg(host._dir.path())
            .args(["--listen", &host.addr.to_string(), "--threads", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect_timeout(&host.addr, Duration::from_millis(200)).is_err()
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "the far host's server did not start on {}",
                    host.addr
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(host)
    }

    /// Cuts the link: from now on packets to and from the host are lost.
    pub fn cut(&self) {
        ip(&["-n", &self.ns, "link", "set", &self.far_if, "down"]).unwrap();
    }
}

impl Drop for FarHost {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // Deleting the namespace deletes the veth pair with it.
        let _ = ip(&["netns", "delete", &self.ns]);
    }
}
