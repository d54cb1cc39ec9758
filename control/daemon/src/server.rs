//! The datagram server every daemon socket runs (the Tower's, the Conductor's two, the node
//! agent's): receive into one reused buffer, skip errors that concern one datagram, pass the
//! [`Gate`], decode the socket's request type, refuse what lacks a signature it needs, and hand
//! the rest to the daemon's [`Handler`]; send the reply the handler returns.
//!
//! ```text
//! recv ─▶ larger than MAX_DATAGRAM? ─▶ Gate::admit ─▶ decode ─▶ Gate::allows ─▶ Handler::handle
//!            └ dropped()                 │ Drop: dropped()  │        │               └▶ reply?
//!                                        │ Refused ─────────┼────────┴▶ unauthorized()
//!                                        └──────────────────┴▶ undecodable(), else dropped()
//! ```
//! What a request does, and whether a refusal is answered at all, is the handler's business;
//! this module owns no protocol decision beyond the gate's. Replies and unparseable datagrams
//! are never answered (no reply storms) unless the handler says otherwise.
//!
//! # Cancel safety
//! [`serve`] is cancel safe between datagrams (a datagram being received is lost, see
//! [`UdpEndpoint::recv_from`]); a daemon races it only against its shutdown.

use std::future::Future;
use std::net::SocketAddr;

use skr8tr_proto::wire::{self, MAX_DATAGRAM, Message as _, Request, WireError};

use crate::{Admission, Gate, UdpEndpoint};

/// Who sent an admitted datagram, as far as the gate can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub from: SocketAddr,
    /// The signature verified.
    pub signed: bool,
    /// It may ask for what needs a signature: it was signed, or the gate has no keys (dev
    /// mode).
    pub trusted: bool,
}

/// Why a datagram was dropped without an answer.
#[derive(Debug)]
pub enum Dropped<'a> {
    /// A reply (`OK|…`, `ERR|…`) or not UTF-8 text.
    Reply,
    /// Longer than [`MAX_DATAGRAM`].
    TooLarge,
    /// Not a request of this socket.
    Unparseable(&'a WireError),
}

impl std::fmt::Display for Dropped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reply => f.write_str("a reply or not UTF-8"),
            Self::TooLarge => f.write_str("larger than a datagram may be"),
            Self::Unparseable(e) => e.fmt(f),
        }
    }
}

/// What one daemon socket does with the requests the server admits.
pub trait Handler {
    /// What this socket receives.
    type Request: Request;

    /// What the log calls one of its datagrams (`request`, `command`, `mesh message`).
    const NOUN: &'static str;

    /// The answer to a request refused for its signature (`ERR|UNAUTHORIZED` in the socket's
    /// reply type), or `None` on a socket whose senders never wait for an answer. `reason` is
    /// the refusal's code ([`skr8tr_proto::auth::AuthError::code`], or `unsigned` for a request
    /// that needs a signature and has none), for the daemon's counters; it is never sent.
    fn unauthorized(&mut self, reason: &'static str) -> Option<String>;

    /// Acts on an admitted, decoded and allowed request; returns the reply to send to
    /// `origin.from` now, if any. A request that takes time runs in its own task and sends its
    /// reply itself; so does a handler whose reply must go out before something else.
    fn handle(
        &mut self,
        request: Self::Request,
        origin: Origin,
    ) -> impl Future<Output = Option<String>>;

    /// The answer to a datagram that does not decode, if it deserves one; by default none (it
    /// is then [`Handler::dropped`]).
    fn undecodable(&mut self, error: &WireError, origin: Origin) -> Option<String> {
        let _ = (error, origin);
        None
    }

    /// A datagram whose signature verified was admitted (before it is decoded): its timestamp
    /// and replay id, for a daemon that keeps its replay cache across restarts. By default
    /// nothing.
    fn signed(&mut self, timestamp: u64, replay_id: [u8; 32]) {
        let _ = (timestamp, replay_id);
    }

    /// A datagram dropped without an answer. By default unparseable and oversized ones are
    /// logged, replies are not.
    fn dropped(&mut self, from: SocketAddr, why: Dropped<'_>) {
        if !matches!(why, Dropped::Reply) {
            tracing::warn!(%from, error = %why, "dropped an unparseable {}", Self::NOUN);
        }
    }
}

/// The refusal reason of a request that needs a signature and has none.
pub const UNSIGNED: &str = "unsigned";

/// Serves `handler` on `socket` behind `gate` until the socket fails.
///
/// # Errors
/// Only a receive error that is not about one datagram (the socket itself failed).
pub async fn serve<H: Handler>(
    socket: &UdpEndpoint,
    mut gate: Gate,
    mut handler: H,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(MAX_DATAGRAM + 1);
    loop {
        let (res, data) = socket.recv_from(buf).await;
        match res {
            Ok(from) => {
                if let Some(reply) = answer(&mut gate, &mut handler, &data, from).await {
                    send_reply(socket, reply, from).await;
                }
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
        buf = data;
    }
}

/// What one datagram from `from` comes to: the reply to send, if any.
async fn answer<H: Handler>(
    gate: &mut Gate,
    handler: &mut H,
    data: &[u8],
    from: SocketAddr,
) -> Option<String> {
    if data.len() > MAX_DATAGRAM {
        handler.dropped(from, Dropped::TooLarge);
        return None;
    }
    let admission = gate.admit(data);
    let text = match admission {
        Admission::Drop => {
            handler.dropped(from, Dropped::Reply);
            return None;
        }
        Admission::Refused(ref e) => {
            tracing::warn!(%from, reason = e.code(), "refused a signed {}", H::NOUN);
            return handler.unauthorized(e.code());
        }
        Admission::Signed(text) | Admission::Unsigned(text) => text,
    };
    if let Some((timestamp, id)) = gate.take_last_signed() {
        handler.signed(timestamp, id);
    }
    let origin = Origin {
        from,
        signed: matches!(admission, Admission::Signed(_)),
        trusted: gate.allows(wire::Auth::Mesh, &admission),
    };
    let request = match H::Request::decode(text.as_bytes()) {
        Ok(request) => request,
        Err(e) => {
            let reply = handler.undecodable(&e, origin);
            if reply.is_none() {
                handler.dropped(from, Dropped::Unparseable(&e));
            }
            return reply;
        }
    };
    if !gate.allows(request.auth(), &admission) {
        tracing::warn!(%from, verb = request.verb(), "refused an unsigned {}", H::NOUN);
        return handler.unauthorized(UNSIGNED);
    }
    handler.handle(request, origin).await
}

/// Sends `reply` to `to`; a failure concerns only that sender and is logged at debug.
pub async fn send_reply(socket: &UdpEndpoint, reply: String, to: SocketAddr) {
    if let Err(e) = socket.send_to(reply.into_bytes(), to).await {
        tracing::debug!(%to, error = %e, "reply not sent");
    }
}

/// Errors that concern one datagram (e.g. an ICMP error from an earlier send), not the socket.
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
            | std::io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::auth::{KeyRole, SigningKey, SystemClock, Verifier, sign_command};
    use skr8tr_proto::wire::TowerRequest;

    use super::*;

    /// Answers every request with its verb, and notes what it was told.
    #[derive(Default)]
    struct Echo {
        saw: Option<String>,
    }

    impl Handler for Echo {
        type Request = TowerRequest;
        const NOUN: &'static str = "request";

        fn unauthorized(&mut self, _reason: &'static str) -> Option<String> {
            Some("ERR|UNAUTHORIZED".into())
        }

        async fn handle(&mut self, request: TowerRequest, origin: Origin) -> Option<String> {
            let signed = if origin.signed { "signed" } else { "unsigned" };
            let trusted = if origin.trusted {
                "trusted"
            } else {
                "untrusted"
            };
            self.saw = Some(format!("{} {signed} {trusted}", request.verb()));
            Some(format!("OK|{}", request.verb()))
        }

        fn dropped(&mut self, _from: SocketAddr, why: Dropped<'_>) {
            self.saw = Some(
                match why {
                    Dropped::Reply => "dropped: a reply",
                    Dropped::TooLarge => "dropped: too large",
                    Dropped::Unparseable(_) => "dropped: unparseable",
                }
                .into(),
            );
        }
    }

    fn from() -> SocketAddr {
        "127.0.0.1:5555".parse().unwrap()
    }

    #[test]
    fn each_datagram_is_dropped_refused_or_handled() {
        let (key, public) = SigningKey::generate().unwrap();
        let mut keyed = Gate::new(Some(Verifier::new(KeyRole::Mesh, [public])));
        let mut open = Gate::new(None);
        let register = "REGISTER|api|127.0.0.1|80";
        let signed = sign_command(&key, register, SystemClock::now()).unwrap();
        let (other, _) = SigningKey::generate().unwrap();
        let forged = sign_command(&other, register, SystemClock::now()).unwrap();
        let oversized = vec![b'x'; MAX_DATAGRAM + 1];
        // (the gate has keys, datagram, reply, what the handler was told)
        type Row<'a> = (bool, &'a [u8], Option<&'a str>, Option<&'a str>);
        let table: [Row; 9] = [
            (true, b"OK|PONG|tower", None, Some("dropped: a reply")),
            (true, &[0xff, 0xfe], None, Some("dropped: a reply")),
            (true, &oversized, None, Some("dropped: too large")),
            (true, b"NOPE|x", None, Some("dropped: unparseable")),
            (
                true,
                b"PING",
                Some("OK|PING"),
                Some("PING unsigned untrusted"),
            ),
            (true, register.as_bytes(), Some("ERR|UNAUTHORIZED"), None),
            (
                true,
                signed.as_bytes(),
                Some("OK|REGISTER"),
                Some("REGISTER signed trusted"),
            ),
            (true, forged.as_bytes(), Some("ERR|UNAUTHORIZED"), None),
            (
                false,
                register.as_bytes(),
                Some("OK|REGISTER"),
                Some("REGISTER unsigned trusted"),
            ),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (keys, data, reply, saw) in table {
            let gate = if keys { &mut keyed } else { &mut open };
            let mut echo = Echo::default();
            let got = rt.block_on(answer(gate, &mut echo, data, from()));
            assert_eq!(got.as_deref(), reply, "{saw:?}");
            assert_eq!(echo.saw.as_deref(), saw);
        }
    }

    /// A handler's answer to an undecodable datagram is sent instead of dropping it.
    #[test]
    fn an_undecodable_datagram_may_be_answered() {
        struct Picky;
        impl Handler for Picky {
            type Request = TowerRequest;
            const NOUN: &'static str = "request";
            fn unauthorized(&mut self, _reason: &'static str) -> Option<String> {
                None
            }
            async fn handle(&mut self, _: TowerRequest, _: Origin) -> Option<String> {
                None
            }
            fn undecodable(&mut self, error: &WireError, _: Origin) -> Option<String> {
                Some(format!("ERR|BAD_REQUEST|{error}"))
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(answer(&mut Gate::new(None), &mut Picky, b"NOPE", from()));
        assert!(got.unwrap().starts_with("ERR|BAD_REQUEST|"));
    }

    #[test]
    fn only_errors_about_one_datagram_are_transient() {
        use std::io::{Error, ErrorKind};
        for (kind, transient) in [
            (ErrorKind::ConnectionRefused, true),
            (ErrorKind::ConnectionReset, true),
            (ErrorKind::Interrupted, true),
            (ErrorKind::WouldBlock, true),
            (ErrorKind::PermissionDenied, false),
            (ErrorKind::Other, false),
        ] {
            assert_eq!(is_transient(&Error::from(kind)), transient, "{kind:?}");
        }
    }
}
