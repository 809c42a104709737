//! What the endpoint says about itself: a `Server` header without a version
//! (or none at all when configured empty), and only option tags it
//! implements in `Supported` (`replaces` is not implemented, so it is neither
//! advertised nor accepted in `Require`).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::Instant;

use ivr_sip::msg::{HeaderName as H, Message, Response};
use ivr_sip::{Endpoint, EndpointConfig, Event};

const PEER: &str = "192.0.2.50:5060";
const US: &str = "192.0.2.10:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn request(method: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} sip:bot@{US} SIP/2.0\r\nVia: SIP/2.0/UDP {PEER};branch=z9hG4bK{method}1\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{PEER}>;tag=p1\r\nTo: <sip:bot@{US}>\r\nCall-ID: {method}1@{PEER}\r\nCSeq: 1 {method}\r\nContact: <sip:probe@{PEER}>\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn responses(ep: &mut Endpoint) -> Vec<Response> {
    std::iter::from_fn(|| ep.poll_transmit())
        .filter_map(|t| match Message::parse_datagram(&t.bytes).unwrap() {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        })
        .collect()
}

fn endpoint(user_agent: Option<&str>) -> Endpoint {
    let mut c = EndpointConfig::new(addr(US));
    if let Some(ua) = user_agent {
        c.user_agent = ua.into();
    }
    Endpoint::new(c)
}

/// The final responses to an OPTIONS and to an answered INVITE.
fn options_and_answer(ep: &mut Endpoint) -> Vec<Response> {
    let now = Instant::now();
    ep.handle_datagram(addr(PEER), &request("OPTIONS", "", ""), now);
    ep.handle_datagram(
        addr(PEER),
        &request("INVITE", "Content-Type: application/sdp\r\n", SDP),
        now,
    );
    let mut got = responses(ep);
    while let Some(ev) = ep.poll_event() {
        if let Event::IncomingCall { call, .. } = ev {
            ep.answer(call, SDP.as_bytes().to_vec(), now).unwrap();
        }
    }
    got.extend(responses(ep));
    got.retain(|r| r.status >= 200);
    assert_eq!(got.len(), 2, "expected 200 to OPTIONS and 200 to INVITE");
    got
}

#[test]
fn the_server_header_names_no_version_by_default() {
    let mut ep = endpoint(None);
    for r in options_and_answer(&mut ep) {
        let server = r.headers.get(&H::Server).expect("a Server header");
        assert_eq!(server, "ivr-sip");
    }
}

#[test]
fn a_configured_server_header_is_sent_as_given_and_an_empty_one_not_at_all() {
    let mut ep = endpoint(Some("kommune-ivr"));
    for r in options_and_answer(&mut ep) {
        assert_eq!(r.headers.get(&H::Server), Some("kommune-ivr"));
    }
    let mut ep = endpoint(Some(""));
    for r in options_and_answer(&mut ep) {
        assert_eq!(r.status, 200);
        assert!(r.headers.get(&H::Server).is_none(), "{:?}", r.headers);
    }
}

#[test]
fn replaces_is_neither_advertised_nor_accepted() {
    let mut ep = endpoint(None);
    for r in options_and_answer(&mut ep) {
        let supported = r.headers.tokens(&H::Supported).unwrap();
        assert!(
            !supported.iter().any(|t| t.eq_ignore_ascii_case("replaces")),
            "{supported:?}"
        );
    }
    let mut ep = endpoint(None);
    ep.handle_datagram(
        addr(PEER),
        &request(
            "INVITE",
            "Require: replaces\r\nContent-Type: application/sdp\r\n",
            SDP,
        ),
        Instant::now(),
    );
    let finals: Vec<Response> = responses(&mut ep)
        .into_iter()
        .filter(|r| r.status >= 200)
        .collect();
    assert_eq!(finals.len(), 1);
    assert_eq!(finals[0].status, 420);
    assert_eq!(finals[0].headers.get(&H::Unsupported), Some("replaces"));
}
