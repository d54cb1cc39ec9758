//! Unit tests of the HTTP syntax: strict request parsing, rewriting, response framing, chunked
//! decoding.

use super::*;

fn parse(raw: &str) -> Result<Option<(Framing, bool, usize)>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    parse_request(raw.as_bytes(), &mut headers)
        .map(|o| o.map(|h| (h.framing, h.keep_alive, h.head_len)))
}

fn err(raw: &str) -> HttpError {
    parse(raw).expect_err(raw)
}

#[test]
fn framing_and_keep_alive() {
    assert_eq!(
        parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap(),
        Some((Framing::None, true, 27))
    );
    assert_eq!(
        parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap()
            .0,
        Framing::Length(5)
    );
    assert_eq!(
        parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap()
            .0,
        Framing::Chunked
    );
    assert!(
        !parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap()
            .1
    );
    assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().1);
    assert!(
        parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap()
            .1
    );
    assert_eq!(parse("GET / HTTP/1.1\r\nHost: a\r\n").unwrap(), None);
}

#[test]
fn strict_rejections() {
    use HttpError::*;
    let cases: &[(&str, HttpError)] = &[
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            LengthAndChunked,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1a\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
            BadContentLength,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            BadTransferEncoding,
        ),
        (
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            BadTransferEncoding,
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            BadTransferEncoding,
        ),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", BadHeader),
        ("GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", BadHeader),
        ("GET / HTTP/1.1\r\nHost: a\r\nX\0: a\r\n\r\n", BadHeader),
        ("GET / HTTP/1.1\r\nX: a\r\n\r\n", MissingHost),
        (
            "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
            DuplicateHost,
        ),
        ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", Unsupported),
        ("GET foo HTTP/1.1\r\nHost: a\r\n\r\n", Unsupported),
    ];
    for (raw, want) in cases {
        assert_eq!(err(raw), *want, "{raw:?}");
    }
    for raw in [
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\0\r\n\r\n",
    ] {
        assert!(matches!(err(raw), BadByte | BadHeader), "{raw:?}");
    }
    assert_eq!(
        err(&format!("GET /{} HTTP/1.1\r\n", "a".repeat(9000))),
        TargetTooLong
    );
    assert_eq!(err(&format!("GET /{}", "a".repeat(9000))), TargetTooLong);
    assert_eq!(
        err(&format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(70_000))),
        HeadTooLarge
    );
    let many: String = (0..101).map(|i| format!("X{i}: v\r\n")).collect();
    assert_eq!(
        err(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
        TooManyHeaders
    );
    assert_eq!(TooManyHeaders.client_status(), 431);
    assert_eq!(TargetTooLong.client_status(), 414);
    assert_eq!(BadChunk.client_status(), 400);
}

#[test]
fn absolute_form_routes_by_path() {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse_request(
        b"GET http://h/x/y?z HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut headers,
    )
    .unwrap()
    .unwrap();
    assert_eq!(head.path, "/x/y?z");
}

#[test]
fn request_rewrite() {
    let raw = b"POST /p HTTP/1.1\r\nHost: h\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\nX-Forwarded-For: 1.1.1.1\r\nContent-Length: 2\r\nX-E2e: yes\r\n\r\n";
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse_request(raw, &mut headers).unwrap().unwrap();
    let mut out = Vec::new();
    let fwd = Forwarding {
        client_ip: "9.9.9.9",
        proto: "http",
        default_host: "",
        tunnel: false,
    };
    write_request(&head, &fwd, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /p HTTP/1.1\r\nHost: h\r\nX-E2e: yes\r\nContent-Length: 2\r\nX-Forwarded-For: 1.1.1.1, 9.9.9.9\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: http\r\n\r\n"
    );
}

#[test]
fn connection_cannot_strip_host() {
    // Found by the fuzz properties: `Connection: host` used to drop Host, and the upstream got
    // an HTTP/1.1 request without one.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: host, X-A\r\nX-A: 1\r\n\r\n";
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse_request(raw, &mut headers).unwrap().unwrap();
    let mut out = Vec::new();
    let fwd = Forwarding {
        client_ip: "9.9.9.9",
        proto: "http",
        default_host: "",
        tunnel: false,
    };
    write_request(&head, &fwd, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 9.9.9.9\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: http\r\n\r\n"
    );
}

#[test]
fn status_below_100_is_refused() {
    // Found by the fuzz properties: httparse reads `000` and `099` as statuses, which the
    // client head then carried as `0` and `99`.
    for raw in [
        "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
    ] {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        assert_eq!(
            parse_response(raw.as_bytes(), &mut headers, false).unwrap_err(),
            HttpError::BadStartLine,
            "{raw:?}"
        );
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse_response(b"HTTP/1.1 100 Continue\r\n\r\n", &mut headers, false);
    assert_eq!(head.unwrap().unwrap().status, 100);
}

#[test]
fn response_framing() {
    let parse_resp = |raw: &str, head: bool| {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        parse_response(raw.as_bytes(), &mut headers, head)
            .map(|o| o.map(|r| (r.status, r.framing, r.reusable)))
    };
    assert_eq!(
        parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false).unwrap(),
        Some((200, Framing::Length(3), true))
    );
    assert_eq!(
        parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).unwrap(),
        Some((200, Framing::None, true))
    );
    assert_eq!(
        parse_resp("HTTP/1.1 204 No\r\n\r\n", false).unwrap(),
        Some((204, Framing::None, true))
    );
    assert_eq!(
        parse_resp("HTTP/1.1 304 No\r\n\r\n", false).unwrap(),
        Some((304, Framing::None, true))
    );
    assert_eq!(
        parse_resp("HTTP/1.1 200 OK\r\n\r\n", false).unwrap(),
        Some((200, Framing::Close, false))
    );
    assert_eq!(
        parse_resp("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false).unwrap(),
        Some((200, Framing::Length(1), false))
    );
    assert_eq!(
        parse_resp(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false
        )
        .unwrap(),
        Some((200, Framing::Chunked, true))
    );
    assert!(
        parse_resp(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            false
        )
        .is_err()
    );
    assert!(
        parse_resp(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            false
        )
        .is_err()
    );
    assert!(parse_resp("HTTP/1.1 2000 OK\r\n\r\n", false).is_err());
    assert!(parse_resp("garbage\r\n\r\n", false).is_err());
}

#[test]
fn response_rewrite_for_an_http10_client() {
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: X-A\r\nX-A: 1\r\nX-B: 2\r\n\r\n";
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse_response(raw, &mut headers, false).unwrap().unwrap();
    let mut out = Vec::new();
    let framing = write_response(&head, 0, true, &mut out);
    assert_eq!(
        framing,
        ClientFraming {
            body: ClientBody::Dechunk,
            close: true
        }
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\nX-B: 2\r\nConnection: close\r\n\r\n"
    );
}

fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), HttpError> {
    let mut dec = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for piece in input.chunks(step) {
        pending.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            let (used, data) = dec.decode(&pending[pos..])?;
            if let Some(r) = data {
                out.extend_from_slice(&pending[pos + r.start..pos + r.end]);
            }
            pos += used;
            if used == 0 || dec.is_done() {
                break;
            }
        }
        pending.drain(..pos);
    }
    Ok((out, dec.is_done()))
}

#[test]
fn chunked_decoding_in_any_split() {
    let body = b"5;a=b\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
    for step in 1..body.len() {
        assert_eq!(
            decode_all(body, step).unwrap(),
            (b"hello 0123456789".to_vec(), true),
            "step {step}"
        );
    }
    for bad in [
        &b"g\r\n"[..],
        b"\r\n",
        b"5\nhello\r\n",
        b"2\r\nabc\r\n",
        b"00000000000000001\r\n",
        b"1 \r\n",
        b"1\r\na\n",
    ] {
        assert_eq!(
            decode_all(bad, 64),
            Err(HttpError::BadChunk),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut out = Vec::new();
    encode_chunk_header(&mut out, 255);
    assert_eq!(out, b"ff\r\n");
}

#[test]
fn error_response() {
    let mut out = Vec::new();
    write_error(&mut out, 404, "No route for this path.", false, false);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\n\r\nNo route for this path.\n"
    );
}
