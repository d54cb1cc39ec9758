//! The node agent daemon end to end: the real `agent::run` on loopback with ephemeral ports,
//! the real Tower, and a fake Conductor (a UDP socket the test reads heartbeats and deaths
//! from). Replicas are real processes (`sleep`, `sh`/`bash` scripts); where a test needs an
//! HTTP health endpoint, an in-test listener on the replica's fixed port stands in for it, so
//! no test depends on a built example binary.

mod auth;
mod lifecycle;
mod metrics;
mod requests;
mod restart;

use std::time::Duration;

use skr8tr_proto::manifest::{App, EnvVar, Health, HealthCheck, PortSpec};

use crate::util::app;

/// `sleep 60` that is never restarted.
fn sleeper(name: &str) -> App {
    app(name, "/bin/sleep", &["60"])
}

/// `script` under `shell -c`, listening (as far as the node knows) on `port`, healthy when
/// `GET /healthz` answers 200, with `env`.
fn service(name: &str, shell: &str, script: &str, port: u16, env: &[(&str, String)]) -> App {
    let mut a = app(name, shell, &["-c", script]);
    a.port = Some(PortSpec::Fixed(port));
    a.health = Some(Health {
        check: HealthCheck::Http {
            path: "/healthz".into(),
            status: 200,
        },
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(80),
        retries: 2,
    });
    a.env = env
        .iter()
        .map(|(k, v)| EnvVar {
            key: (*k).to_owned(),
            value: v.clone(),
        })
        .collect();
    a
}
