//! skr8tr's shared contract, used by every daemon and the CLI: the `.skr8tr` manifest language
//! ([`manifest`]), the UDP datagrams the daemons exchange ([`wire`]) and ML-DSA-65 signing of
//! commands ([`auth`]), plus the validated names they all carry ([`name`]) and the edge routes
//! apps declare ([`route`]).
//!
//! This crate does no I/O beyond reading and writing key files, starts no runtime and opens no
//! socket: everything here is a pure function of its input, so it is tested exhaustively
//! without daemons.

pub mod auth;
pub mod manifest;
pub mod name;
pub mod route;
pub mod wire;
