//! Identifiers the endpoint hands out (tags, branches, Call-IDs) cannot be
//! computed by a peer from what it has already seen.
//!
//! What a test can prove: that the concrete attack on the old generator (a
//! splitmix64 whose output is a bijection of its state, so one tag gives the
//! state and hence every later value) no longer predicts anything, and that
//! identifiers from the production default do not repeat across endpoints or
//! within 10,000 draws. It cannot prove unpredictability in general; that
//! rests on the generator being `rand`'s OS-seeded CSPRNG, which the unit
//! tests in `ids.rs` pin as the default.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_sip::msg::Message;
use ivr_sip::{Endpoint, EndpointConfig};

const PEER: &str = "192.0.2.50:5060";
const US: &str = "192.0.2.10:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn options(n: u32) -> Vec<u8> {
    format!(
        "OPTIONS sip:bot@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bKp{n}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{PEER}>;tag=p{n}\r\nTo: <sip:bot@{US}>\r\nCall-ID: probe{n}@{PEER}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The To tag of the endpoint's reply to the `n`th probe.
/// Probes are 100 ms apart: under any per-source rate limit.
fn reply_tag(ep: &mut Endpoint, n: u32, t0: Instant) -> String {
    let now = t0 + Duration::from_millis(100 * u64::from(n));
    ep.handle_datagram(addr(PEER), &options(n), now);
    let t = ep.poll_transmit().expect("a reply to OPTIONS");
    let Message::Response(r) = Message::parse_datagram(&t.bytes).unwrap() else {
        panic!("not a response")
    };
    let to = r.headers.get(&ivr_sip::msg::HeaderName::To).unwrap();
    to.split(";tag=").nth(1).unwrap().to_string()
}

/// The old generator's step, run forward from the state one output reveals.
fn splitmix_predict_next(observed: u64) -> u64 {
    // Invert z ^= z >> 31; z *= C2; z ^= z >> 27; z *= C1; z ^= z >> 30.
    fn unxorshift(mut z: u64, s: u32) -> u64 {
        let mut x = z;
        for _ in 0..(64 / s + 1) {
            x = z ^ (x >> s);
        }
        z = x;
        z
    }
    fn inv(a: u64) -> u64 {
        let mut x = a; // Newton iteration for the inverse mod 2^64
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        }
        x
    }
    let mut z = unxorshift(observed, 31);
    z = z.wrapping_mul(inv(0x94D0_49BB_1331_11EB));
    z = unxorshift(z, 27);
    z = z.wrapping_mul(inv(0xBF58_476D_1CE4_E5B9));
    let state = unxorshift(z, 30);
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn identifiers_of_one_reply_do_not_predict_the_next() {
    let now = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::new(addr(US)));
    let mut misses = 0;
    let mut last = reply_tag(&mut ep, 0, now);
    for n in 1..50 {
        let observed = u64::from_str_radix(&last, 16).unwrap();
        let next = reply_tag(&mut ep, n, now);
        if u64::from_str_radix(&next, 16).unwrap() != splitmix_predict_next(observed) {
            misses += 1;
        }
        last = next;
    }
    assert_eq!(misses, 49, "a reply's tag predicted the next one");
}

#[test]
fn tags_do_not_repeat_within_ten_thousand_replies_or_across_endpoints() {
    let now = Instant::now();
    let mut seen = HashSet::new();
    for _ in 0..2 {
        // Two endpoints built with the same (default) configuration, as two
        // engine processes would be.
        let mut ep = Endpoint::new(EndpointConfig::new(addr(US)));
        for n in 0..5_000 {
            let tag = reply_tag(&mut ep, n, now);
            assert!(tag.len() >= 8, "short tag {tag}");
            assert!(seen.insert(tag), "a tag repeated");
        }
    }
    assert_eq!(seen.len(), 10_000);
}
