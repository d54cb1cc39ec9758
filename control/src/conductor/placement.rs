//! Placement: which node gets the next replica of an app. A pure function of a snapshot.
//!
//! Rules (SPEC §5): only live nodes; never two replicas with the same fixed `port` (or
//! `serve { port }`) on one node;
//! enough free RAM after subtracting what is already placed there but not yet visible in the
//! node's own figures; for `gpu N`, at least N of the GPUs the node reports not held by the
//! replicas placed there (SPEC §7.5); then, in order: fewest replicas of this app (spread), least CPU load
//! (reported plus reserved), most free RAM, and the node id to make ties deterministic.

use std::cmp::Ordering;

use skr8tr_proto::manifest::{App, PortSpec};
use skr8tr_proto::name::NodeId;

use super::model::{NodeView, ReplicaPhase, ReplicaRecord};

const MB: u64 = 1024 * 1024;

/// Load figures for one candidate node, after reservations.
#[derive(Debug, Clone, PartialEq)]
struct Candidate<'a> {
    id: &'a NodeId,
    same_app: usize,
    cpu_load_pct: f64,
    ram_free: u64,
}

/// The node the next replica of `app` should go to, or `None` when no live node fits.
#[must_use]
pub fn choose_node<'a>(
    nodes: &'a [NodeView],
    placed: &[ReplicaRecord],
    app: &App,
) -> Option<&'a NodeId> {
    let want_ram = app.ram.map_or(0, |r| r.0);
    let want_cpu = app.cpu.map_or(0, |c| c.millicores);
    let want_gpus = app.gpu.unwrap_or(0);
    let mut best: Option<Candidate<'a>> = None;
    for node in nodes {
        // An ended replica (a finished job) holds nothing on its node any more.
        let on_node = placed
            .iter()
            .filter(|r| r.node == node.id && r.phase != ReplicaPhase::Ended);
        let mut same_app = 0;
        let mut pending_ram = 0u64;
        let mut reserved_cpu = 0u64;
        let mut port_taken = false;
        let mut held_gpus = 0u32;
        for r in on_node {
            if r.app == app.name && r.phase != ReplicaPhase::Stopping {
                same_app += 1;
            }
            if let (Some(PortSpec::Fixed(a)), Some(PortSpec::Fixed(b))) =
                (r.port_spec, app.listen_port())
                && a == b
                && r.phase != ReplicaPhase::Stopping
            {
                port_taken = true;
            }
            // A replica the node does not report yet is not in its free-RAM figure.
            if r.phase == ReplicaPhase::Launching {
                pending_ram += r.ram;
            }
            reserved_cpu += u64::from(r.cpu_millis);
            held_gpus = held_gpus.saturating_add(r.gpus);
        }
        if want_gpus > 0 && node.gpus.saturating_sub(held_gpus) < want_gpus {
            continue;
        }
        if port_taken {
            continue;
        }
        let ram_free = (node.ram_free_mb * MB).saturating_sub(pending_ram);
        if want_ram > ram_free {
            continue;
        }
        if want_cpu > 0
            && node.cpu_millis > 0
            && reserved_cpu + u64::from(want_cpu) > u64::from(node.cpu_millis)
        {
            continue;
        }
        let cores = f64::from(node.cpu_millis.max(1000)) / 1000.0;
        let cpu_load_pct = f64::from(node.cpu_pct) + reserved_cpu as f64 / 10.0 / cores;
        let cand = Candidate {
            id: &node.id,
            same_app,
            cpu_load_pct,
            ram_free,
        };
        best = match best {
            Some(b) if better(&b, &cand) != Ordering::Greater => Some(b),
            _ => Some(cand),
        };
    }
    best.map(|c| c.id)
}

/// `Less` when `a` is the better home.
fn better(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    a.same_app
        .cmp(&b.same_app)
        .then_with(|| a.cpu_load_pct.total_cmp(&b.cpu_load_pct))
        .then_with(|| b.ram_free.cmp(&a.ram_free))
        .then_with(|| a.id.cmp(b.id))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Instant;

    use skr8tr_proto::manifest::{ByteSize, CpuLimit};
    use skr8tr_proto::name::{AppName, ReplicaId};

    use super::*;

    fn node(id: &str, cpu: f32, ram_free_mb: u64) -> NodeView {
        NodeView {
            id: NodeId::new(id).unwrap(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            agent_port: 7775,
            cpu_pct: cpu,
            ram_free_mb,
            ram_total_mb: 16_000,
            cpu_millis: 4000,
            gpus: 0,
            last_seen: Instant::now(),
            replicas: Vec::new(),
        }
    }

    fn app(name: &str, port: Option<PortSpec>) -> App {
        let mut a = App::with_defaults(AppName::new(name).unwrap(), Some("/bin/true".into()));
        a.port = port;
        a
    }

    fn placed(app: &App, node: &str, phase: ReplicaPhase, n: u32) -> ReplicaRecord {
        ReplicaRecord {
            id: ReplicaId::new(format!("{}.g1.r{n}", app.name)).unwrap(),
            app: app.name.clone(),
            generation: 1,
            node: NodeId::new(node).unwrap(),
            phase,
            pid: None,
            port: None,
            port_spec: app.listen_port(),
            ram: app.ram.map_or(0, |r| r.0),
            cpu_millis: app.cpu.map_or(0, |c| c.millicores),
            placed_at_ms: 0,
            exit: None,
            gpus: app.gpu.unwrap_or(0),
        }
    }

    fn pick(nodes: &[NodeView], placed: &[ReplicaRecord], app: &App) -> Option<String> {
        choose_node(nodes, placed, app).map(ToString::to_string)
    }

    #[test]
    fn least_cpu_then_most_free_ram() {
        let a = app("api", None);
        assert_eq!(
            pick(&[node("a", 50.0, 1000), node("b", 10.0, 500)], &[], &a).as_deref(),
            Some("b")
        );
        assert_eq!(
            pick(&[node("a", 10.0, 1000), node("b", 10.0, 500)], &[], &a).as_deref(),
            Some("a")
        );
        assert_eq!(
            pick(&[node("b", 10.0, 500), node("a", 10.0, 500)], &[], &a).as_deref(),
            Some("a"),
            "ties by id"
        );
        assert_eq!(pick(&[], &[], &a), None);
    }

    #[test]
    fn replicas_of_one_app_spread_before_load_matters() {
        let a = app("api", Some(PortSpec::Auto));
        let nodes = [node("a", 0.0, 8000), node("b", 60.0, 8000)];
        let p = [placed(&a, "a", ReplicaPhase::Healthy, 1)];
        assert_eq!(pick(&nodes, &p, &a).as_deref(), Some("b"));
        let p = [
            placed(&a, "a", ReplicaPhase::Healthy, 1),
            placed(&a, "b", ReplicaPhase::Healthy, 2),
        ];
        assert_eq!(
            pick(&nodes, &p, &a).as_deref(),
            Some("a"),
            "then the least loaded"
        );
    }

    #[test]
    fn never_two_replicas_with_the_same_fixed_port_on_a_node() {
        let a = app("api", Some(PortSpec::Fixed(8080)));
        let other = app("web", Some(PortSpec::Fixed(8080)));
        let nodes = [node("a", 0.0, 8000), node("b", 90.0, 8000)];
        let p = [placed(&other, "a", ReplicaPhase::Running, 1)];
        assert_eq!(pick(&nodes, &p, &a).as_deref(), Some("b"));
        let p = [
            placed(&other, "a", ReplicaPhase::Running, 1),
            placed(&a, "b", ReplicaPhase::Running, 2),
        ];
        assert_eq!(
            pick(&nodes, &p, &a),
            None,
            "pending: no node has the port free"
        );
        // a replica being stopped is about to free its port
        let p = [
            placed(&other, "a", ReplicaPhase::Stopping, 1),
            placed(&a, "b", ReplicaPhase::Running, 2),
        ];
        assert_eq!(pick(&nodes, &p, &a).as_deref(), Some("a"));
        // auto ports never conflict
        let auto = app("auto", Some(PortSpec::Auto));
        let p = [placed(&auto, "a", ReplicaPhase::Running, 1)];
        assert_eq!(
            pick(&[node("a", 0.0, 8000)], &p, &auto).as_deref(),
            Some("a")
        );
    }

    #[test]
    fn a_static_sites_serve_port_is_a_fixed_port_too() {
        // The `static-site` example: two replicas of `serve { port 8081 }`, no `port`.
        let mut site = app("docs", None);
        site.serve = Some(skr8tr_proto::manifest::Serve {
            static_dir: "/srv/docs/html".into(),
            port: Some(8081),
            spa: false,
            cache: None,
        });
        let one = [node("a", 0.0, 8000)];
        let p = [placed(&site, "a", ReplicaPhase::Running, 1)];
        assert_eq!(pick(&one, &p, &site), None, "the port is taken on a");
        let two = [node("a", 0.0, 8000), node("b", 50.0, 8000)];
        assert_eq!(pick(&two, &p, &site).as_deref(), Some("b"));
        // And an app whose `port` is 8081 cannot join it there either.
        let api = app("api", Some(PortSpec::Fixed(8081)));
        assert_eq!(pick(&two, &p, &api).as_deref(), Some("b"));
    }

    #[test]
    fn ram_placed_but_not_yet_reported_is_subtracted() {
        let mut a = app("db", None);
        a.ram = Some(ByteSize(600 * MB));
        let nodes = [node("a", 0.0, 1000), node("b", 50.0, 700)];
        assert_eq!(pick(&nodes, &[], &a).as_deref(), Some("a"));
        let p = [placed(&a, "a", ReplicaPhase::Launching, 1)];
        assert_eq!(
            pick(&nodes, &p, &a).as_deref(),
            Some("b"),
            "a has 400 MB left after the pending replica"
        );
        let p = [
            placed(&a, "a", ReplicaPhase::Launching, 1),
            placed(&a, "b", ReplicaPhase::Launching, 2),
        ];
        assert_eq!(pick(&nodes, &p, &a), None);
        // once running, the node's own figure already includes it
        let p = [placed(&a, "a", ReplicaPhase::Running, 1)];
        assert_eq!(pick(&[node("a", 0.0, 1000)], &p, &a).as_deref(), Some("a"));
    }

    #[test]
    fn cpu_reservations_count_against_load_and_capacity() {
        let mut a = app("calc", Some(PortSpec::Auto));
        a.cpu = Some(CpuLimit { millicores: 2000 });
        let nodes = [node("a", 10.0, 8000), node("b", 30.0, 8000)];
        let other = {
            let mut o = app("other", None);
            o.cpu = Some(CpuLimit { millicores: 3000 });
            o
        };
        let p = [placed(&other, "a", ReplicaPhase::Running, 1)];
        assert_eq!(
            pick(&nodes, &p, &a).as_deref(),
            Some("b"),
            "a has 1 core unreserved"
        );
    }

    #[test]
    fn an_ended_replica_holds_no_port_cpu_or_spread() {
        let mut a = app("batch", Some(PortSpec::Fixed(9000)));
        a.cpu = Some(CpuLimit { millicores: 1000 });
        let capacity = |mut n: NodeView| {
            n.cpu_millis = 1000;
            n
        };
        let small = [capacity(node("a", 0.0, 8000))];
        for (phase, fits) in [
            (ReplicaPhase::Running, false),
            (ReplicaPhase::Stopping, false),
            (ReplicaPhase::Ended, true),
        ] {
            let p = [placed(&a, "a", phase, 1)];
            assert_eq!(pick(&small, &p, &a).is_some(), fits, "{phase:?}");
        }
        // spread: an ended replica on `a` does not push the next one to the busier `b`
        let both = [node("a", 0.0, 8000), node("b", 50.0, 8000)];
        let auto = app("auto", Some(PortSpec::Auto));
        let p = [placed(&auto, "a", ReplicaPhase::Ended, 1)];
        assert_eq!(pick(&both, &p, &auto).as_deref(), Some("a"));
        let p = [placed(&auto, "a", ReplicaPhase::Running, 1)];
        assert_eq!(pick(&both, &p, &auto).as_deref(), Some("b"));
    }

    #[test]
    fn gpu_apps_go_only_where_enough_gpus_are_free() {
        let mut ml = app("ml", None);
        ml.gpu = Some(2);
        let gpus = |id: &str, n: u32, cpu: f32| {
            let mut v = node(id, cpu, 8000);
            v.gpus = n;
            v
        };
        /// The nodes, the replicas of `ml` already on them (node, phase), the expected node.
        type Case<'a> = (
            &'a [NodeView],
            &'a [(&'a str, ReplicaPhase)],
            Option<&'a str>,
        );
        let cases: &[Case<'_>] = &[
            (&[gpus("a", 0, 0.0)], &[], None),
            (&[gpus("a", 1, 0.0)], &[], None),
            (&[gpus("a", 2, 0.0)], &[], Some("a")),
            // the least loaded node has no GPU: the GPU node gets it anyway
            (&[gpus("a", 0, 0.0), gpus("b", 4, 90.0)], &[], Some("b")),
            // two of four held by a placed replica: two left
            (
                &[gpus("b", 4, 0.0)],
                &[("b", ReplicaPhase::Running)],
                Some("b"),
            ),
            (
                &[gpus("b", 4, 0.0)],
                &[("b", ReplicaPhase::Running), ("b", ReplicaPhase::Launching)],
                None,
            ),
            // a replica being stopped still holds its GPUs; an ended one holds none
            (
                &[gpus("b", 4, 0.0)],
                &[("b", ReplicaPhase::Running), ("b", ReplicaPhase::Stopping)],
                None,
            ),
            (
                &[gpus("b", 4, 0.0)],
                &[("b", ReplicaPhase::Running), ("b", ReplicaPhase::Ended)],
                Some("b"),
            ),
        ];
        for (i, (nodes, placed_here, want)) in cases.iter().enumerate() {
            let p: Vec<ReplicaRecord> = placed_here
                .iter()
                .enumerate()
                .map(|(n, (node, phase))| placed(&ml, node, *phase, u32::try_from(n).unwrap()))
                .collect();
            assert_eq!(pick(nodes, &p, &ml).as_deref(), *want, "case {i}");
        }
        // an app without `gpu` is placed whatever the GPUs
        assert_eq!(
            pick(&[gpus("a", 0, 0.0)], &[], &app("web", None)).as_deref(),
            Some("a")
        );
    }
}
