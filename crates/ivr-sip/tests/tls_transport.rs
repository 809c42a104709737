//! The endpoint over TLS, sans-IO: Via `SIP/2.0/TLS` with the TLS port, a
//! Contact that is `sips:` for a `sips:` Request-URI and `sip:...;transport=tls`
//! otherwise (RFC 3261 sec. 12.1.1, RFC 5630), and our in-dialog requests
//! sent back to the connection the call came in on, not to the Contact.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::Instant;

use ivr_sip::msg::{HeaderName as H, Message};
use ivr_sip::{Endpoint, EndpointConfig, Event, Transport};

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n";

fn endpoint() -> Endpoint {
    let mut cfg = EndpointConfig::new("192.0.2.1:5060".parse().unwrap());
    cfg.advertised_tls = Some("192.0.2.1:5061".parse().unwrap());
    Endpoint::new(cfg)
}

/// The trunk's connection: its source port, not the Contact's 5061.
fn conn() -> SocketAddr {
    "192.0.2.7:41234".parse().unwrap()
}

fn invite(ruri: &str) -> Message {
    Message::parse(
        format!(
            "INVITE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK-tls-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:trunk@192.0.2.7>;tag=f{n}\r\n\
             To: <{ruri}>\r\n\
             Call-ID: tls-{n}@192.0.2.7\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:trunk@192.0.2.7:5061;transport=tls>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{SDP}",
            SDP.len(),
            n = ruri.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

/// Answers an INVITE to `ruri` over TLS; returns the 200's Contact.
fn answered_contact(ep: &mut Endpoint, ruri: &str, now: Instant) -> String {
    ep.handle_message(Transport::Tls, conn(), invite(ruri), now);
    let call = loop {
        match ep.poll_event() {
            Some(Event::IncomingCall {
                call, transport, ..
            }) => {
                assert_eq!(transport, Transport::Tls);
                break call;
            }
            Some(_) => {}
            None => panic!("no IncomingCall"),
        }
    };
    ep.answer(call, SDP.as_bytes().to_vec(), now).unwrap();
    let mut contact = None;
    while let Some(t) = ep.poll_transmit() {
        assert_eq!((t.transport, t.dest), (Transport::Tls, conn()));
        if let Ok(Message::Response(r)) = Message::parse(&t.bytes) {
            if r.status == 200 {
                contact = r.headers.get(&H::Contact).map(str::to_string);
            }
        }
    }
    contact.expect("a 200 with a Contact")
}

#[test]
fn over_tls_the_contact_is_sips_only_for_a_sips_request_uri() {
    let now = Instant::now();
    let mut ep = endpoint();
    assert_eq!(
        answered_contact(&mut ep, "sips:+4570101010@192.0.2.1", now),
        "<sips:ivr@192.0.2.1:5061>"
    );
    assert_eq!(
        answered_contact(&mut ep, "sip:+4570101010@192.0.2.1:5061;transport=tls", now),
        "<sip:ivr@192.0.2.1:5061;transport=tls>"
    );
}

#[test]
fn over_tls_our_bye_goes_back_over_the_calls_connection_with_a_tls_via() {
    let now = Instant::now();
    let mut ep = endpoint();
    let ruri = "sips:+4570101010@192.0.2.1";
    ep.handle_message(Transport::Tls, conn(), invite(ruri), now);
    let Some(Event::IncomingCall { call, .. }) = ep.poll_event() else {
        panic!("no IncomingCall");
    };
    ep.answer(call, SDP.as_bytes().to_vec(), now).unwrap();
    let mut to = String::new();
    while let Some(t) = ep.poll_transmit() {
        if let Ok(Message::Response(r)) = Message::parse(&t.bytes) {
            to = r.headers.get(&H::To).unwrap().to_string();
        }
    }
    let ack = format!(
        "ACK sips:ivr@192.0.2.1:5061 SIP/2.0\r\n\
         Via: SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK-ack\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:trunk@192.0.2.7>;tag=f{n}\r\n\
         To: {to}\r\n\
         Call-ID: tls-{n}@192.0.2.7\r\n\
         CSeq: 1 ACK\r\n\
         Content-Length: 0\r\n\r\n",
        n = ruri.len()
    );
    ep.handle_message(
        Transport::Tls,
        conn(),
        Message::parse(ack.as_bytes()).unwrap(),
        now,
    );
    while ep.poll_event().is_some() {}
    ep.hangup(call, now).unwrap();
    let bye = ep.poll_transmit().expect("a BYE");
    assert_eq!(
        (bye.transport, bye.dest),
        (Transport::Tls, conn()),
        "to the connection, not the Contact's 192.0.2.7:5061"
    );
    let Message::Request(r) = Message::parse(&bye.bytes).unwrap() else {
        panic!("a request");
    };
    let via = r.headers.get(&H::Via).unwrap();
    assert!(via.starts_with("SIP/2.0/TLS 192.0.2.1:5061;"), "{via}");
}
