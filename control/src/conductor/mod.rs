//! The Conductor (`skr8tr_sched`): placement, replica enforcement, rollouts and autoscale.
//! [`placement`] and [`reconcile`] are pure planners over [`model`]; [`state`] holds every
//! decision; [`calls`] carries them to nodes and the Tower; [`server`] owns the sockets.
//! [`events`] keeps what happened (the event ring), [`metrics`] counts it, and [`status`]
//! renders both, with the state, for the admin listener (metrics, status page); [`plan`] says
//! what a SUBMIT would change; [`schedule`] says when scheduled jobs run.

pub mod autoscale;
pub mod calls;
pub mod events;
pub mod metrics;
pub mod model;
pub mod placement;
pub mod plan;
pub mod reconcile;
pub mod rollout;
pub mod schedule;
pub mod server;
pub mod state;
pub mod status;
pub mod store;
