//! Engine events → Tower registrations, Conductor deaths and metrics.
//!
//! ```text
//! Healthy (with a port) ──▶ REGISTER app at advertise:port       (then refreshed every 10 s)
//! Unhealthy ─────────────▶ DEREGISTER                             (a restart may follow)
//! Stopping ──────────────▶ DEREGISTER, wait for the Tower's reply ──▶ release the StopGate
//!                                                                  ──▶ wake waiting KILLs
//! Exited ────────────────▶ DIED to the Conductor; DEREGISTER if it was registered (a crash);
//!                          an OOM kill counted in the metrics
//! ```
//! Each reaction runs in its own task, so a slow Tower never holds up the next event; the one
//! ordering that matters (deregister before signal) is kept by the gate, which the engine
//! waits for.

use std::rc::Rc;

use skr8tr_proto::name::{AppName, ReplicaId};
use skr8tr_proto::wire::{Died, MeshEvent, Message};

use super::Agent;
use super::heartbeat::exit_of;
use crate::events::{Event, Events};
use crate::supervise::Termination;

/// Handles the engine's events until the engine is gone (or the task is aborted).
pub(super) async fn run(agent: Rc<Agent>, mut events: Events) {
    while let Some(event) = events.recv().await {
        handle(&agent, event);
    }
}

/// Longest a stopping replica waits for the edge to drain it before it is signalled anyway.
const EDGE_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(8);

fn handle(agent: &Rc<Agent>, event: Event) {
    match event {
        Event::Started {
            replica,
            app,
            pid,
            port,
            adopted,
        } => {
            tracing::info!(%replica, %app, pid, ?port, adopted, "replica started");
            agent.ended_at.borrow_mut().remove(&replica);
            agent.heartbeat_now.notify_one();
        }
        Event::Healthy {
            replica,
            app,
            port: Some(port),
        } => {
            tracing::info!(%replica, %app, port, "replica healthy");
            agent.tower.mark_healthy(&replica, &app, port);
            let agent = agent.clone();
            skr8tr_daemon::spawn(async move {
                agent.tower.register(&agent, &replica).await;
                // Tell the Conductor now rather than at the next tick (rollouts wait on it).
                agent.heartbeat_now.notify_one();
            });
        }
        Event::Healthy {
            replica,
            app,
            port: None,
        } => tracing::info!(%replica, %app, "replica healthy (no port: not registered)"),
        Event::Unhealthy { replica, app, port } => {
            tracing::warn!(%replica, %app, "replica unhealthy");
            agent.metrics.health_failure(&app);
            if let Some(port) = port {
                deregister_later(agent, replica, app, port);
            }
        }
        Event::Stopping {
            replica,
            app,
            port,
            gate,
        } => {
            agent.tower.forget(&replica);
            let agent = agent.clone();
            skr8tr_daemon::spawn(async move {
                if let Some(port) = port {
                    agent.tower.deregister(&agent, &replica, &app, port).await;
                    // The edge stops routing to it and finishes what is in flight first.
                    agent
                        .tower
                        .wait_drained(&agent, &app, EDGE_DRAIN_LIMIT)
                        .await;
                }
                tracing::info!(%replica, %app, "stopping replica");
                gate.release();
                agent.stop_begun(&replica);
            });
        }
        Event::Exited {
            replica,
            app,
            termination,
            restart_in,
        } => {
            tracing::info!(%replica, %app, %termination, ?restart_in, "replica exited");
            if termination == Termination::OomKilled {
                tracing::warn!(%replica, %app, "replica killed for going over its ram limit");
                agent.metrics.oom_killed(&app);
            }
            if restart_in.is_none() {
                agent
                    .ended_at
                    .borrow_mut()
                    .insert(replica.clone(), std::time::Instant::now());
            }
            if let Some(port) = agent.tower.registered_port(&replica) {
                deregister_later(agent, replica.clone(), app.clone(), port);
            }
            // A replica that ends before its stop began (a crash during a KILL) wakes the KILL.
            agent.stop_begun(&replica);
            agent.heartbeat_now.notify_one();
            let died = MeshEvent::Died(Died {
                node: agent.node.clone(),
                replica,
                app,
                exit: exit_of(termination),
                restarting: restart_in.is_some(),
            });
            let agent = agent.clone();
            skr8tr_daemon::spawn(async move {
                agent.tell_conductor(&died.encode(), "DIED").await;
            });
        }
    }
}

fn deregister_later(agent: &Rc<Agent>, replica: ReplicaId, app: AppName, port: u16) {
    agent.tower.forget(&replica);
    let agent = agent.clone();
    skr8tr_daemon::spawn(async move { agent.tower.deregister(&agent, &replica, &app, port).await });
}
