//! Network input never panics: random and mutated datagrams through the RTP,
//! RTCP and RFC 4733 parsers and through a whole `MediaSession`.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_media::rfc4733::{parse_event, DtmfReceiver};
use ivr_media::rtcp::{build_report, parse_rtcp, ReportBlock, SenderInfo};
use ivr_media::rtp::{build_rtp, parse_rtp};
use ivr_media::{Codec, MediaParams, MediaSession, SessionConfig};
use proptest::prelude::*;

/// The far end's negotiated RTP address.
const RTP_FROM: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4000);
/// Its RTCP address (RTP port + 1).
const RTCP_FROM: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4001);

fn session() -> MediaSession {
    let p = MediaParams {
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt: Some(101),
        ptime: Duration::from_millis(20),
        remote_rtp: RTP_FROM,
        remote_rtcp: None,
    };
    MediaSession::new(p, SessionConfig::default(), Instant::now()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_rtp(&bytes);
        let _ = parse_rtcp(&bytes);
        let _ = parse_event(&bytes);
        let _ = DtmfReceiver::new().handle(0, &bytes);
        let mut s = session();
        let now = Instant::now();
        // From the negotiated addresses (anything else is dropped unread):
        // the parsers behind the address check see the bytes.
        let _ = s.handle_rtp(&bytes, RTP_FROM, now);
        let _ = s.handle_rtcp(&bytes, RTCP_FROM, now);
        let _ = s.handle_rtp(&bytes, SocketAddr::from(([10, 0, 0, 1], 9)), now);
        let _ = s.poll_output(now);
    }

    #[test]
    fn mutated_valid_rtp_and_rtcp(flip in proptest::collection::vec((0usize..200, any::<u8>()), 1..6), cut in 0usize..200) {
        let mut rtp = [0u8; 200];
        let n = build_rtp(&mut rtp, 101, true, 1, 2, 3, &[1, 0x8a, 0, 160]).unwrap();
        let mut rtcp = [0u8; 200];
        let m = build_report(&mut rtcp, 1, Some(SenderInfo::default()), Some(ReportBlock::default()), b"cname").unwrap();
        for (i, v) in &flip {
            rtp[i % n] ^= v;
            rtcp[i % m] ^= v;
        }
        let mut s = session();
        let now = Instant::now();
        let _ = s.handle_rtp(&rtp[..n.min(cut.max(1))], RTP_FROM, now);
        let _ = s.handle_rtp(&rtp[..n], RTP_FROM, now);
        let _ = s.handle_rtcp(&rtcp[..m], RTCP_FROM, now);
        let _ = s.handle_rtcp(&rtcp[..m.min(cut)], RTCP_FROM, now);
        let _ = s.poll_output(now);
    }
}
