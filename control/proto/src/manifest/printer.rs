//! [`Manifest`] → normalised `.skr8tr` text: every field explicit (defaults written out), fixed
//! key order, brace blocks, 2-space indentation, values quoted only when they must be.
//!
//! Invariant: `parse(print(m)) == m` for every manifest the parser can produce (text values
//! never contain a line break; durations are whole milliseconds). With `redact_secrets`, no
//! secret value appears in the output.

use super::model::{App, HealthCheck, Manifest, PortSpec};
use super::units::{format_cores, format_duration, format_size};
use crate::route::RouteSpec;

/// How [`super::print()`] writes a manifest.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrintOptions {
    /// Write every secret value as `<redacted>`.
    pub redact_secrets: bool,
}

/// See [`super::print`].
pub(super) fn print(manifest: &Manifest, options: &PrintOptions) -> String {
    let mut out = Out {
        text: String::new(),
        depth: 0,
    };
    for (i, app) in manifest.apps.iter().enumerate() {
        if i > 0 {
            out.text.push('\n');
        }
        print_app(&mut out, app, options);
    }
    out.text
}

/// Whether `value` must be quoted to read back as one word with the same text.
pub(super) fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '#' | '{' | '}' | ';' | '\\'))
}

/// `value` as one word: bare when possible, else double-quoted with `\"` and `\\` escaped.
pub(super) fn quote(value: &str) -> String {
    if !needs_quotes(value) {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// A `run` command: bare words when it reads back the same, else one quoted string.
fn command(cmd: &str) -> String {
    if cmd.split(' ').all(|w| !needs_quotes(w)) {
        cmd.to_owned()
    } else {
        quote(cmd)
    }
}

struct Out {
    text: String,
    depth: usize,
}

impl Out {
    /// Writes `key` and its already-quoted values on one line.
    fn line(&mut self, key: &str, values: &[&str]) {
        for _ in 0..self.depth {
            self.text.push_str("  ");
        }
        self.text.push_str(key);
        for v in values {
            self.text.push(' ');
            self.text.push_str(v);
        }
        self.text.push('\n');
    }

    /// Writes `key value` with the value quoted as needed.
    fn kv(&mut self, key: &str, value: &str) {
        self.line(key, &[&quote(value)]);
    }

    fn open(&mut self, header: &str) {
        self.line(header, &["{"]);
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.line("}", &[]);
    }
}

fn print_app(out: &mut Out, app: &App, options: &PrintOptions) {
    out.open(&format!("app {}", app.name));
    out.line("type", &[app.kind.keyword()]);
    if let Some(exec) = &app.exec {
        out.kv("exec", exec);
    }
    if !app.args.is_empty() {
        let args: Vec<String> = app.args.iter().map(|a| quote(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        out.line("args", &args);
    }
    match app.port {
        Some(PortSpec::Fixed(port)) => out.line("port", &[&port.to_string()]),
        Some(PortSpec::Auto) => out.line("port", &["auto"]),
        None => {}
    }
    out.line("replicas", &[&app.replicas.to_string()]);
    if let Some(ram) = app.ram {
        out.line("ram", &[&format_size(ram.0)]);
    }
    if let Some(cpu) = app.cpu {
        out.line("cpu", &[&format_cores(cpu.millicores)]);
    }
    if let Some(gpu) = app.gpu {
        out.line("gpu", &[&gpu.to_string()]);
    }
    out.line("restart", &[app.restart.keyword()]);
    out.line("drain", &[&format_duration(app.drain)]);
    if let Some(schedule) = &app.schedule {
        out.line("schedule", &[&quote(&schedule.cron)]);
        out.line("timezone", &[&quote(&schedule.timezone)]);
    }
    if let Some(health) = &app.health {
        out.open("health");
        match &health.check {
            HealthCheck::Http { path, status } => {
                out.line("check", &["GET", &quote(path), &status.to_string()])
            }
            HealthCheck::Tcp => out.line("check", &["tcp"]),
        }
        out.line("interval", &[&format_duration(health.interval)]);
        out.line("timeout", &[&format_duration(health.timeout)]);
        out.line("retries", &[&health.retries.to_string()]);
        out.close();
    }
    if let Some(scale) = &app.scale {
        out.open("scale");
        out.line("min", &[&scale.min.to_string()]);
        out.line("max", &[&scale.max.to_string()]);
        out.line("cpu-above", &[&format!("{}%", scale.cpu_above.0)]);
        out.line("cpu-below", &[&format!("{}%", scale.cpu_below.0)]);
        out.line("cooldown", &[&format_duration(scale.cooldown)]);
        out.close();
    }
    out.open("rollout");
    out.line("settle", &[&format_duration(app.rollout.settle)]);
    out.line(
        "healthy-deadline",
        &[&format_duration(app.rollout.healthy_deadline)],
    );
    out.line(
        "auto-revert",
        &[if app.rollout.auto_revert {
            "true"
        } else {
            "false"
        }],
    );
    // Only when set, so that manifests without it print as they always did.
    if app.rollout.canary > 0 {
        out.line("canary", &[&app.rollout.canary.to_string()]);
    }
    out.close();
    if !app.env.is_empty() {
        out.open("env");
        for var in &app.env {
            out.kv(&var.key, &var.value);
        }
        out.close();
    }
    if !app.secrets.is_empty() {
        out.open("secret");
        for var in &app.secrets {
            if options.redact_secrets {
                out.line(&var.key, &["<redacted>"]);
            } else {
                out.kv(&var.key, var.value.expose());
            }
        }
        out.close();
    }
    for volume in &app.volumes {
        out.open("volume");
        out.kv("path", &volume.path);
        if let Some(env) = &volume.env {
            out.kv("env", env);
        }
        out.close();
    }
    if let Some(build) = &app.build {
        out.open("build");
        for cmd in &build.run {
            out.line("run", &[&command(cmd)]);
        }
        if let Some(path) = &build.out {
            out.kv("out", path);
        }
        out.close();
    }
    if let Some(serve) = &app.serve {
        out.open("serve");
        out.kv("static", &serve.static_dir);
        if let Some(port) = serve.port {
            out.line("port", &[&port.to_string()]);
        }
        if serve.spa {
            out.line("spa", &[]);
        }
        if let Some(cache) = serve.cache {
            out.line("cache", &[&format_duration(cache)]);
        }
        out.close();
    }
    if let Some(vm) = &app.vm {
        out.open("vm");
        out.line("hypervisor", &[vm.hypervisor.keyword()]);
        out.kv("kernel", &vm.kernel);
        if let Some(initrd) = &vm.initrd {
            out.kv("initrd", initrd);
        }
        if let Some(rootfs) = &vm.rootfs {
            out.kv("rootfs", rootfs);
        }
        out.line("vcpus", &[&vm.vcpus.to_string()]);
        out.line("memory", &[&format_size(vm.memory.0)]);
        if let Some(net) = &vm.net {
            out.kv("net", net);
        }
        if !vm.args.is_empty() {
            let args: Vec<String> = vm.args.iter().map(|a| quote(a)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            out.line("args", &args);
        }
        out.close();
    }
    for route in &app.routes {
        print_route(out, route);
    }
    out.close();
}

/// `route TARGET` when every option is the default, else a block with every option given.
fn print_route(out: &mut Out, route: &RouteSpec) {
    let target = quote(&route.target());
    let o = &route.options;
    if o.is_default() {
        out.line("route", &[&target]);
        return;
    }
    out.open(&format!("route {target}"));
    if o.strip_prefix {
        out.line("strip-prefix", &[]);
    }
    if let Some(bytes) = o.max_body {
        out.line("max-body", &[&format_size(bytes)]);
    }
    if let Some(timeout) = o.timeout {
        out.line("timeout", &[&format_duration(timeout)]);
    }
    if let Some(rate) = o.rate {
        let per = format!("{}/s", rate.per_second);
        out.line("rate", &[&per, "burst", &rate.burst.to_string()]);
    }
    if o.https_only {
        out.line("https-only", &[]);
    }
    out.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_only_when_needed() {
        assert_eq!(quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(quote("--port=8080"), "--port=8080");
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote("a b"), r#""a b""#);
        assert_eq!(quote("a\tb"), "\"a\tb\"");
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote(r"C:\dir"), r#""C:\\dir""#);
        assert_eq!(quote("--color=#fff"), r##""--color=#fff""##);
        assert_eq!(quote("it's"), r#""it's""#);
        for special in ["{", "}", ";"] {
            assert_eq!(quote(special), format!("\"{special}\""));
        }
    }

    #[test]
    fn run_commands_stay_readable() {
        assert_eq!(command("cargo build --release"), "cargo build --release");
        assert_eq!(command("make && make install"), "make && make install");
        assert_eq!(command("a  b"), r#""a  b""#);
        assert_eq!(command("echo 'x'"), r#""echo 'x'""#);
        assert_eq!(command(" a"), r#"" a""#);
    }
}
