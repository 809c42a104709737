//! SIP over TLS through the real sockets, with a throwaway CA made at test
//! time: a call over TLS (our BYE comes back over the caller's connection,
//! Via `SIP/2.0/TLS`, Contact `sips:`), client certificates required,
//! a certificate from an unknown CA refused in both directions, and the
//! handshake timeout and connection cap.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

#[path = "support/tls_pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ivr_engine::sip::{ClientAuth, SipListenConfig, SipService, StreamLimits, Tls, TlsSettings};
use ivr_sip::msg::framer::{Framed, StreamFramer};
use ivr_sip::msg::{Message, DEFAULT_MAX_BODY, DEFAULT_MAX_HEAD};
use ivr_sip::{EndpointConfig, Event, OutgoingCall, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use pki::Pki;

fn settings(p: &Pki, auth: ClientAuth, limits: StreamLimits) -> TlsSettings {
    TlsSettings {
        cert_file: p.server_cert.clone(),
        key_file: p.server_key.clone(),
        ca_file: Some(p.ca.clone()),
        client_auth: auth,
        server_name: String::new(),
        limits,
    }
}

fn limits() -> StreamLimits {
    StreamLimits {
        max_connections: 16,
        handshake_timeout: Duration::from_secs(5),
        idle_timeout: Some(Duration::from_secs(60)),
    }
}

async fn start(s: TlsSettings) -> (SipService, mpsc::Receiver<Event>, SocketAddr) {
    let listen = SipListenConfig {
        tls: vec!["127.0.0.1:0".parse().unwrap()],
        tls_config: Some(Arc::new(Tls::load(&s).unwrap())),
        ..Default::default()
    };
    let (svc, events) = SipService::start(listen, EndpointConfig::new)
        .await
        .unwrap();
    let addr = svc.handle().local_addr(Transport::Tls).unwrap();
    (svc, events, addr)
}

fn client_config(
    p: &Pki,
    cert: Option<(&std::path::Path, &std::path::Path)>,
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&p.ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(c)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(k).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    }
}

type Conn = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(cfg: rustls::ClientConfig, addr: SocketAddr) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
}

/// The next SIP message on the connection, or `None` at its end.
async fn next(conn: &mut Conn, framer: &mut StreamFramer) -> Option<Message> {
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(Framed::Message(m)) = framer.next_message() {
            return Some(*m);
        }
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("no message within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        framer.push(&buf[..n]);
    }
}

fn invite(local: SocketAddr, bot: SocketAddr) -> String {
    let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    format!(
        "INVITE sips:bot@{bot} SIP/2.0\r\n\
         Via: SIP/2.0/TLS {local};branch=z9hG4bK-tls-1\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:trunk@{local}>;tag=trunk1\r\n\
         To: <sips:bot@{bot}>\r\n\
         Call-ID: tls-call-1@test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sips:trunk@{local}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_tls_is_answered_and_our_bye_comes_back_over_the_same_connection() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki::make(dir.path());
    let (svc, mut events, bot) = start(settings(&p, ClientAuth::Required, limits())).await;
    let h = svc.handle();
    // The application: answer, and hang up once the ACK is in.
    let app = tokio::spawn(async move {
        let mut transport = None;
        while let Some(e) = events.recv().await {
            match e {
                Event::IncomingCall {
                    call, transport: t, ..
                } => {
                    transport = Some(t);
                    let sdp = b"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 8\r\n".to_vec();
                    h.answer(call, sdp).await.unwrap();
                }
                Event::CallConfirmed { call, .. } => h.hangup(call).await.unwrap(),
                Event::CallEnded { .. } => return transport,
                _ => {}
            }
        }
        transport
    });
    let cfg = client_config(&p, Some((&p.client_cert, &p.client_key)));
    let mut conn = connect(cfg, bot).await.unwrap();
    let local = conn.get_ref().0.local_addr().unwrap();
    conn.write_all(invite(local, bot).as_bytes()).await.unwrap();
    let mut framer = StreamFramer::new(DEFAULT_MAX_HEAD, DEFAULT_MAX_BODY);
    let ok = loop {
        match next(&mut conn, &mut framer).await.expect("a response") {
            Message::Response(r) if r.status == 200 => break r,
            Message::Response(r) => assert!(r.status < 200, "unexpected {}", r.status),
            Message::Request(r) => panic!("unexpected request {}", r.method),
        }
    };
    let contact = ok.headers.get(&ivr_sip::msg::HeaderName::Contact).unwrap();
    assert!(
        contact.contains("<sips:"),
        "Contact over TLS is a sips: URI: {contact}"
    );
    assert!(contact.contains(&format!(":{}>", bot.port())), "{contact}");
    let to = ok
        .headers
        .get(&ivr_sip::msg::HeaderName::To)
        .unwrap()
        .to_string();
    conn.write_all(
        format!(
            "ACK sips:ivr@{bot} SIP/2.0\r\nVia: SIP/2.0/TLS {local};branch=z9hG4bK-tls-2\r\nMax-Forwards: 70\r\nFrom: <sips:trunk@{local}>;tag=trunk1\r\nTo: {to}\r\nCall-ID: tls-call-1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Our BYE arrives on this connection (not at the Contact's address, where
    // nothing listens).
    let bye = match next(&mut conn, &mut framer).await.expect("our BYE") {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected BYE, got {}", r.status),
    };
    assert_eq!(bye.method, ivr_sip::msg::Method::Bye);
    let via = bye.headers.get(&ivr_sip::msg::HeaderName::Via).unwrap();
    assert!(via.starts_with("SIP/2.0/TLS "), "{via}");
    assert!(via.contains(&format!(":{};", bot.port())), "{via}");
    let resp = ivr_sip::policy::make_response(&bye, 200, None);
    conn.write_all(&resp.to_bytes()).await.unwrap();
    let t = tokio::time::timeout(Duration::from_secs(5), app)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t, Some(Transport::Tls));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_certificate_from_our_roots_are_refused_when_client_auth_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki::make(dir.path());
    let (svc, mut events, bot) = start(settings(&p, ClientAuth::Required, limits())).await;
    for cert in [None, Some((p.rogue_cert.as_path(), p.rogue_key.as_path()))] {
        let cfg = client_config(&p, cert);
        // TLS 1.3: the server's verdict on our certificate arrives after
        // the client's side of the handshake, so it shows on the first read.
        if let Ok(mut conn) = connect(cfg, bot).await {
            let local = conn.get_ref().0.local_addr().unwrap();
            let _ = conn.write_all(invite(local, bot).as_bytes()).await;
            let mut buf = [0u8; 512];
            let r = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
                .await
                .unwrap();
            assert!(matches!(r, Ok(0) | Err(_)), "the engine answered: {r:?}");
        }
    }
    assert!(
        events.try_recv().is_err(),
        "no call reached the application"
    );
    assert_eq!(svc.handle().tls_refused(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_cut_at_the_handshake_timeout_and_the_cap_closes_extra_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki::make(dir.path());
    let tight = StreamLimits {
        max_connections: 1,
        handshake_timeout: Duration::from_millis(300),
        idle_timeout: Some(Duration::from_secs(60)),
    };
    let (svc, _events, bot) = start(settings(&p, ClientAuth::None, tight)).await;
    let t0 = std::time::Instant::now();
    let mut silent = TcpStream::connect(bot).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The one slot is taken: a second connection is closed at once.
    let mut extra = TcpStream::connect(bot).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf))
        .await
        .expect("the extra connection is closed at once");
    assert!(matches!(n, Ok(0) | Err(_)));
    // The silent one is cut when its handshake time is up.
    let n = tokio::time::timeout(Duration::from_secs(3), silent.read(&mut buf))
        .await
        .expect("the silent connection is closed");
    assert!(matches!(n, Ok(0) | Err(_)));
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert_eq!(svc.handle().tls_refused(), 2);
    // And the slot is free again: a real client gets through.
    let conn = connect(client_config(&p, None), bot).await;
    assert!(conn.is_ok(), "{:?}", conn.err());
}

/// A TLS server standing in for a trunk we call; returns how many bytes of
/// SIP it read after a successful handshake.
async fn fake_trunk(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> (SocketAddr, tokio::task::JoinHandle<usize>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            CertificateDer::pem_file_iter(cert)
                .unwrap()
                .map(Result::unwrap)
                .collect(),
            PrivateKeyDer::from_pem_file(key).unwrap(),
        )
        .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let Ok(mut s) = tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
            .accept(tcp)
            .await
        else {
            return 0;
        };
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            _ => 0,
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_call_a_trunk_over_tls_only_when_our_roots_sign_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki::make(dir.path());
    let (svc, _events, _) = start(settings(&p, ClientAuth::None, limits())).await;
    for (cert, key, trusted) in [
        (&p.server_cert, &p.server_key, true),
        (&p.rogue_cert, &p.rogue_key, false),
    ] {
        let (trunk, task) = fake_trunk(cert, key).await;
        let call = OutgoingCall {
            target: ivr_sip::endpoint::sip_uri_for(Some("4512345678"), trunk),
            dest: trunk,
            transport: Transport::Tls,
            from: ivr_sip::endpoint::sip_uri_for(Some("ivr"), trunk),
            offer: None,
            headers: Vec::new(),
        };
        svc.handle().invite(call).await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(8), task)
            .await
            .unwrap()
            .unwrap();
        if trusted {
            assert!(read > 0, "the trusted trunk got our INVITE");
        } else {
            assert_eq!(read, 0, "nothing was sent to a trunk our roots do not sign");
        }
    }
}
