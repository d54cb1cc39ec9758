//! Agent restart: replicas recorded in the state directory are adopted when their process is
//! still the same, forgotten otherwise; never orphaned, never duplicated.

use std::time::Duration;

use skr8tr_node::{Engine, KillOutcome, Phase, Termination};
use skr8tr_proto::manifest::{Health, HealthCheck, PortSpec};

use crate::util::*;

#[tokio::test]
async fn a_restarted_engine_adopts_running_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let (first, events, _) = Engine::start(config(dir.path())).await.unwrap();
    let node_id = first.node_id().clone();
    let rec1 = Recorder::spawn(events);
    let a = sh("adoptee", "echo before-restart; exec sleep 30");
    let pid = first
        .launch(rid("a1"), 4, a.clone())
        .await
        .unwrap()
        .pid
        .unwrap();
    assert!(eventually(|| first.logs(&rid("a1")).unwrap() == ["before-restart"]).await);
    first.detach().await; // an agent crash: nothing is signalled
    assert!(!ended(pid));
    assert_eq!(
        rec1.count(|s| matches!(s, Seen::Stopping { .. } | Seen::Exited { .. })),
        0
    );

    let (second, events, report) = Engine::start(config(dir.path())).await.unwrap();
    let cleanup = Cleanup(second.clone());
    let rec2 = Recorder::spawn(events);
    assert_eq!(second.node_id(), &node_id, "node id is stable");
    assert_eq!(report.adopted, [rid("a1")]);
    assert!(report.forgotten.is_empty());
    rec2.wait_for(|s| matches!(s, Seen::Started { adopted: true, .. }))
        .await;
    rec2.wait_for(|s| matches!(s, Seen::Healthy { .. })).await;
    let st = second.status();
    assert_eq!(st.len(), 1);
    assert_eq!(
        (st[0].pid, st[0].generation, st[0].adopted),
        (Some(pid), 4, true)
    );
    assert_eq!(
        second.logs(&rid("a1")).unwrap(),
        ["before-restart"],
        "ring rebuilt from the file"
    );
    // Launching it again is not a duplicate.
    let again = second.launch(rid("a1"), 4, a).await.unwrap();
    assert!(again.already_running && again.pid == Some(pid));
    assert_eq!(bounded(second.kill(&rid("a1"))).await, KillOutcome::Stopped);
    assert!(eventually(|| ended(pid)).await);
    drop(cleanup); // it holds an engine handle, hence the state directory's lock
    second.detach().await;

    let (_third, _events, report) = Engine::start(config(dir.path())).await.unwrap();
    assert!(
        report.adopted.is_empty() && report.forgotten.is_empty(),
        "{report:?}"
    );
}

/// An agent of the previous format (version 1: the app spec as a serde mirror, not manifest
/// text) is replaced in place: the new agent adopts its replica and rewrites the record.
#[tokio::test]
async fn an_agent_upgraded_from_version_1_records_adopts_their_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _events, _) = Engine::start(config(dir.path())).await.unwrap();
    let old = app("old", "/bin/sleep", &["30"]);
    let pid = first
        .launch(rid("o1"), 3, old.clone())
        .await
        .unwrap()
        .pid
        .unwrap();
    first.detach().await;
    // Rewrite the file as the version-1 agent would have written it.
    let path = dir.path().join("replicas.json");
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    file["version"] = 1.into();
    file["replicas"][0]["app"] = serde_json::json!({
        "name": "old", "kind": "service", "exec": "/bin/sleep", "args": ["30"], "port": null,
        "replicas": 1, "ram": null, "cpu_millicores": null, "gpu": null, "restart": "never",
        "drain_ms": 500, "health": null, "scale": null,
        "rollout": {"settle_ms": 8000, "healthy_deadline_ms": 60000, "auto_revert": true},
        "env": [], "secrets": [], "volumes": [], "build": null, "serve": null, "vm": null
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();

    let (second, events, report) = Engine::start(config(dir.path())).await.unwrap();
    let _cleanup = Cleanup(second.clone());
    let rec = Recorder::spawn(events);
    assert_eq!(report.adopted, [rid("o1")]);
    rec.wait_for(|s| matches!(s, Seen::Started { adopted: true, .. }))
        .await;
    let st = second.status();
    assert_eq!((st[0].pid, st[0].generation), (Some(pid), 3));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(file["version"], 2);
    assert_eq!(
        file["replicas"][0]["app"],
        skr8tr_proto::manifest::print_app(&old)
    );
    assert_eq!(bounded(second.kill(&rid("o1"))).await, KillOutcome::Stopped);
    assert!(eventually(|| ended(pid)).await);
}

#[tokio::test]
async fn an_adopted_replica_that_dies_is_restarted_and_probed() {
    let dir = tempfile::tempdir().unwrap();
    let port = http_server(200).await;
    let mut a = app("phoenix", "/bin/sleep", &["30"]);
    a.restart = skr8tr_proto::manifest::RestartPolicy::Always;
    a.port = Some(PortSpec::Fixed(port));
    // A valid manifest app (timeout < interval): the record keeps it as manifest text.
    a.health = Some(Health {
        check: HealthCheck::Tcp,
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        retries: 2,
    });
    let (first, _events, _) = Engine::start(config(dir.path())).await.unwrap();
    let pid = first.launch(rid("ph1"), 1, a).await.unwrap().pid.unwrap();
    first.detach().await;

    let (second, events, report) = Engine::start(config(dir.path())).await.unwrap();
    let _cleanup = Cleanup(second.clone());
    let rec = Recorder::spawn(events);
    assert_eq!(report.adopted, [rid("ph1")]);
    rec.wait_for(|s| matches!(s, Seen::Healthy { .. })).await;
    std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    rec.wait_for(|s| {
        matches!(
            s,
            Seen::Exited {
                termination: Termination::Unknown,
                restarting: true,
                ..
            }
        )
    })
    .await;
    let new_pid = match rec
        .wait_for(|s| matches!(s, Seen::Started { adopted: false, .. }))
        .await
    {
        Seen::Started { pid, .. } => pid,
        other => panic!("{other:?}"),
    };
    assert_ne!(new_pid, pid);
    assert!(eventually(|| second.status()[0].phase == Phase::Healthy).await);
    bounded(second.shutdown()).await;
    assert!(eventually(|| reaped(new_pid)).await);
}

#[tokio::test]
async fn stale_records_are_forgotten_and_nothing_is_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _events, _) = Engine::start(config(dir.path())).await.unwrap();
    let dead = first
        .launch(rid("dead1"), 1, app("d", "/bin/sleep", &["30"]))
        .await
        .unwrap()
        .pid
        .unwrap();
    let other = first
        .launch(rid("reused1"), 1, app("d", "/bin/sleep", &["30"]))
        .await
        .unwrap()
        .pid
        .unwrap();
    first.detach().await;
    // dead1's process dies while no agent runs; reused1's record is made to name another
    // live process (this test itself), as after pid reuse.
    std::process::Command::new("kill")
        .arg("-9")
        .arg(dead.to_string())
        .status()
        .unwrap();
    assert!(eventually(|| ended(dead)).await);
    let state = dir.path().join("replicas.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let text = text.replace(
        &format!("\"pid\": {other}"),
        &format!("\"pid\": {}", std::process::id()),
    );
    std::fs::write(&state, text).unwrap();

    let (second, events, mut report) = Engine::start(config(dir.path())).await.unwrap();
    let rec = Recorder::spawn(events);
    report.forgotten.sort();
    assert_eq!(report.forgotten, [rid("dead1"), rid("reused1")]);
    assert!(report.adopted.is_empty());
    rec.wait_for(|s| {
        s.replica() == "reused1"
            && matches!(
                s,
                Seen::Exited {
                    restarting: false,
                    ..
                }
            )
    })
    .await;
    assert!(
        second
            .status()
            .iter()
            .all(|s| s.phase == Phase::Exited && s.pid.is_none())
    );
    assert_eq!(second.kill(&rid("dead1")).await, KillOutcome::AlreadyEnded);
    // Clean up the process the edited record no longer names.
    std::process::Command::new("kill")
        .arg("-9")
        .arg(other.to_string())
        .status()
        .unwrap();
}

/// A replica that ended for good before the agent restarted is listed again as it ended (with
/// its exit and its logs), so the Conductor never mistakes it for one that vanished; nothing
/// is started or reported for it.
#[tokio::test]
async fn a_restarted_engine_lists_replicas_that_had_ended_as_they_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (first, events, _) = Engine::start(config(dir.path())).await.unwrap();
    let rec1 = Recorder::spawn(events);
    let mut job = sh("job", "echo done");
    job.kind = skr8tr_proto::manifest::WorkloadKind::Job;
    first.launch(rid("j1"), 1, job).await.unwrap();
    first
        .launch(rid("f1"), 1, sh("brittle", "exit 3"))
        .await
        .unwrap();
    for r in ["j1", "f1"] {
        rec1.wait_for(|s| matches!(s, Seen::Exited { replica, .. } if replica == r))
            .await;
    }
    first.detach().await;

    let (second, events, report) = Engine::start(config(dir.path())).await.unwrap();
    let _cleanup = Cleanup(second.clone());
    let rec2 = Recorder::spawn(events);
    assert_eq!(report.ended, [rid("f1"), rid("j1")]);
    assert!(report.adopted.is_empty() && report.forgotten.is_empty());
    let ends: Vec<_> = second
        .status()
        .into_iter()
        .map(|s| (s.replica.to_string(), s.phase, s.last_exit, s.pid))
        .collect();
    assert_eq!(
        ends,
        [
            ("f1".into(), Phase::Failed, Some(Termination::Code(3)), None),
            ("j1".into(), Phase::Exited, Some(Termination::Code(0)), None),
        ]
    );
    assert_eq!(
        second.logs(&rid("j1")).unwrap(),
        ["done", "[skr8tr-node] exit code 0"]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rec2.all().is_empty(), "{:?}", rec2.all());
}
