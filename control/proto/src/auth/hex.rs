//! Hexadecimal text of bytes, as a signature travels on the wire and a key fingerprint is shown:
//! lowercase out, either case in.
//!
//! Owns the digits and nothing else; decoding never panics, whatever the input.

use super::error::AuthError;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    push(&mut out, bytes);
    out
}

/// Appends the lowercase hex of `bytes` to `out`.
pub(crate) fn push(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(b & 0x0f)]));
    }
}

fn value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case) into `out`; `hex` must have exactly `2 * out.len()` characters.
///
/// # Errors
/// [`AuthError::SignatureWrongLength`] for any other length, [`AuthError::SignatureNotHex`] for a
/// character that is not a hex digit.
pub(crate) fn decode(hex: &[u8], out: &mut [u8]) -> Result<(), AuthError> {
    if hex.len() != 2 * out.len() {
        return Err(AuthError::SignatureWrongLength { len: hex.len() });
    }
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (value(pair[0]), value(pair[1])) else {
            return Err(AuthError::SignatureNotHex);
        };
        *byte = (hi << 4) | lo;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        let hex = encode(&bytes);
        assert_eq!(&hex[..8], "00010203");
        assert_eq!(&hex[hex.len() - 4..], "feff");
        let mut back = vec![0u8; 256];
        decode(hex.as_bytes(), &mut back).unwrap();
        assert_eq!(back, bytes);
        decode(hex.to_ascii_uppercase().as_bytes(), &mut back).unwrap();
        assert_eq!(back, bytes);
        assert_eq!(
            decode(b"abc", &mut [0u8; 2]),
            Err(AuthError::SignatureWrongLength { len: 3 })
        );
    }
}
