//! Tests of the whole pipeline (`parse` and `print`): accepted forms and their meaning, error
//! messages and positions, and the properties (round trip, no panic, no secret in redacted
//! output). Per-stage tests sit beside each stage; the fixture table and the examples are in
//! `control/proto/tests/`.

use std::time::Duration;

use proptest::prelude::*;

use super::strategy;
use super::*;
use crate::name::AppName;
use crate::route::{RateLimit, RouteHost, RouteOptions, RouteSpec};

fn ok(text: &str) -> Manifest {
    match parse("t.skr8tr", text) {
        Ok(m) => m,
        Err(e) => panic!("unexpected errors:\n{e}\n--- in ---\n{text}"),
    }
}

fn one(text: &str) -> App {
    let mut m = ok(text);
    assert_eq!(m.apps.len(), 1);
    m.apps.remove(0)
}

/// The errors as `line:col: message`.
fn errs(text: &str) -> Vec<String> {
    match parse("t.skr8tr", text) {
        Ok(m) => panic!("expected errors, parsed {m:?}"),
        Err(e) => e
            .errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.kind))
            .collect(),
    }
}

fn err(text: &str) -> String {
    let all = errs(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap_or_default()
}

fn name(s: &str) -> AppName {
    AppName::new(s).unwrap()
}

fn app(s: &str, exec: &str) -> App {
    App::with_defaults(name(s), Some(exec.to_owned()))
}

#[test]
fn minimal_app_gets_every_default() {
    assert_eq!(one("app a\nexec /bin/a"), app("a", "/bin/a"));
    assert_eq!(one("app a { exec /bin/a }"), app("a", "/bin/a"));
    assert_eq!(one("app a { bin /bin/a }"), app("a", "/bin/a"));
}

#[test]
fn every_app_key() {
    let a = one(
        "app a\n exec /x\n args a 'b c' \"d\\\"e\"\n type job\n port auto\n replicas 0\n ram 512K\n cpus 0.125\n gpu 2\n restart never\n drain 1500ms",
    );
    let mut want = app("a", "/x");
    want.kind = WorkloadKind::Job;
    want.args = vec!["a".into(), "b c".into(), "d\"e".into()];
    want.port = Some(PortSpec::Auto);
    want.replicas = 0;
    want.ram = Some(ByteSize(512 << 10));
    want.cpu = Some(CpuLimit { millicores: 125 });
    want.gpu = Some(2);
    want.restart = RestartPolicy::Never;
    want.drain = Duration::from_millis(1500);
    assert_eq!(a, want);
}

#[test]
fn restart_defaults_follow_the_type_wherever_it_is_written() {
    assert_eq!(
        one("app a\nexec /x\ntype job").restart,
        RestartPolicy::OnFailure
    );
    assert_eq!(
        one("app a\ntype job\nexec /x").restart,
        RestartPolicy::OnFailure
    );
    assert_eq!(
        one("app a\nrestart always\ntype job\nexec /x").restart,
        RestartPolicy::Always
    );
    assert_eq!(
        one("app a\ntype process\nexec /x").kind,
        WorkloadKind::Service
    );
    assert_eq!(
        one("app a\ntype wasm\nexec /x.wasm").restart,
        RestartPolicy::Always
    );
}

#[test]
fn block_styles_are_equivalent() {
    let forms = [
        "app a {\n exec /x\n port 80\n health {\n  check tcp\n  interval 3s\n }\n}",
        "app a\n{\n exec /x\n port 80\n health\n {\n  check tcp\n  interval 3s\n }\n}",
        "app a { exec /x; port 80; health { check tcp; interval 3s } }",
        "app a\nexec /x\nport 80\nhealth\n  check tcp\n  interval 3s",
        "  app a\n    exec /x # comment\n    port 80\n    health\n        check tcp\n        interval 3s\n",
        "# header\n\napp a\r\nexec /x\r\nport 80\r\nhealth { check tcp\r\ninterval 3s }\r\n",
    ];
    let first = one(forms[0]);
    assert_eq!(
        first.health.as_ref().map(|h| h.interval),
        Some(Duration::from_secs(3))
    );
    for form in &forms[1..] {
        assert_eq!(one(form), first, "{form}");
    }
}

#[test]
fn health_one_liners() {
    let h = one("app a\nexec /x\nhealth GET /health 200")
        .health
        .unwrap();
    assert_eq!(
        h.check,
        HealthCheck::Http {
            path: "/health".into(),
            status: 200
        }
    );
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (Duration::from_secs(5), Duration::from_secs(2), 3)
    );
    assert_eq!(
        one("app a\nexec /x\nport 1\nhealth tcp")
            .health
            .unwrap()
            .check,
        HealthCheck::Tcp
    );
    assert_eq!(
        one("app a\nexec /x\nport 1\nhealth TCP")
            .health
            .unwrap()
            .check,
        HealthCheck::Tcp
    );
    assert_eq!(
        one("app a\nexec /x\nhealth get \"/a b\" 503")
            .health
            .unwrap()
            .check,
        HealthCheck::Http {
            path: "/a b".into(),
            status: 503
        }
    );
    // A serve port is a port too.
    assert!(
        one("app a\nserve { static /s; port 80 }\nhealth tcp")
            .health
            .is_some()
    );
}

#[test]
fn scale_and_rollout_defaults() {
    let a = one("app a\nexec /x\nscale { min 0; max 1 }");
    let s = a.scale.unwrap();
    assert_eq!(
        (s.min, s.max, s.cpu_above, s.cpu_below),
        (0, 1, Percent(80), Percent(20))
    );
    assert_eq!(s.cooldown, Duration::from_secs(30));
    assert_eq!(a.rollout, RolloutPolicy::default());
    let r =
        one("app a\nexec /x\nrollout { settle 0s; healthy-deadline 1h; auto-revert off }").rollout;
    assert_eq!(
        r,
        RolloutPolicy {
            settle: Duration::ZERO,
            healthy_deadline: Duration::from_secs(3600),
            auto_revert: false,
            canary: 0,
        }
    );
    let s = one("app a\nexec /x\nscale { min 1; max 2; cpu-above 30%; cpu-below 29 }")
        .scale
        .unwrap();
    assert_eq!((s.cpu_above, s.cpu_below), (Percent(30), Percent(29)));
}

#[test]
fn env_secret_volume_build_serve_vm() {
    let a = one(concat!(
        "app a\n",
        "env { A 1; B=x=y; C= ; D \"two words\"; app v }\n",
        "secret { TOKEN s3cr3t }\n",
        "volume { path /data; env DATA }\n",
        "volume { path \"/with space\" }\n",
        "build { run make   all; run \"cd x && make\"; out bin/a }\n",
    ));
    let env: Vec<(&str, &str)> = a
        .env
        .iter()
        .map(|v| (v.key.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("A", "1"),
            ("B", "x=y"),
            ("C", ""),
            ("D", "two words"),
            ("app", "v")
        ]
    );
    assert_eq!(
        a.secrets,
        [SecretVar {
            key: "TOKEN".into(),
            value: SecretValue::new("s3cr3t")
        }]
    );
    assert_eq!(
        a.volumes,
        [
            Volume {
                path: "/data".into(),
                env: Some("DATA".into())
            },
            Volume {
                path: "/with space".into(),
                env: None
            }
        ]
    );
    assert_eq!(
        a.build,
        Some(Build {
            run: vec!["make all".into(), "cd x && make".into()],
            out: Some("bin/a".into())
        })
    );
    assert_eq!(a.exec, None);
    assert_eq!(a.program(), Some("bin/a"));

    let s = one("app s\nserve\n  static ./public").serve;
    assert_eq!(
        s,
        Some(Serve {
            static_dir: "./public".into(),
            port: None,
            spa: false,
            cache: None
        })
    );

    let v = one("app v\ntype vm\nvm { hypervisor firecracker; kernel /k }")
        .vm
        .unwrap();
    assert_eq!(
        v,
        Vm {
            hypervisor: Hypervisor::Firecracker,
            kernel: "/k".into(),
            initrd: None,
            rootfs: None,
            vcpus: 1,
            memory: ByteSize(512 << 20),
            net: None,
            args: vec![]
        }
    );
}

#[test]
fn several_apps_in_one_file() {
    let m = ok("app a\nexec /a\napp b { exec /b }\napp c\n  exec /c\n");
    let names: Vec<&str> = m.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn unknown_keys_suggest_the_nearest() {
    assert_eq!(
        err("app api\nexec /x\nreplica 3"),
        "3:1: unknown key `replica` in app `api`; did you mean `replicas`?"
    );
    assert_eq!(
        err("app api\nexec /x\nfoo 3"),
        "3:1: unknown key `foo` in app `api`"
    );
    assert_eq!(
        err("app a\nexec /x\nhealth { check tcp; intervl 1s }"),
        "3:21: unknown key `intervl` in the `health` block; did you mean `interval`?"
    );
    assert_eq!(
        err("app a\nexec /x\ninterval 10s"),
        "3:1: `interval` belongs in a `health` block"
    );
    assert_eq!(
        err("app a\nexec /x\ncpu-above 80"),
        "3:1: `cpu-above` belongs in a `scale` block"
    );
    assert_eq!(
        err("app a\nexec /x\nscale { min 1; max 2; retries 3 }"),
        "3:23: `retries` belongs in a `health` block"
    );
    assert_eq!(
        err("app a\nexec /x\nhealth { check tcp; port 80 }"),
        "3:21: `port` belongs at app level, not in the `health` block"
    );
    assert_eq!(
        err("app a { exec /x; app b { exec /y } }"),
        "1:18: `app` cannot appear inside another block"
    );
}

#[test]
fn values_are_checked() {
    let e = |line: &str| err(&format!("app a\nexec /x\n{line}"));
    assert_eq!(
        e("port 0"),
        "3:6: `port` must be between 1 and 65535, found `0`"
    );
    assert_eq!(
        e("port http"),
        "3:6: `port`: expected a port number from 1 to 65535, or `auto`, found `http`"
    );
    assert_eq!(
        e("port 99999999999999999999999"),
        "3:6: `port` must be between 1 and 65535, found `99999999999999999999999`"
    );
    assert_eq!(
        e("replicas -1"),
        "3:10: `replicas`: expected a whole number from 0 to 10000, found `-1`"
    );
    assert_eq!(
        e("ram 16"),
        "3:5: `ram`: invalid size `16`: a size needs a unit: b, kb, mb, gb or tb (like `512mb`)"
    );
    assert_eq!(
        e("ram 0gb"),
        "3:5: `ram` must be between 1b and 1024tb, found `0gb`"
    );
    assert_eq!(
        e("cpu 0"),
        "3:5: `cpu` must be between 0.001 and 1024, found `0`"
    );
    assert_eq!(
        e("cpu 1.2345"),
        "3:5: `cpu`: expected a number of cores like `2` or `0.5` (at most 3 decimals), found `1.2345`"
    );
    assert_eq!(
        e("gpu 65"),
        "3:5: `gpu` must be between 0 and 64, found `65`"
    );
    assert_eq!(
        e("restart sometimes"),
        "3:9: `restart`: expected `always`, `on-failure` or `never`, found `sometimes`"
    );
    assert_eq!(
        e("type daemon"),
        "3:6: `type`: expected `process`, `service`, `job`, `wasm` or `vm`, found `daemon`"
    );
    assert_eq!(
        e("drain 2h"),
        "3:7: `drain` must be between 0s and 1h, found `2h`"
    );
    assert_eq!(
        e("drain 500"),
        "3:7: `drain`: expected a duration with a unit: ms, s, m or h, found `500`"
    );
    assert_eq!(
        e("drain"),
        "3:1: `drain` needs a value: a duration with a unit, like `10s` or `500ms`"
    );
    assert_eq!(
        e("drain 1 s"),
        "3:9: `drain` takes one value, found 2; write the number and its unit together, like `10s`"
    );
    assert_eq!(
        e("replicas 1 2"),
        "3:12: `replicas` takes one value, found 2"
    );
    assert_eq!(e("args { a }"), "3:6: `args` does not take a block");
    assert_eq!(
        e("scale 3"),
        "3:7: `scale` takes a block (`scale { … }`), found `3`"
    );
    assert_eq!(
        e("health GET / 200 { retries 1 }"),
        "3:18: `health` takes either a one-line check like `health GET /healthz 200` or a block, not both"
    );
    assert_eq!(
        e("health GET /"),
        "3:8: `health`: expected `GET /path STATUS` or `tcp`, found `GET /`"
    );
    assert_eq!(
        e("health { check }"),
        "3:10: `check` needs a value: `GET /path STATUS` or `tcp`"
    );
    assert_eq!(
        e("health { check GET x 200 }"),
        "3:20: `check`: expected a path starting with `/`, like `/healthz`, found `x`"
    );
    assert_eq!(
        e("health { check GET / 600 }"),
        "3:22: `status` must be between 100 and 599, found `600`"
    );
    assert_eq!(
        e("health { check tcp }"),
        "3:16: `check tcp` needs the app to have a `port`"
    );
    assert_eq!(
        e("health { check GET / 200; timeout 5s }"),
        "3:35: `timeout` (5s) must be shorter than `interval` (5s)"
    );
    assert_eq!(e("scale { min 1 }"), "3:1: the `scale` block needs `max`");
    assert_eq!(e("scale { max 1 }"), "3:1: the `scale` block needs `min`");
    assert_eq!(
        e("scale { min 1; max 2; cpu-above 10 }"),
        "3:33: `cpu-below` (20%) must be lower than `cpu-above` (10%)"
    );
    assert_eq!(
        e("scale { min 1; max 2; cpu-below 101% }"),
        "3:33: `cpu-below` must be between 1% and 100%, found `101%`"
    );
    assert_eq!(
        e("rollout { auto-revert yes }"),
        "3:23: `auto-revert`: expected `true`, `false`, `on` or `off`, found `yes`"
    );
    assert_eq!(
        e("volume { path data }"),
        "3:15: `path`: expected an absolute path, like `/var/lib/app`, found `data`"
    );
    assert_eq!(
        e("volume { env X }"),
        "3:1: the `volume` block needs a `path`, like `path /var/lib/app`"
    );
    assert_eq!(
        e("volume { path /d; env PORT }"),
        "3:23: `PORT` is set by skr8tr itself and cannot be given in `volume`"
    );
    assert_eq!(
        e("build { }"),
        "3:1: the `build` block needs `run` or `out`"
    );
    assert_eq!(
        e("build { run }"),
        "3:9: `run` needs a value: a shell command, like `run cargo build --release`"
    );
    assert_eq!(e("build { run \"\" }"), "3:13: `run` cannot be empty");
    assert_eq!(
        e("env { A a b }"),
        "3:11: `A` takes one value, found 2; quote the value if it contains spaces"
    );
    assert_eq!(
        e("env { A=a b }"),
        "3:11: `A` takes one value, found 2; quote the value if it contains spaces"
    );
    assert_eq!(
        e("env { A }"),
        "3:7: `A` needs a value: a value, like `KEY value` or `KEY=value`"
    );
    assert_eq!(
        e("secret { SKR8TR_APP x }"),
        "3:10: `SKR8TR_APP` is set by skr8tr itself and cannot be given in `secret`"
    );
}

#[test]
fn exec_needs_exactly_one_nonempty_value() {
    assert_eq!(
        err("app a\nexec /bin/a /bin/b"),
        "2:13: `exec` takes one value, found 2; quote the value if it contains spaces"
    );
    assert_eq!(err("app a\nexec \"\""), "2:6: `exec` cannot be empty");
    assert_eq!(
        err("app a\nexec"),
        "2:1: `exec` needs a value: the path of the binary, like `/usr/local/bin/api`"
    );
}

#[test]
fn cross_key_rules() {
    assert_eq!(
        err("app a\nport 80"),
        "1:1: app `a` has nothing to run: add `exec PATH`, `build { out PATH }`, `serve { static DIR }` or, with `type vm`, a `vm` block"
    );
    assert_eq!(
        err("app a\ntype vm"),
        "2:6: app `a` has `type vm` but no `vm` block"
    );
    assert_eq!(
        err("app a\nvm { hypervisor qemu; kernel /k }"),
        "2:1: a `vm` block needs `type vm` (this app is `service`)"
    );
    assert_eq!(
        err("app a\ntype job\nvm { hypervisor qemu; kernel /k }"),
        "3:1: a `vm` block needs `type vm` (this app is `job`)"
    );
    assert_eq!(
        errs("app a\ntype vm\nexec /x\nvm { hypervisor qemu; kernel /k }\nbuild { out /o }"),
        [
            "3:1: a `type vm` app runs its `vm` block, so it cannot also have `exec`",
            "5:9: a `type vm` app runs its `vm` block, so it cannot also have `out`"
        ]
    );
    assert_eq!(
        err("app a\nexec /x\nserve { static /s }"),
        "2:1: an app with a `serve` block runs skr8tr's static server, so it cannot also have `exec`"
    );
    assert_eq!(
        errs("app a\ntype vm\nvm { vcpus 2 }"),
        [
            "3:1: the `vm` block needs `hypervisor` (`qemu` or `firecracker`)",
            "3:1: the `vm` block needs `kernel PATH`"
        ]
    );
    assert_eq!(
        err("app a\nenv { K 1 }\nsecret { K 2 }\nexec /x"),
        "3:10: `K` is in both `env` and `secret` (also on line 2)"
    );
    assert_eq!(
        err("app a\nsecret { K 2 }\nenv { K 1 }\nexec /x"),
        "3:7: `K` is in both `env` and `secret` (also on line 2)"
    );
    // A present but invalid key still counts: no second, misleading error.
    assert_eq!(err("app a\nexec \"\""), "2:6: `exec` cannot be empty");
    assert_eq!(
        err("app a\ntype nope\nvm { hypervisor qemu; kernel /k }"),
        "2:6: `type`: expected `process`, `service`, `job`, `wasm` or `vm`, found `nope`"
    );
    assert_eq!(
        err("app a\nexec /x\nhealth { check GET / 99 }"),
        "3:22: `status` must be between 100 and 599, found `99`"
    );
    assert_eq!(
        err("app a\nexec /x\nscale { min x; max 2 }"),
        "3:13: `min`: expected a whole number from 0 to 10000, found `x`"
    );
}

#[test]
fn structure_errors() {
    assert_eq!(err(""), "1:1: no app in this file: expected `app NAME`");
    assert_eq!(
        err("# only a comment\n\n"),
        "1:1: no app in this file: expected `app NAME`"
    );
    assert_eq!(
        err("exec /x\napp a\nexec /y"),
        "1:1: `exec` appears before any `app NAME` line"
    );
    assert_eq!(
        err("app a { exec /x }\nport 80"),
        "2:1: `port` is outside app `a`, whose block is already closed"
    );
    assert_eq!(
        err("app a\nexec /x\napp a\nexec /y"),
        "3:5: app `a` is defined twice (first on line 1)"
    );
    assert_eq!(
        err("app\nexec /x"),
        "1:1: `app` needs a value: a name, like `app api`"
    );
    assert_eq!(
        err("app my api\nexec /x"),
        "1:8: `app` takes one value, found 2; an app name cannot contain spaces"
    );
    assert_eq!(
        err("app a|b\nexec /x"),
        "1:5: invalid app name: a name may contain only letters, digits, `.`, `_` and `-`; found '|' at position 1"
    );
    assert_eq!(
        err("app a {\nexec /x\n"),
        "1:7: the `app` block opened on line 1 is never closed: missing `}`"
    );
    assert_eq!(
        err("app a\nexec /x\n}"),
        "3:1: unexpected `}`: there is no open block to close"
    );
    assert_eq!(
        err("app a\nexec \"/x"),
        "2:6: unterminated string: the `\"` opened here is never closed on this line"
    );
    assert_eq!(
        err("app a\nexec /x\nport 1\nport 2"),
        "4:1: `port` is given twice (first on line 3)"
    );
    assert_eq!(
        err("app a\nexec /x\nbin /y"),
        "3:1: `bin` is given twice (first on line 2)"
    );
    assert_eq!(
        err("app a\nexec /x\nargs a\nargs b"),
        "4:1: `args` is given twice (first on line 3)"
    );
}

#[test]
fn all_errors_are_reported_in_source_order() {
    let all = errs("app a\nreplica 2\nport 0\nram 1\n\napp b\ndrain 1\nexec /x\n}");
    assert_eq!(
        all,
        [
            "1:1: app `a` has nothing to run: add `exec PATH`, `build { out PATH }`, `serve { static DIR }` or, with `type vm`, a `vm` block",
            "2:1: unknown key `replica` in app `a`; did you mean `replicas`?",
            "3:6: `port` must be between 1 and 65535, found `0`",
            "4:5: `ram`: invalid size `1`: a size needs a unit: b, kb, mb, gb or tb (like `512mb`)",
            "7:7: `drain`: expected a duration with a unit: ms, s, m or h, found `1`",
            "9:1: unexpected `}`: there is no open block to close",
        ]
    );
}

#[test]
fn error_display_has_file_line_and_column() {
    let e = parse("dir/api.skr8tr", "app a\nexec /x\nport 0\ngpu 99").unwrap_err();
    assert_eq!(
        e.to_string(),
        "dir/api.skr8tr:3:6: `port` must be between 1 and 65535, found `0`\ndir/api.skr8tr:4:5: `gpu` must be between 0 and 64, found `99`"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().starts_with("dir/api.skr8tr:3:6"));
}

#[test]
fn secrets_never_appear_in_errors() {
    let text = "app a\nexec /x\nsecret { TOKEN hunter2 extra; TOKEN=hunter2; PORT hunter2 }";
    let e = parse("t", text).unwrap_err().to_string();
    assert!(!e.contains("hunter2"), "{e}");
    assert_eq!(e.lines().count(), 2, "{e}");
}

#[test]
fn printer_writes_the_normalised_form() {
    let m = ok("app api\nbin /x\nargs 'a b' c\ncpus 2\nram 1024mb\ndrain 60s\nsecret { K v }");
    let text = print(&m, &PrintOptions::default());
    let want = "app api {\n  type service\n  exec /x\n  args \"a b\" c\n  replicas 1\n  ram 1gb\n  cpu 2\n  restart always\n  drain 1m\n  rollout {\n    settle 8s\n    healthy-deadline 1m\n    auto-revert true\n  }\n  secret {\n    K v\n  }\n}\n";
    assert_eq!(text, want);
    let redacted = print(
        &m,
        &PrintOptions {
            redact_secrets: true,
        },
    );
    assert!(redacted.contains("    K <redacted>\n"), "{redacted}");
    assert_eq!(ok(&text), m);
}

#[test]
fn routes_in_both_forms() {
    let a = one(concat!(
        "app api\nexec /x\n",
        "route api.example.com/api { strip-prefix; max-body 10mb; timeout 30s; rate 100/s burst 200; https-only }\n",
        "route /\n",
        "route *.Example.com/v1\n",
        "{\n  rate 5/s\n}\n",
        "route /b {}\n",
    ));
    let full = RouteOptions {
        strip_prefix: true,
        max_body: Some(10 << 20),
        timeout: Some(Duration::from_secs(30)),
        rate: Some(RateLimit {
            per_second: 100,
            burst: 200,
        }),
        https_only: true,
    };
    let wildcard = RouteOptions {
        rate: Some(RateLimit {
            per_second: 5,
            burst: 5,
        }),
        ..RouteOptions::default()
    };
    assert_eq!(
        a.routes,
        [
            RouteSpec {
                host: Some(RouteHost::Exact("api.example.com".into())),
                prefix: "/api".into(),
                options: full,
            },
            RouteSpec::new(None, "/"),
            RouteSpec {
                host: Some(RouteHost::Wildcard("example.com".into())),
                prefix: "/v1".into(),
                options: wildcard,
            },
            RouteSpec::new(None, "/b"),
        ]
    );
    let text = print(
        &Manifest {
            apps: vec![a.clone()],
        },
        &PrintOptions::default(),
    );
    assert!(
        text.contains(concat!(
            "  route api.example.com/api {\n    strip-prefix\n    max-body 10mb\n",
            "    timeout 30s\n    rate 100/s burst 200\n    https-only\n  }\n",
            "  route /\n  route *.example.com/v1 {\n    rate 5/s burst 5\n  }\n  route /b\n}\n"
        )),
        "{text}"
    );
    assert_eq!(one(&text), a);
}

#[test]
fn route_errors() {
    let e = |line: &str| err(&format!("app a\nexec /x\n{line}"));
    let cases = [
        (
            "route",
            "3:1: `route` needs a value: `[HOST]/PREFIX`, like `api.example.com/api` or `/`",
        ),
        (
            "route api.example.com",
            "3:7: invalid route `api.example.com`: a route needs a path prefix starting with `/`, like `api.example.com/api` or `/`",
        ),
        (
            "route a..b/x",
            "3:7: invalid route `a..b/x`: the host has an empty label (two dots, or a dot at an end)",
        ),
        (
            "route a.*.com/",
            "3:7: invalid route `a.*.com/`: a wildcard host is `*.` followed by a name, like `*.example.com`",
        ),
        (
            "route a_b/",
            "3:7: invalid route `a_b/`: the host label `a_b` may only hold letters, digits and `-`, not at its start or end",
        ),
        (
            "route \"/a b\"",
            "3:7: invalid route `/a b`: the prefix cannot contain spaces",
        ),
        (
            "route /a?x=1",
            "3:7: invalid route `/a?x=1`: the prefix cannot contain `?` (a query is not part of a route)",
        ),
        (
            "route /api api-service",
            "3:12: `route` takes one value, found 2; an app's route names no service (the app is the service); options go in a block, like `route /api { strip-prefix }`",
        ),
        (
            "route / { strip-prefix yes }",
            "3:24: `strip-prefix` takes no value, found `yes`",
        ),
        (
            "route / { https-only { } }",
            "3:22: `https-only` does not take a block",
        ),
        (
            "route / { max-body 0b }",
            "3:20: `max-body` must be between 1b and 1tb, found `0b`",
        ),
        (
            "route / { max-body 10 }",
            "3:20: `max-body`: invalid size `10`: a size needs a unit: b, kb, mb, gb or tb (like `512mb`)",
        ),
        (
            "route / { timeout 2h }",
            "3:19: `timeout` must be between 10ms and 1h, found `2h`",
        ),
        (
            "route / { rate 100 }",
            "3:16: `rate`: expected `N/s` or `N/s burst M`, like `rate 100/s burst 200`, found `100`",
        ),
        (
            "route / { rate 0/s }",
            "3:16: `rate` must be between 1 and 1000000, found `0`",
        ),
        (
            "route / { rate 1/s burst }",
            "3:20: `burst` needs a value: a whole number of requests, like `burst 200`",
        ),
        (
            "route / { rate 1/s burst 0 }",
            "3:26: `burst` must be between 1 and 10000000, found `0`",
        ),
        (
            "route / { rate 1/s bust 2 }",
            "3:20: `rate`: expected `N/s` or `N/s burst M`, like `rate 100/s burst 200`, found `bust`",
        ),
        (
            "route / { rate 1/s burst 2 x }",
            "3:28: `rate`: expected `N/s` or `N/s burst M`, like `rate 100/s burst 200`, found `x`",
        ),
        (
            "route / { service api }",
            "3:11: an app's route names no `service`: the app itself is the service",
        ),
        (
            "route / { strip-prefx }",
            "3:11: unknown key `strip-prefx` in the `route` block; did you mean `strip-prefix`?",
        ),
        (
            "route / { timeout 1s; timeout 2s }",
            "3:23: `timeout` is given twice (first on line 3)",
        ),
        (
            "route /x\nroute /x",
            "4:7: route `/x` is given twice (first on line 3)",
        ),
        (
            "rout /x",
            "3:1: unknown key `rout` in app `a`; did you mean `route`?",
        ),
        (
            "strip-prefix",
            "3:1: `strip-prefix` belongs in a `route` block",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(e(line), want, "{line}");
    }
}

/// Words, delimiters, quotes and line breaks that make plausible and implausible manifests.
fn token_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("app ".to_owned()),
        Just("api ".to_owned()),
        Just("exec /x ".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(";".to_owned()),
        Just("\n".to_owned()),
        Just("\n  ".to_owned()),
        Just("\n\t".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("\\".to_owned()),
        Just("#".to_owned()),
        Just("=".to_owned()),
        Just(" ".to_owned()),
        Just("health ".to_owned()),
        Just("check GET / 200 ".to_owned()),
        Just("check tcp ".to_owned()),
        Just("env ".to_owned()),
        Just("secret ".to_owned()),
        Just("scale { min 1; max 0 } ".to_owned()),
        Just("port 80 ".to_owned()),
        Just("type vm ".to_owned()),
        Just("vm { hypervisor qemu; kernel /k } ".to_owned()),
        Just("1h ".to_owned()),
        Just("99999999999999999999999 ".to_owned()),
        Just("é".to_owned()),
        "[a-z-]{1,8} ",
        "[^\n]{0,4}",
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn print_then_parse_is_identity(m in strategy::manifest()) {
        let text = print(&m, &PrintOptions { redact_secrets: false });
        match parse("p.skr8tr", &text) {
            Ok(back) => prop_assert_eq!(back, m, "{}", text),
            Err(e) => prop_assert!(false, "{}\n--- printed ---\n{}", e, text),
        }
    }

    #[test]
    fn printing_is_stable(m in strategy::manifest()) {
        let text = print(&m, &PrintOptions::default());
        let again = parse("p", &text).map(|m| print(&m, &PrintOptions::default()));
        prop_assert_eq!(again.ok(), Some(text));
    }

    #[test]
    fn redacted_output_holds_no_secret(mut m in strategy::manifest()) {
        // Make every secret recognisable, then look for it.
        for (i, s) in m.apps.iter_mut().flat_map(|a| &mut a.secrets).enumerate() {
            s.value = SecretValue::new(format!("s3cr3t-{i}:{}", s.value.expose()));
        }
        let text = print(&m, &PrintOptions { redact_secrets: true });
        prop_assert!(!text.contains("s3cr3t-"), "{}", text);
        // Redaction changes secret values and nothing else.
        let mut redacted = m.clone();
        for s in redacted.apps.iter_mut().flat_map(|a| &mut a.secrets) {
            s.value = SecretValue::new("<redacted>");
        }
        prop_assert_eq!(&text, &print(&redacted, &PrintOptions::default()));
        prop_assert_eq!(parse("p", &text).ok(), Some(redacted));
    }

    #[test]
    fn parse_never_panics_on_any_text(text in "(?s).{0,400}") {
        let _ = parse("f", &text);
    }

    #[test]
    fn parse_never_panics_on_token_soup(text in token_soup()) {
        if let Err(e) = parse("f", &text) {
            prop_assert!(!e.errors.is_empty());
            let positions: Vec<(u32, u32)> = e.errors.iter().map(|e| (e.line, e.column)).collect();
            let mut sorted = positions.clone();
            sorted.sort_unstable();
            prop_assert_eq!(positions, sorted, "errors are in source order");
            for err in &e.errors {
                prop_assert!(err.line >= 1 && err.column >= 1);
            }
        }
    }

    #[test]
    fn generated_apps_print_and_parse_alone(a in strategy::app()) {
        let m = Manifest { apps: vec![a] };
        let text = print(&m, &PrintOptions::default());
        prop_assert_eq!(parse("p", &text).ok(), Some(m), "{}", text);
    }

    #[test]
    fn print_app_then_parse_app_is_identity(a in strategy::app()) {
        let text = print_app(&a);
        prop_assert_eq!(parse_app("p", &text).ok(), Some(a), "{}", text);
    }
}

#[test]
fn parse_app_wants_exactly_one_app() {
    let two = "app a\n  exec /bin/a\napp b\n  exec /bin/b\n";
    assert!(matches!(
        parse_app("p", two),
        Err(SingleAppError::Count { count: 2 })
    ));
    assert!(matches!(
        parse_app("p", "app a\n  exek /bin/a\n"),
        Err(SingleAppError::Manifest(_))
    ));
}

#[test]
fn a_fast_interval_without_a_timeout_gets_half_of_it() {
    let m = parse(
        "t.skr8tr",
        "app a\n  exec /bin/a\n  health { check GET / 200; interval 1s }\n",
    )
    .unwrap();
    let h = m.apps[0].health.clone().unwrap();
    assert_eq!(h.interval, std::time::Duration::from_secs(1));
    assert_eq!(h.timeout, std::time::Duration::from_millis(500));
    let m = parse(
        "t.skr8tr",
        "app a\n  exec /bin/a\n  health { check GET / 200; interval 10s }\n",
    )
    .unwrap();
    assert_eq!(
        m.apps[0].health.clone().unwrap().timeout,
        std::time::Duration::from_secs(2)
    );
}

#[test]
fn schedule_reads_a_cron_pattern_in_a_zone() {
    let a = one(
        "app nightly\ntype job\nexec /bin/backup\nschedule \"30 2 * * *\"\ntimezone \"Europe/Paris\"",
    );
    let s = a.schedule.expect("schedule");
    assert_eq!(s.cron, "30 2 * * *");
    assert_eq!(s.timezone, "Europe/Paris");
    // 2026-12-08T00:00:00Z; 02:30 in Paris (UTC+1 in winter) is 01:30Z.
    let midnight = 1_796_688_000_000;
    assert_eq!(s.next_after(midnight), Some(midnight + 90 * 60_000));
    let u = one("app t\ntype job\nexec /x\nschedule \"*/2 * * * * *\"")
        .schedule
        .expect("schedule");
    assert_eq!(u.timezone, "UTC");
    // Seconds first: every two seconds, strictly after.
    assert_eq!(u.next_after(midnight), Some(midnight + 2_000));
    assert_eq!(u.next_after(midnight + 1), Some(midnight + 2_000));
    assert!(
        one("app d\ntype job\nexec /x\nschedule \"@daily\"")
            .schedule
            .is_some()
    );
    // Daylight saving: 02:30 does not exist in Paris on 2027-03-28 (clocks go from 02:00 to
    // 03:00); that night's run is at 03:00 CEST (01:00Z), once.
    let spring = s.next_after(1_806_148_800_000);
    assert_eq!(spring, Some(1_806_195_600_000));
    assert_eq!(s.next_after(1_806_195_600_000), Some(1_806_280_200_000));
    // 29 February comes in leap years: 2028.
    let leap = one("app l\ntype job\nexec /x\nschedule \"0 0 29 2 *\"")
        .schedule
        .expect("schedule");
    assert_eq!(leap.next_after(midnight), Some(1_835_395_200_000));
}

#[test]
fn schedule_errors_name_the_pattern_and_the_place() {
    let e = err("app a\ntype job\nexec /x\nschedule \"61 * * * *\"");
    assert!(e.starts_with("4:10: invalid schedule `61 * * * *`"), "{e}");
    assert_eq!(
        err("app a\nexec /x\nschedule \"* * * * *\""),
        "3:1: `schedule` is for `type job` apps (this one is `service`)"
    );
    assert_eq!(
        err("app a\ntype job\nexec /x\ntimezone \"UTC\""),
        "4:1: `timezone` goes with a `schedule`"
    );
    assert_eq!(
        err("app a\ntype job\nexec /x\nschedule \"0 0 30 2 *\""),
        "4:10: invalid schedule `0 0 30 2 *`: it never occurs (expected a cron pattern, like `*/5 * * * *`)"
    );
    let e = err("app a\ntype job\nexec /x\nschedule \"* * * * *\"\ntimezone \"Mars/Olympus\"");
    assert!(
        e.starts_with("5:10: unknown time zone `Mars/Olympus`"),
        "{e}"
    );
}

proptest! {
    /// Any pattern text, from the characters cron uses and a few others, is accepted or
    /// refused without a panic, and an accepted one has a next occurrence at or after a time
    /// it is asked about, or none.
    #[test]
    fn any_schedule_text_parses_or_is_refused(
        pattern in "[0-9*/,LW#?@a-zA-Z -]{0,40}",
        after in 0u64..4_102_444_800_000,
    ) {
        let text = format!("app a\ntype job\nexec /x\nschedule \"{pattern}\"");
        if let Ok(m) = parse("t.skr8tr", &text) {
            let s = m.apps[0].schedule.clone().expect("a schedule");
            if let Some(next) = s.next_after(after) {
                prop_assert!(next > after);
            }
        }
    }
}
