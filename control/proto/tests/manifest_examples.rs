//! Every manifest in `examples/` parses to exactly the app it is meant to describe, and its
//! normalised form parses back to the same value.

use std::path::Path;
use std::time::Duration;

use skr8tr_proto::manifest::{
    self, App, Build, ByteSize, CpuLimit, EnvVar, Health, HealthCheck, Hypervisor, Manifest,
    Percent, PortSpec, PrintOptions, RestartPolicy, RolloutPolicy, Scale, Schedule, SecretValue,
    SecretVar, Serve, Vm, Volume, WorkloadKind,
};
use skr8tr_proto::name::AppName;

fn example(file: &str) -> Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("the example is readable");
    let m = manifest::parse(file, &text).unwrap_or_else(|e| panic!("{e}"));
    let printed = manifest::print(&m, &PrintOptions::default());
    assert_eq!(
        manifest::parse("printed", &printed).expect("the normalised form parses"),
        m,
        "{printed}"
    );
    m
}

fn app(name: &str) -> App {
    App::with_defaults(AppName::new(name).expect("a valid name"), None)
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn env(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
    pairs
        .iter()
        .map(|(k, v)| EnvVar {
            key: (*k).into(),
            value: (*v).into(),
        })
        .collect()
}

const MB: u64 = 1 << 20;
const GB: u64 = 1 << 30;

#[test]
fn api_server_is_the_seed_manifest() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/api-server.skr8tr"),
    )
    .unwrap();
    assert_eq!(text.lines().count(), 18);
    let want = App {
        exec: Some("/usr/local/bin/myapi".into()),
        args: strings(&["--port", "8080", "--db", "postgres.internal:5432"]),
        port: Some(PortSpec::Fixed(8080)),
        replicas: 3,
        health: Some(Health {
            check: HealthCheck::Http {
                path: "/healthz".into(),
                status: 200,
            },
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            retries: 3,
        }),
        scale: Some(Scale {
            min: 1,
            max: 8,
            cpu_above: Percent(80),
            cpu_below: Percent(20),
            cooldown: Duration::from_secs(30),
        }),
        ..app("api-server")
    };
    assert_eq!(example("api-server.skr8tr").apps, [want]);
}

#[test]
fn nightly_report_is_a_job() {
    let want = App {
        kind: WorkloadKind::Job,
        exec: Some("/opt/reports/bin/nightly-report".into()),
        args: strings(&[
            "--date",
            "yesterday",
            "--out",
            "/var/lib/reports",
            "--format",
            "pdf",
        ]),
        ram: Some(ByteSize(2 * GB)),
        cpu: Some(CpuLimit { millicores: 1500 }),
        restart: RestartPolicy::OnFailure,
        drain: Duration::from_secs(30),
        schedule: Some(Schedule {
            cron: "30 2 * * *".into(),
            timezone: "Europe/Berlin".into(),
        }),
        env: env(&[
            ("REPORT_BUCKET", "s3://acme-reports/daily"),
            ("TZ", "Europe/Berlin"),
            ("REPORT_TITLE", "Daily sales (all regions)"),
        ]),
        volumes: vec![Volume {
            path: "/var/lib/reports".into(),
            env: Some("REPORT_DIR".into()),
        }],
        ..app("nightly-report")
    };
    assert_eq!(example("nightly-report.skr8tr").apps, [want]);
}

#[test]
fn static_site_is_served() {
    let want = App {
        replicas: 2,
        ram: Some(ByteSize(64 * MB)),
        cpu: Some(CpuLimit { millicores: 250 }),
        health: Some(Health {
            check: HealthCheck::Http {
                path: "/index.html".into(),
                status: 200,
            },
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retries: 3,
        }),
        build: Some(Build {
            run: strings(&["mdbook build /srv/docs/src --dest-dir /srv/docs/html"]),
            out: None,
        }),
        serve: Some(Serve {
            static_dir: "/srv/docs/html".into(),
            port: Some(8081),
            spa: false,
            cache: None,
        }),
        ..app("docs")
    };
    let m = example("static-site.skr8tr");
    assert_eq!(m.apps, [want]);
    assert_eq!(m.apps[0].program(), None);
}

#[test]
fn wasm_filter_runs_a_module() {
    let want = App {
        kind: WorkloadKind::Wasm,
        exec: Some("/opt/filters/ratelimit.wasm".into()),
        args: strings(&["--requests-per-second", "200", "--burst", "50"]),
        port: Some(PortSpec::Auto),
        replicas: 4,
        ram: Some(ByteSize(128 * MB)),
        cpu: Some(CpuLimit { millicores: 500 }),
        health: Some(Health {
            check: HealthCheck::Tcp,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retries: 3,
        }),
        rollout: RolloutPolicy {
            settle: Duration::from_secs(3),
            healthy_deadline: Duration::from_secs(30),
            auto_revert: true,
            canary: 0,
        },
        ..app("wasm-filter")
    };
    assert_eq!(example("wasm-filter.skr8tr").apps, [want]);
}

#[test]
fn vm_legacy_boots_qemu() {
    let want = App {
        kind: WorkloadKind::Vm,
        port: Some(PortSpec::Fixed(9000)),
        drain: Duration::from_secs(60),
        health: Some(Health {
            check: HealthCheck::Tcp,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(5),
            retries: 5,
        }),
        rollout: RolloutPolicy {
            settle: Duration::from_secs(8),
            healthy_deadline: Duration::from_secs(600),
            auto_revert: false,
            canary: 0,
        },
        vm: Some(Vm {
            hypervisor: Hypervisor::Qemu,
            kernel: "/var/lib/skr8tr/vms/billing/vmlinuz".into(),
            initrd: None,
            rootfs: Some("/var/lib/skr8tr/vms/billing/rootfs.qcow2".into()),
            vcpus: 4,
            memory: ByteSize(8 * GB),
            net: Some("tap0".into()),
            args: strings(&[
                "-machine",
                "q35",
                "-nographic",
                "-append",
                "console=ttyS0 root=/dev/vda",
            ]),
        }),
        ..app("legacy-billing")
    };
    assert_eq!(example("vm-legacy.skr8tr").apps, [want]);
}

#[test]
fn worker_env_has_two_apps_in_indentation_style() {
    let worker = App {
        args: strings(&["--queue", "emails", "--concurrency", "8"]),
        replicas: 6,
        ram: Some(ByteSize(512 * MB)),
        cpu: Some(CpuLimit { millicores: 2000 }),
        drain: Duration::from_secs(20),
        scale: Some(Scale {
            min: 2,
            max: 20,
            cpu_above: Percent(75),
            cpu_below: Percent(25),
            cooldown: Duration::from_secs(120),
        }),
        rollout: RolloutPolicy {
            settle: Duration::from_secs(15),
            healthy_deadline: Duration::from_secs(120),
            auto_revert: true,
            canary: 0,
        },
        env: env(&[
            ("RUST_LOG", "info,queue_worker=debug"),
            ("QUEUE_URL", "amqp://rabbit.internal:5672/%2f"),
            ("GREETING", "hello, world"),
        ]),
        secrets: vec![
            SecretVar {
                key: "SMTP_PASSWORD".into(),
                value: SecretValue::new("correct horse battery staple"),
            },
            SecretVar {
                key: "SENTRY_DSN".into(),
                value: SecretValue::new("https://abc123@sentry.internal/7"),
            },
        ],
        volumes: vec![Volume {
            path: "/var/lib/queue-worker/spool".into(),
            env: Some("SPOOL_DIR".into()),
        }],
        build: Some(Build {
            run: strings(&[
                "cargo build --release --locked",
                "strip target/release/queue-worker",
            ]),
            out: Some("target/release/queue-worker".into()),
        }),
        ..app("queue-worker")
    };
    let scheduler = App {
        exec: Some("/usr/local/bin/queue-scheduler".into()),
        args: strings(&["--every", "1m", "--queue", "emails"]),
        port: Some(PortSpec::Auto),
        health: Some(Health {
            check: HealthCheck::Http {
                path: "/ready".into(),
                status: 200,
            },
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(500),
            retries: 3,
        }),
        volumes: vec![Volume {
            path: "/var/lib/queue-scheduler".into(),
            env: None,
        }],
        ..app("queue-scheduler")
    };
    let m = example("worker-env.skr8tr");
    assert_eq!(m.apps, [worker, scheduler]);
    assert_eq!(m.apps[0].program(), Some("target/release/queue-worker"));
    let redacted = manifest::print(
        &m,
        &PrintOptions {
            redact_secrets: true,
        },
    );
    assert!(
        !redacted.contains("correct horse") && !redacted.contains("abc123"),
        "{redacted}"
    );
}

#[test]
fn every_example_file_is_covered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".skr8tr"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "api-server.skr8tr",
            "nightly-report.skr8tr",
            "static-site.skr8tr",
            "vm-legacy.skr8tr",
            "wasm-filter.skr8tr",
            "worker-env.skr8tr"
        ]
    );
}
