//! Any text into the manifest parser: it must return, never panic; whatever parses must print
//! to text that parses back to the same manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skr8tr_proto::manifest::{self, PrintOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = manifest::parse("fuzz.skr8tr", text) {
        let printed = manifest::print(&m, &PrintOptions { redact_secrets: false });
        let again = manifest::parse("printed.skr8tr", &printed).expect("printed form parses");
        assert_eq!(again, m);
    }
});
