//! What every datagram is: a [`Message`] with a text encoding, a [`Request`] with a verb and the
//! signature it needs ([`Auth`]), or a reply ([`classify`] tells which without decoding), and the
//! size limits all of them keep to ([`MAX_DATAGRAM`], [`MAX_SIGNED_MESSAGE`]).
//!
//! Owns the traits every message type implements and the limits every codec checks against;
//! knows no verb.

use super::error::WireError;
use crate::auth::KeyRole;

/// The largest datagram any daemon sends or accepts: 60 KiB.
pub const MAX_DATAGRAM: usize = 61_440;

/// The most a signature adds to a request: `|`, a Unix timestamp of up to 20 digits, `|`, and
/// 6618 hex characters (an ML-DSA-65 signature of 3309 bytes).
pub const SIGNATURE_OVERHEAD: usize = 1 + 20 + 1 + 6618;

/// The largest bare request that still fits in a datagram once signed.
pub const MAX_SIGNED_MESSAGE: usize = MAX_DATAGRAM - SIGNATURE_OVERHEAD;

/// Whether a datagram is a reply (never answered) or anything else (a request or a push).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Request,
    Reply,
}

/// Tells a reply from a request without decoding: a reply's first field is `OK` or `ERR`.
///
/// Total: any bytes (empty, binary, huge) are classified; what is not a reply is a request,
/// which its decoder may still refuse.
#[must_use]
pub fn classify(bytes: &[u8]) -> Kind {
    let first = bytes.split(|&b| b == b'|').next().unwrap_or_default();
    if first == b"OK" || first == b"ERR" {
        Kind::Reply
    } else {
        Kind::Request
    }
}

/// Who must sign a request (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Accepted unsigned: read-only, reveals no workload output.
    Unsigned,
    /// Signed with an operator key (`--pubkey`): changes what runs, or reveals workload output.
    Operator,
    /// Signed with the cluster's mesh key: daemon-to-daemon traffic that changes state.
    Mesh,
}

impl Auth {
    /// The key role whose verifier must accept the signature, or `None` for an unsigned request.
    #[must_use]
    pub fn key_role(self) -> Option<KeyRole> {
        match self {
            Self::Unsigned => None,
            Self::Operator => Some(KeyRole::Operator),
            Self::Mesh => Some(KeyRole::Mesh),
        }
    }
}

/// A message with a text encoding.
pub trait Message: Sized {
    /// The message as datagram text. Never fails: every value of the type can be written, and
    /// the text decodes back to an equal value. It may exceed [`MAX_DATAGRAM`]; see
    /// [`Message::encode_within`].
    fn encode(&self) -> String;

    /// Reads a message from a datagram (without signature).
    ///
    /// # Errors
    /// The first thing that is wrong with `bytes`, as a [`WireError`].
    fn decode(bytes: &[u8]) -> Result<Self, WireError>;

    /// [`Message::encode`], refused if the text is longer than `max` (pass [`MAX_DATAGRAM`], or
    /// [`MAX_SIGNED_MESSAGE`] for a request that will be signed).
    ///
    /// # Errors
    /// [`WireError::TooLarge`] when the text does not fit.
    fn encode_within(&self, max: usize) -> Result<String, WireError> {
        let text = self.encode();
        if text.len() > max {
            return Err(WireError::TooLarge {
                len: text.len(),
                max,
            });
        }
        Ok(text)
    }
}

/// A datagram that asks the receiver for something: a request, a push or a mesh event.
pub trait Request: Message {
    /// The first field, e.g. `SUBMIT`.
    fn verb(&self) -> &'static str;

    /// Who must sign it.
    fn auth(&self) -> Auth;
}
