//! A draining endpoint (graceful shutdown) answers OPTIONS probes with 503 and
//! Retry-After, so Kamailio's dispatcher (which probes every instance with
//! OPTIONS) takes it out of the set while its calls finish; before draining
//! and after it is switched off again, the probe gets 200.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::Instant;

use ivr_sip::msg::{HeaderName as H, Message};
use ivr_sip::{Endpoint, EndpointConfig};

const PEER: &str = "192.0.2.50:5060";
const US: &str = "192.0.2.10:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn probe(n: u32) -> Vec<u8> {
    format!(
        "OPTIONS sip:{US} SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKprobe{n}\r\nMax-Forwards: 70\r\nFrom: <sip:dispatcher@{PEER}>;tag=d{n}\r\nTo: <sip:{US}>\r\nCall-ID: probe{n}@{PEER}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn answer_to_probe(ep: &mut Endpoint, n: u32) -> (u16, Option<String>) {
    ep.handle_datagram(addr(PEER), &probe(n), Instant::now());
    let t = ep.poll_transmit().unwrap();
    match Message::parse_datagram(&t.bytes).unwrap() {
        Message::Response(r) => (
            r.status,
            r.headers.get(&H::RetryAfter).map(|v| v.to_string()),
        ),
        Message::Request(_) => panic!("expected a response"),
    }
}

#[test]
fn a_draining_endpoint_answers_load_balancer_probes_with_503() {
    let mut ep = Endpoint::new(EndpointConfig::new(addr(US)));
    assert_eq!(answer_to_probe(&mut ep, 1).0, 200);
    ep.set_draining(true);
    let (status, retry) = answer_to_probe(&mut ep, 2);
    assert_eq!(status, 503);
    assert_eq!(retry.as_deref(), Some("60"));
    ep.set_draining(false);
    assert_eq!(answer_to_probe(&mut ep, 3).0, 200);
}
