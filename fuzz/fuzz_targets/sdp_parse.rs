//! SDP parser and offer/answer on arbitrary bytes: must never panic, and
//! whatever parses must print back to the same value.
#![no_main]

use ivr_sip::sdp::{accept_answer, answer, offer, LocalMedia, SdpConfig, SessionDescription};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sd) = SessionDescription::parse_bytes(data) else {
        return;
    };
    let printed = sd.to_string();
    let again = SessionDescription::parse(&printed).expect("printed SDP parses");
    assert_eq!(again, sd, "round trip changed the value");

    let local = LocalMedia::new([192, 0, 2, 10].into(), 30000, 1);
    let cfg = SdpConfig::default();
    if let Ok((ans, _)) = answer(&sd, &local, &cfg) {
        assert_eq!(ans.media.len(), sd.media.len());
        let back = SessionDescription::parse(&ans.to_string()).expect("our answer parses");
        assert_eq!(back, ans);
    }
    let _ = accept_answer(&offer(&local, &cfg), &sd);
});
