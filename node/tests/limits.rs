//! Resource limits: enforced by whatever the kernel offers here, and reported.

use skr8tr_node::{CgroupMode, Engine, LimitEnforcement};
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
    let mut a = sh("rl", "ulimit -v; exec sleep 30");
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
    assert!(eventually(|| engine.logs(&rid("rl1")).unwrap() == ["524288"]).await);
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
