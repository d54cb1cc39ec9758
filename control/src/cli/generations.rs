//! `skr8tr plan FILE`, `skr8tr history APP`, `skr8tr rollback APP [GEN]`, `skr8tr promote APP`:
//! what a deploy would change, the generations an app ran, going back to one, and letting a
//! canary rollout go on.
//!
//! ```text
//! plan FILE        validate ─▶ PLAN|b64:<text> (signed) ─▶ OK|PLAN ─▶ lines; exit 0 no change,
//!                  1 changes, 2 error (a bad manifest, a refusal, no answer)
//! history APP      HISTORY|app ─▶ OK|HISTORY ─▶ GEN DEPLOYED REPLICAS SPEC (* = running)
//! rollback APP [G] ROLLBACK|app[|G] (signed) ─▶ OK|ROLLBACK|app|G ─▶ follows the rollout
//! promote APP      PROMOTE|app (signed) ─▶ OK|PROMOTED|app ─▶ follows the rollout
//! ```
//! Following is `skr8tr rollout`'s ([`super::rollout::follow`]); `--detach` answers at once.

use std::process::ExitCode;

use serde_json::{Value, json};
use skr8tr_proto::name::AppName;
use skr8tr_proto::wire::{
    ConductorReply, ConductorRequest, GenerationEntry, ManifestSource, OneLine,
};

use super::cluster::load_all;
use super::events::time_text;
use super::global::GlobalArgs;
use super::output::{emit, failure, print_json, print_text, success};
use super::remote::{Endpoint, unexpected};
use super::rollout::follow;
use super::table::Table;

/// `plan`'s exit code on an error (0: no change, 1: changes).
pub const PLAN_ERROR: u8 = 2;

/// `plan`'s text: the lines as they came.
#[must_use]
pub fn plan_text(lines: &[OneLine]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line.as_str());
        out.push('\n');
    }
    out
}

/// `skr8tr plan FILE…`.
///
/// # Errors
/// Never: every failure is reported here, with exit code 2.
pub fn run_plan(global: &GlobalArgs, files: &[std::path::PathBuf]) -> anyhow::Result<ExitCode> {
    let loaded = match load_all(files) {
        Ok(loaded) => loaded,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            if global.json {
                print_json(&json!({
                    "command": "plan",
                    "ok": false,
                    "error": { "code": "BAD_MANIFEST", "message": problems.join("; ") },
                }))?;
            }
            return Ok(ExitCode::from(PLAN_ERROR));
        }
    };
    let result = (|| -> anyhow::Result<(bool, Vec<OneLine>)> {
        let conductor = Endpoint::conductor(global, true)?;
        let mut changed = false;
        let mut lines = Vec::new();
        for file in &loaded {
            let req = ConductorRequest::Plan(ManifestSource::Inline(file.text.clone()));
            match conductor.ask_conductor(&req)? {
                ConductorReply::Plan {
                    changed: c,
                    lines: l,
                } => {
                    changed |= c;
                    lines.extend(l);
                }
                other => return Err(unexpected("conductor", "PLAN", &other).into()),
            }
        }
        Ok((changed, lines))
    })();
    let (changed, lines) = match result {
        Ok(r) => r,
        Err(e) => {
            failure("plan", &e, global.json);
            return Ok(ExitCode::from(PLAN_ERROR));
        }
    };
    emit(
        global.json,
        || plan_text(&lines),
        || {
            let list: Vec<&str> = lines.iter().map(OneLine::as_str).collect();
            success("plan", json!({ "changed": changed, "lines": list }))
        },
    )?;
    Ok(ExitCode::from(u8::from(changed)))
}

/// `history`'s table, oldest first, the running generation marked `*`.
#[must_use]
pub fn history_table(current: u64, generations: &[GenerationEntry]) -> Table {
    let mut t = Table::new(["", "GEN", "DEPLOYED", "REPLICAS", "SPEC"]);
    for g in generations {
        t.row([
            if g.generation == current { "*" } else { "" }.to_owned(),
            g.generation.to_string(),
            time_text(g.at_ms),
            g.desired.to_string(),
            g.digest.to_string(),
        ]);
    }
    t
}

/// `history`'s JSON.
#[must_use]
pub fn history_json(app: &AppName, current: u64, generations: &[GenerationEntry]) -> Value {
    let list: Vec<Value> = generations
        .iter()
        .map(|g| {
            json!({
                "generation": g.generation,
                "at_ms": g.at_ms,
                "time": time_text(g.at_ms),
                "replicas": g.desired,
                "digest": g.digest.as_str(),
                "current": g.generation == current,
            })
        })
        .collect();
    success(
        "history",
        json!({ "app": app.as_str(), "current": current, "generations": list }),
    )
}

/// `skr8tr history APP`.
///
/// # Errors
/// The Conductor refused (unknown app) or did not answer; stdout gone.
pub fn run_history(global: &GlobalArgs, app: &AppName) -> anyhow::Result<ExitCode> {
    let conductor = Endpoint::conductor(global, false)?;
    match conductor.ask_conductor(&ConductorRequest::History(app.clone()))? {
        ConductorReply::History {
            app,
            current,
            generations,
        } => emit(
            global.json,
            || history_table(current, &generations).render(),
            || history_json(&app, current, &generations),
        )?,
        other => return Err(unexpected("conductor", "HISTORY", &other).into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `skr8tr rollback APP [GEN]`.
///
/// # Errors
/// The Conductor refused or did not answer; stdout gone.
pub fn run_rollback(
    global: &GlobalArgs,
    app: &AppName,
    generation: Option<u64>,
    detach: bool,
    wait_timeout_s: u64,
) -> anyhow::Result<ExitCode> {
    let mut conductor = Endpoint::conductor(global, true)?;
    let req = ConductorRequest::Rollback {
        app: app.clone(),
        generation,
    };
    let (app, to) = match conductor.ask_conductor(&req)? {
        ConductorReply::RollingBack { app, generation } => (app, generation),
        other => return Err(unexpected("conductor", "ROLLBACK", &other).into()),
    };
    if detach {
        emit(
            global.json,
            || format!("{app}  rolling back to the spec of generation {to}\n"),
            || {
                success(
                    "rollback",
                    json!({ "app": app.as_str(), "to_generation": to, "detached": true }),
                )
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if !global.json {
        print_text(&format!(
            "{app}  rolling back to the spec of generation {to}\n"
        ))?;
    }
    follow(global, &mut conductor, &app, wait_timeout_s, "rollback")
}

/// `skr8tr promote APP`.
///
/// # Errors
/// The Conductor refused (no canary waits) or did not answer; stdout gone.
pub fn run_promote(
    global: &GlobalArgs,
    app: &AppName,
    detach: bool,
    wait_timeout_s: u64,
) -> anyhow::Result<ExitCode> {
    let mut conductor = Endpoint::conductor(global, true)?;
    let app = match conductor.ask_conductor(&ConductorRequest::Promote(app.clone()))? {
        ConductorReply::Promoted(app) => app,
        other => return Err(unexpected("conductor", "PROMOTE", &other).into()),
    };
    if detach {
        emit(
            global.json,
            || format!("{app}  promoted: the rollout goes on\n"),
            || success("promote", json!({ "app": app.as_str(), "detached": true })),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if !global.json {
        print_text(&format!("{app}  promoted: the rollout goes on\n"))?;
    }
    follow(global, &mut conductor, &app, wait_timeout_s, "promote")
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::wire::SpecDigest;

    use super::*;

    #[test]
    fn history_table_and_json() {
        let g = |generation, at_ms, desired, digest: &str| GenerationEntry {
            generation,
            at_ms,
            desired,
            digest: SpecDigest::new(digest).unwrap(),
        };
        let gens = vec![
            g(2, 1_765_152_000_123, 3, "0a1b2c3d4e5f"),
            g(3, 1_765_152_999_000, 5, "ffee00112233"),
        ];
        assert_eq!(
            history_table(3, &gens).render(),
            "   GEN  DEPLOYED                  REPLICAS  SPEC\n\
             \x20  2    2025-12-08T00:00:00.123Z  3         0a1b2c3d4e5f\n\
             *  3    2025-12-08T00:16:39.000Z  5         ffee00112233\n"
        );
        let v = history_json(&AppName::new("api").unwrap(), 3, &gens);
        assert_eq!(v["generations"][1]["current"], true);
        assert_eq!(v["generations"][0]["digest"], "0a1b2c3d4e5f");
        assert_eq!(v["current"], 3);
    }

    #[test]
    fn plan_text_is_the_lines() {
        let lines = vec![
            OneLine::new("app api: rollout to generation 4").unwrap(),
            OneLine::new("  replicas: 3 -> 5").unwrap(),
        ];
        assert_eq!(
            plan_text(&lines),
            "app api: rollout to generation 4\n  replicas: 3 -> 5\n"
        );
    }
}
