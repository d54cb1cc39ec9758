//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`),
//! for tests of pages the daemons serve: a few JSON calls over HTTP to a `chromedriver` this
//! module starts, no client library.
//!
//! Without Chromium the tests that need it say they skipped, unless `SKR8TR_REQUIRE_BROWSER` is
//! set (as `.ci/run` sets it, after installing both packages), when they fail.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser session; dropping it ends the session and the driver.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

/// Whether a browser test can run here; `None` (after saying why) when it should skip.
pub fn available(test: &str) -> Option<()> {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return Some(());
    }
    let why = format!(
        "{CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)"
    );
    assert!(
        std::env::var_os("SKR8TR_REQUIRE_BROWSER").is_none(),
        "{test}: {why}"
    );
    eprintln!("skipped {test}: {why}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// One HTTP/1.1 request to the driver; the JSON body of the answer.
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // The driver keeps the connection open: read the head, then Content-Length bytes.
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "{method} {path}: the driver closed without an answer"
        );
        out.extend_from_slice(&buf[..n]);
        if let Some(at) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..at]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (at + 4, length);
        }
    };
    while out.len() < head_end + length {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{method} {path}: the answer was cut short");
        out.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&out[head_end..head_end + length]);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` × `height` CSS pixels.
    pub fn start(width: u32, height: u32) -> Self {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        // The flags a closed network needs (no background fetches at start), as root.
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            }}
        });
        let v = call(addr, "POST", "/session", Some(&caps));
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Self {
            driver,
            addr,
            session,
            _profile: profile,
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let v = call(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        );
        if v["value"]["error"].is_string() {
            panic!("{method} {path}: {v}");
        }
        v["value"].clone()
    }

    /// Loads `url`.
    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; its return value.
    pub fn eval(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    /// The text of the element with id `id`, as the user sees it.
    pub fn text(&self, id: &str) -> String {
        self.eval(&format!(
            "const e = document.getElementById({id:?}); return e ? e.innerText : null;"
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Polls `text(id)` until `ok` holds, or panics after `within` with what it last saw.
    pub fn wait_text(&self, id: &str, within: Duration, what: &str, ok: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text(id);
            if ok(&text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; #{id} shows:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        let v = self.session_call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Best effort: end the session (closing Chromium), then stop the driver.
        if let Ok(mut s) = TcpStream::connect(self.addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session, self.addr
            );
            let _ = s.read(&mut [0u8; 4096]);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
