//! Slow and idle HTTP clients cannot take the engine's HTTP port (issue 14,
//! defect 4: 20,000 idle connections used to exhaust file descriptors, so
//! /health timed out). Real sockets on loopback; the limits are the
//! listener's ([`ivr_engine::http::serve`]), the route a stand-in.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use ivr_engine::http::{serve, ServeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

async fn start(limits: ServeLimits) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = Router::new().route("/health", get(|| async { "ok\n" }));
    tokio::spawn(serve(l, app, limits, std::future::pending()));
    addr
}

/// A connection from a chosen loopback address (127.0.0.0/8 is all ours).
async fn connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    s.connect(to).await.unwrap()
}

/// The response to GET /health; empty when the connection was refused or
/// closed unanswered.
async fn health(to: SocketAddr) -> String {
    let mut out = String::new();
    let Ok(mut s) = TcpStream::connect(to).await else {
        return out;
    };
    let req = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if s.write_all(req).await.is_ok() && s.read_to_string(&mut out).await.is_err() {
        out.clear();
    }
    out
}

/// Whether the server closes `s` within `within` (read gives EOF or a reset).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut b)).await,
        Ok(Ok(0) | Err(_))
    )
}

fn limits() -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        max_connections: 64,
        max_connections_per_ip: 8,
    }
}

#[tokio::test]
async fn health_answers_while_one_address_holds_hundreds_of_idle_connections() {
    let addr = start(limits()).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(connect_from("127.0.0.2", addr).await);
    }
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(2), health(addr))
        .await
        .expect("/health answers while idle connections are open");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Beyond its 8, the address's connections were closed at once.
    let mut closed = 0;
    for s in idle.iter_mut().skip(8) {
        if closed_within(s, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed,
        300 - 8,
        "connections over the per-address cap stay open"
    );
}

#[tokio::test]
async fn a_client_that_sends_half_a_request_head_is_closed_after_the_header_timeout() {
    let addr = start(limits()).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let t0 = Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(4)).await,
        "slow head kept open"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(4)).await,
        "idle connection kept open"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "closed before its timeout"
    );
}

#[tokio::test]
async fn when_every_slot_is_taken_by_idle_clients_health_answers_once_they_time_out() {
    let addr = start(limits()).await;
    let mut idle = Vec::new();
    for i in 0..80 {
        // 10 addresses x 8: more than the 64 slots in all.
        let ip = format!("127.0.1.{}", 1 + i % 10);
        idle.push(connect_from(&ip, addr).await);
    }
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let r = health(addr).await;
            if r.starts_with("HTTP/1.1 200") {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("/health answers once the idle clients time out");
    assert!(r.contains("ok"));
    assert!(t0.elapsed() < Duration::from_secs(5));
}
