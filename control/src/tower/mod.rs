//! The Tower (`skr8tr_reg`): the service registry. [`registry`] is the pure state machine;
//! the daemon that feeds it datagrams comes with the control-plane issue.

pub mod registry;
pub mod server;
