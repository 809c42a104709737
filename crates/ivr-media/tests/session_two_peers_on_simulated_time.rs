//! Two `MediaSession`s talking to each other in one process on simulated time
//! (no sockets, no sleeping): prompts, pacing, barge-in, DTMF, endpointing,
//! RTCP and recording, end to end through encoder -> RTP -> jitter buffer -> decoder.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ivr_core::{Dtmf, Pcm};
use ivr_media::rtp::parse_rtp;
use ivr_media::{
    Codec, MediaEvent, MediaParams, MediaSession, Output, PacketKind, PlayOptions, SessionConfig,
};

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn params(codec: Codec, remote: u16) -> MediaParams {
    MediaParams {
        codec,
        payload_type: codec.static_payload_type(),
        telephone_event_pt: Some(101),
        ptime: Duration::from_millis(20),
        remote_rtp: addr(remote),
        remote_rtcp: None,
    }
}

fn session(codec: Codec, remote: u16, ssrc: u32, t0: Instant) -> MediaSession {
    let cfg = SessionConfig {
        ssrc,
        initial_seq: 65500,
        initial_ts: 4_294_960_000,
        ..Default::default()
    };
    MediaSession::new(params(codec, remote), cfg, t0).unwrap()
}

fn load_wav(name: &str) -> Pcm {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut r = hound::WavReader::open(path).unwrap();
    let rate = r.spec().sample_rate;
    Pcm::new(rate, r.samples::<i16>().map(|s| s.unwrap()).collect())
}

#[derive(Default)]
struct Log {
    rtp: Vec<(Instant, Vec<u8>)>,
    rtcp: usize,
    events: Vec<(Instant, MediaEvent)>,
}

/// Polls `s` until its timeout; RTP goes to `peer` (if any) from `from`.
fn drain(
    s: &mut MediaSession,
    now: Instant,
    log: &mut Log,
    mut peer: Option<(&mut MediaSession, SocketAddr)>,
) -> Instant {
    loop {
        match s.poll_output(now) {
            Output::Transmit(t) => {
                let bytes = t.bytes.to_vec();
                match t.kind {
                    PacketKind::Rtp => {
                        if let Some((p, from)) = peer.as_mut() {
                            p.handle_rtp(&bytes, *from, now).unwrap();
                        }
                        log.rtp.push((now, bytes));
                    }
                    PacketKind::Rtcp => {
                        if let Some((p, from)) = peer.as_mut() {
                            // RTCP comes from the port above RTP (RFC 3550 sec. 11).
                            let from = SocketAddr::new(from.ip(), from.port() + 1);
                            p.handle_rtcp(&bytes, from, now).unwrap();
                        }
                        log.rtcp += 1;
                    }
                }
            }
            Output::Event(e) => log.events.push((now, e)),
            Output::Timeout(t) => return t,
        }
    }
}

/// Runs A (bot, port 4000) and B (caller, port 5000) for `dur`, calling `act` at each step.
fn run_pair(
    a: &mut MediaSession,
    b: &mut MediaSession,
    t0: Instant,
    dur: Duration,
    la: &mut Log,
    lb: &mut Log,
    mut act: impl FnMut(Instant, &mut MediaSession, &mut MediaSession),
) {
    let mut now = t0;
    while now < t0 + dur {
        act(now, a, b);
        let ta = drain(a, now, la, Some((b, addr(4000))));
        let tb = drain(b, now, lb, Some((a, addr(5000))));
        now = ta.min(tb);
    }
}

#[test]
fn ten_minutes_of_rtp_with_zero_drift_and_no_burst_after_a_500_ms_stall() {
    let t0 = Instant::now();
    let mut a = session(Codec::Pcma, 5000, 1, t0);
    let mut log = Log::default();
    let mut now = t0;
    while now < t0 + Duration::from_secs(600) {
        now = drain(&mut a, now, &mut log, None);
    }
    assert_eq!(log.rtp.len(), 30_000);
    for (i, (at, bytes)) in log.rtp.iter().enumerate() {
        let p = parse_rtp(bytes).unwrap();
        assert_eq!(
            *at,
            t0 + Duration::from_millis(20 * i as u64),
            "packet {i} sent off its deadline"
        );
        assert_eq!(
            p.timestamp,
            4_294_960_000u32.wrapping_add(160 * i as u32),
            "timestamp of packet {i}"
        );
        assert_eq!(p.sequence, 65500u16.wrapping_add(i as u16));
        assert!(
            p.payload.iter().all(|b| *b == 0xD5),
            "comfort silence (A-law zero)"
        );
        assert_eq!(
            p.marker,
            i == 0,
            "marker only on the first packet of the stream"
        );
    }
    // Stall: the engine comes back 500 ms late.
    let late = now + Duration::from_millis(500);
    let before = log.rtp.len();
    let next = drain(&mut a, late, &mut log, None);
    assert_eq!(
        log.rtp.len() - before,
        1,
        "one packet after the stall, no burst"
    );
    let p = parse_rtp(&log.rtp.last().unwrap().1).unwrap();
    assert_eq!(
        p.timestamp,
        4_294_960_000u32.wrapping_add(160 * 30_025),
        "timestamp skips the stalled slots"
    );
    assert_eq!(
        next,
        t0 + Duration::from_millis(600_520),
        "back on the original 20 ms grid"
    );
    // RTCP every 2.5-7.5 s (5 s randomised, RFC 3550 sec. 6.3.1): about 120 in 10 min.
    assert!((90..=150).contains(&log.rtcp), "RTCP reports: {}", log.rtcp);
}

#[test]
fn flush_silences_the_prompt_from_the_next_packet_and_marks_talkspurts() {
    let t0 = Instant::now();
    let mut a = session(Codec::Pcmu, 5000, 1, t0);
    let tone = Pcm::new(
        8000,
        (0..16000)
            .map(|i| (8000.0 * (i as f64 * 0.3).sin()) as i16)
            .collect(),
    );
    let mut log = Log::default();
    let mut now = drain(&mut a, t0, &mut log, None);
    a.play(&tone, PlayOptions::default()).unwrap();
    for _ in 0..10 {
        now = drain(&mut a, now, &mut log, None);
    }
    a.flush();
    for _ in 0..5 {
        now = drain(&mut a, now, &mut log, None);
    }
    let pkts: Vec<_> = log
        .rtp
        .iter()
        .map(|(_, b)| parse_rtp(b).unwrap())
        .map(|p| (p.marker, p.payload.iter().all(|b| *b == 0xFF)))
        .collect();
    assert_eq!(pkts[0], (true, true), "stream start: marked silence");
    assert_eq!(pkts[1], (true, false), "talkspurt start: marked audio");
    assert!(pkts[2..11].iter().all(|p| *p == (false, false)));
    assert!(
        pkts[11..].iter().all(|p| *p == (false, true)),
        "silence right after flush: {pkts:?}"
    );
    // A new prompt starts a new, marked talkspurt.
    a.play(&tone, PlayOptions::default()).unwrap();
    drain(&mut a, now, &mut log, None);
    let p = parse_rtp(&log.rtp.last().unwrap().1).unwrap();
    assert!(p.marker);
}

#[test]
fn caller_speech_becomes_utterances_and_barges_in_on_the_prompt() {
    let t0 = Instant::now();
    let mut bot = session(Codec::Pcma, 5000, 1, t0);
    let mut caller = session(Codec::Pcma, 4000, 2, t0);
    let (mut la, mut lb) = (Log::default(), Log::default());
    let prompt = Pcm::new(8000, vec![1000; 8000 * 10]); // a 10 s prompt
    let speech = load_wav("two_utterances_in_white_noise_8k.wav");
    bot.play(&prompt, PlayOptions { barge_in: true }).unwrap();
    caller
        .play(&speech, PlayOptions { barge_in: false })
        .unwrap();
    run_pair(
        &mut bot,
        &mut caller,
        t0,
        Duration::from_secs(11),
        &mut la,
        &mut lb,
        |_, _, _| {},
    );
    let ev: Vec<_> = la
        .events
        .iter()
        .map(|(t, e)| (t.duration_since(t0).as_secs_f64(), e))
        .collect();
    let barge: Vec<_> = ev
        .iter()
        .filter(|(_, e)| **e == MediaEvent::BargeIn)
        .collect();
    assert_eq!(barge.len(), 1, "{ev:?}");
    // First speech starts at 1.0 s in the file; allow jitter-buffer delay and 180 ms voiced.
    assert!(
        (1.1..1.6).contains(&barge[0].0),
        "barge-in at {}",
        barge[0].0
    );
    let utts: Vec<_> = ev
        .iter()
        .filter_map(|(t, e)| {
            if let MediaEvent::Utterance(p) = e {
                Some((*t, p.sample_rate, p.duration()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(utts.len(), 2, "{ev:?}");
    assert!(utts.iter().all(|u| u.1 == 16_000));
    assert!(
        utts[0].2 > Duration::from_secs(2) && utts[1].2 > Duration::from_secs(3),
        "{utts:?}"
    );
    // After barge-in the bot only sends silence.
    let after: Vec<_> = la
        .rtp
        .iter()
        .filter(|(t, _)| t.duration_since(t0).as_secs_f64() > barge[0].0 + 0.001)
        .map(|(_, b)| parse_rtp(b).unwrap())
        .collect();
    assert!(
        after.iter().all(|p| p.payload.iter().all(|b| *b == 0xD5)),
        "prompt audio after barge-in"
    );
}

#[test]
fn dtmf_sent_by_one_peer_arrives_once_at_the_other_and_rtcp_reports_flow() {
    let t0 = Instant::now();
    let mut bot = session(Codec::G722, 5000, 1, t0);
    let mut caller = session(Codec::G722, 4000, 2, t0);
    let (mut la, mut lb) = (Log::default(), Log::default());
    let mut sent = false;
    run_pair(
        &mut bot,
        &mut caller,
        t0,
        Duration::from_secs(11),
        &mut la,
        &mut lb,
        |now, _, c| {
            if !sent && now >= t0 + Duration::from_secs(1) {
                for k in "12#".chars() {
                    c.send_dtmf(Dtmf::from_char(k).unwrap()).unwrap();
                }
                sent = true;
            }
        },
    );
    let keys: String = la
        .events
        .iter()
        .filter_map(|(_, e)| {
            if let MediaEvent::Dtmf(d) = e {
                Some(d.as_char())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(keys, "12#");
    assert!(
        !la.events
            .iter()
            .any(|(_, e)| matches!(e, MediaEvent::SpeechStarted)),
        "DTMF is not speech"
    );
    let s = bot.stats();
    assert!(s.rtt.is_some(), "RTT from the caller's reports: {s:?}");
    assert_eq!(s.lost, 0);
    assert_eq!(s.remote_fraction_lost, Some(0));
}

#[test]
fn with_nat_latching_latches_to_the_real_source_and_ignores_a_stray_sender() {
    let t0 = Instant::now();
    let cfg = SessionConfig {
        ssrc: 1,
        latch: ivr_media::rtp::LatchPolicy {
            nat: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut bot = MediaSession::new(params(Codec::Pcma, 5000), cfg, t0).unwrap();
    let mut caller = session(Codec::Pcma, 4000, 2, t0);
    let mut lc = Log::default();
    drain(&mut caller, t0, &mut lc, None);
    let pkt = lc.rtp[0].1.clone();
    // The caller's packets really come from port 6000 (NAT): the bot answers there.
    bot.handle_rtp(&pkt, addr(6000), t0).unwrap();
    let mut lb = Log::default();
    drain(&mut bot, t0, &mut lb, None);
    let Output::Timeout(_) = bot.poll_output(t0) else {
        panic!()
    };
    let mut now = t0 + Duration::from_millis(20);
    let to = loop {
        if let Output::Transmit(t) = bot.poll_output(now) {
            break t.to;
        }
        now += Duration::from_millis(20);
    };
    assert_eq!(to, addr(6000));
    // Someone else sends with another SSRC from another port: ignored.
    let mut stray = session(Codec::Pcma, 4000, 99, t0);
    let mut ls = Log::default();
    drain(&mut stray, t0, &mut ls, None);
    assert!(bot.handle_rtp(&ls.rtp[0].1, addr(7000), now).is_err());
    assert_eq!(bot.stats().packets_foreign, 1);
    // RTCP multiplexed on the RTP port (RFC 5761) is taken as RTCP, not rejected.
    let mut sr = [0u8; 64];
    let n =
        ivr_media::rtcp::build_report(&mut sr, 2, Some(Default::default()), None, b"c").unwrap();
    bot.handle_rtp(&sr[..n], addr(6000), now).unwrap();
    assert_eq!(bot.stats().packets_rejected, 0);
    // Wrong payload type and garbage are rejected, not panics.
    assert!(bot
        .handle_rtp(
            &[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1],
            addr(6000),
            now
        )
        .is_err());
    assert!(bot.handle_rtp(&[0xff; 3], addr(6000), now).is_err());
}

#[test]
fn recording_holds_both_directions_as_16k_stereo() {
    let t0 = Instant::now();
    let mut bot = session(Codec::Pcma, 5000, 1, t0);
    let mut caller = session(Codec::Pcma, 4000, 2, t0);
    let path = std::env::temp_dir().join(format!("ivr-media-rec-{}.wav", std::process::id()));
    bot.start_recording(Box::new(std::fs::File::create(&path).unwrap()))
        .unwrap();
    bot.play(
        &Pcm::new(8000, vec![4000; 8000]),
        PlayOptions { barge_in: false },
    )
    .unwrap();
    caller
        .play(
            &Pcm::new(8000, vec![-3000; 16000]),
            PlayOptions { barge_in: false },
        )
        .unwrap();
    let (mut la, mut lb) = (Log::default(), Log::default());
    run_pair(
        &mut bot,
        &mut caller,
        t0,
        Duration::from_secs(3),
        &mut la,
        &mut lb,
        |_, _, _| {},
    );
    bot.stop_recording().unwrap();
    let mut r = hound::WavReader::open(&path).unwrap();
    assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 16000));
    let s: Vec<i16> = r.samples::<i16>().map(|x| x.unwrap()).collect();
    std::fs::remove_file(&path).ok();
    let secs = s.len() as f64 / 2.0 / 16000.0;
    assert!((2.9..3.1).contains(&secs), "{secs} s recorded");
    // Bot channel carries the prompt in its first second; caller channel the caller's audio later.
    let bot_mean = s
        .iter()
        .skip(1)
        .step_by(2)
        .skip(4000)
        .take(8000)
        .map(|v| f64::from(*v))
        .sum::<f64>()
        / 8000.0;
    let caller_mean = s
        .iter()
        .step_by(2)
        .skip(16000)
        .take(8000)
        .map(|v| f64::from(*v))
        .sum::<f64>()
        / 8000.0;
    assert!(bot_mean > 3000.0, "bot channel mean {bot_mean}");
    assert!(caller_mean < -2000.0, "caller channel mean {caller_mean}");
}

#[test]
fn silent_far_end_raises_one_media_timeout_and_rtp_keeps_flowing() {
    let t0 = Instant::now();
    let mut a = session(Codec::Pcma, 5000, 1, t0);
    let mut log = Log::default();
    let mut now = t0;
    while now < t0 + Duration::from_secs(45) {
        now = drain(&mut a, now, &mut log, None);
    }
    let timeouts: Vec<_> = log
        .events
        .iter()
        .filter(|(_, e)| *e == MediaEvent::MediaTimeout)
        .map(|(t, _)| t.duration_since(t0))
        .collect();
    assert_eq!(timeouts, [Duration::from_secs(30)]);
    assert_eq!(log.rtp.len(), 45 * 50);
}
