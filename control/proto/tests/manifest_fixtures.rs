//! The table of invalid manifests: every `fixtures/manifests/invalid/NAME.skr8tr` must fail to
//! parse with exactly the errors written in `NAME.err` beside it (`NAME.skr8tr:line:col:
//! message`, one per line, in source order).
//!
//! To write the `.err` files after a deliberate change of messages, run with
//! `SKR8TR_BLESS=1` and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use skr8tr_proto::manifest;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/manifests/invalid")
}

/// The files of the fixture directory with this extension, sorted.
fn files(ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("the fixture directory is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// What `skr8tr check` would report for `text`, one error per line.
fn report(file_name: &str, text: &str) -> String {
    match manifest::parse(file_name, text) {
        Ok(m) => format!("<parsed without error: {} app(s)>", m.apps.len()),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn every_invalid_manifest_reports_exactly_its_expected_errors() {
    let bless = std::env::var_os("SKR8TR_BLESS").is_some();
    let cases = files("skr8tr");
    assert!(cases.len() >= 45, "only {} fixtures", cases.len());
    let mut failures = Vec::new();
    for path in &cases {
        let file_name = path.file_name().unwrap().to_str().unwrap();
        let text = fs::read_to_string(path).unwrap();
        let actual = report(file_name, &text);
        let err_path = path.with_extension("err");
        if bless {
            fs::write(&err_path, format!("{actual}\n")).unwrap();
            continue;
        }
        let expected =
            fs::read_to_string(&err_path).unwrap_or_else(|e| panic!("{}: {e}", err_path.display()));
        if actual != expected.trim_end_matches('\n') {
            failures.push(format!(
                "── {file_name}\nexpected:\n{expected}actual:\n{actual}\n"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        cases.len(),
        failures.concat()
    );
}

#[test]
fn every_expectation_has_its_manifest() {
    for err in files("err") {
        assert!(
            err.with_extension("skr8tr").is_file(),
            "{} has no .skr8tr",
            err.display()
        );
    }
}

#[test]
fn fixture_errors_never_repeat_a_secret() {
    for path in files("skr8tr") {
        let text = fs::read_to_string(&path).unwrap();
        if text.contains("secret") {
            let actual = report("f", &text);
            assert!(!actual.contains("s3cr3t"), "{}: {actual}", path.display());
        }
    }
}
