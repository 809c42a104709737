//! PESQ-NB of a Danish prompt passed through our own media path: prompt ->
//! resample -> G.711 encoder -> RTP packetiser -> (network, optionally with
//! 0-60 ms jitter that reorders packets) -> RTP parser -> jitter buffer ->
//! decoder -> 16 kHz recording. Scored with tests/pesq/pesq.py (PyPI `pesq`,
//! installed by scripts/setup/30-python-test-tools.sh). The engine-to-baresip
//! check over real sockets is the end-to-end version of this test.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ivr_core::Pcm;
use ivr_media::{Codec, MediaParams, MediaSession, Output, PacketKind, PlayOptions, SessionConfig};

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Plays the prompt from a bot session to a caller session that records what it hears.
fn degrade(codec: Codec, jitter_ms: u64, out: &PathBuf) {
    let reference = repo().join("crates/ivr-media/tests/data/prompt_da_clean_8k.wav");
    let mut r = hound::WavReader::open(&reference).unwrap();
    let prompt = Pcm::new(
        r.spec().sample_rate,
        r.samples::<i16>().map(|s| s.unwrap()).collect(),
    );
    let t0 = Instant::now();
    let mk = |remote, ssrc| {
        let p = MediaParams {
            codec,
            payload_type: codec.static_payload_type(),
            telephone_event_pt: None,
            ptime: Duration::from_millis(20),
            remote_rtp: addr(remote),
            remote_rtcp: None,
        };
        MediaSession::new(
            p,
            SessionConfig {
                ssrc,
                ..Default::default()
            },
            t0,
        )
        .unwrap()
    };
    let mut bot = mk(5000, 1);
    let mut caller = mk(4000, 2);
    caller
        .start_recording(Box::new(std::fs::File::create(out).unwrap()))
        .unwrap();
    bot.play(&prompt, PlayOptions { barge_in: false }).unwrap();
    let mut in_flight: Vec<(Instant, Vec<u8>)> = Vec::new();
    let mut seed = 12345u64;
    let mut now = t0;
    let end = t0 + prompt.duration() + Duration::from_secs(1);
    while now < end {
        let mut next = end;
        loop {
            match bot.poll_output(now) {
                Output::Transmit(t) if t.kind == PacketKind::Rtp => {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let delay = if jitter_ms == 0 {
                        0
                    } else {
                        seed % (jitter_ms * 1000)
                    };
                    in_flight.push((now + Duration::from_micros(delay), t.bytes.to_vec()));
                }
                Output::Timeout(t) => {
                    next = next.min(t);
                    break;
                }
                _ => {}
            }
        }
        in_flight.sort_by_key(|(t, _)| *t);
        while in_flight.first().is_some_and(|(t, _)| *t <= now) {
            let (_, b) = in_flight.remove(0);
            // From the bot's address, the one in the caller's SDP.
            caller.handle_rtp(&b, addr(4000), now).unwrap();
        }
        loop {
            if let Output::Timeout(t) = caller.poll_output(now) {
                next = next.min(t);
                break;
            }
        }
        if let Some((t, _)) = in_flight.first() {
            next = next.min(*t);
        }
        now = next.max(now + Duration::from_micros(1));
    }
    caller.stop_recording().unwrap();
}

fn pesq_nb(degraded: &PathBuf) -> f64 {
    let script = repo().join("tests/pesq/pesq.py");
    let reference = repo().join("crates/ivr-media/tests/data/prompt_da_clean_8k.wav");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&reference)
        .arg(degraded)
        .args(["--mode", "nb", "--channel", "0"])
        .output()
        .expect("python3 not found: run `make setup` (scripts/setup/30-python-test-tools.sh)");
    assert!(
        out.status.success(),
        "pesq.py failed (run `make setup` to install PyPI pesq): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The codec alone (G.711 encode + decode at 8 kHz, no RTP, no resampling): the ceiling.
fn codec_only(codec: Codec, out: &PathBuf) {
    let reference = repo().join("crates/ivr-media/tests/data/prompt_da_clean_8k.wav");
    let mut r = hound::WavReader::open(&reference).unwrap();
    let spec = r.spec();
    let pcm: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    let mut w = hound::WavWriter::create(out, spec).unwrap();
    for s in pcm {
        let d = match codec {
            Codec::Pcmu => ivr_media::g711::ulaw_to_linear(ivr_media::g711::ulaw_from_linear(s)),
            _ => ivr_media::g711::alaw_to_linear(ivr_media::g711::alaw_from_linear(s)),
        };
        w.write_sample(d).unwrap();
    }
    w.finalize().unwrap();
}

#[test]
fn prompt_through_g711_rtp_and_jitter_buffer_loses_under_0_1_pesq_beyond_the_codec() {
    // G.711 itself scores about 4.0 on this (synthetic, espeak-ng) prompt; the
    // path must add almost nothing to the codec's own loss.
    let dir = std::env::temp_dir();
    for (codec, jitter) in [(Codec::Pcma, 0), (Codec::Pcmu, 0), (Codec::Pcma, 60)] {
        let id = std::process::id();
        let ceiling_path = dir.join(format!("ivr-media-pesq-ceiling-{codec:?}-{id}.wav"));
        codec_only(codec, &ceiling_path);
        let ceiling = pesq_nb(&ceiling_path);
        let path = dir.join(format!("ivr-media-pesq-{codec:?}-{jitter}-{id}.wav"));
        degrade(codec, jitter, &path);
        let score = pesq_nb(&path);
        eprintln!("PESQ-NB {codec:?}, {jitter} ms jitter: {score:.3} (codec alone {ceiling:.3})");
        std::fs::remove_file(&path).ok();
        std::fs::remove_file(&ceiling_path).ok();
        assert!(
            score >= ceiling - 0.1 && score >= 3.8,
            "{codec:?} with {jitter} ms jitter: PESQ-NB {score:.3}, codec alone {ceiling:.3}"
        );
    }
}
