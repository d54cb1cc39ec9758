//! Request heads: strict parsing and the re-serialised head sent upstream.
//!
//! Parsing decides the body framing once (Content-Length or chunked, never both, never
//! ambiguous), whether the client connection may be kept, and what the client expects
//! (`100-continue`, an upgrade). Serialising writes a fresh HTTP/1.1 head: the request line,
//! the end-to-end fields in their order and spelling, one normalised framing field, the
//! forwarding fields, and nothing hop-by-hop.

use super::{
    Framing, HttpError, MAX_HEAD_BYTES, MAX_METHOD_BYTES, MAX_TARGET_BYTES, check_bytes,
    from_httparse, has_token, name_is, parse_length, push_u64, trim_ows,
};

/// A parsed, validated request head, borrowing the read buffer.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    /// The method token, e.g. `GET`.
    pub method: &'b str,
    /// The request target as received.
    pub target: &'b str,
    /// The path the router sees: the target without scheme and authority.
    pub path: &'b str,
    /// HTTP/1.`minor`.
    pub minor: u8,
    /// The fields as received (validated).
    pub headers: &'h [httparse::Header<'b>],
    /// Bytes of the head, including the empty line.
    pub head_len: usize,
    /// How the request body is delimited (never [`Framing::Close`]).
    pub framing: Framing,
    /// Whether the client wants the connection kept after this exchange.
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
    /// An upgrade is asked for (`Upgrade` plus `Connection: upgrade`).
    pub upgrade: bool,
    /// Whether a Host field was present.
    pub has_host: bool,
    /// The host the request names: the absolute-form target's authority, else the `Host`
    /// value (as received: case, port and all).
    pub host: Option<&'b str>,
}

impl RequestHead<'_, '_> {
    /// Whether the request may be sent twice with the effect of once (RFC 9110 §9.2.2).
    #[must_use]
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method,
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        )
    }

    /// Whether this is a HEAD request (its response has no body).
    #[must_use]
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// Whether a request body follows the head.
    #[must_use]
    pub const fn has_body(&self) -> bool {
        matches!(self.framing, Framing::Chunked)
            || matches!(self.framing, Framing::Length(n) if n > 0)
    }
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read more.
///
/// # Errors
/// Any violation of SPEC §5's strict rules, as an [`HttpError`] (see its
/// [`HttpError::client_status`]).
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Result<Option<RequestHead<'h, 'b>>, HttpError> {
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            check_partial(buf)?;
            return Ok(None);
        }
        Err(e) => {
            // A long target fails httparse only once it is complete; judge the size first.
            check_partial(buf)?;
            return Err(from_httparse(e));
        }
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    check_bytes(&buf[..head_len])?;
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HttpError::BadStartLine);
    };
    if target.len() > MAX_TARGET_BYTES {
        return Err(HttpError::TargetTooLong);
    }
    if method.len() > MAX_METHOD_BYTES {
        return Err(HttpError::BadStartLine);
    }
    let path = origin_path(method, target)?;
    let headers: &'h [httparse::Header<'b>] = req.headers;

    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encodings = 0;
    let mut hosts = 0;
    let mut host_field: Option<&'b str> = None;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut upgrade_token = false;
    let mut upgrade_field = false;
    let mut expect_continue = false;
    for h in headers {
        let name = h.name;
        if name_is(name, "content-length") {
            let n = parse_length(h.value)?;
            if length.is_some_and(|prev| prev != n) {
                return Err(HttpError::BadContentLength);
            }
            length = Some(n);
        } else if name_is(name, "transfer-encoding") {
            transfer_encodings += 1;
            chunked = trim_ows(h.value).eq_ignore_ascii_case(b"chunked");
            if !chunked || transfer_encodings > 1 || minor == 0 {
                return Err(HttpError::BadTransferEncoding);
            }
        } else if name_is(name, "host") {
            hosts += 1;
            host_field = std::str::from_utf8(trim_ows(h.value)).ok();
            if hosts > 1 {
                return Err(HttpError::DuplicateHost);
            }
        } else if name_is(name, "connection") {
            close |= has_token(h.value, "close");
            keep_alive_token |= has_token(h.value, "keep-alive");
            upgrade_token |= has_token(h.value, "upgrade");
        } else if name_is(name, "upgrade") {
            upgrade_field = true;
        } else if name_is(name, "expect") {
            expect_continue = trim_ows(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    if chunked && length.is_some() {
        return Err(HttpError::LengthAndChunked);
    }
    if minor == 1 && hosts == 0 {
        return Err(HttpError::MissingHost);
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::None,
    };
    Ok(Some(RequestHead {
        method,
        target,
        path,
        minor,
        headers,
        head_len,
        framing,
        keep_alive: if minor == 1 {
            !close
        } else {
            keep_alive_token && !close
        },
        expect_continue,
        upgrade: upgrade_field && upgrade_token && minor == 1,
        has_host: hosts == 1,
        host: authority(target).or(host_field),
    }))
}

/// Limits that can be judged before the head is complete: its size and its target's.
fn check_partial(buf: &[u8]) -> Result<(), HttpError> {
    // Judged on what has arrived so far, the same way whatever the read boundaries: a method
    // longer than any real one, or a target over the limit, fails as soon as it is seen.
    let line_end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    let line = &buf[..line_end];
    match line.iter().position(|b| *b == b' ') {
        None if line.len() > MAX_METHOD_BYTES => return Err(HttpError::BadStartLine),
        Some(sp) if sp > MAX_METHOD_BYTES => return Err(HttpError::BadStartLine),
        Some(sp) => {
            let rest = &line[sp + 1..];
            let target_len = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
            if target_len > MAX_TARGET_BYTES {
                return Err(HttpError::TargetTooLong);
            }
        }
        None => {}
    }
    if buf.len() > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    Ok(())
}

/// The path of an origin-form (`/x?y`) or absolute-form (`http://h/x`) target; `*` for OPTIONS.
fn origin_path<'b>(method: &str, target: &'b str) -> Result<&'b str, HttpError> {
    if target.starts_with('/') {
        return Ok(target);
    }
    if target == "*" && method == "OPTIONS" {
        return Ok("/");
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .ok_or(HttpError::Unsupported)?;
    Ok(rest.find('/').map_or("/", |i| &rest[i..]))
}

/// The authority of an absolute-form target (`http://h:1/x` → `h:1`).
fn authority(target: &str) -> Option<&str> {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

/// What the proxy adds to a forwarded request.
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// The peer's address as text (no port): appended to `X-Forwarded-For`.
    pub client_ip: &'a str,
    /// The client's address as believed (`crate::client`): sent as `X-Real-IP`.
    pub real_ip: &'a str,
    /// `http` or `https`.
    pub proto: &'a str,
    /// Host to send when an HTTP/1.0 client sent none.
    pub default_host: &'a str,
    /// Keep `Upgrade` and send `Connection: upgrade`.
    pub tunnel: bool,
    /// The target to send instead of the received one, in two parts written one after the
    /// other (a route's strip-prefix: `("/", "?x=1")`); `None`: the target as received.
    pub target: Option<(&'a str, &'a str)>,
}

/// Whether a request field is dropped (or replaced) when forwarding.
fn dropped(name: &str, connection_values: &[&[u8]], tunnel: bool) -> bool {
    let lower_first = name.as_bytes().first().map(u8::to_ascii_lowercase);
    let fixed = match lower_first {
        Some(b'c') => name_is(name, "connection") || name_is(name, "content-length"),
        Some(b'k') => name_is(name, "keep-alive"),
        Some(b'p') => name_is(name, "proxy-connection"),
        Some(b't') => {
            name_is(name, "te") || name_is(name, "trailer") || name_is(name, "transfer-encoding")
        }
        Some(b'u') => !tunnel && name_is(name, "upgrade"),
        Some(b'e') => name_is(name, "expect"),
        Some(b'x') => {
            name_is(name, "x-forwarded-for")
                || name_is(name, "x-real-ip")
                || name_is(name, "x-forwarded-proto")
        }
        _ => false,
    };
    // Host stays whatever Connection lists: HTTP/1.1 requires it (RFC 9112 §3.2), and the
    // proxy adds its own only when the client sent none.
    fixed
        || (!name_is(name, "host")
            && connection_values.iter().any(|v| {
                v.split(|b| *b == b',')
                    .any(|t| trim_ows(t).eq_ignore_ascii_case(name.as_bytes()))
            }))
}

/// Writes the head to send upstream into `out` (appended).
pub fn write_request(head: &RequestHead<'_, '_>, fwd: &Forwarding<'_>, out: &mut Vec<u8>) {
    let mut conn_values: [&[u8]; 8] = [&[]; 8];
    let mut n_conn = 0;
    for h in head.headers {
        if name_is(h.name, "connection") && n_conn < conn_values.len() {
            conn_values[n_conn] = h.value;
            n_conn += 1;
        }
    }
    let conn_values = &conn_values[..n_conn];
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    match fwd.target {
        Some((lead, rest)) => {
            out.extend_from_slice(lead.as_bytes());
            out.extend_from_slice(rest.as_bytes());
        }
        None => out.extend_from_slice(head.target.as_bytes()),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for h in head.headers {
        if fwd.tunnel && name_is(h.name, "upgrade") {
            // Kept below, next to `Connection: upgrade`.
            continue;
        }
        if dropped(h.name, conn_values, fwd.tunnel) {
            continue;
        }
        push_field(out, h.name.as_bytes(), h.value);
    }
    if !head.has_host {
        push_field(out, b"Host", fwd.default_host.as_bytes());
    }
    match head.framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::None | Framing::Close => {}
    }
    if fwd.tunnel {
        for h in head.headers.iter().filter(|h| name_is(h.name, "upgrade")) {
            push_field(out, h.name.as_bytes(), h.value);
        }
        out.extend_from_slice(b"Connection: upgrade\r\n");
    }
    out.extend_from_slice(b"X-Forwarded-For: ");
    for h in head
        .headers
        .iter()
        .filter(|h| name_is(h.name, "x-forwarded-for"))
    {
        let v = trim_ows(h.value);
        if !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(fwd.client_ip.as_bytes());
    out.extend_from_slice(b"\r\nX-Real-IP: ");
    out.extend_from_slice(fwd.real_ip.as_bytes());
    out.extend_from_slice(b"\r\nX-Forwarded-Proto: ");
    out.extend_from_slice(fwd.proto.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
