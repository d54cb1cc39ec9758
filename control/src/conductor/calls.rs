//! The Conductor's calls to other daemons: LAUNCH, KILL, LOGS and EXEC to node agents, and
//! DEREGISTER, LIST, DRAINED, PUBLISH_ROUTES and ROUTES to the Tower, each over `skr8tr_daemon::call` (retries, and the
//! mesh signature where a key is configured).
//!
//! ```text
//! server ─▶ Calls::launch/kill/logs/exec ──▶ node agent ──▶ its reply, as the Conductor needs it
//!        └▶ Calls::deregister/tower_list/tower_drained/publish_routes/route_apps ──▶ Tower
//! ```
//! Each call turns the peer's reply into what the Conductor needs and logs what went wrong; none
//! decides what to send or changes the state (that is [`State`](super::state::State)'s, through
//! the server).

use std::net::SocketAddr;
use std::time::Duration;

use skr8tr_daemon::{CallError, Driver, Patience};
use skr8tr_proto::auth::SigningKey;
use skr8tr_proto::name::{AppName, NodeId, ReplicaId, ServiceName};
use skr8tr_proto::route::RouteSpec;
use skr8tr_proto::wire::{
    Backend, ConductorReply, ErrorCode, ErrorReply, LaunchSpec, MAX_SIGNED_MESSAGE, Message,
    NodeReply, NodeRequest, TowerReply, TowerRequest, WireError,
};

use super::state::ReplicaTarget;

/// How patiently the Tower is asked during a rollout (it is asked again every poll anyway).
const TOWER_POLL_PATIENCE: Patience = Patience {
    attempts: 2,
    first_wait: Duration::from_millis(100),
};

/// What a LAUNCH came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// The node started it (`pid` and `port` 0 when it has none).
    Launched { pid: u32, port: u16 },
    /// The node refused or failed it: `CODE: detail`.
    Failed(String),
    /// No usable answer; the node's heartbeats will tell.
    Unconfirmed,
}

/// Why a call to a node came to nothing.
#[derive(Debug, thiserror::Error)]
pub enum NodeCallError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("request too large for a datagram: {0}")]
    TooLarge(WireError),
    #[error("undecodable reply: {0}")]
    BadReply(WireError),
}

/// Where and how the Conductor calls other daemons.
#[derive(Debug)]
pub struct Calls {
    driver: Driver,
    /// Signs what goes to nodes and the Tower; `None` in dev mode.
    mesh_key: Option<SigningKey>,
    /// The Tower; `None`: no edge to ask or tell.
    tower: Option<SocketAddr>,
    /// How long an EXEC may run on the node.
    exec_timeout: Duration,
}

impl Calls {
    #[must_use]
    pub fn new(
        driver: Driver,
        mesh_key: Option<SigningKey>,
        tower: Option<SocketAddr>,
        exec_timeout: Duration,
    ) -> Self {
        Self {
            driver,
            mesh_key,
            tower,
            exec_timeout,
        }
    }

    /// Whether there is a Tower to ask.
    #[must_use]
    pub fn has_tower(&self) -> bool {
        self.tower.is_some()
    }

    /// LAUNCH `spec` on the agent at `to`.
    pub async fn launch(&self, to: SocketAddr, spec: Box<LaunchSpec>) -> Launch {
        let replica = spec.replica.clone();
        match self.node(to, &NodeRequest::Launch(spec)).await {
            Ok(NodeReply::Launched { pid, port, .. }) => Launch::Launched { pid, port },
            Ok(NodeReply::Error(err)) => {
                Launch::Failed(format!("{}: {}", err.code.keyword(), err.detail.as_str()))
            }
            Ok(other) => {
                tracing::warn!(%replica, reply = %other.encode(), "unexpected LAUNCH reply");
                Launch::Unconfirmed
            }
            Err(e) => {
                tracing::warn!(%replica, error = %e, "LAUNCH unconfirmed; the node's heartbeats will tell");
                Launch::Unconfirmed
            }
        }
    }

    /// KILL `replica` on `node`'s agent at `to`; what came of it is only logged (reconcile
    /// sends it again while the replica is still reported).
    pub async fn kill(&self, to: SocketAddr, node: NodeId, replica: ReplicaId) {
        let request = NodeRequest::Kill {
            node,
            replica: replica.clone(),
        };
        match self.node(to, &request).await {
            Ok(NodeReply::Killed(_)) => tracing::debug!(%replica, "kill acknowledged"),
            Ok(other) => {
                tracing::warn!(%replica, reply = %other.encode(), "unexpected KILL reply")
            }
            Err(e) => {
                tracing::warn!(%replica, error = %e, "KILL not delivered; retried by reconcile")
            }
        }
    }

    /// LOGS of the replica at `target`, relayed as the Conductor's reply.
    pub async fn logs(&self, target: ReplicaTarget) -> ConductorReply {
        let ReplicaTarget { to, node, replica } = target;
        let reply = self.node(to, &NodeRequest::Logs { node, replica }).await;
        relay(reply, |reply| match reply {
            NodeReply::Logs(logs) => Ok(ConductorReply::Logs(logs)),
            other => Err(other),
        })
    }

    /// EXEC `cmd` in the replica at `target` (within the configured time limit), relayed as the
    /// Conductor's reply.
    pub async fn exec(&self, target: ReplicaTarget, cmd: String) -> ConductorReply {
        let ReplicaTarget { to, node, replica } = target;
        let request = NodeRequest::Exec {
            node,
            replica,
            timeout_ms: u32::try_from(self.exec_timeout.as_millis()).unwrap_or(u32::MAX),
            cmd,
        };
        let reply = self.node(to, &request).await;
        relay(reply, |reply| match reply {
            NodeReply::Exec(out) => Ok(ConductorReply::Exec(out)),
            other => Err(other),
        })
    }

    /// DEREGISTER a lost node's replica of `app` at `backend` from the Tower, so the edge stops
    /// trying it before its TTL ends. Nothing to do without a Tower.
    pub async fn deregister(&self, app: AppName, backend: SocketAddr) {
        let Some(tower) = self.tower else { return };
        let Ok(service) = ServiceName::new(app.as_str()) else {
            return;
        };
        let request = TowerRequest::Deregister {
            service,
            backend: Backend::new(backend.ip(), backend.port()),
        }
        .encode();
        match self.signed(tower, &request).await {
            Ok(_) => tracing::info!(%app, %backend, "deregistered a lost node's replica"),
            Err(e) => {
                tracing::warn!(%app, %backend, error = %e, "could not deregister; its TTL will")
            }
        }
    }

    /// The backends the Tower lists for `app`; `None` without a Tower or a usable answer.
    pub async fn tower_list(&self, app: &AppName) -> Option<Vec<SocketAddr>> {
        let reply = self.tower(&TowerRequest::List.encode()).await?;
        match reply {
            TowerReply::List(entries) => Some(
                entries
                    .into_iter()
                    .filter(|e| e.service.as_str() == app.as_str())
                    .map(|e| SocketAddr::new(e.backend.ip, e.backend.port))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Whether every subscriber of `app`'s service acknowledged the Tower's current version of
    /// it; `false` without a Tower or a usable answer.
    pub async fn tower_drained(&self, app: &AppName) -> bool {
        let Ok(service) = ServiceName::new(app.as_str()) else {
            return false;
        };
        let ask = TowerRequest::Drained {
            service,
            version: 0,
        }
        .encode();
        matches!(self.tower(&ask).await, Some(TowerReply::Drained(d)) if d.all())
    }

    /// PUBLISH_ROUTES: `app`'s whole route set (empty: withdraw it). Returns whether the Tower
    /// took it; without a Tower there is nothing to tell.
    pub async fn publish_routes(&self, app: &AppName, routes: Vec<RouteSpec>) -> bool {
        let Some(tower) = self.tower else { return true };
        let count = routes.len();
        let request = TowerRequest::PublishRoutes {
            app: app.clone(),
            routes,
        };
        let text = match request.encode_within(MAX_SIGNED_MESSAGE) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(%app, error = %e, "routes too large for a datagram; not published");
                return false;
            }
        };
        match self
            .signed(tower, &text)
            .await
            .map(|r| TowerReply::decode(r.as_bytes()))
        {
            Ok(Ok(TowerReply::Published { version, .. })) => {
                tracing::debug!(%app, routes = count, version, "routes published");
                true
            }
            Ok(Ok(other)) => {
                tracing::warn!(%app, reply = %other.encode(), "routes not published");
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(%app, error = %e, "undecodable PUBLISH_ROUTES reply");
                false
            }
            Err(e) => {
                tracing::warn!(%app, error = %e, "routes not published; sent again shortly");
                false
            }
        }
    }

    /// The apps the Tower holds routes of; `None` without a Tower or a usable answer.
    pub async fn route_apps(&self) -> Option<Vec<AppName>> {
        match self.tower(&TowerRequest::Routes.encode()).await? {
            TowerReply::Routes(entries) => {
                let mut apps: Vec<AppName> = entries.into_iter().map(|e| e.app).collect();
                apps.dedup();
                Some(apps)
            }
            _ => None,
        }
    }

    /// One unsigned question to the Tower, with the rollout poll's patience.
    async fn tower(&self, request: &str) -> Option<TowerReply> {
        let tower = self.tower?;
        let reply =
            skr8tr_daemon::call(self.driver, tower, request, None, TOWER_POLL_PATIENCE).await;
        TowerReply::decode(reply.ok()?.as_bytes()).ok()
    }

    /// One request to the agent at `to`, mesh-signed where a key is configured.
    async fn node(
        &self,
        to: SocketAddr,
        request: &NodeRequest,
    ) -> Result<NodeReply, NodeCallError> {
        let text = request
            .encode_within(MAX_SIGNED_MESSAGE)
            .map_err(NodeCallError::TooLarge)?;
        let reply = self.signed(to, &text).await?;
        NodeReply::decode(reply.as_bytes()).map_err(NodeCallError::BadReply)
    }

    /// One request to `to`, mesh-signed where a key is configured, with the default patience.
    async fn signed(&self, to: SocketAddr, request: &str) -> Result<String, CallError> {
        skr8tr_daemon::call(
            self.driver,
            to,
            request,
            self.mesh_key.as_ref(),
            Patience::DEFAULT,
        )
        .await
    }
}

/// A node's reply to LOGS or EXEC as the Conductor's: what `expected` accepts, the node's
/// error as is, anything else an internal error, and no answer a timeout.
fn relay(
    reply: Result<NodeReply, NodeCallError>,
    expected: impl FnOnce(NodeReply) -> Result<ConductorReply, NodeReply>,
) -> ConductorReply {
    let error = |code, detail: &str| ConductorReply::Error(ErrorReply::lossy(code, detail));
    match reply.map(expected) {
        Ok(Ok(relayed)) => relayed,
        Ok(Err(NodeReply::Error(e))) => ConductorReply::Error(e),
        Ok(Err(other)) => error(
            ErrorCode::Internal,
            &format!("unexpected node reply {}", other.encode()),
        ),
        Err(e) => error(ErrorCode::Timeout, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use skr8tr_proto::wire::{LogsReply, OneLine};

    use super::*;

    #[test]
    fn node_replies_are_relayed_as_the_conductors() {
        let replica = ReplicaId::new("api.g1.r1").unwrap();
        let logs = NodeReply::Logs(LogsReply {
            replica: replica.clone(),
            lines: vec![OneLine::lossy("hello")],
        });
        let refused = ErrorReply::lossy(ErrorCode::NotFound, "no replica api.g1.r1 on this node");
        let expect_logs = |reply: NodeReply| match reply {
            NodeReply::Logs(logs) => Ok(ConductorReply::Logs(logs)),
            other => Err(other),
        };
        let table: [(Result<NodeReply, NodeCallError>, &str); 4] = [
            (Ok(logs), "OK|LOGS|api.g1.r1|1|hello"),
            (
                Ok(NodeReply::Error(refused)),
                "ERR|NOT_FOUND|no replica api.g1.r1 on this node",
            ),
            (
                Ok(NodeReply::Killed(replica)),
                "ERR|INTERNAL|unexpected node reply OK|KILLED|api.g1.r1",
            ),
            (
                Err(NodeCallError::BadReply(WireError::NotUtf8)),
                "ERR|TIMEOUT|undecodable reply: datagram is not UTF-8 text",
            ),
        ];
        for (reply, expected) in table {
            assert_eq!(relay(reply, expect_logs).encode(), expected);
        }
    }
}
