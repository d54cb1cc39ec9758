//! The node's stable id, `STATE_DIR/node_id`: generated once from the hostname and a random
//! suffix, then read back at every start, so a restarted agent is the same node to the
//! Conductor.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use skr8tr_proto::name::{MAX_NAME_LEN, NameError, NodeId};

use super::{RecordsError, ensure_dir, write_atomically};

const NODE_ID_FILE: &str = "node_id";

/// The node's id from `dir/node_id`, generated and stored on first use:
/// the hostname (reduced to name characters) and 8 random hex digits.
///
/// # Errors
/// Read/write errors, or [`RecordsError::BadNodeId`] when the stored id is invalid.
pub fn load_or_create_node_id(dir: &Path) -> Result<NodeId, RecordsError> {
    ensure_dir(dir)?;
    let path = dir.join(NODE_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            NodeId::new(id).map_err(|_| RecordsError::BadNodeId {
                path: path.clone(),
                id: id.to_owned(),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let id = new_node_id(&hostname, random_u32()).map_err(|_| RecordsError::BadNodeId {
                path: path.clone(),
                id: hostname.trim().to_owned(),
            })?;
            write_atomically(&path, format!("{id}\n").as_bytes())?;
            Ok(id)
        }
        Err(source) => Err(RecordsError::Read { path, source }),
    }
}

/// `HOST-xxxxxxxx` from a hostname and a random number: characters outside the name alphabet
/// become `-`, the host part is cut to fit 63 characters, and an empty host becomes `node`.
///
/// # Errors
/// None in practice (the result is built from the name alphabet); the [`NameError`] of
/// [`NodeId::new`] is passed on rather than assumed away.
pub fn new_node_id(hostname: &str, random: u32) -> Result<NodeId, NameError> {
    let suffix = format!("{random:08x}");
    let host: String = hostname
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME_LEN - suffix.len() - 1)
        .collect();
    let host = host.trim_matches('.');
    let host = if host.is_empty() { "node" } else { host };
    NodeId::new(format!("{host}-{suffix}"))
}

fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if read.is_err() {
        // No urandom: fall back to time and pid, still distinct between nodes in practice.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos ^ std::process::id().rotate_left(16);
    }
    u32::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_node_id(dir.path()).unwrap();
        let b = load_or_create_node_id(dir.path()).unwrap();
        assert_eq!(a, b);
        fs::write(dir.path().join(NODE_ID_FILE), "bad id|\n").unwrap();
        assert!(matches!(
            load_or_create_node_id(dir.path()),
            Err(RecordsError::BadNodeId { .. })
        ));
    }

    #[test]
    fn node_id_from_odd_hostnames() {
        let table = [
            ("web-1", 0xdead_beef, "web-1-deadbeef"),
            ("web 1.example.com\n", 1, "web-1.example.com-00000001"),
            ("", 2, "node-00000002"),
            ("..", 3, "node-00000003"),
            ("héllo", 4, "h-llo-00000004"),
        ];
        for (host, random, want) in table {
            assert_eq!(
                new_node_id(host, random).unwrap().as_str(),
                want,
                "{host:?}"
            );
        }
        let long = "x".repeat(100);
        assert_eq!(new_node_id(&long, 5).unwrap().as_str().len(), MAX_NAME_LEN);
    }
}
