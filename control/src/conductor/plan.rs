//! `skr8tr plan FILE` (PLAN): what SUBMIT of a manifest would change, as lines for people,
//! without changing anything.
//!
//! ```text
//! app api: rollout to generation 4
//!   replicas: 3 -> 5
//!   exec: /usr/bin/api -> /usr/bin/api2
//!   env: + FEATURE_X, ~ LOG_LEVEL
//!   secret: ~ DB_PASSWORD (value not shown)
//!   route: + api.example.com/v2, - /old
//! app web: new, generation 1: 2 replica(s)
//! app batch: no change (generation 3)
//! ```
//! Pure: the app as the Conductor runs it and the app as submitted in, lines out. Secret
//! values never appear, only which keys are added, removed or changed; env values are not shown
//! either (they may hold what should have been a secret). A difference this module does not
//! name field by field still shows, as the block or key that differs.

use std::collections::BTreeMap;

use skr8tr_proto::manifest::{App, PortSpec};

use super::model::AppRecord;

/// What SUBMIT would do to one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPlan {
    /// Whether anything would change.
    pub changed: bool,
    pub lines: Vec<String>,
}

/// The plan for submitting `new` where `current` runs (`None`: a new app); `ended`: every
/// replica of the current generation ended for good (a finished job), so the same spec runs
/// again.
#[must_use]
pub fn plan_app(current: Option<&AppRecord>, ended: bool, new: &App) -> AppPlan {
    let name = &new.name;
    let Some(current) = current else {
        let mut lines = vec![format!(
            "app {name}: new, generation 1: {} replica(s){}",
            new.replicas,
            new.exec
                .as_deref()
                .map_or_else(String::new, |e| format!(" of {e}"))
        )];
        lines.extend(
            new.routes
                .iter()
                .map(|r| format!("  route: + {}", r.target())),
        );
        return AppPlan {
            changed: true,
            lines,
        };
    };
    let next = current.generation + 1;
    if current.spec == *new {
        return if ended && new.schedule.is_none() {
            AppPlan {
                changed: true,
                lines: vec![format!(
                    "app {name}: runs again as generation {next} (its replicas ended)"
                )],
            }
        } else {
            AppPlan {
                changed: false,
                lines: vec![format!(
                    "app {name}: no change (generation {})",
                    current.generation
                )],
            }
        };
    }
    let how = if new.schedule.is_some() || current.spec.schedule.is_some() {
        format!("generation {next}, from its next scheduled run (no rollout)")
    } else if new.rollout.canary > 0 {
        format!(
            "rollout to generation {next}, {} canary replica(s) first",
            new.rollout.canary
        )
    } else {
        format!("rollout to generation {next}")
    };
    let mut lines = vec![format!("app {name}: {how}")];
    lines.extend(
        differences(&current.spec, current.desired, new)
            .into_iter()
            .map(|d| format!("  {d}")),
    );
    AppPlan {
        changed: true,
        lines,
    }
}

fn port_text(p: Option<&PortSpec>) -> String {
    match p {
        None => "none".into(),
        Some(PortSpec::Auto) => "auto".into(),
        Some(PortSpec::Fixed(n)) => n.to_string(),
    }
}

/// `+ A, - B, ~ C` for keys added, removed and changed between `old` and `new` (in `new`'s
/// order, removed ones last); `None` when they are equal.
fn keyed<V: PartialEq>(old: &[(String, V)], new: &[(String, V)]) -> Option<String> {
    let old_map: BTreeMap<&str, &V> = old.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let new_keys: Vec<&str> = new.iter().map(|(k, _)| k.as_str()).collect();
    let mut parts = Vec::new();
    for (k, v) in new {
        match old_map.get(k.as_str()) {
            None => parts.push(format!("+ {k}")),
            Some(o) if *o != v => parts.push(format!("~ {k}")),
            Some(_) => {}
        }
    }
    for (k, _) in old {
        if !new_keys.contains(&k.as_str()) {
            parts.push(format!("- {k}"));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// One line per difference between the running spec (at `desired` replicas) and `new`.
fn differences(old: &App, desired: u32, new: &App) -> Vec<String> {
    let mut out = Vec::new();
    let mut differs = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: {a} -> {b}"));
        }
    };
    differs("replicas", desired.to_string(), new.replicas.to_string());
    differs("type", old.kind.keyword().into(), new.kind.keyword().into());
    let exec = |a: &App| a.exec.clone().unwrap_or_else(|| "none".into());
    differs("exec", exec(old), exec(new));
    let args = |a: &App| format!("{:?}", a.args);
    differs("args", args(old), args(new));
    differs(
        "port",
        port_text(old.port.as_ref()),
        port_text(new.port.as_ref()),
    );
    let ram = |a: &App| {
        a.ram
            .map_or_else(|| "none".into(), |b| format!("{} bytes", b.0))
    };
    differs("ram", ram(old), ram(new));
    let cpu = |a: &App| {
        a.cpu
            .map_or_else(|| "none".into(), |c| format!("{} millicores", c.millicores))
    };
    differs("cpu", cpu(old), cpu(new));
    let gpu = |a: &App| a.gpu.map_or_else(|| "none".into(), |g| g.to_string());
    differs("gpu", gpu(old), gpu(new));
    differs(
        "restart",
        old.restart.keyword().into(),
        new.restart.keyword().into(),
    );
    let schedule = |a: &App| {
        a.schedule.as_ref().map_or_else(
            || "none".into(),
            |s| format!("\"{}\" in {}", s.cron, s.timezone),
        )
    };
    differs("schedule", schedule(old), schedule(new));
    differs(
        "drain",
        format!("{:?}", old.drain),
        format!("{:?}", new.drain),
    );
    let env = |a: &App| -> Vec<(String, String)> {
        a.env
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    };
    if let Some(d) = keyed(&env(old), &env(new)) {
        out.push(format!("env: {d}"));
    }
    let secrets = |a: &App| -> Vec<(String, String)> {
        a.secrets
            .iter()
            .map(|s| (s.key.clone(), s.value.expose().to_owned()))
            .collect()
    };
    if let Some(d) = keyed(&secrets(old), &secrets(new)) {
        out.push(format!("secret: {d} (values not shown)"));
    }
    let routes = |a: &App| -> Vec<(String, String)> {
        a.routes
            .iter()
            .map(|r| (r.target(), format!("{:?}", r.options)))
            .collect()
    };
    if let Some(d) = keyed(&routes(old), &routes(new)) {
        out.push(format!("route: {d}"));
    }
    let mut block = |name: &str, same: bool| {
        if !same {
            out.push(format!("{name}: changed"));
        }
    };
    block("health", old.health == new.health);
    block("scale", old.scale == new.scale);
    block("rollout", old.rollout == new.rollout);
    block("volume", old.volumes == new.volumes);
    block("build", old.build == new.build);
    block("serve", old.serve == new.serve);
    block("vm", old.vm == new.vm);
    if out.is_empty() {
        // Specs differ in something not named above: say so rather than nothing.
        out.push("spec: changed".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::manifest::{self, App};

    use super::*;

    fn app(text: &str) -> App {
        manifest::parse_app("t", text).unwrap()
    }

    fn record(text: &str, generation: u64, desired: u32) -> AppRecord {
        AppRecord {
            spec: app(text),
            generation,
            desired,
        }
    }

    const V1: &str = "app api\n  exec /usr/bin/api\n  args --port 8080\n  port auto\n  replicas 3\n  env {\n    LOG info\n    KEEP 1\n    GONE 1\n  }\n  secret {\n    TOKEN old-secret\n    SAME s\n  }\n  route /api\n";

    #[test]
    fn new_same_ended_and_changed() {
        let new = plan_app(None, false, &app(V1));
        assert!(new.changed);
        assert_eq!(
            new.lines,
            vec![
                "app api: new, generation 1: 3 replica(s) of /usr/bin/api",
                "  route: + /api"
            ]
        );
        let current = record(V1, 3, 3);
        let same = plan_app(Some(&current), false, &app(V1));
        assert_eq!(
            same,
            AppPlan {
                changed: false,
                lines: vec!["app api: no change (generation 3)".into()]
            }
        );
        let again = plan_app(Some(&current), true, &app(V1));
        assert!(again.changed);
        assert_eq!(
            again.lines,
            vec!["app api: runs again as generation 4 (its replicas ended)"]
        );

        let v2 = V1
            .replace("/usr/bin/api\n", "/usr/bin/api2\n")
            .replace("replicas 3", "replicas 5")
            .replace("LOG info", "LOG debug\n    NEW 1")
            .replace("    GONE 1\n", "")
            .replace("old-secret", "new-secret")
            .replace("route /api\n", "route /api { strip-prefix }\n  route api.example.com/v2\n  health GET /healthz 200\n");
        let changed = plan_app(Some(&current), false, &app(&v2));
        assert!(changed.changed);
        assert_eq!(
            changed.lines,
            vec![
                "app api: rollout to generation 4",
                "  replicas: 3 -> 5",
                "  exec: /usr/bin/api -> /usr/bin/api2",
                "  env: ~ LOG, + NEW, - GONE",
                "  secret: ~ TOKEN (values not shown)",
                "  route: ~ /api, + api.example.com/v2",
                "  health: changed",
            ]
        );
        let text = changed.lines.join("\n");
        assert!(!text.contains("new-secret") && !text.contains("old-secret"));
        assert!(!text.contains("debug"), "env values are not shown");
    }

    #[test]
    fn a_scaled_app_shows_its_running_count_and_a_canary_says_so() {
        let current = record(V1, 2, 7);
        let v2 = V1.replace("port auto\n", "port auto\n  rollout {\n    canary 1\n  }\n");
        let p = plan_app(Some(&current), false, &app(&v2));
        assert_eq!(
            p.lines,
            vec![
                "app api: rollout to generation 3, 1 canary replica(s) first",
                "  replicas: 7 -> 3",
                "  rollout: changed",
            ]
        );
    }

    #[test]
    fn a_scheduled_job_changes_from_its_next_run_and_does_not_run_again_on_resubmit() {
        const JOB: &str = "app nightly\n  type job\n  exec /bin/backup\n  schedule \"0 3 * * *\"\n";
        let current = record(JOB, 2, 1);
        let same = plan_app(Some(&current), true, &app(JOB));
        assert!(!same.changed, "{same:?}");
        let later = JOB.replace("0 3", "30 4");
        let p = plan_app(Some(&current), false, &app(&later));
        assert_eq!(
            p.lines,
            vec![
                "app nightly: generation 3, from its next scheduled run (no rollout)",
                "  schedule: \"0 3 * * *\" in UTC -> \"30 4 * * *\" in UTC",
            ]
        );
    }
}
