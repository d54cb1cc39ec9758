//! Launching: exit status and reaping, environment, descriptors, launch errors, idempotency,
//! ports, jobs, build steps, volumes, serve/wasm/vm program lookup.

use std::os::unix::fs::PermissionsExt;

use skr8tr_node::{KillOutcome, LaunchError, Phase, SpawnError, Termination};
use skr8tr_proto::manifest::{
    Build, EnvVar, PortSpec, SecretValue, SecretVar, Serve, Volume, WorkloadKind,
};

use crate::util::*;

#[tokio::test]
async fn true_exits_zero_and_is_reaped() {
    let n = node().await;
    let l = n
        .engine
        .launch(rid("t1"), 1, app("t", "/bin/true", &[]))
        .await
        .unwrap();
    let pid = l.pid.unwrap();
    assert!(!l.already_running);
    let seen = n
        .events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    assert_eq!(
        seen,
        Seen::Exited {
            replica: "t1".into(),
            termination: Termination::Code(0),
            restarting: false
        }
    );
    assert!(eventually(|| reaped(pid)).await, "no zombie left");
    let st = &n.engine.status()[0];
    assert_eq!(
        (st.phase, st.last_exit, st.pid),
        (Phase::Exited, Some(Termination::Code(0)), None)
    );
}

#[tokio::test]
async fn false_under_never_fails_with_its_exit_code() {
    let n = node().await;
    let pid = n
        .engine
        .launch(rid("f1"), 1, app("f", "/bin/false", &[]))
        .await
        .unwrap()
        .pid
        .unwrap();
    n.events
        .wait_for(|s| {
            matches!(
                s,
                Seen::Exited {
                    termination: Termination::Code(1),
                    ..
                }
            )
        })
        .await;
    assert!(eventually(|| reaped(pid)).await);
    assert!(eventually(|| n.engine.status()[0].phase == Phase::Failed).await);
}

#[tokio::test]
async fn environment_has_port_app_replica_env_and_secrets_only() {
    let n = node().await;
    let mut a = app("envy", "/usr/bin/env", &[]);
    a.port = Some(PortSpec::Auto);
    a.env = vec![EnvVar {
        key: "MODE".into(),
        value: "prod value".into(),
    }];
    a.secrets = vec![SecretVar {
        key: "TOKEN".into(),
        value: SecretValue::new("s3cr3t"),
    }];
    let port = n
        .engine
        .launch(rid("envy.g3.r1"), 3, a)
        .await
        .unwrap()
        .port
        .unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    let lines = n.engine.logs(&rid("envy.g3.r1")).unwrap();
    for want in [
        format!("PORT={port}"),
        "SKR8TR_APP=envy".into(),
        "SKR8TR_REPLICA=envy.g3.r1".into(),
        "SKR8TR_GENERATION=3".into(),
        "MODE=prod value".into(),
        "TOKEN=s3cr3t".into(),
    ] {
        assert!(lines.contains(&want), "{want} missing from {lines:?}");
    }
    // The agent's own environment (cargo sets these for the test binary) stays out.
    assert!(!lines.iter().any(|l| l.starts_with("CARGO_")), "{lines:?}");
}

/// Clears `FD_CLOEXEC` on a descriptor, as a careless library might.
#[allow(unsafe_code)]
fn make_inheritable(fd: std::os::fd::RawFd) {
    // SAFETY: fcntl on a descriptor this test owns; F_SETFD takes an integer flag word.
    let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    assert_eq!(rc, 0);
}

#[tokio::test]
async fn no_agent_descriptor_leaks_into_the_child() {
    use std::os::fd::AsRawFd;
    let n = node().await;
    let sentinel = std::fs::File::create(n.dir.path().join("leak-sentinel")).unwrap();
    make_inheritable(sentinel.as_raw_fd());
    let a = app("fds", "/bin/ls", &["-l", "/proc/self/fd/"]);
    n.engine.launch(rid("fds1"), 1, a).await.unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    let lines = n.engine.logs(&rid("fds1")).unwrap();
    let fds: Vec<(u32, String)> = lines
        .iter()
        .filter_map(|l| {
            let (left, target) = l.split_once(" -> ")?;
            Some((left.rsplit(' ').next()?.parse().ok()?, target.to_owned()))
        })
        .collect();
    assert!(fds.len() >= 3, "{lines:?}");
    for (fd, target) in &fds {
        match fd {
            0 => assert_eq!(target, "/dev/null"),
            1 | 2 => assert!(target.ends_with("logs/fds1.log"), "{target}"),
            // ls's own handle on the directory it lists.
            _ => assert!(
                target.starts_with("/proc/") && target.ends_with("/fd"),
                "leaked fd {fd} -> {target}"
            ),
        }
    }
    drop(sentinel);
}

#[tokio::test]
async fn missing_and_non_executable_programs_are_launch_errors() {
    let n = node().await;
    let script = n.dir.path().join("plain.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cases = [
        ("m1", "/nonexistent/bin", false),
        ("m2", "no-such-command-xyz", false),
        ("m3", script.to_str().unwrap(), true),
        ("m4", "/tmp", true),
    ];
    for (id, program, exists) in cases {
        let err = n
            .engine
            .launch(rid(id), 1, app("m", program, &[]))
            .await
            .unwrap_err();
        let LaunchError::Spawn { source, .. } = &err else {
            panic!("{program}: {err:?}");
        };
        if exists {
            assert!(
                matches!(source, SpawnError::NotExecutable { .. }),
                "{program}: {err:?}"
            );
        } else {
            assert!(
                matches!(source, SpawnError::NotFound { .. }),
                "{program}: {err:?}"
            );
        }
    }

    // The failure is visible in status and logs, and nothing was started.
    let st = n.engine.status();
    assert!(
        st.iter()
            .all(|s| s.phase == Phase::Failed && s.pid.is_none())
    );
    assert!(
        n.engine
            .logs(&rid("m3"))
            .unwrap()
            .iter()
            .any(|l| l.contains("launch failed"))
    );
    assert_eq!(n.events.count(|s| matches!(s, Seen::Started { .. })), 0);
}

#[tokio::test]
async fn launch_and_kill_are_idempotent() {
    let n = node().await;
    let a = app("idem", "/bin/sleep", &["30"]);
    let first = n.engine.launch(rid("i1"), 1, a.clone()).await.unwrap();
    let again = n.engine.launch(rid("i1"), 1, a).await.unwrap();
    assert!(again.already_running);
    assert_eq!(again.pid, first.pid);
    n.events
        .wait_for(|s| matches!(s, Seen::Started { .. }))
        .await;
    assert_eq!(n.events.count(|s| matches!(s, Seen::Started { .. })), 1);
    assert_eq!(
        bounded(n.engine.kill(&rid("i1"))).await,
        KillOutcome::Stopped
    );
    assert_eq!(n.engine.kill(&rid("i1")).await, KillOutcome::AlreadyEnded);
    assert_eq!(n.engine.kill(&rid("nope")).await, KillOutcome::NotFound);
    assert!(eventually(|| reaped(first.pid.unwrap())).await);
}

#[tokio::test]
async fn ports_auto_are_distinct_and_fixed_ports_conflict() {
    let n = node().await;
    let mut a = app("p", "/bin/sleep", &["30"]);
    a.port = Some(PortSpec::Auto);
    let mut ports = Vec::new();
    for i in 0..3 {
        ports.push(
            n.engine
                .launch(rid(&format!("p{i}")), 1, a.clone())
                .await
                .unwrap()
                .port
                .unwrap(),
        );
    }
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    a.port = Some(PortSpec::Fixed(ports[0]));
    let err = n.engine.launch(rid("p9"), 1, a).await.unwrap_err();
    assert!(matches!(err, LaunchError::Port { .. }), "{err:?}");
    bounded(n.engine.shutdown()).await;
}

#[tokio::test]
async fn a_job_reports_its_exit_code() {
    let n = node().await;
    let mut a = sh("job", "exit 3");
    a.kind = WorkloadKind::Job;
    n.engine.launch(rid("job1"), 1, a.clone()).await.unwrap();
    n.events
        .wait_for(|s| {
            matches!(
                s,
                Seen::Exited {
                    termination: Termination::Code(3),
                    restarting: false,
                    ..
                }
            )
        })
        .await;
    a.args = vec!["-c".into(), "exit 0".into()];
    a.restart = a.kind.default_restart();
    n.engine.launch(rid("job2"), 1, a).await.unwrap();
    n.events
        .wait_for(|s| s.replica() == "job2" && matches!(s, Seen::Exited { .. }))
        .await;
    let st = n.engine.status();
    let job2 = st.iter().find(|s| s.replica.as_str() == "job2").unwrap();
    assert_eq!(
        (job2.phase, job2.last_exit),
        (Phase::Exited, Some(Termination::Code(0)))
    );
}

#[tokio::test]
async fn build_runs_before_exec_and_its_failure_is_a_launch_error() {
    let n = node().await;
    let out = n.dir.path().join("built.sh");
    let out_s = out.to_str().unwrap().to_owned();
    let mut a = app("b", "unused", &[]);
    a.exec = None;
    a.build = Some(Build {
        run: vec![
            "echo building".into(),
            format!("printf '#!/bin/sh\\necho built-ok\\n' > {out_s} && chmod +x {out_s}"),
        ],
        out: Some(out_s),
    });
    n.engine.launch(rid("b1"), 1, a.clone()).await.unwrap();
    n.events
        .wait_for(|s| {
            matches!(
                s,
                Seen::Exited {
                    termination: Termination::Code(0),
                    ..
                }
            )
        })
        .await;
    let lines = n.engine.logs(&rid("b1")).unwrap();
    let building = lines.iter().position(|l| l == "building").unwrap();
    let built = lines.iter().position(|l| l == "built-ok").unwrap();
    assert!(building < built, "{lines:?}");

    a.build = Some(Build {
        run: vec!["echo oops; exit 7".into()],
        out: Some("/nonexistent".into()),
    });
    let err = n.engine.launch(rid("b2"), 1, a).await.unwrap_err();
    assert!(
        matches!(
            err,
            LaunchError::Spawn {
                source: SpawnError::BuildFailed {
                    step: 1,
                    termination: Termination::Code(7),
                    ..
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        n.engine
            .logs(&rid("b2"))
            .unwrap()
            .contains(&"oops".to_owned())
    );
}

#[tokio::test]
async fn volumes_are_created_and_passed() {
    let n = node().await;
    let mut a = sh(
        "vol",
        "echo \"data=$DATA\"; test -d \"$DATA\" && echo is-dir",
    );
    a.volumes = vec![Volume {
        path: "data/v1".into(),
        env: Some("DATA".into()),
    }];
    n.engine.launch(rid("v1"), 1, a).await.unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    let dir = n.dir.path().join("volumes/data/v1");
    let lines = n.engine.logs(&rid("v1")).unwrap();
    assert!(
        lines.contains(&format!("data={}", dir.display())),
        "{lines:?}"
    );
    assert!(lines.contains(&"is-dir".to_owned()), "{lines:?}");
}

#[tokio::test]
async fn serve_wasm_and_vm_find_their_programs_on_path() {
    let n = node().await;
    let bin = n.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("skr8tr_serve");
    std::fs::write(&fake, "#!/bin/sh\necho \"serve $*\"\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = EnvVar {
        key: "PATH".into(),
        value: format!("{}:/usr/bin:/bin", bin.display()),
    };

    let mut a = app("www", "unused", &[]);
    a.exec = None;
    a.env = vec![path.clone()];
    a.serve = Some(Serve {
        static_dir: "/srv/www".into(),
        port: None,
        spa: false,
        cache: None,
    });
    a.port = Some(PortSpec::Auto);
    let port = n
        .engine
        .launch(rid("www1"), 1, a)
        .await
        .unwrap()
        .port
        .unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    let want = format!("serve --dir /srv/www --port {port}");
    assert!(n.engine.logs(&rid("www1")).unwrap().contains(&want));

    let mut w = app("wasm", "/srv/app.wasm", &[]);
    w.kind = WorkloadKind::Wasm;
    w.env = vec![path];
    let err = n.engine.launch(rid("wasm1"), 1, w).await.unwrap_err();
    assert!(
        matches!(
            err,
            LaunchError::Spawn {
                source: SpawnError::NoWasmRuntime,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_second_launch_during_build_is_refused_and_a_kill_cancels_it() {
    let n = node().await;
    let mut a = app("slow", "/bin/sleep", &["30"]);
    a.build = Some(Build {
        run: vec!["sleep 0.5".into()],
        out: None,
    });
    let first = tokio::spawn({
        let engine = n.engine.clone();
        let a = a.clone();
        async move { engine.launch(rid("slow1"), 1, a).await }
    });
    assert!(
        eventually(|| {
            n.engine.logs(&rid("slow1")).is_none()
                && std::fs::metadata(n.dir.path().join("logs/slow1.log")).is_ok()
        })
        .await
    );
    let err = n.engine.launch(rid("slow1"), 1, a).await.unwrap_err();
    assert!(matches!(err, LaunchError::InProgress { .. }), "{err:?}");
    assert_eq!(n.engine.kill(&rid("slow1")).await, KillOutcome::Cancelled);
    let err = bounded(first).await.unwrap().unwrap_err();
    assert!(matches!(err, LaunchError::Cancelled { .. }), "{err:?}");
    assert_eq!(n.engine.status()[0].phase, Phase::Exited);
    assert!(n.engine.status()[0].pid.is_none());
}

/// `qemu-img` on PATH; `None` (saying so) when the test should skip, unless
/// `SKR8TR_REQUIRE_EXTERNAL` is set (as in CI), when it fails.
fn qemu_img(test: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("qemu-img"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("SKR8TR_REQUIRE_EXTERNAL").is_none(),
            "{test}: qemu-img is needed (apt-get install qemu-utils)"
        );
        eprintln!("skipped {test}: qemu-img is needed (apt-get install qemu-utils)");
    }
    found
}

#[tokio::test]
async fn a_vm_disk_format_is_detected_and_a_backed_image_is_refused() {
    let Some(qemu_img) = qemu_img("a_vm_disk_format_is_detected_and_a_backed_image_is_refused")
    else {
        return;
    };
    let n = node().await;
    let dir = n.dir.path().to_path_buf();
    let create = |args: &[&str]| {
        let out = std::process::Command::new(&qemu_img)
            .arg("create")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let base = dir.join("base.raw");
    let disk = dir.join("disk.qcow2");
    let backed = dir.join("backed.qcow2");
    create(&["-f", "raw", base.to_str().unwrap(), "1M"]);
    create(&["-f", "qcow2", disk.to_str().unwrap(), "1M"]);
    create(&[
        "-f",
        "qcow2",
        "-F",
        "raw",
        "-b",
        base.to_str().unwrap(),
        backed.to_str().unwrap(),
    ]);
    // A stand-in QEMU that prints its command line (the real one is in the bundle's tests).
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("qemu-system-x86_64");
    std::fs::write(&fake, "#!/bin/sh\necho \"qemu $*\"\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = EnvVar {
        key: "PATH".into(),
        value: format!(
            "{}:{}:/usr/bin:/bin",
            bin.display(),
            qemu_img.parent().unwrap().display()
        ),
    };
    let vm = |name: &str, rootfs: &std::path::Path| {
        let mut a = app(name, "unused", &[]);
        a.exec = None;
        a.kind = WorkloadKind::Vm;
        a.env = vec![path.clone()];
        a.vm = Some(skr8tr_proto::manifest::Vm {
            hypervisor: skr8tr_proto::manifest::Hypervisor::Qemu,
            kernel: "/vm/vmlinuz".into(),
            initrd: None,
            rootfs: Some(rootfs.display().to_string()),
            vcpus: 1,
            memory: skr8tr_proto::manifest::ByteSize(128 << 20),
            net: None,
            args: Vec::new(),
        });
        a
    };
    n.engine
        .launch(rid("vm1"), 1, vm("vm", &disk))
        .await
        .unwrap();
    n.events
        .wait_for(|s| matches!(s, Seen::Exited { .. }))
        .await;
    let log = n.engine.logs(&rid("vm1")).unwrap().join("\n");
    assert!(
        log.contains(&format!("file={},format=qcow2,if=virtio", disk.display())),
        "{log}"
    );
    let err = n
        .engine
        .launch(rid("vm2"), 1, vm("vm2", &backed))
        .await
        .unwrap_err();
    let LaunchError::Spawn {
        source: SpawnError::Disk(disk_error),
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        disk_error.to_string().contains("backing file"),
        "{disk_error}"
    );
}
