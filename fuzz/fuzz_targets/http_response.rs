//! Any bytes into the ingress's response-head parser, as the answer to a HEAD request and to any
//! other: it returns, never panics; an accepted head is no longer than the input, has no body
//! where none is allowed, parses the same without what follows it and is only incomplete when
//! cut shorter; written for each kind of client it parses to the same status and to the framing
//! the proxy says it sends (`skr8tr_ingress::http::props::check_response`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skr8tr_ingress::http::props;

fuzz_target!(|data: &[u8]| {
    props::check_response(data, false);
    props::check_response(data, true);
});
