//! The Tower (`skr8tr_reg`): the service registry and the table of routes apps publish.
//! [`registry`] and [`routes`] are the pure state machines; [`server`] answers requests from
//! them on `skr8tr_daemon`'s datagram server, sends the pushes, and expires entries;
//! [`metrics`] counts it for the admin listener.

pub mod metrics;
pub mod registry;
pub mod routes;
pub mod server;
