//! skr8tr's roles bundled into one process. The separate daemons (`skr8tr_reg`, `skr8tr_sched`,
//! `skr8tr_node`, `skr8tr_ingress`) each live in their own crate; this one puts several of them
//! on threads of one process and owns only that wiring:
//!
//! ```text
//! plane   Tower + Conductor + node agent, threads started and stopped in order  (skr8tr_server)
//! dev     plane + ingress + example service, manifests deployed, Ctrl-C stops all (skr8tr dev)
//! cli     the `skr8tr` command line: the operator's commands (skr8tr_control::cli) + dev,
//!         completions and man
//! manual  shell completions and every binary's man page, from their clap definitions
//! ```
//!
//! It is the only crate that depends on the control plane, the node agent and the ingress
//! together; none of those depends on it.

pub mod cli;
pub mod dev;
pub mod manual;
pub mod plane;
