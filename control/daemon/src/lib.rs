//! What every skr8tr daemon shares, so that they read alike: logging (`SKR8TR_LOG`), the bind
//! policy of SPEC §3 and the host arguments, the gate every datagram passes, and what the
//! daemon binaries' `main`s share ([`start`], the key flags, the exit report, the service
//! manager's notifications in [`supervisor`]); and, for the
//! control daemons (Tower, Conductor, node agent; feature `runtime`, on by default), the
//! runtime choice (io_uring through tokio-uring, or the epoll fallback), a UDP endpoint that
//! works on either, the datagram server each socket runs (`serve`: receive, gate, decode, hand
//! to the daemon's `Handler`, reply), calls to other daemons, shutdown signals, and the
//! read-only HTTP admin listener ([`admin`]: `/metrics`, `/healthz`, status pages, events). The ingress
//! and the static file server run on monoio and take only the first part
//! (`default-features = false`), without tokio.
//!
//! It owns no protocol logic: the wire decodes datagrams (`skr8tr_proto::wire`), and each
//! daemon's handler decides what to answer. Everything on the runtime runs on one thread: tasks
//! are spawned with `spawn` (`spawn_local` underneath) under both drivers.

#[cfg(feature = "runtime")]
pub mod admin;
#[cfg(feature = "runtime")]
mod call;
#[cfg(feature = "runtime")]
mod driver;
mod gate;
mod logging;
mod policy;
#[cfg(feature = "runtime")]
mod server;
mod startup;
pub mod supervisor;
#[cfg(feature = "runtime")]
mod udp;

#[cfg(feature = "runtime")]
pub use call::{CallError, Patience, call, notify};
#[cfg(feature = "runtime")]
pub use driver::{Driver, FORCE_EPOLL_VAR, run, run_with, spawn};
pub use gate::{Admission, Gate};
pub use logging::init_logging;
pub use policy::{AddressError, listen_addr, parse_host_port};
#[cfg(feature = "runtime")]
pub use server::{Dropped, Handler, Origin, UNSIGNED, send_reply, serve};
pub use startup::{KeyArgs, KeysError, MeshKeyArgs, start};
#[cfg(feature = "runtime")]
pub use startup::{shutdown_requested, shutdown_signal};
#[cfg(feature = "runtime")]
pub use udp::UdpEndpoint;
