//! Any UTF-8 text into the ingress's routes-file parser: it answers with routes or an error at
//! a position inside the text, never a panic, and every route of a table it builds is found
//! again by its own host and prefix (`skr8tr_ingress::route::check_routes_file`, also a
//! proptest in `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skr8tr_ingress::route;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        route::check_routes_file(text);
    }
});
