//! `up`, `down`, `scale` and `rollout` against a fake Conductor: what is sent (inline, signed),
//! what is printed, and the exit codes.

use std::sync::{Arc, Mutex};

use skr8tr_proto::auth::{KeyRole, Verifier};
use skr8tr_proto::wire::{ConductorRequest, ManifestSource, Message};

use super::fake::{Fake, bare, verb};
use super::{operator_key, run, stderr, stdout};

const API: &str = "app api-server\n  exec /bin/true\n  port auto\n  replicas 3\n";
const WEB: &str = "app web {\n  exec /bin/true\n  replicas 2\n}\n";

#[test]
fn up_sends_the_file_inline_and_signed_and_prints_the_placement() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("api.skr8tr"), API).unwrap();
    std::fs::write(home.path().join("web.skr8tr"), WEB).unwrap();
    let (key, public) = operator_key(home.path());
    let conductor = Fake::start(|i, _| {
        Some(
            [
                "OK|SUBMITTED|api-server|node-a,node-b,node-a",
                "OK|SUBMITTED|web|pending",
            ][i.min(1)]
            .to_owned(),
        )
    });
    let c = conductor.addr.to_string();
    let out = run(
        home.path(),
        &[
            "up",
            "api.skr8tr",
            "web.skr8tr",
            "--conductor",
            &c,
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "api-server  submitted  3 replicas on node-a, node-b\n\
         web         pending    no node can take it yet; the conductor keeps trying\n"
    );

    let sent = conductor.received();
    assert_eq!(sent.len(), 2, "one SUBMIT per file");
    let mut verifier = Verifier::new(KeyRole::Operator, [public]);
    for (datagram, text) in sent.iter().zip([API, WEB]) {
        let bare = verifier
            .verify(datagram)
            .expect("signed with the operator key");
        assert!(bare.starts_with("SUBMIT|b64:"), "{bare}");
        assert_eq!(
            ConductorRequest::decode(bare.as_bytes()).unwrap(),
            ConductorRequest::Submit(ManifestSource::Inline(text.to_owned()))
        );
    }
}

#[test]
fn up_uses_the_default_key_and_goes_unsigned_without_one() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("api.skr8tr"), API).unwrap();
    let conductor = Fake::always("OK|SUBMITTED|api-server|n1,n2,n3");
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["up", "api.skr8tr", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "api-server  submitted  3 replicas on n1, n2, n3\n"
    );
    let unsigned = &conductor.received()[0];
    assert_eq!(bare(unsigned), unsigned.as_str(), "no key: sent unsigned");

    // ~/.skr8tr/signing.sec is used when it exists.
    let dir = home.path().join(".skr8tr");
    std::fs::create_dir(&dir).unwrap();
    let (key, public) = operator_key(&dir);
    std::fs::rename(key, dir.join("signing.sec")).unwrap();
    let out = run(home.path(), &["up", "api.skr8tr", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut verifier = Verifier::new(KeyRole::Operator, [public]);
    assert!(verifier.verify(&conductor.received()[1]).is_ok());
}

#[test]
fn up_of_an_invalid_manifest_exits_1_and_sends_nothing() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("good.skr8tr"), API).unwrap();
    std::fs::write(
        home.path().join("bad.skr8tr"),
        "app api\n  exce /bin/true\n",
    )
    .unwrap();
    let conductor = Fake::always("OK|SUBMITTED|api|n1");
    let c = conductor.addr.to_string();
    let out = run(
        home.path(),
        &["up", "good.skr8tr", "bad.skr8tr", "--conductor", &c],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.skr8tr:2:3: unknown key `exce` in app `api`; did you mean `exec`?\n"),
        "{err}"
    );
    assert!(!err.contains("good.skr8tr"), "{err}");
    assert!(
        err.ends_with("skr8tr: up: nothing sent: fix the manifest errors above\n"),
        "{err}"
    );
    assert_eq!(stdout(&out), "");
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(conductor.received().is_empty(), "nothing was sent");
}

#[test]
fn a_refused_submit_is_reported_per_file_and_exits_1() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("api.skr8tr"), API).unwrap();
    let conductor = Fake::always("ERR|NO_CAPACITY|no node has 3 free ports");
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["up", "api.skr8tr", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "skr8tr: up: api.skr8tr: NO_CAPACITY: no node has 3 free ports\n"
    );
}

#[test]
fn down_prints_the_refusal_and_exits_1() {
    let home = tempfile::tempdir().unwrap();
    let conductor = Fake::always("ERR|NOT_FOUND|x");
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["down", "api", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "skr8tr: down: NOT_FOUND: x\n");
    assert_eq!(stdout(&out), "");
    assert_eq!(conductor.received(), ["EVICT|api"]);

    let out = run(home.path(), &["down", "api", "--conductor", &c, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"command": "down", "ok": false,
                           "error": {"code": "NOT_FOUND", "message": "NOT_FOUND: x"}})
    );
}

#[test]
fn unauthorized_without_a_key_says_how_to_get_one() {
    let home = tempfile::tempdir().unwrap();
    let conductor = Fake::always("ERR|UNAUTHORIZED");
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["scale", "api", "2", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("skr8tr: scale: UNAUTHORIZED (the request went unsigned"),
        "{err}"
    );
}

#[test]
fn down_and_scale_succeed() {
    let home = tempfile::tempdir().unwrap();
    let conductor = Fake::start(|_, bare| match verb(bare) {
        "EVICT" => Some("OK|EVICTED|api".to_owned()),
        "SCALE" => Some(format!(
            "OK|SCALED|api|{}",
            bare.rsplit('|').next().unwrap()
        )),
        _ => None,
    });
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["down", "api", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "api  evicted\n");
    let out = run(home.path(), &["scale", "api", "5", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "api  scaled to 5 replicas\n");
    let out = run(
        home.path(),
        &["--json", "scale", "api", "1", "--conductor", &c],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"command": "scale", "ok": true, "app": "api", "replicas": 1})
    );
    assert_eq!(
        conductor.received(),
        ["EVICT|api", "SCALE|api|5", "SCALE|api|1"]
    );
}

/// A Conductor that starts a rollout and then reports `progress` in turn (the last one
/// forever); records the ROLLOUT_STATUS polls.
fn rollout_conductor(progress: &'static [&'static str]) -> (Fake, Arc<Mutex<usize>>) {
    let polls = Arc::new(Mutex::new(0));
    let counter = polls.clone();
    let fake = Fake::start(move |_, bare| match verb(bare) {
        "ROLLOUT" => Some("OK|ROLLOUT|api".to_owned()),
        "ROLLOUT_STATUS" => {
            let mut n = counter.lock().expect("the poll counter");
            let reply = progress[(*n).min(progress.len() - 1)];
            *n += 1;
            Some(format!("OK|ROLLOUT_STATUS|api|{reply}"))
        }
        _ => None,
    });
    (fake, polls)
}

fn write_api(home: &std::path::Path) -> String {
    let path = home.join("api.skr8tr");
    std::fs::write(&path, "app api\n  exec /bin/true\n  replicas 2\n").expect("write the manifest");
    path.to_str().expect("a UTF-8 path").to_owned()
}

#[test]
fn rollout_prints_progress_when_it_changes_and_exits_0_on_complete() {
    let home = tempfile::tempdir().unwrap();
    let file = write_api(home.path());
    let (conductor, polls) = rollout_conductor(&[
        "running|0|2|waiting for api.g2.r1 to be healthy",
        "running|0|2|waiting for api.g2.r1 to be healthy",
        "running|1|2|draining api.g1.r1",
        "complete|2|2|",
    ]);
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["rollout", &file, "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "api  rollout started\n\
         api  running  0/2  waiting for api.g2.r1 to be healthy\n\
         api  running  1/2  draining api.g1.r1\n\
         api  complete  2/2\n"
    );
    assert_eq!(*polls.lock().unwrap(), 4);
    let sent = conductor.received();
    assert!(bare(&sent[0]).starts_with("ROLLOUT|b64:"));
    assert!(
        sent[1..].iter().all(|d| d == "ROLLOUT_STATUS|api"),
        "{sent:?}"
    );
}

#[test]
fn rollout_exits_1_with_the_reason_when_reverted() {
    let home = tempfile::tempdir().unwrap();
    let file = write_api(home.path());
    let (conductor, _) = rollout_conductor(&[
        "running|0|2|waiting for api.g2.r1 to be healthy",
        "reverting|0|2|api.g2.r1 not healthy within 60s",
        "reverted|0|2|api.g2.r1 not healthy within 60s",
    ]);
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["rollout", &file, "--conductor", &c]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).ends_with("api  reverted  0/2  api.g2.r1 not healthy within 60s\n"));
    assert_eq!(
        stderr(&out),
        "skr8tr: rollout: api reverted (0/2 replaced): api.g2.r1 not healthy within 60s\n"
    );

    let out = run(
        home.path(),
        &["rollout", &file, "--conductor", &c, "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["state"], "reverted");
}

#[test]
fn rollout_still_running_at_the_deadline_exits_2() {
    let home = tempfile::tempdir().unwrap();
    let file = write_api(home.path());
    let (conductor, _) = rollout_conductor(&["running|1|2|draining api.g1.r1"]);
    let c = conductor.addr.to_string();
    let out = run(
        home.path(),
        &["rollout", &file, "--conductor", &c, "--wait-timeout-s", "1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("gave up waiting after 1 s"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rollout_detached_returns_once_started() {
    let home = tempfile::tempdir().unwrap();
    let file = write_api(home.path());
    let (conductor, polls) = rollout_conductor(&["running|0|2|"]);
    let c = conductor.addr.to_string();
    let out = run(
        home.path(),
        &["rollout", &file, "--detach", "--conductor", &c],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("api  rollout started"));
    assert_eq!(*polls.lock().unwrap(), 0);
    assert_eq!(conductor.received().len(), 1);
}
