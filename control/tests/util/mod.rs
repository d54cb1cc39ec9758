//! Helpers for tests that start real daemons in-process on loopback ephemeral ports: each
//! daemon runs on its own thread with its own runtime (as in production), and stops when its
//! handle is dropped.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use skr8tr_daemon::UdpEndpoint;

/// A daemon running on a thread; dropping it stops the daemon and joins the thread.
pub struct Running {
    pub addrs: Vec<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a daemon: `bind` says how many UDP sockets to open on 127.0.0.1:0, `serve` runs it
/// until the shutdown future resolves.
pub fn start<F, Fut>(name: &'static str, epoll: bool, sockets: usize, serve: F) -> Running
where
    F: FnOnce(skr8tr_daemon::Driver, Vec<UdpEndpoint>, tokio::sync::oneshot::Receiver<()>) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    start_on(name, epoll, vec![any; sockets], serve)
}

/// [`start`] on given addresses (to restart a daemon where it was).
pub fn start_on<F, Fut>(
    name: &'static str,
    epoll: bool,
    binds: Vec<SocketAddr>,
    serve: F,
) -> Running
where
    F: FnOnce(skr8tr_daemon::Driver, Vec<UdpEndpoint>, tokio::sync::oneshot::Receiver<()>) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        skr8tr_daemon::run_with(name, epoll, |driver| async move {
            let mut endpoints = Vec::new();
            let mut addrs = Vec::new();
            for bind in binds {
                let ep = UdpEndpoint::bind(driver, bind).unwrap();
                addrs.push(ep.local_addr().unwrap());
                endpoints.push(ep);
            }
            addr_tx.send(addrs).unwrap();
            serve(driver, endpoints, stop_rx).await;
        })
        .unwrap();
    });
    let addrs = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("daemon started");
    Running {
        addrs,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// Sends `msg` from a fresh socket and returns the reply, if one comes within `wait`.
pub fn ask_within(to: SocketAddr, msg: &[u8], wait: Duration) -> Option<String> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.send_to(msg, to).unwrap();
    let mut buf = vec![0u8; 65536];
    match s.recv_from(&mut buf) {
        Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

/// [`ask_within`] with a generous wait, retried once (UDP on loopback does not lose datagrams
/// in practice, but a daemon may still be starting).
pub fn ask(to: SocketAddr, msg: &str) -> String {
    for _ in 0..3 {
        if let Some(r) = ask_within(to, msg.as_bytes(), Duration::from_secs(2)) {
            return r;
        }
    }
    panic!("no reply from {to} to {msg:?}");
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `within`.
pub fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP/1.1 `method path` to `addr` (an admin listener); the status and the body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_owned())
}

/// The first event of the server-sent events stream at `path` on `addr`: its `data:` lines
/// joined.
pub fn first_event(addr: SocketAddr, path: &str) -> String {
    use std::io::{BufRead as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut lines = std::io::BufReader::new(s).lines();
    let status = lines.next().unwrap().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let mut content_type = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-type:") {
            content_type = v.trim().to_owned();
        }
    }
    assert_eq!(content_type, "text/event-stream");
    let mut data = Vec::new();
    for line in lines {
        let line = line.unwrap();
        if line.is_empty() && !data.is_empty() {
            break;
        }
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.to_owned());
        }
    }
    data.join("\n")
}
