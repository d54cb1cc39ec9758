//! What every skr8tr control daemon (Tower, Conductor, node agent) shares, so that they read
//! alike: the runtime choice (io_uring through tokio-uring, or the epoll fallback), a UDP
//! endpoint that works on either, the datagram server each socket runs ([`serve`]: receive,
//! gate, decode, hand to the daemon's [`Handler`], reply), the bind policy of SPEC §3, and what
//! the daemon binaries' `main`s share ([`start`], the key flags, the shutdown signal, logging).
//!
//! It owns no protocol logic: the wire decodes datagrams (`skr8tr_proto::wire`), and each
//! daemon's handler decides what to answer. Everything here runs on one thread: tasks are
//! spawned with [`spawn`] (`spawn_local` underneath) under both drivers.

mod call;
mod driver;
mod gate;
mod logging;
mod policy;
mod server;
mod startup;
mod udp;

pub use call::{CallError, Patience, call, notify};
pub use driver::{Driver, FORCE_EPOLL_VAR, run, run_with, spawn};
pub use gate::{Admission, Gate};
pub use logging::init_logging;
pub use policy::{AddressError, listen_addr, parse_host_port};
pub use server::{Dropped, Handler, Origin, send_reply, serve};
pub use startup::{KeyArgs, KeysError, MeshKeyArgs, shutdown_requested, shutdown_signal, start};
pub use udp::UdpEndpoint;
