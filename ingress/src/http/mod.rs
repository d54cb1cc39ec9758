//! HTTP/1.1 message syntax for the proxy: request and response heads (parsed with httparse,
//! validated strictly, re-serialised with the hop-by-hop fields rewritten) and chunked body
//! framing.
//!
//! ```text
//! client bytes ─parse_request─▶ RequestHead ─write_request─▶ upstream head bytes
//! upstream bytes ─parse_response─▶ ResponseHead ─write_response─▶ client head bytes
//! chunked body ─ChunkedDecoder─▶ data pieces ─encode_chunk─▶ chunked body
//! ```
//!
//! Owns: message syntax, framing decisions (how long a body is, whether a connection may be
//! reused) and the limits of SPEC §5. Does no I/O and allocates only into the caller's output
//! buffers. Invariant: a head that parses here has exactly one unambiguous body framing; anything
//! that could be read two ways by two parsers is an error, never a guess.

mod chunked;
#[cfg(any(test, feature = "fuzzing"))]
pub mod props;
mod request;
mod response;

#[cfg(test)]
mod tests;

pub use chunked::{CHUNK_END, ChunkedDecoder, LAST_CHUNK, encode_chunk_header};
pub use request::{Forwarding, RequestHead, parse_request, write_request};
pub use response::{
    ClientBody, ClientFraming, ResponseHead, parse_response, reason, write_error,
    write_error_retry_after, write_response,
};

/// Largest request or response head accepted (request line and fields): SPEC §5.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one head: SPEC §5.
pub const MAX_HEADERS: usize = 100;
/// Longest request target accepted: SPEC §5.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Longest method accepted (the longest registered one, `UPDATEREDIRECTREF`, has 17 bytes).
pub const MAX_METHOD_BYTES: usize = 32;

/// Why a head or a chunked body is refused. The proxy turns these into 400/414/431 for a
/// client and into 502 for an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request line (or status line) does not parse.
    #[error("malformed start line")]
    BadStartLine,
    /// A field line does not parse: invalid name, whitespace before the colon, obs-fold.
    #[error("malformed header field")]
    BadHeader,
    /// A bare CR or a NUL byte in the head.
    #[error("bare CR or NUL in the head")]
    BadByte,
    /// The head is larger than [`MAX_HEAD_BYTES`].
    #[error("head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// More than [`MAX_HEADERS`] fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// The request target is longer than [`MAX_TARGET_BYTES`].
    #[error("request target longer than {MAX_TARGET_BYTES} bytes")]
    TargetTooLong,
    /// Both Content-Length and Transfer-Encoding.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    /// A Content-Length that is not one plain decimal number (or several that differ).
    #[error("invalid Content-Length")]
    BadContentLength,
    /// A Transfer-Encoding other than exactly `chunked`, or one on HTTP/1.0.
    #[error("unsupported Transfer-Encoding")]
    BadTransferEncoding,
    /// HTTP/1.1 without Host.
    #[error("missing Host")]
    MissingHost,
    /// More than one Host.
    #[error("duplicate Host")]
    DuplicateHost,
    /// An HTTP version other than 1.0 and 1.1, or an unusable request target form.
    #[error("unsupported version or target form")]
    Unsupported,
    /// A chunk-size line that is not hexadecimal digits (with optional extensions), too large,
    /// or chunk data not followed by CRLF.
    #[error("bad chunk framing")]
    BadChunk,
}

impl HttpError {
    /// The status a client gets for this error in its request.
    #[must_use]
    pub const fn client_status(self) -> u16 {
        match self {
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::TargetTooLong => 414,
            _ => 400,
        }
    }
}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the sender closes (responses only).
    Close,
}

/// ASCII case-insensitive comparison of a field name.
#[inline]
pub(crate) fn name_is(name: &str, lower: &str) -> bool {
    name.len() == lower.len() && name.eq_ignore_ascii_case(lower)
}

/// Trims spaces and tabs on both ends.
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// Whether the comma-separated list `value` contains `token` (case-insensitive).
pub(crate) fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
}

/// Parses a Content-Length value: 1–19 ASCII digits, nothing else.
pub(crate) fn parse_length(value: &[u8]) -> Result<u64, HttpError> {
    let v = trim_ows(value);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadContentLength);
    }
    v.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(d - b'0')))
            .ok_or(HttpError::BadContentLength)
    })
}

/// Rejects a NUL anywhere and a CR not followed by LF.
pub(crate) fn check_bytes(head: &[u8]) -> Result<(), HttpError> {
    let mut i = 0;
    while let Some(off) = head[i..].iter().position(|b| *b == 0 || *b == b'\r') {
        let at = i + off;
        if head[at] == 0 || head.get(at + 1) != Some(&b'\n') {
            return Err(HttpError::BadByte);
        }
        i = at + 1;
    }
    Ok(())
}

/// Maps httparse's error to ours.
pub(crate) const fn from_httparse(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName | httparse::Error::HeaderValue => HttpError::BadHeader,
        httparse::Error::Version => HttpError::Unsupported,
        _ => HttpError::BadStartLine,
    }
}

/// Appends the decimal form of `n` without allocating.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
