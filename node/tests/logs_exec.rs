//! The log ring through the engine, and exec into a replica.

use std::time::Duration;

use skr8tr_node::{ExecRequestError, Termination};
use skr8tr_proto::manifest::EnvVar;

use crate::util::*;

#[tokio::test]
async fn ring_keeps_the_last_200_lines_after_exit() {
    let n = node().await;
    let a = sh(
        "chatty",
        "i=1; while [ $i -le 250 ]; do echo line $i; i=$((i+1)); done; echo no-newline | tr -d '\\n'",
    );
    n.engine.launch(rid("l1"), 1, a).await.unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    let lines = n.engine.logs(&rid("l1")).unwrap();
    assert_eq!(lines.len(), 200, "{lines:?}");
    assert!(lines.contains(&"line 250".to_owned()));
    assert!(!lines.contains(&"line 50".to_owned()));
    assert!(
        lines.iter().any(|l| l.starts_with("no-newline")),
        "{lines:?}"
    );
    assert!(
        lines.last().unwrap().contains("exit code 0"),
        "the node's own note comes last"
    );
    assert!(n.engine.logs(&rid("unknown")).is_none());
}

#[tokio::test]
async fn logs_are_read_on_demand_while_running() {
    let n = node().await;
    n.engine
        .launch(rid("l2"), 1, sh("live", "echo hello; exec sleep 30"))
        .await
        .unwrap();
    assert!(eventually(|| n.engine.logs(&rid("l2")).unwrap() == ["hello"]).await);
    bounded(n.engine.shutdown()).await;
}

#[tokio::test]
async fn exec_sees_the_replica_environment_and_times_out() {
    let n = node().await;
    let mut a = app("ex", "/bin/sleep", &["30"]);
    a.env = vec![EnvVar {
        key: "MODE".into(),
        value: "canary".into(),
    }];
    n.engine.launch(rid("ex1"), 1, a).await.unwrap();
    let out = n
        .engine
        .exec(
            &rid("ex1"),
            "echo $MODE $SKR8TR_REPLICA; echo oops >&2; exit 4",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(out.output, "canary ex1\noops\n");
    assert_eq!(out.exit_code, Some(4));
    let out = n
        .engine
        .exec(&rid("ex1"), "sleep 20", Duration::from_millis(200))
        .await
        .unwrap();
    assert!(out.timed_out);
    assert_eq!(out.termination, Termination::Signal(9));
    let err = n
        .engine
        .exec(&rid("zzz"), "true", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecRequestError::UnknownReplica { .. }));
    bounded(n.engine.kill(&rid("ex1"))).await;
    let err = n
        .engine
        .exec(&rid("ex1"), "true", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecRequestError::NotRunning { .. }));
}
