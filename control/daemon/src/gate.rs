//! The door every datagram goes through before a daemon acts on it: replies are dropped (no
//! reply storms), signed datagrams are verified against the keys of one role, and the caller
//! learns whether the bare command it gets was authenticated.
//!
//! What a message *requires* is the wire's business (`Request::auth`); the datagram server
//! ([`crate::serve`]) combines the two: a request that needs a signature and was not
//! [`Admission::Signed`] is refused with `ERR|UNAUTHORIZED`, unless the gate has no keys (dev
//! mode, which is loopback-only by the bind policy).

use skr8tr_proto::auth::{AuthError, SignedCommand, Verifier};
use skr8tr_proto::wire::{self, Kind};

/// What the gate made of one datagram.
#[derive(Debug)]
pub enum Admission<'a> {
    /// A reply (`OK|…`/`ERR|…`) or not UTF-8 text: drop it without answering.
    Drop,
    /// The signature verified; here is the bare command.
    Signed(&'a str),
    /// No signature (or, in dev mode, one that could not be checked): the bare command.
    Unsigned(&'a str),
    /// A signature was present and failed (bad, stale, replayed): refuse with UNAUTHORIZED.
    Refused(AuthError),
}

/// Verifies datagrams for one key role, or lets everything through unauthenticated (dev mode).
#[derive(Debug)]
pub struct Gate {
    verifier: Option<Verifier>,
    /// The timestamp and replay id of the last datagram whose signature verified, until taken.
    last_signed: Option<(u64, [u8; 32])>,
}

impl Gate {
    /// A gate that checks signatures with `verifier`, or none at all when `None` (dev mode).
    #[must_use]
    pub fn new(verifier: Option<Verifier>) -> Self {
        Self {
            verifier,
            last_signed: None,
        }
    }

    /// Remembers commands an earlier run accepted (see [`Verifier::remember`]); nothing in
    /// dev mode.
    ///
    /// # Errors
    /// The replay cache is full.
    pub fn remember(
        &mut self,
        accepted: impl IntoIterator<Item = (u64, [u8; 32])>,
    ) -> Result<(), skr8tr_proto::auth::AuthError> {
        if let Some(v) = &mut self.verifier {
            for (timestamp, id) in accepted {
                v.remember(timestamp, id)?;
            }
        }
        Ok(())
    }

    /// The timestamp and replay id of the datagram [`Gate::admit`] last accepted as
    /// [`Admission::Signed`], once.
    pub fn take_last_signed(&mut self) -> Option<(u64, [u8; 32])> {
        self.last_signed.take()
    }

    /// Whether this gate has keys, so that unsigned mutating requests must be refused.
    #[must_use]
    pub fn enforcing(&self) -> bool {
        self.verifier.is_some()
    }

    /// Classifies and, where signed, verifies one datagram.
    pub fn admit<'a>(&mut self, bytes: &'a [u8]) -> Admission<'a> {
        if wire::classify(bytes) == Kind::Reply {
            return Admission::Drop;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Admission::Drop;
        };
        // Tolerate one trailing newline (`echo` without -n).
        let text = text.strip_suffix('\n').unwrap_or(text);
        match &mut self.verifier {
            Some(verifier) => match SignedCommand::parse(text) {
                Ok(_) => match verifier.verify_detailed(text) {
                    Ok(v) => {
                        self.last_signed = Some((v.timestamp, v.replay_id));
                        Admission::Signed(v.command)
                    }
                    Err(e) => Admission::Refused(e),
                },
                Err(_) => Admission::Unsigned(text),
            },
            None => match SignedCommand::parse(text) {
                Ok(signed) => Admission::Unsigned(signed.command()),
                Err(_) => Admission::Unsigned(text),
            },
        }
    }

    /// Whether a request needing `required` may run given `admission`.
    #[must_use]
    pub fn allows(&self, required: wire::Auth, admission: &Admission<'_>) -> bool {
        match required {
            wire::Auth::Unsigned => true,
            wire::Auth::Operator | wire::Auth::Mesh => {
                !self.enforcing() || matches!(admission, Admission::Signed(_))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::auth::{KeyRole, SigningKey, SystemClock, sign_command};

    use super::*;

    #[test]
    fn replies_are_dropped_signed_commands_verified_and_replays_refused() {
        let (key, public) = SigningKey::generate().unwrap();
        let mut gate = Gate::new(Some(Verifier::new(KeyRole::Mesh, [public])));
        assert!(matches!(gate.admit(b"OK|PONG|tower"), Admission::Drop));
        assert!(matches!(gate.admit(b"ERR|BAD_REQUEST|x"), Admission::Drop));
        assert!(matches!(gate.admit(&[0xff, 0xfe]), Admission::Drop));
        assert!(matches!(gate.admit(b"PING\n"), Admission::Unsigned("PING")));
        let signed = sign_command(&key, "REGISTER|api|127.0.0.1|80", SystemClock::now()).unwrap();
        match gate.admit(signed.as_bytes()) {
            Admission::Signed(cmd) => assert_eq!(cmd, "REGISTER|api|127.0.0.1|80"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(gate.admit(signed.as_bytes()), Admission::Refused(_)),
            "replay"
        );
        let (other, _) = SigningKey::generate().unwrap();
        let forged = sign_command(&other, "REGISTER|api|127.0.0.1|80", SystemClock::now()).unwrap();
        assert!(matches!(
            gate.admit(forged.as_bytes()),
            Admission::Refused(_)
        ));
        assert!(gate.allows(wire::Auth::Unsigned, &Admission::Unsigned("PING")));
        assert!(!gate.allows(
            wire::Auth::Mesh,
            &Admission::Unsigned("REGISTER|api|1.2.3.4|80")
        ));
    }

    #[test]
    fn without_keys_everything_is_let_through_and_signatures_stripped() {
        let (key, _) = SigningKey::generate().unwrap();
        let mut gate = Gate::new(None);
        let signed = sign_command(&key, "LOOKUP|api", SystemClock::now()).unwrap();
        assert!(matches!(
            gate.admit(signed.as_bytes()),
            Admission::Unsigned("LOOKUP|api")
        ));
        assert!(gate.allows(
            wire::Auth::Mesh,
            &Admission::Unsigned("REGISTER|api|1.2.3.4|80")
        ));
    }
}
