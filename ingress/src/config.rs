//! The ingress configuration: command-line flags ([`IngressArgs`], clap) and the validated
//! [`Config`] the library runs with.
//!
//! ```text
//! argv ─clap─▶ IngressArgs (strings) ─IngressArgs::into_config─▶ Config (addresses, routes, durations)
//! ```
//!
//! Owns address parsing for `--listen` (`80`, `0.0.0.0:80`, `[::]:8080`, `host:port`),
//! `--tower` (`HOST[:PORT]`, default port 7772) and `--backend SERVICE=HOST:PORT`. Does no
//! I/O beyond name resolution.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use skr8tr_proto::name::ServiceName;

use crate::route::{Route, RouteError};

/// The Tower's default UDP port (SPEC §1).
pub const DEFAULT_TOWER_PORT: u16 = 7772;

/// Why the flags do not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An address that does not parse or resolve.
    #[error("invalid address `{0}` (expected PORT, HOST:PORT, IPv4:PORT or [IPv6]:PORT)")]
    BadAddress(String),
    /// A `--backend` that is not `SERVICE=HOST:PORT`.
    #[error("invalid backend `{0}` (expected SERVICE=HOST:PORT)")]
    BadBackend(String),
    /// A route flag or the routes file.
    #[error("invalid route")]
    Route(#[from] RouteError),
    /// Nothing to route to.
    #[error(
        "no routes: give --route [HOST]/PREFIX:SERVICE, --routes-file, or --tower to serve the routes apps publish"
    )]
    NoRoutes,
    /// A `--trusted-proxy` network.
    #[error("invalid --trusted-proxy")]
    TrustedProxy(#[from] crate::client::CidrError),
    /// The certificate or key for TLS.
    #[error("invalid TLS configuration")]
    Tls(#[from] crate::tls::TlsError),
}

/// The ingress's timeouts (SPEC §5).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A client's whole request head, from its first byte (slowloris).
    pub request_head: Duration,
    /// A kept-alive client connection waiting for its next request.
    pub keepalive_idle: Duration,
    /// Connecting to an upstream.
    pub connect: Duration,
    /// An upstream connection whose peer acknowledges nothing for this long (data sent, or
    /// keepalive probes while waiting) is broken: its host crashed or was cut off. `None`
    /// leaves it to the kernel (about 15 minutes).
    pub upstream_link: Option<Duration>,
    /// An upstream's response head, after the request was sent.
    pub response_head: Duration,
    /// An idle pooled upstream connection (shorter than typical backends' keep-alive).
    pub upstream_idle: Duration,
    /// A body that makes no progress (no byte read or written) for this long, either way:
    /// the exchange is abandoned and both connections closed (a stalled upload or a client
    /// that stops reading cannot hold a connection forever).
    pub body_idle: Duration,
    /// The graceful drain on SIGTERM.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request_head: Duration::from_secs(10),
            keepalive_idle: Duration::from_secs(60),
            connect: Duration::from_secs(2),
            upstream_link: Some(Duration::from_secs(2)),
            response_head: Duration::from_secs(30),
            upstream_idle: Duration::from_secs(4),
            body_idle: Duration::from_secs(30),
            drain: Duration::from_secs(10),
        }
    }
}

/// A validated ingress configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The HTTP listener (every core binds it with `SO_REUSEPORT`).
    pub listen: SocketAddr,
    /// Cores (runtimes, listeners); at least 1.
    pub threads: usize,
    /// Routes from flags.
    pub routes: Vec<Route>,
    /// The routes file, re-read on reload.
    pub routes_file: Option<PathBuf>,
    /// Fixed backends (`--backend`), used alongside the Tower's.
    pub static_backends: Vec<(ServiceName, SocketAddr)>,
    /// The Tower to WATCH, if any.
    pub tower: Option<SocketAddr>,
    /// The mesh secret key file: WATCH/ACK are signed and UPDATEs verified with it.
    pub mesh_key: Option<PathBuf>,
    /// The WATCH lease asked for, in seconds.
    pub watch_lease_s: u32,
    /// The admin listener (`/metrics`, `/healthz`), if any.
    pub admin: Option<SocketAddr>,
    /// Most client connections open at once (over all cores).
    pub max_connections: usize,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Use the epoll driver even where io_uring works.
    pub force_epoll: bool,
    /// `X-Forwarded-Proto` value (`https` when the listener terminates TLS).
    pub proto: &'static str,
    /// Terminate TLS on the listener with this certificate and key (re-read on reload).
    pub tls: Option<crate::tls::TlsFiles>,
    /// Where the access log goes, if anywhere.
    pub access_log: Option<crate::access::Target>,
    /// Peers whose `X-Forwarded-For` is believed for the client's address.
    pub trusted_proxies: Vec<crate::client::Cidr>,
    /// The listener came from the service manager (socket activation): draining stops
    /// accepting but leaves the socket open for the next process.
    pub activated: bool,
}

impl Config {
    /// A configuration for tests and embedding: listen on `127.0.0.1:0`, one thread, no Tower,
    /// no admin listener, default timeouts.
    #[must_use]
    pub fn local(routes: Vec<Route>, static_backends: Vec<(ServiceName, SocketAddr)>) -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            threads: 1,
            routes,
            routes_file: None,
            static_backends,
            tower: None,
            mesh_key: None,
            watch_lease_s: 30,
            admin: None,
            max_connections: 10_000,
            timeouts: Timeouts::default(),
            force_epoll: std::env::var_os("SKR8TR_FORCE_EPOLL").is_some_and(|v| v == "1"),
            proto: "http",
            tls: None,
            access_log: None,
            trusted_proxies: Vec::new(),
            activated: false,
        }
    }

    /// Terminates TLS with `files` on the listener (and says `https` in `X-Forwarded-Proto`).
    pub fn enable_tls(&mut self, files: crate::tls::TlsFiles) {
        self.proto = "https";
        self.tls = Some(files);
    }

    /// The operator's routes: the flags, then the routes file.
    ///
    /// # Errors
    /// A bad routes file, duplicate prefixes, or https-only without TLS.
    pub fn operator_routes(&self) -> Result<Vec<Route>, RouteError> {
        crate::route::load_operator_routes(
            &self.routes,
            self.routes_file.as_deref(),
            self.tls.is_some(),
        )
    }
}

/// `skr8tr_ingress` flags.
#[derive(Debug, Parser)]
#[command(
    name = "skr8tr_ingress",
    version,
    about = "skr8tr edge HTTP/1.1 reverse proxy"
)]
pub struct IngressArgs {
    /// The listen address.
    #[arg(
        long,
        default_value = "80",
        help = "Listen address: PORT, IPv4:PORT, [IPv6]:PORT or HOST:PORT"
    )]
    pub listen: String,
    /// Cores to run on (one runtime and one SO_REUSEPORT listener each); default: all.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Route HOST/PREFIX:SERVICE or /PREFIX:SERVICE (repeatable): exact host, then `*.` wildcard, then
    /// host-less; longest prefix wins.
    #[arg(long = "route")]
    pub routes: Vec<String>,
    /// Routes file (`route [HOST]/PREFIX { service S; strip-prefix; … }`, docs/ROUTES.md),
    /// re-read on SIGHUP.
    #[arg(long)]
    pub routes_file: Option<PathBuf>,
    /// Fixed backend SERVICE=HOST:PORT (repeatable), alongside the Tower's.
    #[arg(long = "backend")]
    pub backends: Vec<String>,
    /// The Tower, watched for backends.
    #[arg(
        long,
        help = "The Tower, HOST[:PORT] (default port 7772), watched for backends"
    )]
    pub tower: Option<String>,
    /// Mesh secret key file: signs WATCH/ACK, verifies UPDATE pushes.
    #[arg(long)]
    pub mesh_key: Option<PathBuf>,
    /// WATCH lease in seconds (renewed at half).
    #[arg(long, default_value_t = 30)]
    pub watch_lease_s: u32,
    /// Admin listener for /metrics and /healthz; `off` disables it.
    #[arg(long, default_value = "127.0.0.1:9180")]
    pub admin: String,
    /// Most client connections open at once (the seed's --workers is accepted for it).
    #[arg(long, alias = "workers", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Request head timeout in milliseconds (slowloris).
    #[arg(long, default_value_t = 10_000)]
    pub request_head_timeout_ms: u64,
    /// Keep-alive idle timeout of client connections in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub keepalive_timeout_ms: u64,
    /// Upstream connect timeout in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub connect_timeout_ms: u64,
    /// Upstream response head timeout in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub response_timeout_ms: u64,
    /// An upstream connection whose host acknowledges nothing for this many milliseconds
    /// (crashed, cut off) fails, and an idempotent request on it is retried on another host;
    /// 0 leaves it to the kernel (minutes).
    #[arg(long, default_value_t = 2_000)]
    pub upstream_link_timeout_ms: u64,
    /// Idle timeout of pooled upstream connections in milliseconds.
    #[arg(long, default_value_t = 4_000)]
    pub upstream_idle_timeout_ms: u64,
    /// A request or response body that makes no progress for this long (ms) is abandoned.
    #[arg(long, default_value_t = 30_000)]
    pub body_idle_timeout_ms: u64,
    /// Graceful drain limit on SIGTERM/SIGINT, in seconds.
    #[arg(long, default_value_t = 10)]
    pub drain_timeout_s: u64,
    /// Terminate TLS on the listener: PEM certificate chain (leaf first); re-read on SIGHUP.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// Access log: one line per response, `-` for standard output; off by default. A file is
    /// reopened on SIGHUP (after log rotation).
    #[arg(long, value_name = "PATH|-")]
    pub access_log: Option<String>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1); re-read on SIGHUP.
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// A proxy in front of the ingress, ADDR/BITS (repeatable): only from these peers is
    /// X-Forwarded-For believed for the client's address (rate limits, X-Real-IP).
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
}

impl IngressArgs {
    /// Validates the flags.
    ///
    /// # Errors
    /// The first bad flag, as a [`ConfigError`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let routes = self
            .routes
            .iter()
            .map(|r| Route::parse_flag(r))
            .collect::<Result<Vec<_>, _>>()?;
        // With a Tower, the apps' own routes may be all there is.
        if routes.is_empty() && self.routes_file.is_none() && self.tower.is_none() {
            return Err(ConfigError::NoRoutes);
        }
        let static_backends = self
            .backends
            .iter()
            .map(|b| parse_backend(b))
            .collect::<Result<Vec<_>, _>>()?;
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1);
        let admin = match self.admin.as_str() {
            "off" | "none" | "" => None,
            a => Some(parse_addr(a, IpAddr::V4(Ipv4Addr::LOCALHOST), None)?),
        };
        let mut config = Config {
            listen: parse_listen(&self.listen)?,
            threads,
            routes,
            routes_file: self.routes_file,
            static_backends,
            tower: self.tower.as_deref().map(parse_tower).transpose()?,
            mesh_key: self.mesh_key,
            watch_lease_s: self.watch_lease_s.max(2),
            admin,
            max_connections: self.max_connections.max(1),
            timeouts: Timeouts {
                request_head: Duration::from_millis(self.request_head_timeout_ms),
                keepalive_idle: Duration::from_millis(self.keepalive_timeout_ms),
                connect: Duration::from_millis(self.connect_timeout_ms),
                upstream_link: (self.upstream_link_timeout_ms > 0)
                    .then(|| Duration::from_millis(self.upstream_link_timeout_ms)),
                response_head: Duration::from_millis(self.response_timeout_ms),
                upstream_idle: Duration::from_millis(self.upstream_idle_timeout_ms),
                body_idle: Duration::from_millis(self.body_idle_timeout_ms),
                drain: Duration::from_secs(self.drain_timeout_s),
            },
            force_epoll: std::env::var_os("SKR8TR_FORCE_EPOLL").is_some_and(|v| v == "1"),
            proto: "http",
            tls: None,
            access_log: self.access_log.as_deref().map(crate::access::Target::parse),
            trusted_proxies: self
                .trusted_proxies
                .iter()
                .map(|c| crate::client::Cidr::parse(c))
                .collect::<Result<_, _>>()?,
            activated: false,
        };
        if let (Some(cert), Some(key)) = (self.tls_cert, self.tls_key) {
            let files = crate::tls::TlsFiles { cert, key };
            crate::tls::load(&files)?;
            config.enable_tls(files);
        }
        config.operator_routes()?;
        Ok(config)
    }
}

/// `--listen`: a bare port means every IPv4 address.
///
/// # Errors
/// [`ConfigError::BadAddress`].
pub fn parse_listen(s: &str) -> Result<SocketAddr, ConfigError> {
    parse_addr(s, IpAddr::V4(Ipv4Addr::UNSPECIFIED), None)
}

/// `--tower`: `HOST[:PORT]`, default port 7772.
///
/// # Errors
/// [`ConfigError::BadAddress`].
pub fn parse_tower(s: &str) -> Result<SocketAddr, ConfigError> {
    parse_addr(s, IpAddr::V4(Ipv4Addr::LOCALHOST), Some(DEFAULT_TOWER_PORT))
}

/// `SERVICE=HOST:PORT`.
///
/// # Errors
/// [`ConfigError::BadBackend`].
pub fn parse_backend(s: &str) -> Result<(ServiceName, SocketAddr), ConfigError> {
    let bad = || ConfigError::BadBackend(s.to_owned());
    let (name, addr) = s.split_once('=').ok_or_else(bad)?;
    let name = ServiceName::new(name.to_owned()).map_err(|_| bad())?;
    let addr = parse_addr(addr, IpAddr::V4(Ipv4Addr::LOCALHOST), None).map_err(|_| bad())?;
    Ok((name, addr))
}

/// An address in any of the accepted forms. A bare number is a port on `default_ip`; a bare
/// host (no port) takes `default_port` when there is one.
fn parse_addr(
    s: &str,
    default_ip: IpAddr,
    default_port: Option<u16>,
) -> Result<SocketAddr, ConfigError> {
    let bad = || ConfigError::BadAddress(s.to_owned());
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(default_ip, port));
    }
    if let Some(port) = s.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
        return Ok(SocketAddr::new(default_ip, port));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = default_port {
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        if !s.contains(':') {
            return (s, port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(bad);
        }
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("80").unwrap(), "0.0.0.0:80".parse().unwrap());
        assert_eq!(
            parse_listen(":8080").unwrap(),
            "0.0.0.0:8080".parse().unwrap()
        );
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::]:8080").unwrap(),
            "[::]:8080".parse().unwrap()
        );
        assert_eq!(parse_listen("localhost:81").unwrap().port(), 81);
        assert!(parse_listen("nope").is_err());
        assert!(parse_listen("1.2.3.4:99999").is_err());
    }

    #[test]
    fn tower_forms() {
        assert_eq!(
            parse_tower("127.0.0.1").unwrap(),
            "127.0.0.1:7772".parse().unwrap()
        );
        assert_eq!(
            parse_tower("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert_eq!(parse_tower("::1").unwrap(), "[::1]:7772".parse().unwrap());
        assert_eq!(parse_tower("[::1]").unwrap(), "[::1]:7772".parse().unwrap());
        assert_eq!(parse_tower("localhost").unwrap().port(), 7772);
    }

    #[test]
    fn backends() {
        let (name, addr) = parse_backend("api=127.0.0.1:8080").unwrap();
        assert_eq!(name.as_str(), "api");
        assert_eq!(addr.port(), 8080);
        assert!(parse_backend("api").is_err());
        assert!(parse_backend("b a=1.2.3.4:5").is_err());
    }

    #[test]
    fn seed_command_line() {
        let args = IngressArgs::try_parse_from([
            "skr8tr_ingress",
            "--listen",
            "80",
            "--tower",
            "127.0.0.1",
            "--route",
            "/api:api-service",
            "--route",
            "/:frontend",
            "--workers",
            "64",
        ])
        .unwrap();
        let config = args.into_config().unwrap();
        assert_eq!(config.listen.port(), 80);
        assert_eq!(config.tower, Some("127.0.0.1:7772".parse().unwrap()));
        assert_eq!(config.routes.len(), 2);
        assert_eq!(config.max_connections, 64);
    }
}
