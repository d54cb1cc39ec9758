//! Test helpers: a recording backend, raw-socket clients, and the ingress started in-process.

#![allow(dead_code)]

pub mod backend;
pub mod client;
pub mod partition;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use skr8tr_ingress::route::Route;
use skr8tr_ingress::{Config, IngressHandle};

/// An ingress routing `/` to `web` at `backends`, with `tune` applied to its config.
pub fn ingress_with(backends: &[SocketAddr], tune: impl FnOnce(&mut Config)) -> IngressHandle {
    let routes = vec![Route::parse_flag("/:web").unwrap()];
    let static_backends = backends
        .iter()
        .map(|a| ("web".parse().unwrap(), *a))
        .collect();
    let mut config = Config::local(routes, static_backends);
    config.timeouts.connect = Duration::from_millis(500);
    config.timeouts.response_head = Duration::from_secs(5);
    tune(&mut config);
    skr8tr_ingress::start(config).unwrap()
}

/// An ingress in front of one backend.
pub fn ingress(backend: SocketAddr) -> IngressHandle {
    ingress_with(&[backend], |_| {})
}

/// The VmRSS of this process in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
