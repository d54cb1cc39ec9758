//! The bundle's integration tests: the `skr8tr` binary (`CARGO_BIN_EXE_skr8tr`) run as an
//! operator would, in temporary directories, against fake daemons (`cli_daemons`), against
//! `skr8tr_server` (`server`) and as `skr8tr dev` (`dev`); and whole meshes in-process (`mesh`:
//! Tower, Conductor, node agents and the ingress on loopback ephemeral ports), the Conductor's
//! status page among them in a real headless Chromium (`browser`).

// Test code may panic on anything unexpected: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod check;
mod cli_daemons;
mod dev;
mod external;
mod keys;
mod manual;
mod mesh;
mod server;
mod supervised;
// The control crate's in-process daemon runner, shared rather than copied.
#[path = "../../control/tests/util/mod.rs"]
mod util;
