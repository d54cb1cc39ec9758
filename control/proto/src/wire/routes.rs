//! One route ([`RouteSpec`]) as a `,`-list entry of the route messages (`PUBLISH_ROUTES`,
//! `ROUTES_UPDATE`, `OK|ROUTES`):
//!
//! ```text
//! <host>:<prefix>:<flags>:<max_body>:<timeout_ms>:<rate>:<burst>
//! api.example.com:/api:sh:10485760:30000:100:200      *.example.com:/:-:-:-:-:-
//! ```
//! `-` stands for "no host" and for an option not set; `flags` holds `s` (strip-prefix) and `h`
//! (https-only), or `-`. The host and the prefix are percent-encoded beyond
//! `[A-Za-z0-9/._~!$&'()*+;=@-]`, so neither holds a separator (`|`, `,`, `:`; an IPv6 host
//! `[::1]` travels as `%5B%3A%3A1%5D`). Decoding validates what the manifest parser
//! validates (host labels, prefix characters, option ranges), through [`crate::route`].

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::error::WireError;
use super::fields::{bad, parts, uint_in};
use crate::route::{self, RateLimit, RouteOptions, RouteSpec};

const NONE: &str = "-";

/// Writes `route` as one list entry.
pub(super) fn write(out: &mut String, route: &RouteSpec) -> fmt::Result {
    match &route.host {
        Some(host) => escape(out, &host.to_string())?,
        None => out.write_str(NONE)?,
    }
    out.push(':');
    escape(out, &route.prefix)?;
    let o = &route.options;
    let flags = match (o.strip_prefix, o.https_only) {
        (false, false) => NONE,
        (true, false) => "s",
        (false, true) => "h",
        (true, true) => "sh",
    };
    let opt = |v: Option<u64>| v.map_or_else(|| NONE.to_owned(), |v| v.to_string());
    let timeout = o
        .timeout
        .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    write!(
        out,
        ":{flags}:{}:{}:{}:{}",
        opt(o.max_body),
        opt(timeout),
        opt(o.rate.map(|r| u64::from(r.per_second))),
        opt(o.rate.map(|r| u64::from(r.burst))),
    )
}

/// Reads one list entry written by [`write`].
pub(super) fn read(verb: &'static str, entry: &str) -> Result<RouteSpec, WireError> {
    let field = "routes";
    let [host, prefix, flags, max_body, timeout, rate, burst] = parts::<7>(verb, field, entry)?;
    let prefix = unescape(prefix).ok_or_else(|| bad(verb, field, "bad %-escape in a prefix"))?;
    let target = if host == NONE {
        prefix
    } else {
        let host = unescape(host).ok_or_else(|| bad(verb, field, "bad %-escape in a host"))?;
        format!("{host}{prefix}")
    };
    let (host, prefix) =
        route::parse_target(&target).map_err(|e| bad(verb, field, e.to_string()))?;
    let (strip_prefix, https_only) = match flags {
        "-" => (false, false),
        "s" => (true, false),
        "h" => (false, true),
        "sh" => (true, true),
        _ => return Err(bad(verb, field, "flags are `-`, `s`, `h` or `sh`")),
    };
    let opt = |raw: &str, range: std::ops::RangeInclusive<u64>| -> Result<Option<u64>, WireError> {
        if raw == NONE {
            Ok(None)
        } else {
            uint_in(verb, field, raw, range).map(Some)
        }
    };
    let max_body = opt(max_body, route::MAX_BODY_BYTES)?;
    let timeout = opt(timeout, route::TIMEOUT_MS)?.map(Duration::from_millis);
    let rate = match (
        opt(rate, route::RATE_PER_SECOND)?,
        opt(burst, route::BURST)?,
    ) {
        (None, None) => None,
        (Some(per_second), Some(burst)) => Some(RateLimit {
            per_second: u32::try_from(per_second).map_err(|_| bad(verb, field, "rate"))?,
            burst: u32::try_from(burst).map_err(|_| bad(verb, field, "burst"))?,
        }),
        _ => return Err(bad(verb, field, "a rate and its burst go together")),
    };
    Ok(RouteSpec {
        host,
        prefix,
        options: RouteOptions {
            strip_prefix,
            max_body,
            timeout,
            rate,
            https_only,
        },
    })
}

/// Writes `text` percent-encoded beyond the characters that never separate fields.
fn escape(out: &mut String, text: &str) -> fmt::Result {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/._~!$&'()*+;=@-".contains(&b) {
            out.push(char::from(b));
        } else {
            write!(out, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// Undoes the percent-encoding of a host or a prefix; `None` on a bad escape or non-UTF-8 result.
fn unescape(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteHost;

    fn text(route: &RouteSpec) -> String {
        let mut out = String::new();
        write(&mut out, route).unwrap();
        out
    }

    #[test]
    fn entries() {
        let full = RouteSpec {
            host: Some(RouteHost::Exact("api.example.com".into())),
            prefix: "/api".into(),
            options: RouteOptions {
                strip_prefix: true,
                max_body: Some(10 << 20),
                timeout: Some(Duration::from_secs(30)),
                rate: Some(RateLimit {
                    per_second: 100,
                    burst: 200,
                }),
                https_only: true,
            },
        };
        let cases = [
            (full, "api.example.com:/api:sh:10485760:30000:100:200"),
            (
                RouteSpec::new(Some(RouteHost::Wildcard("example.com".into())), "/"),
                "*.example.com:/:-:-:-:-:-",
            ),
            (
                RouteSpec::new(Some(RouteHost::Exact("[::1]".into())), "/v6"),
                "%5B%3A%3A1%5D:/v6:-:-:-:-:-",
            ),
            (
                RouteSpec::new(None, "/a,b:c|d%e f"),
                "-:/a%2Cb%3Ac%7Cd%25e%20f:-:-:-:-:-",
            ),
        ];
        for (route, want) in cases {
            assert_eq!(text(&route), want);
            // A prefix with a space cannot come from a manifest, but the codec still carries it
            // back only if it is valid: the space makes it refused.
            if !route.prefix.contains(' ') {
                assert_eq!(read("ROUTES_UPDATE", want), Ok(route));
            }
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "-:/",
            "-:/:-:-:-:-:-:-",
            "-:api:-:-:-:-:-",
            "a..b:/:-:-:-:-:-",
            "-:/%2:-:-:-:-:-",
            "-:/%zz:-:-:-:-:-",
            "-:/%3F:-:-:-:-:-",
            "-:/%FF:-:-:-:-:-",
            "-:/:x:-:-:-:-",
            "-:/:hs:-:-:-:-",
            "-:/:-:0:-:-:-",
            "-:/:-:-:5:-:-",
            "-:/:-:-:-:1:-",
            "-:/:-:-:-:0:1",
            "-:/:-:-:-:1:99999999999",
        ] {
            assert!(read("ROUTES_UPDATE", bad).is_err(), "{bad}");
        }
    }
}
