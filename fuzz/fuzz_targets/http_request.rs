//! Any bytes into the ingress's request-head parser: it returns, never panics; an accepted head
//! is no longer than the input, has one framing that agrees with its fields, parses the same
//! without what follows it and is only incomplete when cut shorter; re-serialised as the proxy
//! forwards it, it parses to the same method, target, framing and upgrade
//! (`skr8tr_ingress::http::props::check_request`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skr8tr_ingress::http::props;

fuzz_target!(|data: &[u8]| {
    props::check_request(data);
});
