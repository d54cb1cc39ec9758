//! The ingress integration suite: the real proxy in front of a recording backend, driven by
//! raw sockets.

// Test code, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod util;

mod discovery;
mod failures;
mod operations;
mod rejections;
mod routing;
mod semantics;
mod serve;
mod supervised;
mod tls;
