//! The Conductor (`skr8tr_sched`): placement, replica enforcement, rollouts and autoscale.
//! [`placement`] and [`reconcile`] are pure planners over [`model`]; [`state`] holds every
//! decision; [`calls`] carries them to nodes and the Tower; [`server`] owns the sockets.

pub mod autoscale;
pub mod calls;
pub mod model;
pub mod placement;
pub mod reconcile;
pub mod rollout;
pub mod server;
pub mod state;
pub mod store;
