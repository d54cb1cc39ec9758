//! One core's drain flag, and the future its idle waits race against.
//!
//! ```text
//! Shutdown (cross-thread, runtime.rs) ─fires─▶ the core's bridge task ─Drain::start─▶ flag set, waiters woken
//!   accept loop:              select { drain wait ─▶ stop accepting | accept }
//!   idle keep-alive connection: select { read | drain wait ─▶ close }
//!   busy connection:          finishes its request, sees `is_draining`, closes
//! ```
//!
//! Owns the flag and the wakers of the tasks waiting for it, on one thread (`Cell`,
//! `RefCell`); it never blocks and never touches another core. What else stops when a core
//! drains (pooling: `Core::start_drain`) is the core's business.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Whether a core drains, and who waits for it to start.
#[derive(Debug, Default)]
pub struct Drain {
    draining: Cell<bool>,
    waiters: RefCell<HashMap<u64, Waker>>,
    next_waiter: Cell<u64>,
}

impl Drain {
    /// Whether the core is draining (no new requests on kept-alive connections).
    pub fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Starts draining and wakes every waiter.
    pub fn start(&self) {
        self.draining.set(true);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters.into_values() {
            w.wake();
        }
    }

    /// Resolves when the core starts draining (for idle keep-alive waits and the accept loop).
    pub fn signal(&self) -> DrainWait<'_> {
        DrainWait {
            drain: self,
            id: None,
        }
    }
}

/// See [`Drain::signal`].
#[derive(Debug)]
pub struct DrainWait<'a> {
    drain: &'a Drain,
    id: Option<u64>,
}

impl Future for DrainWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.drain.draining.get() {
            return Poll::Ready(());
        }
        let id = if let Some(id) = self.id {
            id
        } else {
            let id = self.drain.next_waiter.get();
            self.drain.next_waiter.set(id.wrapping_add(1));
            self.id = Some(id);
            id
        };
        self.drain
            .waiters
            .borrow_mut()
            .insert(id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for DrainWait<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.drain.waiters.borrow_mut().remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    #[test]
    fn waiters_resolve_once_the_drain_starts_and_leave_no_trace() {
        let drain = Drain::default();
        let mut cx = Context::from_waker(Waker::noop());
        let mut first = Box::pin(drain.signal());
        let mut second = Box::pin(drain.signal());
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        assert_eq!(drain.waiters.borrow().len(), 2);
        drop(second);
        assert_eq!(drain.waiters.borrow().len(), 1);
        assert!(!drain.is_draining());
        drain.start();
        assert!(drain.is_draining());
        assert!(drain.waiters.borrow().is_empty());
        assert!(first.as_mut().poll(&mut cx).is_ready());
        assert!(Box::pin(drain.signal()).as_mut().poll(&mut cx).is_ready());
    }
}
