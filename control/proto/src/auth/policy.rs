//! Secure by default: which keys a daemon has, and where it may therefore listen.
//!
//! ```text
//! --pubkey FILE… ──┐
//! --mesh-key FILE ─┼─▶ AuthConfig ──▶ operator / mesh Verifier, mesh SigningKey
//! --insecure ──────┘        └──────▶ BindPolicy ──resolve(requested ip)──▶ ip to bind | BindError
//! ```
//!
//! Owns the rule of SPEC §3: a daemon without the keys it needs listens on loopback only (and
//! says so); other addresses without authentication need an explicit `--insecure`. Pure
//! functions apart from reading the key files; binding and logging are the daemon's.
//!
//! Invariant: a mesh key is never also trusted as an operator key, so the roles cannot mix even
//! through a configuration mistake.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::keys::{KeyError, SigningKey, VerifyingKey};
use super::role::KeyRole;
use super::verifier::Verifier;

/// Whether a daemon must listen on loopback only: when it has no keys and `--insecure` was not
/// given.
#[must_use]
pub const fn requires_loopback(has_keys: bool, insecure: bool) -> bool {
    !has_keys && !insecure
}

/// [`requires_loopback`] as a value.
#[must_use]
pub const fn bind_policy(has_keys: bool, insecure: bool) -> BindPolicy {
    if requires_loopback(has_keys, insecure) {
        BindPolicy::LoopbackOnly
    } else {
        BindPolicy::AnyAddress
    }
}

/// Where a daemon may listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindPolicy {
    /// Keys are configured (or `--insecure` was given): any address.
    AnyAddress,
    /// No keys: loopback only.
    LoopbackOnly,
}

/// A listening address the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error(
        "refusing to listen on {addr} without authentication: give the keys (--pubkey, --mesh-key) \
         or pass --insecure to accept unsigned commands from the network"
    )]
    NeedsAuthentication { addr: IpAddr },
}

impl BindPolicy {
    /// The address to bind when `requested` was asked for: itself when allowed; under
    /// [`BindPolicy::LoopbackOnly`] an unspecified address (`0.0.0.0`, `::`) narrows to the
    /// loopback of its family (the daemon should log that it did), and any other non-loopback
    /// address is refused — an address given explicitly is never silently changed.
    ///
    /// # Errors
    /// [`BindError::NeedsAuthentication`] for a specific non-loopback address under
    /// [`BindPolicy::LoopbackOnly`].
    pub fn resolve(self, requested: IpAddr) -> Result<IpAddr, BindError> {
        match self {
            Self::AnyAddress => Ok(requested),
            Self::LoopbackOnly if requested.to_canonical().is_loopback() => Ok(requested),
            Self::LoopbackOnly => match requested {
                IpAddr::V4(ip) if ip.is_unspecified() => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                IpAddr::V6(ip) if ip.is_unspecified() => Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                addr => Err(BindError::NeedsAuthentication { addr }),
            },
        }
    }
}

/// Why a daemon's key configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// A key file could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The public key beside the mesh secret key is not its public half.
    #[error("{} is not the public half of {}", public.display(), secret.display())]
    MeshPairMismatch { secret: PathBuf, public: PathBuf },
    /// An operator key is the mesh key: a daemon's key would then authorise operator commands.
    #[error(
        "{} is the mesh public key; operator keys (--pubkey) and the mesh key must differ",
        path.display()
    )]
    MeshKeyAsOperatorKey { path: PathBuf },
}

/// The keys a daemon was started with: trusted operator public keys and the cluster's mesh key.
#[derive(Debug)]
pub struct AuthConfig {
    operator_keys: Vec<VerifyingKey>,
    mesh: Option<(SigningKey, VerifyingKey)>,
    insecure: bool,
}

impl AuthConfig {
    /// Loads `--pubkey` files (operators) and the `--mesh-key` secret key. The mesh public key
    /// is derived from the secret; if a `.pub` file sits beside it (`mesh.sec` → `mesh.pub`), it
    /// must match.
    ///
    /// # Errors
    /// A [`KeyError`] naming the file; [`AuthConfigError::MeshPairMismatch`];
    /// [`AuthConfigError::MeshKeyAsOperatorKey`].
    pub fn load(
        operator_key_files: &[impl AsRef<Path>],
        mesh_key_file: Option<&Path>,
        insecure: bool,
    ) -> Result<Self, AuthConfigError> {
        let mut operator_keys = Vec::with_capacity(operator_key_files.len());
        for path in operator_key_files {
            operator_keys.push(VerifyingKey::load(path.as_ref())?);
        }
        let mesh = match mesh_key_file {
            None => None,
            Some(secret_path) => {
                let secret = SigningKey::load(secret_path)?;
                let public = secret.verifying_key();
                let public_path = secret_path.with_extension("pub");
                if public_path != secret_path && public_path.exists() {
                    let beside = VerifyingKey::load(&public_path)?;
                    if beside != public {
                        return Err(AuthConfigError::MeshPairMismatch {
                            secret: secret_path.to_path_buf(),
                            public: public_path,
                        });
                    }
                }
                Some((secret, public))
            }
        };
        if let Some((_, mesh_public)) = &mesh
            && let Some(i) = operator_keys.iter().position(|k| k == mesh_public)
        {
            let path = operator_key_files[i].as_ref().to_path_buf();
            return Err(AuthConfigError::MeshKeyAsOperatorKey { path });
        }
        Ok(Self {
            operator_keys,
            mesh,
            insecure,
        })
    }

    /// A configuration from keys already in memory.
    #[must_use]
    pub fn new(
        operator_keys: Vec<VerifyingKey>,
        mesh_key: Option<SigningKey>,
        insecure: bool,
    ) -> Self {
        let mesh = mesh_key.map(|secret| {
            let public = secret.verifying_key();
            (secret, public)
        });
        Self {
            operator_keys,
            mesh,
            insecure,
        }
    }

    /// Whether keys of `role` are configured.
    #[must_use]
    pub fn has_keys(&self, role: KeyRole) -> bool {
        match role {
            KeyRole::Operator => !self.operator_keys.is_empty(),
            KeyRole::Mesh => self.mesh.is_some(),
        }
    }

    /// Whether `--insecure` was given.
    #[must_use]
    pub const fn insecure(&self) -> bool {
        self.insecure
    }

    /// Where a daemon that must authenticate every role in `required` may listen: anywhere only
    /// if it has keys for all of them (or `--insecure`). E.g. the Conductor requires both roles,
    /// a node and the Tower the mesh role.
    #[must_use]
    pub fn bind_policy(&self, required: &[KeyRole]) -> BindPolicy {
        bind_policy(
            required.iter().all(|&role| self.has_keys(role)),
            self.insecure,
        )
    }

    /// A verifier of operator commands, if operator keys are configured.
    #[must_use]
    pub fn operator_verifier(&self) -> Option<Verifier> {
        (!self.operator_keys.is_empty())
            .then(|| Verifier::new(KeyRole::Operator, self.operator_keys.iter().cloned()))
    }

    /// A verifier of mesh messages, if the mesh key is configured.
    #[must_use]
    pub fn mesh_verifier(&self) -> Option<Verifier> {
        self.mesh
            .as_ref()
            .map(|(_, public)| Verifier::new(KeyRole::Mesh, [public.clone()]))
    }

    /// The key to sign this daemon's own mesh messages with.
    #[must_use]
    pub fn mesh_signing_key(&self) -> Option<&SigningKey> {
        self.mesh.as_ref().map(|(secret, _)| secret)
    }

    /// The trusted operator keys.
    #[must_use]
    pub fn operator_keys(&self) -> &[VerifyingKey] {
        &self.operator_keys
    }
}

#[cfg(test)]
mod tests;
