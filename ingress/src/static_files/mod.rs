//! `skr8tr_serve`: the static file server for `serve { static DIR }` workloads, thread per
//! core on monoio like the ingress.
//!
//! ```text
//! GET/HEAD target ─resolve─▶ file inside DIR │ missing ─spa?─▶ DIR/index.html │ refused ─▶ 400/404
//!   ─Accept-Encoding─▶ the .br/.gz sibling, if any ─metadata─▶ respond::decide
//!   ─▶ 200 │ 206 one range │ 304 (If-None-Match, If-Modified-Since) │ 416 ─▶ head, then the bytes
//! ```
//!
//! Owns the connection loop and the tiny HTTP/1.1 subset it needs (keep-alive, no request
//! bodies; other methods get 405). Path resolution and precompressed variants are in
//! [`resolve`], the conditional and range decisions and the response head in [`respond`],
//! both pure. Shares the ingress's threads-and-runtimes plumbing (`crate::runtime`), socket
//! I/O (`crate::stream`) and header helpers (`crate::http`), and nothing of the proxy.

pub mod resolve;
pub mod respond;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use monoio::net::{TcpListener, TcpStream};

use crate::config::{ConfigError, parse_listen};
use crate::http::{MAX_HEADERS, has_token, name_is};

use crate::runtime::{Shutdown, StartError, bind_all, run_runtime};
use crate::stream::{read_more, write_all};
use resolve::{Coding, Resolved, accepts, content_type, siblings};
use respond::{Conditions, HeadFields, Representation, decide, write_head};

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
    /// Answer a path that names no file with the root's index.html (a single-page app).
    #[arg(long)]
    pub spa: bool,
    /// Cache-Control max-age in seconds (public); without it, no-cache (revalidate by ETag).
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<u64>,
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
    /// `--spa`.
    pub spa: bool,
    /// `--max-age`.
    pub max_age: Option<u64>,
}

impl ServeConfig {
    /// `root` on `listen` with one core and the defaults (no spa, no-cache).
    #[must_use]
    pub fn new(root: PathBuf, listen: SocketAddr) -> Self {
        Self {
            root,
            listen,
            threads: 1,
            force_epoll: false,
            spa: false,
            max_age: None,
        }
    }

    fn site(&self) -> Site {
        Site {
            root: Rc::from(self.root.as_path()),
            spa: self.spa,
            cache_control: self.max_age.map_or_else(
                || "no-cache".to_owned(),
                |secs| format!("public, max-age={secs}"),
            ),
        }
    }
}

/// What a core serves, as its connections read it.
#[derive(Debug, Clone)]
struct Site {
    root: Rc<Path>,
    spa: bool,
    cache_control: String,
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
            spa: self.spa,
            max_age: self.max_age,
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
    let mut threads = Vec::new();
    for (id, listener) in listeners.into_iter().enumerate() {
        let (shutdown, core_config) = (Arc::clone(&shutdown), config.clone());
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
                        accept_loop(listener, shutdown, core_config.site())
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

async fn accept_loop(listener: std::net::TcpListener, shutdown: Arc<Shutdown>, site: Site) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    let site = Rc::new(site);
    loop {
        let accepted = monoio::select! {
            biased;
            () = shutdown.wait() => return,
            r = listener.accept() => r,
        };
        if let Ok((stream, _)) = accepted {
            let _ = stream.set_nodelay(true);
            monoio::spawn(serve_files(stream, Rc::clone(&site)));
        }
    }
}

/// What a request asks for.
struct FileRequest {
    head_len: usize,
    head_only: bool,
    keep_alive: bool,
    /// The target, for GET and HEAD; `None` for another method (405).
    target: Option<String>,
    conditions: Conditions,
    accept_encoding: Option<String>,
}

fn parse_file_request(buf: &[u8]) -> Result<Option<FileRequest>, ()> {
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
    let mut conditions = Conditions::default();
    let mut accept_encoding = None;
    for h in req.headers.iter() {
        let text = || String::from_utf8_lossy(h.value).into_owned();
        if name_is(h.name, "connection") {
            close |= has_token(h.value, "close");
            keep |= has_token(h.value, "keep-alive");
        } else if (name_is(h.name, "content-length") && h.value != b"0")
            || name_is(h.name, "transfer-encoding")
        {
            return Err(());
        } else if name_is(h.name, "if-none-match") {
            conditions.if_none_match = Some(text());
        } else if name_is(h.name, "if-modified-since") {
            conditions.if_modified_since = Some(text());
        } else if name_is(h.name, "range") {
            conditions.range = Some(text());
        } else if name_is(h.name, "if-range") {
            conditions.if_range = Some(text());
        } else if name_is(h.name, "accept-encoding") {
            accept_encoding = Some(text());
        }
    }
    Ok(Some(FileRequest {
        head_len,
        head_only: method == "HEAD",
        keep_alive: if minor == 1 { !close } else { keep && !close },
        target: (method == "GET" || method == "HEAD").then(|| path.to_owned()),
        conditions,
        accept_encoding,
    }))
}

/// The file to send for `target`, the Cache-Control to send it with, or the status to answer.
fn choose_file(site: &Site, target: &str) -> Result<(PathBuf, bool), u16> {
    match resolve::resolve(&site.root, target) {
        Resolved::File(path) => Ok((path, false)),
        Resolved::Refused(status) => Err(status),
        Resolved::Missing if site.spa => match resolve::resolve(&site.root, "/") {
            Resolved::File(index) => Ok((index, true)),
            _ => Err(404),
        },
        Resolved::Missing => Err(404),
    }
}

async fn serve_files(mut stream: TcpStream, site: Rc<Site>) {
    let mut rbuf = Vec::with_capacity(8 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let req = loop {
            match parse_file_request(&rbuf) {
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
        let close = !req.keep_alive;
        let chosen = match &req.target {
            None => Err(405),
            Some(target) => choose_file(&site, target),
        };
        let ok = match chosen {
            Err(status) => {
                let text = match status {
                    405 => "Method not allowed.",
                    400 => "Bad request.",
                    _ => "Not found.",
                };
                crate::http::write_error(&mut out, status, text, close, req.head_only);
                write_all(&mut stream, &mut out).await.is_ok()
            }
            Ok((path, fallback)) => {
                let cache = if fallback {
                    "no-cache"
                } else {
                    site.cache_control.as_str()
                };
                send_file(&mut stream, &mut out, &site, &req, &path, cache).await
            }
        };
        if !ok || close {
            return;
        }
    }
}

/// The representation of `path` to send: its precompressed sibling when the client accepts
/// one, else the file itself; with whether variants exist (`Vary`). A client that accepts no
/// coding costs no lookup: what it gets, the identity, is right for everyone, so it needs no
/// `Vary` (as nginx's `gzip_static`).
fn pick_variant(
    site: &Site,
    path: &Path,
    accept_encoding: Option<&str>,
) -> (PathBuf, Option<Coding>, bool) {
    let wants_any = accept_encoding.is_some_and(|a| Coding::ALL.iter().any(|&c| accepts(a, c)));
    if !wants_any {
        return (path.to_path_buf(), None, false);
    }
    let variants = siblings(&site.root, path);
    let varies = !variants.is_empty();
    let chosen = accept_encoding.and_then(|accept| {
        variants
            .into_iter()
            .find(|(coding, _)| accepts(accept, *coding))
    });
    match chosen {
        Some((coding, sibling)) => (sibling, Some(coding), varies),
        None => (path.to_path_buf(), None, varies),
    }
}

async fn send_file(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    site: &Site,
    req: &FileRequest,
    path: &Path,
    cache_control: &str,
) -> bool {
    let close = !req.keep_alive;
    let (file_path, coding, varies) = pick_variant(site, path, req.accept_encoding.as_deref());
    let opened = std::fs::File::open(&file_path).and_then(|f| f.metadata().map(|m| (f, m)));
    let Ok((file, meta)) = opened else {
        crate::http::write_error(out, 404, "Not found.", close, req.head_only);
        return write_all(stream, out).await.is_ok();
    };
    let rep = Representation {
        len: meta.len(),
        modified: meta.modified().unwrap_or(std::time::UNIX_EPOCH),
        inode: meta.ino(),
        coding,
    };
    let reply = decide(&req.conditions, &rep);
    let fields = HeadFields {
        // The type of what was asked for, not of its `.gz` sibling.
        content_type: content_type(path),
        cache_control,
        varies,
        close,
    };
    write_head(out, &reply, &rep, &fields);
    let Some((mut offset, mut left)) = reply.body.filter(|_| !req.head_only) else {
        return write_all(stream, out).await.is_ok();
    };
    // The head goes out with the first piece of the body.
    while left > 0 {
        let start = out.len();
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(CHUNK);
        out.resize(start + want, 0);
        let n = match file.read_at(&mut out[start..], offset) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        out.truncate(start + n);
        offset += n as u64;
        left -= n as u64;
        if write_all(stream, out).await.is_err() {
            return false;
        }
    }
    true
}

/// The most of a file read and written at once.
const CHUNK: usize = 256 * 1024;
