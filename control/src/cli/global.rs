//! The options every daemon-facing command shares (`--conductor`, `--tower`, `--timeout-ms`,
//! `--key`, `--json`), and what they resolve to: daemon addresses and the signing key.
//!
//! ```text
//! GlobalArgs (flags, env, defaults) ──resolve on use──▶ SocketAddr / Option<SigningKey>
//! ```
//! Nothing is resolved or read at parse time: `skr8tr check` must work with a broken
//! `SKR8TR_CONDUCTOR` and without a key, and a read-only command never touches the key file.
//! The key is `--key FILE`, else `~/.skr8tr/signing.sec` when that file exists, else none
//! (requests go unsigned, and a daemon with keys configured answers `ERR|UNAUTHORIZED`).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use skr8tr_proto::auth::SigningKey;

/// The Conductor's command port.
pub const CONDUCTOR_PORT: u16 = 7771;
/// The Tower's port.
pub const TOWER_PORT: u16 = 7772;
/// The host of a `--conductor`/`--tower` that gives only a port.
const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Where `skr8tr keygen` puts the operator's secret key, under `$HOME`.
const DEFAULT_KEY: &str = ".skr8tr/signing.sec";

/// Options shared by every command (`global = true`: they go before or after the command).
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The Conductor: name, IPv4 or IPv6 address, optional `:PORT` (IPv6 with a port as
    /// `[::1]:7771`).
    #[arg(
        long,
        global = true,
        env = "SKR8TR_CONDUCTOR",
        value_name = "HOST[:PORT]",
        default_value = "127.0.0.1:7771"
    )]
    pub conductor: String,
    /// The Tower (service registry), as for --conductor.
    #[arg(
        long,
        global = true,
        env = "SKR8TR_TOWER",
        value_name = "HOST[:PORT]",
        default_value = "127.0.0.1:7772"
    )]
    pub tower: String,
    /// How long to wait for a daemon's reply, retries included.
    #[arg(
        long,
        global = true,
        value_name = "MS",
        default_value_t = 5000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000)
    )]
    pub timeout_ms: u64,
    /// The operator's secret key for signed commands [default: ~/.skr8tr/signing.sec when it
    /// exists; else commands go unsigned].
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Print one JSON object per command instead of tables (errors still go to stderr too).
    #[arg(long, global = true)]
    pub json: bool,
}

impl GlobalArgs {
    /// The Conductor's address (resolving a name).
    ///
    /// # Errors
    /// The `--conductor` value is not an address or does not resolve.
    pub fn conductor_addr(&self) -> anyhow::Result<SocketAddr> {
        resolve(&self.conductor, CONDUCTOR_PORT).context("--conductor")
    }

    /// The Tower's address (resolving a name).
    ///
    /// # Errors
    /// The `--tower` value is not an address or does not resolve.
    pub fn tower_addr(&self) -> anyhow::Result<SocketAddr> {
        resolve(&self.tower, TOWER_PORT).context("--tower")
    }

    #[must_use]
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The file the signing key comes from, if any (see the module doc).
    #[must_use]
    pub fn key_path(&self) -> Option<PathBuf> {
        choose_key(self.key.as_deref(), std::env::var_os("HOME"), |p: &Path| {
            p.is_file()
        })
    }

    /// Loads the signing key, if there is one to load.
    ///
    /// # Errors
    /// The key file exists (or was named with `--key`) but cannot be used: unreadable, wrong
    /// size, readable by others.
    pub fn signing_key(&self) -> anyhow::Result<Option<SigningKey>> {
        self.key_path()
            .map(|path| {
                SigningKey::load(&path)
                    .with_context(|| format!("cannot use the signing key {}", path.display()))
            })
            .transpose()
    }
}

/// `host[:port]` with the given default port; a bare port means localhost.
///
/// # Errors
/// Not an address, or a name that does not resolve.
pub fn resolve(input: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    Ok(skr8tr_daemon::parse_host_port(
        input,
        DEFAULT_HOST,
        default_port,
    )?)
}

/// `explicit` if given; else `$HOME/.skr8tr/signing.sec` if `exists` says so; else none.
fn choose_key(
    explicit: Option<&Path>,
    home: Option<OsString>,
    exists: impl Fn(&Path) -> bool,
) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let home = home.filter(|h| !h.is_empty())?;
    let path = PathBuf::from(home).join(DEFAULT_KEY);
    exists(&path).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        global: GlobalArgs,
    }

    fn parse(args: &[&str]) -> GlobalArgs {
        Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied()))
            .unwrap()
            .global
    }

    #[test]
    fn defaults_point_at_localhost_with_the_standard_ports() {
        let g = parse(&[]);
        // The variables would override the defaults; only check what the flags decide then.
        if std::env::var_os("SKR8TR_CONDUCTOR").is_none() {
            assert_eq!(
                g.conductor_addr().unwrap(),
                "127.0.0.1:7771".parse().unwrap()
            );
        }
        if std::env::var_os("SKR8TR_TOWER").is_none() {
            assert_eq!(g.tower_addr().unwrap(), "127.0.0.1:7772".parse().unwrap());
        }
        assert_eq!(g.timeout(), Duration::from_millis(5000));
        assert!(!g.json);
        assert_eq!(g.key, None);
    }

    #[test]
    fn hosts_take_names_ipv4_ipv6_and_optional_ports() {
        let g = parse(&["--conductor", "10.0.0.5", "--tower", "[fd00::5]:9000"]);
        assert_eq!(
            g.conductor_addr().unwrap(),
            "10.0.0.5:7771".parse().unwrap()
        );
        assert_eq!(g.tower_addr().unwrap(), "[fd00::5]:9000".parse().unwrap());
        let g = parse(&["--conductor", "::1", "--tower", "localhost:7000"]);
        assert_eq!(g.conductor_addr().unwrap(), "[::1]:7771".parse().unwrap());
        assert_eq!(g.tower_addr().unwrap().port(), 7000);
        assert!(g.tower_addr().unwrap().ip().is_loopback());
        let g = parse(&["--conductor", "9999"]);
        assert_eq!(
            g.conductor_addr().unwrap(),
            "127.0.0.1:9999".parse().unwrap()
        );
        let g = parse(&["--conductor", "10.0.0.5:notaport"]);
        let err = format!("{:#}", g.conductor_addr().unwrap_err());
        assert!(err.starts_with("--conductor: "), "{err}");
    }

    #[test]
    fn the_timeout_must_be_positive() {
        assert!(Probe::try_parse_from(["probe", "--timeout-ms", "0"]).is_err());
        assert!(Probe::try_parse_from(["probe", "--timeout-ms", "x"]).is_err());
        assert_eq!(parse(&["--timeout-ms", "250"]).timeout_ms, 250);
    }

    #[test]
    fn the_key_is_explicit_or_the_default_file_when_it_exists() {
        let explicit = Path::new("/k/op.sec");
        assert_eq!(
            choose_key(Some(explicit), Some("/home/op".into()), |_| false),
            Some(explicit.to_path_buf())
        );
        assert_eq!(
            choose_key(None, Some("/home/op".into()), |_| true),
            Some(PathBuf::from("/home/op/.skr8tr/signing.sec"))
        );
        assert_eq!(choose_key(None, Some("/home/op".into()), |_| false), None);
        assert_eq!(choose_key(None, None, |_| true), None);
        assert_eq!(choose_key(None, Some("".into()), |_| true), None);
    }
}
