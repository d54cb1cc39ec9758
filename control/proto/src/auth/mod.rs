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
//! Imports run one way: `role` and `sizes` (the encoding lengths) import nothing; `error`
//! ([`AuthError`]) imports them; `hex` the error; `keys` those; `signed` the keys; `replay` the
//! error; `verifier` all of those; `policy` the verifier. No module imports this one, which only
//! re-exports.
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

mod error;
mod hex;
pub mod keys;
pub mod policy;
pub mod replay;
mod role;
pub mod signed;
mod sizes;
pub mod verifier;

#[cfg(test)]
mod testkit;

pub use error::{AuthError, WIRE_REASON};
pub use keys::{KeyError, SigningKey, VerifyingKey};
pub use policy::{
    AuthConfig, AuthConfigError, BindError, BindPolicy, bind_policy, requires_loopback,
};
pub use replay::{DEFAULT_REPLAY_CAPACITY, ReplayGuard};
pub use role::KeyRole;
pub use signed::{SignedCommand, sign_command};
pub use sizes::{PUBLIC_KEY_LEN, SECRET_KEY_LEN, SIGNATURE_HEX_LEN, SIGNATURE_LEN};
pub use verifier::{Clock, DEFAULT_WINDOW_SECS, SystemClock, Verified, Verifier};
