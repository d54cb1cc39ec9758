//! Replies (decoded from the protocol's own examples) to tables and JSON.

use super::*;
use skr8tr_proto::wire::{Message, RunTimes};

fn conductor(reply: &str) -> ConductorReply {
    ConductorReply::decode(reply.as_bytes()).unwrap()
}

fn apps() -> Vec<AppStatus> {
    match conductor("OK|APPS|2|api:3:4:3:2:running,job:0:0:0:1:none") {
        ConductorReply::Apps(apps) => apps,
        other => panic!("{other:?}"),
    }
}

fn replicas() -> Vec<ReplicaStatus> {
    match conductor(
        "OK|STATUS|2|api:api.g2.r1:node-a:4242:healthy:2:8080:1:3600:12.5:20480,\
         api:api.g2.r2::0:pending:2:0:0:0:0:0",
    ) {
        ConductorReply::Status(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_exit_of_ended_replicas_shows_in_a_column_and_in_json() {
    let replicas = match conductor(
        "OK|STATUS|4|job:job.g1.r1:node-a:0:exited:1:0:0:0:0:0:0,\
         job:job.g1.r2:node-a:0:failed:1:0:0:0:0:0:-9,\
         job:job.g1.r3:node-a:77:healthy:1:0:0:5:0.0:100::cgroup-v1,\
         job:job.g1.r4:node-a:0:failed:1:0:0:0:0:0:oom-killed",
    ) {
        ConductorReply::Status(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        replicas_table(&replicas).render(),
        "\
REPLICA    APP  NODE    PID  STATE    EXIT        PORT  RESTARTS  CPU%  RSS   UPTIME  LIMITS
job.g1.r1  job  node-a  -    exited   0           -     0         -     -     -       -
job.g1.r2  job  node-a  -    failed   signal 9    -     0         -     -     -       -
job.g1.r3  job  node-a  77   healthy  -           -     0         0     100K  5s      cgroup-v1
job.g1.r4  job  node-a  -    failed   oom-killed  -     0         -     -     -       -
"
    );
    let json = status_json(&[], &replicas);
    let exits: Vec<Option<&Value>> = (0..3).map(|i| json["replicas"][i].get("exit")).collect();
    assert_eq!(
        exits,
        [
            Some(&json!({ "code": 0 })),
            Some(&json!({ "signal": 9 })),
            None
        ]
    );
}

#[test]
fn sizes_and_durations_for_people() {
    assert_eq!(human_kib(0), "0K");
    assert_eq!(human_kib(512), "512K");
    assert_eq!(human_kib(20_480), "20.0M");
    assert_eq!(human_kib(1536 * 1024), "1.5G");
    assert_eq!(human_secs(45), "45s");
    assert_eq!(human_secs(303), "5m3s");
    assert_eq!(human_secs(3600), "1h0m");
    assert_eq!(human_secs(2 * 86_400 + 3 * 3600 + 5), "2d3h");
}

#[test]
fn status_prints_an_app_table_then_a_replica_table() {
    assert_eq!(
        status_text(&apps(), &replicas()),
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
        status_text(&[], &[]),
        "no apps (`skr8tr up FILE` runs one)\n"
    );
    assert!(status_text(&apps(), &[]).ends_with("\nno replicas\n"));
}

#[test]
fn a_scheduled_job_shows_its_next_and_last_run() {
    let mut apps = apps();
    apps[1].runs = Some(RunTimes {
        next_ms: Some(1_796_698_800_000),
        last_ms: None,
    });
    let text = apps_table(&apps).render();
    assert_eq!(
        text,
        "\
APP  DESIRED  RUNNING  HEALTHY  GEN  ROLLOUT  NEXT RUN                  LAST RUN
api  3        4        3        2    running  -                         -
job  0        0        0        1    none     2026-12-08T03:00:00.000Z  -
"
    );
    let v = status_json(&apps, &[]);
    assert_eq!(v["apps"][1]["next_run_ms"], 1_796_698_800_000_u64);
    assert_eq!(v["apps"][1]["last_run_ms"], Value::Null);
    assert!(v["apps"][0].get("next_run_ms").is_none());
}

#[test]
fn status_json_has_every_field_of_both_tables() {
    let v = status_json(&apps(), &replicas());
    assert_eq!(v["command"], "status");
    assert_eq!(v["ok"], true);
    assert_eq!(
        v["apps"][0],
        json!({"app": "api", "desired": 3, "running": 4, "healthy": 3, "generation": 2,
               "rollout": "running"})
    );
    assert_eq!(
        v["replicas"][0],
        json!({"replica": "api.g2.r1", "app": "api", "node": "node-a", "pid": 4242,
               "state": "healthy", "generation": 2, "port": 8080, "restarts": 1,
               "uptime_s": 3600, "cpu_pct": 12.5, "rss_kb": 20480})
    );
    assert_eq!(v["replicas"][1]["node"], Value::Null);
    assert_eq!(v["replicas"][1]["pid"], Value::Null);
    assert_eq!(v["replicas"][1]["port"], Value::Null);
}

#[test]
fn nodes_table_and_json_show_ipv6_as_is() {
    let ConductorReply::Nodes(nodes) =
        conductor("OK|NODES|2|node-a:10.0.0.5:12.5:2048,node-b:::1:0:512")
    else {
        panic!("not NODES")
    };
    assert_eq!(
        nodes_table(&nodes).render(),
        "\
NODE    ADDRESS   CPU%  RAM FREE
node-a  10.0.0.5  12.5  2.0G
node-b  ::1       0     512.0M
"
    );
    let v = nodes_json(&nodes);
    assert_eq!(
        v["nodes"][1],
        json!({"node": "node-b", "ip": "::1", "cpu_pct": 0.0, "ram_free_mb": 512})
    );
}

#[test]
fn list_table_and_json() {
    let ConductorReply::List(entries) = conductor("OK|LIST|2|api:node-a:1234,web:node-b:99") else {
        panic!("not LIST")
    };
    assert_eq!(
        list_table(&entries).render(),
        "APP  NODE    PID\napi  node-a  1234\nweb  node-b  99\n"
    );
    assert_eq!(
        list_json(&entries)["replicas"][1],
        json!({"app": "web", "node": "node-b", "pid": 99})
    );
    let ConductorReply::List(none) = conductor("OK|LIST|0|") else {
        panic!("not LIST")
    };
    assert_eq!(list_table(&none).render(), "APP  NODE  PID\n");
}

#[test]
fn lookup_prints_the_backend() {
    let TowerReply::Lookup { service, backend } =
        TowerReply::decode(b"OK|LOOKUP|api|fd00::5|8081").unwrap()
    else {
        panic!("not LOOKUP")
    };
    let (text, v) = lookup_output(&service, &backend);
    assert_eq!(text, "api  [fd00::5]:8081\n");
    assert_eq!(
        v,
        json!({"command": "lookup", "ok": true, "service": "api", "ip": "fd00::5",
               "port": 8081, "address": "[fd00::5]:8081"})
    );
}

#[test]
fn ping_shows_both_daemons_and_is_ok_only_if_both_are_up() {
    let results = [
        PingResult {
            daemon: "conductor",
            address: "127.0.0.1:7771".to_owned(),
            outcome: Ok(Duration::from_micros(1250)),
        },
        PingResult {
            daemon: "tower",
            address: "127.0.0.1:7772".to_owned(),
            outcome: Err("no reply".to_owned()),
        },
    ];
    assert_eq!(
        ping_table(&results).render(),
        "conductor  127.0.0.1:7771  up    1.25 ms\ntower      127.0.0.1:7772  down  no reply\n"
    );
    let v = ping_json(&results);
    assert_eq!(v["ok"], false);
    assert_eq!(v["conductor"]["up"], true);
    assert_eq!(v["conductor"]["rtt_ms"], 1.25);
    assert_eq!(
        v["tower"],
        json!({"address": "127.0.0.1:7772", "up": false, "error": "no reply"})
    );
    assert_eq!(ping_json(&results[..1])["ok"], true);
}
