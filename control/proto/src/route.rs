//! A route an edge serves (SPEC §7.1): `[HOST]/PREFIX` and its options, as an app manifest's
//! `route` key declares it, the Conductor publishes it to the Tower and an ingress serves it.
//!
//! Owns the value type ([`RouteSpec`]), the grammar and validation of a route target
//! ([`parse_target`]: host labels and length, prefix characters) and the ranges of the options.
//! It does no matching (the ingress owns the lookup) and knows nothing of the manifest syntax
//! around it (`manifest` reads `route … { … }` blocks into this type).

use std::fmt;
use std::net::Ipv6Addr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::name::ServiceName;

/// Longest host name accepted (RFC 1035's 253 characters, without a trailing dot).
pub const MAX_HOST_LEN: usize = 253;
/// Longest label of a host name.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 1024;
/// `max-body`: at least a byte, at most 1 TiB.
pub const MAX_BODY_BYTES: RangeInclusive<u64> = 1..=1 << 40;
/// `timeout`: from 10 ms to an hour (milliseconds).
pub const TIMEOUT_MS: RangeInclusive<u64> = 10..=3_600_000;
/// `rate N/s`: requests per second per client address.
pub const RATE_PER_SECOND: RangeInclusive<u64> = 1..=1_000_000;
/// `burst M`: the bucket size (defaults to the rate).
pub const BURST: RangeInclusive<u64> = 1..=10_000_000;

/// One route: where it matches (`host`, `prefix`) and what the edge does on the way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    /// `None`: any host (the fallback routes).
    pub host: Option<RouteHost>,
    /// Starts with `/`; matched on segment boundaries.
    pub prefix: String,
    pub options: RouteOptions,
}

impl RouteSpec {
    /// A route with default options.
    #[must_use]
    pub fn new(host: Option<RouteHost>, prefix: impl Into<String>) -> Self {
        Self {
            host,
            prefix: prefix.into(),
            options: RouteOptions::default(),
        }
    }

    /// The `[HOST]/PREFIX` form, as written in a manifest (and the key two apps cannot share).
    #[must_use]
    pub fn target(&self) -> String {
        match &self.host {
            Some(host) => format!("{host}{}", self.prefix),
            None => self.prefix.clone(),
        }
    }
}

/// A route an operator gives an edge (`--route`, the routes file): a route and the service it
/// goes to. An app's own routes go to the app, so they are plain [`RouteSpec`]s.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceRoute {
    pub route: RouteSpec,
    pub service: ServiceName,
}

/// A route's host: an exact name (an IPv4 literal, `[IPv6]`, or a DNS name, punycode as it is) or
/// a one-label wildcard, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteHost {
    /// `api.example.com`.
    Exact(String),
    /// `*.example.com`, holding `example.com`: matches `a.example.com`, not `example.com` nor
    /// `a.b.example.com`.
    Wildcard(String),
}

impl fmt::Display for RouteHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// What the edge does for a route beyond forwarding; `Default` is "nothing".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RouteOptions {
    /// `strip-prefix`: `/api/users` → `/users`, `/api` → `/`.
    pub strip_prefix: bool,
    /// `max-body`, in bytes ([`MAX_BODY_BYTES`]).
    pub max_body: Option<u64>,
    /// `timeout`: the upstream response-head timeout ([`TIMEOUT_MS`], whole milliseconds).
    pub timeout: Option<Duration>,
    /// `rate N/s burst M`, per client address.
    pub rate: Option<RateLimit>,
    /// `https-only`: plain HTTP is redirected to https.
    pub https_only: bool,
}

impl RouteOptions {
    /// Whether every option is the default (a one-line route).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// `rate N/s burst M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// N, in [`RATE_PER_SECOND`].
    pub per_second: u32,
    /// M, in [`BURST`].
    pub burst: u32,
}

/// Why a route target is not `[HOST]/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("a route needs a path prefix starting with `/`, like `api.example.com/api` or `/`")]
    MissingPrefix,
    #[error("the host is empty")]
    EmptyHost,
    #[error("the host is {len} characters long; at most {MAX_HOST_LEN}")]
    HostTooLong { len: usize },
    #[error("the host has an empty label (two dots, or a dot at an end)")]
    EmptyLabel,
    #[error("the host label `{label}` is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong { label: String },
    #[error(
        "the host label `{label}` may only hold letters, digits and `-`, not at its start or end"
    )]
    BadLabel { label: String },
    #[error("a wildcard host is `*.` followed by a name, like `*.example.com`")]
    BadWildcard,
    #[error(
        "`{0}` is not an IPv6 address in brackets, like `[::1]` (and a route host has no port)"
    )]
    BadIpv6(String),
    #[error("the prefix is longer than {MAX_PREFIX_LEN} bytes")]
    PrefixTooLong,
    #[error("the prefix cannot contain {what}")]
    BadPrefixChar { what: &'static str },
}

/// Reads `[HOST]/PREFIX`: the host (lower-cased) and the prefix.
///
/// # Errors
/// What is wrong with the host or the prefix.
pub fn parse_target(text: &str) -> Result<(Option<RouteHost>, String), RouteError> {
    let (host, prefix) = match text.find('/') {
        Some(0) => (None, text),
        Some(at) => (Some(&text[..at]), &text[at..]),
        None => return Err(RouteError::MissingPrefix),
    };
    check_prefix(prefix)?;
    let host = host.map(parse_host).transpose()?;
    Ok((host, prefix.to_owned()))
}

/// Reads an exact host or a one-label wildcard, lower-cased.
///
/// # Errors
/// What is wrong with it.
pub fn parse_host(text: &str) -> Result<RouteHost, RouteError> {
    if text.is_empty() {
        return Err(RouteError::EmptyHost);
    }
    let lower = text.to_ascii_lowercase();
    if lower.starts_with('[') {
        let inner = lower.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        return match inner.map(str::parse::<Ipv6Addr>) {
            Some(Ok(_)) => Ok(RouteHost::Exact(lower)),
            _ => Err(RouteError::BadIpv6(text.to_owned())),
        };
    }
    if let Some(suffix) = lower.strip_prefix("*.") {
        check_name(suffix)?;
        return Ok(RouteHost::Wildcard(suffix.to_owned()));
    }
    if lower.contains('*') {
        return Err(RouteError::BadWildcard);
    }
    check_name(&lower)?;
    Ok(RouteHost::Exact(lower))
}

fn check_name(name: &str) -> Result<(), RouteError> {
    if name.is_empty() {
        return Err(RouteError::BadWildcard);
    }
    if name.len() > MAX_HOST_LEN {
        return Err(RouteError::HostTooLong { len: name.len() });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(RouteError::EmptyLabel);
        }
        if label.contains('*') {
            return Err(RouteError::BadWildcard);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(RouteError::LabelTooLong {
                label: label.to_owned(),
            });
        }
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok_chars || label.starts_with('-') || label.ends_with('-') {
            return Err(RouteError::BadLabel {
                label: label.to_owned(),
            });
        }
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), RouteError> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(RouteError::PrefixTooLong);
    }
    for c in prefix.chars() {
        let what = match c {
            '?' => "`?` (a query is not part of a route)",
            '#' => "`#` (a fragment is not part of a route)",
            c if c.is_whitespace() => "spaces",
            c if c.is_control() => "control characters",
            c if !c.is_ascii() => "non-ASCII characters (percent-encode them)",
            _ => continue,
        };
        return Err(RouteError::BadPrefixChar { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(s: &str) -> Option<RouteHost> {
        Some(RouteHost::Exact(s.into()))
    }

    #[test]
    fn targets() {
        let ok: &[(&str, Option<RouteHost>, &str)] = &[
            ("/", None, "/"),
            ("/api", None, "/api"),
            ("/api/v1/", None, "/api/v1/"),
            ("api.example.com/api", exact("api.example.com"), "/api"),
            ("API.Example.COM/", exact("api.example.com"), "/"),
            ("localhost/x", exact("localhost"), "/x"),
            ("127.0.0.1/", exact("127.0.0.1"), "/"),
            (
                "xn--bcher-kva.example/",
                exact("xn--bcher-kva.example"),
                "/",
            ),
            (
                "*.example.com/",
                Some(RouteHost::Wildcard("example.com".into())),
                "/",
            ),
            ("*.Com/a", Some(RouteHost::Wildcard("com".into())), "/a"),
            ("h/a;b=1/%20", exact("h"), "/a;b=1/%20"),
            ("[::1]/v6", exact("[::1]"), "/v6"),
            ("[2001:DB8::1]/", exact("[2001:db8::1]"), "/"),
        ];
        for (text, host, prefix) in ok {
            assert_eq!(
                parse_target(text),
                Ok((host.clone(), (*prefix).to_owned())),
                "{text}"
            );
        }
        let long_label = format!("{}.com/", "a".repeat(64));
        let long_host = format!("{}/", vec!["a".repeat(60); 5].join("."));
        let long_prefix = format!("/{}", "a".repeat(MAX_PREFIX_LEN));
        let bad: &[(&str, RouteError)] = &[
            ("", RouteError::MissingPrefix),
            ("example.com", RouteError::MissingPrefix),
            ("api", RouteError::MissingPrefix),
            ("a..b/", RouteError::EmptyLabel),
            (".a/", RouteError::EmptyLabel),
            ("a./", RouteError::EmptyLabel),
            ("*/", RouteError::BadWildcard),
            ("*./", RouteError::BadWildcard),
            ("a.*.com/", RouteError::BadWildcard),
            ("*.*.com/", RouteError::BadWildcard),
            ("*a.com/", RouteError::BadWildcard),
            ("-a.com/", RouteError::BadLabel { label: "-a".into() }),
            ("a-.com/", RouteError::BadLabel { label: "a-".into() }),
            (
                "a_b.com/",
                RouteError::BadLabel {
                    label: "a_b".into(),
                },
            ),
            (
                "a:80/",
                RouteError::BadLabel {
                    label: "a:80".into(),
                },
            ),
            ("é.com/", RouteError::BadLabel { label: "é".into() }),
            ("[zz]/", RouteError::BadIpv6("[zz]".into())),
            ("[::1/", RouteError::BadIpv6("[::1".into())),
            ("[::1]:80/", RouteError::BadIpv6("[::1]:80".into())),
            (
                &long_label,
                RouteError::LabelTooLong {
                    label: "a".repeat(64),
                },
            ),
            (&long_host, RouteError::HostTooLong { len: 304 }),
            (&long_prefix, RouteError::PrefixTooLong),
        ];
        for (text, err) in bad {
            assert_eq!(parse_target(text), Err(err.clone()), "{text}");
        }
        for (text, what) in [
            ("/a?b", "`?`"),
            ("/a#b", "`#`"),
            ("/a b", "spaces"),
            ("/a\tb", "spaces"),
            ("/a\u{1}", "control"),
            ("/é", "non-ASCII"),
        ] {
            match parse_target(text) {
                Err(RouteError::BadPrefixChar { what: w }) => assert!(w.starts_with(what), "{w}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn target_prints_what_parses() {
        for text in [
            "/",
            "/api",
            "api.example.com/api",
            "*.example.com/x/",
            "[::1]/x",
        ] {
            let (host, prefix) = parse_target(text).unwrap();
            assert_eq!(RouteSpec::new(host, prefix).target(), text);
        }
    }
}
