//! What every core routes by, shared across threads without a lock on the request path.
//!
//! ```text
//! discovery / reload ──publish──▶ Directory { generation: AtomicU64, view: Mutex<Arc<View>> }
//!                                        │ cores compare `generation` per request (one load)
//!                                        ▼ and clone the Arc only when it changed
//!                                  core-local Arc<View>
//! cores ──CoreStatus { adopted, drained }──▶ discovery (when to ACK a version as drained)
//! ```
//!
//! Owns the published [`View`] (routes plus each service's backend set and its Tower version),
//! the shutdown signal, and each core's progress. The lock is taken only to publish and when a
//! core adopts a new generation, never per request.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::route::RouteTable;

/// A service's backend set at one Tower version (0: static backends only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSet {
    /// The Tower's version of the set.
    pub version: u64,
    /// The backends, in a stable order.
    pub backends: Vec<SocketAddr>,
}

/// Everything a core routes by, at one generation.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Increases with every publish.
    pub generation: u64,
    /// The routes.
    pub routes: Arc<RouteTable>,
    /// Service name → backends.
    pub services: HashMap<String, Arc<ServiceSet>>,
    /// The TLS configuration of new client connections, when the listener terminates TLS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl View {
    /// Whether `addr` is a backend of any service in this view.
    #[must_use]
    pub fn has_backend(&self, addr: SocketAddr) -> bool {
        self.services.values().any(|s| s.backends.contains(&addr))
    }
}

/// One core's progress, read by the discovery thread.
#[derive(Debug, Default)]
pub struct CoreStatus {
    /// The generation the core routes by.
    pub adopted: AtomicU64,
    /// The newest generation for which no request is in flight to a backend it (or an earlier
    /// one) removed.
    pub drained: AtomicU64,
}

/// The shared directory.
#[derive(Debug)]
pub struct Directory {
    generation: AtomicU64,
    view: Mutex<Arc<View>>,
    cores: Vec<Arc<CoreStatus>>,
    shutdown: Shutdown,
    /// Client connections open over all cores (counted per connection, not per request).
    pub connections: AtomicUsize,
}

impl Directory {
    /// A directory for `cores` cores starting at `view` (generation 1).
    #[must_use]
    pub fn new(cores: usize, mut view: View) -> Self {
        view.generation = 1;
        Self {
            generation: AtomicU64::new(1),
            view: Mutex::new(Arc::new(view)),
            cores: (0..cores)
                .map(|_| Arc::new(CoreStatus::default()))
                .collect(),
            shutdown: Shutdown::default(),
            connections: AtomicUsize::new(0),
        }
    }

    /// The current generation (one atomic load: the per-request check).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Publishes a change made by `edit` to a copy of the current view; returns the new
    /// generation.
    pub fn publish(&self, edit: impl FnOnce(&mut View)) -> u64 {
        let mut guard = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = View::clone(&guard);
        edit(&mut next);
        next.generation = guard.generation + 1;
        let generation = next.generation;
        *guard = Arc::new(next);
        self.generation.store(generation, Ordering::Release);
        generation
    }

    /// Core `i`'s status.
    #[must_use]
    pub fn core(&self, i: usize) -> Arc<CoreStatus> {
        Arc::clone(&self.cores[i.min(self.cores.len() - 1)])
    }

    /// The lowest generation every core has drained.
    #[must_use]
    pub fn drained_everywhere(&self) -> u64 {
        self.cores
            .iter()
            .map(|c| c.drained.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// The lowest generation every core routes by.
    #[must_use]
    pub fn adopted_everywhere(&self) -> u64 {
        self.cores
            .iter()
            .map(|c| c.adopted.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// The shutdown signal.
    #[must_use]
    pub const fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

/// A one-way, cross-thread "stop accepting and drain" signal that async tasks can await.
#[derive(Debug, Default)]
pub struct Shutdown {
    fired: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Shutdown {
    /// Fires the signal (idempotent) and wakes every waiter.
    pub fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for w in wakers {
            w.wake();
        }
    }

    /// Whether it fired.
    #[must_use]
    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Resolves once fired. Meant for one long-lived waiter per core.
    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        ShutdownWait { shutdown: self }
    }
}

struct ShutdownWait<'a> {
    shutdown: &'a Shutdown,
}

impl Future for ShutdownWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.shutdown.is_fired() {
            return Poll::Ready(());
        }
        self.shutdown
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cx.waker().clone());
        if self.shutdown.is_fired() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
