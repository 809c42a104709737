//! Parse+print throughput of SIP messages (one message = parse a datagram,
//! read the headers a UAS needs, print it back). Criterion reports
//! elements/s = messages per second on one core.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ivr_sip::msg::Message;

const INVITE_HEAD: &str = "INVITE sip:+4533445566@10.0.0.2:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+4533445566@10.0.0.2>\r\n\
From: \"Borger\" <sip:+4512345678@trunk.example.dk>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.trunk.example.dk\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:+4512345678@10.0.0.1:5060>\r\n\
Record-Route: <sip:10.0.0.1;lr>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY\r\n\
Supported: replaces, timer\r\n\
User-Agent: Trunk SBC\r\n\
Content-Type: application/sdp\r\n";

const SDP: &str = "v=0\r\n\
o=- 2890844526 2890844526 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 8 0 9 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=ptime:20\r\n";

fn invite() -> Vec<u8> {
    format!("{INVITE_HEAD}Content-Length: {}\r\n\r\n{SDP}", SDP.len()).into_bytes()
}

const OK: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport=5060;received=10.0.0.1\r\n\
To: <sip:+4533445566@10.0.0.2>;tag=a6c85cf\r\n\
From: \"Borger\" <sip:+4512345678@trunk.example.dk>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.trunk.example.dk\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:ivr@10.0.0.2:5060>\r\n\
Content-Length: 0\r\n\
\r\n";

fn parse_print(bytes: &[u8]) -> usize {
    let m = Message::parse_datagram(bytes).unwrap();
    let h = m.headers();
    let via = h.top_via().unwrap();
    let from = h.from().unwrap();
    let to = h.to().unwrap();
    let cseq = h.cseq().unwrap();
    black_box((&via, &from, &to, &cseq, h.call_id().unwrap()));
    m.to_bytes().len()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_parse_print");
    g.throughput(Throughput::Elements(1));
    let inv = invite();
    g.bench_function("invite_with_sdp", |b| {
        b.iter(|| parse_print(black_box(&inv)))
    });
    g.bench_function("response_200", |b| b.iter(|| parse_print(black_box(OK))));
    g.finish();
}

#[allow(missing_docs)] // reason: criterion's macro generates an undocumented fn
mod group {
    use super::*;
    criterion_group!(benches, bench);
}
use group::benches;
criterion_main!(benches);
