//! The request's host reduced to the form route hosts are stored in (SPEC §7.1). A route's own
//! host (`api.example.com`, `*.example.com`, `[::1]`) is read and checked by the contract crate
//! (`skr8tr_proto::route::parse_host`), lower-cased.
//!
//! Owns request-host normalisation: lower case, no `:port`, no userinfo, no trailing dot, IPv6
//! literals kept in their brackets, punycode (`xn--…`) and IP literals passed as they are. Works
//! in a caller's stack buffer: no allocation per request.

/// Longest host name looked up (DNS names are at most 253 characters; a longer one matches
/// only host-less routes).
pub const MAX_HOST: usize = 255;

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
