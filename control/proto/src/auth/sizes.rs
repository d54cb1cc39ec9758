//! The ML-DSA-65 encoding sizes (FIPS 204, as liboqs writes them): the one place they are
//! stated, for the keys, the signed form and the errors that name them.

use fips204::ml_dsa_65;

/// Bytes in an encoded ML-DSA-65 public key.
pub const PUBLIC_KEY_LEN: usize = ml_dsa_65::PK_LEN;
/// Bytes in an encoded ML-DSA-65 secret key (the expanded FIPS 204 form liboqs uses).
pub const SECRET_KEY_LEN: usize = ml_dsa_65::SK_LEN;
/// Bytes in an ML-DSA-65 signature.
pub const SIGNATURE_LEN: usize = ml_dsa_65::SIG_LEN;
/// Hex characters of a signature on the wire.
pub const SIGNATURE_HEX_LEN: usize = 2 * SIGNATURE_LEN;
