//! Any bytes into the ingress's chunked-body decoder: fed whole, byte by byte or split at any
//! point it reaches the same outcome; data ≤ consumed ≤ input; a finished body re-encodes (as
//! the proxy re-encodes it) to one that decodes to the same data; and the input, as data, encodes
//! and decodes back to itself (`skr8tr_ingress::http::props::check_chunked`,
//! `check_chunk_encoding`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skr8tr_ingress::http::props;

fuzz_target!(|data: &[u8]| {
    props::check_chunked(data);
    props::check_chunk_encoding(data);
});
