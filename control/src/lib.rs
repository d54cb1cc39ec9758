//! skr8tr's control plane: the Tower ([`tower`], `skr8tr_reg`), the Conductor ([`conductor`],
//! `skr8tr_sched`), their shared flags ([`options`]) and the operator CLI's commands ([`cli`] over
//! [`client`]).
//!
//! It runs no node agent and no ingress: the binaries that bundle several roles into one
//! process (`skr8tr`, which offers `skr8tr dev`, and `skr8tr_server`) are in `skr8tr-bundle`.

pub mod cli;
pub mod client;
pub mod conductor;
pub mod options;
pub mod tower;
