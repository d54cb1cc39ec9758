//! `logs` (with and without `-f`) and `exec` against a fake Conductor.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skr8tr_proto::auth::{KeyRole, Verifier};

use super::fake::{Fake, bare};
use super::{operator_key, run, spawn, stderr, stdout};

#[test]
fn logs_prints_the_newest_lines_signed() {
    let home = tempfile::tempdir().unwrap();
    let (key, public) = operator_key(home.path());
    let conductor =
        Fake::always("OK|LOGS|api.g1.r2|3|starting\nlistening on :8080\nGET /healthz 200");
    let c = conductor.addr.to_string();
    let out = run(
        home.path(),
        &[
            "logs",
            "api",
            "--replica",
            "api.g1.r2",
            "--conductor",
            &c,
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "starting\nlistening on :8080\nGET /healthz 200\n"
    );
    let sent = conductor.received();
    let mut verifier = Verifier::new(KeyRole::Operator, [public]);
    assert_eq!(verifier.verify(&sent[0]).unwrap(), "LOGS|api|api.g1.r2");
}

#[test]
fn logs_follow_prints_only_new_lines() {
    let home = tempfile::tempdir().unwrap();
    let windows = [
        "OK|LOGS|api.g1.r1|2|a\nb",
        "OK|LOGS|api.g1.r1|2|a\nb",
        "OK|LOGS|api.g1.r1|3|a\nb\nc",
        // The ring dropped `a` and got `d`.
        "OK|LOGS|api.g1.r1|3|b\nc\nd",
    ];
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    let conductor = Fake::start(move |i, bare| {
        log.lock().unwrap().push(bare.to_owned());
        Some(windows[i.min(windows.len() - 1)].to_owned())
    });
    let c = conductor.addr.to_string();
    let mut child = spawn(home.path(), &["logs", "api", "-f", "--conductor", &c]);
    let polls = conductor.wait_for(6, Duration::from_secs(10));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(polls >= 6, "only {polls} polls");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "a\nb\nc\nd\n");
    let asked = asked.lock().unwrap();
    assert_eq!(asked[0], "LOGS|api");
    assert!(
        asked[1..].iter().all(|a| a == "LOGS|api|api.g1.r1"),
        "sticks to the replica: {asked:?}"
    );
}

#[test]
fn exec_prints_the_output_and_exits_with_the_remote_code() {
    let home = tempfile::tempdir().unwrap();
    let (key, public) = operator_key(home.path());
    let conductor = Fake::always("OK|EXEC|api.g1.r1|3|12\nsome | output\n");
    let c = conductor.addr.to_string();
    let out = run(
        home.path(),
        &[
            "exec",
            "api",
            "--conductor",
            &c,
            "--key",
            key.to_str().unwrap(),
            "--",
            "ls",
            "-l",
            "/data | wc -l",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "12\nsome | output\n");
    let mut verifier = Verifier::new(KeyRole::Operator, [public]);
    assert_eq!(
        verifier.verify(&conductor.received()[0]).unwrap(),
        "EXEC|api|ls -l /data | wc -l"
    );

    let zero = Fake::always("OK|EXEC|api.g1.r1|0|");
    let z = zero.addr.to_string();
    let out = run(home.path(), &["exec", "--conductor", &z, "api", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");

    let killed = Fake::always("OK|EXEC|api.g1.r1|-9|");
    let k = killed.addr.to_string();
    let out = run(home.path(), &["exec", "--conductor", &k, "api", "sleep 99"]);
    assert_eq!(out.status.code(), Some(137));
    assert!(
        stderr(&out).contains("killed by signal 9"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_is_sent_once_even_when_no_reply_comes() {
    let home = tempfile::tempdir().unwrap();
    let conductor = Fake::silent();
    let c = conductor.addr.to_string();
    let out = run(
        home.path(),
        &[
            "exec",
            "--conductor",
            &c,
            "--timeout-ms",
            "600",
            "api",
            "touch /tmp/x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("skr8tr: exec: no reply from"),
        "{}",
        stderr(&out)
    );
    let sent = conductor.received();
    assert_eq!(sent.len(), 1, "EXEC is not idempotent: {sent:?}");
    assert_eq!(bare(&sent[0]), "EXEC|api|touch /tmp/x");
}
