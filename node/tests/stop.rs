//! Stopping: SIGTERM to the group, drain, SIGKILL; and the Stopping gate.

use std::time::{Duration, Instant};

use skr8tr_node::{Event, KillOutcome, Termination};

use crate::util::*;

#[tokio::test]
async fn a_group_ignoring_sigterm_is_killed_after_drain() {
    let n = node().await;
    let pidfile = n.dir.path().join("grandchild.pid");
    let script = format!(
        "trap '' TERM; sleep 1000 & echo $! > {}; wait",
        pidfile.display()
    );
    let mut a = sh("stubborn", &script);
    a.drain = Duration::from_millis(400);
    let leader = n.engine.launch(rid("s1"), 1, a).await.unwrap().pid.unwrap();
    assert!(
        eventually(|| std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))).await
    );
    let grandchild: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t0 = Instant::now();
    assert_eq!(
        bounded(n.engine.kill(&rid("s1"))).await,
        KillOutcome::Stopped
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(350),
        "SIGKILL came before the drain"
    );
    let exited = n
        .events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    assert!(matches!(
        exited,
        Seen::Exited {
            termination: Termination::Signal(9),
            restarting: false,
            ..
        }
    ));
    assert!(eventually(|| reaped(leader)).await);
    assert!(
        eventually(|| ended(grandchild)).await,
        "grandchild survived"
    );
}

#[tokio::test]
async fn sigterm_ends_a_well_behaved_replica_without_waiting_for_drain() {
    let n = node().await;
    let mut a = app("polite", "/bin/sleep", &["30"]);
    a.drain = Duration::from_secs(20);
    n.engine.launch(rid("pol1"), 1, a).await.unwrap();
    let t0 = Instant::now();
    assert_eq!(
        bounded(n.engine.kill(&rid("pol1"))).await,
        KillOutcome::Stopped
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    n.events
        .wait_for(|s| {
            matches!(
                s,
                Seen::Exited {
                    termination: Termination::Signal(15),
                    ..
                }
            )
        })
        .await;
}

#[tokio::test]
async fn the_stopping_gate_holds_the_signal_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.stop_gate_timeout = Duration::from_secs(30);
    let (engine, mut events, _) = skr8tr_node::Engine::start(cfg).await.unwrap();
    let _cleanup = Cleanup(engine.clone());
    let pid = engine
        .launch(rid("g1"), 1, app("g", "/bin/sleep", &["30"]))
        .await
        .unwrap()
        .pid
        .unwrap();
    let killer = tokio::spawn({
        let engine = engine.clone();
        async move { engine.kill(&rid("g1")).await }
    });
    let gate = bounded(async {
        loop {
            if let Some(Event::Stopping { gate, .. }) = events.recv().await {
                return gate;
            }
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!ended(pid), "signalled before the gate was released");
    assert!(!killer.is_finished());
    gate.release();
    assert_eq!(bounded(killer).await.unwrap(), KillOutcome::Stopped);
    assert!(eventually(|| reaped(pid)).await);
}
