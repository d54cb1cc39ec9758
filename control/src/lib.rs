//! skr8tr's control plane: the Tower ([`tower`], `skr8tr_reg`), the Conductor ([`conductor`],
//! `skr8tr_sched`), the operator CLI ([`cli`] over [`client`]) and `skr8tr dev` ([`dev`]), which
//! runs a whole mesh in one process. [`plane`] runs the Tower, the Conductor and a node agent
//! together in one process (`skr8tr_server`, and `skr8tr dev`).

pub mod cli;
pub mod client;
pub mod conductor;
pub mod dev;
pub mod options;
pub mod plane;
pub mod tower;
