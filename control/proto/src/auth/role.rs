//! The two key roles, operator and mesh: which kind of key a [`super::Verifier`] trusts.
//!
//! Owns [`KeyRole`] and its names in logs. Knows nothing of keys, signatures or the wire.

use std::fmt;

/// Which kind of key a [`Verifier`](super::Verifier) trusts. The roles never mix: an operator
/// key does not authorise mesh messages and a mesh key does not authorise operator commands,
/// because each role has its own verifier configured from its own files.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_named() {
        assert_eq!(KeyRole::Operator.to_string(), "operator");
        assert_eq!(KeyRole::Mesh.to_string(), "mesh");
        assert_ne!(KeyRole::Operator, KeyRole::Mesh);
    }
}
