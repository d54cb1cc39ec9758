//! The TCP ports held by this node's live replicas: fixed ports (`port N`) are checked for
//! conflicts, and `port auto` gets a free port from the kernel that no live replica holds.
//!
//! A port is held from launch until the replica ends for good (it survives restarts, so the
//! Tower entry stays valid). This module owns only the bookkeeping: a port the kernel called free
//! can still be taken by another program before the replica binds it, which the replica then
//! reports by failing.

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

use skr8tr_proto::name::ReplicaId;

/// How many kernel-chosen ports to try before giving up on `port auto`.
const AUTO_ATTEMPTS: usize = 64;

/// Why no port could be given.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("port {port} is already used by replica {holder} on this node")]
    Taken { port: u16, holder: ReplicaId },
    #[error("no free TCP port found")]
    Exhausted {
        #[source]
        source: Option<std::io::Error>,
    },
}

/// The ports of live replicas.
#[derive(Debug, Default)]
pub struct PortTable {
    held: Mutex<HashMap<u16, ReplicaId>>,
}

impl PortTable {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds `port` for `replica` (which may already hold it).
    ///
    /// # Errors
    /// [`PortError::Taken`] when another live replica holds it.
    pub fn hold_fixed(&self, port: u16, replica: &ReplicaId) -> Result<(), PortError> {
        let mut held = self.lock();
        match held.get(&port) {
            Some(holder) if holder != replica => Err(PortError::Taken {
                port,
                holder: holder.clone(),
            }),
            _ => {
                held.insert(port, replica.clone());
                Ok(())
            }
        }
    }

    /// Picks a port the kernel says is free and no live replica holds, and holds it.
    ///
    /// # Errors
    /// [`PortError::Exhausted`] when binding fails or only held ports come back.
    pub fn hold_auto(&self, replica: &ReplicaId) -> Result<u16, PortError> {
        let mut last_error = None;
        for _ in 0..AUTO_ATTEMPTS {
            // Bound on all addresses, so a port someone uses on any address is not offered.
            let port =
                match TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).and_then(|l| l.local_addr()) {
                    Ok(addr) => addr.port(),
                    Err(e) => {
                        last_error = Some(e);
                        continue;
                    }
                };
            let mut held = self.lock();
            if let std::collections::hash_map::Entry::Vacant(v) = held.entry(port) {
                v.insert(replica.clone());
                return Ok(port);
            }
        }
        Err(PortError::Exhausted { source: last_error })
    }

    /// Releases `port` if `replica` holds it.
    pub fn release(&self, port: u16, replica: &ReplicaId) {
        let mut held = self.lock();
        if held.get(&port) == Some(replica) {
            held.remove(&port);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u16, ReplicaId>> {
        // The map stays consistent even if a holder panicked mid-way: every update is one call.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    #[test]
    fn fixed_ports_conflict_between_replicas_only() {
        let t = PortTable::new();
        t.hold_fixed(8080, &id("a")).unwrap();
        t.hold_fixed(8080, &id("a")).unwrap();
        assert!(matches!(
            t.hold_fixed(8080, &id("b")),
            Err(PortError::Taken { port: 8080, .. })
        ));
        t.release(8080, &id("b"));
        assert!(
            t.hold_fixed(8080, &id("b")).is_err(),
            "b cannot release a's port"
        );
        t.release(8080, &id("a"));
        t.hold_fixed(8080, &id("b")).unwrap();
    }

    #[test]
    fn auto_ports_are_distinct_while_held() {
        let t = PortTable::new();
        let ports: Vec<u16> = (0..20)
            .map(|i| t.hold_auto(&id(&format!("r{i}"))).unwrap())
            .collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|&p| p != 0));
    }
}
