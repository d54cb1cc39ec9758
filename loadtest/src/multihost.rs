//! Scenario g: three hosts built from network namespaces, with authentication on.
//!
//! ```text
//!   ns …-h1 10.77.0.1: Tower, Conductor, ingress, the load client, the CLI
//!   ns …-h2 10.77.0.2: node1            ns …-h3 10.77.0.3: node2
//!   each eth0 ══ veth ══ hN ─┐
//!                            ├─ br0 in ns …-br (the "switch"; nothing in the root namespace)
//! ```
//! Keys: a mesh key for every daemon and an operator key whose public half the Conductor
//! trusts; every change goes through the CLI signed with it. Runs a–d there, then a
//! partition: the bridge side of one node's veth goes down, its replicas must move; after it
//! comes back no duplicate may survive (`skr8tr list`, and the node's own children).
//! The namespaces are deleted when [`Topology`] drops (and on Ctrl-C, see `procs`).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::mesh::{APP, Env, Host, Keys, Layout, Mesh, example_manifest, node_id, wait_until};
use crate::procs::{self, sleep};
use crate::report::{Outcome, Verdict, secs};
use crate::scenarios::{self, Ctx, failure_note, row, wait_recovery};

/// Why the multi-host scenario cannot run here, if it cannot.
#[must_use]
pub fn unavailable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (network namespaces); run the runner as root".into());
    }
    let ip = Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !ip.is_ok_and(|s| s.success()) {
        return Some("needs the `ip` command (iproute2)".into());
    }
    None
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The namespaces: a bridge and three hosts.
#[derive(Debug)]
pub struct Topology {
    bridge: String,
    hosts: Vec<String>,
}

impl Topology {
    /// Creates the namespaces, the bridge and the links.
    ///
    /// # Errors
    /// An `ip` command fails (what was made is removed again on drop).
    pub fn create() -> anyhow::Result<Self> {
        let tag = format!("skr8lt{}", std::process::id());
        let mut t = Self {
            bridge: format!("{tag}-br"),
            hosts: Vec::new(),
        };
        add_ns(&t.bridge)?;
        ip(&["-n", &t.bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &t.bridge, "link", "set", "br0", "up"])?;
        for i in 1..=3 {
            let ns = format!("{tag}-h{i}");
            add_ns(&ns)?;
            t.hosts.push(ns.clone());
            let port = format!("h{i}");
            ip(&[
                "-n", &t.bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ])?;
            ip(&["-n", &t.bridge, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &t.bridge, "link", "set", &port, "up"])?;
            let addr = format!("{}/24", Self::ip_of(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(t)
    }

    fn ip_of(i: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, 0, i)
    }

    /// Host `i` (1..=3).
    #[must_use]
    pub fn host(&self, i: u8) -> Host {
        Host {
            ns: self.hosts.get(usize::from(i).saturating_sub(1)).cloned(),
            ip: Self::ip_of(i),
        }
    }

    /// Sets the bridge side of host `i`'s link up or down (a cable pulled at the switch).
    ///
    /// # Errors
    /// `ip` fails.
    pub fn link(&self, i: u8, up: bool) -> anyhow::Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.bridge, "link", "set", &format!("h{i}"), state])
    }

    /// The mesh layout: control plane and ingress on host 1, a node on each of hosts 2 and 3,
    /// the standard ports (each host has its own), with keys.
    #[must_use]
    pub fn layout(&self, keys: &Keys) -> Layout {
        Layout {
            control: self.host(1),
            nodes: vec![self.host(2), self.host(3)],
            keys: Some(keys.clone()),
            tower: 7772,
            conductor: 7771,
            heartbeat: 7770,
            node_ports: vec![7775, 7775],
            ingress: 8080,
        }
    }
}

fn add_ns(name: &str) -> anyhow::Result<()> {
    procs::register_namespace(name);
    ip(&["netns", "add", name])?;
    ip(&["-n", name, "link", "set", "lo", "up"])
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.bridge)) {
            let _ = ip(&["netns", "delete", ns]);
            procs::forget_namespace(ns);
        }
    }
}

/// Generates the mesh key and an operator key under `env.work/keys`.
///
/// # Errors
/// `skr8tr keygen` fails.
pub fn keys(env: &Env) -> anyhow::Result<Keys> {
    let dir = env.work.join("keys");
    for (args, sub) in [(&["--mesh"][..], "mesh"), (&[][..], "operator")] {
        let out = Command::new(env.bin("skr8tr"))
            .arg("keygen")
            .args(args)
            .arg("--out")
            .arg(dir.join(sub))
            .output()
            .context("running skr8tr keygen")?;
        if !out.status.success() {
            bail!("skr8tr keygen: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(Keys {
        mesh_secret: dir.join("mesh/mesh.sec"),
        operator_secret: dir.join("operator/signing.sec"),
        operator_public: dir.join("operator/skrtrview.pub"),
    })
}

/// Scenario g: a, b, c and d on three namespace hosts, then the partition.
#[must_use]
pub fn run(env: &Env, spec: &crate::load::LoadSpec) -> Vec<Outcome> {
    let goal = "as a–c; partition: replicas move, no duplicate after";
    if let Some(why) = unavailable() {
        return vec![Outcome::skipped("g. multi-host", goal, &why)];
    }
    let setup = Topology::create().and_then(|t| Ok((keys(env)?, t)));
    let (keys, topo) = match setup {
        Ok(s) => s,
        Err(e) => return vec![Outcome::error("g. multi-host (set-up)", goal, &e)],
    };
    let make = || Ok(topo.layout(&keys));
    let ctx = Ctx {
        env,
        layout: &make,
        multi_host: true,
        spec: spec.clone(),
    };
    let mut out = Vec::new();
    let (a, b, c) = (
        ctx.name('a', "rollout of 3 replicas"),
        ctx.name('b', "kill -9 of one replica"),
        ctx.name('c', "node loss (agent + workloads kill -9)"),
    );
    out.push(row(&a, "0 failed, ≤ 3 s", || scenarios::rollout(&ctx)));
    out.push(row(&b, "failures counted", || {
        scenarios::replica_kill(&ctx)
    }));
    out.push(row(&c, "≤ 6 s", || scenarios::node_loss(&ctx)));
    out.extend(scenarios::restarts(&ctx));
    let p = ctx.name('g', "partition of a node (link down, then up)");
    out.push(row(
        &p,
        "replicas move; no duplicate after the link returns",
        || partition(&ctx, &topo, &p),
    ));
    out
}

/// The live example-service children of node agent `i`.
fn workloads_of(mesh: &Mesh, i: usize) -> Vec<u32> {
    mesh.node_pid(i).map(procs::children_of).unwrap_or_default()
}

fn listed_replicas(mesh: &Mesh) -> anyhow::Result<usize> {
    let out = mesh.cli(&["list", "--json"])?;
    let v: serde_json::Value = serde_json::from_str(&out).context("skr8tr list --json")?;
    Ok(v.get("replicas")
        .and_then(serde_json::Value::as_array)
        .map_or(0, |r| {
            r.iter()
                .filter(|e| e.get("app").and_then(serde_json::Value::as_str) == Some(APP))
                .count()
        }))
}

fn partition(ctx: &Ctx<'_>, topo: &Topology, name: &str) -> anyhow::Result<Outcome> {
    let mesh = ctx.mesh("partition")?;
    mesh.deploy(&example_manifest(ctx.env, &mesh.layout, 3, &[], ""), 3)?;
    let status = mesh.status()?;
    let victim = (0..2)
        .max_by_key(|i| {
            status
                .iter()
                .filter(|r| r.node.as_ref().is_some_and(|n| n.as_str() == node_id(*i)))
                .count()
        })
        .unwrap_or(1);
    let host = u8::try_from(victim + 2).context("host index")?;
    let stranded = workloads_of(&mesh, victim);
    let load = ctx.load(&mesh, &ctx.spec);
    sleep(Duration::from_secs(1))?;
    let t0 = Instant::now();
    topo.link(host, false)?;
    let moved = wait_recovery(&mesh, &load, victim, 3, t0, Duration::from_secs(30));
    let still_running = stranded.iter().filter(|p| procs::alive(**p)).count();
    let t1 = Instant::now();
    topo.link(host, true)?;
    let moved = moved?;
    let mut rejoined = None;
    let dedup = wait_until(
        Duration::from_secs(40),
        "no duplicate after the link returned",
        || {
            if rejoined.is_none() && mesh.nodes()?.len() == 2 {
                rejoined = Some(t1.elapsed());
            }
            let stale = stranded.iter().filter(|p| procs::alive(**p)).count();
            let children: usize = (0..2).map(|i| workloads_of(&mesh, i).len()).sum();
            let b = mesh.tower_backends()?;
            Ok((stale == 0
                && children == 3
                && mesh.status()?.len() == 3
                && listed_replicas(&mesh)? == 3
                && b.len() == 3
                && b.iter().all(|a| mesh.http_ok(*a, "/healthz")))
            .then(|| t1.elapsed()))
        },
    );
    sleep(Duration::from_secs(1))?;
    let stats = load.finish();
    let dedup = dedup?;
    let serving = moved.serving.unwrap_or_default();
    let mut notes = vec![
        format!(
            "link of host {host} ({}, {} replicas) set down at the bridge; node dropped after {}; its replicas healthy on the other node after {}; Tower exact after {}; every replica answered through the ingress after {}",
            node_id(victim),
            stranded.len(),
            secs(moved.lost.unwrap_or_default()),
            secs(moved.healthy.unwrap_or_default()),
            secs(moved.registered.unwrap_or_default()),
            secs(serving)
        ),
        format!(
            "while cut off, {still_running} of its {} stranded replicas were still running (as expected: the node cannot hear the Conductor)",
            stranded.len()
        ),
        format!(
            "link up: node back in NODES after {}; stranded replicas stopped, `skr8tr list` = 3 replicas, 3 example-service children over both agents, Tower = 3 live backends after {}",
            rejoined.map_or_else(|| "—".into(), secs),
            secs(dedup)
        ),
        scenarios::load_note(&stats),
    ];
    notes.extend(scenarios::stale_backends_note(&mesh, &moved));
    let slow = stats
        .latencies_us
        .iter()
        .filter(|us| **us >= 1_000_000)
        .count();
    if slow > 0 || stats.socket_errors > 0 {
        notes.push(format!(
            "the unreachable replicas stayed backends of the ingress until the Tower dropped \
             them: {slow} responses took ≥ 1 s (each request that tried the cut-off host waited \
             the ingress's 2 s connect timeout, or its 2 s upstream link timeout on a pooled \
             connection, before it was retried on the other host; the host is then ejected \
             for 1 s, then 2 s, …) and {} requests got no response within the client's 10 s",
            stats.socket_errors
        ));
    }
    notes.extend(failure_note(&stats, t0));
    Ok(Outcome {
        name: name.into(),
        measured: format!(
            "moved + serving {}; duplicates gone {} after the link returned",
            secs(serving),
            secs(dedup)
        ),
        goal: "replicas move; no duplicate after the link returns".into(),
        verdict: Verdict::of(true),
        notes,
        load: Some(stats),
    })
}
