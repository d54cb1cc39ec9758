//! SPEC §5 strict framing: each of these is answered 400/414/431, the connection is closed,
//! and the backend sees nothing (in particular no second, smuggled request).

use crate::util::backend::Backend;
use crate::util::client::Conn;
use crate::util::ingress;

/// Sends `raw`, expects `status` and a close, and that the backend saw no request at all.
fn rejected(raw: &str, status: u16) {
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    let mut c = Conn::open(proxy.port());
    c.send(raw.as_bytes());
    let resp = c.read(false);
    assert_eq!(resp.status, status, "for {raw:?}: {}", resp.head);
    assert_eq!(
        resp.header("connection").as_deref(),
        Some("close"),
        "{raw:?}"
    );
    assert!(c.is_closed(), "connection kept after {raw:?}");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        backend.requests().is_empty(),
        "backend saw {:?}",
        backend.raw_text()
    );
    assert!(
        backend.raw_text().is_empty(),
        "backend got bytes: {:?}",
        backend.raw_text()
    );
    proxy.stop();
}

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn content_length_with_transfer_encoding() {
    rejected(
        &format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}"
        ),
        400,
    );
}

#[test]
fn transfer_encoding_then_content_length() {
    rejected(
        &format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n{SMUGGLED}"
        ),
        400,
    );
}

#[test]
fn differing_content_lengths() {
    rejected(
        &format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n{SMUGGLED}"
        ),
        400,
    );
}

#[test]
fn content_length_list() {
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nx",
        400,
    );
}

#[test]
fn signed_content_length() {
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
        400,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        400,
    );
}

#[test]
fn non_numeric_content_length() {
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n",
        400,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
        400,
    );
}

#[test]
fn overflowing_content_length() {
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        400,
    );
}

#[test]
fn transfer_encoding_other_than_chunked() {
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        400,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        400,
    );
    rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn transfer_encoding_on_http10() {
    rejected(
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn obs_fold() {
    rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400);
}

#[test]
fn bare_cr() {
    rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400);
}

#[test]
fn nul_byte() {
    rejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400);
}

#[test]
fn whitespace_before_colon() {
    rejected(
        &format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 36\r\n\r\n{SMUGGLED}"),
        400,
    );
    rejected("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400);
}

#[test]
fn invalid_header_name() {
    rejected("GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n", 400);
    rejected("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", 400);
}

#[test]
fn missing_host_on_http11() {
    rejected("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400);
}

#[test]
fn duplicate_host() {
    rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

#[test]
fn malformed_request_lines() {
    rejected("GET /\r\nHost: x\r\n\r\n", 400);
    rejected("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    rejected("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400);
    rejected("G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    rejected("GET example.com HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn header_block_too_large() {
    let big = "a".repeat(70 * 1024);
    rejected(
        &format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
        431,
    );
}

#[test]
fn too_many_headers() {
    let fields: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    rejected(&format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n"), 431);
}

#[test]
fn target_too_long() {
    let path = "a".repeat(9 * 1024);
    rejected(&format!("GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n"), 414);
}

#[test]
fn bad_chunk_size_closes_and_smuggles_nothing() {
    // The head goes upstream before the body is read; the bad chunk then fails the request,
    // the client gets 400 and a close, and nothing after it reaches the backend.
    let backend = Backend::ok();
    let proxy = ingress(backend.addr);
    for body in [
        "zz\r\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0x\r\n\r\n",
        "3\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffff\r\n",
    ] {
        let mut c = Conn::open(proxy.port());
        c.send(
            format!(
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}{SMUGGLED}"
            )
            .as_bytes(),
        );
        let resp = c.read(false);
        assert_eq!(resp.status, 400, "{body:?}");
        assert!(c.is_closed());
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        !backend.raw_text().contains("smuggled"),
        "{}",
        backend.raw_text()
    );
    proxy.stop();
}
