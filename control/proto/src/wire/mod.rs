//! The UDP wire protocol (SPEC §2): every datagram the daemons, the ingress and the CLI
//! exchange, as typed messages with their text encodings. `docs/PROTOCOL.md` is the reference
//! for people; this module is the reference for code.
//!
//! ```text
//! bytes ──classify──▶ Kind::Reply   ──▶ <Daemon>Reply::decode    (never answered)
//!                  └▶ Kind::Request ──▶ (auth strips a signature) ──▶ <Daemon>Request::decode
//!                                                                   └▶ TowerPush / RoutesUpdate
//!                                                                      / MeshEvent
//! ```
//! One message per datagram: UTF-8 text, fields separated by `|`, at most [`MAX_DATAGRAM`]
//! bytes. Replies start with `OK|` or `ERR|` and no request or push ever does, so [`classify`]
//! tells them apart without decoding, and a daemon never answers a reply.
//!
//! Invariants: decoding never panics and validates every field before anything sees it
//! (names through [`crate::name`], numbers with range checks, addresses through
//! [`std::net::IpAddr`]); free text is only ever the last field; [`Message::encode`] only
//! produces text its `decode` accepts and maps back to the same value. Signing is not done here:
//! [`crate::auth`] wraps a bare request as `<request>|<unix_ts>|<hex signature>` and strips it
//! again before decoding; [`Request::auth`] says which requests must carry a signature.
//!
//! Imports run one way: `error` and `message` (the traits and limits) at the bottom, then
//! `fields` (the field codec), `types` (shared field types), `reply` (replies every daemon
//! sends), `routes` (one edge route as a list entry), `events` (one Conductor event as a list
//! entry), and on top one module per receiver (`conductor`, `node`, `tower`, `mesh`). No module
//! imports this one, which only re-exports. Apart from the codecs, [`retry`] is the clients'
//! policy for lost datagrams: waits, re-signing, what ends a wait.
//!
//! Adding a message: a variant in the enum of the daemon that receives it, one arm in its
//! `encode`, one in its `decode`, one in `auth`/`verb`, a strategy and a seed-style example in
//! the tests, and a section in `docs/PROTOCOL.md`.

mod conductor;
mod error;
mod events;
pub(crate) mod fields;
mod mesh;
mod message;
mod node;
mod reply;
pub mod retry;
mod routes;
mod tower;
mod types;

#[cfg(test)]
mod tests;

pub use conductor::{
    AppStatus, ConductorReply, ConductorRequest, GenerationEntry, HostPath, ListEntry,
    ManifestSource, NodeEntry, Placement, ReplicaStatus, RolloutProgress, RunTimes, SpecDigest,
};
pub use error::WireError;
pub use events::{EventEntry, EventKind};
pub use mesh::{Died, Heartbeat, HeartbeatDetail, MeshEvent, ReplicaReport};
pub use message::{
    Auth, Kind, MAX_DATAGRAM, MAX_SIGNED_MESSAGE, Message, Request, SIGNATURE_OVERHEAD, classify,
};
pub use node::{LaunchSpec, NodeReply, NodeRequest, NodeStatusEntry};
pub use reply::{ErrorCode, ErrorReply, ExecReply, LogsReply};
pub use tower::{
    DrainStatus, PublishedRoute, RoutesUpdate, TowerEntry, TowerPush, TowerReply, TowerRequest,
};
pub use types::{Backend, CpuPercent, Exit, LimitMechanism, OneLine, ReplicaState, RolloutState};
