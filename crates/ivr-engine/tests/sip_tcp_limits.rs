//! SIP over TCP cannot be held open by idle or slow peers (issue 14,
//! defect 4, "the same for every listener"): a connection cap, an idle
//! timeout and a whole-message timeout, on real loopback sockets.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use ivr_engine::sip::{SipListenConfig, SipService, TcpLimits};
use ivr_sip::{EndpointConfig, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(limits: TcpLimits) -> (SipService, std::net::SocketAddr) {
    let listen = SipListenConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp_limits: limits,
        ..Default::default()
    };
    let (svc, events) = SipService::start(listen, EndpointConfig::new)
        .await
        .unwrap();
    // Nobody answers calls here; the events are dropped.
    drop(events);
    let addr = svc.handle().local_addr(Transport::Tcp).unwrap();
    (svc, addr)
}

async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 256];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, s.read(&mut b)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response; keep reading
            Err(_) => return false,
        }
    }
}

fn limits() -> TcpLimits {
    TcpLimits {
        max_connections: 4,
        idle_timeout: Duration::from_secs(1),
        message_timeout: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once_and_idle_ones_after_the_idle_timeout() {
    let (_svc, addr) = start(limits()).await;
    let mut conns = Vec::new();
    for _ in 0..10 {
        conns.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = 0;
    for c in conns.iter_mut().skip(4) {
        if closed_within(c, Duration::from_millis(300)).await {
            over += 1;
        }
    }
    assert_eq!(over, 6, "connections beyond the cap of 4 stayed open");
    let t0 = Instant::now();
    for c in conns.iter_mut().take(4) {
        assert!(
            closed_within(c, Duration::from_secs(3)).await,
            "idle connection kept"
        );
    }
    assert!(t0.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn a_peer_that_sends_a_message_slower_than_the_message_timeout_is_cut_off() {
    let (_svc, addr) = start(TcpLimits {
        idle_timeout: Duration::from_secs(30),
        ..limits()
    })
    .await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    // A byte every 200 ms keeps the connection busy but never finishes the head.
    let head = b"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-x\r\n";
    let mut cut = false;
    for chunk in head.chunks(4) {
        if slow.write_all(chunk).await.is_err() {
            cut = true;
            break;
        }
        let mut b = [0u8; 16];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(200), slow.read(&mut b)).await
        {
            cut = true;
            break;
        }
    }
    assert!(cut, "the slow sender was never cut off");
    assert!(t0.elapsed() < Duration::from_secs(3));
}
