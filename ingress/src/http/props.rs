//! Properties of the HTTP syntax that hold for any input bytes. Each `check_*` function feeds
//! its input through the parsers and panics (an `assert!`) when a property fails.
//!
//! One definition, two drivers: the cargo-fuzz targets in `fuzz/fuzz_targets/http_*.rs` and
//! `chunked.rs` (which enable the `fuzzing` feature to reach this module), and the proptests and
//! corpus replay in `tests.rs`, which run on every `cargo test`.
//!
//! The properties, by parser:
//! - request head: `head_len` ≤ input and ≤ [`MAX_HEAD_BYTES`]; the framing agrees with the
//!   fields (never both Content-Length and Transfer-Encoding, every Content-Length equal); the
//!   head parses the same without the bytes after it, and every shorter prefix is incomplete,
//!   never an error (the proxy reads in pieces); re-serialised by [`write_request`] as the proxy
//!   does, it parses again to the same method, target, path, framing and upgrade, with a Host and
//!   no hop-by-hop field.
//! - response head (to a HEAD request and to any other): the same size, prefix and
//!   suffix properties; no body for 1xx, 204, 304 and HEAD; a close-delimited body or a 101 is
//!   never reusable; re-serialised by [`write_response`] for every kind of client, it parses to
//!   the same status and a framing matching what [`write_response`] said it would send.
//! - chunked body: fed whole, byte by byte or split anywhere, the decoder reaches the same
//!   outcome (error, or the same data, completion and bytes consumed); data ≤ consumed ≤
//!   input; an unfinished body has consumed all its input; a finished one decodes the same
//!   without what follows it and re-encodes (as the proxy does) to a body that decodes to the
//!   same data. Any data encoded with [`encode_chunk_header`] decodes back to itself.

use super::{
    CHUNK_END, ChunkedDecoder, ClientBody, Forwarding, Framing, HttpError, LAST_CHUNK,
    MAX_HEAD_BYTES, MAX_HEADERS, MAX_TARGET_BYTES, RequestHead, ResponseHead, check_bytes,
    encode_chunk_header, name_is, parse_length, parse_request, parse_response, trim_ows,
    write_request, write_response,
};

/// Header slots for re-parsing a re-serialised head: it may carry a few fields more than the
/// original (framing, Host, the forwarding fields).
const REPARSE_HEADERS: usize = MAX_HEADERS + 8;

/// Prefix lengths to try below `len`: all of them for a short head, else an even sample plus
/// the last few.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    let step = if len <= 256 { 1 } else { len / 64 };
    (0..len)
        .step_by(step)
        .chain(len.saturating_sub(3)..len)
        .filter(move |c| *c < len)
}

/// What a request parse decided, comparable across parses.
type RequestSummary = (
    String,
    String,
    String,
    u8,
    usize,
    Framing,
    bool,
    bool,
    bool,
    bool,
);

fn request_summary(h: &RequestHead<'_, '_>) -> RequestSummary {
    (
        h.method.to_owned(),
        h.target.to_owned(),
        h.path.to_owned(),
        h.minor,
        h.head_len,
        h.framing,
        h.keep_alive,
        h.expect_continue,
        h.upgrade,
        h.has_host,
    )
}

fn parse_request_summary(buf: &[u8]) -> Result<Option<RequestSummary>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    parse_request(buf, &mut headers).map(|o| o.as_ref().map(request_summary))
}

/// The framing the fields of a head say, when they say exactly one thing.
fn fields_framing(headers: &[httparse::Header<'_>]) -> Option<Framing> {
    let mut lengths = headers
        .iter()
        .filter(|h| name_is(h.name, "content-length"))
        .map(|h| parse_length(h.value).ok());
    let first = lengths.next();
    let te: Vec<&[u8]> = headers
        .iter()
        .filter(|h| name_is(h.name, "transfer-encoding"))
        .map(|h| trim_ows(h.value))
        .collect();
    match (first, te.as_slice()) {
        (None, []) => Some(Framing::None),
        (Some(Some(n)), []) if lengths.all(|l| l == Some(n)) => Some(Framing::Length(n)),
        (None, [v]) if v.eq_ignore_ascii_case(b"chunked") => Some(Framing::Chunked),
        _ => None,
    }
}

/// The client's forwarding values, as the proxy builds them.
fn forwarding(tunnel: bool, has_host: bool) -> Forwarding<'static> {
    Forwarding {
        client_ip: "192.0.2.7",
        real_ip: "192.0.2.7",
        proto: "http",
        default_host: if has_host { "" } else { "10.0.0.1:8080" },
        tunnel,
        target: None,
    }
}

/// Checks every request-head property on `buf` (see the module docs).
///
/// # Panics
/// When a property fails.
pub fn check_request(buf: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = match parse_request(buf, &mut headers) {
        Ok(Some(head)) => head,
        Ok(None) => {
            assert!(
                buf.len() <= MAX_HEAD_BYTES,
                "an oversized head is incomplete"
            );
            return;
        }
        Err(_) => return,
    };
    let len = head.head_len;
    assert!(len <= buf.len() && len <= MAX_HEAD_BYTES, "head_len {len}");
    assert!(check_bytes(&buf[..len]).is_ok(), "NUL or bare CR accepted");
    assert!(head.target.len() <= MAX_TARGET_BYTES);
    assert!(head.path.starts_with('/'), "path {:?}", head.path);
    assert!(head.minor <= 1);
    assert_ne!(
        head.framing,
        Framing::Close,
        "a request is never close-delimited"
    );
    assert_eq!(
        fields_framing(head.headers),
        Some(head.framing),
        "the framing is the one reading of the fields"
    );
    if head.framing == Framing::Chunked {
        assert_eq!(head.minor, 1, "chunked on HTTP/1.0");
    }
    let hosts = head
        .headers
        .iter()
        .filter(|h| name_is(h.name, "host"))
        .count();
    assert_eq!(hosts, usize::from(head.has_host));
    assert!(head.minor == 0 || head.has_host, "HTTP/1.1 without Host");
    assert!(!head.upgrade || head.minor == 1);

    // The head does not depend on the bytes after it (a pipelined request, a body).
    let summary = request_summary(&head);
    assert_eq!(
        parse_request_summary(&buf[..len]),
        Ok(Some(summary.clone())),
        "the head alone parses the same"
    );
    // Read in any two pieces, the head is first incomplete, never refused.
    for cut in cuts(len) {
        assert_eq!(
            parse_request_summary(&buf[..cut]),
            Ok(None),
            "prefix of {cut} bytes"
        );
    }

    // Forwarded as the proxy forwards it, the head means the same to the upstream.
    let mut out = Vec::new();
    write_request(&head, &forwarding(head.upgrade, head.has_host), &mut out);
    if out.len() > MAX_HEAD_BYTES {
        return;
    }
    let mut headers2 = [httparse::EMPTY_HEADER; REPARSE_HEADERS];
    let again = match parse_request(&out, &mut headers2) {
        Ok(Some(again)) => again,
        other => panic!(
            "the forwarded head {:?} does not parse: {other:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(again.head_len, out.len());
    assert_eq!(again.method, head.method);
    assert_eq!(again.target, head.target);
    assert_eq!(again.path, head.path);
    assert_eq!(again.minor, 1);
    assert_eq!(again.framing, head.framing);
    assert_eq!(again.upgrade, head.upgrade);
    assert!(again.has_host);
    assert!(!again.expect_continue, "Expect is answered by the proxy");
    for h in again.headers {
        let hop = ["keep-alive", "proxy-connection", "te", "trailer", "expect"]
            .iter()
            .any(|n| name_is(h.name, n));
        assert!(!hop, "hop-by-hop field {} forwarded", h.name);
        if name_is(h.name, "connection") {
            assert!(
                head.upgrade && h.value == b"upgrade",
                "Connection forwarded"
            );
        }
    }
    let xff = again
        .headers
        .iter()
        .filter(|h| name_is(h.name, "x-forwarded-for"))
        .count();
    assert_eq!(xff, 1, "one X-Forwarded-For");
}

/// Checks every response-head property on `buf`, as the answer to a HEAD request when
/// `head_request` (see the module docs).
///
/// # Panics
/// When a property fails.
pub fn check_response(buf: &[u8], head_request: bool) {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = match parse_response(buf, &mut headers, head_request) {
        Ok(Some(head)) => head,
        Ok(None) => {
            assert!(
                buf.len() <= MAX_HEAD_BYTES,
                "an oversized head is incomplete"
            );
            return;
        }
        Err(_) => return,
    };
    let len = head.head_len;
    assert!(len <= buf.len() && len <= MAX_HEAD_BYTES, "head_len {len}");
    assert!(check_bytes(&buf[..len]).is_ok(), "NUL or bare CR accepted");
    assert!(
        (100..=999).contains(&head.status),
        "status {} is not three digits",
        head.status
    );
    let no_body = head_request || head.status < 200 || head.status == 204 || head.status == 304;
    let fields = fields_framing(head.headers);
    assert!(fields.is_some(), "ambiguous framing fields accepted");
    match head.framing {
        Framing::None => assert!(no_body),
        Framing::Close => assert!(!no_body && fields == Some(Framing::None)),
        framing => assert!(!no_body && fields == Some(framing)),
    }
    if head.framing == Framing::Close || head.status == 101 {
        assert!(!head.reusable, "the connection cannot be reused");
    }

    let summary = response_summary(&head);
    assert_eq!(
        parse_response_summary(&buf[..len], head_request, MAX_HEADERS),
        Ok(Some(summary)),
        "the head alone parses the same"
    );
    for cut in cuts(len) {
        assert_eq!(
            parse_response_summary(&buf[..cut], head_request, MAX_HEADERS),
            Ok(None),
            "prefix of {cut} bytes"
        );
    }

    // Written for every kind of client, the head says what write_response says it sends.
    for client_minor in [0, 1] {
        for client_keep_alive in [false, true] {
            let mut out = Vec::new();
            let cf = write_response(&head, client_minor, client_keep_alive, &mut out);
            if out.len() > MAX_HEAD_BYTES {
                continue;
            }
            let again = parse_response_summary(&out, head_request, REPARSE_HEADERS);
            let Ok(Some((status, reason, head_len, framing, reusable))) = again else {
                panic!(
                    "the client head {:?} does not parse: {again:?}",
                    String::from_utf8_lossy(&out)
                );
            };
            assert_eq!(head_len, out.len());
            assert_eq!(status, head.status);
            assert_eq!(reason, head.reason);
            let want = match cf.body {
                ClientBody::None => Framing::None,
                ClientBody::Length(n) => Framing::Length(n),
                ClientBody::Chunked => Framing::Chunked,
                ClientBody::Dechunk | ClientBody::UntilClose => Framing::Close,
            };
            assert_eq!(framing, want, "client {client_minor} {client_keep_alive}");
            assert_eq!(
                reusable, !cf.close,
                "client {client_minor} {client_keep_alive}"
            );
            if client_minor == 0 {
                assert_ne!(
                    cf.body,
                    ClientBody::Chunked,
                    "chunked to an HTTP/1.0 client"
                );
            }
            if !client_keep_alive && !head.is_interim() {
                assert!(cf.close);
            }
        }
    }
}

type ResponseSummary = (u16, String, usize, Framing, bool);

fn response_summary(h: &ResponseHead<'_, '_>) -> ResponseSummary {
    (
        h.status,
        h.reason.to_owned(),
        h.head_len,
        h.framing,
        h.reusable,
    )
}

fn parse_response_summary(
    buf: &[u8],
    head_request: bool,
    slots: usize,
) -> Result<Option<ResponseSummary>, HttpError> {
    let mut headers = vec![httparse::EMPTY_HEADER; slots];
    parse_response(buf, &mut headers, head_request).map(|o| o.as_ref().map(response_summary))
}

/// Where feeding a chunked body stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decoded {
    /// The data pieces, as the decoder returned them.
    pieces: Vec<Vec<u8>>,
    /// The last chunk and the trailers were read.
    done: bool,
    /// Bytes of input the decoder took.
    consumed: usize,
}

impl Decoded {
    fn data(&self) -> Vec<u8> {
        self.pieces.concat()
    }
}

/// Feeds `input` to a decoder in pieces ending at each of `ends` (then the rest), the way the
/// proxy's body relay does: append to a buffer, decode until nothing is used or the body is
/// done, drop what was used.
fn feed(input: &[u8], ends: &[usize]) -> Result<Decoded, HttpError> {
    let mut dec = ChunkedDecoder::new();
    let mut pieces = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut consumed = 0;
    let mut start = 0;
    for end in ends.iter().copied().chain([input.len()]) {
        let end = end.clamp(start, input.len());
        pending.extend_from_slice(&input[start..end]);
        start = end;
        let mut pos = 0;
        while !dec.is_done() {
            let (used, data) = dec.decode(&pending[pos..])?;
            assert!(used <= pending.len() - pos, "used more than given");
            if let Some(r) = data {
                assert!(r.end <= used && !r.is_empty(), "range {r:?} outside {used}");
                pieces.push(pending[pos + r.start..pos + r.end].to_vec());
            }
            pos += used;
            if used == 0 {
                break;
            }
        }
        pending.drain(..pos);
        consumed += pos;
    }
    Ok(Decoded {
        pieces,
        done: dec.is_done(),
        consumed,
    })
}

/// Checks every chunked-decoder property on `input` (see the module docs).
///
/// # Panics
/// When a property fails.
pub fn check_chunked(input: &[u8]) {
    let whole = feed(input, &[]);
    let bytewise: Vec<usize> = (1..input.len()).collect();
    assert_eq!(
        feed(input, &bytewise).map(|d| (d.data(), d.done, d.consumed)),
        whole.clone().map(|d| (d.data(), d.done, d.consumed)),
        "byte by byte"
    );
    for cut in cuts(input.len()) {
        assert_eq!(
            feed(input, &[cut]).map(|d| (d.data(), d.done, d.consumed)),
            whole.clone().map(|d| (d.data(), d.done, d.consumed)),
            "split at {cut}"
        );
    }
    let Ok(whole) = whole else { return };
    let data = whole.data();
    assert!(data.len() <= whole.consumed && whole.consumed <= input.len());
    if !whole.done {
        assert_eq!(
            whole.consumed,
            input.len(),
            "unfinished body held input back"
        );
        return;
    }
    assert_eq!(
        feed(&input[..whole.consumed], &[]),
        Ok(whole.clone()),
        "the body alone decodes the same"
    );
    // The proxy re-encodes each piece it decodes; that body must decode to the same data.
    let mut again = Vec::new();
    for piece in &whole.pieces {
        encode_chunk_header(&mut again, piece.len());
        again.extend_from_slice(piece);
        again.extend_from_slice(CHUNK_END);
    }
    again.extend_from_slice(LAST_CHUNK);
    let redecoded = feed(&again, &[]).map(|d| (d.data(), d.done, d.consumed));
    assert_eq!(redecoded, Ok((data, true, again.len())), "re-encoded body");
}

/// Encodes `data` as a chunked body in pieces of several sizes and checks that each decodes,
/// in any split, back to `data`.
///
/// # Panics
/// When a property fails.
pub fn check_chunk_encoding(data: &[u8]) {
    let size = data.first().map_or(1, |b| usize::from(*b) + 1);
    for piece_len in [1, size, data.len().max(1)] {
        let mut body = Vec::new();
        for piece in data.chunks(piece_len) {
            encode_chunk_header(&mut body, piece.len());
            body.extend_from_slice(piece);
            body.extend_from_slice(CHUNK_END);
        }
        body.extend_from_slice(LAST_CHUNK);
        body.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let end = body.len() - 16;
        for ends in [vec![], vec![end / 2], (1..body.len()).collect()] {
            let d = feed(&body, &ends).map(|d| (d.data(), d.done, d.consumed));
            assert_eq!(d, Ok((data.to_vec(), true, end)), "pieces of {piece_len}");
        }
    }
}
