//! Health probes against a tiny in-test HTTP server standing in for the replica's port.

use std::time::Duration;

use skr8tr_node::{KillOutcome, Phase};
use skr8tr_proto::manifest::{Health, HealthCheck, PortSpec, RestartPolicy};

use crate::util::*;

fn probed(name: &str, port: u16, check: HealthCheck) -> skr8tr_proto::manifest::App {
    let mut a = app(name, "/bin/sleep", &["30"]);
    a.port = Some(PortSpec::Fixed(port));
    a.restart = RestartPolicy::Always;
    a.drain = Duration::from_millis(200);
    a.health = Some(Health {
        check,
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        retries: 2,
    });
    a
}

fn http(status: u16) -> HealthCheck {
    HealthCheck::Http {
        path: "/health".into(),
        status,
    }
}

#[tokio::test]
async fn http_200_makes_it_healthy() {
    let n = node().await;
    let port = http_server(200).await;
    n.engine
        .launch(rid("ok1"), 1, probed("ok", port, http(200)))
        .await
        .unwrap();
    let seen = n
        .events
        .wait_for(|s| matches!(s, Seen::Healthy { .. }))
        .await;
    assert_eq!(
        seen,
        Seen::Healthy {
            replica: "ok1".into(),
            port: Some(port)
        }
    );
    assert_eq!(n.engine.status()[0].phase, Phase::Healthy);
    assert_eq!(
        bounded(n.engine.kill(&rid("ok1"))).await,
        KillOutcome::Stopped
    );
    // Stopping comes before Exited, so the glue can deregister first.
    let kinds: Vec<_> = n.events.all();
    let stopping = kinds
        .iter()
        .position(|s| matches!(s, Seen::Stopping { .. }))
        .unwrap();
    let exited = kinds
        .iter()
        .position(|s| matches!(s, Seen::Exited { .. }))
        .unwrap();
    assert!(stopping < exited);
}

#[tokio::test]
async fn http_500_is_never_healthy_and_is_restarted() {
    let n = node().await;
    let port = http_server(500).await;
    n.engine
        .launch(rid("bad1"), 1, probed("bad", port, http(200)))
        .await
        .unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Unhealthy { .. }))
        .await;
    n.events
        .wait_for(|s| {
            matches!(
                s,
                Seen::Exited {
                    restarting: true,
                    ..
                }
            )
        })
        .await;
    assert!(eventually(|| n.engine.status()[0].restarts >= 1).await);
    assert_eq!(n.events.count(|s| matches!(s, Seen::Healthy { .. })), 0);
    assert_eq!(
        bounded(n.engine.kill(&rid("bad1"))).await,
        KillOutcome::Stopped
    );
}

#[tokio::test]
async fn tcp_probe_and_never_policy_keeps_an_unhealthy_replica() {
    let n = node().await;
    let port = http_server(200).await;
    n.engine
        .launch(rid("tcp1"), 1, probed("tcp", port, HealthCheck::Tcp))
        .await
        .unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Healthy { .. }))
        .await;

    // Nothing listens on this port: unhealthy, but `never` leaves it running.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut a = probed("down", closed, HealthCheck::Tcp);
    a.restart = RestartPolicy::Never;
    n.engine.launch(rid("down1"), 1, a).await.unwrap();
    n.events
        .wait_for(|s| s.replica() == "down1" && matches!(s, Seen::Unhealthy { .. }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = n.engine.status();
    let down = st.iter().find(|s| s.replica.as_str() == "down1").unwrap();
    assert_eq!(down.phase, Phase::Unhealthy);
    assert!(down.pid.is_some());
    bounded(n.engine.shutdown()).await;
}
