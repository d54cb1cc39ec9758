//! The node's side of the Tower: which replicas it has registered, REGISTER when one becomes
//! healthy and again every [`super::AgentConfig::reregister`] (so the entries outlive the TTL
//! and come back after a Tower restart), DEREGISTER when one stops being a good backend.
//!
//! ```text
//! mark_healthy ─▶ registered{replica → (service, port)} ─▶ register()  ─REGISTER─▶ Tower
//!                                 ▲ refresh(): every healthy replica again     │
//! deregister() removes it first ──┘ then ─DEREGISTER (short patience)─▶ Tower ◀┘
//! ```
//! Invariant: a replica is registered only while it is in the map. A REGISTER whose reply
//! comes back after its replica left the map (a retry that raced a DEREGISTER) is undone at
//! once with another DEREGISTER, so no stale entry waits for the TTL. Every call is signed
//! with the mesh key (when configured) and retried by [`skr8tr_daemon::call`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use skr8tr_daemon::Patience;
use skr8tr_proto::name::{AppName, ReplicaId, ServiceName};
use skr8tr_proto::wire::{Backend, Message, TowerReply, TowerRequest};

use super::Agent;

/// Retries of a DEREGISTER that holds back a stop: 150 + 300 + 600 ms, within the engine's
/// stop-gate timeout (10 s, see [`super::AgentConfig::new`]).
const DEREGISTER_PATIENCE: Patience = Patience {
    attempts: 3,
    first_wait: Duration::from_millis(150),
};

/// How often a stopping replica's drain at the edge is polled.
const DRAIN_POLL: Duration = Duration::from_millis(25);

/// The replicas this agent has registered with the Tower.
#[derive(Debug)]
pub(crate) struct Registrar {
    tower: SocketAddr,
    registered: RefCell<BTreeMap<ReplicaId, (ServiceName, u16)>>,
}

impl Registrar {
    pub(crate) fn new(tower: SocketAddr) -> Self {
        Self {
            tower,
            registered: RefCell::default(),
        }
    }

    /// Records that `replica` should be registered (its service is its app's name).
    pub(crate) fn mark_healthy(&self, replica: &ReplicaId, app: &AppName, port: u16) {
        match ServiceName::new(app.as_str()) {
            Ok(service) => {
                self.registered
                    .borrow_mut()
                    .insert(replica.clone(), (service, port));
            }
            Err(e) => tracing::error!(%app, error = %e, "app name is not a service name"),
        }
    }

    /// Stops refreshing `replica` (at once; the DEREGISTER follows).
    pub(crate) fn forget(&self, replica: &ReplicaId) {
        self.registered.borrow_mut().remove(replica);
    }

    /// The port `replica` is registered with, if it is.
    pub(crate) fn registered_port(&self, replica: &ReplicaId) -> Option<u16> {
        self.registered.borrow().get(replica).map(|(_, port)| *port)
    }

    /// Sends REGISTER for `replica` if it is (still) marked healthy.
    pub(crate) async fn register(&self, agent: &Agent, replica: &ReplicaId) {
        let Some((service, port)) = self.registered.borrow().get(replica).cloned() else {
            return;
        };
        let backend = Backend::new(agent.advertise, port);
        let request = TowerRequest::Register {
            service: service.clone(),
            backend,
            ttl_s: None,
        };
        let ok = self
            .call(agent, &request, Patience::DEFAULT, "REGISTER")
            .await;
        if ok {
            tracing::debug!(%replica, %service, %backend, "registered");
        }
        let still = self
            .registered
            .borrow()
            .get(replica)
            .is_some_and(|(_, p)| *p == port);
        if ok && !still {
            // It stopped being healthy while the REGISTER was on its way: undo it.
            let request = TowerRequest::Deregister { service, backend };
            self.call(agent, &request, DEREGISTER_PATIENCE, "DEREGISTER")
                .await;
        }
    }

    /// Forgets `replica` and sends DEREGISTER, returning once the Tower answered (or the short
    /// patience ran out). Sent even for a replica this agent did not register, since an
    /// earlier agent may have (adoption).
    pub(crate) async fn deregister(
        &self,
        agent: &Agent,
        replica: &ReplicaId,
        app: &AppName,
        port: u16,
    ) {
        self.forget(replica);
        let Ok(service) = ServiceName::new(app.as_str()) else {
            return;
        };
        let backend = Backend::new(agent.advertise, port);
        let request = TowerRequest::Deregister {
            service: service.clone(),
            backend,
        };
        if self
            .call(agent, &request, DEREGISTER_PATIENCE, "DEREGISTER")
            .await
        {
            tracing::info!(%replica, %service, %backend, "deregistered");
        }
    }

    /// Waits until every edge subscriber of `app`'s service has stopped sending to the replica
    /// just deregistered: asks the Tower for the service's current version (`DRAINED|svc|0`),
    /// which includes the removal, then polls that version until all subscribers acknowledged
    /// it, for at most `limit`. Returns whether the edge is drained (false: gave up).
    pub(crate) async fn wait_drained(&self, agent: &Agent, app: &AppName, limit: Duration) -> bool {
        let Ok(service) = ServiceName::new(app.as_str()) else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + limit;
        let quick = Patience {
            attempts: 2,
            first_wait: Duration::from_millis(100),
        };
        let mut version = 0;
        loop {
            let ask = TowerRequest::Drained {
                service: service.clone(),
                version,
            }
            .encode();
            match skr8tr_daemon::call(agent.driver, self.tower, &ask, None, quick).await {
                Ok(reply) => match TowerReply::decode(reply.as_bytes()) {
                    Ok(TowerReply::Drained(d)) if d.all() => return true,
                    Ok(TowerReply::Drained(d)) => version = d.version,
                    _ => return false,
                },
                // No Tower answering: no edge learns from it either; nothing to wait for.
                Err(_) => return false,
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(%service, version, "edge not drained in time; stopping anyway");
                return false;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    /// One request to the Tower; true when it answered OK.
    async fn call(
        &self,
        agent: &Agent,
        request: &TowerRequest,
        patience: Patience,
        verb: &'static str,
    ) -> bool {
        let text = request.encode();
        match skr8tr_daemon::call(
            agent.driver,
            self.tower,
            &text,
            agent.mesh_key.as_ref(),
            patience,
        )
        .await
        {
            Ok(reply) => match TowerReply::decode(reply.as_bytes()) {
                Ok(TowerReply::Registered(_) | TowerReply::Deregistered(_)) => true,
                Ok(TowerReply::Error(err)) => {
                    tracing::warn!(verb, tower = %self.tower, code = %err.code, detail = %err.detail, "the Tower refused");
                    false
                }
                Ok(other) => {
                    tracing::warn!(verb, tower = %self.tower, reply = ?other, "unexpected Tower reply");
                    false
                }
                Err(e) => {
                    tracing::warn!(verb, tower = %self.tower, error = %e, "unparseable Tower reply");
                    false
                }
            },
            Err(e) => {
                tracing::warn!(verb, error = %e, "the Tower did not answer");
                false
            }
        }
    }

    fn snapshot(&self) -> Vec<ReplicaId> {
        self.registered.borrow().keys().cloned().collect()
    }
}

/// Re-registers every healthy replica every `every`, forever (aborted on shutdown).
pub(super) async fn refresh(agent: Rc<Agent>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; registration on Healthy covers it
    loop {
        tick.tick().await;
        for replica in agent.tower.snapshot() {
            let agent = agent.clone();
            skr8tr_daemon::spawn(async move { agent.tower.register(&agent, &replica).await });
        }
    }
}
