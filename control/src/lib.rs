//! skr8tr's control plane. For now: the operator CLI's commands ([`cli`]) that need no daemon
//! (manifest checking and the key tool); the Tower and the Conductor join here with their issue.

pub mod cli;
pub mod client;
pub mod conductor;
pub mod tower;
