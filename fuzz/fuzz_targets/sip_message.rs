//! Datagram parser, every typed header view, the UAS policy and re-printing.
#![no_main]

use ivr_sip::msg::{HeaderName, Message};
use ivr_sip::policy::{bad_request_for_unframed, check_request, check_response, UasPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::parse_datagram(data) {
        Ok(m) => {
            let h = m.headers();
            let _ = (h.vias(), h.from(), h.to(), h.call_id(), h.cseq(), h.contacts());
            let _ = (h.max_forwards(), h.expires(), h.accept(), h.content_type());
            let _ = (h.refer_to(), h.referred_by(), h.event(), h.subscription_state());
            let _ = h.challenges(&HeaderName::WwwAuthenticate);
            let _ = h.name_addrs(&HeaderName::RecordRoute);
            let _ = h.tokens(&HeaderName::Require);
            match &m {
                Message::Request(r) => {
                    let _ = check_request(r, &UasPolicy::default());
                }
                Message::Response(r) => {
                    let _ = check_response(r);
                }
            }
            // Printing then parsing again must give the same message.
            let again = Message::parse_datagram(&m.to_bytes()).expect("re-parse of printed message");
            assert_eq!(again, m);
        }
        Err(_) => {
            let _ = bad_request_for_unframed(data, "fuzz");
        }
    }
});
