//! The SIP transport over real loopback sockets: one service places a call,
//! another answers it (UDP and TCP, IPv4 and IPv6), then the caller hangs up.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivr_engine::sip::{answer_calls, AnswerStats, FixedPcmaAnswer, SipListenConfig, SipService};
use ivr_sip::endpoint::sip_uri_for;
use ivr_sip::{EndpointConfig, Event, OutgoingCall, Transport};

async fn next_event(
    rx: &mut tokio::sync::mpsc::Receiver<Event>,
    f: impl Fn(&Event) -> bool,
) -> Event {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let e = rx.recv().await.expect("event channel closed");
            if f(&e) {
                return e;
            }
        }
    })
    .await
    .expect("bounded wait for event expired")
}

async fn call_round_trip(ip: &str, transport: Transport) {
    let any: SocketAddr = format!("{ip}:0").parse().unwrap();
    let listen = SipListenConfig {
        udp: vec![any],
        tcp: vec![any],
        advertised: None,
        ..Default::default()
    };
    let cfg = |a| EndpointConfig::new(a);
    let (bot, bot_events) = SipService::start(listen.clone(), cfg).await.unwrap();
    let (caller, mut caller_events) = SipService::start(listen, cfg).await.unwrap();
    let stats = Arc::new(Mutex::new(AnswerStats::default()));
    let answer = FixedPcmaAnswer {
        ip: any.ip(),
        port: 40000,
    };
    tokio::spawn(answer_calls(
        bot.handle(),
        bot_events,
        answer,
        stats.clone(),
    ));

    let bot_addr = bot.handle().local_addr(transport).unwrap();
    let me = caller.handle().local_addr(transport).unwrap();
    let mut target = sip_uri_for(Some("bot"), bot_addr);
    if transport == Transport::Tcp {
        if let ivr_sip::msg::Uri::Sip(s) = &mut target {
            s.params.set("transport", Some("tcp".into()));
        }
    }
    let call = caller
        .handle()
        .invite(OutgoingCall {
            target,
            dest: bot_addr,
            transport,
            from: sip_uri_for(Some("caller"), me),
            offer: Some(b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 8\r\n".to_vec()),
            headers: vec![],
        })
        .await
        .unwrap();
    let answered = next_event(&mut caller_events, |e| {
        matches!(e, Event::CallAnswered { .. })
    })
    .await;
    let Event::CallAnswered {
        answer: Some(sdp), ..
    } = answered
    else {
        panic!("{answered:?}")
    };
    assert!(String::from_utf8(sdp).unwrap().contains("PCMA/8000"));
    caller.handle().hangup(call).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while stats.lock().unwrap().ended_by_peer == 0 {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("bot never saw the BYE");
    let s = *stats.lock().unwrap();
    assert_eq!(
        (s.incoming, s.answered, s.confirmed, s.ended_by_peer),
        (1, 1, 1, 1)
    );
    assert_eq!(bot.handle().call_count(), 0);
}

#[tokio::test]
async fn udp_ipv4_call_is_answered_and_hung_up() {
    call_round_trip("127.0.0.1", Transport::Udp).await;
}

#[tokio::test]
async fn tcp_ipv4_call_is_answered_and_hung_up() {
    call_round_trip("127.0.0.1", Transport::Tcp).await;
}

#[tokio::test]
async fn udp_ipv6_call_is_answered_and_hung_up() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        panic!("IPv6 loopback unavailable on this machine: cannot test IPv6 transport");
    }
    call_round_trip("[::1]", Transport::Udp).await;
}

#[tokio::test]
async fn unspecified_advertised_address_is_refused() {
    let listen = SipListenConfig {
        udp: vec!["0.0.0.0:0".parse().unwrap()],
        tcp: vec![],
        advertised: None,
        ..Default::default()
    };
    let r = SipService::start(listen, EndpointConfig::new).await;
    assert!(matches!(
        r,
        Err(ivr_engine::sip::SipTransportError::UnspecifiedAdvertised(_))
    ));
}
