//! The parts every daemon's replies share: the `OK|<TAG>|…` / `ERR|<CODE>|<detail>` head, the
//! error codes peers match on, and the LOGS and EXEC results (the Conductor relays the node's).
//!
//! ```text
//! OK|<TAG>|<fields…>         success; TAG says which request it answers
//! ERR|<CODE>[|<detail>]      failure; CODE is matched, detail (one line) is for people
//! ```

use std::fmt::Write as _;

use super::error::WireError;
use super::fields::{self, Encoder, FieldValue, Fields};
use super::message::MAX_DATAGRAM;
use super::types::{Exit, OneLine, keyword_enum};
use crate::name::ReplicaId;

keyword_enum!(
    /// What went wrong, as a word a peer can match (`ERR|<CODE>|<detail>`).
    ErrorCode {
        /// Missing, bad, expired or replayed signature.
        Unauthorized => "UNAUTHORIZED",
        /// The request decoded but asks for something impossible (a value out of range).
        BadRequest => "BAD_REQUEST",
        /// No such app, replica, node or service.
        NotFound => "NOT_FOUND",
        /// The manifest (file or inline) does not parse or validate.
        BadManifest => "BAD_MANIFEST",
        /// No node can take the replica (CPU, RAM, port).
        NoCapacity => "NO_CAPACITY",
        /// Something conflicting is in progress (a rollout of the app is running).
        Busy => "BUSY",
        /// The node could not start the workload (missing binary, build failed, exec failed).
        LaunchFailed => "LAUNCH_FAILED",
        /// A step did not finish in time (a node did not answer, an EXEC ran too long).
        Timeout => "TIMEOUT",
        /// A route (host + prefix) the request claims is held by another app; the detail is
        /// `<host/prefix> held by <app>`.
        RouteTaken => "ROUTE_TAKEN",
        /// A bug or an I/O failure on the daemon's side.
        Internal => "INTERNAL",
        /// Never sent: a decoded reply whose reason is not one of the codes above (an older or
        /// newer peer). The whole reason text is kept as the detail.
        Unknown => "UNKNOWN",
    }
);

/// `ERR|<CODE>[|<detail>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub detail: OneLine,
}

impl ErrorReply {
    #[must_use]
    pub fn new(code: ErrorCode, detail: OneLine) -> Self {
        Self { code, detail }
    }

    /// An error whose detail is `detail` made one-line (see [`OneLine::lossy`]).
    #[must_use]
    pub fn lossy(code: ErrorCode, detail: &str) -> Self {
        Self {
            code,
            detail: OneLine::lossy(detail),
        }
    }

    /// `ERR|CODE` when the detail is empty (the seed's form), else `ERR|CODE|detail`.
    pub(crate) fn encode(&self) -> String {
        let enc = Encoder::new("ERR").field(self.code);
        match self.detail.as_str() {
            "" => enc.finish(),
            detail => enc.field(detail).finish(),
        }
    }

    /// Decodes what follows `ERR` (`rest` is `None` for a bare `ERR`).
    fn decode_rest(rest: Option<&str>) -> Result<Self, WireError> {
        const VERB: &str = "ERR";
        let rest = rest.unwrap_or("");
        let (word, detail) = rest.split_once('|').unwrap_or((rest, ""));
        let (code, detail) = match ErrorCode::from_keyword(word) {
            Some(code) => (code, detail),
            None => (ErrorCode::Unknown, rest),
        };
        let detail = OneLine::parse_field(VERB, "detail", detail)?;
        Ok(Self { code, detail })
    }
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.detail.as_str() {
            "" => write!(f, "{}", self.code),
            detail => write!(f, "{}: {detail}", self.code),
        }
    }
}

/// A reply split after its head.
#[derive(Debug)]
pub(crate) enum Head<'a> {
    /// `OK|<tag>` and what follows the tag's `|`.
    Ok {
        tag: &'a str,
        rest: Option<&'a str>,
    },
    Err(ErrorReply),
}

/// Checks a reply datagram and splits off `OK|<tag>` or decodes the whole `ERR|…`.
pub(crate) fn head(bytes: &[u8]) -> Result<Head<'_>, WireError> {
    let text = fields::check(bytes)?;
    let (first, rest) = fields::split_verb(text);
    match first {
        "OK" => {
            let rest = rest.ok_or(WireError::MissingField {
                verb: "OK",
                field: "tag",
            })?;
            let (tag, rest) = fields::split_verb(rest);
            Ok(Head::Ok { tag, rest })
        }
        "ERR" => ErrorReply::decode_rest(rest).map(Head::Err),
        other => Err(fields::unknown_verb(other)),
    }
}

/// The error for an `OK|<tag>` this decoder does not know.
/// A reply datagram opened by [`open`].
#[derive(Debug)]
pub(crate) enum Opened<'a> {
    /// `OK|<tag>…` with a known tag: a cursor whose [`Fields::verb`] is the tag's label
    /// (`OK|<TAG>`).
    Ok(Fields<'a>),
    /// `ERR|…`, decoded whole.
    Err(ErrorReply),
}

/// Opens a reply datagram: [`head`], then the tag looked up in `tags`.
pub(crate) fn open<'a>(bytes: &'a [u8], tags: &[&'static str]) -> Result<Opened<'a>, WireError> {
    match head(bytes)? {
        Head::Err(err) => Ok(Opened::Err(err)),
        Head::Ok { tag, rest } => {
            let label = fields::lookup_tag(tags, tag).ok_or_else(|| unknown_tag(tag))?;
            Ok(Opened::Ok(Fields::new(label, rest)))
        }
    }
}

fn unknown_tag(tag: &str) -> WireError {
    fields::unknown_verb(&format!("OK|{tag}"))
}

/// `OK|LOGS|<replica_id>|<n>|<line>\n<line>…`: the newest lines of one replica's output.
///
/// `n` tells an empty list (`0`) from one empty line (`1`); lines may contain `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsReply {
    pub replica: ReplicaId,
    pub lines: Vec<OneLine>,
}

impl LogsReply {
    pub(crate) fn encode(&self) -> String {
        let mut out = Encoder::new("OK|LOGS")
            .field(&self.replica)
            .field(self.lines.len())
            .finish();
        out.push('|');
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(line.as_str());
        }
        out
    }

    pub(crate) fn decode_fields(mut f: Fields<'_>) -> Result<Self, WireError> {
        let replica = f.parse("replica_id")?;
        let n: usize = f.uint("n", 0..=MAX_DATAGRAM as u64)?;
        let text = if n == 0 && !f.has_more() {
            ""
        } else {
            f.rest("lines")?
        };
        let lines: Vec<OneLine> = match (n, text) {
            (0, "") => Vec::new(),
            (0, _) => return Err(f.bad("lines", "text after a count of 0")),
            _ => text
                .split('\n')
                .map(|line| OneLine::parse_field(f.verb(), "lines", line))
                .collect::<Result<_, _>>()?,
        };
        if lines.len() != n {
            return Err(f.bad("n", format!("says {n} lines, the text has {}", lines.len())));
        }
        Ok(Self { replica, lines })
    }
}

/// `OK|EXEC|<replica_id>|<exit>|<output>`: a command's result; `output` (stdout then stderr,
/// as the node captured it) is the last field and may hold anything, `|` and newlines included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecReply {
    pub replica: ReplicaId,
    pub exit: Exit,
    pub output: String,
}

impl ExecReply {
    pub(crate) fn encode(&self) -> String {
        let mut out = Encoder::new("OK|EXEC")
            .field(&self.replica)
            .field(self.exit)
            .finish();
        let _ = write!(out, "|{}", self.output);
        out
    }

    pub(crate) fn decode_fields(mut f: Fields<'_>) -> Result<Self, WireError> {
        let replica = f.parse("replica_id")?;
        let exit = f.parse("exit")?;
        let output = f.rest("output")?.to_owned();
        Ok(Self {
            replica,
            exit,
            output,
        })
    }
}
