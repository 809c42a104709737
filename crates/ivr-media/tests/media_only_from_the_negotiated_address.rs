//! Issue 14, defect 1: a call's media cannot be taken over. The session takes
//! RTP only from the address the SDP negotiated and RTCP only from the
//! negotiated RTCP address; a stranger's packets are counted and dropped (its
//! RFC 4733 keys never become keypresses, its audio is never decoded), also
//! when the caller sends nothing, and no silence lets another source take
//! over. With `[media] latch` on, the session latches once to the first
//! source on the negotiated IP (any port) and never moves while the call is up;
//! only a re-INVITE (`set_remote`) moves the accepted address. Simulated time,
//! no sockets.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ivr_core::{Dtmf, Pcm};
use ivr_media::rtp::LatchPolicy;
use ivr_media::{
    Codec, MediaError, MediaEvent, MediaParams, MediaSession, Output, PacketKind, PlayOptions,
    SessionConfig,
};

/// The caller's RTP address in the SDP.
fn caller_rtp() -> SocketAddr {
    "192.0.2.10:4000".parse().unwrap()
}

fn params(remote_rtp: SocketAddr, remote_rtcp: Option<SocketAddr>) -> MediaParams {
    MediaParams {
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt: Some(101),
        ptime: Duration::from_millis(20),
        remote_rtp,
        remote_rtcp,
    }
}

/// The engine's session, negotiated with the caller at `caller_rtp()`.
fn bot(t0: Instant, latch: bool) -> MediaSession {
    bot_with(params(caller_rtp(), None), t0, latch)
}

fn bot_with(p: MediaParams, t0: Instant, latch: bool) -> MediaSession {
    let cfg = SessionConfig {
        ssrc: 1,
        latch: LatchPolicy {
            nat: latch,
            ..Default::default()
        },
        ..Default::default()
    };
    MediaSession::new(p, cfg, t0).unwrap()
}

/// A peer (the caller or a stranger) that will press `keys` and say `audio`.
fn peer(ssrc: u32, t0: Instant, keys: &[Dtmf], audio: bool) -> MediaSession {
    // Each peer's stream goes on where the last one stopped (a caller who
    // comes back continues its timeline; a stranger's is its own).
    static STREAM: AtomicU32 = AtomicU32::new(1);
    let n = STREAM.fetch_add(1, Ordering::Relaxed);
    let cfg = SessionConfig {
        ssrc,
        initial_seq: (n * 1000) as u16,
        initial_ts: n * 1_000_000,
        ..Default::default()
    };
    let mut s =
        MediaSession::new(params("198.51.100.1:20000".parse().unwrap(), None), cfg, t0).unwrap();
    for k in keys {
        s.send_dtmf(*k).unwrap();
    }
    if audio {
        // Loud enough to be speech to the VAD if it were ever decoded.
        let tone: Vec<i16> = (0..16_000)
            .map(|i| ((i as f64 * 0.2).sin() * 12_000.0) as i16)
            .collect();
        s.play(&Pcm::new(8000, tone), PlayOptions { barge_in: false })
            .unwrap();
    }
    s
}

#[derive(Default)]
struct Seen {
    events: Vec<MediaEvent>,
    rtp_to: Vec<SocketAddr>,
    rtcp_to: Vec<SocketAddr>,
}

fn drain_bot(b: &mut MediaSession, now: Instant, seen: &mut Seen) -> Instant {
    loop {
        match b.poll_output(now) {
            Output::Transmit(t) => match t.kind {
                PacketKind::Rtp => seen.rtp_to.push(t.to),
                PacketKind::Rtcp => seen.rtcp_to.push(t.to),
            },
            Output::Event(e) => seen.events.push(e),
            Output::Timeout(at) => return at,
        }
    }
}

/// Runs the bot for `dur` from `start`; `from` (if any) sends from its RTP
/// address (and RTCP from the port above) to the bot.
fn run(
    bot: &mut MediaSession,
    mut from: Option<(&mut MediaSession, SocketAddr)>,
    start: Instant,
    dur: Duration,
    seen: &mut Seen,
) -> Vec<Result<(), MediaError>> {
    let mut results = Vec::new();
    let mut now = start;
    while now < start + dur {
        let tb = drain_bot(bot, now, seen);
        let mut next = tb;
        if let Some((p, addr)) = from.as_mut() {
            loop {
                match p.poll_output(now) {
                    Output::Transmit(t) => {
                        let bytes = t.bytes.to_vec();
                        let r = match t.kind {
                            PacketKind::Rtp => bot.handle_rtp(&bytes, *addr, now),
                            PacketKind::Rtcp => bot.handle_rtcp(
                                &bytes,
                                SocketAddr::new(addr.ip(), addr.port() + 1),
                                now,
                            ),
                        };
                        results.push(r);
                    }
                    Output::Event(_) => {}
                    Output::Timeout(at) => {
                        next = next.min(at);
                        break;
                    }
                }
            }
        }
        now = next;
    }
    results
}

fn keys(seen: &Seen) -> Vec<Dtmf> {
    seen.events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf(k) => Some(*k),
            _ => None,
        })
        .collect()
}

fn heard_speech(seen: &Seen) -> bool {
    seen.events
        .iter()
        .any(|e| matches!(e, MediaEvent::SpeechStarted | MediaEvent::Utterance(_)))
}

#[test]
fn a_strangers_keys_and_audio_are_dropped_while_the_caller_sends_nothing() {
    let t0 = Instant::now();
    let mut b = bot(t0, false);
    let mut seen = Seen::default();
    // The caller keys by SIP INFO and sends no RTP; a stranger on another
    // host, then on the caller's host but another port, sends keys and audio.
    let stranger_addrs = [
        "203.0.113.66:4000".parse().unwrap(),
        "192.0.2.10:4002".parse().unwrap(),
    ];
    let mut at = t0;
    for addr in stranger_addrs {
        let mut stranger = peer(99, at, &[Dtmf::D1, Dtmf::D9], true);
        let results = run(
            &mut b,
            Some((&mut stranger, addr)),
            at,
            Duration::from_secs(3),
            &mut seen,
        );
        assert!(results.iter().all(|r| *r == Err(MediaError::ForeignSource)));
        at += Duration::from_secs(3);
    }
    assert_eq!(
        keys(&seen),
        [],
        "a stranger's RFC 4733 keys are not keypresses"
    );
    assert!(!heard_speech(&seen), "a stranger's audio is not decoded");
    let s = b.stats();
    assert_eq!(s.packets_received, 0);
    assert!(s.packets_foreign >= 2 * 150, "{s:?}");
    assert!(
        seen.rtp_to.iter().all(|a| *a == caller_rtp()),
        "RTP only ever goes to the negotiated address"
    );
    assert!(seen
        .rtcp_to
        .iter()
        .all(|a| *a == "192.0.2.10:4001".parse().unwrap()));
}

#[test]
fn a_stranger_cannot_take_over_after_the_caller_goes_quiet() {
    let t0 = Instant::now();
    let mut b = bot(t0, false);
    let mut seen = Seen::default();
    // The caller sends for 2 s (one key), then goes silent (hold, silence suppression).
    let mut caller = peer(2, t0, &[Dtmf::D5], false);
    run(
        &mut b,
        Some((&mut caller, caller_rtp())),
        t0,
        Duration::from_secs(2),
        &mut seen,
    );
    assert_eq!(keys(&seen), [Dtmf::D5]);
    // 3 s later, a stranger sends keys and speech for 3 s.
    let at = t0 + Duration::from_secs(5);
    run(
        &mut b,
        None,
        t0 + Duration::from_secs(2),
        Duration::from_secs(3),
        &mut seen,
    );
    let mut stranger = peer(99, at, &[Dtmf::Star, Dtmf::D0], true);
    let results = run(
        &mut b,
        Some((&mut stranger, "203.0.113.66:31000".parse().unwrap())),
        at,
        Duration::from_secs(3),
        &mut seen,
    );
    assert!(results.iter().all(|r| *r == Err(MediaError::ForeignSource)));
    assert_eq!(keys(&seen), [Dtmf::D5], "only the caller's key");
    assert!(!heard_speech(&seen));
    assert!(seen.rtp_to.iter().all(|a| *a == caller_rtp()));
    assert!(b.stats().packets_foreign > 100);
    // The caller comes back: its keys count again.
    let at = at + Duration::from_secs(3);
    let mut caller = peer(2, at, &[Dtmf::Hash], false);
    run(
        &mut b,
        Some((&mut caller, caller_rtp())),
        at,
        Duration::from_secs(1),
        &mut seen,
    );
    assert_eq!(keys(&seen), [Dtmf::D5, Dtmf::Hash]);
}

#[test]
fn a_strangers_rtcp_is_dropped_and_reports_stay_with_the_negotiated_rtcp_address() {
    let t0 = Instant::now();
    // The SDP had a=rtcp:4100.
    let rtcp: SocketAddr = "192.0.2.10:4100".parse().unwrap();
    let mut b = bot_with(params(caller_rtp(), Some(rtcp)), t0, false);
    let mut seen = Seen::default();
    drain_bot(&mut b, t0, &mut seen);
    let mut report = [0u8; 128];
    let block = ivr_media::rtcp::ReportBlock {
        ssrc: 1,
        fraction_lost: 77,
        cumulative_lost: 5,
        ext_highest_seq: 10,
        jitter: 300,
        last_sr: 0,
        delay_since_last_sr: 0,
    };
    let n = ivr_media::rtcp::build_report(&mut report, 99, None, Some(block), b"x").unwrap();
    // From another host, from RTP port + 1 (not negotiated: a=rtcp said 4100),
    // and RTCP-muxed on the RTP port from a stranger: all dropped.
    for from in ["203.0.113.66:4101", "192.0.2.10:4001"] {
        let r = b.handle_rtcp(&report[..n], from.parse().unwrap(), t0);
        assert_eq!(r, Err(MediaError::ForeignSource), "{from}");
    }
    let r = b.handle_rtp(&report[..n], "203.0.113.66:4000".parse().unwrap(), t0);
    assert_eq!(r, Err(MediaError::ForeignSource));
    assert_eq!(
        b.stats().remote_fraction_lost,
        None,
        "no stranger's report is read"
    );
    assert_eq!(b.stats().packets_foreign, 3);
    // Our reports keep going to the negotiated RTCP address.
    let mut now = t0;
    while seen.rtcp_to.len() < 2 {
        now = drain_bot(&mut b, now, &mut seen);
    }
    assert!(
        seen.rtcp_to.iter().all(|a| *a == rtcp),
        "{:?}",
        seen.rtcp_to
    );
    // The caller's own report is read.
    b.handle_rtcp(&report[..n], rtcp, now).unwrap();
    assert_eq!(b.stats().remote_fraction_lost, Some(77));
}

#[test]
fn without_a_rtcp_the_rtcp_address_is_the_rtp_port_plus_one() {
    let t0 = Instant::now();
    let mut b = bot(t0, false);
    let mut report = [0u8; 128];
    let n = ivr_media::rtcp::build_report(&mut report, 99, Some(Default::default()), None, b"x")
        .unwrap();
    assert_eq!(
        b.handle_rtcp(&report[..n], "192.0.2.10:4003".parse().unwrap(), t0),
        Err(MediaError::ForeignSource)
    );
    b.handle_rtcp(&report[..n], "192.0.2.10:4001".parse().unwrap(), t0)
        .unwrap();
    // RTCP muxed on the RTP port from the caller's RTP address is the caller's.
    b.handle_rtp(&report[..n], caller_rtp(), t0).unwrap();
    assert_eq!(b.stats().packets_foreign, 1);
}

#[test]
fn with_latching_on_the_first_port_on_the_negotiated_ip_is_latched_once() {
    let t0 = Instant::now();
    let mut b = bot(t0, true);
    let mut seen = Seen::default();
    // Another host is never latched, even first.
    let mut stranger = peer(99, t0, &[Dtmf::D1], false);
    let r = run(
        &mut b,
        Some((&mut stranger, "203.0.113.66:4000".parse().unwrap())),
        t0,
        Duration::from_millis(500),
        &mut seen,
    );
    assert!(r.iter().all(|r| *r == Err(MediaError::ForeignSource)));
    // The caller behind NAT sends from another port of its SDP's IP: latched.
    let nat: SocketAddr = "192.0.2.10:61000".parse().unwrap();
    let at = t0 + Duration::from_millis(500);
    let mut caller = peer(2, at, &[Dtmf::D2], false);
    run(
        &mut b,
        Some((&mut caller, nat)),
        at,
        Duration::from_secs(1),
        &mut seen,
    );
    assert_eq!(keys(&seen), [Dtmf::D2]);
    assert_eq!(
        seen.rtp_to.last(),
        Some(&nat),
        "answers where the caller sends from"
    );
    // The caller goes quiet; another port on the same IP cannot take over.
    let at = at + Duration::from_secs(3);
    run(
        &mut b,
        None,
        at - Duration::from_secs(2),
        Duration::from_secs(2),
        &mut seen,
    );
    let mut other = peer(3, at, &[Dtmf::D3], false);
    let r = run(
        &mut b,
        Some((&mut other, "192.0.2.10:61002".parse().unwrap())),
        at,
        Duration::from_secs(1),
        &mut seen,
    );
    assert!(r.iter().all(|r| *r == Err(MediaError::ForeignSource)));
    assert_eq!(keys(&seen), [Dtmf::D2]);
    assert_eq!(seen.rtp_to.last(), Some(&nat));
}

#[test]
fn a_reinvite_moves_the_accepted_address() {
    let t0 = Instant::now();
    let mut b = bot(t0, false);
    let mut seen = Seen::default();
    let mut caller = peer(2, t0, &[Dtmf::D4], false);
    run(
        &mut b,
        Some((&mut caller, caller_rtp())),
        t0,
        Duration::from_secs(1),
        &mut seen,
    );
    let moved: SocketAddr = "192.0.2.20:5000".parse().unwrap();
    b.set_remote(moved, None);
    let at = t0 + Duration::from_secs(1);
    let mut old = peer(2, at, &[Dtmf::D6], false);
    let r = run(
        &mut b,
        Some((&mut old, caller_rtp())),
        at,
        Duration::from_secs(1),
        &mut seen,
    );
    assert!(
        r.iter().all(|r| *r == Err(MediaError::ForeignSource)),
        "the old address is gone"
    );
    let at = at + Duration::from_secs(1);
    let mut new = peer(5, at, &[Dtmf::D7], false);
    run(
        &mut b,
        Some((&mut new, moved)),
        at,
        Duration::from_secs(1),
        &mut seen,
    );
    assert_eq!(keys(&seen), [Dtmf::D4, Dtmf::D7]);
    assert_eq!(seen.rtp_to.last(), Some(&moved));
}
