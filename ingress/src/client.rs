//! The client's address as the ingress believes it: the TCP peer, or, when the peer is a
//! trusted proxy (`--trusted-proxy CIDR`, repeatable), the address `X-Forwarded-For` names.
//!
//! Owns CIDR parsing and the rule: walking `X-Forwarded-For` from the right (the hop nearest
//! this ingress first), trusted proxies are skipped and the first address that is not one is
//! the client; when every listed address is trusted, the leftmost is. A peer that is not
//! trusted is the client whatever it sends, so the header cannot be forged from outside. The
//! believed address keys rate limits and is sent upstream as `X-Real-IP`; `X-Forwarded-For`
//! keeps the whole chain plus the peer. Pure; allocates nothing.

use std::net::IpAddr;

/// A network, `ADDR/BITS` (a bare address is `/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

/// Why a `--trusted-proxy` value is refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid network `{0}` (expected ADDR/BITS, e.g. 10.0.0.0/8 or fd00::/8)")]
pub struct CidrError(pub String);

impl Cidr {
    /// Parses `ADDR[/BITS]`.
    ///
    /// # Errors
    /// [`CidrError`] for a bad address or more bits than the address has.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Self { addr, bits })
    }

    /// Whether `ip` is in this network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn trusted(ip: IpAddr, proxies: &[Cidr]) -> bool {
    proxies.iter().any(|c| c.contains(ip))
}

/// The client's address for a request from `peer` carrying the `X-Forwarded-For` values
/// `forwarded_for` (in field order).
#[must_use]
pub fn client_addr<'v>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'v [u8]>,
    proxies: &[Cidr],
) -> IpAddr {
    if !trusted(peer, proxies) {
        return peer;
    }
    let mut leftmost = None;
    for value in forwarded_for.rev() {
        for item in value.rsplit(|b| *b == b',') {
            let Some(ip) = std::str::from_utf8(item)
                .ok()
                .map(|s| s.trim_matches([' ', '\t']))
                .and_then(parse_hop)
            else {
                // An unreadable hop: nothing left of it can be believed.
                return leftmost.unwrap_or(peer);
            };
            if !trusted(ip, proxies) {
                return ip;
            }
            leftmost = Some(ip);
        }
    }
    leftmost.unwrap_or(peer)
}

/// One `X-Forwarded-For` hop: an address, `[v6]`, or either with a port.
fn parse_hop(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn networks() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains(ip("fe80::1")));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "x/8",
            "10.0.0.0/",
            "",
            "10.0.0.0/-1",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let proxies = [
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("fd00::/8").unwrap(),
        ];
        let cases: &[(&str, &[&str], &str)] = &[
            // Untrusted peer: the header is ignored.
            ("203.0.113.9", &["1.2.3.4"], "203.0.113.9"),
            // Trusted peer: the nearest untrusted hop.
            ("10.0.0.1", &["1.2.3.4"], "1.2.3.4"),
            ("10.0.0.1", &["6.6.6.6, 1.2.3.4"], "1.2.3.4"),
            ("10.0.0.1", &["6.6.6.6, 1.2.3.4, 10.9.9.9"], "1.2.3.4"),
            ("10.0.0.1", &["6.6.6.6", "1.2.3.4, 10.9.9.9"], "1.2.3.4"),
            ("fd00::1", &["[2001:db8::1]:443"], "2001:db8::1"),
            ("10.0.0.1", &["1.2.3.4:5678"], "1.2.3.4"),
            // All hops trusted: the leftmost; none: the peer.
            ("10.0.0.1", &["10.0.0.7, 10.0.0.8"], "10.0.0.7"),
            ("10.0.0.1", &[], "10.0.0.1"),
            // An unreadable hop stops the walk.
            ("10.0.0.1", &["1.2.3.4, garbage"], "10.0.0.1"),
            ("10.0.0.1", &["garbage, 10.0.0.5"], "10.0.0.5"),
            ("::ffff:10.0.0.1", &["1.2.3.4"], "1.2.3.4"),
        ];
        for (peer, values, expected) in cases {
            let got = client_addr(ip(peer), values.iter().map(|v| v.as_bytes()), &proxies);
            assert_eq!(got, ip(expected), "{peer} {values:?}");
        }
        assert_eq!(
            client_addr(ip("10.0.0.1"), ["1.2.3.4".as_bytes()].into_iter(), &[]),
            ip("10.0.0.1"),
            "nothing trusted without --trusted-proxy"
        );
    }
}
