//! Inbound access by trunk (issue 14, defects 2 and 6): who may open a
//! dialog, with which credentials, how many calls and how fast, driven on
//! the sans-IO endpoint with time passed in.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_sip::auth::{self, Challenge as DigestChallenge};
use ivr_sip::guard::{IpNet, RateLimit, TrunkAccess, TrunkCredentials, UnknownSource};
use ivr_sip::msg::{HeaderName as H, Message};
use ivr_sip::{Endpoint, EndpointConfig, Event};

const US: &str = "192.0.2.1:5060";
const TRUNK: &str = "198.51.100.10:5060";
const STRANGER: &str = "203.0.113.66:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn invite(from: SocketAddr, n: u32, number: &str, extra: &str) -> Vec<u8> {
    format!(
        "INVITE sip:{number}@192.0.2.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-t{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+4512345678@{from}>;tag=f{n}\r\n\
         To: <sip:{number}@192.0.2.1>\r\n\
         Call-ID: scan-{n}@{from}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:caller@{from}>\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn trunk(name: &str, nets: &[&str]) -> TrunkAccess {
    TrunkAccess {
        name: name.into(),
        allow: nets.iter().map(|n| n.parse::<IpNet>().unwrap()).collect(),
        ..Default::default()
    }
}

fn endpoint(trunks: Vec<TrunkAccess>, unknown: UnknownSource) -> Endpoint {
    let mut cfg = EndpointConfig::new(addr(US));
    cfg.trunks = Some(trunks);
    cfg.unknown_sources = unknown;
    Endpoint::new(cfg)
}

/// Status codes sent to `to` (responses only).
fn statuses(ep: &mut Endpoint, to: SocketAddr) -> Vec<u16> {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        if t.dest != to {
            continue;
        }
        if let Ok(Message::Response(r)) = Message::parse_datagram(&t.bytes) {
            out.push(r.status);
        }
    }
    out
}

fn incoming_trunks(ep: &mut Endpoint) -> Vec<Option<String>> {
    std::iter::from_fn(|| ep.poll_event())
        .filter_map(|e| match e {
            Event::IncomingCall { trunk, .. } => Some(trunk),
            _ => None,
        })
        .collect()
}

#[test]
fn a_scan_from_outside_the_trunks_gets_the_same_403_for_every_number_and_no_call() {
    let mut ep = endpoint(
        vec![trunk("sbc", &["198.51.100.0/28"])],
        UnknownSource::Forbidden,
    );
    let t0 = Instant::now();
    let (s, mut seen) = (addr(STRANGER), Vec::new());
    for (n, number) in ["+4570101010", "+4570202020", "+4599999999"]
        .iter()
        .enumerate()
    {
        ep.handle_datagram(s, &invite(s, n as u32, number, ""), t0);
        seen.push(statuses(&mut ep, s));
    }
    assert_eq!(
        seen,
        vec![vec![403]; 3],
        "a number that exists must not answer differently"
    );
    assert!(incoming_trunks(&mut ep).is_empty());
    assert_eq!(ep.guard_stats().forbidden, 3);
}

#[test]
fn silence_towards_strangers_sends_nothing_at_all() {
    let mut ep = endpoint(
        vec![trunk("sbc", &["198.51.100.10"])],
        UnknownSource::Silence,
    );
    let s = addr(STRANGER);
    ep.handle_datagram(s, &invite(s, 1, "+4570101010", ""), Instant::now());
    assert!(ep.poll_transmit().is_none());
    assert!(incoming_trunks(&mut ep).is_empty());
    assert_eq!(ep.guard_stats().ignored, 1);
}

#[test]
fn a_call_from_a_trunk_address_carries_the_trunk_name() {
    let mut ep = endpoint(
        vec![
            trunk("other", &["10.0.0.0/8"]),
            trunk("sbc", &["198.51.100.0/28"]),
        ],
        UnknownSource::Forbidden,
    );
    let t = addr(TRUNK);
    ep.handle_datagram(t, &invite(t, 1, "+4570101010", ""), Instant::now());
    assert_eq!(statuses(&mut ep, t), vec![100]);
    assert_eq!(incoming_trunks(&mut ep), vec![Some("sbc".to_string())]);
}

#[test]
fn a_flood_from_outside_takes_no_tokens_from_the_trunks_bucket() {
    let mut sbc = trunk("sbc", &["198.51.100.10"]);
    sbc.rate = Some(RateLimit {
        per_second: 5.0,
        burst: 5.0,
        max_sources: 1,
    });
    let mut ep = endpoint(vec![sbc], UnknownSource::Forbidden);
    let t0 = Instant::now();
    // 2,000 INVITEs in one second from 20 spoofed outside sources.
    for n in 0..2000u32 {
        let s: SocketAddr = format!("203.0.113.{}:5060", n % 20).parse().unwrap();
        let at = t0 + Duration::from_micros(u64::from(n) * 500);
        ep.handle_datagram(s, &invite(s, n, "+4570101010", ""), at);
        while ep.poll_transmit().is_some() {}
    }
    assert!(
        ep.guard_stats().rate_limited > 0,
        "the outside limiter did nothing"
    );
    // The trunk's whole burst is still there.
    let t = addr(TRUNK);
    let at = t0 + Duration::from_secs(1);
    for n in 0..5u32 {
        ep.handle_datagram(t, &invite(t, 10_000 + n, "+4570101010", ""), at);
    }
    assert_eq!(incoming_trunks(&mut ep).len(), 5);
    // Its own limit holds: the sixth at the same instant is dropped.
    ep.handle_datagram(t, &invite(t, 10_010, "+4570101010", ""), at);
    assert!(incoming_trunks(&mut ep).is_empty());
}

#[test]
fn a_trunk_over_its_own_call_limit_gets_503_while_another_trunk_still_gets_through() {
    let mut a = trunk("a", &["198.51.100.10"]);
    a.max_calls = 2;
    let b = trunk("b", &["198.51.100.20"]);
    let mut ep = endpoint(vec![a, b], UnknownSource::Forbidden);
    let now = Instant::now();
    let ta = addr(TRUNK);
    for n in 0..3u32 {
        ep.handle_datagram(ta, &invite(ta, n, "+4570101010", ""), now);
    }
    assert_eq!(statuses(&mut ep, ta), vec![100, 100, 503]);
    let tb = addr("198.51.100.20:5060");
    ep.handle_datagram(tb, &invite(tb, 9, "+4570101010", ""), now);
    assert_eq!(statuses(&mut ep, tb), vec![100]);
    assert_eq!(ep.guard_stats().trunk_busy, 1);
}

#[test]
fn a_trunk_with_credentials_is_challenged_and_admitted_only_with_the_right_password() {
    let mut sbc = trunk("sbc", &["198.51.100.10"]);
    sbc.digest = Some(TrunkCredentials {
        username: "nordby".into(),
        password: "s3cret-trunk".into(),
    });
    let mut ep = endpoint(vec![sbc], UnknownSource::Forbidden);
    let now = Instant::now();
    let t = addr(TRUNK);
    ep.handle_datagram(t, &invite(t, 1, "+4570101010", ""), now);
    let mut challenge = None;
    while let Some(tx) = ep.poll_transmit() {
        if let Ok(Message::Response(r)) = Message::parse_datagram(&tx.bytes) {
            assert_eq!(r.status, 401);
            let v = r.headers.get(&H::WwwAuthenticate).unwrap().to_string();
            challenge = Some(DigestChallenge::parse(&v).unwrap());
        }
    }
    let challenge = challenge.expect("a 401 with a challenge");
    let uri = "sip:+4570101010@192.0.2.1:5060";
    let answer = |password: &str| {
        let req = auth::Request {
            method: "INVITE",
            uri,
            body: b"",
        };
        auth::respond(&challenge, &req, "nordby", password, "c0ffee", 1)
            .unwrap()
            .to_string()
    };
    let wrong = format!("Authorization: {}\r\n", answer("guess"));
    ep.handle_datagram(t, &invite(t, 2, "+4570101010", &wrong), now);
    assert_eq!(statuses(&mut ep, t), vec![401]);
    assert!(incoming_trunks(&mut ep).is_empty());
    let right = format!("Authorization: {}\r\n", answer("s3cret-trunk"));
    ep.handle_datagram(t, &invite(t, 3, "+4570101010", &right), now);
    assert_eq!(statuses(&mut ep, t), vec![100]);
    assert_eq!(incoming_trunks(&mut ep), vec![Some("sbc".to_string())]);
}

#[test]
fn a_spoofed_invite_and_ack_from_outside_the_trunks_get_back_less_than_they_sent() {
    let mut ep = endpoint(
        vec![trunk("sbc", &["198.51.100.10"])],
        UnknownSource::Forbidden,
    );
    let s = addr(STRANGER);
    let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.99\r\ns=-\r\nc=IN IP4 192.0.2.99\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let invite = String::from_utf8(invite(
        s,
        1,
        "+4570101010",
        "Content-Type: application/sdp\r\n",
    ))
    .unwrap()
    .replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()),
    );
    let ack = "ACK sip:+4570101010@192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.66:5060;branch=z9hG4bK-a1\r\n\
               Max-Forwards: 70\r\nFrom: <sip:+4512345678@203.0.113.66>;tag=f1\r\nTo: <sip:+4570101010@192.0.2.1>;tag=guess\r\n\
               Call-ID: scan-1@203.0.113.66:5060\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
    let now = Instant::now();
    let bytes_in = invite.len() + ack.len();
    ep.handle_datagram(s, invite.as_bytes(), now);
    ep.handle_datagram(s, ack.as_bytes(), now);
    let mut bytes_out = 0;
    for secs in 0..40 {
        ep.handle_timeout(now + Duration::from_secs(secs));
        while let Some(t) = ep.poll_transmit() {
            bytes_out += t.bytes.len();
        }
    }
    assert!(incoming_trunks(&mut ep).is_empty());
    assert!(
        bytes_out < bytes_in,
        "{bytes_out} bytes out for {bytes_in} in: an amplifier"
    );
}
