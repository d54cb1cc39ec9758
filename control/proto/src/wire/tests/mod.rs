//! Tests of the wire protocol, one file per concern:
//!
//! - `seed`: every documented datagram decodes to the expected value and re-encodes byte for
//!   byte (the seed's formats first);
//! - `kinds`: `classify` and `Request::auth` for every verb;
//! - `refuse`: bad datagrams are refused with the right [`WireError`] variant;
//! - `roundtrip`: proptest `decode(encode(m)) == m` for every message type, and arbitrary or
//!   mutated bytes never make a decoder (or `classify`) panic;
//! - `values`: the shared value types (`CpuPercent`, `Backend`, `Exit`, `OneLine`, …);
//! - `docs`: every example datagram in `docs/PROTOCOL.md` decodes.

use std::fmt::Debug;

use crate::name::{AppName, NodeId, ReplicaId, ServiceName};
use crate::wire::{Message, WireError};

mod docs;
mod kinds;
mod refuse;
mod roundtrip;
mod seed;
mod strategy;
mod values;

pub(super) fn app(s: &str) -> AppName {
    AppName::new(s).unwrap()
}

pub(super) fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

pub(super) fn rid(s: &str) -> ReplicaId {
    ReplicaId::new(s).unwrap()
}

pub(super) fn svc(s: &str) -> ServiceName {
    ServiceName::new(s).unwrap()
}

/// `text` decodes to `expected`, and `expected` encodes to exactly `text`.
#[track_caller]
pub(super) fn exact<M: Message + PartialEq + Debug>(text: &str, expected: M) {
    let decoded = M::decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(decoded, expected, "decoding {text:?}");
    assert_eq!(expected.encode(), text, "encoding {expected:?}");
}

/// `text` decodes to `expected` (it is accepted, but not the canonical form).
#[track_caller]
pub(super) fn accepts<M: Message + PartialEq + Debug>(text: &str, expected: M) {
    let decoded = M::decode(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(decoded, expected, "decoding {text:?}");
}

/// `text` is refused; the error is returned for the caller to match.
#[track_caller]
pub(super) fn refused<M: Message + Debug>(text: impl AsRef<[u8]>) -> WireError {
    let bytes = text.as_ref();
    match M::decode(bytes) {
        Ok(msg) => panic!("{:?} decoded to {msg:?}", String::from_utf8_lossy(bytes)),
        Err(err) => err,
    }
}
