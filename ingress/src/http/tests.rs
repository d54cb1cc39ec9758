//! Unit tests of the HTTP syntax: strict request parsing, rewriting, response framing, chunked
//! decoding.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

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
fn start_line_limits_do_not_depend_on_read_boundaries() {
    // A 23-byte method with a target at the limit: accepted whole, and every prefix of it is
    // merely incomplete (it used to be refused as "target too long" when it came in pieces).
    let method = "X".repeat(23);
    let raw = format!(
        "{method} /{} HTTP/1.1\r\nHost: a\r\n\r\n",
        "a".repeat(MAX_TARGET_BYTES - 1)
    );
    assert!(parse(&raw).unwrap().is_some());
    for cut in [40, 8000, 8200, 8220, 8230, raw.len() - 1] {
        assert_eq!(parse(&raw[..cut]).unwrap(), None, "prefix of {cut} bytes");
    }
    // One byte more of target: 414 as soon as it shows, whole or in pieces.
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
        "a".repeat(MAX_TARGET_BYTES)
    );
    assert_eq!(err(&long), HttpError::TargetTooLong);
    assert_eq!(
        err(&long[..MAX_TARGET_BYTES + 10]),
        HttpError::TargetTooLong
    );
    // A method longer than any real one: 400, whole or in pieces.
    let silly = format!(
        "{} / HTTP/1.1\r\nHost: a\r\n\r\n",
        "M".repeat(MAX_METHOD_BYTES + 1)
    );
    assert_eq!(err(&silly), HttpError::BadStartLine);
    assert_eq!(err(&silly[..MAX_METHOD_BYTES + 1]), HttpError::BadStartLine);
    assert_eq!(parse(&silly[..MAX_METHOD_BYTES]).unwrap(), None);
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

/// The upstream head the proxy writes for `raw`, from client 9.9.9.9 over plain HTTP.
fn rewrite(raw: &[u8]) -> String {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let head = parse_request(raw, &mut headers).unwrap().unwrap();
    let mut out = Vec::new();
    let fwd = Forwarding {
        client_ip: "9.9.9.9",
        real_ip: "9.9.9.9",
        proto: "http",
        default_host: "",
        tunnel: false,
        target: None,
    };
    write_request(&head, &fwd, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn request_rewrite() {
    let raw = b"POST /p HTTP/1.1\r\nHost: h\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\nX-Forwarded-For: 1.1.1.1\r\nContent-Length: 2\r\nX-E2e: yes\r\n\r\n";
    assert_eq!(
        rewrite(raw),
        "POST /p HTTP/1.1\r\nHost: h\r\nX-E2e: yes\r\nContent-Length: 2\r\nX-Forwarded-For: 1.1.1.1, 9.9.9.9\r\nX-Real-IP: 9.9.9.9\r\nX-Forwarded-Proto: http\r\n\r\n"
    );
}

#[test]
fn connection_cannot_strip_host() {
    // Found by the fuzz properties: `Connection: host` used to drop Host, and the upstream got
    // an HTTP/1.1 request without one.
    let raw = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: host, X-A\r\nX-A: 1\r\n\r\n";
    assert_eq!(
        rewrite(raw),
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

// The properties of `props` (also the cargo-fuzz targets' checks) on every `cargo test`: the
// fuzz seed corpus, then arbitrary bytes and soups of the tokens the parsers care about.

/// Every file of the seed corpus of a fuzz target.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path.display().to_string(), bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{}: seed corpus missing", dir.display());
    files
}

#[test]
fn fuzz_corpus_holds_the_properties() {
    for (name, bytes) in corpus("http_request") {
        eprintln!("{name}");
        props::check_request(&bytes);
    }
    for (name, bytes) in corpus("http_response") {
        eprintln!("{name}");
        props::check_response(&bytes, false);
        props::check_response(&bytes, true);
    }
    for (name, bytes) in corpus("chunked") {
        eprintln!("{name}");
        props::check_chunked(&bytes);
        props::check_chunk_encoding(&bytes);
    }
}

#[test]
fn corpus_seeds_mean_what_their_names_say() {
    // A seed named `reject-*` must be refused, `ok-*` accepted and `partial-*` incomplete, so
    // the corpus keeps covering both sides of every rule.
    for (name, bytes) in corpus("http_request") {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let res = parse_request(&bytes, &mut headers);
        check_seed_name(&name, res.map(|o| o.is_some()));
    }
    for (name, bytes) in corpus("http_response") {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let res = parse_response(&bytes, &mut headers, false);
        check_seed_name(&name, res.map(|o| o.is_some()));
    }
    for (name, bytes) in corpus("chunked") {
        check_seed_name(&name, decode_all(&bytes, bytes.len().max(1)).map(|d| d.1));
    }
}

fn check_seed_name(path: &str, complete: Result<bool, HttpError>) {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.starts_with("reject-") {
        assert!(complete.is_err(), "{name}: {complete:?}");
    } else if name.starts_with("ok-") {
        assert_eq!(complete, Ok(true), "{name}");
    } else if name.starts_with("partial-") {
        assert_eq!(complete, Ok(false), "{name}");
    }
}

const LINE_ENDS: &[&[u8]] = &[b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b""];

const FIELDS: &[&[u8]] = &[
    b"Host: a",
    b"Host: a",
    b"host: b",
    b"Host:",
    b"Content-Length: 5",
    b"content-length: 0",
    b"Content-Length: 1",
    b"Content-Length:  5 ",
    b"Content-Length: +1",
    b"Content-Length: 5, 5",
    b"Content-Length: 18446744073709551616",
    b"Transfer-Encoding: chunked",
    b"transfer-encoding: Chunked",
    b"Transfer-Encoding: gzip",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, identity",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: Upgrade",
    b"Connection: close, X-A",
    b"Connection: host",
    b"Connection: content-length",
    b"Connection: upgrade, x-forwarded-for",
    b"Upgrade: websocket",
    b"Expect: 100-continue",
    b"X-A: 1",
    b"X-Forwarded-For: 198.51.100.1",
    b"X-Forwarded-For:",
    b"TE: trailers",
    b"Keep-Alive: timeout=5",
    b"Trailer: X-T",
    b"Proxy-Connection: keep-alive",
    b" folded",
    b"\tfolded",
    b"X : a",
    b"X\0: a",
    b"X: a\0",
    b"X: a\rb",
    b"X: \x80\xff",
    b"X:\ta\t",
    b": empty",
    b"X",
];

/// A request line of usual and unusual parts.
fn request_line() -> impl Strategy<Value = Vec<u8>> + Clone {
    let method = prop::sample::select(vec![
        &b"GET"[..],
        b"POST",
        b"HEAD",
        b"OPTIONS",
        b"PUT",
        b"CONNECT",
        b"G\0T",
        b"get",
        b"",
    ]);
    let target = prop::sample::select(vec![
        &b"/"[..],
        b"/a/b?c=d",
        b"*",
        b"http://h/x",
        b"https://h",
        b"h:80",
        b"foo",
        b"/\x80",
        b"/ /",
    ]);
    let version = prop::sample::select(vec![
        &b" HTTP/1.1"[..],
        b" HTTP/1.1",
        b" HTTP/1.0",
        b" HTTP/1.2",
        b" HTTP/2.0",
        b"  HTTP/1.1",
        b" http/1.1",
        b"",
    ]);
    (method, target, version).prop_map(|(m, t, v)| [m, b" ", t, v].concat())
}

/// A status line of usual and unusual parts.
fn status_line() -> impl Strategy<Value = Vec<u8>> + Clone {
    let version = prop::sample::select(vec![
        &b"HTTP/1.1 "[..],
        b"HTTP/1.1 ",
        b"HTTP/1.0 ",
        b"HTTP/2 ",
    ]);
    let status = prop::sample::select(vec![
        &b"200"[..],
        b"200",
        b"204",
        b"304",
        b"101",
        b"100",
        b"103",
        b"404",
        b"000",
        b"099",
        b"999",
        b"2000",
        b"20",
    ]);
    let reason = prop::sample::select(vec![&b" OK"[..], b" OK", b"", b" ", b" \x80", b" A\tB"]);
    (version, status, reason).prop_map(|(v, s, r)| [v, s, r].concat())
}

/// A head: a start line, fields, the empty line, then a few bytes of whatever follows.
fn head(start: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let eol = prop::sample::select(LINE_ENDS);
    let field = (prop::sample::select(FIELDS), eol.clone());
    let tail = prop::sample::select(vec![
        &b""[..],
        b"hello",
        b"0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: b\r\n\r\n",
        b"\r\n",
    ]);
    (start, eol.clone(), vec(field, 0..8), eol, tail).prop_map(|(s, e1, fields, e2, tail)| {
        let mut out = s;
        out.extend_from_slice(e1);
        for (f, e) in fields {
            out.extend_from_slice(f);
            out.extend_from_slice(e);
        }
        out.extend_from_slice(e2);
        out.extend_from_slice(tail);
        out
    })
}

/// Any bytes, a soup of head tokens, or a mostly well-formed head.
fn head_bytes(start: impl Strategy<Value = Vec<u8>> + Clone) -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        prop::sample::select(FIELDS).prop_map(<[u8]>::to_vec),
        prop::sample::select(LINE_ENDS).prop_map(<[u8]>::to_vec),
        start.clone(),
        vec(any::<u8>(), 0..4),
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..256),
        2 => vec(token, 0..16).prop_map(|t| t.concat()),
        5 => head(start),
    ]
}

/// A chunked body: well-formed pieces (sizes, extensions, trailers), sometimes with one byte
/// changed, or a soup of chunk tokens, or any bytes.
fn chunked_bytes() -> impl Strategy<Value = Vec<u8>> {
    let ext = prop::sample::select(vec![&b""[..], b"", b";a=b", b";", b";\0", b";a\nb"]);
    let trailer = prop::sample::select(vec![&b""[..], b"", b"X-T: 1\r\n", b"X\r\n", b"X-T: 1\n"]);
    let body = (
        vec((vec(any::<u8>(), 1..24), ext), 0..5),
        trailer,
        vec(any::<u8>(), 0..8),
        option::of((any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(pieces, trailer, after, change)| {
            let mut out = Vec::new();
            for (data, ext) in pieces {
                encode_chunk_header(&mut out, data.len());
                out.truncate(out.len() - 2);
                out.extend_from_slice(ext);
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&data);
                out.extend_from_slice(CHUNK_END);
            }
            out.extend_from_slice(b"0\r\n");
            out.extend_from_slice(trailer);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&after);
            if let Some((at, b)) = change {
                let i = at.index(out.len());
                out[i] = b;
            }
            out
        });
    let token = prop::sample::select(vec![
        &b"0"[..],
        b"1",
        b"5",
        b"a",
        b"F",
        b"00000000000000001",
        b"ffffffffffffffff",
        b"10000000000000000",
        b"\r\n",
        b"\r\n",
        b"\n",
        b"\r",
        b";x=y",
        b"hello",
        b" ",
        b"X: y",
        b"\0",
        b"g",
    ]);
    prop_oneof![
        1 => vec(any::<u8>(), 0..256),
        2 => vec(token, 0..24).prop_map(|t| t.concat()),
        4 => body,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn request_properties(bytes in head_bytes(request_line())) {
        props::check_request(&bytes);
    }

    #[test]
    fn response_properties(bytes in head_bytes(status_line()), head_request: bool) {
        props::check_response(&bytes, head_request);
    }

    #[test]
    fn chunked_properties(bytes in chunked_bytes()) {
        props::check_chunked(&bytes);
    }

    #[test]
    fn chunk_encoding_round_trips(data in vec(any::<u8>(), 0..300)) {
        props::check_chunk_encoding(&data);
    }
}
