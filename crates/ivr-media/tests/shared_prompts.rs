//! A cached prompt at the codec's rate is in memory once however many calls
//! play it: the session keeps the `Arc` it is given (memory per call) and
//! lets go of it when it has played or is flushed. A prompt at another rate
//! is converted once with the high-quality resampler (what callers hear
//! comes first) and the cached one is not held. What the caller hears is the
//! prompt: the same tone at the same level, its whole length.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_core::Pcm;
use ivr_media::g711::alaw_to_linear;
use ivr_media::rtp::parse_rtp;
use ivr_media::{Codec, MediaParams, MediaSession, Output, PacketKind, PlayOptions, SessionConfig};

fn pcma_session(t0: Instant) -> MediaSession {
    MediaSession::new(
        MediaParams {
            codec: Codec::Pcma,
            payload_type: 8,
            telephone_event_pt: Some(101),
            ptime: Duration::from_millis(20),
            remote_rtp: SocketAddr::from(([127, 0, 0, 1], 4000)),
            remote_rtcp: None,
        },
        SessionConfig::default(),
        t0,
    )
    .unwrap()
}

/// A 1 kHz tone of `secs` at `rate`, amplitude 8000.
fn tone(rate: u32, secs: f64) -> Arc<Pcm> {
    let n = (f64::from(rate) * secs) as usize;
    Arc::new(Pcm::new(
        rate,
        (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect(),
    ))
}

/// Decoded audio of every RTP packet sent until `until`.
fn heard(s: &mut MediaSession, t0: Instant, until: Duration) -> Vec<i16> {
    let mut out = Vec::new();
    let mut now = t0;
    while now < t0 + until {
        loop {
            match s.poll_output(now) {
                Output::Transmit(t) if t.kind == PacketKind::Rtp => {
                    let p = parse_rtp(t.bytes).unwrap();
                    out.extend(p.payload.iter().map(|b| alaw_to_linear(*b)));
                }
                Output::Transmit(_) | Output::Event(_) => {}
                Output::Timeout(t) => {
                    now = t;
                    break;
                }
            }
        }
    }
    out
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

#[test]
fn a_16_khz_prompt_on_a_g711_call_is_converted_once_not_held_and_heard_whole() {
    let t0 = Instant::now();
    let mut s = pcma_session(t0);
    let prompt = tone(16_000, 1.0);
    s.play_shared(prompt.clone(), PlayOptions { barge_in: false })
        .unwrap();
    assert_eq!(
        Arc::strong_count(&prompt),
        1,
        "converted, the cached one not held"
    );
    let audio = heard(&mut s, t0, Duration::from_millis(1400));
    let loud: Vec<&[i16]> = audio.chunks(160).filter(|c| rms(c) > 1000.0).collect();
    assert!(
        (49..=51).contains(&loud.len()),
        "one second of tone is 50 packets: {}",
        loud.len()
    );
    // The tone's level survives (8000 peak: 5657 RMS; G.711 and the filter cost little).
    let level = rms(&loud[5..45].concat());
    assert!((5000.0..6200.0).contains(&level), "RMS {level}");
    // 1 kHz: two zero crossings a millisecond, 40 in a 20 ms packet.
    let mid = loud[25];
    let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    assert!((38..=42).contains(&crossings), "{crossings} zero crossings");
    assert!(!s.is_playing());
}

#[test]
fn a_prompt_at_the_codec_rate_is_shared_and_a_flush_lets_go_of_it() {
    let t0 = Instant::now();
    let mut s = pcma_session(t0);
    let prompt = tone(8000, 2.0);
    s.play_shared(prompt.clone(), PlayOptions { barge_in: true })
        .unwrap();
    s.play_shared(prompt.clone(), PlayOptions { barge_in: true })
        .unwrap();
    assert_eq!(Arc::strong_count(&prompt), 3, "twice queued, never copied");
    let _ = heard(&mut s, t0, Duration::from_millis(200));
    s.flush();
    assert_eq!(Arc::strong_count(&prompt), 1);
    // A rate that is neither is converted once (a copy of this call's own).
    let odd = tone(22_050, 0.5);
    s.play_shared(odd.clone(), PlayOptions { barge_in: true })
        .unwrap();
    assert_eq!(Arc::strong_count(&odd), 1);
    assert!(s.is_playing());
}
