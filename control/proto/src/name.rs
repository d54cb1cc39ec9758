//! Validated names shared by every message and manifest: apps, services, nodes, replicas.
//!
//! A name is `[A-Za-z0-9._-]{1,63}`. Validation happens once, on construction, so a value of
//! one of these types can be put into a `|`-separated datagram, a file path component or a log
//! line without further checks. Nothing here does I/O.

use std::fmt;
use std::str::FromStr;

/// The longest name accepted anywhere in skr8tr.
pub const MAX_NAME_LEN: usize = 63;

/// Why a string is not a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("a name is at most {MAX_NAME_LEN} characters, this one has {len}")]
    TooLong { len: usize },
    #[error(
        "a name may contain only letters, digits, `.`, `_` and `-`; found {found:?} at position {position}"
    )]
    BadCharacter { found: char, position: usize },
    #[error("a name cannot be `.` or `..`")]
    DotName,
}

/// Checks `s` against `[A-Za-z0-9._-]{1,63}` (and refuses `.` and `..`, which are path tricks).
///
/// # Errors
/// The first rule `s` breaks.
pub fn validate_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    for (position, found) in s.chars().enumerate() {
        if !(found.is_ascii_alphanumeric() || matches!(found, '.' | '_' | '-')) {
            return Err(NameError::BadCharacter { found, position });
        }
    }
    if s.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: s.len() });
    }
    if s == "." || s == ".." {
        return Err(NameError::DotName);
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Validates and wraps `s`.
            ///
            /// # Errors
            /// [`NameError`] when `s` is not `[A-Za-z0-9._-]{1,63}`.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                validate_name(&s)?;
                Ok(Self(s))
            }

            /// The name as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// The name of an app (a manifest's `app NAME`), which is also the service name it registers
    /// under in the Tower.
    AppName
);
name_type!(
    /// The name a backend set is registered under in the Tower.
    ServiceName
);
name_type!(
    /// A node's stable identity, kept across agent restarts.
    NodeId
);
name_type!(
    /// One replica of one app, chosen by the Conductor and unique in the cluster
    /// (for example `api-server.g2.r7`: app, generation, sequence).
    ReplicaId
);

impl From<AppName> for ServiceName {
    fn from(app: AppName) -> Self {
        Self(app.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["api", "api-server", "a.b_c-d", "A9", &"x".repeat(63)] {
            assert!(AppName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        assert_eq!(AppName::new(""), Err(NameError::Empty));
        assert_eq!(
            AppName::new("x".repeat(64)),
            Err(NameError::TooLong { len: 64 })
        );
        assert_eq!(
            AppName::new("a|b"),
            Err(NameError::BadCharacter {
                found: '|',
                position: 1
            })
        );
        assert_eq!(
            AppName::new("a b"),
            Err(NameError::BadCharacter {
                found: ' ',
                position: 1
            })
        );
        assert_eq!(
            AppName::new("é"),
            Err(NameError::BadCharacter {
                found: 'é',
                position: 0
            })
        );
        assert_eq!(AppName::new(".."), Err(NameError::DotName));
        assert_eq!(
            AppName::new("a:b"),
            Err(NameError::BadCharacter {
                found: ':',
                position: 1
            })
        );
    }
}
