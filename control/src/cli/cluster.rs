//! `skr8tr up FILE…`, `down APP` and `scale APP N`: the commands that change what runs
//! (`rollout` has its own module). All three are operator-signed.
//!
//! ```text
//! up:  read + validate every file ──any error──▶ print file:line:col lines, exit 1, send nothing
//!                                 └─all valid──▶ SUBMIT|b64:<text> per file ─▶ one line per app
//! ```
//! `up` sends the manifest text inline, so the Conductor need not see the operator's files; it
//! keeps going after a file the Conductor refuses and exits 1 at the end. The functions that
//! turn replies into lines and JSON are pure; the network calls are the thin `run_*` ones.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use serde_json::{Value, json};
use skr8tr_proto::manifest::Manifest;
use skr8tr_proto::name::{AppName, NodeId};
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, MAX_SIGNED_MESSAGE, ManifestSource, Message, Placement,
};

use super::check;
use super::global::GlobalArgs;
use super::output::{self, emit, success};
use super::remote::{Endpoint, unexpected};
use super::table::Table;

/// A manifest file read and validated locally, ready to send.
#[derive(Debug, Clone)]
pub struct LocalManifest {
    /// The path as the operator typed it (used in messages).
    pub name: String,
    pub text: String,
    pub manifest: Manifest,
}

impl LocalManifest {
    /// The replicas the manifest asks for `app`, if it has that app.
    fn desired(&self, app: &AppName) -> Option<u32> {
        self.manifest
            .apps
            .iter()
            .find(|a| &a.name == app)
            .map(|a| a.replicas)
    }
}

/// Reads and validates every file; all of them, or every problem of every file.
///
/// # Errors
/// The `file:line:col: message` lines (and size problems) of all files that are not valid.
pub fn load_all(files: &[PathBuf]) -> Result<Vec<LocalManifest>, Vec<String>> {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    for path in files {
        match load_one(path) {
            Ok(m) => loaded.push(m),
            Err(lines) => problems.extend(lines),
        }
    }
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(problems)
    }
}

/// Reads and validates one file, and checks that it fits in a signed datagram when inline.
///
/// # Errors
/// The lines to report.
pub fn load_one(path: &Path) -> Result<LocalManifest, Vec<String>> {
    let name = path.display().to_string();
    let (text, manifest) = check::load(path, &name)?;
    let probe = ConductorRequest::Submit(ManifestSource::Inline(text.clone()));
    if let Err(e) = probe.encode_within(MAX_SIGNED_MESSAGE) {
        return Err(vec![format!(
            "{name}: too large to send inline ({e}); split it into several files"
        )]);
    }
    Ok(LocalManifest {
        name,
        text,
        manifest,
    })
}

/// Prints the problems of invalid manifests and the verdict; gives exit code 1.
fn report_invalid(command: &str, problems: &[String]) -> ExitCode {
    for line in problems {
        eprintln!("{line}");
    }
    eprintln!("skr8tr: {command}: nothing sent: fix the manifest errors above");
    ExitCode::FAILURE
}

/// What happened to one file of `up`.
#[derive(Debug)]
enum Submitted {
    Placed(Vec<Placement>),
    Failed(anyhow::Error),
}

/// `skr8tr up FILE…`.
///
/// # Errors
/// Bad flags, an unusable key, stdout gone. Refusals are reported per file (exit 1).
pub fn run_up(global: &GlobalArgs, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let loaded = match load_all(files) {
        Ok(loaded) => loaded,
        Err(problems) => return Ok(report_invalid("up", &problems)),
    };
    let conductor = Endpoint::conductor(global, true)?;
    let mut results = Vec::new();
    for file in &loaded {
        let req = ConductorRequest::Submit(ManifestSource::Inline(file.text.clone()));
        let result = match conductor.ask_conductor(&req) {
            Ok(ConductorReply::Submitted(placements)) => Submitted::Placed(placements),
            Ok(other) => Submitted::Failed(unexpected("conductor", "SUBMIT", &other).into()),
            Err(e) => Submitted::Failed(e.into()),
        };
        if let Submitted::Failed(err) = &result {
            eprintln!(
                "{}",
                output::error_line("up", &anyhow!("{}: {err:#}", file.name))
            );
        }
        results.push((file, result));
    }
    emit(
        global.json,
        || up_text(&results),
        || success("up", json!({ "files": up_json(&results) })),
    )?;
    let failed = results
        .iter()
        .any(|(_, r)| matches!(r, Submitted::Failed(_)));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One aligned line per placed app: `api  submitted  3 replicas on node-a, node-b`.
fn up_text(results: &[(&LocalManifest, Submitted)]) -> String {
    let mut table = Table::headless();
    for (file, result) in results {
        if let Submitted::Placed(placements) = result {
            for p in placements {
                let (state, text) = placement_summary(p, file.desired(&p.app));
                table.row([p.app.to_string(), state.to_owned(), text]);
            }
        }
    }
    table.render()
}

fn up_json(results: &[(&LocalManifest, Submitted)]) -> Vec<Value> {
    results
        .iter()
        .map(|(file, result)| match result {
            Submitted::Placed(placements) => json!({
                "file": file.name,
                "ok": true,
                "apps": placements.iter().map(|p| placement_json(p, file.desired(&p.app))).collect::<Vec<_>>(),
            }),
            Submitted::Failed(err) => {
                let mut e = output::error_json("up", err);
                json!({ "file": file.name, "ok": false, "error": e["error"].take() })
            }
        })
        .collect()
}

/// `("submitted", "3 replicas on node-a, node-b")`, `("pending", …)`, or a partial placement,
/// given how many replicas the manifest asked for (when known).
#[must_use]
pub fn placement_summary(p: &Placement, desired: Option<u32>) -> (&'static str, String) {
    let placed = p.nodes.len();
    if placed == 0 {
        return match desired {
            Some(0) => ("submitted", "0 replicas".to_owned()),
            _ => (
                "pending",
                "no node can take it yet; the conductor keeps trying".to_owned(),
            ),
        };
    }
    let nodes = distinct(&p.nodes).join(", ");
    let text = match desired.and_then(|d| usize::try_from(d).ok()) {
        Some(want) if want > placed => format!(
            "{placed} of {want} replicas on {nodes} ({} pending)",
            want - placed
        ),
        _ => format!("{} on {nodes}", plural(placed, "replica")),
    };
    ("submitted", text)
}

fn placement_json(p: &Placement, desired: Option<u32>) -> Value {
    let (state, _) = placement_summary(p, desired);
    json!({
        "app": p.app.as_str(),
        "state": state,
        "desired": desired,
        "placed": p.nodes.len(),
        "nodes": p.nodes.iter().map(NodeId::as_str).collect::<Vec<_>>(),
    })
}

/// The node names in first-seen order, each once.
fn distinct(nodes: &[NodeId]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for node in nodes {
        if !out.contains(&node.as_str()) {
            out.push(node.as_str());
        }
    }
    out
}

/// `1 replica`, `3 replicas`.
#[must_use]
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `skr8tr down APP`.
///
/// # Errors
/// The Conductor refused or did not answer; bad flags; stdout gone.
pub fn run_down(global: &GlobalArgs, app: &AppName) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, true)?;
    match conductor.ask_conductor(&ConductorRequest::Evict(app.clone()))? {
        ConductorReply::Evicted(app) => emit(
            global.json,
            || format!("{app}  evicted\n"),
            || success("down", json!({ "app": app.as_str(), "evicted": true })),
        )?,
        other => return Err(unexpected("conductor", "EVICT", &other).into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `skr8tr scale APP N`.
///
/// # Errors
/// The Conductor refused or did not answer; bad flags; stdout gone.
pub fn run_scale(global: &GlobalArgs, app: &AppName, replicas: u32) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, true)?;
    let req = ConductorRequest::Scale {
        app: app.clone(),
        replicas,
    };
    match conductor.ask_conductor(&req)? {
        ConductorReply::Scaled { app, replicas } => emit(
            global.json,
            || {
                format!(
                    "{app}  scaled to {}\n",
                    plural(replicas as usize, "replica")
                )
            },
            || {
                success(
                    "scale",
                    json!({ "app": app.as_str(), "replicas": replicas }),
                )
            },
        )?,
        other => return Err(unexpected("conductor", "SCALE", &other).into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the one-app manifest `rollout` sends.
///
/// # Errors
/// The problem lines, as for `up`, or that the file has more than one app.
pub fn load_single_app(path: &Path) -> Result<(LocalManifest, AppName), Vec<String>> {
    let local = load_one(path)?;
    match local.manifest.apps.as_slice() {
        [app] => {
            let name = app.name.clone();
            Ok((local, name))
        }
        apps => Err(vec![format!(
            "{}: a rollout takes a manifest with exactly one app; this one has {}",
            local.name,
            apps.len()
        )]),
    }
}

/// Reports invalid manifests for `rollout`.
pub(crate) fn report_invalid_rollout(problems: &[String]) -> ExitCode {
    report_invalid("rollout", problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(app: &str, nodes: &[&str]) -> Placement {
        Placement {
            app: AppName::new(app).unwrap(),
            nodes: nodes.iter().map(|n| NodeId::new(*n).unwrap()).collect(),
        }
    }

    #[test]
    fn placements_name_each_node_once() {
        let p = placement("api-server", &["node-a", "node-b", "node-a"]);
        assert_eq!(
            placement_summary(&p, Some(3)),
            ("submitted", "3 replicas on node-a, node-b".to_owned())
        );
        assert_eq!(
            placement_summary(&placement("web", &["n1"]), None),
            ("submitted", "1 replica on n1".to_owned())
        );
        assert_eq!(
            placement_summary(&placement("web", &["n1"]), Some(3)),
            ("submitted", "1 of 3 replicas on n1 (2 pending)".to_owned())
        );
    }

    #[test]
    fn nothing_placed_is_pending_unless_nothing_was_wanted() {
        assert_eq!(
            placement_summary(&placement("web", &[]), Some(2)).0,
            "pending"
        );
        assert_eq!(placement_summary(&placement("web", &[]), None).0, "pending");
        assert_eq!(
            placement_summary(&placement("job", &[]), Some(0)),
            ("submitted", "0 replicas".to_owned())
        );
    }

    #[test]
    fn up_prints_aligned_lines_and_json_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.skr8tr");
        std::fs::write(
            &path,
            "app api-server\n  exec /bin/true\n  replicas 3\napp web\n  exec /bin/true\n",
        )
        .unwrap();
        let file = load_one(&path).unwrap();
        let results = vec![(
            &file,
            Submitted::Placed(vec![
                placement("api-server", &["node-a", "node-b", "node-a"]),
                placement("web", &[]),
            ]),
        )];
        assert_eq!(
            up_text(&results),
            "api-server  submitted  3 replicas on node-a, node-b\n\
             web         pending    no node can take it yet; the conductor keeps trying\n"
        );
        let json = up_json(&results);
        assert_eq!(json[0]["ok"], true);
        assert_eq!(
            json[0]["apps"][0]["nodes"],
            json!(["node-a", "node-b", "node-a"])
        );
        assert_eq!(json[0]["apps"][0]["desired"], 3);
        assert_eq!(json[0]["apps"][1]["state"], "pending");
        assert_eq!(json[0]["apps"][1]["placed"], 0);

        let failed = vec![(&file, Submitted::Failed(anyhow!("boom")))];
        assert_eq!(up_text(&failed), "");
        assert_eq!(up_json(&failed)[0]["error"]["message"], "boom");
    }

    #[test]
    fn invalid_files_report_every_error_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.skr8tr");
        let bad = dir.path().join("bad.skr8tr");
        std::fs::write(&good, "app api\n  exec /bin/true\n").unwrap();
        std::fs::write(&bad, "app api\n  exce /bin/true\n  replicas x\n").unwrap();
        let problems = load_all(&[good.clone(), bad.clone(), dir.path().join("none")]).unwrap_err();
        assert!(problems.len() >= 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("bad.skr8tr:2:3: unknown key `exce`")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("none: cannot read")));
        assert_eq!(load_all(&[good]).unwrap().len(), 1);
    }

    #[test]
    fn a_rollout_manifest_has_exactly_one_app() {
        let dir = tempfile::tempdir().unwrap();
        let two = dir.path().join("two.skr8tr");
        std::fs::write(&two, "app a\n  exec /bin/true\napp b\n  exec /bin/true\n").unwrap();
        let err = load_single_app(&two).unwrap_err();
        assert!(
            err[0].contains("exactly one app; this one has 2"),
            "{err:?}"
        );
        let one = dir.path().join("one.skr8tr");
        std::fs::write(&one, "app a\n  exec /bin/true\n").unwrap();
        assert_eq!(load_single_app(&one).unwrap().1.as_str(), "a");
    }

    #[test]
    fn a_manifest_too_large_for_a_datagram_is_refused_locally() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.skr8tr");
        let mut text = "app a\n  exec /bin/true\n".to_owned();
        while text.len() < 50_000 {
            text.push_str("# a long comment line to make the file bigger than a datagram\n");
        }
        std::fs::write(&big, text).unwrap();
        let err = load_one(&big).unwrap_err();
        assert!(err[0].contains("too large to send inline"), "{err:?}");
    }
}
