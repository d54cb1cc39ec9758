//! The command socket: datagrams in, [`NodeRequest`]s to the engine, [`NodeReply`]s out to the
//! sender. The receive loop, the gate and the refusals are `skr8tr_daemon::serve`'s; this module
//! is the agent's handler.
//!
//! ```text
//! datagram ─Gate(mesh)─▶ NodeRequest::decode ─▶ signed if it must be? ─▶ addressed to us?
//!    │ reply / not UTF-8 / unparseable: dropped, never answered (warn, rate-limited)
//!    ▼
//! PING, STATUS, LOGS ─▶ answered at once
//! LAUNCH, KILL, EXEC ─▶ own task ─▶ reply when started / when the stop began / when done
//! ```
//! A LAUNCH whose app spec does not validate is answered `ERR|BAD_MANIFEST` with the parser's
//! first error. Refusals change nothing: an unsigned or badly signed mesh request gets `ERR|UNAUTHORIZED`,
//! one addressed to another node (a replay from elsewhere) `ERR|BAD_REQUEST`. A LAUNCH that
//! arrives again while the first is still starting (a retry during a `build`) is answered with
//! the first one's result, to every sender.

use std::fmt::Display;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use skr8tr_daemon::{Dropped, Gate, Handler, Origin};
use skr8tr_proto::name::ReplicaId;
use skr8tr_proto::wire::{
    ErrorCode, ErrorReply, ExecReply, LaunchSpec, LogsReply, MAX_DATAGRAM, Message, NodeReply,
    NodeRequest, NodeStatusEntry, OneLine, Request, WireError,
};
use tokio::sync::oneshot;

use super::Agent;
use super::heartbeat::exit_of;
use crate::engine::{ExecRequestError, KillOutcome};

/// The longest a KILL waits for its replica's stop to begin before answering anyway.
const KILL_REPLY_PATIENCE: Duration = Duration::from_secs(3);
/// The longest EXEC timeout accepted (one hour).
const MAX_EXEC_TIMEOUT_MS: u32 = 3_600_000;
/// Most entries in an `OK|STATUS` (an entry is at most 63 + 1 + 10 + 1 bytes); running
/// replicas come first, so only ended ones are left out in practice.
const MAX_STATUS_ENTRIES: usize = (MAX_DATAGRAM - 32) / 75;
/// At most one warning per this interval about dropped datagrams (the others are counted).
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Serves requests until the socket fails.
///
/// # Errors
/// A receive error that is not about one datagram.
///
/// # Cancel safety
/// Cancel safe between datagrams (a datagram being received is lost).
pub(super) async fn serve(agent: Rc<Agent>, gate: Gate) -> std::io::Result<()> {
    let socket = agent.socket.clone();
    let requests = Requests {
        agent,
        drops: DropLog::default(),
    };
    skr8tr_daemon::serve(&socket, gate, requests).await
}

/// The command socket's handler: checks what the gate let through is for this node, then
/// dispatches it.
struct Requests {
    agent: Rc<Agent>,
    drops: DropLog,
}

impl Handler for Requests {
    type Request = NodeRequest;
    const NOUN: &'static str = "request";

    fn unauthorized(&mut self, _reason: &'static str) -> Option<String> {
        Some(error(ErrorCode::Unauthorized, "").encode())
    }

    fn undecodable(&mut self, e: &WireError, origin: Origin) -> Option<String> {
        let WireError::BadManifest { detail, .. } = e else {
            return None;
        };
        let from = origin.from;
        // A LAUNCH whose app spec does not validate: the sender learns why (SPEC: the node
        // refuses it with BAD_MANIFEST), if it was allowed to send a LAUNCH at all.
        if !origin.trusted {
            tracing::warn!(%from, verb = "LAUNCH", "refused an unsigned request");
            return self.unauthorized(skr8tr_daemon::UNSIGNED);
        }
        tracing::warn!(%from, %detail, "refused a LAUNCH with a bad app spec");
        Some(error(ErrorCode::BadManifest, detail).encode())
    }

    fn dropped(&mut self, from: SocketAddr, why: Dropped<'_>) {
        self.drops.note(from, &why);
    }

    async fn handle(&mut self, request: NodeRequest, origin: Origin) -> Option<String> {
        let from = origin.from;
        let agent = &self.agent;
        if let Some(target) = request.target()
            && target != &agent.node
        {
            tracing::warn!(%from, verb = request.verb(), %target, "refused a request for another node");
            let detail = format!("addressed to node {target}, this is node {}", agent.node);
            return Some(error(ErrorCode::BadRequest, &detail).encode());
        }
        tracing::debug!(%from, verb = request.verb(), "request");
        dispatch(agent, request, from).map(|reply| reply.encode())
    }
}

fn dispatch(agent: &Rc<Agent>, request: NodeRequest, from: SocketAddr) -> Option<NodeReply> {
    match request {
        NodeRequest::Ping => Some(NodeReply::Pong(agent.node.clone())),
        NodeRequest::Status => Some(status(agent)),
        NodeRequest::Logs { replica, .. } => Some(logs(agent, replica)),
        NodeRequest::Launch(spec) => {
            launch(agent, *spec, from);
            None
        }
        NodeRequest::Kill { replica, .. } => {
            kill(agent, replica, from);
            None
        }
        NodeRequest::Exec {
            replica,
            timeout_ms,
            cmd,
            ..
        } => {
            if timeout_ms == 0 || timeout_ms > MAX_EXEC_TIMEOUT_MS {
                let detail = format!("timeout_ms must be 1..={MAX_EXEC_TIMEOUT_MS}");
                return Some(error(ErrorCode::BadRequest, &detail));
            }
            exec(
                agent,
                replica,
                Duration::from_millis(u64::from(timeout_ms)),
                cmd,
                from,
            );
            None
        }
    }
}

fn status(agent: &Agent) -> NodeReply {
    let mut entries: Vec<(bool, NodeStatusEntry)> = agent
        .engine
        .status()
        .into_iter()
        .map(|r| {
            let entry = NodeStatusEntry {
                replica: r.replica,
                pid: r.pid.unwrap_or(0),
            };
            (r.phase.is_terminal(), entry)
        })
        .collect();
    // Running first (stable: by id within each group), so a cut only drops ended replicas.
    entries.sort_by_key(|(ended, _)| *ended);
    entries.truncate(MAX_STATUS_ENTRIES);
    NodeReply::Status(entries.into_iter().map(|(_, e)| e).collect())
}

fn logs(agent: &Agent, replica: ReplicaId) -> NodeReply {
    let Some(lines) = agent.engine.logs(&replica) else {
        return error(
            ErrorCode::NotFound,
            &format!("no replica {replica} on this node"),
        );
    };
    let mut lines: Vec<OneLine> = lines.iter().map(|l| OneLine::lossy(l)).collect();
    // Keep the newest lines that fit one datagram.
    let head = LogsReply {
        replica: replica.clone(),
        lines: Vec::new(),
    };
    let room = MAX_DATAGRAM.saturating_sub(NodeReply::Logs(head).encode().len() + 8);
    let mut used = 0;
    let keep = lines
        .iter()
        .rev()
        .take_while(|l| {
            used += l.as_str().len() + 1;
            used <= room
        })
        .count();
    lines.drain(..lines.len() - keep);
    NodeReply::Logs(LogsReply { replica, lines })
}

fn launch(agent: &Rc<Agent>, spec: LaunchSpec, from: SocketAddr) {
    let LaunchSpec {
        replica,
        generation,
        app,
        ..
    } = spec;
    {
        let mut launching = agent.launching.borrow_mut();
        if let Some(waiting) = launching.get_mut(&replica) {
            tracing::debug!(%replica, "LAUNCH again while starting: will answer both");
            waiting.push(from);
            return;
        }
        launching.insert(replica.clone(), vec![from]);
    }
    tracing::info!(%replica, app = %app.name, generation, "LAUNCH");
    let agent = agent.clone();
    skr8tr_daemon::spawn(async move {
        let name = app.name.clone();
        let reply = match agent.engine.launch(replica.clone(), generation, app).await {
            Ok(launched) => {
                if !launched.already_running {
                    agent.metrics.launched(&name);
                }
                NodeReply::Launched {
                    replica: replica.clone(),
                    pid: launched.pid.unwrap_or(0),
                    port: launched.port.unwrap_or(0),
                }
            }
            Err(e) => {
                agent.metrics.launch_failed(&name);
                let why = chain(&e);
                tracing::warn!(%replica, app = %name, error = %why, "launch failed");
                error(ErrorCode::LaunchFailed, &why)
            }
        };
        let senders = agent
            .launching
            .borrow_mut()
            .remove(&replica)
            .unwrap_or_default();
        for to in senders {
            send(&agent, &reply, to).await;
        }
    });
}

fn kill(agent: &Rc<Agent>, replica: ReplicaId, from: SocketAddr) {
    tracing::info!(%replica, "KILL");
    let (begun_tx, begun) = oneshot::channel();
    agent
        .stop_waiters
        .borrow_mut()
        .entry(replica.clone())
        .or_default()
        .push(begun_tx);
    let agent = agent.clone();
    skr8tr_daemon::spawn(async move {
        // The stop goes on in its own task after the reply (the drain may be long).
        let mut killing = skr8tr_daemon::spawn({
            let engine = agent.engine.clone();
            let replica = replica.clone();
            async move { engine.kill(&replica).await }
        });
        tokio::select! {
            outcome = &mut killing => {
                let outcome = outcome.unwrap_or(KillOutcome::Stopped);
                tracing::debug!(%replica, ?outcome, "kill done");
            }
            _ = begun => tracing::debug!(%replica, "stop begun"),
            () = tokio::time::sleep(KILL_REPLY_PATIENCE) => {
                tracing::warn!(%replica, "stop not begun in time; answering anyway");
            }
        }
        // Our waiter's receiver is gone now: forget it (and the entry, if it was the last).
        {
            let mut all = agent.stop_waiters.borrow_mut();
            if let Some(waiters) = all.get_mut(&replica) {
                waiters.retain(|w| !w.is_closed());
                if waiters.is_empty() {
                    all.remove(&replica);
                }
            }
        }
        send(&agent, &NodeReply::Killed(replica), from).await;
    });
}

fn exec(agent: &Rc<Agent>, replica: ReplicaId, timeout: Duration, cmd: String, from: SocketAddr) {
    tracing::info!(%replica, ?timeout, "EXEC");
    let agent = agent.clone();
    skr8tr_daemon::spawn(async move {
        let reply = match agent.engine.exec(&replica, &cmd, timeout).await {
            Ok(out) => {
                let mut reply = ExecReply {
                    replica,
                    exit: exit_of(out.termination),
                    output: String::new(),
                };
                let room =
                    MAX_DATAGRAM.saturating_sub(NodeReply::Exec(reply.clone()).encode().len());
                reply.output = truncate(out.output, room);
                NodeReply::Exec(reply)
            }
            Err(
                e @ (ExecRequestError::UnknownReplica { .. } | ExecRequestError::NotRunning { .. }),
            ) => error(ErrorCode::NotFound, &e.to_string()),
            Err(e @ ExecRequestError::Exec { .. }) => {
                let why = chain(&e);
                tracing::warn!(error = %why, "exec failed");
                error(ErrorCode::Internal, &why)
            }
        };
        send(&agent, &reply, from).await;
    });
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// An error and its sources, `: `-joined, for a reply's one-line detail.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn error(code: ErrorCode, detail: &str) -> NodeReply {
    NodeReply::Error(ErrorReply::lossy(code, detail))
}

async fn send(agent: &Agent, reply: &NodeReply, to: SocketAddr) {
    skr8tr_daemon::send_reply(&agent.socket, reply.encode(), to).await;
}

/// Warns about dropped datagrams at most once per [`DROP_LOG_INTERVAL`], counting the rest,
/// so a flood of garbage cannot flood the log.
#[derive(Debug, Default)]
struct DropLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl DropLog {
    fn note(&mut self, from: SocketAddr, reason: &dyn Display) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < DROP_LOG_INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(%from, %reason, also_dropped = self.suppressed, "dropped a datagram without answering");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("héllo".into(), 2), "h");
        assert_eq!(truncate("héllo".into(), 3), "hé");
        assert_eq!(truncate("abc".into(), 10), "abc");
    }

    #[test]
    fn error_details_carry_their_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = crate::exec::ExecError::Spawn(io);
        assert_eq!(chain(&e), "cannot start sh: no such file");
    }
}
