//! [`WireError`]: why a datagram is not a valid message.
//!
//! Every decoder in [`crate::wire`] returns one of these and never panics. Each variant names the
//! step that failed (size, encoding, verb, field count, one field's value) and, where it helps a
//! peer's log, the verb and the field. Messages quote at most a short prefix of what was received,
//! so a hostile datagram cannot flood a log line.

use crate::name::NameError;

/// The longest excerpt of received text an error carries.
pub(crate) const MAX_QUOTE: usize = 32;

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The datagram has no bytes.
    #[error("empty datagram")]
    Empty,
    /// The datagram is longer than [`MAX_DATAGRAM`](super::MAX_DATAGRAM).
    #[error("datagram of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The datagram is not UTF-8 text.
    #[error("datagram is not UTF-8 text")]
    NotUtf8,
    /// The first field (or, in a reply, the tag after `OK`) is not a verb this decoder knows.
    /// `verb` holds at most the first 32 characters received.
    #[error("unknown verb {verb:?}")]
    UnknownVerb { verb: String },
    /// The message ends before a required field.
    #[error("{verb}: missing field `{field}`")]
    MissingField {
        verb: &'static str,
        field: &'static str,
    },
    /// The message has more fields than its verb takes.
    #[error("{verb}: unexpected field after the last one")]
    ExtraField { verb: &'static str },
    /// A field is present but its value is not acceptable.
    #[error("{verb}: bad `{field}`: {reason}")]
    BadField {
        verb: &'static str,
        field: &'static str,
        reason: String,
    },
    /// A field that must be a name (`[A-Za-z0-9._-]{1,63}`) is not one.
    #[error("{verb}: bad name in `{field}`")]
    BadName {
        verb: &'static str,
        field: &'static str,
        #[source]
        source: NameError,
    },
    /// A field that must be standard base64 is not.
    #[error("{verb}: `{field}` is not valid base64")]
    BadBase64 {
        verb: &'static str,
        field: &'static str,
    },
    /// An inline manifest does not parse, or does not hold what the message needs (LAUNCH
    /// carries exactly one app). `detail` is the manifest parser's report.
    #[error("{verb}: bad manifest: {detail}")]
    BadManifest { verb: &'static str, detail: String },
    /// A value cannot be put on the wire (a constructor of a text field refused it).
    #[error("`{field}` cannot be sent: {reason}")]
    Unencodable {
        field: &'static str,
        reason: &'static str,
    },
}

/// At most [`MAX_QUOTE`] characters of `s`, for an error message.
pub(crate) fn quote(s: &str) -> String {
    s.chars().take(MAX_QUOTE).collect()
}
