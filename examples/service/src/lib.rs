//! The example service that `skr8tr dev`, the tests and the load tests deploy: a small
//! HTTP/1.1 server (thread per connection, keep-alive) that answers with its replica id.
//!
//! Endpoints: `/healthz` (200, or the status in `HEALTH_STATUS`), `/cpu?ms=N` (burns N ms of
//! CPU, for autoscale), `/sleep?ms=N`, `/echo` (returns the request body), anything else:
//! `hello from APP replica ID`. Listens on `PORT` (or `--port N`) on `BIND` (default 127.0.0.1).
//! It is a test fixture, not part of the product: it trusts nothing but keeps no state either.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What the service answers with.
#[derive(Debug, Clone)]
pub struct Config {
    pub app: String,
    pub replica: String,
    pub health_status: u16,
}

impl Config {
    /// From the environment a node gives a replica (`SKR8TR_APP`, `SKR8TR_REPLICA`) and
    /// `HEALTH_STATUS` (tests make a replica unhealthy with it).
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            app: std::env::var("SKR8TR_APP").unwrap_or_else(|_| "example".into()),
            replica: std::env::var("SKR8TR_REPLICA").unwrap_or_else(|_| "local".into()),
            health_status: std::env::var("HEALTH_STATUS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(200),
        }
    }
}

/// Parses `--port N` (or `PORT`) and serves forever: what both the `skr8tr-example-service`
/// binary and `skr8tr example-service` run.
///
/// # Errors
/// Bad arguments, or the port cannot be bound.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> io::Result<()> {
    let mut port: Option<String> = std::env::var("PORT").ok();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next(),
            "--help" | "-h" => {
                println!("usage: skr8tr-example-service [--port N]   (or PORT=N)");
                return Ok(());
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown argument {other:?}"),
                ));
            }
        }
    }
    let port: u16 = port
        .as_deref()
        .unwrap_or("8000")
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("bad port: {e}")))?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1".into());
    let listener = TcpListener::bind((bind.as_str(), port))?;
    serve_forever(listener, Config::from_env())
}

/// Accepts connections on `listener` forever, a thread each.
///
/// # Errors
/// Only the listener's own address query.
pub fn serve_forever(listener: TcpListener, config: Config) -> io::Result<()> {
    println!(
        "example service {} replica {} listening on {}",
        config.app,
        config.replica,
        listener.local_addr()?
    );
    let config: &'static Config = Box::leak(Box::new(config));
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                std::thread::spawn(move || {
                    let _ = serve(stream, config);
                });
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    Ok(())
}

fn serve(stream: TcpStream, config: &Config) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut head = Vec::new();
        loop {
            let n = reader.read_until(b'\n', &mut head)?;
            if n == 0 {
                return Ok(());
            }
            if head.ends_with(b"\r\n\r\n") || head == b"\r\n" {
                break;
            }
            if head.len() > MAX_HEAD {
                return respond(&mut writer, 431, "head too large\n", false);
            }
        }
        if head == b"\r\n" {
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(_)) = req.parse(&head) else {
            return respond(&mut writer, 400, "bad request\n", false);
        };
        let path = req.path.unwrap_or("/").to_string();
        let head_only = req.method == Some("HEAD");
        let mut keep_alive = req.version == Some(1);
        let mut content_length = 0usize;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            } else if h.name.eq_ignore_ascii_case("content-length") {
                content_length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
            }
        }
        if content_length > MAX_BODY {
            return respond(&mut writer, 413, "body too large\n", false);
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        let (route, query) = path.split_once('?').unwrap_or((path.as_str(), ""));
        let ms = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("ms="))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            .min(60_000);
        let (status, text) = match route {
            "/healthz" => (config.health_status, "ok\n".to_string()),
            "/cpu" => {
                let until = Instant::now() + Duration::from_millis(ms);
                let mut x: u64 = 1;
                while Instant::now() < until {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                }
                (200, format!("burned {ms} ms ({x})\n"))
            }
            "/sleep" => {
                std::thread::sleep(Duration::from_millis(ms));
                (200, format!("slept {ms} ms\n"))
            }
            "/echo" => (200, String::from_utf8_lossy(&body).into_owned()),
            _ => (
                200,
                format!("hello from {} replica {}\n", config.app, config.replica),
            ),
        };
        respond_to(&mut writer, status, &text, keep_alive, head_only)?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn respond(w: &mut TcpStream, status: u16, body: &str, keep_alive: bool) -> io::Result<()> {
    respond_to(w, status, body, keep_alive, false)
}

/// Writes a whole response; for HEAD the length is announced but the body left out.
fn respond_to(
    w: &mut TcpStream,
    status: u16,
    body: &str,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let conn = if keep_alive { "keep-alive" } else { "close" };
    let payload = if head_only { "" } else { body };
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n{payload}",
        body.len()
    );
    w.write_all(msg.as_bytes())?;
    w.flush()
}
