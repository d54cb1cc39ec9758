//! The daemon-facing commands' one way to the network: encode a typed request, sign it when the
//! protocol says so, send it with [`crate::client::Client`] (retries, re-signing), decode the
//! typed reply, and turn `ERR|<CODE>|<detail>` into a [`DaemonError`].
//!
//! ```text
//! ConductorRequest ─encode─▶ Client (sign if auth ≠ Unsigned; EXEC never retried) ─▶ text
//!     text ─ConductorReply::decode─▶ Ok(reply) | Err(DaemonError::Refused { code, detail })
//! ```
//! Owns no command logic: callers match the reply variant they expect and call
//! [`unexpected`] for anything else. Every failure a command can meet on the wire is one
//! [`DaemonError`] variant, and [`DaemonError::code`] is the word scripts see in `--json`.

use std::net::SocketAddr;
use std::time::Duration;

use skr8tr_proto::auth::SigningKey;
use skr8tr_proto::wire::{
    Auth, ConductorReply, ConductorRequest, ErrorCode, ErrorReply, MAX_DATAGRAM,
    MAX_SIGNED_MESSAGE, Message, Request, TowerReply, TowerRequest, WireError,
};

use super::global::GlobalArgs;
use crate::client::{Client, ClientError};

/// How much of an unreadable reply an error message quotes.
const QUOTE_MAX: usize = 120;

/// Why a request to a daemon did not give the reply a command needs.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The daemon answered `ERR|<CODE>[|<detail>]`.
    #[error("{reply}{hint}")]
    Refused {
        reply: ErrorReply,
        /// Extra advice for the operator (empty, or starting with a space).
        hint: &'static str,
    },
    /// No reply in time, or the socket failed.
    #[error(transparent)]
    Unreachable(#[from] ClientError),
    /// A reply came but does not decode.
    #[error("the {daemon} at {addr} sent a reply that cannot be read: {reply:?}")]
    BadReply {
        daemon: &'static str,
        addr: SocketAddr,
        reply: String,
        #[source]
        source: Box<WireError>,
    },
    /// A well-formed reply, but not one that answers the request.
    #[error("the {daemon} answered {verb} with an unexpected reply: {reply:?}")]
    Unexpected {
        daemon: &'static str,
        verb: &'static str,
        reply: String,
    },
    /// The request does not fit in one datagram.
    #[error("the {verb} request does not fit in one datagram")]
    TooLarge {
        verb: &'static str,
        #[source]
        source: Box<WireError>,
    },
}

impl DaemonError {
    /// The word `--json` output carries: the daemon's error code for a refusal, else what kind
    /// of failure this was.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused { reply, .. } => reply.code.keyword(),
            Self::Unreachable(ClientError::Timeout { .. }) => "NO_REPLY",
            Self::Unreachable(_) => "UNREACHABLE",
            Self::BadReply { .. } | Self::Unexpected { .. } => "BAD_REPLY",
            Self::TooLarge { .. } => "TOO_LARGE",
        }
    }

    /// The daemon's error code, when it refused the request.
    #[must_use]
    pub fn refusal(&self) -> Option<ErrorCode> {
        match self {
            Self::Refused { reply, .. } => Some(reply.code),
            _ => None,
        }
    }

    /// Whether the daemon simply did not answer (worth waiting and asking again).
    #[must_use]
    pub fn is_no_reply(&self) -> bool {
        matches!(self, Self::Unreachable(ClientError::Timeout { .. }))
    }
}

/// `reply` quoted in an error message, cut to a readable length.
fn quote(reply: &str) -> String {
    match reply.char_indices().nth(QUOTE_MAX) {
        Some((cut, _)) => format!("{}…", &reply[..cut]),
        None => reply.to_owned(),
    }
}

/// The error for a decoded reply of the wrong kind.
#[must_use]
pub fn unexpected(daemon: &'static str, verb: &'static str, reply: &impl Message) -> DaemonError {
    DaemonError::Unexpected {
        daemon,
        verb,
        reply: quote(&reply.encode()),
    }
}

/// One daemon at one address, with the operator's key when the command needs signing.
#[derive(Debug)]
pub struct Endpoint {
    daemon: &'static str,
    addr: SocketAddr,
    timeout: Duration,
    key: Option<SigningKey>,
}

impl Endpoint {
    /// The Conductor of `--conductor`; with `signed`, the operator key (if any) is loaded for
    /// the signed requests.
    ///
    /// # Errors
    /// A bad `--conductor`, or a key file that exists but cannot be used.
    pub fn conductor(global: &GlobalArgs, signed: bool) -> anyhow::Result<Self> {
        let key = if signed { global.signing_key()? } else { None };
        Ok(Self::new(
            "conductor",
            global.conductor_addr()?,
            global.timeout(),
            key,
        ))
    }

    /// The Tower of `--tower` (every request the CLI sends it is unsigned).
    ///
    /// # Errors
    /// A bad `--tower`.
    pub fn tower(global: &GlobalArgs) -> anyhow::Result<Self> {
        Ok(Self::new(
            "tower",
            global.tower_addr()?,
            global.timeout(),
            None,
        ))
    }

    #[must_use]
    pub fn new(
        daemon: &'static str,
        addr: SocketAddr,
        timeout: Duration,
        key: Option<SigningKey>,
    ) -> Self {
        Self {
            daemon,
            addr,
            timeout,
            key,
        }
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    #[must_use]
    pub fn daemon(&self) -> &'static str {
        self.daemon
    }

    /// Waits at most `timeout` per request from now on (for polls near a deadline).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout.max(Duration::from_millis(1));
    }

    /// Asks the Conductor.
    ///
    /// # Errors
    /// See [`DaemonError`].
    pub fn ask_conductor(&self, req: &ConductorRequest) -> Result<ConductorReply, DaemonError> {
        let retry = !matches!(req, ConductorRequest::Exec { .. });
        let text = self.exchange(req, retry)?;
        match ConductorReply::decode(text.as_bytes()) {
            Ok(ConductorReply::Error(reply)) => Err(self.refused(reply, req.auth())),
            Ok(reply) => Ok(reply),
            Err(source) => Err(self.bad_reply(&text, source)),
        }
    }

    /// Asks the Tower.
    ///
    /// # Errors
    /// See [`DaemonError`].
    pub fn ask_tower(&self, req: &TowerRequest) -> Result<TowerReply, DaemonError> {
        let text = self.exchange(req, true)?;
        match TowerReply::decode(text.as_bytes()) {
            Ok(TowerReply::Error(reply)) => Err(self.refused(reply, req.auth())),
            Ok(reply) => Ok(reply),
            Err(source) => Err(self.bad_reply(&text, source)),
        }
    }

    fn exchange(&self, req: &impl Request, retry: bool) -> Result<String, DaemonError> {
        let sign = req.auth() != Auth::Unsigned;
        let max = if sign {
            MAX_SIGNED_MESSAGE
        } else {
            MAX_DATAGRAM
        };
        let text = req
            .encode_within(max)
            .map_err(|source| DaemonError::TooLarge {
                verb: req.verb(),
                source: Box::new(source),
            })?;
        let mut client = Client::new(self.addr, self.timeout, self.key.as_ref());
        if !retry {
            client = client.without_retries();
        }
        Ok(client.request(&text, sign)?)
    }

    fn refused(&self, reply: ErrorReply, auth: Auth) -> DaemonError {
        let unsigned = auth != Auth::Unsigned && self.key.is_none();
        let hint = if reply.code == ErrorCode::Unauthorized && unsigned {
            " (the request went unsigned: pass --key FILE, or create ~/.skr8tr/signing.sec \
             with `skr8tr keygen`)"
        } else {
            ""
        };
        DaemonError::Refused { reply, hint }
    }

    fn bad_reply(&self, text: &str, source: WireError) -> DaemonError {
        DaemonError::BadReply {
            daemon: self.daemon,
            addr: self.addr,
            reply: quote(text),
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skr8tr_proto::wire::OneLine;

    #[test]
    fn a_refusal_reads_code_then_detail_and_keeps_its_code() {
        let err = DaemonError::Refused {
            reply: ErrorReply::new(ErrorCode::NotFound, OneLine::new("x").unwrap()),
            hint: "",
        };
        assert_eq!(err.to_string(), "NOT_FOUND: x");
        assert_eq!(err.code(), "NOT_FOUND");
        assert_eq!(err.refusal(), Some(ErrorCode::NotFound));
        let bare = DaemonError::Refused {
            reply: ErrorReply::new(ErrorCode::Unauthorized, OneLine::empty()),
            hint: " (hint)",
        };
        assert_eq!(bare.to_string(), "UNAUTHORIZED (hint)");
    }

    #[test]
    fn other_failures_have_their_own_codes() {
        let target: SocketAddr = "127.0.0.1:7771".parse().unwrap();
        let timeout = DaemonError::Unreachable(ClientError::Timeout {
            target,
            timeout_ms: 5,
            attempts: 1,
        });
        assert_eq!(timeout.code(), "NO_REPLY");
        assert!(timeout.is_no_reply());
        assert!(timeout.to_string().contains("no reply from 127.0.0.1:7771"));
        let odd = unexpected("conductor", "EVICT", &ConductorReply::Pong);
        assert_eq!(odd.code(), "BAD_REPLY");
        assert_eq!(
            odd.to_string(),
            "the conductor answered EVICT with an unexpected reply: \"OK|PONG|conductor\""
        );
        assert!(!odd.is_no_reply());
    }

    #[test]
    fn long_replies_are_cut_when_quoted() {
        assert_eq!(quote("short"), "short");
        let long = "é".repeat(500);
        assert_eq!(quote(&long).chars().count(), QUOTE_MAX + 1);
    }
}
