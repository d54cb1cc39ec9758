//! The longest-prefix index over path segments: one [`PathTrie`] per host (and one for the
//! host-less routes).
//!
//! A prefix `P` matches a path at a *boundary*: `P` equals the path up to a `/` or to its end
//! (`/api` matches `/api`, `/api/x`, never `/apiary`); a prefix ending in `/` needs that `/`
//! (`/static/` matches `/static/x`, not `/static`). So each node is the path up to a boundary,
//! its children are keyed by the next segment, and it holds two routes: `open` (a prefix
//! without the trailing `/`, matched at the boundary whatever follows) and `slash` (the same
//! with a trailing `/`, matched only when a `/` follows). A lookup walks the path once,
//! hashing each segment once, and allocates nothing: O(path length) whatever the number of
//! routes.

use std::collections::HashMap;

/// Path-segment trie; values are indexes into the route list.
#[derive(Debug, Clone, Default)]
pub struct PathTrie {
    children: HashMap<Box<str>, PathTrie>,
    open: Option<u32>,
    slash: Option<u32>,
}

impl PathTrie {
    /// Adds `prefix` (starts with `/`) → `index`. Returns the index already there for this
    /// prefix, leaving it in place.
    pub fn insert(&mut self, prefix: &str, index: u32) -> Result<(), u32> {
        let (body, slash) = match prefix.strip_suffix('/') {
            Some(body) => (body, true),
            None => (prefix, false),
        };
        let mut node = self;
        // `body` is "" (for `/`) or "/seg/seg…".
        let mut rest = body;
        while let Some(after) = rest.strip_prefix('/') {
            let (seg, tail) = after
                .find('/')
                .map_or((after, ""), |i| (&after[..i], &after[i..]));
            node = node.children.entry(Box::from(seg)).or_default();
            rest = tail;
        }
        let slot = if slash {
            &mut node.slash
        } else {
            &mut node.open
        };
        match slot {
            Some(old) => Err(*old),
            None => {
                *slot = Some(index);
                Ok(())
            }
        }
    }

    /// The index of the longest prefix of `path` (starts with `/`, no query) on a segment
    /// boundary.
    #[must_use]
    pub fn lookup(&self, path: &str) -> Option<u32> {
        let bytes = path.as_bytes();
        let mut node = self;
        let mut best = None;
        // `at` is a boundary: the end of the path, or a `/`.
        let mut at = 0;
        loop {
            if at < bytes.len() {
                if let Some(i) = node.slash.or(node.open) {
                    best = Some(i);
                }
            } else {
                if let Some(i) = node.open {
                    best = Some(i);
                }
                return best;
            }
            let start = at + 1;
            let end = bytes[start..]
                .iter()
                .position(|b| *b == b'/')
                .map_or(bytes.len(), |i| start + i);
            match node.children.get(&path[start..end]) {
                Some(child) => node = child,
                None => return best,
            }
            at = end;
        }
    }
}
