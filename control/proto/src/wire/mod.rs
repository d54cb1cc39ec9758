//! The UDP wire protocol (SPEC §2): every datagram the daemons, the ingress and the CLI
//! exchange, as typed messages with their text encodings. `docs/PROTOCOL.md` is the reference
//! for people; this module is the reference for code.
//!
//! ```text
//! bytes ──classify──▶ Kind::Reply   ──▶ <Daemon>Reply::decode    (never answered)
//!                  └▶ Kind::Request ──▶ (auth strips a signature) ──▶ <Daemon>Request::decode
//!                                                                   └▶ TowerPush / MeshEvent
//! ```
//! One message per datagram: UTF-8 text, fields separated by `|`, at most [`MAX_DATAGRAM`]
//! bytes. Replies start with `OK|` or `ERR|` and no request or push ever does, so [`classify`]
//! tells them apart without decoding, and a daemon never answers a reply.
//!
//! Invariants: decoding never panics and validates every field before anything sees it
//! (names through [`crate::name`], numbers with range checks, addresses through
//! [`std::net::IpAddr`]); free text is only ever the last field; [`Message::encode`] only
//! produces text its `decode` accepts and maps back to the same value. Signing is not done here:
//! [`crate::auth`] wraps a bare request as `<request>|<unix_ts>|<hex signature>` and strips it
//! again before decoding; [`Request::auth`] says which requests must carry a signature.
//!
//! Adding a message: a variant in the enum of the daemon that receives it, one arm in its
//! `encode`, one in its `decode`, one in `auth`/`verb`, a strategy and a seed-style example in
//! the tests, and a section in `docs/PROTOCOL.md`.

mod conductor;
mod error;
pub(crate) mod fields;
mod mesh;
mod node;
mod reply;
mod tower;
mod types;

#[cfg(test)]
mod tests;

pub use conductor::{
    AppStatus, ConductorReply, ConductorRequest, HostPath, ListEntry, ManifestSource, NodeEntry,
    Placement, ReplicaStatus, RolloutProgress,
};
pub use error::WireError;
pub use mesh::{Died, Heartbeat, HeartbeatDetail, MeshEvent, ReplicaReport};
pub use node::{LaunchSpec, NodeReply, NodeRequest, NodeStatusEntry};
pub use reply::{ErrorCode, ErrorReply, ExecReply, LogsReply};
pub use tower::{DrainStatus, TowerEntry, TowerPush, TowerReply, TowerRequest};
pub use types::{Backend, CpuPercent, Exit, OneLine, ReplicaState, RolloutState};

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
    pub fn key_role(self) -> Option<crate::auth::KeyRole> {
        match self {
            Self::Unsigned => None,
            Self::Operator => Some(crate::auth::KeyRole::Operator),
            Self::Mesh => Some(crate::auth::KeyRole::Mesh),
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
