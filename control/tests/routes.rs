//! Routes from app manifests through a real Conductor and Tower on loopback (SPEC §7.1):
//! SUBMIT publishes them, EVICT withdraws them, a route another app holds is refused naming
//! it, and the Tower's table survives a Tower restart and a Conductor restart.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use skr8tr_control::conductor::server::{ConductorConfig, run as run_conductor};
use skr8tr_control::tower::server::{TowerConfig, run as run_tower};

use crate::util::{Running, ask, eventually, start, start_on};

/// How long the tests wait for the Tower's table to show a change (the Conductor publishes
/// at once; a restarted Tower gets everything back within the Conductor's 5 s re-publish).
const WITHIN: Duration = Duration::from_secs(10);

fn tower_on(bind: SocketAddr) -> Running {
    start_on(
        "tower",
        false,
        vec![bind],
        move |_driver, mut sockets, stop| async move {
            run_tower(sockets.remove(0), TowerConfig::dev(), async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        },
    )
}

fn conductor(state: &Path, tower: SocketAddr) -> Running {
    let state = state.to_path_buf();
    start(
        "conductor",
        false,
        2,
        move |driver, mut sockets, stop| async move {
            let heartbeats = sockets.remove(1);
            let commands = sockets.remove(0);
            let config = ConductorConfig {
                tower: Some(tower),
                admin: None,
                ..ConductorConfig::dev(state)
            };
            run_conductor(driver, commands, heartbeats, config, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        },
    )
}

fn submit(manifest: &str) -> String {
    format!(
        "SUBMIT|b64:{}",
        base64::engine::general_purpose::STANDARD.encode(manifest)
    )
}

/// Waits until the Tower's `ROUTES` answer is `want`.
fn table_becomes(tower: SocketAddr, want: &str) {
    eventually(WITHIN, want, || {
        (ask(tower, "ROUTES") == want).then_some(())
    });
}

const API: &str = "app api\n  exec /bin/sleep\n  args 60\n  route api.example.com/api {\n    strip-prefix\n    max-body 10mb\n  }\n  route /api-health\n";
const API_ROUTES: &str =
    "OK|ROUTES|2|api:api.example.com:/api:s:10485760:-:-:-,api:-:/api-health:-:-:-:-:-";

#[test]
fn submit_publishes_evict_withdraws_and_a_taken_route_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = tower_on("127.0.0.1:0".parse().unwrap());
    let c = conductor(dir.path(), t.addr());
    let (tower, cmd) = (t.addr(), c.addr());
    assert!(ask(cmd, &submit(API)).starts_with("OK|SUBMITTED|api|"));
    table_becomes(tower, API_ROUTES);

    // Another app claiming one of api's routes is refused, naming api; nothing changes.
    let thief = "app thief\n  exec /bin/sleep\n  route API.example.com/api\n";
    assert_eq!(
        ask(cmd, &submit(thief)),
        "ERR|ROUTE_TAKEN|api.example.com/api held by api"
    );
    assert!(!ask(cmd, "APPS").contains("thief"));
    let rollout = format!(
        "ROLLOUT|b64:{}",
        base64::engine::general_purpose::STANDARD.encode(thief)
    );
    assert_eq!(
        ask(cmd, &rollout),
        "ERR|ROUTE_TAKEN|api.example.com/api held by api"
    );
    // The same prefix on another host is another route.
    let web = "app web\n  exec /bin/sleep\n  route web.example.com/api\n";
    assert!(ask(cmd, &submit(web)).starts_with("OK|SUBMITTED|web|"));
    table_becomes(
        tower,
        "OK|ROUTES|3|api:api.example.com:/api:s:10485760:-:-:-,api:-:/api-health:-:-:-:-:-,web:web.example.com:/api:-:-:-:-:-",
    );

    assert_eq!(ask(cmd, "EVICT|api"), "OK|EVICTED|api");
    table_becomes(tower, "OK|ROUTES|1|web:web.example.com:/api:-:-:-:-:-");
    // Once api is gone its routes are free.
    assert!(ask(cmd, &submit(thief)).starts_with("OK|SUBMITTED|thief|"));
    table_becomes(
        tower,
        "OK|ROUTES|2|thief:api.example.com:/api:-:-:-:-:-,web:web.example.com:/api:-:-:-:-:-",
    );
}

#[test]
fn routes_survive_a_tower_restart_and_a_conductor_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = tower_on("127.0.0.1:0".parse().unwrap());
    let tower = t.addr();
    let c = conductor(dir.path(), tower);
    assert!(ask(c.addr(), &submit(API)).starts_with("OK|SUBMITTED|api|"));
    table_becomes(tower, API_ROUTES);

    // The Tower restarts empty on the same address; the Conductor publishes again.
    drop(t);
    let t = tower_on(tower);
    assert_eq!(ask(tower, "ROUTES"), "OK|ROUTES|0|");
    table_becomes(tower, API_ROUTES);

    // The Conductor restarts from its store while the Tower also lost everything.
    drop(c);
    drop(t);
    let _t = tower_on(tower);
    assert_eq!(ask(tower, "ROUTES"), "OK|ROUTES|0|");
    let c = conductor(dir.path(), tower);
    table_becomes(tower, API_ROUTES);

    // An app evicted while the Tower was away has its routes withdrawn when the Conductor
    // finds them there.
    drop(c);
    let ghost = "PUBLISH_ROUTES|ghost|1|-:/ghost:-:-:-:-:-";
    assert!(ask(tower, ghost).starts_with("OK|PUBLISHED|ghost|"));
    let _c = conductor(dir.path(), tower);
    table_becomes(tower, API_ROUTES);
}
