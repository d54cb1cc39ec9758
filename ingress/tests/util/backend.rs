//! A recording backend: a std-thread TCP server that keeps exactly the bytes it received and
//! answers each request as a script says.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the backend read it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The head, as text.
    pub head: String,
    /// The decoded body.
    pub body: Vec<u8>,
    /// Which connection (0, 1, … in accept order).
    pub conn: usize,
}

impl Seen {
    /// The value of a header (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// Every header name.
    pub fn names(&self) -> Vec<String> {
        self.head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_ascii_lowercase()))
            .collect()
    }
}

/// What to do with a request.
pub enum Action {
    /// Write these bytes and keep the connection.
    Reply(Vec<u8>),
    /// Write these bytes and close.
    ReplyClose(Vec<u8>),
    /// Close without answering.
    Close,
    /// Wait, then write.
    Delay(Duration, Vec<u8>),
    /// Write these bytes, then echo everything received until EOF (a tunnel).
    Echo(Vec<u8>),
    /// Write a `len`-byte body with Content-Length, in 64 KiB writes.
    Big(u64),
    /// Write these bytes, then hold the connection open, sending nothing, for 10 s.
    Stall(Vec<u8>),
    /// Write each piece in its own write, 50 ms apart, and keep the connection.
    Script(Vec<Vec<u8>>),
}

type Script = dyn Fn(&Seen) -> Action + Send + Sync;

/// A running recording backend.
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Every byte received, over all connections.
    pub raw: Arc<Mutex<Vec<u8>>>,
    /// Connections accepted.
    pub conns: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

/// `200 OK` with `body` and Content-Length.
pub fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Backend {
    /// Starts a backend answering every request with `ok("ok")`.
    pub fn ok() -> Self {
        Self::start(|_| Action::Reply(ok("ok")))
    }

    /// Starts a backend with a script; `idle_close` closes a connection idle that long.
    pub fn start(script: impl Fn(&Seen) -> Action + Send + Sync + 'static) -> Self {
        Self::start_with(None, script)
    }

    /// As [`Backend::start`], closing connections idle for `idle_close`.
    pub fn start_with(
        idle_close: Option<Duration>,
        script: impl Fn(&Seen) -> Action + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        {
            let (seen, raw, conns, stop, open) = (
                Arc::clone(&seen),
                Arc::clone(&raw),
                Arc::clone(&conns),
                Arc::clone(&stop),
                Arc::clone(&open),
            );
            listener.set_nonblocking(true).unwrap();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            let id = conns.fetch_add(1, Ordering::SeqCst);
                            open.lock().unwrap().push(s.try_clone().unwrap());
                            let (seen, raw, script) =
                                (Arc::clone(&seen), Arc::clone(&raw), Arc::clone(&script));
                            std::thread::spawn(move || {
                                let closer = s.try_clone().unwrap();
                                handle(s, id, &seen, &raw, &*script, idle_close);
                                let _ = closer.shutdown(Shutdown::Both);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        Self {
            addr,
            seen,
            raw,
            conns,
            stop,
            open,
        }
    }

    /// Requests seen so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The raw bytes received so far, as lossy text.
    pub fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().unwrap()).into_owned()
    }

    /// Stops listening and resets every open connection (a killed backend).
    pub fn kill(&self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

fn handle(
    mut s: TcpStream,
    id: usize,
    seen: &Mutex<Vec<Seen>>,
    raw: &Mutex<Vec<u8>>,
    script: &Script,
    idle_close: Option<Duration>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    let _ = s.set_read_timeout(idle_close.or(Some(Duration::from_secs(30))));
    loop {
        // Head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    raw.lock().unwrap().extend_from_slice(&tmp[..n]);
                    buf.extend_from_slice(&tmp[..n]);
                }
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut req = Seen {
            head,
            body: Vec::new(),
            conn: id,
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut fill = |buf: &mut Vec<u8>, s: &mut TcpStream| -> bool {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    raw.lock().unwrap().extend_from_slice(&tmp[..n]);
                    buf.extend_from_slice(&tmp[..n]);
                    true
                }
            }
        };
        let big_body = len > 1 << 20;
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&buf, b"\r\n") {
                        break i;
                    }
                    if !fill(&mut buf, &mut s) {
                        return;
                    }
                };
                let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .unwrap_or(0);
                buf.drain(..line_end + 2);
                while buf.len() < size + 2 {
                    if !fill(&mut buf, &mut s) {
                        return;
                    }
                }
                if size == 0 {
                    // Trailers are not expected from the proxy: just the final CRLF.
                    buf.drain(..2);
                    break;
                }
                req.body.extend_from_slice(&buf[..size]);
                buf.drain(..size + 2);
            }
        } else if big_body {
            // Count, do not keep: streaming tests send hundreds of MiB.
            let mut left = len;
            let take = left.min(buf.len());
            buf.drain(..take);
            left -= take;
            raw.lock().unwrap().clear();
            while left > 0 {
                match s.read(&mut tmp) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let n = n.min(left);
                        left -= n;
                    }
                }
            }
            req.body = format!("{len} bytes").into_bytes();
        } else {
            while buf.len() < len {
                if !fill(&mut buf, &mut s) {
                    return;
                }
            }
            req.body = buf[..len].to_vec();
            buf.drain(..len);
        }
        seen.lock().unwrap().push(req.clone());
        match script(&req) {
            Action::Reply(bytes) => {
                if s.write_all(&bytes).is_err() {
                    return;
                }
            }
            Action::ReplyClose(bytes) => {
                let _ = s.write_all(&bytes);
                return;
            }
            Action::Close => return,
            Action::Stall(bytes) => {
                let _ = s.write_all(&bytes);
                std::thread::sleep(Duration::from_secs(10));
                return;
            }
            Action::Script(pieces) => {
                for (i, piece) in pieces.iter().enumerate() {
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if s.write_all(piece).is_err() {
                        return;
                    }
                }
            }
            Action::Delay(d, bytes) => {
                std::thread::sleep(d);
                if s.write_all(&bytes).is_err() {
                    return;
                }
            }
            Action::Echo(bytes) => {
                if s.write_all(&bytes).is_err() {
                    return;
                }
                if !buf.is_empty() && s.write_all(&buf).is_err() {
                    return;
                }
                loop {
                    match s.read(&mut tmp) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&tmp[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            Action::Big(n) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let block = vec![b'x'; 64 * 1024];
                let mut left = n;
                while left > 0 {
                    let k = left.min(block.len() as u64) as usize;
                    if s.write_all(&block[..k]).is_err() {
                        return;
                    }
                    left -= k as u64;
                }
            }
        }
        let _ = s.set_read_timeout(idle_close.or(Some(Duration::from_secs(30))));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
