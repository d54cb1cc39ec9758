//! Scenarios a–f (issue 5), each on a fresh mesh with load going through the ingress. The
//! multi-host run (g) calls a, b and c again with hosts in network namespaces.
//!
//! ```text
//! Ctx (layout maker, load) ─▶ Mesh::start ─▶ deploy v1 ─▶ Load::start ─▶ the event
//!   ─▶ poll until the mesh is whole again (milestones timed from the event) ─▶ Outcome
//! ```

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use skr8tr_proto::wire::RolloutState;

use crate::load::{Load, LoadSpec, Stats};
use crate::mesh::{Env, Layout, Mesh, example_manifest, node_id, wait_until};
use crate::procs::{self, sleep};
use crate::report::{Outcome, Verdict, secs};

/// What every scenario needs: where things are, how to lay out a mesh, how much load.
pub struct Ctx<'a> {
    pub env: &'a Env,
    pub layout: &'a dyn Fn() -> anyhow::Result<Layout>,
    /// Hosts are network namespaces (scenario g).
    pub multi_host: bool,
    pub spec: LoadSpec,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("multi_host", &self.multi_host)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    /// The row name: `a. rollout of 3 replicas`, or `g. rollout of 3 replicas (multi-host)`.
    #[must_use]
    pub fn name(&self, letter: char, what: &str) -> String {
        if self.multi_host {
            format!("g. {what} (multi-host)")
        } else {
            format!("{letter}. {what}")
        }
    }

    /// A fresh mesh, its files under `<run dir>/<label>`.
    ///
    /// # Errors
    /// It does not start.
    pub fn mesh(&self, label: &str) -> anyhow::Result<Mesh> {
        let label = if self.multi_host {
            format!("g-{label}")
        } else {
            label.to_owned()
        };
        Mesh::start(self.env, (self.layout)()?, &label)
    }

    /// Starts the scenario load through the ingress.
    #[must_use]
    pub fn load(&self, mesh: &Mesh, spec: &LoadSpec) -> Load {
        Load::start(&mesh.layout.control, mesh.layout.ingress_addr(), spec)
    }
}

/// Runs one scenario, turning an error into an error row.
pub fn row(name: &str, goal: &str, f: impl FnOnce() -> anyhow::Result<Outcome>) -> Outcome {
    f().unwrap_or_else(|e| Outcome::error(name, goal, &e))
}

/// When the failures happened relative to the event, with samples.
#[must_use]
pub fn failure_note(s: &Stats, event: Instant) -> Option<String> {
    let (first, last) = (s.first_failure?, s.last_failure?);
    let rel = |t: Instant| -> String {
        if t >= event {
            format!("+{}", secs(t - event))
        } else {
            format!("-{}", secs(event - t))
        }
    };
    Some(format!(
        "failed requests between {} and {} after the event; e.g. {}",
        rel(first),
        rel(last),
        s.samples.join(" · ")
    ))
}

pub fn load_note(s: &Stats) -> String {
    let slow = s.latencies_us.iter().filter(|us| **us >= 1_000_000).count();
    format!(
        "load achieved {:.0} req/s over {} ({} 2xx); slowest response {}, {slow} took ≥ 1 s",
        s.rate(),
        secs(s.duration),
        s.ok,
        s.quantile(1.0).map_or_else(|| "—".into(), secs),
    )
}

fn healthy_count(mesh: &Mesh) -> anyhow::Result<usize> {
    Ok(mesh
        .status()?
        .iter()
        .filter(|r| r.state.keyword() == "healthy")
        .count())
}

/// Polls the rollout until it ends; its final state and how long after `t0`.
fn wait_rollout(mesh: &Mesh, t0: Instant) -> anyhow::Result<(RolloutState, Duration, String)> {
    wait_until(Duration::from_secs(60), "the rollout to end", || {
        let p = mesh.rollout()?;
        Ok(matches!(
            p.state,
            RolloutState::Complete | RolloutState::Reverted | RolloutState::Failed
        )
        .then(|| (p.state, t0.elapsed(), p.detail.as_str().to_owned())))
    })
}

/// a. A rollout of 3 replicas under load: goal 0 failed and ≤ 3 s.
///
/// # Errors
/// The mesh or the rollout does not work at all.
pub fn rollout(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let mesh = ctx.mesh("a-rollout")?;
    let v1 = example_manifest(ctx.env, &mesh.layout, 3, &[("VERSION", "1")], "");
    mesh.deploy(&v1, 3)?;
    let load = ctx.load(&mesh, &ctx.spec);
    sleep(Duration::from_secs(1))?;
    let v2 = mesh.manifest_file("v2", &v1.replace("VERSION 1", "VERSION 2"))?;
    let t0 = Instant::now();
    mesh.cli(&["rollout", &v2, "--detach"])?;
    let (state, took, detail) = wait_rollout(&mesh, t0)?;
    sleep(Duration::from_secs(1))?;
    let seen = load.seen();
    let stats = load.finish();
    let status = mesh.status()?;
    let all_g2 = status.len() == 3 && status.iter().all(|r| r.generation == 2);
    let g2_served = seen
        .iter()
        .filter(|(id, (_, last))| id.contains(".g2.") && *last > t0)
        .count();
    let mut notes = vec![
        format!(
            "rollout {state} ({detail}); {} replicas of generation 2 answered through the ingress; every replica at generation 2 afterwards: {all_g2}",
            g2_served
        ),
        load_note(&stats),
        "timed from `skr8tr rollout --detach` to ROLLOUT_STATUS `complete` (polled every 20 ms)"
            .into(),
    ];
    notes.extend(failure_note(&stats, t0));
    let ok = state == RolloutState::Complete
        && all_g2
        && stats.failed() == 0
        && took <= Duration::from_secs(3);
    Ok(Outcome {
        name: ctx.name('a', "rollout of 3 replicas"),
        measured: format!("rollout {}", secs(took)),
        goal: "0 failed, ≤ 3 s".into(),
        verdict: Verdict::of(ok),
        notes,
        load: Some(stats),
    })
}

/// b. `kill -9` of one replica under load: failures counted, time until the replacement is
/// healthy and registered.
///
/// # Errors
/// The mesh does not work, or the replica is not replaced within 20 s.
pub fn replica_kill(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let mesh = ctx.mesh("b-replica-kill")?;
    mesh.deploy(&example_manifest(ctx.env, &mesh.layout, 3, &[], ""), 3)?;
    let load = ctx.load(&mesh, &ctx.spec);
    sleep(Duration::from_secs(1))?;
    let victim = mesh
        .status()?
        .into_iter()
        .find(|r| r.state.keyword() == "healthy" && r.pid != 0)
        .context("no healthy replica to kill")?;
    let t0 = Instant::now();
    procs::kill9(victim.pid)?;
    let mut healthy_at = None;
    let registered = wait_until(Duration::from_secs(20), "the replacement", || {
        if healthy_at.is_none() {
            let s = mesh.status()?;
            let fine = s
                .iter()
                .filter(|r| r.state.keyword() == "healthy" && r.pid != victim.pid)
                .count();
            if fine == 3 {
                healthy_at = Some(t0.elapsed());
            }
        }
        if healthy_at.is_none() {
            return Ok(None);
        }
        let b = mesh.tower_backends()?;
        Ok((b.len() == 3 && b.iter().all(|a| mesh.http_ok(*a, "/healthz"))).then(|| t0.elapsed()))
    })?;
    sleep(Duration::from_secs(1))?;
    let stats = load.finish();
    let healthy = healthy_at.unwrap_or(registered);
    let mut notes = vec![
        format!(
            "killed {} (pid {}) on {}; the replacement was healthy after {} and the Tower listed 3 live backends after {}",
            victim.replica,
            victim.pid,
            victim.node.as_ref().map_or("?", |n| n.as_str()),
            secs(healthy),
            secs(registered)
        ),
        load_note(&stats),
    ];
    notes.extend(failure_note(&stats, t0));
    Ok(Outcome {
        name: ctx.name('b', "kill -9 of one replica"),
        measured: format!(
            "replacement healthy {}, registered {}",
            secs(healthy),
            secs(registered)
        ),
        goal: "failures counted (ideally 0: the ingress retries idempotent GETs)".into(),
        verdict: Verdict::Measured,
        notes,
        load: Some(stats),
    })
}

/// The node index that runs most of the app's replicas, and their pids.
fn busiest_node(mesh: &Mesh) -> anyhow::Result<(usize, Vec<u32>)> {
    let status = mesh.status()?;
    let on = |i: usize| -> Vec<u32> {
        status
            .iter()
            .filter(|r| r.node.as_ref().is_some_and(|n| n.as_str() == node_id(i)) && r.pid != 0)
            .map(|r| r.pid)
            .collect()
    };
    (0..mesh.layout.nodes.len())
        .map(|i| (i, on(i)))
        .max_by_key(|(_, pids)| pids.len())
        .context("no nodes")
}

/// Milestones after a node goes away: when the Conductor dropped it, when every replica was
/// healthy elsewhere, when the Tower listed exactly the live backends, and when every replica
/// had answered through the ingress.
#[derive(Debug, Default, Clone, Copy)]
pub struct Recovery {
    pub lost: Option<Duration>,
    pub healthy: Option<Duration>,
    pub registered: Option<Duration>,
    pub serving: Option<Duration>,
}

/// Polls until all `n` replicas run on other nodes than `gone`, are registered and have each
/// answered through the ingress since `t0`.
///
/// # Errors
/// Not within `timeout`.
pub fn wait_recovery(
    mesh: &Mesh,
    load: &Load,
    gone: usize,
    n: usize,
    t0: Instant,
    timeout: Duration,
) -> anyhow::Result<Recovery> {
    let mut r = Recovery::default();
    let gone = node_id(gone);
    let after = t0 + Duration::from_millis(100);
    wait_until(timeout, "every replica serving on the other node", || {
        if r.lost.is_none() && !mesh.nodes()?.iter().any(|e| e.node.as_str() == gone) {
            r.lost = Some(t0.elapsed());
        }
        let status = mesh.status()?;
        let elsewhere = status
            .iter()
            .filter(|x| x.state.keyword() == "healthy")
            .filter(|x| x.node.as_ref().is_some_and(|id| id.as_str() != gone))
            .count();
        if elsewhere < n || status.len() != n {
            return Ok(None);
        }
        r.healthy.get_or_insert(t0.elapsed());
        if r.registered.is_none() {
            let b = mesh.tower_backends()?;
            if b.len() == n && b.iter().all(|a| mesh.http_ok(*a, "/healthz")) {
                r.registered = Some(t0.elapsed());
            }
        }
        if r.serving.is_none() {
            let seen = load.seen();
            let all = status.iter().all(|x| {
                seen.get(x.replica.as_str())
                    .is_some_and(|(_, last)| *last > after)
            });
            if all {
                r.serving = Some(t0.elapsed());
            }
        }
        Ok((r.registered.is_some() && r.serving.is_some()).then_some(()))
    })?;
    Ok(r)
}

fn opt_secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "—".into(), secs)
}

/// Lines of `<mesh dir>/<daemon>.log` after the last line containing `since` (the whole log
/// when absent) that contain every one of `needles`.
fn count_log(mesh: &Mesh, daemon: &str, since: &str, needles: &[&str]) -> usize {
    let text = std::fs::read_to_string(mesh.dir.join(format!("{daemon}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().rposition(|l| l.contains(since)).unwrap_or(0);
    lines
        .iter()
        .skip(start)
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// What the Tower and the edge did with the backends of a node that went away, when the Tower
/// kept them well after the replicas were healthy elsewhere.
#[must_use]
pub fn stale_backends_note(mesh: &Mesh, r: &Recovery) -> Option<String> {
    let (healthy, registered) = (r.healthy?, r.registered?);
    (registered > healthy + Duration::from_secs(5)).then(|| {
        format!(
            "the Tower listed the lost node's replicas for {} after they were replaced (until \
             their TTL, 30 s by default, ran out): nothing deregisters them when the Conductor \
             drops a node, so the ingress kept them as backends; it logged {} ejections of \
             backends meanwhile",
            secs(registered - healthy),
            count_log(mesh, "ingress", "ingress started", &["backend ejected"])
        )
    })
}

/// c. Node loss under load: `kill -9` of the busiest node agent and of its workloads' process
/// groups; time until every replica serves again on the other node (goal ≤ 6 s).
///
/// # Errors
/// The mesh does not work, or the replicas do not recover within 30 s.
pub fn node_loss(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let mut mesh = ctx.mesh("c-node-loss")?;
    mesh.deploy(&example_manifest(ctx.env, &mesh.layout, 3, &[], ""), 3)?;
    let (victim, pids) = busiest_node(&mesh)?;
    let agent = mesh.node_pid(victim).context("victim node not running")?;
    let mut groups = pids.clone();
    groups.extend(procs::children_of(agent));
    groups.sort_unstable();
    groups.dedup();
    let load = ctx.load(&mesh, &ctx.spec);
    sleep(Duration::from_secs(1))?;
    let t0 = Instant::now();
    mesh.kill_node(victim);
    for g in &groups {
        let _ = procs::kill9_group(*g);
    }
    let r = wait_recovery(&mesh, &load, victim, 3, t0, Duration::from_secs(30))?;
    sleep(Duration::from_secs(1))?;
    let stats = load.finish();
    let serving = r.serving.unwrap_or_default();
    let mut notes = vec![
        format!(
            "killed the agent of {} and the process groups of its {} replicas (pids {groups:?}); node expiry 5 s and heartbeat 1 s (the defaults)",
            node_id(victim),
            pids.len()
        ),
        format!(
            "node dropped by the Conductor after {}; every replica healthy on the other node after {}; the Tower listing exactly the live backends after {}; every replica answered through the ingress after {}",
            opt_secs(r.lost),
            opt_secs(r.healthy),
            opt_secs(r.registered),
            opt_secs(r.serving)
        ),
        load_note(&stats),
    ];
    notes.extend(stale_backends_note(&mesh, &r));
    notes.extend(failure_note(&stats, t0));
    Ok(Outcome {
        name: ctx.name('c', "node loss (agent + workloads kill -9)"),
        measured: format!("all replicas serving again {}", secs(serving)),
        goal: "≤ 6 s".into(),
        verdict: Verdict::of(serving <= Duration::from_secs(6)),
        notes,
        load: Some(stats),
    })
}

fn sorted_pids(mesh: &Mesh) -> anyhow::Result<Vec<u32>> {
    let mut p: Vec<u32> = mesh.status()?.iter().map(|r| r.pid).collect();
    p.sort_unstable();
    Ok(p)
}

/// d. `kill -9` and restart of the Conductor, then of the Tower, under load: goal 0 failed;
/// the Conductor adopts the same processes; after the Tower's restart the ingress still
/// learns of a new replica.
#[must_use]
pub fn restarts(ctx: &Ctx<'_>) -> Vec<Outcome> {
    let (cname, tname) = (
        ctx.name('d', "Conductor kill -9 + restart"),
        ctx.name('d', "Tower kill -9 + restart"),
    );
    let goal = "0 failed";
    let mut mesh = match ctx.mesh("d-restarts").and_then(|m| {
        m.deploy(&example_manifest(ctx.env, &m.layout, 3, &[], ""), 3)?;
        Ok(m)
    }) {
        Ok(m) => m,
        Err(e) => {
            return vec![
                Outcome::error(&cname, goal, &e),
                Outcome::error(&tname, goal, &e),
            ];
        }
    };
    let c = row(&cname, goal, || conductor_restart(ctx, &mut mesh, &cname));
    let t = row(&tname, goal, || tower_restart(ctx, &mut mesh, &tname));
    vec![c, t]
}

fn conductor_restart(ctx: &Ctx<'_>, mesh: &mut Mesh, name: &str) -> anyhow::Result<Outcome> {
    let before = sorted_pids(mesh)?;
    let load = ctx.load(mesh, &ctx.spec);
    sleep(Duration::from_secs(1))?;
    let t0 = Instant::now();
    mesh.kill_conductor();
    sleep(Duration::from_millis(500))?;
    mesh.start_conductor()?;
    let up = t0.elapsed();
    let adopted = wait_until(Duration::from_secs(15), "the replicas adopted", || {
        Ok((healthy_count(mesh)? == 3).then(|| t0.elapsed()))
    })?;
    sleep(Duration::from_secs(2))?;
    let stats = load.finish();
    let after = sorted_pids(mesh)?;
    let same = before == after;
    let mut notes = vec![
        format!(
            "down for 500 ms; answering again {} after the kill; all 3 replicas reported healthy {} after the kill; same pids before and after (nothing launched twice): {same}",
            secs(up),
            secs(adopted)
        ),
        load_note(&stats),
    ];
    notes.extend(failure_note(&stats, t0));
    Ok(Outcome {
        name: name.into(),
        measured: format!(
            "Conductor back {}, replicas adopted {}",
            secs(up),
            secs(adopted)
        ),
        goal: "0 failed".into(),
        verdict: Verdict::of(stats.failed() == 0 && same),
        notes,
        load: Some(stats),
    })
}

/// `skr8tr scale api N`, then how long until a replica the load had not seen before answered
/// through the ingress (`None`: not within 40 s).
fn scale_and_learn(mesh: &Mesh, load: &Load, n: u32) -> anyhow::Result<Option<Duration>> {
    let t = Instant::now();
    mesh.cli(&["scale", crate::mesh::APP, &n.to_string()])?;
    let learned = wait_until(
        Duration::from_secs(40),
        "a new replica through the ingress",
        || {
            let fresh = load
                .seen()
                .values()
                .any(|(first, _)| *first > t + Duration::from_millis(1));
            Ok(fresh.then(|| t.elapsed()))
        },
    );
    match learned {
        Ok(d) => Ok(Some(d)),
        Err(_) if !procs::interrupted() => Ok(None),
        Err(e) => Err(e),
    }
}

fn tower_restart(ctx: &Ctx<'_>, mesh: &mut Mesh, name: &str) -> anyhow::Result<Outcome> {
    let load = ctx.load(mesh, &ctx.spec);
    sleep(Duration::from_secs(1))?;
    // Baseline: how fast the edge learns of a new replica with the Tower up all along.
    let baseline = scale_and_learn(mesh, &load, 4)?;
    wait_until(Duration::from_secs(20), "4 backends registered", || {
        Ok((mesh.tower_backends()?.len() == 4).then_some(()))
    })?;
    let t0 = Instant::now();
    mesh.kill_tower();
    sleep(Duration::from_millis(500))?;
    mesh.start_tower()?;
    let up = t0.elapsed();
    let rebuilt = wait_until(Duration::from_secs(40), "the Tower set rebuilt", || {
        Ok((mesh.tower_backends()?.len() == 4).then(|| t0.elapsed()))
    })?;
    // Does the edge still follow the Tower? A fifth replica must get traffic.
    let learned = scale_and_learn(mesh, &load, 5)?;
    sleep(Duration::from_secs(1))?;
    let stats = load.finish();
    let learn = |d: Option<Duration>| d.map_or_else(|| "never (40 s)".into(), secs);
    let mut notes = vec![
        format!(
            "down for 500 ms; answering again {} after the kill; all 4 backends registered again {} after the kill (node refreshes)",
            secs(up),
            secs(rebuilt)
        ),
        format!(
            "`skr8tr scale` to a new replica → its first answer through the ingress: {} before the restart (baseline), {} right after the set was rebuilt",
            learn(baseline),
            learn(learned)
        ),
        load_note(&stats),
    ];
    let unheard = count_log(
        mesh,
        "tower",
        "tower ready",
        &["registered", "watchers_told=0"],
    );
    if unheard > 0 {
        notes.push(format!(
            "{unheard} registrations after the restart reached no watcher (`watchers_told=0` in \
             tower.log): the restarted Tower had no subscriber until the ingress renewed its \
             WATCH (lease 30 s, renewed at half), so the edge did not hear of changes until then"
        ));
    }
    notes.extend(failure_note(&stats, t0));
    Ok(Outcome {
        name: name.into(),
        measured: format!(
            "Tower back {}, set rebuilt {}; new replica routed {} after (baseline {})",
            secs(up),
            secs(rebuilt),
            learn(learned),
            learn(baseline)
        ),
        goal: "0 failed".into(),
        verdict: Verdict::of(stats.failed() == 0),
        notes,
        load: Some(stats),
    })
}

/// e. Autoscale: `/cpu?ms=20` load grows the app from 1 to `max` 3; without it, it shrinks
/// back to `min` 1. A light `GET /` load runs throughout to count failures while scaling.
///
/// # Errors
/// The mesh does not work, or the app does not reach max or min within 90 s.
pub fn autoscale(ctx: &Ctx<'_>, cpu: &LoadSpec) -> anyhow::Result<Outcome> {
    let mesh = ctx.mesh("e-autoscale")?;
    let scale = "  scale {\n    min 1\n    max 3\n    cpu-above 50\n    cpu-below 10\n    cooldown 2s\n  }\n";
    mesh.deploy(&example_manifest(ctx.env, &mesh.layout, 1, &[], scale), 1)?;
    let probe_spec = LoadSpec {
        threads: 2,
        rate: 20.0,
        path: "/".into(),
    };
    let probe = ctx.load(&mesh, &probe_spec);
    let t0 = Instant::now();
    let heavy = ctx.load(&mesh, cpu);
    let mut steps = Vec::new();
    let mut last = 1;
    // Mean replica CPU seen while the app had 1, 2, 3 replicas: (sum, samples).
    let mut cpu_at = [(0.0f64, 0u32); 3];
    let at_max = wait_until(Duration::from_secs(90), "the app at max (3)", || {
        let a = mesh.app()?;
        let running: Vec<f64> = mesh
            .status()?
            .iter()
            .filter(|r| r.state.keyword() == "healthy")
            .map(|r| r.cpu.as_f64())
            .collect();
        if let Some(slot) = running.len().checked_sub(1).and_then(|i| cpu_at.get_mut(i))
            && running.iter().any(|c| *c > 0.0)
        {
            slot.0 += running.iter().sum::<f64>() / running.len() as f64;
            slot.1 += 1;
        }
        if a.desired != last {
            steps.push(format!("{}→{} at {}", last, a.desired, secs(t0.elapsed())));
            last = a.desired;
        }
        Ok((a.desired == 3 && a.healthy == 3).then(|| t0.elapsed()))
    });
    let heavy_stats = heavy.finish();
    let at_max = at_max?;
    let t1 = Instant::now();
    let at_min = wait_until(Duration::from_secs(90), "the app back at min (1)", || {
        let a = mesh.app()?;
        if a.desired != last {
            steps.push(format!(
                "{}→{} at +{} after the load stopped",
                last,
                a.desired,
                secs(t1.elapsed())
            ));
            last = a.desired;
        }
        Ok((a.desired == 1 && a.running == 1).then(|| t1.elapsed()))
    })?;
    sleep(Duration::from_secs(1))?;
    let stats = probe.finish();
    let mut notes = vec![
        format!(
            "scale {{ min 1 max 3 cpu-above 50 cpu-below 10 cooldown 2s }}; the Conductor acts on a condition held for 3 s; steps: {}",
            steps.join(", ")
        ),
        format!(
            "mean replica CPU (one core = 100 %) seen under the CPU load with 1, 2, 3 healthy replicas: {}",
            cpu_at
                .iter()
                .map(|(sum, n)| if *n == 0 {
                    "—".to_owned()
                } else {
                    format!("{:.0} %", sum / f64::from(*n))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "CPU load: {} → {} requests, {} non-2xx, {} socket errors, p50 {} ms, achieved {:.0} req/s",
            cpu.describe(),
            heavy_stats.requests,
            heavy_stats.non_2xx,
            heavy_stats.socket_errors,
            heavy_stats
                .quantile(0.5)
                .map_or_else(|| "—".into(), |d| d.as_millis().to_string()),
            heavy_stats.rate()
        ),
        format!(
            "the table's load columns are a light {} running through growth and shrink",
            probe_spec.describe()
        ),
    ];
    notes.extend(failure_note(&stats, t0));
    notes.extend(failure_note(&heavy_stats, t0).map(|n| format!("CPU load: {n}")));
    Ok(Outcome {
        name: ctx.name('e', "autoscale 1 → 3 → 1"),
        measured: format!(
            "max (3) reached {} after the CPU load started; min (1) {} after it stopped",
            secs(at_max),
            secs(at_min)
        ),
        goal: "grows to max under load, back to min after; 0 failed".into(),
        verdict: Verdict::of(stats.failed() == 0 && heavy_stats.failed() == 0),
        notes,
        load: Some(stats),
    })
}

/// f. A rollout to a version whose health check never passes is reverted with 0 failed
/// requests, the old replicas untouched.
///
/// # Errors
/// The mesh does not work, or the rollout does not end within 60 s.
pub fn broken_rollout(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let mesh = ctx.mesh("f-broken-rollout")?;
    let policy = "  rollout {\n    healthy-deadline 3s\n  }\n";
    let v1 = example_manifest(ctx.env, &mesh.layout, 3, &[("VERSION", "1")], policy);
    mesh.deploy(&v1, 3)?;
    let before = sorted_pids(&mesh)?;
    let load = ctx.load(&mesh, &ctx.spec);
    sleep(Duration::from_secs(1))?;
    let broken = v1.replace("    VERSION 1\n", "    VERSION 2\n    HEALTH_STATUS 500\n");
    if broken == v1 {
        bail!("could not write the broken manifest");
    }
    let file = mesh.manifest_file("v2-broken", &broken)?;
    let t0 = Instant::now();
    mesh.cli(&["rollout", &file, "--detach"])?;
    let (state, took, detail) = wait_rollout(&mesh, t0)?;
    let clean = wait_until(
        Duration::from_secs(20),
        "3 healthy replicas and no other",
        || {
            let s = mesh.status()?;
            Ok(
                (s.len() == 3 && s.iter().all(|r| r.state.keyword() == "healthy"))
                    .then(|| t0.elapsed()),
            )
        },
    )?;
    sleep(Duration::from_secs(1))?;
    let stats = load.finish();
    let after = sorted_pids(&mesh)?;
    let kept = before == after;
    let mut notes = vec![
        format!(
            "rollout {state} after {} ({detail}); back to exactly 3 healthy replicas after {}; the old replicas kept running (same pids): {kept}",
            secs(took),
            secs(clean)
        ),
        load_note(&stats),
    ];
    notes.extend(failure_note(&stats, t0));
    Ok(Outcome {
        name: ctx.name('f', "rollout to a broken version"),
        measured: format!("{state} after {}", secs(took)),
        goal: "reverted, 0 failed".into(),
        verdict: Verdict::of(state == RolloutState::Reverted && stats.failed() == 0),
        notes,
        load: Some(stats),
    })
}

/// Rounds of scenario h (the median is reported).
const UP_ROUNDS: usize = 5;

/// h. `skr8tr up` of 3 replicas of the example service on an idle mesh (no load), in
/// [`UP_ROUNDS`] rounds (`up`, measure, `down`, wait until gone). Each is timed from starting
/// the CLI (the operator's view, SUBMIT included) to the first 200 through the ingress, to 3
/// backends in the Tower and to 3 replicas healthy in the Conductor, polled every ~1 ms from
/// here (one HTTP GET and two UDP round trips per poll: no process per poll).
///
/// # Errors
/// The mesh does not start, or a round does not get there within 20 s.
pub fn up(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let mesh = ctx.mesh("h-up")?;
    let manifest = example_manifest(ctx.env, &mesh.layout, 3, &[], "");
    let file = mesh.manifest_file("up", &manifest)?;
    let ingress = mesh.layout.ingress_addr();
    let mut rounds: Vec<[Duration; 4]> = Vec::new();
    for _ in 0..UP_ROUNDS {
        let mut cmd = mesh.cli_command(&["up", &file]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let t0 = Instant::now();
        // Polled while the CLI runs: `up` returns once the nodes confirmed their launches, and
        // the replicas may serve before that.
        let mut child = Some(cmd.spawn().context("running skr8tr up")?);
        let (mut cli, mut first_200, mut registered, mut healthy) = (None, None, None, None);
        let deadline = t0 + Duration::from_secs(20);
        while cli.is_none() || first_200.is_none() || registered.is_none() || healthy.is_none() {
            procs::check_interrupt()?;
            if Instant::now() > deadline {
                bail!(
                    "after 20 s: CLI {cli:?}, first 200 {first_200:?}, registered {registered:?}, healthy {healthy:?}"
                );
            }
            if let Some(c) = child.as_mut()
                && let Some(status) = c.try_wait().context("waiting for skr8tr up")?
            {
                cli = Some(t0.elapsed());
                child = None;
                if !status.success() {
                    bail!("skr8tr up failed ({status})");
                }
            }
            if first_200.is_none() && mesh.http_ok(ingress, "/") {
                first_200 = Some(t0.elapsed());
            }
            if registered.is_none() && mesh.tower_backends().is_ok_and(|b| b.len() == 3) {
                registered = Some(t0.elapsed());
            }
            if healthy.is_none()
                && mesh
                    .status()
                    .is_ok_and(|s| s.iter().filter(|r| r.state.keyword() == "healthy").count() == 3)
            {
                healthy = Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        rounds.push([
            cli.unwrap_or_default(),
            first_200.unwrap_or_default(),
            registered.unwrap_or_default(),
            healthy.unwrap_or_default(),
        ]);
        mesh.cli(&["down", crate::mesh::APP])?;
        wait_until(Duration::from_secs(20), "the app to be gone", || {
            let gone = mesh.tower_backends()?.is_empty()
                && mesh.status().map_or(true, |s| s.iter().all(|r| r.pid == 0));
            Ok(gone.then_some(()))
        })?;
        sleep(Duration::from_millis(500))?;
    }
    let median = |i: usize| -> Duration {
        let mut v: Vec<Duration> = rounds.iter().filter_map(|r| r.get(i).copied()).collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let spread = |i: usize| -> String {
        let v: Vec<String> = rounds
            .iter()
            .filter_map(|r| r.get(i).map(|d| d.as_millis().to_string()))
            .collect();
        v.join(", ")
    };
    let (first, reg) = (median(1), median(2));
    Ok(Outcome {
        name: ctx.name('h', "`skr8tr up` of 3 replicas → first 200"),
        measured: format!(
            "first 200 {}, 3 registered {}, 3 healthy {} (medians of {UP_ROUNDS})",
            secs(first),
            secs(reg),
            secs(median(3))
        ),
        goal: "first 200 ≤ 50 ms (SPEC §6); 3 registered ≤ 100 ms (issue 3)".into(),
        verdict: Verdict::of(
            first <= Duration::from_millis(50) && reg <= Duration::from_millis(100),
        ),
        notes: vec![format!(
            "idle mesh (no load), 2 nodes, times from starting `skr8tr up`, each round in ms: \
                 CLI returned [{}], first 200 through the ingress [{}], 3 backends in the Tower \
                 [{}], 3 healthy in the Conductor [{}]",
            spread(0),
            spread(1),
            spread(2),
            spread(3)
        )],
        load: None,
    })
}
