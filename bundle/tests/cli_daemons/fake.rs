//! A fake daemon: one UDP socket on 127.0.0.1:0 served by a thread that records every datagram
//! and answers what a script says. Dropping it stops and joins the thread.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use skr8tr_proto::auth::SignedCommand;

/// The script: given the index of the datagram (0-based) and its bare text (signature
/// stripped), the reply to send, or `None` to stay silent.
pub type Script = Box<dyn FnMut(usize, &str) -> Option<String> + Send>;

pub struct Fake {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The command without its signature suffix, or the datagram itself when it is not signed.
pub fn bare(datagram: &str) -> &str {
    SignedCommand::parse(datagram).map_or(datagram, |s| s.command())
}

/// The first `|` field.
pub fn verb(bare: &str) -> &str {
    bare.split('|').next().unwrap_or_default()
}

impl Fake {
    pub fn start(script: impl FnMut(usize, &str) -> Option<String> + Send + 'static) -> Self {
        let mut script: Script = Box::new(script);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a fake daemon");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("local address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 70_000];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let index = {
                        let mut r = received.lock().expect("the record");
                        r.push(text.clone());
                        r.len() - 1
                    };
                    if let Some(reply) = script(index, bare(&text)) {
                        let _ = socket.send_to(reply.as_bytes(), from);
                    }
                }
            })
        };
        Self {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// Never answers.
    pub fn silent() -> Self {
        Self::start(|_, _| None)
    }

    /// Answers every datagram with `reply`.
    pub fn always(reply: &str) -> Self {
        let reply = reply.to_owned();
        Self::start(move |_, _| Some(reply.clone()))
    }

    /// Answers by verb from a table; silent for a verb not in it.
    pub fn by_verb(table: &[(&str, &str)]) -> Self {
        let table: Vec<(String, String)> = table
            .iter()
            .map(|(v, r)| ((*v).to_owned(), (*r).to_owned()))
            .collect();
        Self::start(move |_, bare| {
            table
                .iter()
                .find(|(v, _)| v == verb(bare))
                .map(|(_, r)| r.clone())
        })
    }

    /// Every datagram received so far, as sent (signatures included).
    pub fn received(&self) -> Vec<String> {
        self.received.lock().expect("the record").clone()
    }

    /// Waits until at least `n` datagrams have arrived (or `within` passes); how many did.
    pub fn wait_for(&self, n: usize, within: Duration) -> usize {
        let end = Instant::now() + within;
        loop {
            let got = self.received.lock().expect("the record").len();
            if got >= n || Instant::now() >= end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
