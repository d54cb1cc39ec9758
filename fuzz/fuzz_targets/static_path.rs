//! Any UTF-8 text as a request target for `skr8tr_serve`'s path resolution, against a tree
//! with symlinks out of its root: it answers with a file inside the root or with none, never
//! anything outside (`skr8tr_ingress::static_files::resolve::check_resolve`, also a proptest
//! in `cargo test`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use skr8tr_ingress::static_files::resolve::{ProbeTree, check_resolve};

fuzz_target!(|data: &[u8]| {
    static TREE: OnceLock<ProbeTree> = OnceLock::new();
    let tree = TREE.get_or_init(ProbeTree::new);
    if let Ok(target) = std::str::from_utf8(data) {
        check_resolve(tree, target);
    }
});
