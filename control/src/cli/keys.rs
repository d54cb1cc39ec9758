//! The key tool: `skr8tr keygen`, `skr8tr sign SK CMD` and `skr8tr verify PK SIGNED`.
//!
//! ```text
//! keygen           ~/.skr8tr/signing.sec (0600, dir 0700)  +  ./skrtrview.pub (0644)
//! keygen --mesh    ~/.skr8tr/mesh.sec    (0600)            +  ~/.skr8tr/mesh.pub (0644)
//! keygen --out D   D/<secret>                              +  D/<public>
//! ```
//!
//! Owns where key files go and what the operator is told; the keys themselves, their files and
//! the checks are `skr8tr_proto::auth`'s. Never prints a secret key: only paths, sizes, modes and
//! the public key's fingerprint. Refuses to overwrite either half of a pair without `--force`,
//! and checks both before writing anything, so a refusal leaves no half-written pair.

use std::ffi::OsString;
use std::fs::DirBuilder;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use skr8tr_proto::auth::{
    AuthError, KeyRole, PUBLIC_KEY_LEN, SECRET_KEY_LEN, SigningKey, SystemClock, Verifier,
    VerifyingKey, sign_command,
};

/// The directory under `$HOME` for secret keys.
const KEY_DIR: &str = ".skr8tr";

/// Where `keygen` writes the two halves of a pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPaths {
    secret: PathBuf,
    public: PathBuf,
}

impl KeyPaths {
    /// The paths for an operator (`mesh = false`) or mesh key, in `out` or the default places.
    fn choose(mesh: bool, out: Option<&Path>, home: Option<OsString>) -> anyhow::Result<Self> {
        let (secret_name, public_name) = if mesh {
            ("mesh.sec", "mesh.pub")
        } else {
            ("signing.sec", "skrtrview.pub")
        };
        if let Some(dir) = out {
            return Ok(Self {
                secret: dir.join(secret_name),
                public: dir.join(public_name),
            });
        }
        let Some(home) = home.filter(|h| !h.is_empty()) else {
            bail!(
                "$HOME is not set, so ~/{KEY_DIR} is unknown; pass --out DIR to choose where the keys go"
            );
        };
        let key_dir = PathBuf::from(home).join(KEY_DIR);
        let public = if mesh {
            key_dir.join(public_name)
        } else {
            Path::new(".").join(public_name)
        };
        Ok(Self {
            secret: key_dir.join(secret_name),
            public,
        })
    }
}

/// `skr8tr keygen [--mesh] [--out DIR] [--force]`: writes a new key pair and prints where, with
/// the public key's fingerprint.
///
/// # Errors
/// `$HOME` unset (without `--out`), a key file already there (without `--force`), a directory or
/// file that cannot be written.
pub fn keygen(mesh: bool, out: Option<&Path>, force: bool) -> anyhow::Result<ExitCode> {
    let paths = KeyPaths::choose(mesh, out, std::env::var_os("HOME"))?;
    if !force {
        for path in [&paths.secret, &paths.public] {
            if path.symlink_metadata().is_ok() {
                bail!(
                    "{} already exists; refusing to overwrite a key (pass --force to replace it, \
                     and the old key with it)",
                    path.display()
                );
            }
        }
    }
    for path in [&paths.secret, &paths.public] {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
    }

    let (secret, public) = SigningKey::generate()?;
    secret.save(&paths.secret, force)?;
    public.save(&paths.public, force)?;

    let kind = if mesh { "mesh" } else { "operator" };
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "wrote {kind} secret key  {} ({SECRET_KEY_LEN} bytes, mode 0600: keep it private)",
        paths.secret.display()
    )?;
    writeln!(
        out,
        "wrote {kind} public key  {} ({PUBLIC_KEY_LEN} bytes, mode 0644)",
        paths.public.display()
    )?;
    writeln!(out, "fingerprint  {}", public.fingerprint())?;
    if mesh {
        writeln!(
            out,
            "give {} to every daemon of the cluster with --mesh-key (its .pub beside it)",
            paths.secret.display()
        )?;
    } else {
        writeln!(
            out,
            "give {} to the conductor with --pubkey; sign commands with {}",
            paths.public.display(),
            paths.secret.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `skr8tr sign SK CMD`: prints `<cmd>|<now>|<hex signature>` on stdout.
///
/// # Errors
/// The key file cannot be used (permissions, size, …), the command is empty, or signing failed.
pub fn sign(secret_key: &Path, command: &str) -> anyhow::Result<ExitCode> {
    let key = SigningKey::load(secret_key)?;
    let signed = sign_command(&key, command, SystemClock::now())
        .with_context(|| format!("cannot sign with {}", secret_key.display()))?;
    writeln!(io::stdout().lock(), "{signed}")?;
    Ok(ExitCode::SUCCESS)
}

/// `skr8tr verify PK SIGNED`: prints `VALID — bare command: <cmd>` (exit 0) or
/// `INVALID: <reason>` (exit 1), checking the signature and the ±30 s window as a daemon would.
///
/// # Errors
/// The public key file cannot be used; an invalid signed command is not an error but exit 1.
pub fn verify(public_key: &Path, signed: &str) -> anyhow::Result<ExitCode> {
    let key = VerifyingKey::load(public_key)?;
    let fingerprint = key.fingerprint();
    let mut verifier = Verifier::new(KeyRole::Operator, [key]);
    let mut out = io::stdout().lock();
    match verifier.verify(signed) {
        Ok(command) => {
            writeln!(out, "VALID — bare command: {command}")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(AuthError::BadSignature { .. }) => {
            writeln!(
                out,
                "INVALID: the signature does not verify with {} (fingerprint {fingerprint})",
                public_key.display()
            )?;
            Ok(ExitCode::FAILURE)
        }
        Err(err) => {
            writeln!(out, "INVALID: {err}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_keys_go_to_home_and_the_current_directory() {
        let paths = KeyPaths::choose(false, None, Some("/home/op".into())).unwrap();
        assert_eq!(paths.secret, Path::new("/home/op/.skr8tr/signing.sec"));
        assert_eq!(paths.public, Path::new("./skrtrview.pub"));
    }

    #[test]
    fn mesh_keys_both_go_to_home() {
        let paths = KeyPaths::choose(true, None, Some("/home/op".into())).unwrap();
        assert_eq!(paths.secret, Path::new("/home/op/.skr8tr/mesh.sec"));
        assert_eq!(paths.public, Path::new("/home/op/.skr8tr/mesh.pub"));
    }

    #[test]
    fn out_puts_both_halves_in_one_directory_without_needing_home() {
        let out = Path::new("/etc/skr8tr");
        let paths = KeyPaths::choose(false, Some(out), None).unwrap();
        assert_eq!(paths.secret, out.join("signing.sec"));
        assert_eq!(paths.public, out.join("skrtrview.pub"));
        let paths = KeyPaths::choose(true, Some(out), None).unwrap();
        assert_eq!(paths.secret, out.join("mesh.sec"));
        assert_eq!(paths.public, out.join("mesh.pub"));
    }

    #[test]
    fn an_unset_or_empty_home_is_an_error_naming_the_fix() {
        for home in [None, Some(OsString::new())] {
            let err = KeyPaths::choose(false, None, home).unwrap_err().to_string();
            assert!(err.contains("$HOME") && err.contains("--out"), "{err}");
        }
    }
}
