//! One core's pool of idle upstream keep-alive connections, by backend.
//!
//! ```text
//! exchange done, response framed, nothing left unread ─put─▶ pool[backend] (at most 256)
//! next request to that backend ─take─▶ newest connection idle less than the upstream idle timeout
//! housekeeping ─sweep─▶ older ones closed;  ejection / backend removed / drain ─remove / clear─▶ closed
//! ```
//!
//! Invariant: a connection handed out was idle less than the upstream idle timeout. Owns the
//! connections only: whether one may be pooled at all (the core drains, the backend left the
//! view) is the core's decision (`Core::put_pooled`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::upstream::UpConn;

/// Most idle connections pooled per backend per core.
const MAX_POOLED: usize = 256;

/// Idle upstream connections by backend.
#[derive(Debug, Default)]
pub struct Pool {
    conns: RefCell<HashMap<SocketAddr, Vec<UpConn>>>,
}

impl Pool {
    /// A pooled connection to `addr` that has been idle less than `idle`.
    pub fn take(&self, addr: SocketAddr, idle: Duration) -> Option<UpConn> {
        let mut pool = self.conns.borrow_mut();
        let conns = pool.get_mut(&addr)?;
        while let Some(conn) = conns.pop() {
            if conn.idle_since.elapsed() < idle {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a finished connection to `addr`, idle from now (dropped when `addr` has
    /// `MAX_POOLED` already).
    pub fn put(&self, addr: SocketAddr, mut conn: UpConn) {
        conn.idle_since = Instant::now();
        let mut pool = self.conns.borrow_mut();
        let conns = pool.entry(addr).or_default();
        if conns.len() < MAX_POOLED {
            conns.push(conn);
        }
    }

    /// Closes the connections idle for `idle` or longer.
    pub fn sweep(&self, idle: Duration) {
        for conns in self.conns.borrow_mut().values_mut() {
            conns.retain(|c| c.idle_since.elapsed() < idle);
        }
    }

    /// Closes every connection to `addr`.
    pub fn remove(&self, addr: SocketAddr) {
        self.conns.borrow_mut().remove(&addr);
    }

    /// Closes every connection.
    pub fn clear(&self) {
        self.conns.borrow_mut().clear();
    }
}
