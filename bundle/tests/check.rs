//! `skr8tr check FILE…` as an operator runs it: the normalised form on stdout (which checks
//! again), exact `file:line:col: message` errors on stderr, unreadable files, several files at
//! once, and secrets redacted unless `--show-secrets`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `examples/` directory.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Runs `skr8tr check ARGS…` in `dir`.
fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skr8tr"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the skr8tr binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

#[test]
fn a_good_manifest_prints_its_normalised_form() {
    let out = check(&examples(), &["api-server.skr8tr"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let expected = "\
app api-server {
  type service
  exec /usr/local/bin/myapi
  args --port 8080 --db postgres.internal:5432
  port 8080
  replicas 3
  restart always
  drain 2s
  health {
    check GET /healthz 200
    interval 10s
    timeout 2s
    retries 3
  }
  scale {
    min 1
    max 8
    cpu-above 80%
    cpu-below 20%
    cooldown 30s
  }
  rollout {
    settle 8s
    healthy-deadline 1m
    auto-revert true
  }
}
";
    assert_eq!(stdout(&out), expected);
}

#[test]
fn the_normalised_form_checks_again_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    for example in [
        "api-server",
        "nightly-report",
        "static-site",
        "wasm-filter",
        "vm-legacy",
        "worker-env",
    ] {
        let file = examples().join(format!("{example}.skr8tr"));
        let first = check(dir.path(), &["--show-secrets", file.to_str().unwrap()]);
        assert_eq!(
            first.status.code(),
            Some(0),
            "{example}: {}",
            stderr(&first)
        );
        let normalised = dir.path().join(format!("{example}.normalised.skr8tr"));
        fs::write(&normalised, stdout(&first)).unwrap();
        let second = check(
            dir.path(),
            &["--show-secrets", normalised.to_str().unwrap()],
        );
        assert_eq!(
            second.status.code(),
            Some(0),
            "{example}: {}",
            stderr(&second)
        );
        assert_eq!(stdout(&second), stdout(&first), "{example}");
    }
}

#[test]
fn secrets_are_redacted_unless_asked_for() {
    let file = examples().join("worker-env.skr8tr");
    let out = check(&examples(), &[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("    SMTP_PASSWORD <redacted>\n"), "{text}");
    assert!(
        !text.contains("correct horse") && !text.contains("abc123"),
        "{text}"
    );
    let shown = stdout(&check(
        &examples(),
        &["--show-secrets", file.to_str().unwrap()],
    ));
    assert!(
        shown.contains("    SMTP_PASSWORD \"correct horse battery staple\"\n"),
        "{shown}"
    );
}

#[test]
fn a_bad_manifest_prints_every_error_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("bad.skr8tr"),
        "app api\n  exec /usr/local/bin/api\n  replica 3\n  port 0\n  ram 16 G\n  secret { TOKEN hunter2 }\n",
    )
    .unwrap();
    let out = check(dir.path(), &["bad.skr8tr"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "\
bad.skr8tr:3:3: unknown key `replica` in app `api`; did you mean `replicas`?
bad.skr8tr:4:8: `port` must be between 1 and 65535, found `0`
bad.skr8tr:5:10: `ram` takes one value, found 2; write the number and its unit together, like `16gb`
"
    );
}

#[test]
fn a_missing_file_is_named_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &["nope.skr8tr"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.starts_with("nope.skr8tr: cannot read: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_file_that_is_not_utf8_is_reported_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("latin1.skr8tr"),
        b"app api\nexec /caf\xe9\n",
    )
    .unwrap();
    let out = check(dir.path(), &["latin1.skr8tr"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "latin1.skr8tr:2:10: the file is not valid UTF-8 text\n"
    );
}

#[test]
fn several_files_are_all_checked() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.skr8tr"), "app a\nexec /bin/a\n").unwrap();
    fs::write(
        dir.path().join("b.skr8tr"),
        "app b\nexec /bin/b\ndrain 500\n",
    )
    .unwrap();
    fs::write(dir.path().join("c.skr8tr"), "app c { bin /bin/c }\n").unwrap();
    let out = check(
        dir.path(),
        &["a.skr8tr", "b.skr8tr", "missing.skr8tr", "c.skr8tr"],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("# a.skr8tr\napp a {\n  type service\n  exec /bin/a\n"),
        "{text}"
    );
    assert!(text.contains("}\n\n# c.skr8tr\napp c {\n"), "{text}");
    assert!(!text.contains("app b"), "{text}");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        "b.skr8tr:3:7: `drain`: expected a duration with a unit: ms, s, m or h, found `500`"
    );
    assert!(
        lines[1].starts_with("missing.skr8tr: cannot read: "),
        "{err}"
    );

    // The combined output of the valid files is itself a valid manifest.
    fs::write(dir.path().join("all.skr8tr"), text).unwrap();
    let again = check(dir.path(), &["all.skr8tr"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));

    let good = check(dir.path(), &["a.skr8tr", "c.skr8tr"]);
    assert_eq!(good.status.code(), Some(0));
}

#[test]
fn every_invalid_fixture_fails_the_check() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../control/proto/tests/fixtures/manifests/invalid");
    let out = check(&fixtures, &["port-zero.skr8tr", "several-errors.skr8tr"]);
    assert_eq!(out.status.code(), Some(1));
    let expected = [
        fs::read_to_string(fixtures.join("port-zero.err")).unwrap(),
        fs::read_to_string(fixtures.join("several-errors.err")).unwrap(),
    ]
    .concat();
    assert_eq!(stderr(&out), expected);
}
