//! `skr8tr_serve`: a small static file server for `serve { static DIR }` workloads, thread per
//! core on monoio like the ingress.
//!
//! ```text
//! GET/HEAD path ─percent-decode─▶ reject `..`, NUL, backslash ─▶ DIR/path ─canonicalize─▶ inside DIR?
//!   ─▶ directory? index.html ─▶ 200 with Content-Type by extension, streamed in 64 KiB pieces
//! ```
//!
//! Owns path resolution (no traversal: `..` is refused and symlinks that lead out of DIR are
//! 404) and the tiny HTTP/1.1 subset it needs (keep-alive, no request bodies). Other methods
//! get 405; missing files 404. Shares the ingress's threads-and-runtimes plumbing
//! (`crate::runtime`), socket I/O (`crate::stream`) and header helpers (`crate::http`), and
//! nothing of the proxy.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use monoio::net::{TcpListener, TcpStream};

use crate::config::{ConfigError, parse_listen};
use crate::http::{MAX_HEADERS, has_token, name_is, reason};
use crate::runtime::{Shutdown, StartError, bind_all, run_runtime};
use crate::stream::{read_more, write_all};

/// `skr8tr_serve` flags.
#[derive(Debug, Parser)]
#[command(name = "skr8tr_serve", version, about = "skr8tr static file server")]
pub struct ServeArgs {
    /// The directory to serve.
    #[arg(long)]
    pub dir: PathBuf,
    /// The port (with --listen as the address, or on every IPv4 address).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// The listen address.
    #[arg(
        long,
        help = "Listen address: an IP (with --port), or PORT, IP:PORT, [IPv6]:PORT"
    )]
    pub listen: Option<String>,
    /// Cores to run on; default: all.
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A validated file server configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The served directory, canonical.
    pub root: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Cores.
    pub threads: usize,
    /// Use epoll even where io_uring works.
    pub force_epoll: bool,
}

/// Why the file server flags are refused.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The directory does not exist or is not a directory.
    #[error("cannot serve {0}: not a readable directory")]
    BadDir(PathBuf),
    /// The address.
    #[error(transparent)]
    Address(#[from] ConfigError),
    /// Neither --port nor a port in --listen.
    #[error("give --port or --listen with a port")]
    NoPort,
}

impl ServeArgs {
    /// Validates the flags.
    ///
    /// # Errors
    /// [`ServeError`].
    pub fn into_config(self) -> Result<ServeConfig, ServeError> {
        let root = self
            .dir
            .canonicalize()
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| ServeError::BadDir(self.dir.clone()))?;
        let listen = match (self.listen.as_deref(), self.port) {
            (Some(l), Some(port)) if l.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() => {
                SocketAddr::new(
                    l.trim_matches(['[', ']'])
                        .parse()
                        .map_err(|_| ServeError::NoPort)?,
                    port,
                )
            }
            (Some(l), _) => parse_listen(l)?,
            (None, Some(port)) => parse_listen(&port.to_string())?,
            (None, None) => return Err(ServeError::NoPort),
        };
        Ok(ServeConfig {
            root,
            listen,
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
                .max(1),
            force_epoll: std::env::var_os("SKR8TR_FORCE_EPOLL").is_some_and(|v| v == "1"),
        })
    }
}

/// A running file server.
#[derive(Debug)]
pub struct ServeHandle {
    local_addr: SocketAddr,
    shutdown: Arc<Shutdown>,
    threads: Vec<JoinHandle<()>>,
}

impl ServeHandle {
    /// The listening address.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for the cores (open connections are dropped).
    pub fn stop(self) {
        self.shutdown.fire();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts the file server.
///
/// # Errors
/// [`StartError::Bind`] or [`StartError::Thread`].
pub fn start(config: ServeConfig) -> Result<ServeHandle, StartError> {
    let (local_addr, listeners) = bind_all(config.listen, config.threads)?;
    let shutdown = Arc::new(Shutdown::default());
    let root: Arc<Path> = Arc::from(config.root.as_path());
    let mut threads = Vec::new();
    for (id, listener) in listeners.into_iter().enumerate() {
        let (shutdown, root) = (Arc::clone(&shutdown), Arc::clone(&root));
        let force = config.force_epoll;
        threads.push(
            std::thread::Builder::new()
                .name(format!("serve-core-{id}"))
                .spawn(move || {
                    let r = run_runtime(force, |driver| {
                        tracing::info!(
                            core = id,
                            driver = driver.as_str(),
                            "file server core started"
                        );
                        accept_loop(listener, shutdown, root)
                    });
                    if let Err(e) = r {
                        tracing::error!(core = id, error = %e, "cannot build the runtime");
                    }
                })
                .map_err(StartError::Thread)?,
        );
    }
    tracing::info!(listen = %local_addr, root = %config.root.display(), "file server started");
    Ok(ServeHandle {
        local_addr,
        shutdown,
        threads,
    })
}

async fn accept_loop(listener: std::net::TcpListener, shutdown: Arc<Shutdown>, root: Arc<Path>) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let root: Rc<Path> = Rc::from(&*root);
    loop {
        let accepted = monoio::select! {
            biased;
            () = shutdown.wait() => return,
            r = listener.accept() => r,
        };
        if let Ok((stream, _)) = accepted {
            let _ = stream.set_nodelay(true);
            monoio::spawn(serve_files(stream, Rc::clone(&root)));
        }
    }
}

/// What a request asks for.
struct FileRequest {
    head_len: usize,
    head_only: bool,
    keep_alive: bool,
    outcome: Result<PathBuf, u16>,
}

fn parse_file_request(buf: &[u8], root: &Path) -> Result<Option<FileRequest>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => return Ok(None),
        _ => return Err(()),
    };
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(());
    };
    let mut close = false;
    let mut keep = false;
    for h in req.headers.iter() {
        if name_is(h.name, "connection") {
            close |= has_token(h.value, "close");
            keep |= has_token(h.value, "keep-alive");
        } else if (name_is(h.name, "content-length") && h.value != b"0")
            || name_is(h.name, "transfer-encoding")
        {
            return Err(());
        }
    }
    let outcome = if method == "GET" || method == "HEAD" {
        resolve(root, path)
    } else {
        Err(405)
    };
    Ok(Some(FileRequest {
        head_len,
        head_only: method == "HEAD",
        keep_alive: if minor == 1 { !close } else { keep && !close },
        outcome,
    }))
}

/// Maps a request target to a file inside `root`, or the status to answer.
///
/// # Errors
/// 400 for an undecodable path, 404 for anything missing or outside `root`.
pub fn resolve(root: &Path, target: &str) -> Result<PathBuf, u16> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(path).ok_or(400u16)?;
    if !decoded.starts_with('/') || decoded.contains(['\0', '\\']) {
        return Err(400);
    }
    let mut full = root.to_path_buf();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(404),
            s => full.push(s),
        }
    }
    let mut canonical = full.canonicalize().map_err(|_| 404u16)?;
    if !canonical.starts_with(root) {
        return Err(404);
    }
    if canonical.is_dir() {
        canonical = canonical
            .join("index.html")
            .canonicalize()
            .map_err(|_| 404u16)?;
        if !canonical.starts_with(root) {
            return Err(404);
        }
    }
    if canonical.is_file() {
        Ok(canonical)
    } else {
        Err(404)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Content-Type for a file name.
#[must_use]
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "xml" => "application/xml",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        _ => "application/octet-stream",
    }
}

async fn serve_files(mut stream: TcpStream, root: Rc<Path>) {
    let mut rbuf = Vec::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let req = loop {
            match parse_file_request(&rbuf, &root) {
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(()) => {
                    out.clear();
                    crate::http::write_error(&mut out, 400, "Bad request.", true, false);
                    let _ = write_all(&mut stream, &mut out).await;
                    return;
                }
            }
            match monoio::time::timeout(Duration::from_secs(30), read_more(&mut stream, &mut rbuf))
                .await
            {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        };
        rbuf.drain(..req.head_len);
        out.clear();
        let ok = match req.outcome {
            Err(status) => {
                let text = if status == 405 {
                    "Method not allowed."
                } else {
                    "Not found."
                };
                crate::http::write_error(&mut out, status, text, !req.keep_alive, req.head_only);
                write_all(&mut stream, &mut out).await.is_ok()
            }
            Ok(path) => {
                send_file(&mut stream, &mut out, &path, req.head_only, req.keep_alive).await
            }
        };
        if !ok || !req.keep_alive {
            return;
        }
    }
}

async fn send_file(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    path: &Path,
    head_only: bool,
    keep: bool,
) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        crate::http::write_error(out, 404, "Not found.", !keep, head_only);
        return write_all(stream, out).await.is_ok();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    out.extend_from_slice(b"HTTP/1.1 200 ");
    out.extend_from_slice(reason(200).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(content_type(path).as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(len.to_string().as_bytes());
    if !keep {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if head_only {
        return write_all(stream, out).await.is_ok();
    }
    let mut left = len;
    loop {
        let start = out.len();
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(64 * 1024);
        out.resize(start + want, 0);
        let n = match file.read(&mut out[start..]) {
            Ok(n) => n,
            Err(_) => return false,
        };
        out.truncate(start + n);
        left = left.saturating_sub(n as u64);
        if write_all(stream, out).await.is_err() {
            return false;
        }
        if n == 0 || left == 0 {
            return left == 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("index.html"), "hi").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.css"), "x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("link")).unwrap();
        assert_eq!(resolve(&root, "/").unwrap(), root.join("index.html"));
        assert_eq!(
            resolve(&root, "/sub/a.css?v=1").unwrap(),
            root.join("sub/a.css")
        );
        assert_eq!(resolve(&root, "/sub/../index.html"), Err(404));
        assert_eq!(resolve(&root, "/%2e%2e/etc/passwd"), Err(404));
        assert_eq!(resolve(&root, "/link"), Err(404));
        assert_eq!(resolve(&root, "/missing"), Err(404));
        assert_eq!(resolve(&root, "/sub"), Err(404));
        assert_eq!(resolve(&root, "/a%00b"), Err(400));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }
}
