//! Restart policies and back-off, with real crashing processes.

use std::time::Duration;

use skr8tr_node::{KillOutcome, Phase, Termination};
use skr8tr_proto::manifest::RestartPolicy;

use crate::util::*;

#[tokio::test]
async fn always_backs_off_a_crash_loop() {
    let n = node().await;
    let mut a = app("crash", "/bin/false", &[]);
    a.restart = RestartPolicy::Always;
    n.engine.launch(rid("c1"), 1, a).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let starts = n.events.count(|s| matches!(s, Seen::Started { .. }));
    // 100 ms doubling: starts near 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s. Without back-off a
    // crashing /bin/false would start hundreds of times in 3 s.
    assert!((3..=10).contains(&starts), "{starts} starts in 3 s");
    let restarting = n.events.count(|s| {
        matches!(
            s,
            Seen::Exited {
                restarting: true,
                ..
            }
        )
    });
    assert!(restarting >= starts - 1);
    let st = &n.engine.status()[0];
    assert!(st.restarts as usize >= starts - 1, "{st:?}");
    assert_eq!(
        bounded(n.engine.kill(&rid("c1"))).await,
        KillOutcome::Stopped
    );
    assert_eq!(n.engine.status()[0].phase, Phase::Exited);
    let after = n.events.count(|s| matches!(s, Seen::Started { .. }));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        n.events.count(|s| matches!(s, Seen::Started { .. })),
        after,
        "no restart after kill"
    );
}

#[tokio::test]
async fn on_failure_restarts_exit_1_but_not_exit_0() {
    let n = node().await;
    let mut fails = sh("onf", "exit 1");
    fails.restart = RestartPolicy::OnFailure;
    let mut succeeds = sh("onf", "exit 0");
    succeeds.restart = RestartPolicy::OnFailure;
    n.engine.launch(rid("onf1"), 1, fails).await.unwrap();
    n.engine.launch(rid("onf0"), 1, succeeds).await.unwrap();
    n.events
        .wait_for(|s| {
            s.replica() == "onf1"
                && matches!(
                    s,
                    Seen::Exited {
                        restarting: true,
                        ..
                    }
                )
        })
        .await;
    assert!(
        eventually(|| n
            .events
            .of("onf1")
            .iter()
            .filter(|s| matches!(s, Seen::Started { .. }))
            .count()
            >= 2)
        .await
    );
    n.events
        .wait_for(|s| s.replica() == "onf0" && matches!(s, Seen::Exited { .. }))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let onf0 = n.events.of("onf0");
    assert_eq!(
        onf0.iter()
            .filter(|s| matches!(s, Seen::Started { .. }))
            .count(),
        1,
        "{onf0:?}"
    );
    assert!(onf0.contains(&Seen::Exited {
        replica: "onf0".into(),
        termination: Termination::Code(0),
        restarting: false
    }));
    bounded(n.engine.shutdown()).await;
}

#[tokio::test]
async fn never_does_not_restart() {
    let n = node().await;
    n.engine
        .launch(rid("nv"), 1, app("nv", "/bin/false", &[]))
        .await
        .unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(n.events.count(|s| matches!(s, Seen::Started { .. })), 1);
    let st = &n.engine.status()[0];
    assert_eq!((st.phase, st.restarts), (Phase::Failed, 0));
}

#[tokio::test]
async fn a_helper_left_behind_by_an_exiting_replica_is_killed() {
    let n = node().await;
    let pidfile = n.dir.path().join("helper.pid");
    let script = format!("sleep 1000 & echo $! > {}; exit 1", pidfile.display());
    n.engine
        .launch(rid("h1"), 1, sh("h", &script))
        .await
        .unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    let helper: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        eventually(|| ended(helper)).await,
        "helper {helper} outlived its replica"
    );
}
