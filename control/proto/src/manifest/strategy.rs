//! Proptest generators of valid manifests: every field in range (see [`super::limits`]), every
//! cross-field rule respected, so that `parse(print(m)) == m` must hold for each value.
//!
//! Other modules of the crate use [`app`] to get realistic `App` values (LAUNCH round trips).
//! Text values never contain a line break: the language is line-based and cannot express one.

use std::ops::RangeInclusive;
use std::time::Duration;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::limits;
use super::*;
use crate::name::AppName;
use crate::route::{self, RateLimit, RouteHost, RouteOptions, RouteSpec};

/// A valid app name.
pub(crate) fn app_name() -> impl Strategy<Value = AppName> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,20}",
        "[A-Za-z0-9._-]{1,63}".prop_filter("`.` and `..` are refused", |s| s != "." && s != ".."),
    ]
    .prop_map(|s| AppName::new(s).expect("generated names are valid"))
}

/// Any text without a line break, possibly empty, biased towards the characters that need
/// quoting or escaping.
pub(crate) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9/._:=,+@%-]{0,16}",
        2 => r#"[ a-z"'#{};\\\t=]{0,10}"#,
        1 => "[^\n]{0,8}",
        1 => Just(String::new()),
        1 => Just("<redacted>".to_owned()),
        1 => Just("--color=#fff".to_owned()),
    ]
}

/// Text that is not empty.
pub(crate) fn nonempty_text() -> impl Strategy<Value = String> {
    text().prop_filter("not empty", |s| !s.is_empty())
}

/// An absolute path (may contain spaces and quotes, never a line break).
pub(crate) fn abs_path() -> impl Strategy<Value = String> {
    text().prop_map(|s| format!("/{s}"))
}

fn range_u32(r: RangeInclusive<u64>) -> impl Strategy<Value = u32> {
    let lo = u32::try_from(*r.start()).unwrap_or(u32::MAX);
    let hi = u32::try_from(*r.end()).unwrap_or(u32::MAX);
    lo..=hi
}

/// A duration of whole milliseconds in `ms`, biased towards whole seconds, minutes and hours.
pub(crate) fn duration(ms: RangeInclusive<u64>) -> impl Strategy<Value = Duration> {
    let (lo, hi) = (*ms.start(), *ms.end());
    let multiple = move |unit: u64| {
        let first = lo.div_ceil(unit);
        let last = hi / unit;
        (first..=last.max(first)).prop_map(move |n| (n * unit).clamp(lo, hi))
    };
    prop_oneof![
        lo..=hi,
        multiple(1_000),
        multiple(60_000),
        multiple(3_600_000)
    ]
    .prop_map(Duration::from_millis)
}

/// A size in bytes in `bytes`, biased towards whole units.
pub(crate) fn size(bytes: RangeInclusive<u64>) -> impl Strategy<Value = ByteSize> {
    let (lo, hi) = (*bytes.start(), *bytes.end());
    let multiple = move |shift: u32| {
        let unit = 1_u64 << shift;
        let first = lo.div_ceil(unit);
        let last = hi / unit;
        (first..=last.max(first)).prop_map(move |n| n.saturating_mul(unit).clamp(lo, hi))
    };
    prop_oneof![
        lo..=hi,
        multiple(10),
        multiple(20),
        multiple(30),
        multiple(40)
    ]
    .prop_map(ByteSize)
}

fn env_key() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,12}"
        .prop_filter("reserved", |k| !limits::RESERVED_ENV.contains(&k.as_str()))
}

fn health(has_port: bool) -> BoxedStrategy<Health> {
    let http = ("/[^\n]{0,12}", range_u32(limits::HTTP_STATUS)).prop_map(|(path, status)| {
        HealthCheck::Http {
            path,
            status: status as u16,
        }
    });
    let check = if has_port {
        prop_oneof![http, Just(HealthCheck::Tcp)].boxed()
    } else {
        http.boxed()
    };
    (
        check,
        duration(limits::HEALTH_INTERVAL_MS),
        range_u32(limits::HEALTH_RETRIES),
    )
        .prop_flat_map(|(check, interval, retries)| {
            let below = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX) - 1;
            let lo = *limits::HEALTH_TIMEOUT_MS.start();
            duration(lo..=below.min(*limits::HEALTH_TIMEOUT_MS.end())).prop_map(move |timeout| {
                Health {
                    check: check.clone(),
                    interval,
                    timeout,
                    retries,
                }
            })
        })
        .boxed()
}

fn scale() -> BoxedStrategy<Scale> {
    (
        range_u32(limits::SCALE_MIN),
        2_u8..=100,
        duration(limits::COOLDOWN_MS),
    )
        .prop_flat_map(|(min, above, cooldown)| {
            (min.max(1)..=super::MAX_REPLICAS, 1..above).prop_map(move |(max, below)| Scale {
                min,
                max,
                cpu_above: Percent(above),
                cpu_below: Percent(below),
                cooldown,
            })
        })
        .boxed()
}

fn rollout() -> BoxedStrategy<RolloutPolicy> {
    (
        duration(limits::SETTLE_MS),
        duration(limits::HEALTHY_DEADLINE_MS),
        any::<bool>(),
        prop_oneof![Just(0u32), 1u32..=10],
    )
        .prop_map(
            |(settle, healthy_deadline, auto_revert, canary)| RolloutPolicy {
                settle,
                healthy_deadline,
                auto_revert,
                canary,
            },
        )
        .boxed()
}

/// `env` and `secret` with unique keys, none in both.
fn vars() -> impl Strategy<Value = (Vec<EnvVar>, Vec<SecretVar>)> {
    vec((env_key(), text(), any::<bool>()), 0..5).prop_map(|entries| {
        let mut seen = std::collections::HashSet::new();
        let (mut env, mut secrets) = (Vec::new(), Vec::new());
        for (key, value, secret) in entries {
            if !seen.insert(key.clone()) {
                continue;
            }
            if secret {
                secrets.push(SecretVar {
                    key,
                    value: SecretValue::new(value),
                });
            } else {
                env.push(EnvVar { key, value });
            }
        }
        (env, secrets)
    })
}

fn volume() -> impl Strategy<Value = Volume> {
    (abs_path(), option::of(env_key())).prop_map(|(path, env)| Volume { path, env })
}

fn build(with_out: bool) -> BoxedStrategy<Build> {
    let runs = vec(nonempty_text(), if with_out { 0..3 } else { 1..3 });
    let out = if with_out {
        nonempty_text().prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    (runs, out)
        .prop_map(|(run, out)| Build { run, out })
        .boxed()
}

fn vm() -> BoxedStrategy<Vm> {
    (
        prop_oneof![Just(Hypervisor::Qemu), Just(Hypervisor::Firecracker)],
        nonempty_text(),
        option::of(nonempty_text()),
        option::of(nonempty_text()),
        range_u32(limits::VCPUS),
        size(limits::VM_MEMORY),
        option::of(nonempty_text()),
        vec(text(), 0..4),
    )
        .prop_map(
            |(hypervisor, kernel, initrd, rootfs, vcpus, memory, net, args)| Vm {
                hypervisor,
                kernel,
                initrd,
                rootfs,
                vcpus,
                memory,
                net,
                args,
            },
        )
        .boxed()
}

/// A valid host name: one to four labels of letters, digits and inner `-`, lower case.
fn host_name() -> impl Strategy<Value = String> {
    vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4).prop_map(|labels| labels.join("."))
}

/// A valid route: any host form, a prefix with the characters a path may hold, any options.
pub(crate) fn route() -> BoxedStrategy<RouteSpec> {
    let host = option::of(prop_oneof![
        host_name().prop_map(RouteHost::Exact),
        host_name().prop_map(RouteHost::Wildcard),
        "\\[(::|fd00::)[0-9a-f]{1,4}\\]".prop_map(RouteHost::Exact),
    ]);
    let rate = option::of(
        (range_u32(route::RATE_PER_SECOND), range_u32(route::BURST))
            .prop_map(|(per_second, burst)| RateLimit { per_second, burst }),
    );
    let options = (
        any::<bool>(),
        option::of(size(route::MAX_BODY_BYTES).prop_map(|b| b.0)),
        option::of(duration(route::TIMEOUT_MS)),
        rate,
        any::<bool>(),
    )
        .prop_map(
            |(strip_prefix, max_body, timeout, rate, https_only)| RouteOptions {
                strip_prefix,
                max_body,
                timeout,
                rate,
                https_only,
            },
        );
    (host, "/[A-Za-z0-9._~!$&'()*+,;=:@%/{}\"-]{0,12}", options)
        .prop_map(|(host, prefix, options)| RouteSpec {
            host,
            prefix,
            options,
        })
        .boxed()
}

/// Up to three routes with distinct targets.
fn routes() -> BoxedStrategy<Vec<RouteSpec>> {
    vec(route(), 0..4)
        .prop_map(|routes| {
            let mut seen = std::collections::HashSet::new();
            routes
                .into_iter()
                .filter(|r| seen.insert(r.target()))
                .collect()
        })
        .boxed()
}

/// What an app runs: exactly one of the shapes the parser accepts.
#[derive(Debug, Clone)]
enum Runs {
    Exec(String, Option<Build>),
    BuildOut(Build),
    Serve(Serve, Option<Build>),
    Vm(Vm, Option<Build>),
}

fn runs() -> BoxedStrategy<(WorkloadKind, Runs)> {
    let kind = prop_oneof![
        Just(WorkloadKind::Service),
        Just(WorkloadKind::Job),
        Just(WorkloadKind::Wasm)
    ];
    let serve = (
        nonempty_text(),
        option::of(range_u32(limits::PORT)),
        any::<bool>(),
        option::of(duration(limits::CACHE_MS)),
    )
        .prop_map(|(static_dir, port, spa, cache)| Serve {
            static_dir,
            port: port.map(|p| p as u16),
            spa,
            cache,
        });
    prop_oneof![
        (
            kind.clone(),
            nonempty_text(),
            option::of(build(false)),
            option::of(build(true))
        )
            .prop_map(|(k, exec, b1, b2)| (k, Runs::Exec(exec, b1.or(b2)))),
        (kind.clone(), build(true)).prop_map(|(k, b)| (k, Runs::BuildOut(b))),
        (kind, serve, option::of(build(false))).prop_map(|(k, s, b)| (k, Runs::Serve(s, b))),
        (vm(), option::of(build(false))).prop_map(|(v, b)| (WorkloadKind::Vm, Runs::Vm(v, b))),
    ]
    .boxed()
}

/// A valid app: every field in range, every cross-field rule respected.
pub(crate) fn app() -> BoxedStrategy<App> {
    let restart = prop_oneof![
        Just(RestartPolicy::Always),
        Just(RestartPolicy::OnFailure),
        Just(RestartPolicy::Never)
    ];
    let port = option::of(prop_oneof![
        range_u32(limits::PORT).prop_map(|p| PortSpec::Fixed(p as u16)),
        Just(PortSpec::Auto)
    ]);
    let resources = (
        range_u32(limits::REPLICAS),
        option::of(size(limits::RAM)),
        option::of(prop_oneof![
            range_u32(limits::CPU_MILLICORES),
            (1_u32..=1024).prop_map(|c| c * 1000),
            (1_u32..=2048).prop_map(|c| c * 500),
        ]),
        option::of(range_u32(limits::GPU)),
        duration(limits::DRAIN_MS),
    );
    (
        app_name(),
        runs(),
        vec(text(), 0..4),
        port,
        resources,
        restart,
        option::of(scale()),
        rollout(),
    )
        .prop_flat_map(
            move |(name, (kind, runs), args, port, resources, restart, scale, rollout)| {
                let has_port =
                    port.is_some() || matches!(&runs, Runs::Serve(s, _) if s.port.is_some());
                (
                    Just((
                        name, kind, runs, args, port, resources, restart, scale, rollout,
                    )),
                    option::of(health(has_port)),
                    vars(),
                    vec(volume(), 0..3),
                    routes(),
                    option::of(schedule()),
                )
            },
        )
        .prop_map(
            |(
                (name, kind, runs, args, port, resources, restart, scale, rollout),
                health,
                (env, secrets),
                volumes,
                routes,
                schedule,
            )| {
                let (replicas, ram, cpu, gpu, drain) = resources;
                let (exec, build, serve, vm) = match runs {
                    Runs::Exec(exec, build) => (Some(exec), build, None, None),
                    Runs::BuildOut(build) => (None, Some(build), None, None),
                    Runs::Serve(serve, build) => (None, build, Some(serve), None),
                    Runs::Vm(vm, build) => (None, build, None, Some(vm)),
                };
                App {
                    name,
                    kind,
                    exec,
                    args,
                    port,
                    replicas,
                    ram,
                    cpu: cpu.map(|millicores| CpuLimit { millicores }),
                    gpu,
                    restart,
                    drain,
                    health,
                    scale,
                    rollout,
                    env,
                    secrets,
                    volumes,
                    routes,
                    build,
                    serve,
                    vm,
                    schedule: schedule.filter(|_| kind == WorkloadKind::Job),
                }
            },
        )
        .boxed()
}

/// A cron schedule: five- and six-field patterns and nicknames, in a few zones.
fn schedule() -> BoxedStrategy<Schedule> {
    (
        prop_oneof![
            Just("*/5 * * * *"),
            Just("0 3 * * MON-FRI"),
            Just("*/2 * * * * *"),
            Just("@daily"),
            Just("15,45 8-18 1 */2 *"),
        ],
        prop_oneof![Just("UTC"), Just("Europe/Paris"), Just("America/New_York")],
    )
        .prop_map(|(cron, timezone)| Schedule {
            cron: cron.to_owned(),
            timezone: timezone.to_owned(),
        })
        .boxed()
}

/// A valid manifest: one to four apps with distinct names.
pub(crate) fn manifest() -> impl Strategy<Value = Manifest> {
    vec(app(), 1..4).prop_map(|apps| {
        let mut seen = std::collections::HashSet::new();
        let apps = apps
            .into_iter()
            .filter(|a| seen.insert(a.name.clone()))
            .collect();
        Manifest { apps }
    })
}
