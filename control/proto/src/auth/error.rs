//! Why a signed command was refused, or could not be signed: [`AuthError`], and the one reason a
//! daemon puts on the wire for all of them ([`WIRE_REASON`]).
//!
//! Owns the variants, their messages (for logs) and their stable codes (for metrics). Must not
//! carry a secret-key byte or anything that tells a forger which check failed onto the wire.

use super::role::KeyRole;
use super::sizes::SIGNATURE_HEX_LEN;

/// The reason a daemon puts on the wire for every [`AuthError`]: the details go to its log only.
pub const WIRE_REASON: &str = "UNAUTHORIZED";

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
}
