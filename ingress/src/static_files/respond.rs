//! What to answer for a file, as a pure function of the request's conditional and range
//! fields and the file's metadata: 200, 206 with one range, 304 (`If-None-Match`, else
//! `If-Modified-Since`), 416; and the head that says so (ETag, Last-Modified, Cache-Control,
//! Accept-Ranges, Content-Encoding, Vary, Content-Range).
//!
//! Owns no socket and no file: `mod.rs` opens the file, asks [`decide`], writes [`write_head`]
//! and then the bytes of [`Reply::body`]. A request for several ranges gets the whole file (as
//! RFC 9110 allows), and a `Range` that does not parse is ignored, as is one whose `If-Range`
//! no longer matches.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::resolve::Coding;
use crate::http::reason;

/// The request fields that decide the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub range: Option<String>,
    pub if_range: Option<String>,
}

/// The representation to send: one file, maybe a precompressed sibling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Representation {
    pub len: u64,
    pub modified: SystemTime,
    /// A file identity that changes when it is replaced (the inode).
    pub inode: u64,
    pub coding: Option<Coding>,
}

impl Representation {
    /// A strong ETag: size, modification time and inode, and the coding (each variant has
    /// its own).
    #[must_use]
    pub fn etag(&self) -> String {
        let nanos = self
            .modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let coding = self.coding.map_or("", |c| match c {
            Coding::Br => "-br",
            Coding::Gzip => "-gz",
        });
        format!("\"{:x}-{nanos:x}-{:x}{coding}\"", self.len, self.inode)
    }

    /// Whole seconds since the epoch, as HTTP dates have them.
    fn modified_secs(&self) -> u64 {
        self.modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// `Last-Modified`.
    #[must_use]
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(self.modified_secs()))
    }
}

/// What to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// The bytes to send, `(offset, length)`; `None` for 304 and 416.
    pub body: Option<(u64, u64)>,
}

/// Decides the answer to a GET or HEAD of `rep`.
#[must_use]
pub fn decide(c: &Conditions, rep: &Representation) -> Reply {
    let etag = rep.etag();
    let not_modified = Reply {
        status: 304,
        body: None,
    };
    if let Some(inm) = &c.if_none_match {
        if etag_listed(inm, &etag) {
            return not_modified;
        }
    } else if let Some(since) = c.if_modified_since.as_deref().and_then(http_secs)
        && rep.modified_secs() <= since
    {
        return not_modified;
    }
    let whole = Reply {
        status: 200,
        body: Some((0, rep.len)),
    };
    let Some(range) = &c.range else {
        return whole;
    };
    if let Some(if_range) = &c.if_range
        && !if_range_holds(if_range.trim(), &etag, rep)
    {
        return whole;
    }
    match parse_range(range, rep.len) {
        RangeSpec::One(start, len) => Reply {
            status: 206,
            body: Some((start, len)),
        },
        RangeSpec::Unsatisfiable => Reply {
            status: 416,
            body: None,
        },
        RangeSpec::Ignore => whole,
    }
}

/// Whether `etag` is in an `If-None-Match` list (weak comparison) or the list is `*`.
fn etag_listed(list: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// `If-Range`: a strong ETag equal to ours, or exactly our Last-Modified date.
fn if_range_holds(if_range: &str, etag: &str, rep: &Representation) -> bool {
    if if_range.starts_with('"') || if_range.starts_with("W/") {
        if_range == etag
    } else {
        http_secs(if_range) == Some(rep.modified_secs())
    }
}

fn http_secs(date: &str) -> Option<u64> {
    httpdate::parse_http_date(date.trim())
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// A `Range` field read against a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// One satisfiable range: offset and length.
    One(u64, u64),
    /// Well-formed but outside the representation (416).
    Unsatisfiable,
    /// Malformed, another unit, or several ranges: send the whole.
    Ignore,
}

/// Parses `bytes=a-b`, `bytes=a-` or `bytes=-n` against `len`.
#[must_use]
pub fn parse_range(field: &str, len: u64) -> RangeSpec {
    let Some((unit, set)) = field.trim().split_once('=') else {
        return RangeSpec::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // -n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                RangeSpec::Unsatisfiable
            } else {
                let n = n.min(len);
                RangeSpec::One(len - n, n)
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|e| e < start) {
                return RangeSpec::Ignore;
            }
            if start >= len {
                return RangeSpec::Unsatisfiable;
            }
            let end = end.map_or(len - 1, |e| e.min(len - 1));
            RangeSpec::One(start, end - start + 1)
        }
        _ => RangeSpec::Ignore,
    }
}

/// How the response names itself besides its status.
#[derive(Debug, Clone, Copy)]
pub struct HeadFields<'a> {
    pub content_type: &'a str,
    /// `Cache-Control`.
    pub cache_control: &'a str,
    /// Whether precompressed variants exist (then `Vary: Accept-Encoding`).
    pub varies: bool,
    /// `Connection: close`.
    pub close: bool,
}

/// Appends the status line and fields of `reply` for `rep`.
pub fn write_head(out: &mut Vec<u8>, reply: &Reply, rep: &Representation, f: &HeadFields<'_>) {
    let status = reply.status;
    let reason = match status {
        206 => "Partial Content",
        304 => "Not Modified",
        416 => "Range Not Satisfiable",
        s => reason(s),
    };
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    let mut field = |name: &str, value: &str| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    field("ETag", &rep.etag());
    field("Last-Modified", &rep.last_modified());
    field("Cache-Control", f.cache_control);
    if f.varies {
        field("Vary", "Accept-Encoding");
    }
    match (status, reply.body) {
        (304, _) => {}
        (416, _) => {
            field("Content-Range", &format!("bytes */{}", rep.len));
            field("Content-Length", "0");
        }
        (_, Some((offset, len))) => {
            field("Content-Type", f.content_type);
            if let Some(coding) = rep.coding {
                field("Content-Encoding", coding.token());
            }
            field("Accept-Ranges", "bytes");
            if status == 206 {
                let last = offset + len.saturating_sub(1);
                field(
                    "Content-Range",
                    &format!("bytes {offset}-{last}/{}", rep.len),
                );
            }
            field("Content-Length", &len.to_string());
        }
        (_, None) => field("Content-Length", "0"),
    }
    if f.close {
        field("Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep() -> Representation {
        Representation {
            len: 1000,
            // 2026-12-08T00:00:00.5Z
            modified: UNIX_EPOCH + Duration::from_millis(1_796_688_000_500),
            inode: 42,
            coding: None,
        }
    }

    fn with(f: impl FnOnce(&mut Conditions)) -> Reply {
        let mut c = Conditions::default();
        f(&mut c);
        decide(&c, &rep())
    }

    #[test]
    fn etag_and_last_modified() {
        let r = rep();
        assert_eq!(r.last_modified(), "Tue, 08 Dec 2026 00:00:00 GMT");
        let mut gz = r.clone();
        gz.coding = Some(Coding::Gzip);
        assert_ne!(r.etag(), gz.etag());
        assert!(r.etag().starts_with("\"3e8-") && r.etag().ends_with("-2a\""));
    }

    #[test]
    fn not_modified_by_etag_first_then_by_date() {
        let etag = rep().etag();
        assert_eq!(with(|c| c.if_none_match = Some(etag.clone())).status, 304);
        assert_eq!(
            with(|c| c.if_none_match = Some(format!("\"x\", W/{etag}"))).status,
            304
        );
        assert_eq!(with(|c| c.if_none_match = Some("*".into())).status, 304);
        assert_eq!(with(|c| c.if_none_match = Some("\"x\"".into())).status, 200);
        let date = rep().last_modified();
        assert_eq!(
            with(|c| c.if_modified_since = Some(date.clone())).status,
            304
        );
        assert_eq!(
            with(|c| c.if_modified_since = Some("Mon, 07 Dec 2026 23:59:59 GMT".into())).status,
            200
        );
        // An ETag that does not match wins over a date that would.
        assert_eq!(
            with(|c| {
                c.if_none_match = Some("\"old\"".into());
                c.if_modified_since = Some(date);
            })
            .status,
            200
        );
        assert_eq!(
            with(|c| c.if_modified_since = Some("garbage".into())).status,
            200
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), RangeSpec::One(0, 100));
        assert_eq!(parse_range("bytes=900-", 1000), RangeSpec::One(900, 100));
        assert_eq!(parse_range("bytes=-10", 1000), RangeSpec::One(990, 10));
        assert_eq!(parse_range("bytes=-5000", 1000), RangeSpec::One(0, 1000));
        assert_eq!(parse_range("bytes=990-5000", 1000), RangeSpec::One(990, 10));
        assert_eq!(parse_range("Bytes = 1-1", 1000), RangeSpec::One(1, 1));
        assert_eq!(parse_range("bytes=1000-", 1000), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 1000), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=a-b", 1000), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=+1-2", 1000), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=-", 1000), RangeSpec::Ignore);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", 1000),
            RangeSpec::Ignore
        );
    }

    #[test]
    fn range_replies_and_if_range() {
        let part = with(|c| c.range = Some("bytes=10-19".into()));
        assert_eq!((part.status, part.body), (206, Some((10, 10))));
        let none = with(|c| c.range = Some("bytes=2000-".into()));
        assert_eq!((none.status, none.body), (416, None));
        let etag = rep().etag();
        let same = with(|c| {
            c.range = Some("bytes=0-0".into());
            c.if_range = Some(etag.clone());
        });
        assert_eq!(same.status, 206);
        let changed = with(|c| {
            c.range = Some("bytes=0-0".into());
            c.if_range = Some("\"older\"".into());
        });
        assert_eq!((changed.status, changed.body), (200, Some((0, 1000))));
        let by_date = with(|c| {
            c.range = Some("bytes=0-0".into());
            c.if_range = Some(rep().last_modified());
        });
        assert_eq!(by_date.status, 206);
    }

    #[test]
    fn heads_say_what_they_carry() {
        let f = HeadFields {
            content_type: "text/css; charset=utf-8",
            cache_control: "public, max-age=60",
            varies: true,
            close: false,
        };
        let mut gz = rep();
        gz.coding = Some(Coding::Gzip);
        let mut out = Vec::new();
        write_head(
            &mut out,
            &Reply {
                status: 206,
                body: Some((10, 10)),
            },
            &gz,
            &f,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{text}"
        );
        for want in [
            "Content-Range: bytes 10-19/1000\r\n",
            "Content-Length: 10\r\n",
            "Content-Encoding: gzip\r\n",
            "Vary: Accept-Encoding\r\n",
            "Cache-Control: public, max-age=60\r\n",
            "Accept-Ranges: bytes\r\n",
            "Last-Modified: Tue, 08 Dec 2026 00:00:00 GMT\r\n",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        let mut out = Vec::new();
        let close = HeadFields { close: true, ..f };
        write_head(
            &mut out,
            &Reply {
                status: 416,
                body: None,
            },
            &rep(),
            &close,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Range: bytes */1000\r\n"), "{text}");
        assert!(text.ends_with("Connection: close\r\n\r\n"), "{text}");
        let mut out = Vec::new();
        write_head(
            &mut out,
            &Reply {
                status: 304,
                body: None,
            },
            &rep(),
            &f,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Content-Length"), "{text}");
        assert!(text.contains("ETag: "), "{text}");
    }
}
