//! The real `skr8tr_serve` binary on loopback, driven by raw sockets: validators and 304s,
//! ranges, precompressed siblings, Cache-Control, the `--spa` fallback, and refusals of
//! traversal and symlink escapes on one keep-alive connection.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::util::client::Conn;

struct Serve {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A site: `index.html`, `app.js` with `.gz` and `.br` siblings, 1 MiB `big.bin`, a symlink
/// out of the root; served with `flags`.
fn serve(flags: &[&str]) -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("app.js"), "console.log('plain')").unwrap();
    std::fs::write(root.join("app.js.gz"), b"GZ-BYTES").unwrap();
    std::fs::write(root.join("app.js.br"), b"BR-BYTES").unwrap();
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), root.join("leak.txt")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_skr8tr_serve"))
        .arg("--dir")
        .arg(root)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--threads", "1"])
        .args(flags)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "skr8tr_serve did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Serve {
        child,
        port,
        _dir: dir,
        _outside: outside,
    }
}

fn get(c: &mut Conn, path: &str, extra: &str) -> crate::util::client::Resp {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes());
    c.read(false)
}

#[test]
fn validators_answer_304_and_ranges_206_or_416() {
    let s = serve(&["--max-age", "3600"]);
    let mut c = Conn::open(s.port);
    let first = get(&mut c, "/index.html", "");
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("cache-control").as_deref(),
        Some("public, max-age=3600")
    );
    assert_eq!(first.header("accept-ranges").as_deref(), Some("bytes"));
    let etag = first.header("etag").expect("an ETag");
    let modified = first.header("last-modified").expect("a Last-Modified");
    let again = get(&mut c, "/index.html", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.clone()));
    let by_date = get(
        &mut c,
        "/index.html",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(by_date.status, 304);
    let stale = get(&mut c, "/index.html", "If-None-Match: \"other\"\r\n");
    assert_eq!(
        (stale.status, stale.text().as_str()),
        (200, "<h1>home</h1>")
    );

    let part = get(&mut c, "/big.bin", "Range: bytes=1000-1009\r\n");
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range").as_deref(),
        Some("bytes 1000-1009/1048576")
    );
    let want: Vec<u8> = (1000..1010u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(part.body, want);
    let tail = get(&mut c, "/big.bin", "Range: bytes=-3\r\n");
    assert_eq!((tail.status, tail.body.len()), (206, 3));
    let past = get(&mut c, "/big.bin", "Range: bytes=2000000-\r\n");
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range").as_deref(),
        Some("bytes */1048576")
    );
    let big_etag = get(&mut c, "/big.bin", "Range: bytes=0-0\r\n")
        .header("etag")
        .unwrap();
    let changed = get(
        &mut c,
        "/big.bin",
        "Range: bytes=0-0\r\nIf-Range: \"not-it\"\r\n",
    );
    assert_eq!((changed.status, changed.body.len()), (200, 1 << 20));
    let same = get(
        &mut c,
        "/big.bin",
        &format!("Range: bytes=0-0\r\nIf-Range: {big_etag}\r\n"),
    );
    assert_eq!(same.status, 206);
    // The whole megabyte arrives intact on the same connection.
    let whole = get(&mut c, "/big.bin", "");
    let all: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    assert!(whole.body == all, "1 MiB body differs");
}

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    let s = serve(&[]);
    let mut c = Conn::open(s.port);
    let br = get(&mut c, "/app.js", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(br.text(), "BR-BYTES");
    assert_eq!(br.header("content-encoding").as_deref(), Some("br"));
    assert_eq!(br.header("vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(
        br.header("content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(br.header("cache-control").as_deref(), Some("no-cache"));
    let gz = get(&mut c, "/app.js", "Accept-Encoding: gzip\r\n");
    assert_eq!(gz.text(), "GZ-BYTES");
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    assert_ne!(gz.header("etag"), br.header("etag"));
    let identity = get(
        &mut c,
        "/app.js",
        "Accept-Encoding: br;q=0, gzip;q=0, deflate\r\n",
    );
    assert_eq!(identity.text(), "console.log('plain')");
    assert_eq!(identity.header("content-encoding"), None);
    // Accepting gzip but not br: the .gz, and the identity to whoever asks for none.
    let plain = get(&mut c, "/app.js", "");
    assert_eq!(plain.text(), "console.log('plain')");
    assert_eq!(plain.header("content-encoding"), None);
    let none = get(&mut c, "/index.html", "Accept-Encoding: gzip\r\n");
    assert_eq!(none.header("vary"), None);
}

#[test]
fn spa_falls_back_to_index_but_never_for_an_escape() {
    let s = serve(&["--spa"]);
    let mut c = Conn::open(s.port);
    let route = get(&mut c, "/settings/profile", "");
    assert_eq!(
        (route.status, route.text().as_str()),
        (200, "<h1>home</h1>")
    );
    assert_eq!(route.header("cache-control").as_deref(), Some("no-cache"));
    for escape in [
        "/leak.txt",
        "/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/a/..%2f..%2fetc/passwd",
    ] {
        let r = get(&mut c, escape, "");
        assert!(r.status == 404 || r.status == 400, "{escape}: {}", r.status);
        assert!(!r.text().contains("top secret"), "{escape}");
    }
    assert_eq!(get(&mut c, "/a%00b", "").status, 400);
    c.send(b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read(false).status, 405);
    // Without --spa a missing path is 404.
    let plain = serve(&[]);
    let mut c = Conn::open(plain.port);
    assert_eq!(get(&mut c, "/settings/profile", "").status, 404);
}
