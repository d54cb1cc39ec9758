//! [`RawManifest`] → [`Manifest`]: groups top-level statements into apps, reads every app key,
//! applies defaults and checks the rules that span several keys.
//!
//! ```text
//! text ─lexer─▶ tokens ─syntax─▶ RawManifest ─parser (+ blocks)─▶ Manifest
//! ```
//! Owns the app level; sub-blocks are read by `blocks`. An app with any error is left out of the
//! result, but its other keys are still checked so every error of the file is reported once,
//! in source order. A key that was present but invalid still counts as present for the
//! cross-key rules, so one mistake never causes a second, misleading error.

use std::collections::HashMap;

use super::blocks::{self, RouteIn, Vars};
use super::error::{ManifestErrorKind, ManifestErrors};
use super::model::{
    App, Build, ByteSize, CpuLimit, DEFAULT_DRAIN, EnvVar, HealthCheck, Manifest, PortSpec,
    RestartPolicy, RolloutPolicy, Scale, Schedule, SecretValue, SecretVar, Serve, Vm, Volume,
    WorkloadKind,
};
use super::syntax::{self, RawManifest, Stmt, Word};
use super::values::{Checker, Context, Seen, Shape};
use super::{lexer, limits, units};
use crate::name::AppName;
use crate::route::RouteSpec;

/// See [`super::parse`].
pub(super) fn parse(file: &str, text: &str) -> Result<Manifest, ManifestErrors> {
    let mut errors = Vec::new();
    let lexed = lexer::lex(text, &mut errors);
    let raw = syntax::build(&lexed, &mut errors);
    let manifest = validate(
        raw,
        &mut Checker {
            errors: &mut errors,
        },
    );
    if errors.is_empty() {
        return Ok(manifest);
    }
    Err(ManifestErrors::of_file(file, errors))
}

/// One `app NAME` statement and the statements of its body.
struct AppSource {
    head: Stmt,
    body: Vec<Stmt>,
    /// The body was a `{ … }` block (so nothing after it belongs to the app).
    braced: bool,
}

fn validate(raw: RawManifest, c: &mut Checker<'_>) -> Manifest {
    let mut sources: Vec<AppSource> = Vec::new();
    for mut stmt in raw.stmts {
        if stmt.key.text == "app" {
            let block = stmt.block.take();
            let braced = block.is_some();
            sources.push(AppSource {
                head: stmt,
                body: block.map(|b| b.stmts).unwrap_or_default(),
                braced,
            });
            continue;
        }
        match sources.last_mut() {
            None => c.at(
                &stmt.key,
                ManifestErrorKind::KeyBeforeApp {
                    key: stmt.key.text.clone(),
                },
            ),
            Some(app) if app.braced => {
                let name = app
                    .head
                    .values
                    .first()
                    .map_or("?", |w| w.text.as_str())
                    .to_owned();
                c.at(
                    &stmt.key,
                    ManifestErrorKind::KeyAfterApp {
                        key: stmt.key.text.clone(),
                        app: name,
                    },
                );
            }
            Some(app) => app.body.push(stmt),
        }
    }
    if sources.is_empty() && c.count() == 0 {
        c.error(1, 1, ManifestErrorKind::NoApp);
    }
    let mut names: HashMap<String, u32> = HashMap::new();
    let apps = sources
        .into_iter()
        .filter_map(|source| app(&source, c, &mut names))
        .collect();
    Manifest { apps }
}

/// The validated name of an app (`None` after reporting why not).
fn app_name(head: &Stmt, c: &mut Checker<'_>, names: &mut HashMap<String, u32>) -> Option<AppName> {
    if head.broken {
        return None;
    }
    let word = match head.values.as_slice() {
        [] => {
            let expected = "a name, like `app api`".to_owned();
            c.at(
                &head.key,
                ManifestErrorKind::MissingValue {
                    key: "app".into(),
                    expected,
                },
            );
            return None;
        }
        [word] => word,
        [_, extra, ..] => {
            let hint = "an app name cannot contain spaces";
            c.at(
                extra,
                ManifestErrorKind::TooManyValues {
                    key: "app".into(),
                    found: head.values.len(),
                    hint,
                },
            );
            return None;
        }
    };
    let name = match AppName::new(word.text.clone()) {
        Ok(name) => name,
        Err(err) => {
            c.at(word, ManifestErrorKind::InvalidName(err));
            return None;
        }
    };
    if let Some(&first_line) = names.get(&word.text) {
        c.at(
            word,
            ManifestErrorKind::DuplicateApp {
                name: word.text.clone(),
                first_line,
            },
        );
        return None;
    }
    names.insert(word.text.clone(), word.line);
    Some(name)
}

/// Everything read from an app's body, before defaults and cross-key rules.
#[derive(Default)]
struct Draft {
    seen: Seen,
    kind: Option<WorkloadKind>,
    kind_word: Option<Word>,
    exec: Option<String>,
    args: Vec<String>,
    port: Option<PortSpec>,
    replicas: Option<u32>,
    ram: Option<ByteSize>,
    cpu: Option<CpuLimit>,
    gpu: Option<u32>,
    restart: Option<RestartPolicy>,
    drain: Option<std::time::Duration>,
    health: Option<blocks::ParsedHealth>,
    scale: Option<Scale>,
    rollout: Option<RolloutPolicy>,
    env: Vars,
    secrets: Vars,
    volumes: Vec<Volume>,
    routes: Vec<RouteSpec>,
    /// Each route target's first line, to report a route given twice.
    route_lines: HashMap<String, u32>,
    build: Option<Build>,
    /// Where a `build { out }` was written, even if the build block has errors.
    build_out_at: Option<(u32, u32)>,
    serve: Option<Serve>,
    serve_has_port: bool,
    vm: Option<Vm>,
    schedule: Option<String>,
    timezone: Option<String>,
}

fn app(source: &AppSource, c: &mut Checker<'_>, names: &mut HashMap<String, u32>) -> Option<App> {
    let before = c.count();
    let name = app_name(&source.head, c, names);
    let label = source.head.values.first().map_or("?", |w| w.text.as_str());
    let mut d = Draft::default();
    for stmt in &source.body {
        app_key(stmt, label, c, &mut d);
    }
    cross_checks(source, label, c, &d);
    if c.count() > before {
        return None;
    }
    let kind = d.kind.unwrap_or(WorkloadKind::Service);
    let env = d
        .env
        .entries
        .into_iter()
        .map(|v| EnvVar {
            key: v.key,
            value: v.value,
        })
        .collect();
    let secrets = d
        .secrets
        .entries
        .into_iter()
        .map(|v| SecretVar {
            key: v.key,
            value: SecretValue::new(v.value),
        })
        .collect();
    Some(App {
        name: name?,
        kind,
        exec: d.exec,
        args: d.args,
        port: d.port,
        replicas: d.replicas.unwrap_or(1),
        ram: d.ram,
        cpu: d.cpu,
        gpu: d.gpu,
        restart: d.restart.unwrap_or(kind.default_restart()),
        drain: d.drain.unwrap_or(DEFAULT_DRAIN),
        health: d.health.map(|h| h.health),
        scale: d.scale,
        rollout: d.rollout.unwrap_or_default(),
        env,
        secrets,
        volumes: d.volumes,
        routes: d.routes,
        build: d.build,
        serve: d.serve,
        vm: d.vm,
        schedule: d.schedule.map(|cron| Schedule {
            cron,
            timezone: d.timezone.unwrap_or_else(|| "UTC".to_owned()),
        }),
    })
}

/// Reads one app-level statement into `d`.
fn app_key(stmt: &Stmt, app: &str, c: &mut Checker<'_>, d: &mut Draft) {
    let slot: &'static str = match stmt.key.text.as_str() {
        "exec" | "bin" => "exec",
        "args" => "args",
        "type" => "type",
        "port" => "port",
        "replicas" => "replicas",
        "ram" => "ram",
        "cpu" | "cpus" => "cpu",
        "gpu" => "gpu",
        "restart" => "restart",
        "drain" => "drain",
        "health" => "health",
        "scale" => "scale",
        "rollout" => "rollout",
        "env" => "env",
        "secret" => "secret",
        "build" => "build",
        "serve" => "serve",
        "vm" => "vm",
        "schedule" => "schedule",
        "timezone" => "timezone",
        "volume" => {
            // Repeatable.
            if !stmt.broken
                && let Some(volume) = blocks::volume(stmt, c)
            {
                d.volumes.push(volume);
            }
            return;
        }
        "route" => {
            // Repeatable; a target at most once per app.
            if !stmt.broken
                && let Some(route) = blocks::route(stmt, RouteIn::App, c).map(|r| r.spec)
            {
                let target = route.target();
                if let Some(&first_line) = d.route_lines.get(&target) {
                    let kind = ManifestErrorKind::DuplicateRoute { target, first_line };
                    c.at(stmt.values.first().unwrap_or(&stmt.key), kind);
                } else {
                    d.route_lines.insert(target, stmt.key.line);
                    d.routes.push(route);
                }
            }
            return;
        }
        _ => {
            c.unknown_key(&stmt.key, Context::App(app));
            return;
        }
    };
    if !c.once(&mut d.seen, slot, stmt) || stmt.broken {
        return;
    }
    match slot {
        "exec" => d.exec = c.text(stmt, "the path of the binary, like `/usr/local/bin/api`"),
        "args" => {
            if c.no_block(stmt) {
                d.args = stmt.values.iter().map(|w| w.text.clone()).collect();
            }
        }
        "type" => {
            let choices = [
                ("process", WorkloadKind::Service),
                ("service", WorkloadKind::Service),
                ("job", WorkloadKind::Job),
                ("wasm", WorkloadKind::Wasm),
                ("vm", WorkloadKind::Vm),
            ];
            d.kind = c.keyword(
                stmt,
                &choices,
                "`process`, `service`, `job`, `wasm` or `vm`",
            );
            d.kind_word = stmt.values.first().cloned();
        }
        "port" => d.port = port(stmt, c),
        "replicas" => d.replicas = c.number_u32(stmt, limits::REPLICAS),
        "ram" => d.ram = c.size(stmt, limits::RAM),
        "cpu" => d.cpu = cpu(stmt, c),
        "gpu" => d.gpu = c.number_u32(stmt, limits::GPU),
        "restart" => {
            let choices = [
                ("always", RestartPolicy::Always),
                ("on-failure", RestartPolicy::OnFailure),
                ("never", RestartPolicy::Never),
            ];
            d.restart = c.keyword(stmt, &choices, "`always`, `on-failure` or `never`");
        }
        "drain" => d.drain = c.duration(stmt, limits::DRAIN_MS),
        "health" => d.health = blocks::health(stmt, c),
        "scale" => d.scale = blocks::scale(stmt, c),
        "rollout" => d.rollout = blocks::rollout(stmt, c),
        "env" => d.env = blocks::vars(stmt, c),
        "secret" => d.secrets = blocks::vars(stmt, c),
        "build" => (d.build, d.build_out_at) = blocks::build(stmt, c),
        "serve" => {
            d.serve_has_port = blocks::has_key(stmt, "port");
            d.serve = blocks::serve(stmt, c);
        }
        "schedule" => {
            let what = "a cron pattern in quotes, like `schedule \"*/5 * * * *\"`";
            d.schedule =
                c.text(stmt, what)
                    .filter(|pattern| match super::model::check_cron(pattern) {
                        Ok(_) => true,
                        Err(problem) => {
                            if let Some(word) = stmt.values.first() {
                                let kind = ManifestErrorKind::InvalidSchedule {
                                    value: pattern.clone(),
                                    problem,
                                };
                                c.at(word, kind);
                            }
                            false
                        }
                    });
        }
        "timezone" => {
            let what = "an IANA time zone, like `UTC` or `Europe/Berlin`";
            d.timezone = c.text(stmt, what).filter(|zone| {
                let known = zone.parse::<chrono_tz::Tz>().is_ok();
                if !known && let Some(word) = stmt.values.first() {
                    let kind = ManifestErrorKind::UnknownTimezone {
                        value: zone.clone(),
                    };
                    c.at(word, kind);
                }
                known
            });
        }
        _ => d.vm = blocks::vm(stmt, c),
    }
}

/// `port N` or `port auto`.
fn port(stmt: &Stmt, c: &mut Checker<'_>) -> Option<PortSpec> {
    let expected = "a port number from 1 to 65535, or `auto`";
    let word = c.single(stmt, &Shape::Keyword(expected))?;
    if word.text == "auto" {
        return Some(PortSpec::Auto);
    }
    if units::parse_number(&word.text).is_err_and(|e| e == units::NumberError::Invalid) {
        c.invalid(&stmt.key.text, word, expected);
        return None;
    }
    let n = c.number_word(&stmt.key.text, word, limits::PORT)?;
    u16::try_from(n).ok().map(PortSpec::Fixed)
}

/// `cpu 0.5`, `cpus 2`.
fn cpu(stmt: &Stmt, c: &mut Checker<'_>) -> Option<CpuLimit> {
    let expected = "a number of cores like `2` or `0.5` (at most 3 decimals)";
    let word = c.single(stmt, &Shape::Keyword(expected))?;
    match units::parse_cores(&word.text) {
        Ok(m) if limits::CPU_MILLICORES.contains(&m) => u32::try_from(m)
            .ok()
            .map(|millicores| CpuLimit { millicores }),
        Ok(_) | Err(units::NumberError::Overflow) => {
            let r = limits::CPU_MILLICORES;
            let (min, max) = (
                units::format_cores(*r.start() as u32),
                units::format_cores(*r.end() as u32),
            );
            c.out_of_range(&stmt.key.text, word, min, max);
            None
        }
        Err(units::NumberError::Invalid) => {
            c.invalid(&stmt.key.text, word, expected);
            None
        }
    }
}

/// The rules that involve several keys of one app.
fn cross_checks(source: &AppSource, app: &str, c: &mut Checker<'_>, d: &Draft) {
    let head = &source.head.key;
    let seen = &d.seen;
    let type_given = seen.has("type");
    // The kind, if known (a `type` with a bad value is already reported).
    let kind = if type_given {
        d.kind
    } else {
        Some(WorkloadKind::Service)
    };
    let has_build_out = d.build_out_at.is_some();
    if !seen.has("exec")
        && !seen.has("serve")
        && !seen.has("vm")
        && !has_build_out
        && kind != Some(WorkloadKind::Vm)
    {
        c.error(
            head.line,
            head.col,
            ManifestErrorKind::NothingToRun {
                app: app.to_owned(),
            },
        );
    }
    if kind == Some(WorkloadKind::Vm) {
        if !seen.has("vm")
            && let Some(word) = &d.kind_word
        {
            c.at(
                word,
                ManifestErrorKind::VmWithoutBlock {
                    app: app.to_owned(),
                },
            );
        }
        for key in ["exec", "serve"] {
            if let Some((line, col)) = seen.get(key) {
                c.error(
                    line,
                    col,
                    ManifestErrorKind::VmConflict {
                        key: key.to_owned(),
                    },
                );
            }
        }
        if let Some((line, col)) = d.build_out_at {
            c.error(
                line,
                col,
                ManifestErrorKind::VmConflict {
                    key: "out".to_owned(),
                },
            );
        }
    } else if let (Some(kind), Some((line, col))) = (kind, seen.get("vm")) {
        c.error(
            line,
            col,
            ManifestErrorKind::VmBlockWithoutType {
                kind: kind.keyword().to_owned(),
            },
        );
    }
    if seen.has("serve") && kind != Some(WorkloadKind::Vm) {
        if let Some((line, col)) = seen.get("exec") {
            c.error(
                line,
                col,
                ManifestErrorKind::ServeConflict {
                    key: "exec".to_owned(),
                },
            );
        }
        if let Some((line, col)) = d.build_out_at {
            c.error(
                line,
                col,
                ManifestErrorKind::ServeConflict {
                    key: "out".to_owned(),
                },
            );
        }
    }
    if let Some((line, col)) = seen.get("schedule")
        && kind != Some(WorkloadKind::Job)
    {
        let kind = ManifestErrorKind::ScheduleNotJob {
            kind: kind.unwrap_or(WorkloadKind::Service).keyword().to_owned(),
        };
        c.error(line, col, kind);
    }
    if let Some((line, col)) = seen.get("timezone")
        && !seen.has("schedule")
    {
        c.error(line, col, ManifestErrorKind::TimezoneWithoutSchedule);
    }
    if let Some(health) = &d.health
        && health.health.check == HealthCheck::Tcp
        && !seen.has("port")
        && !d.serve_has_port
    {
        c.error(
            health.check_at.0,
            health.check_at.1,
            ManifestErrorKind::TcpCheckWithoutPort,
        );
    }
    blocks::env_and_secret(&d.env, &d.secrets, c);
}
