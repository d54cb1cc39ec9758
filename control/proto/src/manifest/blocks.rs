//! The sub-blocks of an app: `health`, `scale`, `rollout`, `env`/`secret`, `volume`, `build`,
//! `serve`, `vm` and `route`. Each reader takes the block's statement, reports what is wrong and returns
//! the typed value with defaults applied (or `None` when it has errors).
//!
//! Owns the rules inside one block (required keys, `timeout < interval`, `min ≤ max`,
//! `cpu-below < cpu-above`, env key names); rules across blocks live in `parser`.

use std::collections::HashMap;

use super::error::ManifestErrorKind;
use super::model::{
    Build, ByteSize, DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_RETRIES, DEFAULT_HEALTH_TIMEOUT,
    DEFAULT_SCALE_COOLDOWN, Health, HealthCheck, Hypervisor, Percent, RolloutPolicy, Scale, Serve,
    Vm, Volume,
};
use super::syntax::{Stmt, Word};
use super::values::{BLOCK_KEYS, Checker, Context, Seen, Shape};
use super::{limits, units};
use crate::name::ServiceName;
use crate::route::{self, RateLimit, RouteHost, RouteOptions, RouteSpec, ServiceRoute};

/// A health block and where its check is (for "`check tcp` needs a port").
#[derive(Debug)]
pub(super) struct ParsedHealth {
    pub health: Health,
    pub check_at: (u32, u32),
}

/// One `KEY value` of an `env` or `secret` block.
#[derive(Debug)]
pub(super) struct Var {
    pub key: String,
    pub value: String,
    pub line: u32,
    pub col: u32,
}

/// The valid entries of an `env` or `secret` block, in file order, keys unique.
#[derive(Debug, Default)]
pub(super) struct Vars {
    pub entries: Vec<Var>,
}

fn keys_of(block: &str) -> &'static [&'static str] {
    BLOCK_KEYS
        .iter()
        .find(|(name, _)| *name == block)
        .map_or(&[], |&(_, keys)| keys)
}

/// The statements of block `stmt`; `None` (reported) when values stand where a block belongs.
fn body<'s>(stmt: &'s Stmt, c: &mut Checker<'_>) -> Option<&'s [Stmt]> {
    if let Some(found) = stmt.values.first() {
        let kind = ManifestErrorKind::ExpectedBlock {
            key: stmt.key.text.clone(),
            found: found.text.clone(),
        };
        c.at(found, kind);
        return None;
    }
    Some(stmt.block.as_ref().map_or(&[], |b| b.stmts.as_slice()))
}

/// Calls `read` for each known, non-duplicate, unbroken statement of a fixed-key block.
/// Keys in `repeatable` may appear several times.
fn each<'s>(
    stmts: &'s [Stmt],
    block: &'static str,
    repeatable: &[&str],
    c: &mut Checker<'_>,
    seen: &mut Seen,
    mut read: impl FnMut(&'static str, &'s Stmt, &mut Checker<'_>),
) {
    let keys = keys_of(block);
    for stmt in stmts {
        let Some(&slot) = keys.iter().find(|k| **k == stmt.key.text) else {
            c.unknown_key(&stmt.key, Context::Block(block, keys));
            continue;
        };
        if (repeatable.contains(&slot) || c.once(seen, slot, stmt)) && !stmt.broken {
            read(slot, stmt, c);
        }
    }
}

/// Whether block `stmt` contains a statement with this key (whatever its value).
pub(super) fn has_key(stmt: &Stmt, key: &str) -> bool {
    stmt.block
        .as_ref()
        .is_some_and(|b| b.stmts.iter().any(|s| s.key.text == key))
}

fn missing(stmt: &Stmt, c: &mut Checker<'_>, needs: &str) {
    let kind = ManifestErrorKind::MissingRequired {
        block: stmt.key.text.clone(),
        needs: needs.to_owned(),
    };
    c.at(&stmt.key, kind);
}

/// `check GET /path STATUS` or `check tcp` (also the values of a one-line `health`).
fn check(key: &str, values: &[Word], at: &Word, c: &mut Checker<'_>) -> Option<HealthCheck> {
    let expected = "`GET /path STATUS` or `tcp`";
    match values {
        [] => {
            c.at(
                at,
                ManifestErrorKind::MissingValue {
                    key: key.to_owned(),
                    expected: expected.to_owned(),
                },
            );
            None
        }
        [tcp] if tcp.text.eq_ignore_ascii_case("tcp") => Some(HealthCheck::Tcp),
        [method, path, status] => {
            let before = c.count();
            if !method.text.eq_ignore_ascii_case("GET") {
                c.invalid(key, method, "`GET` or `tcp` (health checks only use GET)");
            }
            if !path.text.starts_with('/') {
                c.invalid(key, path, "a path starting with `/`, like `/healthz`");
            }
            let status = c.number_word("status", status, limits::HTTP_STATUS);
            let status = u16::try_from(status?).ok()?;
            (c.count() == before).then(|| HealthCheck::Http {
                path: path.text.clone(),
                status,
            })
        }
        [first, ..] => {
            let all: Vec<&str> = values.iter().map(|w| w.text.as_str()).collect();
            let kind = ManifestErrorKind::InvalidValue {
                key: key.to_owned(),
                value: all.join(" "),
                expected: expected.to_owned(),
            };
            c.at(first, kind);
            None
        }
    }
}

/// `health { check …; interval; timeout; retries }` or `health GET /path 200` / `health tcp`.
pub(super) fn health(stmt: &Stmt, c: &mut Checker<'_>) -> Option<ParsedHealth> {
    let before = c.count();
    let mut seen = Seen::default();
    let mut parsed_check = None;
    let (mut interval, mut timeout, mut retries) = (None, None, None);
    let mut interval_word = None;
    let mut timeout_word = None;
    if !stmt.values.is_empty() {
        if let Some(block) = &stmt.block {
            c.error(block.line, block.col, ManifestErrorKind::CheckAndBlock);
            return None;
        }
        let at = stmt.values.first().unwrap_or(&stmt.key);
        parsed_check =
            check(&stmt.key.text, &stmt.values, at, c).map(|chk| (chk, (at.line, at.col)));
        // A one-liner counts as having its check, even if the check was invalid.
        let _ = c.once(&mut seen, "check", stmt);
    } else {
        let stmts = stmt.block.as_ref().map_or(&[][..], |b| b.stmts.as_slice());
        each(
            stmts,
            "health",
            &[],
            c,
            &mut seen,
            |slot, s, c| match slot {
                "check" => {
                    let at = s.values.first().unwrap_or(&s.key);
                    parsed_check = check(&s.key.text, &s.values, &s.key, c)
                        .map(|chk| (chk, (at.line, at.col)));
                }
                "interval" => {
                    interval = c.duration(s, limits::HEALTH_INTERVAL_MS);
                    interval_word = s.values.first();
                }
                "timeout" => {
                    timeout = c.duration(s, limits::HEALTH_TIMEOUT_MS);
                    timeout_word = s.values.first();
                }
                _ => retries = c.number_u32(s, limits::HEALTH_RETRIES),
            },
        );
        if !seen.has("check") {
            missing(
                stmt,
                c,
                "a `check`, like `check GET /healthz 200` or `check tcp`",
            );
        }
    }
    let interval_given = seen.has("interval");
    let timeout_given = seen.has("timeout");
    let interval_v = interval.unwrap_or(DEFAULT_HEALTH_INTERVAL);
    // Without an explicit timeout, a fast interval gets a proportionally short one.
    let timeout_v = timeout.unwrap_or_else(|| DEFAULT_HEALTH_TIMEOUT.min(interval_v / 2));
    let both_valid =
        (interval.is_some() || !interval_given) && (timeout.is_some() || !timeout_given);
    if both_valid && timeout_v >= interval_v {
        let kind = ManifestErrorKind::TimeoutNotBelowInterval {
            timeout: units::format_duration(timeout_v),
            interval: units::format_duration(interval_v),
            default_timeout: !timeout_given,
        };
        match timeout_word.or(interval_word) {
            Some(w) => c.at(w, kind),
            None => c.at(&stmt.key, kind),
        }
    }
    let (check, check_at) = parsed_check?;
    (c.count() == before).then(|| ParsedHealth {
        health: Health {
            check,
            interval: interval_v,
            timeout: timeout_v,
            retries: retries.unwrap_or(DEFAULT_HEALTH_RETRIES),
        },
        check_at,
    })
}

/// `scale { min; max; cpu-above; cpu-below; cooldown }`.
pub(super) fn scale(stmt: &Stmt, c: &mut Checker<'_>) -> Option<Scale> {
    let stmts = body(stmt, c)?;
    let before = c.count();
    let mut seen = Seen::default();
    let (mut min, mut max, mut above, mut below, mut cooldown) = (None, None, None, None, None);
    let (mut max_word, mut above_word, mut below_word) = (None, None, None);
    each(stmts, "scale", &[], c, &mut seen, |slot, s, c| match slot {
        "min" => min = c.number_u32(s, limits::SCALE_MIN),
        "max" => {
            max = c.number_u32(s, limits::SCALE_MAX);
            max_word = s.values.first();
        }
        "cpu-above" => {
            above = c.percent(s);
            above_word = s.values.first();
        }
        "cpu-below" => {
            below = c.percent(s);
            below_word = s.values.first();
        }
        _ => cooldown = c.duration(s, limits::COOLDOWN_MS),
    });
    match (seen.has("min"), seen.has("max")) {
        (false, false) => missing(stmt, c, "`min` and `max`"),
        (false, true) => missing(stmt, c, "`min`"),
        (true, false) => missing(stmt, c, "`max`"),
        (true, true) => {}
    }
    if let (Some(min), Some(max), Some(w)) = (min, max, max_word)
        && max < min
    {
        c.at(w, ManifestErrorKind::MaxBelowMin { min, max });
    }
    let above_ok = above.or((!seen.has("cpu-above")).then_some(limits::DEFAULT_CPU_ABOVE));
    let below_ok = below.or((!seen.has("cpu-below")).then_some(limits::DEFAULT_CPU_BELOW));
    if let (Some(above), Some(below)) = (above_ok, below_ok)
        && below >= above
    {
        let kind = ManifestErrorKind::CpuBelowNotBelowAbove { below, above };
        match below_word.or(above_word) {
            Some(w) => c.at(w, kind),
            None => c.at(&stmt.key, kind),
        }
    }
    if c.count() > before {
        return None;
    }
    Some(Scale {
        min: min?,
        max: max?,
        cpu_above: Percent(above_ok?),
        cpu_below: Percent(below_ok?),
        cooldown: cooldown.unwrap_or(DEFAULT_SCALE_COOLDOWN),
    })
}

/// `rollout { settle; healthy-deadline; auto-revert }`.
pub(super) fn rollout(stmt: &Stmt, c: &mut Checker<'_>) -> Option<RolloutPolicy> {
    let stmts = body(stmt, c)?;
    let mut policy = RolloutPolicy::default();
    let before = c.count();
    each(
        stmts,
        "rollout",
        &[],
        c,
        &mut Seen::default(),
        |slot, s, c| match slot {
            "settle" => policy.settle = c.duration(s, limits::SETTLE_MS).unwrap_or_default(),
            "healthy-deadline" => {
                policy.healthy_deadline = c
                    .duration(s, limits::HEALTHY_DEADLINE_MS)
                    .unwrap_or_default();
            }
            "canary" => policy.canary = c.number_u32(s, limits::CANARY).unwrap_or_default(),
            _ => {
                let choices = [
                    ("true", true),
                    ("on", true),
                    ("false", false),
                    ("off", false),
                ];
                policy.auto_revert = c
                    .keyword(s, &choices, "`true`, `false`, `on` or `off`")
                    .unwrap_or_default();
            }
        },
    );
    (c.count() == before).then_some(policy)
}

/// Whether `key` is a valid environment variable name.
pub(super) fn is_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reports `key` (at `word`) if it is not a valid, non-reserved variable name for `block`.
fn check_env_key(key: &str, word: &Word, block: &str, c: &mut Checker<'_>) -> bool {
    let kind = if !is_env_key(key) {
        ManifestErrorKind::InvalidEnvKey {
            key: key.to_owned(),
            block: block.to_owned(),
        }
    } else if limits::RESERVED_ENV.contains(&key) {
        ManifestErrorKind::ReservedEnvKey {
            key: key.to_owned(),
            block: block.to_owned(),
        }
    } else {
        return true;
    };
    c.at(word, kind);
    false
}

/// `env { KEY value }` or `secret { KEY value }` (also `KEY=value`). Never puts a value in an
/// error message.
pub(super) fn vars(stmt: &Stmt, c: &mut Checker<'_>) -> Vars {
    let mut vars = Vars::default();
    let Some(stmts) = body(stmt, c) else {
        return vars;
    };
    let block = stmt.key.text.as_str();
    let mut first_lines: HashMap<String, u32> = HashMap::new();
    for s in stmts {
        if s.broken || !c.no_block(s) {
            continue;
        }
        let shape = Shape::Text("a value, like `KEY value` or `KEY=value`");
        let (key, value) = match s.key.text.split_once('=') {
            Some((key, value)) => {
                if let Some(extra) = s.values.first() {
                    let hint = "quote the value if it contains spaces";
                    let kind = ManifestErrorKind::TooManyValues {
                        key: key.to_owned(),
                        found: s.values.len() + 1,
                        hint,
                    };
                    c.at(extra, kind);
                    continue;
                }
                (key, value)
            }
            None => match c.single(s, &shape) {
                Some(word) => (s.key.text.as_str(), word.text.as_str()),
                None => continue,
            },
        };
        if !check_env_key(key, &s.key, block, c) {
            continue;
        }
        if let Some(&first_line) = first_lines.get(key) {
            let kind = ManifestErrorKind::DuplicateVar {
                key: key.to_owned(),
                block: block.to_owned(),
                first_line,
            };
            c.at(&s.key, kind);
            continue;
        }
        first_lines.insert(key.to_owned(), s.key.line);
        vars.entries.push(Var {
            key: key.to_owned(),
            value: value.to_owned(),
            line: s.key.line,
            col: s.key.col,
        });
    }
    vars
}

/// Reports every key set in both `env` and `secret`, at its later occurrence.
pub(super) fn env_and_secret(env: &Vars, secrets: &Vars, c: &mut Checker<'_>) {
    for e in &env.entries {
        if let Some(s) = secrets.entries.iter().find(|s| s.key == e.key) {
            let (later, other_line) = if (e.line, e.col) >= (s.line, s.col) {
                (e, s.line)
            } else {
                (s, e.line)
            };
            let kind = ManifestErrorKind::EnvAndSecret {
                key: later.key.clone(),
                other_line,
            };
            c.error(later.line, later.col, kind);
        }
    }
}

/// `volume { path DIR; env KEY }`.
pub(super) fn volume(stmt: &Stmt, c: &mut Checker<'_>) -> Option<Volume> {
    let stmts = body(stmt, c)?;
    let before = c.count();
    let mut seen = Seen::default();
    let (mut path, mut env) = (None, None);
    each(
        stmts,
        "volume",
        &[],
        c,
        &mut seen,
        |slot, s, c| match slot {
            "path" => path = c.abs_path(s),
            _ => {
                if let Some(word) = c.single(s, &Shape::Text("a variable name, like `DATA_DIR`"))
                    && check_env_key(&word.text, word, "volume", c)
                {
                    env = Some(word.text.clone());
                }
            }
        },
    );
    if !seen.has("path") {
        missing(stmt, c, "a `path`, like `path /var/lib/app`");
    }
    (c.count() == before).then_some(Volume { path: path?, env })
}

/// `build { run CMD…; out PATH }`; also where `out` is, even when the block has errors.
pub(super) fn build(stmt: &Stmt, c: &mut Checker<'_>) -> (Option<Build>, Option<(u32, u32)>) {
    let Some(stmts) = body(stmt, c) else {
        return (None, None);
    };
    let out_at = stmts
        .iter()
        .find(|s| s.key.text == "out")
        .map(|s| (s.key.line, s.key.col));
    let before = c.count();
    let mut seen = Seen::default();
    let mut build = Build {
        run: Vec::new(),
        out: None,
    };
    each(
        stmts,
        "build",
        &["run"],
        c,
        &mut seen,
        |slot, s, c| match slot {
            "run" => {
                if !c.no_block(s) {
                    return;
                }
                let command: Vec<&str> = s.values.iter().map(|w| w.text.as_str()).collect();
                let command = command.join(" ");
                match s.values.first() {
                    None => {
                        let expected =
                            "a shell command, like `run cargo build --release`".to_owned();
                        c.at(
                            &s.key,
                            ManifestErrorKind::MissingValue {
                                key: "run".into(),
                                expected,
                            },
                        );
                    }
                    Some(w) if command.is_empty() => {
                        c.at(w, ManifestErrorKind::EmptyValue { key: "run".into() })
                    }
                    Some(_) => build.run.push(command),
                }
            }
            _ => build.out = c.text(s, "the path of the built binary, like `target/release/api`"),
        },
    );
    if !seen.has("out") && !stmts.iter().any(|s| s.key.text == "run") {
        missing(stmt, c, "`run` or `out`");
    }
    ((c.count() == before).then_some(build), out_at)
}

/// `serve { static DIR; port N; spa; cache DURATION }`.
pub(super) fn serve(stmt: &Stmt, c: &mut Checker<'_>) -> Option<Serve> {
    let stmts = body(stmt, c)?;
    let before = c.count();
    let mut seen = Seen::default();
    let (mut static_dir, mut port, mut spa, mut cache) = (None, None, false, None);
    each(stmts, "serve", &[], c, &mut seen, |slot, s, c| match slot {
        "static" => static_dir = c.text(s, "the directory to serve, like `./public`"),
        "spa" => spa = c.flag(s),
        "cache" => cache = c.duration(s, limits::CACHE_MS),
        _ => {
            port = c
                .number(s, limits::PORT)
                .and_then(|p| u16::try_from(p).ok())
        }
    });
    if !seen.has("static") {
        missing(stmt, c, "`static DIR`");
    }
    (c.count() == before).then_some(Serve {
        static_dir: static_dir?,
        port,
        spa,
        cache,
    })
}

/// `vm { hypervisor; kernel; rootfs; vcpus; memory; net; args }`.
pub(super) fn vm(stmt: &Stmt, c: &mut Checker<'_>) -> Option<Vm> {
    let stmts = body(stmt, c)?;
    let before = c.count();
    let mut seen = Seen::default();
    let mut hypervisor = None;
    let (mut kernel, mut initrd, mut rootfs, mut net) = (None, None, None, None);
    let mut vcpus = limits::DEFAULT_VCPUS;
    let mut memory = ByteSize(limits::DEFAULT_VM_MEMORY);
    let mut args = Vec::new();
    each(stmts, "vm", &[], c, &mut seen, |slot, s, c| match slot {
        "hypervisor" => {
            let choices = [
                ("qemu", Hypervisor::Qemu),
                ("firecracker", Hypervisor::Firecracker),
            ];
            hypervisor = c.keyword(s, &choices, "`qemu` or `firecracker`");
        }
        "kernel" => {
            kernel = c.text(
                s,
                "the path of the kernel image, like `/var/lib/vms/vmlinux`",
            )
        }
        "rootfs" => rootfs = c.text(s, "the path of the root filesystem image"),
        "initrd" => initrd = c.text(s, "the path of an initramfs, like `/var/lib/vms/initrd.gz`"),
        "vcpus" => vcpus = c.number_u32(s, limits::VCPUS).unwrap_or(vcpus),
        "memory" => memory = c.size(s, limits::VM_MEMORY).unwrap_or(memory),
        "net" => net = c.text(s, "a network (tap device or bridge), like `tap0`"),
        _ => {
            if c.no_block(s) {
                args = s.values.iter().map(|w| w.text.clone()).collect();
            }
        }
    });
    if !seen.has("hypervisor") {
        missing(stmt, c, "`hypervisor` (`qemu` or `firecracker`)");
    }
    if !seen.has("kernel") {
        missing(stmt, c, "`kernel PATH`");
    }
    if c.count() > before {
        return None;
    }
    Some(Vm {
        hypervisor: hypervisor?,
        kernel: kernel?,
        initrd,
        rootfs,
        vcpus,
        memory,
        net,
        args,
    })
}

/// Where a `route` statement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RouteIn {
    /// In an app: the app is the service, so the route names none.
    App,
    /// In a routes file: the route names its service, after the target or as `service` in its
    /// block.
    File,
}

/// A `route` statement read: the route and, in a routes file, its service.
#[derive(Debug)]
pub(super) struct ParsedRoute {
    pub spec: RouteSpec,
    pub service: Option<ServiceName>,
}

/// `route [HOST]/PREFIX [SERVICE] [{ service; strip-prefix; max-body; timeout; rate;
/// https-only }]`: SERVICE and `service` only in a routes file, where one of them is required.
pub(super) fn route(stmt: &Stmt, within: RouteIn, c: &mut Checker<'_>) -> Option<ParsedRoute> {
    let before = c.count();
    let (target_word, line_service) = match (stmt.values.as_slice(), within) {
        ([], _) => {
            let expected = match within {
                RouteIn::App => "`[HOST]/PREFIX`, like `api.example.com/api` or `/`",
                RouteIn::File => {
                    "`[HOST]/PREFIX` and its service, like `route api.example.com/api api-service`"
                }
            };
            let kind = ManifestErrorKind::MissingValue {
                key: "route".into(),
                expected: expected.to_owned(),
            };
            c.at(&stmt.key, kind);
            return None;
        }
        ([target], _) => (target, None),
        ([target, service], RouteIn::File) => (target, Some(service)),
        ([_, extra, ..], RouteIn::App) => {
            let hint = "an app's route names no service (the app is the service); options go in a block, like `route /api { strip-prefix }`";
            too_many(stmt, extra, hint, c);
            return None;
        }
        ([_, _, extra, ..], RouteIn::File) => {
            let hint = "a route takes its target and its service; options go in a block, like `route /api api { strip-prefix }`";
            too_many(stmt, extra, hint, c);
            return None;
        }
    };
    let target = target(target_word, c);
    let mut service = line_service.and_then(|w| service_name(w, c));
    let mut options = RouteOptions::default();
    if let Some(block) = &stmt.block {
        let mut seen = Seen::default();
        each(
            &block.stmts,
            "route",
            &[],
            c,
            &mut seen,
            |slot, s, c| match slot {
                "service" if within == RouteIn::App => {
                    c.at(&s.key, ManifestErrorKind::ServiceInAppRoute);
                }
                "service" if line_service.is_some() => {
                    let kind = ManifestErrorKind::RouteServiceTwice {
                        target: target_word.text.clone(),
                    };
                    c.at(&s.key, kind);
                }
                "service" => {
                    let what = "a service name, like `service api`";
                    if let Some(word) = c.single(s, &Shape::Text(what)) {
                        service = service_name(word, c);
                    }
                }
                "strip-prefix" => options.strip_prefix = c.flag(s),
                "https-only" => options.https_only = c.flag(s),
                "max-body" => options.max_body = c.size(s, route::MAX_BODY_BYTES).map(|b| b.0),
                "timeout" => options.timeout = c.duration(s, route::TIMEOUT_MS),
                _ => options.rate = rate(s, c),
            },
        );
    }
    if within == RouteIn::File && service.is_none() && c.count() == before {
        let kind = ManifestErrorKind::RouteWithoutService {
            target: target_word.text.clone(),
        };
        c.at(target_word, kind);
    }
    let (host, prefix) = target?;
    (c.count() == before).then_some(ParsedRoute {
        spec: RouteSpec {
            host,
            prefix,
            options,
        },
        service,
    })
}

/// The first format of a routes file, kept: `/PREFIX SERVICE` or `/PREFIX:SERVICE` on a line
/// of its own (`stmt.key` is the prefix).
pub(super) fn bare_route(stmt: &Stmt, c: &mut Checker<'_>) -> Option<ServiceRoute> {
    if !c.no_block(stmt) {
        return None;
    }
    let (target_word, service_word) = match stmt.values.as_slice() {
        [] => {
            let Some((prefix, service)) = stmt.key.text.rsplit_once(':') else {
                let kind = ManifestErrorKind::RouteWithoutService {
                    target: stmt.key.text.clone(),
                };
                c.at(&stmt.key, kind);
                return None;
            };
            let chars = u32::try_from(prefix.chars().count()).unwrap_or(u32::MAX);
            let service = Word {
                text: service.to_owned(),
                col: stmt.key.col.saturating_add(chars).saturating_add(1),
                ..stmt.key.clone()
            };
            let prefix = Word {
                text: prefix.to_owned(),
                ..stmt.key.clone()
            };
            (prefix, service)
        }
        [service] => (stmt.key.clone(), service.clone()),
        [_, extra, ..] => {
            let hint = "the first routes-file format is `/PREFIX SERVICE`; options need `route /PREFIX SERVICE { … }`";
            too_many(stmt, extra, hint, c);
            return None;
        }
    };
    let target = target(&target_word, c);
    let service = service_name(&service_word, c)?;
    let (host, prefix) = target?;
    Some(ServiceRoute {
        route: RouteSpec::new(host, prefix),
        service,
    })
}

fn too_many(stmt: &Stmt, extra: &Word, hint: &'static str, c: &mut Checker<'_>) {
    let kind = ManifestErrorKind::TooManyValues {
        key: stmt.key.text.clone(),
        found: stmt.values.len(),
        hint,
    };
    c.at(extra, kind);
}

/// `[HOST]/PREFIX` (reported when invalid).
fn target(word: &Word, c: &mut Checker<'_>) -> Option<(Option<RouteHost>, String)> {
    match route::parse_target(&word.text) {
        Ok(target) => Some(target),
        Err(problem) => {
            let kind = ManifestErrorKind::InvalidRoute {
                value: word.text.clone(),
                problem,
            };
            c.at(word, kind);
            None
        }
    }
}

/// A service name (reported when invalid).
fn service_name(word: &Word, c: &mut Checker<'_>) -> Option<ServiceName> {
    match ServiceName::new(word.text.clone()) {
        Ok(name) => Some(name),
        Err(err) => {
            c.at(word, ManifestErrorKind::InvalidServiceName(err));
            None
        }
    }
}

/// `rate N/s` or `rate N/s burst M` (the burst defaults to N).
fn rate(stmt: &Stmt, c: &mut Checker<'_>) -> Option<RateLimit> {
    let expected = "`N/s` or `N/s burst M`, like `rate 100/s burst 200`";
    if !c.no_block(stmt) {
        return None;
    }
    let (per_word, burst_word) = match stmt.values.as_slice() {
        [] => {
            let kind = ManifestErrorKind::MissingValue {
                key: "rate".into(),
                expected: expected.to_owned(),
            };
            c.at(&stmt.key, kind);
            return None;
        }
        [per] => (per, None),
        [per, burst, m] if burst.text == "burst" => (per, Some(m)),
        [_, burst] if burst.text == "burst" => {
            let kind = ManifestErrorKind::MissingValue {
                key: "burst".into(),
                expected: "a whole number of requests, like `burst 200`".to_owned(),
            };
            c.at(burst, kind);
            return None;
        }
        [_, burst, _, word, ..] if burst.text == "burst" => {
            c.invalid("rate", word, expected);
            return None;
        }
        [_, word, ..] => {
            c.invalid("rate", word, expected);
            return None;
        }
    };
    let Some(number) = per_word.text.strip_suffix("/s") else {
        c.invalid("rate", per_word, expected);
        return None;
    };
    let number = Word {
        text: number.to_owned(),
        ..per_word.clone()
    };
    let per_second = c.number_word("rate", &number, route::RATE_PER_SECOND);
    let burst = burst_word.map(|w| c.number_word("burst", w, route::BURST));
    let per_second = u32::try_from(per_second?).ok()?;
    let burst = match burst {
        Some(b) => u32::try_from(b?).ok()?,
        None => per_second,
    };
    Some(RateLimit { per_second, burst })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_key_names() {
        for ok in ["A", "_", "a_1", "PATH", "_X9"] {
            assert!(is_env_key(ok), "{ok}");
        }
        for bad in ["", "1X", "A-B", "A B", "É", "A=B"] {
            assert!(!is_env_key(bad), "{bad}");
        }
    }
}
