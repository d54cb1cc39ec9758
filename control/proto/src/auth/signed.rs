//! The signed wire form of a command: `<cmd>|<unix_ts>|<hex signature>`.
//!
//! ```text
//! EVICT|api|1767225600|3f9a…(6618 hex chars)
//! └─ cmd ─┘└─ ts ───┘ └─ signature over the bytes "EVICT|api|1767225600"
//! ```
//!
//! Owns signing ([`sign_command`]) and syntax ([`SignedCommand::parse`]): the fields are split
//! from the right, so the command may itself contain `|`. Parsing checks the shape only; whether
//! the signature is good, fresh and new is the [`super::Verifier`]'s job. Output hex is
//! lowercase; input hex may be either case. Parsing never panics, whatever the input.

use std::fmt;

use sha2::{Digest, Sha256};

use super::error::AuthError;
use super::hex;
use super::keys::{SigningKey, VerifyingKey};
use super::sizes::{SIGNATURE_HEX_LEN, SIGNATURE_LEN};

/// Longest timestamp field accepted: `u64::MAX` has 20 digits.
const MAX_TIMESTAMP_DIGITS: usize = 20;

/// Signs `cmd` at `unix_ts` and returns the wire form `<cmd>|<unix_ts>|<hex signature>`.
///
/// The signature covers exactly the bytes `<cmd>|<unix_ts>`; signing is hedged, so signing the
/// same command twice gives two different (both valid) datagrams.
///
/// # Errors
/// [`AuthError::EmptyCommand`] for an empty `cmd`; [`AuthError::SigningFailed`] when the OS gives
/// no randomness.
pub fn sign_command(key: &SigningKey, cmd: &str, unix_ts: u64) -> Result<String, AuthError> {
    if cmd.is_empty() {
        return Err(AuthError::EmptyCommand);
    }
    let mut out = format!("{cmd}|{unix_ts}");
    let signature = key.sign(out.as_bytes())?;
    out.reserve_exact(1 + SIGNATURE_HEX_LEN);
    out.push('|');
    hex::push(&mut out, &signature);
    Ok(out)
}

/// A syntactically valid signed command, borrowed from the datagram it was parsed from.
#[derive(Clone)]
pub struct SignedCommand<'a> {
    command: &'a str,
    timestamp: u64,
    signed_part: &'a str,
    signature: [u8; SIGNATURE_LEN],
}

impl<'a> SignedCommand<'a> {
    /// Splits `text` from the right into command, timestamp and signature, and decodes the
    /// signature. Checks in this order, each with its own error: three fields
    /// ([`AuthError::NotSigned`]), a non-empty command ([`AuthError::EmptyCommand`]), a decimal
    /// timestamp ([`AuthError::TimestampNotNumber`]), 6618 signature characters
    /// ([`AuthError::SignatureWrongLength`]), all hex ([`AuthError::SignatureNotHex`]).
    ///
    /// # Errors
    /// The first check that fails, as listed.
    pub fn parse(text: &'a str) -> Result<Self, AuthError> {
        let Some((signed_part, signature_hex)) = text.rsplit_once('|') else {
            return Err(AuthError::NotSigned);
        };
        let Some((command, timestamp)) = signed_part.rsplit_once('|') else {
            return Err(AuthError::NotSigned);
        };
        if command.is_empty() {
            return Err(AuthError::EmptyCommand);
        }
        let timestamp = parse_timestamp(timestamp)?;
        if signature_hex.len() != SIGNATURE_HEX_LEN {
            return Err(AuthError::SignatureWrongLength {
                len: signature_hex.len(),
            });
        }
        let mut signature = [0u8; SIGNATURE_LEN];
        hex::decode(signature_hex.as_bytes(), &mut signature)?;
        Ok(Self {
            command,
            timestamp,
            signed_part,
            signature,
        })
    }

    /// The bare command, e.g. `EVICT|api`.
    #[must_use]
    pub const fn command(&self) -> &'a str {
        self.command
    }

    /// The signer's Unix time, in seconds.
    #[must_use]
    pub const fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The bytes the signature covers: `<cmd>|<unix_ts>` exactly as received.
    #[must_use]
    pub const fn signed_bytes(&self) -> &'a [u8] {
        self.signed_part.as_bytes()
    }

    /// The decoded signature.
    #[must_use]
    pub const fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Whether `key` signed this command (signature only: no clock, no replay check).
    #[must_use]
    pub fn is_signed_by(&self, key: &VerifyingKey) -> bool {
        key.verify(self.signed_bytes(), &self.signature)
    }

    /// SHA-256 of the canonical form (signed bytes, `|`, raw signature): the replay-cache key.
    ///
    /// Canonical, not the datagram as received: hex accepts both cases, so the same signature
    /// can be spelled in many ways, and each spelling must count as the same command.
    #[must_use]
    pub fn replay_id(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.signed_part.as_bytes());
        hasher.update(b"|");
        hasher.update(self.signature);
        hasher.finalize().into()
    }
}

impl fmt::Debug for SignedCommand<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCommand")
            .field("command", &self.command)
            .field("timestamp", &self.timestamp)
            .field(
                "signature",
                &format_args!("{}…", hex::encode(&self.signature[..8])),
            )
            .finish()
    }
}

/// A decimal `u64` of ASCII digits only (no sign, no spaces).
fn parse_timestamp(field: &str) -> Result<u64, AuthError> {
    if field.is_empty()
        || field.len() > MAX_TIMESTAMP_DIGITS
        || !field.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(AuthError::TimestampNotNumber);
    }
    field.parse().map_err(|_| AuthError::TimestampNotNumber)
}

#[cfg(test)]
mod tests;
