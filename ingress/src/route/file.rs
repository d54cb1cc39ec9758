//! The routes file (`--routes-file`, SPEC §7.1) in the manifest language's shape: text →
//! tokens (words, `{`, `}`, `;`, line ends, with positions) → [`Route`]s.
//!
//! ```text
//! route api.example.com/api {      # block: one key per line (or `;`-separated)
//!   service api-service
//!   strip-prefix
//!   https-only
//! }
//! route /  frontend                # one-line form
//! /old   old-service               # the first format (PREFIX SERVICE / PREFIX:SERVICE), kept
//! ```
//!
//! Blocks are braces (`{` on the route's line or first on the next) or indentation (the lines
//! under a `route` line indented deeper than it). `#` starts a comment. Errors name
//! `file:line:col` (columns in characters) and suggest the nearest key for a misspelt one.
//! `timeout 30s` (`ms`, `s`, `m`, `h`; 1 ms to 1 h) bounds the wait for the upstream's response
//! head; `max-body 10mb` (`k`/`kb`, `m`/`mb`, `g`/`gb`: powers of 1024; a bare number is bytes)
//! caps the request body; `rate 100/s burst 200` limits each client address (see
//! `crate::cores::limit` for how the cores share it). Never panics, whatever the input.

use skr8tr_proto::manifest::nearest;

use super::{Rate, Route, RouteError};

/// What is wrong in a routes file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutesFileProblem {
    /// A top-level word that is neither `route` nor a `/PREFIX` line.
    #[error("unknown statement `{word}`{}", hint(suggestion.as_deref()))]
    UnknownStatement {
        word: String,
        suggestion: Option<&'static str>,
    },
    /// A key a route block does not know.
    #[error("unknown route key `{key}`{}", hint(suggestion.as_deref()))]
    UnknownKey {
        key: String,
        suggestion: Option<&'static str>,
    },
    /// A key given a wrong number of values.
    #[error("`{key}` takes {expected}")]
    Values {
        key: &'static str,
        expected: &'static str,
    },
    /// A key given twice in one route.
    #[error("`{0}` given twice in this route")]
    Repeated(&'static str),
    /// A duration that is not a number and a unit, or out of range.
    #[error("`{0}` is not a duration from 1ms to 1h (e.g. 500ms, 30s, 5m)")]
    BadDuration(String),
    /// A size that is not a number and a unit.
    #[error("`{0}` is not a size (e.g. 512k, 10mb, 1gb)")]
    BadSize(String),
    /// A route with no service.
    #[error("route `{0}` names no service (add `service NAME`)")]
    NoService(String),
    /// A service both on the route line and in its block.
    #[error("route `{0}` names its service twice")]
    TwoServices(String),
    /// A `{` or `}` out of place, or a block never closed.
    #[error("{0}")]
    Structure(&'static str),
    /// The route itself is wrong (host, prefix, service name).
    #[error("{0}")]
    Route(String),
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
}

/// A routes-file error at a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {problem}")]
pub struct RoutesFileError {
    /// The file as given.
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub col: u32,
    /// What is wrong.
    pub problem: RoutesFileProblem,
}

/// Keys of a route block.
const KEYS: &[&str] = &[
    "service",
    "strip-prefix",
    "https-only",
    "max-body",
    "timeout",
    "rate",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Open,
    Close,
    Semi,
    Eol,
}

#[derive(Debug, Clone, Copy)]
struct Tok<'t> {
    kind: Kind,
    text: &'t str,
    line: u32,
    col: u32,
}

fn tokens(text: &str) -> (Vec<Tok<'_>>, Vec<&str>) {
    let mut out = Vec::new();
    let mut indents = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = u32::try_from(n + 1).unwrap_or(u32::MAX);
        let line = line.split('#').next().unwrap_or("");
        let trimmed = line.trim_start_matches([' ', '\t']);
        indents.push(&line[..line.len() - trimmed.len()]);
        let mut start: Option<(usize, u32)> = None;
        let mut col = 0u32;
        for (i, ch) in line.char_indices() {
            col = col.saturating_add(1);
            let kind = match ch {
                '{' => Some(Kind::Open),
                '}' => Some(Kind::Close),
                ';' => Some(Kind::Semi),
                c if c.is_whitespace() => {
                    push_word(&mut out, line, &mut start, i, line_no);
                    continue;
                }
                _ => None,
            };
            match kind {
                Some(kind) => {
                    push_word(&mut out, line, &mut start, i, line_no);
                    out.push(Tok {
                        kind,
                        text: &line[i..i + 1],
                        line: line_no,
                        col,
                    });
                }
                None if start.is_none() => start = Some((i, col)),
                None => {}
            }
        }
        push_word(&mut out, line, &mut start, line.len(), line_no);
        out.push(Tok {
            kind: Kind::Eol,
            text: "",
            line: line_no,
            col: col.saturating_add(1),
        });
    }
    (out, indents)
}

fn push_word<'t>(
    out: &mut Vec<Tok<'t>>,
    line: &'t str,
    start: &mut Option<(usize, u32)>,
    end: usize,
    line_no: u32,
) {
    if let Some((s, col)) = start.take() {
        out.push(Tok {
            kind: Kind::Word,
            text: &line[s..end],
            line: line_no,
            col,
        });
    }
}

struct Parser<'t> {
    file: &'t str,
    toks: Vec<Tok<'t>>,
    indents: Vec<&'t str>,
    pos: usize,
}

type Step<T> = Result<T, RoutesFileError>;

impl<'t> Parser<'t> {
    fn peek(&self) -> Option<Tok<'t>> {
        self.toks.get(self.pos).copied()
    }

    fn err(&self, at: Tok<'_>, problem: RoutesFileProblem) -> RoutesFileError {
        RoutesFileError {
            file: self.file.to_owned(),
            line: at.line,
            col: at.col,
            problem,
        }
    }

    fn end_tok(&self) -> Tok<'t> {
        self.toks.last().copied().unwrap_or(Tok {
            kind: Kind::Eol,
            text: "",
            line: 1,
            col: 1,
        })
    }

    /// The words up to the end of the statement (line end, `;`, `{`, `}`).
    fn words(&mut self) -> Vec<Tok<'t>> {
        let mut out = Vec::new();
        while let Some(t) = self.peek()
            && t.kind == Kind::Word
        {
            out.push(t);
            self.pos += 1;
        }
        out
    }

    fn indent(&self, line: u32) -> &'t str {
        usize::try_from(line)
            .ok()
            .and_then(|l| self.indents.get(l.wrapping_sub(1)))
            .copied()
            .unwrap_or("")
    }

    /// The first token of the next line holding one, skipping blank lines; does not move.
    fn next_line_start(&self) -> Option<Tok<'t>> {
        self.toks[self.pos..]
            .iter()
            .find(|t| t.kind != Kind::Eol)
            .copied()
    }

    fn file(&mut self) -> Step<Vec<Route>> {
        let mut routes = Vec::new();
        while let Some(t) = self.peek() {
            match t.kind {
                Kind::Eol | Kind::Semi => self.pos += 1,
                Kind::Open | Kind::Close => {
                    return Err(self.err(t, RoutesFileProblem::Structure("unexpected brace")));
                }
                Kind::Word if t.text == "route" => {
                    self.pos += 1;
                    routes.push(self.route(t)?);
                }
                Kind::Word if t.text.starts_with('/') => {
                    let words = self.words();
                    let route = match words.as_slice() {
                        [spec, service] => Route::for_spec(spec.text, service.text),
                        [spec] => Route::parse_flag(spec.text),
                        _ => Err(RouteError::Syntax(
                            words.iter().map(|w| w.text).collect::<Vec<_>>().join(" "),
                        )),
                    };
                    routes.push(
                        route.map_err(|e| self.err(t, RoutesFileProblem::Route(e.to_string())))?,
                    );
                }
                Kind::Word => {
                    return Err(self.err(
                        t,
                        RoutesFileProblem::UnknownStatement {
                            word: t.text.to_owned(),
                            suggestion: nearest(t.text, &["route"]),
                        },
                    ));
                }
            }
        }
        Ok(routes)
    }

    fn route(&mut self, keyword: Tok<'t>) -> Step<Route> {
        let words = self.words();
        let Some(spec) = words.first().copied() else {
            return Err(self.err(
                self.peek().unwrap_or(keyword),
                RoutesFileProblem::Values {
                    key: "route",
                    expected: "[HOST]/PREFIX and, on one line, a service",
                },
            ));
        };
        if let Some(extra) = words.get(2) {
            return Err(self.err(
                *extra,
                RoutesFileProblem::Values {
                    key: "route",
                    expected: "[HOST]/PREFIX and at most a service",
                },
            ));
        }
        let mut keys: Vec<(Tok<'t>, Vec<Tok<'t>>)> = Vec::new();
        let next = self.next_line_start();
        if self.peek().is_some_and(|t| t.kind == Kind::Open)
            || next.is_some_and(|t| t.kind == Kind::Open)
        {
            while self.peek().is_some_and(|t| t.kind == Kind::Eol) {
                self.pos += 1;
            }
            self.pos += 1;
            self.braced(&mut keys)?;
        } else if let Some(first) = next
            && first.kind == Kind::Word
            && words.len() == 1
        {
            let own = self.indent(keyword.line);
            let deeper = |s: &str| s.len() > own.len() && s.starts_with(own);
            if deeper(self.indent(first.line)) {
                self.indented(&mut keys, &deeper)?;
            }
        }
        self.build(spec, words.get(1).copied(), &keys)
    }

    fn braced(&mut self, keys: &mut Vec<(Tok<'t>, Vec<Tok<'t>>)>) -> Step<()> {
        loop {
            let Some(t) = self.peek() else {
                return Err(self.err(
                    self.end_tok(),
                    RoutesFileProblem::Structure("route block not closed (missing `}`)"),
                ));
            };
            match t.kind {
                Kind::Eol | Kind::Semi => self.pos += 1,
                Kind::Close => {
                    self.pos += 1;
                    return Ok(());
                }
                Kind::Open => {
                    return Err(self.err(t, RoutesFileProblem::Structure("unexpected `{`")));
                }
                Kind::Word => {
                    self.pos += 1;
                    let values = self.words();
                    keys.push((t, values));
                }
            }
        }
    }

    fn indented(
        &mut self,
        keys: &mut Vec<(Tok<'t>, Vec<Tok<'t>>)>,
        deeper: &dyn Fn(&str) -> bool,
    ) -> Step<()> {
        while let Some(t) = self.peek() {
            match t.kind {
                Kind::Eol | Kind::Semi => self.pos += 1,
                Kind::Word if deeper(self.indent(t.line)) => {
                    self.pos += 1;
                    let values = self.words();
                    keys.push((t, values));
                }
                Kind::Open | Kind::Close if deeper(self.indent(t.line)) => {
                    return Err(self.err(t, RoutesFileProblem::Structure("unexpected brace")));
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// `N/s [burst M]` (burst defaults to N; both 1 to 1,000,000, burst at least 1).
    fn rate(&self, key: Tok<'t>, values: &[Tok<'t>]) -> Step<Rate> {
        let wrong = |at: Tok<'t>| {
            self.err(
                at,
                RoutesFileProblem::Values {
                    key: "rate",
                    expected: "N/s and optionally burst M (e.g. rate 100/s burst 200)",
                },
            )
        };
        let number = |t: &str| {
            t.parse::<u32>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
        };
        let per_s = values.first().ok_or_else(|| wrong(key)).and_then(|v| {
            v.text
                .strip_suffix("/s")
                .and_then(number)
                .ok_or_else(|| wrong(*v))
        })?;
        let burst = match values {
            [_] => per_s,
            [_, word, n] if word.text == "burst" => number(n.text).ok_or_else(|| wrong(*n))?,
            [_, other, ..] => return Err(wrong(*other)),
            [] => return Err(wrong(key)),
        };
        Ok(Rate { per_s, burst })
    }

    fn build(
        &self,
        spec: Tok<'t>,
        line_service: Option<Tok<'t>>,
        keys: &[(Tok<'t>, Vec<Tok<'t>>)],
    ) -> Step<Route> {
        let mut service = line_service;
        let mut strip = false;
        let mut https_only = false;
        let mut timeout = None;
        let mut max_body = None;
        let mut rate = None;
        for (key, values) in keys {
            let flag = |name: &'static str, seen: bool| -> Step<()> {
                if !values.is_empty() {
                    return Err(self.err(
                        values[0],
                        RoutesFileProblem::Values {
                            key: name,
                            expected: "no value",
                        },
                    ));
                }
                if seen {
                    return Err(self.err(*key, RoutesFileProblem::Repeated(name)));
                }
                Ok(())
            };
            // The one value of a key that takes one, given once.
            let single =
                |name: &'static str, expected: &'static str, seen: bool| -> Step<Tok<'t>> {
                    if seen {
                        return Err(self.err(*key, RoutesFileProblem::Repeated(name)));
                    }
                    match values.as_slice() {
                        [one] => Ok(*one),
                        _ => Err(self.err(
                            values.get(1).copied().unwrap_or(*key),
                            RoutesFileProblem::Values {
                                key: name,
                                expected,
                            },
                        )),
                    }
                };
            match key.text {
                "service" => {
                    if line_service.is_some() {
                        return Err(
                            self.err(*key, RoutesFileProblem::TwoServices(spec.text.to_owned()))
                        );
                    }
                    if service.is_some() {
                        return Err(self.err(*key, RoutesFileProblem::Repeated("service")));
                    }
                    match values.as_slice() {
                        [one] => service = Some(*one),
                        _ => {
                            return Err(self.err(
                                values.get(1).copied().unwrap_or(*key),
                                RoutesFileProblem::Values {
                                    key: "service",
                                    expected: "one name",
                                },
                            ));
                        }
                    }
                }
                "strip-prefix" => {
                    flag("strip-prefix", strip)?;
                    strip = true;
                }
                "https-only" => {
                    flag("https-only", https_only)?;
                    https_only = true;
                }
                "max-body" => {
                    let value = single("max-body", "one size", max_body.is_some())?;
                    max_body = Some(parse_size(value.text).ok_or_else(|| {
                        self.err(value, RoutesFileProblem::BadSize(value.text.to_owned()))
                    })?);
                }
                "timeout" => {
                    let value = single("timeout", "one duration", timeout.is_some())?;
                    timeout = Some(parse_duration(value.text).ok_or_else(|| {
                        self.err(value, RoutesFileProblem::BadDuration(value.text.to_owned()))
                    })?);
                }
                "rate" => {
                    if rate.is_some() {
                        return Err(self.err(*key, RoutesFileProblem::Repeated("rate")));
                    }
                    rate = Some(self.rate(*key, values)?);
                }
                other => {
                    return Err(self.err(
                        *key,
                        RoutesFileProblem::UnknownKey {
                            key: other.to_owned(),
                            suggestion: nearest(other, KEYS),
                        },
                    ));
                }
            }
        }
        let service = service
            .ok_or_else(|| self.err(spec, RoutesFileProblem::NoService(spec.text.to_owned())))?;
        let mut route = Route::for_spec(spec.text, service.text).map_err(|e| {
            let at = if matches!(e, RouteError::BadService(_)) {
                service
            } else {
                spec
            };
            self.err(at, RoutesFileProblem::Route(e.to_string()))
        })?;
        route.strip_prefix = strip;
        route.https_only = https_only;
        route.timeout = timeout;
        route.max_body = max_body;
        route.rate = rate;
        Ok(route)
    }
}

/// `500ms`, `30s`, `5m`, `1h` → a duration from 1 ms to 1 h.
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let ms = match unit.to_ascii_lowercase().as_str() {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    (1..=3_600_000)
        .contains(&ms)
        .then(|| std::time::Duration::from_millis(ms))
}

/// `512k`, `10mb`, `1gb`, `100` (bytes) → bytes; units are powers of 1024, any case.
fn parse_size(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Parses a routes file; `file` names it in errors.
///
/// # Errors
/// The first problem, at its position.
pub fn parse(file: &str, text: &str) -> Result<Vec<Route>, RoutesFileError> {
    let (toks, indents) = tokens(text);
    let mut parser = Parser {
        file,
        toks,
        indents,
        pos: 0,
    };
    parser.file()
}
