//! The whole UA core: datagrams (split on a 0xff byte) into one endpoint, with time advancing.
#![no_main]

use std::time::{Duration, Instant};

use ivr_sip::{Endpoint, EndpointConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::new("127.0.0.1:5060".parse().unwrap()));
    let src = "127.0.0.2:5060".parse().unwrap();
    for (i, d) in data.split(|b| *b == 0xff).enumerate() {
        let now = t0 + Duration::from_millis(200 * i as u64);
        ep.handle_datagram(src, d, now);
        ep.handle_timeout(now);
        while ep.poll_transmit().is_some() {}
        while let Some(e) = ep.poll_event() {
            if let ivr_sip::Event::IncomingCall { call, .. } = e {
                let _ = ep.answer(call, b"v=0\r\n".to_vec(), now);
            }
        }
    }
    let _ = ep.poll_timeout();
});
