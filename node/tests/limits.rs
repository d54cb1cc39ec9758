//! Resource limits: enforced by whatever the kernel offers here, and reported.

use std::path::PathBuf;

use skr8tr_node::limits::{parse_mountinfo, parse_proc_cgroup};
use skr8tr_node::{CgroupMode, Engine, LimitEnforcement, Phase, Termination};
use skr8tr_proto::manifest::{ByteSize, CpuLimit};

use crate::util::*;

#[tokio::test]
async fn ram_limit_is_enforced_and_reported() {
    let n = node().await;
    let mut a = sh("capped", "cat /proc/self/cgroup; exec sleep 30");
    a.ram = Some(ByteSize(256 << 20));
    a.cpu = Some(CpuLimit { millicores: 500 });
    let replica = rid("limits-ram-test1");
    n.engine.launch(replica.clone(), 1, a).await.unwrap();
    let st = n.engine.status()[0].clone();
    assert_ne!(
        st.limits.ram,
        LimitEnforcement::None,
        "ram is always enforceable (rlimit at worst)"
    );
    if matches!(
        st.limits.ram,
        LimitEnforcement::CgroupV1 | LimitEnforcement::CgroupV2
    ) {
        assert!(
            eventually(|| {
                n.engine
                    .logs(&replica)
                    .unwrap()
                    .iter()
                    .any(|l| l.ends_with("/skr8tr/limits-ram-test1"))
            })
            .await
        );
    }
    bounded(n.engine.kill(&replica)).await;
}

#[tokio::test]
async fn without_cgroups_ram_falls_back_to_rlimit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cgroups = CgroupMode::Disabled;
    let (engine, _events, _) = Engine::start(cfg).await.unwrap();
    let _cleanup = Cleanup(engine.clone());
    let mut a = sh("rl", "ulimit -d; ulimit -v; exec sleep 30");
    a.ram = Some(ByteSize(512 << 20));
    a.cpu = Some(CpuLimit { millicores: 250 });
    engine.launch(rid("rl1"), 1, a).await.unwrap();
    let st = engine.status()[0].clone();
    assert_eq!(st.limits.ram, LimitEnforcement::Rlimit);
    assert_eq!(
        st.limits.cpu,
        LimitEnforcement::None,
        "an rlimit cannot cap a CPU rate"
    );
    // RLIMIT_DATA (KiB in `ulimit -d`), never an address-space cap (see the next test)
    assert!(eventually(|| engine.logs(&rid("rl1")).unwrap() == ["524288", "unlimited"]).await);
    bounded(engine.kill(&rid("rl1"))).await;
}

#[tokio::test]
async fn status_reports_cpu_and_memory() {
    let n = node().await;
    n.engine
        .launch(rid("busy1"), 1, sh("busy", "while :; do :; done"))
        .await
        .unwrap();
    let _ = n.engine.status();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let st = n.engine.status()[0].clone();
    assert!(st.cpu_percent > 1.0, "{st:?}");
    assert!(st.rss_bytes > 0, "{st:?}");
    let node = n.engine.node_stats();
    assert!(node.mem_total_bytes > 0 && node.mem_available_bytes <= node.mem_total_bytes);
    bounded(n.engine.kill(&rid("busy1"))).await;
}

/// A JVM reserves far more address space than it uses (heap, class space, code cache): under
/// the rlimit fallback at 512 MiB it must still start, which an `RLIMIT_AS` cap prevents.
#[tokio::test]
async fn the_rlimit_fallback_lets_a_jvm_start() {
    let java = std::path::Path::new("/usr/bin/java");
    if !java.exists() {
        eprintln!("skipped: no /usr/bin/java on this machine (.ci/run installs a JRE)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.cgroups = CgroupMode::Disabled;
    let (engine, _events, _) = Engine::start(cfg).await.unwrap();
    let _cleanup = Cleanup(engine.clone());
    let mut jvm = app("jvm", "/usr/bin/java", &["-Xmx64m", "-version"]);
    jvm.ram = Some(ByteSize(512 << 20));
    engine.launch(rid("jvm1"), 1, jvm).await.unwrap();
    assert!(
        eventually(|| engine.status()[0].phase.is_terminal()).await,
        "the JVM never ended"
    );
    let st = engine.status()[0].clone();
    assert_eq!(st.limits.ram, LimitEnforcement::Rlimit);
    assert_eq!(
        st.last_exit,
        Some(Termination::Code(0)),
        "{:?}",
        engine.logs(&rid("jvm1"))
    );
}

/// The file `file` of the cgroup `pid` is in, in the hierarchy that has it (v2: the unified
/// one; v1: the one of its controller), if that cgroup is the replica's own.
fn cgroup_file(pid: u32, replica: &str, file: &str) -> Option<PathBuf> {
    let mounts =
        parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo"));
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("the replica runs");
    for member in parse_proc_cgroup(&own) {
        for mount in &mounts {
            let same_hierarchy = if member.controllers.is_empty() {
                mount.unified
            } else {
                !mount.unified
                    && member
                        .controllers
                        .iter()
                        .all(|c| mount.controllers.contains(c))
            };
            let Some(rel) = member.path.strip_prefix(mount.root.trim_end_matches('/')) else {
                continue;
            };
            let path = mount
                .mount_point
                .join(rel.trim_start_matches('/'))
                .join(file);
            if same_hierarchy && rel.ends_with(replica) && path.exists() {
                return Some(path);
            }
        }
    }
    None
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// `ram 96mb` and `cpu 0.25` are in the replica's own limit files, as the kernel reads them.
#[tokio::test]
async fn the_limit_files_hold_the_manifest_values() {
    let n = node().await;
    let mut a = sh("held", "exec sleep 30");
    a.ram = Some(ByteSize(96 << 20));
    a.cpu = Some(CpuLimit { millicores: 250 });
    let replica = "limits-files-1";
    let pid = n
        .engine
        .launch(rid(replica), 1, a)
        .await
        .unwrap()
        .pid
        .unwrap();
    let st = n.engine.status()[0].clone();
    let file = |name: &str| {
        cgroup_file(pid, replica, name).unwrap_or_else(|| panic!("no {name} for {replica}"))
    };
    match st.limits.ram {
        LimitEnforcement::CgroupV2 => assert_eq!(read(&file("memory.max")), "100663296"),
        LimitEnforcement::CgroupV1 => {
            assert_eq!(read(&file("memory.limit_in_bytes")), "100663296");
        }
        LimitEnforcement::Rlimit => {
            let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
            let data = limits
                .lines()
                .find(|l| l.starts_with("Max data size"))
                .unwrap();
            assert!(data.contains("100663296"), "{data}");
        }
        LimitEnforcement::None => panic!("ram is always enforceable (rlimit at worst)"),
    }
    match st.limits.cpu {
        LimitEnforcement::CgroupV2 => assert_eq!(read(&file("cpu.max")), "25000 100000"),
        LimitEnforcement::CgroupV1 => {
            assert_eq!(read(&file("cpu.cfs_quota_us")), "25000");
            assert_eq!(read(&file("cpu.cfs_period_us")), "100000");
        }
        other => eprintln!("cpu not enforced here ({other:?}): no cpu controller to read"),
    }
    bounded(n.engine.kill(&rid(replica))).await;
}

/// A replica that spins is held to its quota: the kernel throttles its cgroup (`cpu.stat`
/// counts throttled periods and time), whatever the wall clock says.
#[tokio::test]
async fn a_spinning_replica_is_throttled_to_its_quota() {
    let n = node().await;
    let mut a = sh("spin", "while :; do :; done");
    a.cpu = Some(CpuLimit { millicores: 100 });
    let replica = "limits-spin-1";
    let pid = n
        .engine
        .launch(rid(replica), 1, a)
        .await
        .unwrap()
        .pid
        .unwrap();
    let st = n.engine.status()[0].clone();
    assert!(
        matches!(
            st.limits.cpu,
            LimitEnforcement::CgroupV1 | LimitEnforcement::CgroupV2
        ),
        "this test needs a writable cpu cgroup (v1 or v2), as root: {:?}",
        st.limits
    );
    let stat = cgroup_file(pid, replica, "cpu.stat").unwrap();
    let field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let throttled = eventually(|| {
        let text = std::fs::read_to_string(&stat).unwrap();
        // v1 counts time in ns (`throttled_time`), v2 in µs (`throttled_usec`)
        let time = field(&text, "throttled_time ").max(field(&text, "throttled_usec "));
        field(&text, "nr_throttled ") > 0 && time > 0
    })
    .await;
    assert!(throttled, "{}", read(&stat));
    bounded(n.engine.kill(&rid(replica))).await;
}

/// A replica that grows past its `ram` is killed by the kernel, and that is what the node
/// reports: `oom-killed`, not a bare SIGKILL.
#[tokio::test]
async fn a_replica_over_its_ram_is_reported_oom_killed() {
    let n = node().await;
    // awk doubles a string until the memory cgroup's limit stops it
    let mut a = sh("hog", "exec awk 'BEGIN { s = \"x\"; while (1) s = s s }'");
    a.ram = Some(ByteSize(32 << 20));
    let replica = rid("limits-oom-1");
    n.engine.launch(replica.clone(), 1, a).await.unwrap();
    let st = n.engine.status()[0].clone();
    assert!(
        matches!(
            st.limits.ram,
            LimitEnforcement::CgroupV1 | LimitEnforcement::CgroupV2
        ),
        "this test needs a writable memory cgroup (v1 or v2), as root: {:?}",
        st.limits
    );
    assert!(
        eventually(|| n.engine.status()[0].phase.is_terminal()).await,
        "the hog was never stopped"
    );
    let st = n.engine.status()[0].clone();
    assert_eq!(
        (st.phase, st.last_exit),
        (Phase::Failed, Some(Termination::OomKilled)),
        "{:?}",
        n.engine.logs(&replica)
    );
    let logs = n.engine.logs(&replica).unwrap();
    assert!(logs.iter().any(|l| l.contains("oom-killed")), "{logs:?}");
}
