//! Hosts in routes and in requests (SPEC §7.1): the pattern a route names (`api.example.com`,
//! `*.example.com`) and the request's host reduced to the form patterns are stored in.
//!
//! Owns host normalisation: lower case, no `:port`, no trailing dot, IPv6 literals kept in their
//! brackets, punycode (`xn--…`) and IP literals passed as they are. The request side works in a
//! caller's stack buffer: no allocation per request.

use super::RouteError;

/// Longest host name looked up (DNS names are at most 253 characters; a longer one matches
/// only host-less routes).
pub const MAX_HOST: usize = 255;

/// The host part of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this host (lower case).
    Exact(String),
    /// One label, then this suffix (lower case, without the `*.`): `*.example.com` holds
    /// `example.com`.
    Wildcard(String),
}

impl HostPattern {
    /// Parses the host of a route: a name, an IPv4 literal, `[IPv6]`, or `*.` and a name.
    ///
    /// # Errors
    /// [`RouteError::BadHost`]: empty, a port, a `*` elsewhere than a leading `*.`, or a
    /// character no host holds.
    pub fn parse(text: &str) -> Result<Self, RouteError> {
        let bad = || RouteError::BadHost(text.to_owned());
        let lower = text.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        if lower.starts_with('[') {
            let inner = lower
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or_else(bad)?;
            if inner.is_empty()
                || !inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(bad());
            }
            return Ok(Self::Exact(lower.to_owned()));
        }
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > MAX_HOST || !name.split('.').all(label_ok) {
            return Err(bad());
        }
        Ok(if wild {
            Self::Wildcard(name.to_owned())
        } else {
            Self::Exact(name.to_owned())
        })
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(h) => f.write_str(h),
            Self::Wildcard(s) => write!(f, "*.{s}"),
        }
    }
}

/// The request's host as patterns are stored: `raw` (a `Host` value or an absolute-form
/// authority) without userinfo, port and trailing dot, lower-cased into `buf`. `None`: empty
/// or longer than [`MAX_HOST`].
#[must_use]
pub fn normalize<'b>(raw: &str, buf: &'b mut [u8; MAX_HOST]) -> Option<&'b str> {
    let raw = raw.trim_matches([' ', '\t']);
    let raw = raw.rsplit_once('@').map_or(raw, |(_, h)| h);
    let host = if raw.starts_with('[') {
        raw.find(']').map_or(raw, |end| &raw[..=end])
    } else {
        raw.split_once(':').map_or(raw, |(h, _)| h)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST {
        return None;
    }
    let out = &mut buf[..host.len()];
    for (o, b) in out.iter_mut().zip(host.bytes()) {
        *o = b.to_ascii_lowercase();
    }
    // Lower-casing ASCII bytes keeps UTF-8 valid; a non-UTF-8 host cannot reach here (`&str`).
    std::str::from_utf8(out).ok()
}

/// The suffix a wildcard of `host` is stored under (`a.example.com` → `example.com`), or `None`
/// for a one-label host and for IP literals, which no wildcard matches.
#[must_use]
pub fn wildcard_suffix(host: &str) -> Option<&str> {
    if host.starts_with('[') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    host.split_once('.')
        .map(|(_, rest)| rest)
        .filter(|r| !r.is_empty())
}
