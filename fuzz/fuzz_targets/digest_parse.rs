//! Digest challenge/credentials parsers on arbitrary text: must never panic,
//! and whatever parses must print back to the same value.
#![no_main]

use ivr_sip::auth::{Challenge, Credentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Challenge::parse(s) {
        assert_eq!(Challenge::parse(&c.to_string()), Ok(c));
    }
    if let Ok(c) = Credentials::parse(s) {
        assert_eq!(Credentials::parse(&c.to_string()), Ok(c));
    }
});
