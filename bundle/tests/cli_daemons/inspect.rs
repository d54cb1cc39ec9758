//! `ping`, `status`, `nodes`, `list`, `lookup`, `routes` and `--json` against fake daemons.

use std::time::{Duration, Instant};

use super::fake::Fake;
use super::{run, skr8tr, stderr, stdout};

#[test]
fn ping_with_both_daemons_up_shows_both_and_exits_0() {
    let home = tempfile::tempdir().unwrap();
    let conductor = Fake::always("OK|PONG|conductor");
    let tower = Fake::always("OK|PONG|tower");
    let (c, t) = (conductor.addr.to_string(), tower.addr.to_string());
    let out = run(home.path(), &["ping", "--conductor", &c, "--tower", &t]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let words: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(words[0][..3], ["conductor", c.as_str(), "up"], "{text}");
    assert_eq!(words[1][..3], ["tower", t.as_str(), "up"], "{text}");
    assert!(lines.iter().all(|l| l.ends_with(" ms")), "{text}");
    // Aligned: the addresses start in the same column.
    assert_eq!(lines[0].find(c.as_str()), lines[1].find(t.as_str()));
    assert_eq!(conductor.received(), ["PING"]);
    assert_eq!(tower.received(), ["PING"]);
}

#[test]
fn ping_with_a_silent_conductor_exits_1_within_the_timeout() {
    let home = tempfile::tempdir().unwrap();
    let conductor = Fake::silent();
    let tower = Fake::always("OK|PONG|tower");
    let (c, t) = (conductor.addr.to_string(), tower.addr.to_string());
    let started = Instant::now();
    let out = run(
        home.path(),
        &[
            "ping",
            "--conductor",
            &c,
            "--tower",
            &t,
            "--timeout-ms",
            "700",
        ],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(took >= Duration::from_millis(700), "{took:?}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("conductor  "), "{text}");
    assert!(
        lines[0].contains(&format!("  down  no reply from {c} within 700 ms")),
        "{text}"
    );
    let tower_words: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(tower_words[..3], ["tower", t.as_str(), "up"], "{text}");
    assert!(conductor.received().len() >= 2, "the client retried");
}

#[test]
fn ping_json_parses_and_names_the_down_daemon() {
    let home = tempfile::tempdir().unwrap();
    let conductor = Fake::always("OK|PONG|conductor");
    // A Tower answering as a Conductor (ports swapped) is not a Tower.
    let tower = Fake::always("OK|PONG|conductor");
    let (c, t) = (conductor.addr.to_string(), tower.addr.to_string());
    let out = run(
        home.path(),
        &["--json", "ping", "--conductor", &c, "--tower", &t],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["command"], "ping");
    assert_eq!(v["ok"], false);
    assert_eq!(v["conductor"]["up"], true);
    assert!(v["conductor"]["rtt_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(v["tower"]["up"], false);
    assert!(
        v["tower"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be read"),
        "{v}"
    );
}

fn status_conductor() -> Fake {
    Fake::by_verb(&[
        ("APPS", "OK|APPS|2|api:3:4:3:2:running,job:0:0:0:1:none"),
        (
            "STATUS",
            "OK|STATUS|2|api:api.g2.r1:node-a:4242:healthy:2:8080:1:3600:12.5:20480,\
             api:api.g2.r2::0:pending:2:0:0:0:0:0",
        ),
        (
            "NODES",
            "OK|NODES|2|node-a:10.0.0.5:12.5:2048,node-b:::1:0:512",
        ),
        ("LIST", "OK|LIST|2|api:node-a:1234,web:node-b:99"),
    ])
}

#[test]
fn status_prints_the_app_and_replica_tables() {
    let home = tempfile::tempdir().unwrap();
    let conductor = status_conductor();
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["status", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\
APP  DESIRED  RUNNING  HEALTHY  GEN  ROLLOUT
api  3        4        3        2    running
job  0        0        0        1    none

REPLICA    APP  NODE    PID   STATE    PORT  RESTARTS  CPU%  RSS    UPTIME
api.g2.r1  api  node-a  4242  healthy  8080  1         12.5  20.0M  1h0m
api.g2.r2  api  -       -     pending  -     0         -     -      -
"
    );
    assert_eq!(
        conductor.received(),
        ["APPS", "STATUS"],
        "read-only: unsigned"
    );
}

#[test]
fn status_of_one_app_asks_for_that_app() {
    let home = tempfile::tempdir().unwrap();
    let conductor = status_conductor();
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["status", "job", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("APP  DESIRED  RUNNING  HEALTHY  GEN  ROLLOUT\njob  0 "));
    assert_eq!(conductor.received(), ["APPS", "STATUS|job"]);
}

#[test]
fn nodes_and_list_print_aligned_tables() {
    let home = tempfile::tempdir().unwrap();
    let conductor = status_conductor();
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["nodes", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "NODE    ADDRESS   CPU%  RAM FREE\nnode-a  10.0.0.5  12.5  2.0G\nnode-b  ::1       0     512.0M\n"
    );
    let out = run(home.path(), &["list", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "APP  NODE    PID\napi  node-a  1234\nweb  node-b  99\n"
    );
}

#[test]
fn json_output_parses_and_carries_the_table_fields() {
    let home = tempfile::tempdir().unwrap();
    let conductor = status_conductor();
    let c = conductor.addr.to_string();
    let out = run(home.path(), &["--json", "status", "--conductor", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "one object: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["apps"][0]["rollout"], "running");
    assert_eq!(v["replicas"][0]["cpu_pct"], 12.5);
    assert_eq!(v["replicas"][0]["rss_kb"], 20480);
    assert_eq!(v["replicas"][1]["node"], serde_json::Value::Null);

    let out = run(home.path(), &["nodes", "--json", "--conductor", &c]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["nodes"][1]["ip"], "::1");
    let out = run(home.path(), &["list", "--json", "--conductor", &c]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["replicas"][0]["pid"], 1234);
}

#[test]
fn the_conductor_can_come_from_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let conductor = status_conductor();
    let out = skr8tr(home.path(), &["list"])
        .env("SKR8TR_CONDUCTOR", conductor.addr.to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(conductor.received(), ["LIST"]);
}

#[test]
fn lookup_asks_the_tower() {
    let home = tempfile::tempdir().unwrap();
    let tower = Fake::start(|_, bare| match bare {
        "LOOKUP|api" => Some("OK|LOOKUP|api|10.0.0.5|8080".to_owned()),
        _ => Some("ERR|NOT_FOUND|web".to_owned()),
    });
    let t = tower.addr.to_string();
    let out = run(home.path(), &["lookup", "api", "--tower", &t]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "api  10.0.0.5:8080\n");

    let out = run(home.path(), &["lookup", "web", "--tower", &t]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "skr8tr: lookup: NOT_FOUND: web\n");
    assert_eq!(stdout(&out), "");

    let out = run(home.path(), &["--json", "lookup", "web", "--tower", &t]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["code"], "NOT_FOUND");
    assert_eq!(tower.received(), ["LOOKUP|api", "LOOKUP|web", "LOOKUP|web"]);
}

#[test]
fn a_bad_address_is_reported_without_sending() {
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &["list", "--conductor", "10.0.0.1:notaport"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("skr8tr: list: --conductor: cannot understand address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn routes_prints_the_towers_table_and_its_json() {
    let home = tempfile::tempdir().unwrap();
    let tower = Fake::by_verb(&[(
        "ROUTES",
        "OK|ROUTES|2|api:api.example.com:/api:s:10485760:-:-:-,web:-:/:-:-:-:-:-",
    )]);
    let t = tower.addr.to_string();
    let out = run(home.path(), &["routes", "--tower", &t]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "HOST             PREFIX  SERVICE  SOURCE   OPTIONS\n\
         api.example.com  /api    api      app:api  strip-prefix, max-body 10mb\n\
         *any*            /       web      app:web  -\n"
    );
    let out = run(home.path(), &["routes", "--json", "--tower", &t]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["routes"][0]["source"], "app:api");
    assert_eq!(v["routes"][1]["host"], serde_json::Value::Null);
    assert_eq!(tower.received(), ["ROUTES", "ROUTES"]);
}
