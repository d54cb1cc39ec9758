//! A serde mirror of [`App`], so the state file can rebuild the exact spec of an adopted
//! replica (to probe it, exec into it, and restart it when it dies).
//!
//! Conversions destructure every struct without `..`, so a field added to the model fails to
//! compile here until the mirror learns it. Durations are stored in milliseconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use skr8tr_proto::manifest::{
    App, Build, ByteSize, CpuLimit, EnvVar, Health, HealthCheck, Hypervisor, Percent, PortSpec,
    RestartPolicy, RolloutPolicy, Scale, SecretValue, SecretVar, Serve, Vm, Volume, WorkloadKind,
};
use skr8tr_proto::name::{AppName, NameError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    name: String,
    kind: String,
    exec: Option<String>,
    args: Vec<String>,
    /// `0` stands for `port auto`.
    port: Option<u16>,
    replicas: u32,
    ram: Option<u64>,
    cpu_millicores: Option<u32>,
    gpu: Option<u32>,
    restart: String,
    drain_ms: u64,
    health: Option<HealthRecord>,
    scale: Option<ScaleRecord>,
    rollout: RolloutRecord,
    env: Vec<(String, String)>,
    /// Kept so a restarted adopted replica gets its secrets; the state file is mode 0600.
    secrets: Vec<(String, String)>,
    volumes: Vec<(String, Option<String>)>,
    build: Option<(Vec<String>, Option<String>)>,
    serve: Option<(String, Option<u16>)>,
    vm: Option<VmRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HealthRecord {
    /// `None` for a TCP check.
    http: Option<(String, u16)>,
    interval_ms: u64,
    timeout_ms: u64,
    retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ScaleRecord {
    min: u32,
    max: u32,
    cpu_above: u8,
    cpu_below: u8,
    cooldown_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RolloutRecord {
    settle_ms: u64,
    healthy_deadline_ms: u64,
    auto_revert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct VmRecord {
    hypervisor: String,
    kernel: String,
    rootfs: Option<String>,
    vcpus: u32,
    memory: u64,
    net: Option<String>,
    args: Vec<String>,
}

/// Why a record does not describe a valid app.
#[derive(Debug, thiserror::Error)]
pub enum AppRecordError {
    #[error("bad app name in state file")]
    Name(#[from] NameError),
    #[error("unknown {what} {value:?} in state file")]
    Unknown { what: &'static str, value: String },
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn dur(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl From<&App> for AppRecord {
    fn from(app: &App) -> Self {
        let App {
            name,
            kind,
            exec,
            args,
            port,
            replicas,
            ram,
            cpu,
            gpu,
            restart,
            drain,
            health,
            scale,
            rollout,
            env,
            secrets,
            volumes,
            build,
            serve,
            vm,
        } = app;
        Self {
            name: name.to_string(),
            kind: kind.keyword().to_owned(),
            exec: exec.clone(),
            args: args.clone(),
            port: port.map(|p| match p {
                PortSpec::Fixed(n) => n,
                PortSpec::Auto => 0,
            }),
            replicas: *replicas,
            ram: ram.map(|r| r.0),
            cpu_millicores: cpu.map(|c| c.millicores),
            gpu: *gpu,
            restart: restart.keyword().to_owned(),
            drain_ms: ms(*drain),
            health: health.as_ref().map(|h| {
                let Health {
                    check,
                    interval,
                    timeout,
                    retries,
                } = h;
                HealthRecord {
                    http: match check {
                        HealthCheck::Http { path, status } => Some((path.clone(), *status)),
                        HealthCheck::Tcp => None,
                    },
                    interval_ms: ms(*interval),
                    timeout_ms: ms(*timeout),
                    retries: *retries,
                }
            }),
            scale: scale.as_ref().map(|s| {
                let Scale {
                    min,
                    max,
                    cpu_above,
                    cpu_below,
                    cooldown,
                } = s;
                ScaleRecord {
                    min: *min,
                    max: *max,
                    cpu_above: cpu_above.0,
                    cpu_below: cpu_below.0,
                    cooldown_ms: ms(*cooldown),
                }
            }),
            rollout: {
                let RolloutPolicy {
                    settle,
                    healthy_deadline,
                    auto_revert,
                } = rollout;
                RolloutRecord {
                    settle_ms: ms(*settle),
                    healthy_deadline_ms: ms(*healthy_deadline),
                    auto_revert: *auto_revert,
                }
            },
            env: env
                .iter()
                .map(|EnvVar { key, value }| (key.clone(), value.clone()))
                .collect(),
            secrets: secrets
                .iter()
                .map(|SecretVar { key, value }| (key.clone(), value.expose().to_owned()))
                .collect(),
            volumes: volumes
                .iter()
                .map(|Volume { path, env }| (path.clone(), env.clone()))
                .collect(),
            build: build
                .as_ref()
                .map(|Build { run, out }| (run.clone(), out.clone())),
            serve: serve
                .as_ref()
                .map(|Serve { static_dir, port }| (static_dir.clone(), *port)),
            vm: vm.as_ref().map(|v| {
                let Vm {
                    hypervisor,
                    kernel,
                    rootfs,
                    vcpus,
                    memory,
                    net,
                    args,
                } = v;
                VmRecord {
                    hypervisor: hypervisor.keyword().to_owned(),
                    kernel: kernel.clone(),
                    rootfs: rootfs.clone(),
                    vcpus: *vcpus,
                    memory: memory.0,
                    net: net.clone(),
                    args: args.clone(),
                }
            }),
        }
    }
}

fn kind_of(s: &str) -> Result<WorkloadKind, AppRecordError> {
    [
        WorkloadKind::Service,
        WorkloadKind::Job,
        WorkloadKind::Wasm,
        WorkloadKind::Vm,
    ]
    .into_iter()
    .find(|k| k.keyword() == s)
    .ok_or_else(|| AppRecordError::Unknown {
        what: "type",
        value: s.to_owned(),
    })
}

fn restart_of(s: &str) -> Result<RestartPolicy, AppRecordError> {
    [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ]
    .into_iter()
    .find(|k| k.keyword() == s)
    .ok_or_else(|| AppRecordError::Unknown {
        what: "restart policy",
        value: s.to_owned(),
    })
}

fn hypervisor_of(s: &str) -> Result<Hypervisor, AppRecordError> {
    [Hypervisor::Qemu, Hypervisor::Firecracker]
        .into_iter()
        .find(|k| k.keyword() == s)
        .ok_or_else(|| AppRecordError::Unknown {
            what: "hypervisor",
            value: s.to_owned(),
        })
}

impl TryFrom<AppRecord> for App {
    type Error = AppRecordError;

    fn try_from(r: AppRecord) -> Result<Self, AppRecordError> {
        Ok(App {
            name: AppName::new(r.name)?,
            kind: kind_of(&r.kind)?,
            exec: r.exec,
            args: r.args,
            port: r.port.map(|p| {
                if p == 0 {
                    PortSpec::Auto
                } else {
                    PortSpec::Fixed(p)
                }
            }),
            replicas: r.replicas,
            ram: r.ram.map(ByteSize),
            cpu: r.cpu_millicores.map(|millicores| CpuLimit { millicores }),
            gpu: r.gpu,
            restart: restart_of(&r.restart)?,
            drain: dur(r.drain_ms),
            health: r.health.map(|h| Health {
                check: match h.http {
                    Some((path, status)) => HealthCheck::Http { path, status },
                    None => HealthCheck::Tcp,
                },
                interval: dur(h.interval_ms),
                timeout: dur(h.timeout_ms),
                retries: h.retries,
            }),
            scale: r.scale.map(|s| Scale {
                min: s.min,
                max: s.max,
                cpu_above: Percent(s.cpu_above),
                cpu_below: Percent(s.cpu_below),
                cooldown: dur(s.cooldown_ms),
            }),
            rollout: RolloutPolicy {
                settle: dur(r.rollout.settle_ms),
                healthy_deadline: dur(r.rollout.healthy_deadline_ms),
                auto_revert: r.rollout.auto_revert,
            },
            env: r
                .env
                .into_iter()
                .map(|(key, value)| EnvVar { key, value })
                .collect(),
            secrets: r
                .secrets
                .into_iter()
                .map(|(key, value)| SecretVar {
                    key,
                    value: SecretValue::new(value),
                })
                .collect(),
            volumes: r
                .volumes
                .into_iter()
                .map(|(path, env)| Volume { path, env })
                .collect(),
            build: r.build.map(|(run, out)| Build { run, out }),
            serve: r.serve.map(|(static_dir, port)| Serve { static_dir, port }),
            vm: r
                .vm
                .map(|v| -> Result<Vm, AppRecordError> {
                    Ok(Vm {
                        hypervisor: hypervisor_of(&v.hypervisor)?,
                        kernel: v.kernel,
                        rootfs: v.rootfs,
                        vcpus: v.vcpus,
                        memory: ByteSize(v.memory),
                        net: v.net,
                        args: v.args,
                    })
                })
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips() {
        let mut app = App::with_defaults(AppName::new("api").unwrap(), Some("/srv/api".into()));
        app.kind = WorkloadKind::Vm;
        app.args = vec!["a b".into()];
        app.port = Some(PortSpec::Auto);
        app.replicas = 3;
        app.ram = Some(ByteSize(1 << 28));
        app.cpu = Some(CpuLimit { millicores: 500 });
        app.gpu = Some(1);
        app.restart = RestartPolicy::OnFailure;
        app.drain = Duration::from_millis(1500);
        app.health = Some(Health {
            check: HealthCheck::Http {
                path: "/h".into(),
                status: 204,
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(300),
            retries: 5,
        });
        app.scale = Some(Scale {
            min: 1,
            max: 4,
            cpu_above: Percent(80),
            cpu_below: Percent(20),
            cooldown: Duration::from_secs(10),
        });
        app.env = vec![EnvVar {
            key: "K".into(),
            value: "v".into(),
        }];
        app.secrets = vec![SecretVar {
            key: "S".into(),
            value: SecretValue::new("x"),
        }];
        app.volumes = vec![Volume {
            path: "/d".into(),
            env: Some("D".into()),
        }];
        app.build = Some(Build {
            run: vec!["make".into()],
            out: Some("out".into()),
        });
        app.serve = Some(Serve {
            static_dir: "/www".into(),
            port: Some(81),
        });
        app.vm = Some(Vm {
            hypervisor: Hypervisor::Firecracker,
            kernel: "/k".into(),
            rootfs: None,
            vcpus: 2,
            memory: ByteSize(1 << 30),
            net: Some("tap0".into()),
            args: vec!["-x".into()],
        });
        let json = serde_json::to_string(&AppRecord::from(&app)).unwrap();
        let back: AppRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(App::try_from(back).unwrap(), app);

        let plain = App::with_defaults(AppName::new("p").unwrap(), None);
        assert_eq!(App::try_from(AppRecord::from(&plain)).unwrap(), plain);
    }

    #[test]
    fn unknown_keywords_are_errors() {
        let app = App::with_defaults(AppName::new("p").unwrap(), None);
        let mut r = AppRecord::from(&app);
        r.kind = "container".into();
        assert!(matches!(
            App::try_from(r),
            Err(AppRecordError::Unknown { what: "type", .. })
        ));
    }
}
