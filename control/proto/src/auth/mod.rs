//! ML-DSA-65 signing of commands (SPEC §3): keys, the signed wire form, and its verification.
//!
//! ```text
//! operator / mesh SigningKey ──sign_command──▶ "<cmd>|<unix_ts>|<6618 hex>"
//!                                                   │ UDP
//!        Verifier (one per role) ◀──────────────────┘
//!          parse → timestamp window → replay lookup → signature (each trusted key)
//!          → replay insert → bare "<cmd>"
//! ```
//!
//! Owns: the key types and their files ([`keys`]), the signed form ([`signed`]), the
//! [`Verifier`] with its clock ([`verifier`]) and replay cache ([`replay`]), and the
//! secure-by-default listening policy ([`policy`]). Keys are raw FIPS 204 encodings, byte-compatible
//! with liboqs (public 1952 B, secret 4032 B, signature 3309 B); signatures are pure ML-DSA-65
//! with an empty context, hedged (randomised).
//!
//! Must not: log, display or put into an error any secret-key byte; open sockets. Key files are
//! the only I/O.
//!
//! Invariant: a command is returned by [`Verifier::verify`] only if a trusted key of the
//! verifier's role signed exactly `<cmd>|<unix_ts>`, the timestamp is within the window of the
//! verifier's clock, and that signed command was not accepted before.
//!
//! ```
//! use skr8tr_proto::auth::{KeyRole, SigningKey, Verifier, sign_command};
//!
//! let (secret, public) = SigningKey::generate()?;
//! let mut operators = Verifier::new(KeyRole::Operator, [public]).with_clock(|| 1_767_225_600);
//! let datagram = sign_command(&secret, "EVICT|api", 1_767_225_600)?;
//! assert_eq!(operators.verify(&datagram)?, "EVICT|api");
//! assert!(operators.verify(&datagram).is_err(), "a replay");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod keys;
pub mod policy;
pub mod replay;
pub mod signed;
pub mod verifier;

#[cfg(test)]
mod testkit;

pub use keys::{
    KeyError, PUBLIC_KEY_LEN, SECRET_KEY_LEN, SIGNATURE_HEX_LEN, SIGNATURE_LEN, SigningKey,
    VerifyingKey,
};
pub use policy::{
    AuthConfig, AuthConfigError, BindError, BindPolicy, bind_policy, requires_loopback,
};
pub use replay::{DEFAULT_REPLAY_CAPACITY, ReplayGuard};
pub use signed::{SignedCommand, sign_command};
pub use verifier::{Clock, DEFAULT_WINDOW_SECS, SystemClock, Verified, Verifier};

use std::fmt;

/// The reason a daemon puts on the wire for every [`AuthError`]: the details go to its log only.
pub const WIRE_REASON: &str = "UNAUTHORIZED";

/// Which kind of key a [`Verifier`] trusts. The roles never mix: an operator key does not
/// authorise mesh messages and a mesh key does not authorise operator commands, because each role
/// has its own verifier configured from its own files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// A person running `skr8tr`: SUBMIT, EVICT, ROLLOUT, EXEC, LOGS, SCALE (`--pubkey`).
    Operator,
    /// The daemons of one cluster talking to each other: LAUNCH, KILL, HEARTBEAT, … (`--mesh-key`).
    Mesh,
}

impl KeyRole {
    /// The lowercase name used in logs and messages.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Mesh => "mesh",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signed command was refused (or could not be signed).
///
/// Every variant becomes `ERR|UNAUTHORIZED` on the wire ([`WIRE_REASON`]); [`AuthError::code`]
/// is the stable short reason for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Fewer than the three fields `<cmd>|<unix_ts>|<signature>`.
    #[error("not a signed command: expected `<cmd>|<unix_ts>|<hex signature>`")]
    NotSigned,
    /// The three fields are there but the command before them is empty.
    #[error("the signed command is empty")]
    EmptyCommand,
    /// The timestamp field is not a decimal `u64`.
    #[error("the timestamp is not a number of seconds since the Unix epoch")]
    TimestampNotNumber,
    /// The timestamp is further than the window from the verifier's clock (`skew_s` > 0: from
    /// the future).
    #[error("the timestamp is {skew_s} s from now, outside the ±{window_s} s window")]
    TimestampOutsideWindow { skew_s: i64, window_s: u64 },
    /// The signature field has the right length but a character that is not hexadecimal.
    #[error("the signature is not hexadecimal")]
    SignatureNotHex,
    /// The signature field is not [`SIGNATURE_HEX_LEN`] characters long.
    #[error("the signature has {len} hex characters, expected {SIGNATURE_HEX_LEN}")]
    SignatureWrongLength { len: usize },
    /// No trusted key of the role verifies the signature.
    #[error("no trusted {role} key verifies the signature")]
    BadSignature { role: KeyRole },
    /// This exact signed command was accepted before.
    #[error("replayed: this signed command was already accepted")]
    Replayed,
    /// The replay cache holds `capacity` live entries; refused rather than forgetting one.
    #[error("the replay cache is full ({capacity} live entries); refused to stay safe")]
    ReplayCacheFull { capacity: usize },
    /// The signer failed (no randomness from the OS, or a malformed key).
    #[error("signing failed: {reason}")]
    SigningFailed { reason: &'static str },
}

impl AuthError {
    /// A short, stable reason for logs and metrics labels (never changes once released).
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NotSigned => "not_signed",
            Self::EmptyCommand => "empty_command",
            Self::TimestampNotNumber => "timestamp_not_number",
            Self::TimestampOutsideWindow { .. } => "timestamp_outside_window",
            Self::SignatureNotHex => "signature_not_hex",
            Self::SignatureWrongLength { .. } => "signature_wrong_length",
            Self::BadSignature { .. } => "bad_signature",
            Self::Replayed => "replayed",
            Self::ReplayCacheFull { .. } => "replay_cache_full",
            Self::SigningFailed { .. } => "signing_failed",
        }
    }

    /// The reason to send back on the wire: always [`WIRE_REASON`], so that a peer learns nothing
    /// about which check failed.
    #[must_use]
    pub const fn wire_reason(&self) -> &'static str {
        WIRE_REASON
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_errors() -> Vec<AuthError> {
        vec![
            AuthError::NotSigned,
            AuthError::EmptyCommand,
            AuthError::TimestampNotNumber,
            AuthError::TimestampOutsideWindow {
                skew_s: -31,
                window_s: 30,
            },
            AuthError::SignatureNotHex,
            AuthError::SignatureWrongLength { len: 12 },
            AuthError::BadSignature {
                role: KeyRole::Operator,
            },
            AuthError::Replayed,
            AuthError::ReplayCacheFull { capacity: 4 },
            AuthError::SigningFailed { reason: "rng" },
        ]
    }

    #[test]
    fn codes_are_distinct_and_stable_and_the_wire_says_unauthorized() {
        let errors = all_errors();
        let codes: std::collections::HashSet<_> = errors.iter().map(AuthError::code).collect();
        assert_eq!(codes.len(), errors.len());
        for e in &errors {
            assert_eq!(e.wire_reason(), "UNAUTHORIZED");
            assert!(
                e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                e.code()
            );
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn messages_carry_the_details() {
        let skew = AuthError::TimestampOutsideWindow {
            skew_s: -31,
            window_s: 30,
        };
        assert_eq!(
            skew.to_string(),
            "the timestamp is -31 s from now, outside the ±30 s window"
        );
        let len = AuthError::SignatureWrongLength { len: 12 };
        assert!(len.to_string().contains("12") && len.to_string().contains("6618"));
        assert!(
            AuthError::BadSignature {
                role: KeyRole::Mesh
            }
            .to_string()
            .contains("mesh key")
        );
        assert!(
            AuthError::BadSignature {
                role: KeyRole::Operator
            }
            .to_string()
            .contains("operator key")
        );
    }

    #[test]
    fn roles_are_named() {
        assert_eq!(KeyRole::Operator.to_string(), "operator");
        assert_eq!(KeyRole::Mesh.to_string(), "mesh");
        assert_ne!(KeyRole::Operator, KeyRole::Mesh);
    }
}
