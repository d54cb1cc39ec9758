//! Response heads: strict parsing of what an upstream sends, the re-serialised head the client
//! gets, and the proxy's own error responses.
//!
//! The upstream framing is decided from the request (HEAD) and the status (1xx, 204, 304 have
//! no body) before the fields; the client framing then follows from it and from what the client
//! can read (an HTTP/1.0 client cannot read chunked, so it gets the raw body and a close).

use super::{
    Framing, HttpError, MAX_HEAD_BYTES, check_bytes, from_httparse, has_token, name_is,
    parse_length, push_u64, trim_ows,
};

/// A parsed, validated response head, borrowing the upstream read buffer.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    /// The status code.
    pub status: u16,
    /// The reason phrase as received.
    pub reason: &'b str,
    /// The fields as received (validated).
    pub headers: &'h [httparse::Header<'b>],
    /// Bytes of the head, including the empty line.
    pub head_len: usize,
    /// How the upstream delimits the body.
    pub framing: Framing,
    /// Whether the upstream connection may be reused after the body.
    pub reusable: bool,
}

impl ResponseHead<'_, '_> {
    /// An interim response (1xx other than 101).
    #[must_use]
    pub const fn is_interim(&self) -> bool {
        self.status >= 100 && self.status < 200 && self.status != 101
    }
}

/// Parses a response head at the start of `buf` to a request whose method was HEAD when
/// `head_request`. `Ok(None)`: incomplete, read more.
///
/// # Errors
/// A malformed or ambiguous head (the proxy answers 502 and discards the connection).
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
    head_request: bool,
) -> Result<Option<ResponseHead<'h, 'b>>, HttpError> {
    let mut res = httparse::Response::new(headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(HttpError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(from_httparse(e)),
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadTooLarge);
    }
    check_bytes(&buf[..head_len])?;
    let (Some(status), Some(minor)) = (res.code, res.version) else {
        return Err(HttpError::BadStartLine);
    };
    // httparse takes any three digits; below 100 is no status (RFC 9110 §15) and would be
    // re-serialised to the client with fewer than three digits.
    if status < 100 {
        return Err(HttpError::BadStartLine);
    }
    let reason = res.reason.unwrap_or("");
    let headers: &'h [httparse::Header<'b>] = res.headers;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut keep_alive = false;
    for h in headers {
        if name_is(h.name, "content-length") {
            let n = parse_length(h.value)?;
            if length.is_some_and(|prev| prev != n) {
                return Err(HttpError::BadContentLength);
            }
            length = Some(n);
        } else if name_is(h.name, "transfer-encoding") {
            if chunked || !trim_ows(h.value).eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::BadTransferEncoding);
            }
            chunked = true;
        } else if name_is(h.name, "connection") {
            close |= has_token(h.value, "close");
            keep_alive |= has_token(h.value, "keep-alive");
        }
    }
    if chunked && length.is_some() {
        return Err(HttpError::LengthAndChunked);
    }
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = match (no_body, chunked, length) {
        (true, _, _) => Framing::None,
        (false, true, _) => Framing::Chunked,
        (false, false, Some(n)) => Framing::Length(n),
        (false, false, None) => Framing::Close,
    };
    let persistent = if minor == 1 {
        !close
    } else {
        keep_alive && !close
    };
    Ok(Some(ResponseHead {
        status,
        reason,
        headers,
        head_len,
        framing,
        reusable: persistent && framing != Framing::Close && status != 101,
    }))
}

/// How the proxy writes a response body to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientBody {
    /// No body.
    None,
    /// Exactly this many bytes, copied.
    Length(u64),
    /// Decode the upstream chunks and re-encode them.
    Chunked,
    /// Decode the upstream chunks and write the raw data (HTTP/1.0 client; close after).
    Dechunk,
    /// Copy until the upstream closes (close after).
    UntilClose,
}

/// The client side of a response: its body and whether the connection closes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFraming {
    /// How the body is written.
    pub body: ClientBody,
    /// Whether the client connection closes after this response.
    pub close: bool,
}

/// Writes the head the client gets into `out` (appended) and says how its body follows.
/// `client_minor` and `client_keep_alive` describe the client's request; `tunnel` keeps the
/// `Upgrade` field of a 101.
pub fn write_response(
    head: &ResponseHead<'_, '_>,
    client_minor: u8,
    client_keep_alive: bool,
    out: &mut Vec<u8>,
) -> ClientFraming {
    let tunnel = head.status == 101;
    let body = match head.framing {
        Framing::None => ClientBody::None,
        Framing::Length(n) => ClientBody::Length(n),
        Framing::Chunked if client_minor == 1 => ClientBody::Chunked,
        Framing::Chunked => ClientBody::Dechunk,
        Framing::Close => ClientBody::UntilClose,
    };
    let close = !head.is_interim()
        && (!client_keep_alive
            || matches!(body, ClientBody::Dechunk | ClientBody::UntilClose)
            || tunnel);
    let mut conn_values: [&[u8]; 8] = [&[]; 8];
    let mut n_conn = 0;
    for h in head.headers {
        if name_is(h.name, "connection") && n_conn < conn_values.len() {
            conn_values[n_conn] = h.value;
            n_conn += 1;
        }
    }
    let conn_values = &conn_values[..n_conn];
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(head.status));
    out.push(b' ');
    out.extend_from_slice(head.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in head.headers {
        let name = h.name;
        let hop = name_is(name, "connection")
            || name_is(name, "keep-alive")
            || name_is(name, "proxy-connection")
            || name_is(name, "te")
            || name_is(name, "trailer")
            || name_is(name, "transfer-encoding")
            || (!tunnel && name_is(name, "upgrade"))
            || (body != ClientBody::None && name_is(name, "content-length"))
            || (!(tunnel && name_is(name, "upgrade"))
                && conn_values.iter().any(|v| {
                    v.split(|b| *b == b',')
                        .any(|t| trim_ows(t).eq_ignore_ascii_case(name.as_bytes()))
                }));
        if hop {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    match body {
        ClientBody::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_u64(out, n);
            out.extend_from_slice(b"\r\n");
        }
        ClientBody::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        ClientBody::None | ClientBody::Dechunk | ClientBody::UntilClose => {}
    }
    if tunnel {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if close && !head.is_interim() {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if client_minor == 0 && !head.is_interim() {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    ClientFraming { body, close }
}

/// The reason phrase the proxy uses for its own responses.
#[must_use]
pub const fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// Appends a complete plain-text response of the proxy's own: `body` plus a newline.
pub fn write_error(out: &mut Vec<u8>, status: u16, body: &str, close: bool, head_only: bool) {
    write_error_retry_after(out, status, body, close, head_only, None);
}

/// [`write_error`] with a `Retry-After: SECONDS` field when `retry_after` is given (429).
pub fn write_error_retry_after(
    out: &mut Vec<u8>,
    status: u16,
    body: &str,
    close: bool,
    head_only: bool,
    retry_after: Option<u32>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    if let Some(s) = retry_after {
        out.extend_from_slice(b"\r\nRetry-After: ");
        push_u64(out, u64::from(s));
    }
    out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    push_u64(out, body.len() as u64 + 1);
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if !head_only {
        out.extend_from_slice(body.as_bytes());
        out.push(b'\n');
    }
}
