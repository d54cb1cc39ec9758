//! The Tower (`skr8tr_reg`): the service registry. [`registry`] is the pure state machine;
//! [`server`] answers requests from it on `skr8tr_daemon`'s datagram server, sends the pushes,
//! and expires entries.

pub mod registry;
pub mod server;
