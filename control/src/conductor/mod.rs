//! The Conductor (`skr8tr_sched`): placement, replica enforcement, and (with later issues)
//! rollouts and autoscale. [`placement`] and [`reconcile`] are pure planners over [`model`].

pub mod autoscale;
pub mod model;
pub mod placement;
pub mod reconcile;
pub mod rollout;
pub mod server;
pub mod state;
pub mod store;
