//! RTP, RTCP and RFC 4733 parsing, and a whole media session, on arbitrary datagrams.
//! Run: `cargo +nightly fuzz run rtp_parse` (from the repository root).
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_media::{Codec, MediaParams, MediaSession, SessionConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ivr_media::rtp::parse_rtp(data);
    let _ = ivr_media::rtcp::parse_rtcp(data);
    let _ = ivr_media::rfc4733::parse_event(data);
    let _ = ivr_media::rfc4733::DtmfReceiver::new().handle(0, data);
    let p = MediaParams {
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt: Some(101),
        ptime: Duration::from_millis(20),
        remote_rtp: SocketAddr::from(([127, 0, 0, 1], 4000)),
        remote_rtcp: None,
    };
    let now = Instant::now();
    if let Ok(mut s) = MediaSession::new(p, SessionConfig::default(), now) {
        // From the negotiated addresses: anything else is dropped unread.
        let _ = s.handle_rtp(data, SocketAddr::from(([127, 0, 0, 1], 4000)), now);
        let _ = s.handle_rtcp(data, SocketAddr::from(([127, 0, 0, 1], 4001)), now);
        let _ = s.poll_output(now);
    }
});
