//! Eager end of turn: the transcript of the speculative audio (cut after
//! 240 ms of silence, `[media] eager_stt_ms`) against the transcript of the
//! confirmed utterance (after the full end silence, 400 ms), over the whole
//! call-like speech set (`tests/vectors/calls/`, every menu and slot phrase
//! through G.711 and with a pause mid-sentence), each clip sent as RTP
//! through the engine's media session (jitter buffer, A-law, VAD,
//! endpointer) on simulated time.
//!
//! The engine answers with the speculative transcript when the end is
//! confirmed, so the two must agree. Before, they did not always: whisper
//! saw two different inputs (different length, encoder context and tail
//! noise) and in the end-to-end calls heard "indrush please" for the
//! speculative "English please". The recogniser now gives every utterance
//! the same ending (`ivr_stt::audio::settle_tail`), which makes both inputs
//! the same samples. Run with `--nocapture` for every pair;
//! `IVR_STT_DECODE=full` measures the earlier path (no settled tail).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm};
use ivr_media::{Codec, MediaEvent, MediaParams, MediaSession, Output, SessionConfig};
use ivr_stt::{audio, SpeechToText, SttRequest};
use serde::Deserialize;
use support::{load, repo_root, stt_config, threads_from_env};

/// Pairs whose transcripts must agree (of those the session gives; a
/// margin of one for a CPU that decodes one borderline clip differently).
const MAX_DIFFERENT: usize = 1;

#[derive(Debug, Deserialize)]
struct Manifest {
    clip: Vec<Clip>,
}

#[derive(Debug, Deserialize)]
struct Clip {
    id: String,
    lang: Lang,
}

/// 20 ms RTP packets (PCMA, payload type 8) of 8 kHz audio, after `lead`
/// packets of A-law silence and followed by `tail` more.
fn packets(pcm: &Pcm, lead: usize, tail: usize) -> Vec<Vec<u8>> {
    let mut samples = vec![0i16; lead * 160];
    samples.extend_from_slice(&pcm.samples);
    samples.resize(samples.len().div_ceil(160) * 160 + tail * 160, 0);
    samples
        .chunks(160)
        .enumerate()
        .map(|(i, frame)| {
            let mut p = vec![0x80, 8];
            p.extend_from_slice(&(i as u16).to_be_bytes());
            p.extend_from_slice(&((i * 160) as u32).to_be_bytes());
            p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
            let mut payload = [0u8; 160];
            ivr_media::g711::encode_alaw(frame, &mut payload);
            p.extend_from_slice(&payload);
            p
        })
        .collect()
}

/// The (tentative, confirmed) audio pairs the media session gives.
fn pairs(pcm: &Pcm) -> Vec<(Pcm, Pcm)> {
    let packets = packets(pcm, 150, 100);
    let peer: SocketAddr = "192.0.2.10:30000".parse().unwrap();
    let params = MediaParams {
        codec: Codec::Pcma,
        payload_type: 8,
        telephone_event_pt: Some(101),
        ptime: Duration::from_millis(20),
        remote_rtp: peer,
        remote_rtcp: None,
    };
    let mut config = SessionConfig::default();
    config.endpointing.eager_silence = Duration::from_millis(240);
    let start = Instant::now();
    let mut media = MediaSession::new(params, config, start).unwrap();
    let mut out = Vec::new();
    let mut open: Option<Pcm> = None;
    for (i, p) in packets.iter().enumerate() {
        let now = start + Duration::from_millis(20 * i as u64);
        media.handle_rtp(p, peer, now).unwrap();
        loop {
            match media.poll_output(now) {
                Output::Event(MediaEvent::TentativeEnd(t)) => open = Some(t),
                Output::Event(MediaEvent::SpeechResumed) => open = None,
                Output::Event(MediaEvent::Utterance(u)) => {
                    if let Some(t) = open.take() {
                        out.push((t, u));
                    }
                }
                Output::Timeout(_) => break,
                _ => {}
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn speculative_and_confirmed_audio_give_the_same_transcript() {
    let dir = std::env::var_os("IVR_SPEECH_CALLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/speech-calls"));
    let manifest = dir.join("manifest.toml");
    assert!(
        manifest.is_file(),
        "{} missing: run tests/vectors/calls/generate.py (or tests/call_routing.rs, which does)",
        manifest.display()
    );
    let m: Manifest = toml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let stt = load(&stt_config(threads_from_env()));
    let (mut same, mut different, mut clips) = (0usize, Vec::new(), 0usize);
    for cond in ["g711", "pause"] {
        for clip in &m.clip {
            let pcm = audio::read_wav(&dir.join(cond).join(format!("{}.wav", clip.id))).unwrap();
            clips += 1;
            for (tentative, confirmed) in pairs(&pcm) {
                let hear = |p: Pcm| stt.transcribe(SttRequest::new(p, clip.lang));
                let early = hear(tentative.clone()).await.unwrap();
                let late = hear(confirmed.clone()).await.unwrap();
                let agree = early.text.expose() == late.text.expose();
                println!(
                    "{} {cond:5} {:14} {:.2}/{:.2} s | `{}` | `{}`",
                    if agree { "=" } else { "≠" },
                    clip.id,
                    tentative.duration().as_secs_f64(),
                    confirmed.duration().as_secs_f64(),
                    early.text.expose(),
                    late.text.expose()
                );
                if agree {
                    same += 1;
                } else {
                    different.push(format!("{cond}/{}", clip.id));
                }
            }
        }
    }
    println!(
        "speculative = confirmed transcript: {same}/{} pairs ({clips} clips); different: {different:?}",
        same + different.len()
    );
    assert!(same > clips / 2, "the session gave too few pairs: {same}");
    assert!(
        different.len() <= MAX_DIFFERENT,
        "speculative and confirmed transcripts differ: {different:?}"
    );
}
