//! `skr8tr dev` as a user runs it: the whole mesh starts, the example service answers through
//! the ingress, and SIGINT stops everything it started, workloads included.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Four free UDP ports and one TCP port (bound then released: good enough for a test).
fn free_ports() -> (u16, u16, u16, u16) {
    let udp = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The heartbeat port is the conductor port minus one: find a free adjacent pair.
    loop {
        let c = udp();
        if std::net::UdpSocket::bind(("127.0.0.1", c - 1)).is_ok() {
            return (udp(), c, udp(), tcp);
        }
    }
}

fn example_processes() -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(env!("CARGO_BIN_EXE_skr8tr")) && cmdline.contains("example-service")
            {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn dev_serves_the_example_through_the_ingress_and_sigint_stops_everything() {
    let (tower, conductor, node, ingress) = free_ports();
    let mut child = Command::new(env!("CARGO_BIN_EXE_skr8tr"))
        .args([
            "dev",
            "--tower-port",
            &tower.to_string(),
            "--conductor-port",
            &conductor.to_string(),
        ])
        .args([
            "--node-port",
            &node.to_string(),
            "--ingress-port",
            &ingress.to_string(),
        ])
        .env("SKR8TR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_curl = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains(&format!("curl http://127.0.0.1:{ingress}/")) {
            saw_curl = true;
        }
        if line.contains("skr8tr dev is running") {
            break;
        }
        assert!(Instant::now() < deadline, "dev did not come up");
    }
    assert!(saw_curl, "dev printed no curl line for the ingress");
    let mut s = TcpStream::connect(("127.0.0.1", ingress)).unwrap();
    write!(s, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("hello from hello replica hello.g1.r"),
        "{body}"
    );
    let workloads = example_processes();
    assert_eq!(workloads.len(), 2, "two replicas of the example service");

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "dev did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    for pid in workloads {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "workload {pid} survived"
        );
    }
    assert!(
        TcpStream::connect(("127.0.0.1", ingress)).is_err(),
        "the ingress still listens"
    );
}
