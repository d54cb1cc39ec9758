//! Raw-socket clients: write exact bytes, read responses by their framing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response as the client read it.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    /// A header value (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection with its read buffer (plain TCP, or TLS: see `util::tls`).
pub struct Conn<S = TcpStream> {
    pub s: S,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to the ingress on `port`.
    pub fn open(port: u16) -> Self {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self::over(s)
    }

    /// Whether the server closed the connection (EOF within the read timeout).
    pub fn is_closed(&mut self) -> bool {
        self.s
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let mut tmp = [0u8; 1024];
        loop {
            match self.s.read(&mut tmp) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut;
                }
            }
        }
    }
}

impl<S: Read + Write> Conn<S> {
    /// A client over an established stream.
    pub fn over(s: S) -> Self {
        Self { s, buf: Vec::new() }
    }

    /// Writes bytes.
    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.s.write_all(bytes).unwrap();
        self
    }

    fn fill(&mut self) -> bool {
        let mut tmp = [0u8; 65536];
        match self.s.read(&mut tmp) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
        }
    }

    /// Reads one response (to a HEAD request when `head`). Panics on EOF before a head.
    pub fn read(&mut self, head_req: bool) -> Resp {
        self.try_read(head_req).expect("a response")
    }

    /// Reads one response, `None` at EOF before a complete head.
    pub fn try_read(&mut self, head_req: bool) -> Option<Resp> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let mut resp = Resp {
            status,
            head,
            body: Vec::new(),
        };
        if head_req || (100..200).contains(&status) || status == 204 || status == 304 {
            return Some(resp);
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    if !self.fill() {
                        return Some(resp);
                    }
                };
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&self.buf[..line]).trim(), 16)
                        .unwrap();
                self.buf.drain(..line + 2);
                while self.buf.len() < size + 2 {
                    if !self.fill() {
                        return Some(resp);
                    }
                }
                resp.body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    return Some(resp);
                }
            }
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                if !self.fill() {
                    break;
                }
            }
            let take = len.min(self.buf.len());
            resp.body = self.buf.drain(..take).collect();
            return Some(resp);
        }
        while self.fill() {}
        resp.body = std::mem::take(&mut self.buf);
        Some(resp)
    }
}

/// Sends `raw` on a new connection and reads one response.
pub fn roundtrip(port: u16, raw: &[u8]) -> Resp {
    let mut c = Conn::open(port);
    c.send(raw);
    c.read(raw.starts_with(b"HEAD "))
}

/// `GET path` with Host, on a new connection.
pub fn get(port: u16, path: &str) -> Resp {
    roundtrip(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes(),
    )
}
