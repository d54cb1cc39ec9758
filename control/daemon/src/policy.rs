//! The host arguments every daemon accepts (`--listen`, `--tower`, `--conductor`, …): names,
//! IPv4 or IPv6, with an optional port (`host`, `host:port`, `[v6]:port`, bare `v6`, or just a
//! port number). Where a daemon may listen is `skr8tr_proto::auth::BindPolicy`'s business.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Why a listen address was refused or could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("cannot understand address {input:?}: {reason}")]
    BadAddress { input: String, reason: String },
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
}
