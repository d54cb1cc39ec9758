//! What the engine tells the daemon glue as it happens: a replica started, became healthy or
//! unhealthy, is about to be stopped, or exited. The glue registers a replica with the Tower
//! on `Healthy`, deregisters it on `Unhealthy`/`Stopping`, and reports `Exited` to the
//! Conductor.
//!
//! `Stopping` carries a [`StopGate`]: the engine sends no signal until the gate is released
//! (or dropped, or a timeout passes), so the glue can deregister the replica first. Events are
//! delivered in order per replica through an unbounded channel; if nobody holds the [`Events`]
//! receiver any more, events are dropped (and gates released with them).

use std::time::Duration;

use skr8tr_proto::name::{AppName, ReplicaId};
use tokio::sync::{mpsc, oneshot};

use crate::supervise::Termination;

/// One lifecycle event of one replica.
#[derive(Debug)]
pub enum Event {
    /// A process of the replica was started (first launch, restart or adoption).
    Started {
        replica: ReplicaId,
        app: AppName,
        pid: u32,
        port: Option<u16>,
        adopted: bool,
    },
    /// Its health check passed (or it has none and was started): register it.
    Healthy {
        replica: ReplicaId,
        app: AppName,
        port: Option<u16>,
    },
    /// Its health check failed for good: deregister it. A restart may follow per policy.
    Unhealthy {
        replica: ReplicaId,
        app: AppName,
        port: Option<u16>,
    },
    /// The engine is about to signal it: deregister it, then release (or drop) the gate.
    Stopping {
        replica: ReplicaId,
        app: AppName,
        port: Option<u16>,
        gate: StopGate,
    },
    /// Its process ended (or a restart could not start one). `restart_in` is the back-off
    /// delay when the policy restarts it, `None` when the replica has ended for good.
    Exited {
        replica: ReplicaId,
        app: AppName,
        termination: Termination,
        restart_in: Option<Duration>,
    },
}

impl Event {
    /// The replica the event is about.
    #[must_use]
    pub fn replica(&self) -> &ReplicaId {
        match self {
            Self::Started { replica, .. }
            | Self::Healthy { replica, .. }
            | Self::Unhealthy { replica, .. }
            | Self::Stopping { replica, .. }
            | Self::Exited { replica, .. } => replica,
        }
    }

    /// For `Exited`: whether the replica will be started again.
    #[must_use]
    pub fn restarting(&self) -> bool {
        matches!(
            self,
            Self::Exited {
                restart_in: Some(_),
                ..
            }
        )
    }
}

/// Holds back the signals of a stop until released or dropped.
#[derive(Debug)]
pub struct StopGate(Option<oneshot::Sender<()>>);

impl StopGate {
    pub(crate) fn new() -> (Self, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some(tx)), rx)
    }

    /// Lets the stop proceed now (dropping the gate does the same).
    pub fn release(mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// The receiving end of the engine's events.
#[derive(Debug)]
pub struct Events(pub(crate) mpsc::UnboundedReceiver<Event>);

impl Events {
    /// The next event; `None` once the engine and all its replica tasks are gone.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<Event> {
        self.0.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.0.try_recv().ok()
    }
}

/// Sends events; a closed channel is fine (nobody listens).
#[derive(Debug, Clone)]
pub(crate) struct EventSink(pub(crate) mpsc::UnboundedSender<Event>);

impl EventSink {
    pub(crate) fn send(&self, event: Event) {
        let _ = self.0.send(event);
    }
}
