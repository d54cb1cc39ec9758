//! The host arguments every daemon accepts (`--listen`, `--tower`, `--conductor`, …): names,
//! IPv4 or IPv6, with an optional port (`host`, `host:port`, `[v6]:port`, bare `v6`, or just a
//! port number). Where a daemon may listen is `skr8tr_proto::auth::BindPolicy`'s business.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use skr8tr_proto::auth::{BindError, BindPolicy};

/// Why a listen address was refused or could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("cannot understand address {input:?}: {reason}")]
    BadAddress { input: String, reason: String },
    #[error("{flag} {input}: {source}")]
    NotAllowed {
        flag: &'static str,
        input: String,
        source: BindError,
    },
}

/// The address a daemon listens on when given `flag value`: parsed as [`parse_host_port`] does
/// (every address when no host is given) and narrowed by `policy`. Dev mode (no keys) moves an
/// every-address listener to loopback, and says so in the log.
///
/// # Errors
/// [`AddressError::BadAddress`], or [`AddressError::NotAllowed`] for a specific non-loopback
/// address without keys.
pub fn listen_addr(
    flag: &'static str,
    value: &str,
    default_port: u16,
    policy: BindPolicy,
) -> Result<SocketAddr, AddressError> {
    let requested = parse_host_port(value, IpAddr::V4(Ipv4Addr::UNSPECIFIED), default_port)?;
    let ip = policy
        .resolve(requested.ip())
        .map_err(|source| AddressError::NotAllowed {
            flag,
            input: value.to_string(),
            source,
        })?;
    if ip != requested.ip() {
        tracing::warn!(flag, requested = %requested.ip(), listening = %ip, "no keys: dev mode, loopback only");
    }
    Ok(SocketAddr::new(ip, requested.port()))
}

/// Parses `host[:port]`, `[v6]:port`, a bare IPv6 address, or a bare port (meaning
/// `default_host`), resolving names; `default_port` fills a missing port.
///
/// # Errors
/// [`AddressError::BadAddress`] naming the input.
pub fn parse_host_port(
    input: &str,
    default_host: IpAddr,
    default_port: u16,
) -> Result<SocketAddr, AddressError> {
    let bad = |reason: &str| AddressError::BadAddress {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(default_host, port));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    if let Some(v6) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return v6
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, default_port))
            .map_err(|_| bad("not an IPv6 address"));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("bad port"))?),
        None => (s, default_port),
    };
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&e.to_string()))?
        .min_by_key(|a| !a.is_ipv4())
        .ok_or_else(|| bad("name resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn host_forms() {
        let p = |s| parse_host_port(s, LO, 7772).unwrap().to_string();
        assert_eq!(p("7771"), "127.0.0.1:7771");
        assert_eq!(p("10.1.2.3"), "10.1.2.3:7772");
        assert_eq!(p("10.1.2.3:99"), "10.1.2.3:99");
        assert_eq!(p("::1"), "[::1]:7772");
        assert_eq!(p("[::1]"), "[::1]:7772");
        assert_eq!(p("[::1]:80"), "[::1]:80");
        assert_eq!(p("localhost:81"), "127.0.0.1:81");
        assert_eq!(p(":82"), "0.0.0.0:82");
        assert!(parse_host_port("host:notaport", LO, 1).is_err());
        assert!(parse_host_port("", LO, 1).is_err());
    }

    #[test]
    fn listen_addr_narrows_to_loopback_without_keys_and_refuses_a_named_address() {
        let dev = BindPolicy::LoopbackOnly;
        let keyed = BindPolicy::AnyAddress;
        let ok = |v, p| listen_addr("--listen", v, 7772, p).unwrap().to_string();
        assert_eq!(ok("0.0.0.0:7772", dev), "127.0.0.1:7772");
        assert_eq!(ok("7000", dev), "127.0.0.1:7000");
        assert_eq!(ok("[::]:9", dev), "[::1]:9");
        assert_eq!(ok("0.0.0.0", keyed), "0.0.0.0:7772");
        assert_eq!(ok("10.1.2.3:5", keyed), "10.1.2.3:5");
        let err = listen_addr("--node-listen", "10.1.2.3:5", 7775, dev).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("--node-listen 10.1.2.3:5: refusing"),
            "{text}"
        );
        assert!(matches!(
            listen_addr("--listen", "nope:x", 1, keyed),
            Err(AddressError::BadAddress { .. })
        ));
    }
}
