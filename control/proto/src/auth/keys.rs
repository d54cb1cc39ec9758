//! ML-DSA-65 key pairs and their files: raw FIPS 204 encodings, byte-compatible with liboqs.
//!
//! Owns [`SigningKey`] (secret, 4032 B) and [`VerifyingKey`] (public, 1952 B), generating them,
//! and reading and writing key files safely:
//!
//! ```text
//! load:  open → fstat (regular file? mode? size?) → read exactly N bytes → decode
//! save:  temp file in the same directory (O_EXCL, mode set) → write → fsync
//!        → hard link (no overwrite) or rename (overwrite) → fsync directory
//! ```
//!
//! Invariants: a secret key never appears in `Debug`, `Display` or an error, and its bytes are
//! wiped when dropped (the fips204 key zeroizes itself; buffers here are `Zeroizing`). A secret
//! key file readable by group or others, or a public key file writable by them, is refused —
//! with the `chmod` that fixes it — never silently used.

use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fips204::ml_dsa_65;
use fips204::traits::{SerDes, Signer, Verifier as _};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::AuthError;
use super::hex;

pub use super::sizes::{PUBLIC_KEY_LEN, SECRET_KEY_LEN, SIGNATURE_HEX_LEN, SIGNATURE_LEN};

/// Mode of a secret key file.
const SECRET_MODE: u32 = 0o600;
/// Mode of a public key file.
const PUBLIC_MODE: u32 = 0o644;
/// The empty FIPS 204 context: pure ML-DSA as liboqs and the original tool sign.
const CONTEXT: &[u8] = &[];

/// Why a key could not be generated, decoded, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A secret key file is readable (or writable) by group or others.
    #[error(
        "{} has mode {mode:04o}: a secret key must be readable by its owner only; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    /// A public key file is writable by group or others, who could replace it with their own.
    #[error(
        "{} has mode {mode:04o}: anyone who can write a trusted public key can authorise commands; run `chmod 644 {}`",
        path.display(),
        path.display()
    )]
    PublicKeyWritable { path: PathBuf, mode: u32 },
    /// The path is a directory, a device, a socket…
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// A key file has the wrong size for its kind.
    #[error(
        "{} has {actual} bytes, but an ML-DSA-65 {kind} key has {expected}",
        path.display()
    )]
    WrongFileSize {
        path: PathBuf,
        kind: &'static str,
        expected: usize,
        actual: u64,
    },
    /// In-memory key bytes have the wrong length for their kind.
    #[error("{actual} bytes given, but an ML-DSA-65 {kind} key has {expected}")]
    WrongLength {
        kind: &'static str,
        expected: usize,
        actual: usize,
    },
    /// The bytes have the right length but do not decode as a key (e.g. coefficients out of range).
    #[error("not a valid ML-DSA-65 {kind} key: {reason}")]
    Invalid {
        kind: &'static str,
        reason: &'static str,
    },
    /// A key file has the right size but does not decode as a key.
    #[error("{} is not a valid ML-DSA-65 {kind} key: {reason}", path.display())]
    InvalidFile {
        path: PathBuf,
        kind: &'static str,
        reason: &'static str,
    },
    /// A key file with that name is already there and overwriting was not asked for.
    #[error("{} already exists; refusing to overwrite a key file", path.display())]
    AlreadyExists { path: PathBuf },
    /// Key generation failed (the OS gave no randomness).
    #[error("key generation failed: {reason}")]
    Generate { reason: &'static str },
}

impl KeyError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    /// Turns an error from decoding a file's bytes into one naming the file.
    fn in_file(self, path: &Path) -> Self {
        match self {
            Self::Invalid { kind, reason } => Self::InvalidFile {
                path: path.to_path_buf(),
                kind,
                reason,
            },
            Self::WrongLength {
                kind,
                expected,
                actual,
            } => Self::WrongFileSize {
                path: path.to_path_buf(),
                kind,
                expected,
                actual: actual as u64,
            },
            other => other,
        }
    }
}

/// An ML-DSA-65 secret key: signs commands. Never printed, wiped on drop.
///
/// The expanded key (17 KiB) lives on the heap: by value it made every frame and future that
/// holds a key, or merely might (`Option`), that big, and stack probes touch a frame's every
/// page on entry, so a daemon's stack stayed ~400 KiB resident even in dev mode without keys.
///
/// Every call into fips204 here is `#[inline(never)]`: fips204 keeps its matrices on the stack
/// (up to ~140 KiB for one call), and inlined into a caller (fat LTO does it) that whole frame is
/// probed, so touched and left resident, each time the caller runs, keys or not.
#[derive(Clone)]
pub struct SigningKey {
    inner: Box<ml_dsa_65::PrivateKey>,
}

impl SigningKey {
    /// Generates a fresh key pair from the OS random number generator.
    ///
    /// # Errors
    /// [`KeyError::Generate`] when the OS gives no randomness.
    #[inline(never)]
    pub fn generate() -> Result<(Self, VerifyingKey), KeyError> {
        let (public, secret) =
            ml_dsa_65::try_keygen().map_err(|reason| KeyError::Generate { reason })?;
        Ok((
            Self {
                inner: Box::new(secret),
            },
            VerifyingKey::from_inner(public),
        ))
    }

    /// Decodes a raw 4032-byte FIPS 204 secret key.
    ///
    /// # Errors
    /// [`KeyError::WrongLength`] or [`KeyError::Invalid`].
    #[inline(never)]
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let array: Zeroizing<[u8; SECRET_KEY_LEN]> =
            Zeroizing::new(bytes.try_into().map_err(|_| KeyError::WrongLength {
                kind: "secret",
                expected: SECRET_KEY_LEN,
                actual: bytes.len(),
            })?);
        let inner =
            ml_dsa_65::PrivateKey::try_from_bytes(*array).map_err(|reason| KeyError::Invalid {
                kind: "secret",
                reason,
            })?;
        Ok(Self {
            inner: Box::new(inner),
        })
    }

    /// The raw 4032-byte FIPS 204 encoding (wiped when the returned buffer drops).
    #[must_use]
    #[inline(never)]
    pub fn to_bytes(&self) -> Zeroizing<[u8; SECRET_KEY_LEN]> {
        Zeroizing::new(self.inner.clone().into_bytes())
    }

    /// The public half.
    #[must_use]
    #[inline(never)]
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_inner(self.inner.get_public_key())
    }

    /// Signs `message` with pure ML-DSA-65, empty context, hedged: two signatures of one message
    /// differ.
    ///
    /// # Errors
    /// [`AuthError::SigningFailed`] when the OS gives no randomness (or the key is malformed).
    #[inline(never)]
    pub fn sign(&self, message: &[u8]) -> Result<[u8; SIGNATURE_LEN], AuthError> {
        self.inner
            .try_sign(message, CONTEXT)
            .map_err(|reason| AuthError::SigningFailed { reason })
    }

    /// Reads a secret key file: a regular file of exactly 4032 bytes, readable by its owner only.
    ///
    /// # Errors
    /// [`KeyError::InsecurePermissions`] when `mode & 0o077 != 0` (the message says `chmod 600`),
    /// [`KeyError::WrongFileSize`], [`KeyError::NotAFile`], [`KeyError::InvalidFile`],
    /// [`KeyError::Io`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = read_key_file(path, "secret", SECRET_KEY_LEN, |mode| {
            if mode & 0o077 == 0 {
                Ok(())
            } else {
                Err(KeyError::InsecurePermissions {
                    path: path.to_path_buf(),
                    mode,
                })
            }
        })?;
        Self::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Writes the raw secret key to `path` with mode 0600, atomically: a reader sees no file or
    /// the whole key, and the key is never readable by others, not even for an instant.
    ///
    /// # Errors
    /// [`KeyError::AlreadyExists`] when `path` exists and `overwrite` is false; [`KeyError::Io`].
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<(), KeyError> {
        write_key_file(path, &self.to_bytes()[..], SECRET_MODE, overwrite)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// An ML-DSA-65 public key: verifies commands. On the heap (8 KiB), as [`SigningKey`].
#[derive(Clone)]
pub struct VerifyingKey {
    inner: Box<ml_dsa_65::PublicKey>,
    bytes: Box<[u8; PUBLIC_KEY_LEN]>,
}

impl VerifyingKey {
    #[inline(never)]
    fn from_inner(inner: ml_dsa_65::PublicKey) -> Self {
        let bytes = Box::new(inner.clone().into_bytes());
        Self {
            inner: Box::new(inner),
            bytes,
        }
    }

    /// Decodes a raw 1952-byte FIPS 204 public key.
    ///
    /// # Errors
    /// [`KeyError::WrongLength`] or [`KeyError::Invalid`].
    #[inline(never)]
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let array: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| KeyError::WrongLength {
            kind: "public",
            expected: PUBLIC_KEY_LEN,
            actual: bytes.len(),
        })?;
        let inner =
            ml_dsa_65::PublicKey::try_from_bytes(array).map_err(|reason| KeyError::Invalid {
                kind: "public",
                reason,
            })?;
        Ok(Self {
            inner: Box::new(inner),
            bytes: Box::new(array),
        })
    }

    /// The raw 1952-byte encoding.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    /// Whether `signature` is a valid pure ML-DSA-65 signature (empty context) of `message`.
    #[must_use]
    #[inline(never)]
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.inner.verify(message, signature, CONTEXT)
    }

    /// The first 16 hex characters of the SHA-256 of the raw key: short enough to read aloud,
    /// long enough to tell operators' keys apart.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(&self.bytes[..]);
        hex::encode(&digest[..8])
    }

    /// Reads a public key file: a regular file of exactly 1952 bytes, writable by its owner only.
    ///
    /// # Errors
    /// [`KeyError::PublicKeyWritable`] when `mode & 0o022 != 0` (the message says `chmod 644`),
    /// [`KeyError::WrongFileSize`], [`KeyError::NotAFile`], [`KeyError::InvalidFile`],
    /// [`KeyError::Io`].
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let bytes = read_key_file(path, "public", PUBLIC_KEY_LEN, |mode| {
            if mode & 0o022 == 0 {
                Ok(())
            } else {
                Err(KeyError::PublicKeyWritable {
                    path: path.to_path_buf(),
                    mode,
                })
            }
        })?;
        Self::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Writes the raw public key to `path` with mode 0644, atomically.
    ///
    /// # Errors
    /// [`KeyError::AlreadyExists`] when `path` exists and `overwrite` is false; [`KeyError::Io`].
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<(), KeyError> {
        write_key_file(path, &self.bytes[..], PUBLIC_MODE, overwrite)
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for VerifyingKey {}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.fingerprint())
    }
}

/// Opens `path`, checks it with `check_mode` on the opened file's metadata (no race with a
/// rename), and reads exactly `expected` bytes into a buffer that is wiped on drop and never
/// reallocated (so no stray copy of a secret is left in freed memory).
fn read_key_file(
    path: &Path,
    kind: &'static str,
    expected: usize,
    check_mode: impl FnOnce(u32) -> Result<(), KeyError>,
) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let file = File::open(path).map_err(KeyError::io("open", path))?;
    let meta = file.metadata().map_err(KeyError::io("stat", path))?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    check_mode(meta.permissions().mode() & 0o7777)?;
    let wrong_size = |actual: u64| KeyError::WrongFileSize {
        path: path.to_path_buf(),
        kind,
        expected,
        actual,
    };
    if meta.len() != expected as u64 {
        return Err(wrong_size(meta.len()));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(expected + 1));
    file.take(expected as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(KeyError::io("read", path))?;
    if bytes.len() != expected {
        return Err(wrong_size(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Removes a temporary file on drop unless it was renamed into place.
struct TempFile<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the file holds nothing that is not also at the destination or lost.
            let _ = fs::remove_file(self.path);
        }
    }
}

/// Writes `bytes` to `path` with `mode`, through a temporary file in the same directory, created
/// exclusively with `mode` from the start (and `fchmod`ed to it, whatever the umask).
fn write_key_file(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> Result<(), KeyError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(name) = path.file_name() else {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    };
    if !overwrite && fs::symlink_metadata(path).is_ok() {
        return Err(KeyError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let tmp_path = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp_path)
        .map_err(KeyError::io("create", &tmp_path))?;
    let mut tmp = TempFile {
        path: &tmp_path,
        armed: true,
    };
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(KeyError::io("chmod", &tmp_path))?;
    file.write_all(bytes)
        .map_err(KeyError::io("write", &tmp_path))?;
    file.sync_all().map_err(KeyError::io("sync", &tmp_path))?;
    drop(file);

    if overwrite {
        fs::rename(&tmp_path, path).map_err(KeyError::io("rename into", path))?;
        tmp.armed = false;
    } else {
        // A hard link fails if `path` exists, so two racing writers cannot clobber each other.
        match fs::hard_link(&tmp_path, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(KeyError::AlreadyExists {
                    path: path.to_path_buf(),
                });
            }
            // A file system without hard links: the existence check above has to do.
            Err(_) => {
                fs::rename(&tmp_path, path).map_err(KeyError::io("rename into", path))?;
                tmp.armed = false;
            }
        }
    }
    drop(tmp);
    // Best effort: make the new directory entry durable too.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
