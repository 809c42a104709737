//! Media CPU cost and pacing accuracy (`cargo bench -p ivr-benches --bench media`).
//!
//! Prints and writes `target/bench/media.json`:
//! - per-20 ms cost of the pieces of one call's media (G.711 decode to 16 kHz,
//!   VAD, encode, 2:1 resampling by polyphase FIR vs rubato) and of a whole
//!   `MediaSession` tick (receive one packet + jitter buffer + decode + VAD +
//!   endpointer + encode + pacing + RTP build), and from it calls per core;
//! - pacer deadline error p50/p99 with 200 concurrent sessions, measured in
//!   REAL TIME (one thread sleeping to the earliest deadline, as an engine
//!   timer wheel would), on this shared machine;
//! - VAD choice: frame accuracy against the labelled test WAVs and CPU per
//!   frame for our energy+voicing VAD and for webrtc-vad (modes 0-3).
//!
//! Medians of repeated batches; criterion runs the headline tick bench too.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ivr_core::Pcm;
use ivr_media::codec::{AudioDecoder, AudioEncoder};
use ivr_media::resample::{Downsampler2x, Upsampler2x};
use ivr_media::vad::{Vad, VadConfig, FRAME_8K};
use ivr_media::{Codec, MediaParams, MediaSession, Output, PacketKind, PlayOptions, SessionConfig};
use rubato::Resampler;
use serde_json::json;

fn data(name: &str) -> String {
    format!(
        "{}/../crates/ivr-media/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn load(name: &str) -> Vec<i16> {
    let mut r = hound::WavReader::open(data(name)).unwrap();
    r.samples::<i16>().map(|s| s.unwrap()).collect()
}

fn labels(name: &str) -> Vec<(f64, f64)> {
    std::fs::read_to_string(data(name))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<f64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
            (v[0], v[1])
        })
        .collect()
}

/// Median per-call nanoseconds of `f` over 21 batches of `n` calls.
fn median_ns(n: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn addr(p: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], p))
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

/// RTP packets of a caller speaking (speech file looped) for `secs`.
fn caller_packets(codec: Codec, secs: u64, t0: Instant) -> Vec<Vec<u8>> {
    let mut caller = MediaSession::new(
        params(codec, 4000),
        SessionConfig {
            ssrc: 2,
            ..Default::default()
        },
        t0,
    )
    .unwrap();
    let speech = load("two_utterances_in_white_noise_8k.wav");
    let mut all = Vec::new();
    while all.len() < (secs as usize + 1) * 8000 {
        all.extend_from_slice(&speech);
    }
    caller
        .play(&Pcm::new(8000, all), PlayOptions { barge_in: false })
        .unwrap();
    let mut out = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(secs) {
        loop {
            match caller.poll_output(now) {
                Output::Transmit(t) if t.kind == PacketKind::Rtp => out.push(t.bytes.to_vec()),
                Output::Timeout(t) => {
                    now = t;
                    break;
                }
                _ => {}
            }
        }
    }
    out
}

/// A bot session playing a long prompt, fed `pkts`; returns a closure doing one 20 ms tick.
struct BotCall {
    bot: MediaSession,
    pkts: Vec<Vec<u8>>,
    i: usize,
    now: Instant,
}

impl BotCall {
    fn new(codec: Codec, t0: Instant) -> Self {
        let mut bot = MediaSession::new(
            params(codec, 5000),
            SessionConfig {
                ssrc: 1,
                ..Default::default()
            },
            t0,
        )
        .unwrap();
        let prompt: Vec<i16> = (0..8000 * 590)
            .map(|i| (3000.0 * (i as f64 * 0.05).sin()) as i16)
            .collect();
        bot.play(&Pcm::new(8000, prompt), PlayOptions { barge_in: false })
            .unwrap();
        BotCall {
            bot,
            pkts: caller_packets(codec, 300, t0),
            i: 0,
            now: t0,
        }
    }
    fn tick(&mut self) {
        let p = &self.pkts[self.i % self.pkts.len()];
        self.i += 1;
        // From the caller's negotiated address (anything else is dropped unread).
        let _ = self.bot.handle_rtp(p, addr(5000), self.now);
        loop {
            match self.bot.poll_output(self.now) {
                Output::Transmit(t) => {
                    black_box(t.bytes);
                }
                Output::Event(e) => {
                    black_box(e);
                }
                Output::Timeout(t) => {
                    self.now = t;
                    break;
                }
            }
        }
    }
}

fn vad_accuracy(mut classify: impl FnMut(&[i16]) -> bool, file: &str) -> (f64, f64) {
    let pcm = load(&format!("{file}.wav"));
    let lab = labels(&format!("{file}.labels"));
    let (mut raw, mut smooth, mut total, mut hang) = (0, 0, 0, 0u32);
    for (i, frame) in pcm.chunks_exact(FRAME_8K).enumerate() {
        let t = (i as f64 + 0.5) * 0.02;
        let truth = lab.iter().any(|(s, e)| t >= *s && t < *e);
        let s = classify(frame);
        hang = if s { 10 } else { hang.saturating_sub(1) };
        raw += usize::from(s == truth);
        smooth += usize::from((hang > 0) == truth);
        total += 1;
    }
    (raw as f64 / total as f64, smooth as f64 / total as f64)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn pacer_real_time(streams: usize, secs: u64) -> (f64, f64, f64, usize) {
    let t0 = Instant::now() + Duration::from_millis(50);
    let mut sessions: Vec<(MediaSession, Instant)> = (0..streams)
        .map(|k| {
            // Calls start at arbitrary moments: stagger within the 20 ms period.
            let start = t0 + Duration::from_micros((k as u64 * 7919) % 20_000);
            let mut s = MediaSession::new(
                params(Codec::Pcma, 5000),
                SessionConfig {
                    ssrc: k as u32,
                    ..Default::default()
                },
                start,
            )
            .unwrap();
            s.play(
                &Pcm::new(8000, vec![1000; 8000 * (secs as usize + 1)]),
                PlayOptions { barge_in: false },
            )
            .unwrap();
            (s, start)
        })
        .collect();
    let mut errors_us = Vec::with_capacity(streams * secs as usize * 50);
    let end = t0 + Duration::from_secs(secs);
    loop {
        let next = sessions.iter().map(|(_, d)| *d).min().unwrap();
        if next >= end {
            break;
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        for (s, deadline) in sessions.iter_mut() {
            let now = Instant::now();
            if now < *deadline {
                continue;
            }
            loop {
                match s.poll_output(Instant::now()) {
                    Output::Transmit(t) => {
                        if t.kind == PacketKind::Rtp {
                            errors_us
                                .push(Instant::now().duration_since(*deadline).as_secs_f64() * 1e6);
                        }
                        black_box(t.bytes);
                    }
                    Output::Event(_) => {}
                    Output::Timeout(t) => {
                        *deadline = t;
                        break;
                    }
                }
            }
        }
    }
    let skipped: u64 = sessions.iter().map(|(s, _)| s.stats().pacer_skipped).sum();
    let n = errors_us.len();
    let p50 = pct(&mut errors_us, 0.5);
    let p99 = pct(&mut errors_us, 0.99);
    let max = pct(&mut errors_us, 1.0);
    eprintln!("pacer: {n} packets, {skipped} slots skipped");
    (p50, p99, max, n)
}

fn main() {
    let t0 = Instant::now();
    let speech = load("two_utterances_in_white_noise_8k.wav");
    let frame8: Vec<i16> = speech[8000..8160].to_vec();
    let mut frame16 = [0i16; 320];
    Upsampler2x::new().process(&frame8, &mut frame16);

    // Pieces, per 20 ms frame.
    let mut enc = AudioEncoder::new(Codec::Pcma);
    let mut payload = [0u8; 160];
    enc.encode_native(&frame8, &mut payload);
    let mut dec = AudioDecoder::new(Codec::Pcma);
    let mut out16 = [0i16; 320];
    let decode_ns = median_ns(2000, || {
        dec.decode(black_box(&payload), &mut out16);
    });
    let encode_ns = median_ns(2000, || {
        enc.encode_native(black_box(&frame8), &mut payload);
    });
    let mut g722e = AudioEncoder::new(Codec::G722);
    let mut g722d = AudioDecoder::new(Codec::G722);
    let g722_ns = median_ns(1000, || {
        let n = g722e.encode_native(black_box(&frame16), &mut payload);
        g722d.decode(&payload[..n], &mut out16);
    });
    let mut vad = Vad::new(VadConfig::default());
    let vad_ns = median_ns(2000, || {
        black_box(vad.process(black_box(&frame8)));
    });
    let mut wvad = webrtc_vad::Vad::new_with_rate_and_mode(
        webrtc_vad::SampleRate::Rate8kHz,
        webrtc_vad::VadMode::Aggressive,
    );
    let wvad_ns = median_ns(2000, || {
        black_box(wvad.is_voice_segment(black_box(&frame8)).unwrap_or(false));
    });
    let mut up = Upsampler2x::new();
    let up_ns = median_ns(2000, || {
        up.process(black_box(&frame8), &mut out16);
    });
    let mut down = Downsampler2x::new();
    let mut out8 = [0i16; 160];
    let down_ns = median_ns(2000, || {
        down.process(black_box(&frame16), &mut out8);
    });
    let mut rb = rubato::FftFixedInOut::<f32>::new(8000, 16000, 160, 1).unwrap();
    let inf: Vec<Vec<f32>> = vec![frame8.iter().map(|s| f32::from(*s) / 32768.0).collect(); 1];
    let mut outf = vec![vec![0f32; rb.output_frames_max()]; 1];
    let rubato_ns = median_ns(2000, || {
        let need = rb.input_frames_next();
        let _ = rb.process_into_buffer(&[&inf[0][..need.min(160)]], &mut outf, None);
    });

    // Whole call tick.
    let mut call = BotCall::new(Codec::Pcma, t0);
    for _ in 0..500 {
        call.tick();
    }
    let tick_ns = median_ns(1000, || call.tick());
    let mut call722 = BotCall::new(Codec::G722, t0);
    for _ in 0..500 {
        call722.tick();
    }
    let tick722_ns = median_ns(1000, || call722.tick());
    let calls_per_core = 20e6 / tick_ns;

    // VAD comparison.
    let files = [
        "two_utterances_in_white_noise_8k",
        "utterance_in_brown_noise_8k",
        "click_and_cough_then_speech_8k",
    ];
    let mut vad_cmp = serde_json::Map::new();
    for f in files {
        let mut ours = Vad::new(VadConfig::default());
        let (r, s) = vad_accuracy(|fr| ours.process(fr).speech, f);
        let mut entry = serde_json::Map::new();
        entry.insert(
            "energy_voicing".into(),
            json!({"raw": r, "hangover_200ms": s}),
        );
        for (mode, name) in [
            (webrtc_vad::VadMode::Quality, "webrtc_mode0"),
            (webrtc_vad::VadMode::LowBitrate, "webrtc_mode1"),
            (webrtc_vad::VadMode::Aggressive, "webrtc_mode2"),
            (webrtc_vad::VadMode::VeryAggressive, "webrtc_mode3"),
        ] {
            let mut w =
                webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate8kHz, mode);
            let (r, s) = vad_accuracy(|fr| w.is_voice_segment(fr).unwrap_or(false), f);
            entry.insert(name.into(), json!({"raw": r, "hangover_200ms": s}));
        }
        vad_cmp.insert(f.into(), serde_json::Value::Object(entry));
    }

    eprintln!("pacer real-time run: 200 sessions x 10 s ...");
    let (p50, p99, max, n) = pacer_real_time(200, 10);

    let result = json!({
        "per_20ms_frame_ns": {
            "g711a_decode_to_16k": decode_ns,
            "g711a_encode": encode_ns,
            "g722_encode_plus_decode": g722_ns,
            "vad_energy_voicing_8k": vad_ns,
            "vad_webrtc_mode2_8k": wvad_ns,
            "upsample_2x_polyphase": up_ns,
            "downsample_2x_polyphase": down_ns,
            "upsample_2x_rubato_fft": rubato_ns,
        },
        // What the rubato alternative would add to every call's audio, each
        // way: its FFT block delay, against the half-band FIR's group delay.
        "upsample_2x_delay_ms": {
            "polyphase": ivr_media::resample::GROUP_DELAY_16K as f64 / 16.0,
            "rubato_fft": rb.output_delay() as f64 / 16.0,
        },
        "session_tick_ns": {"pcma": tick_ns, "g722": tick722_ns},
        "calls_per_core_pcma": calls_per_core,
        "calls_per_core_g722": 20e6 / tick722_ns,
        "pacer_200_streams_real_time_us": {"p50": p50, "p99": p99, "max": max, "packets": n},
        "vad_frame_accuracy": vad_cmp,
        "build_profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    println!("{text}");
    let dir = format!("{}/../target/bench", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&dir).ok();
    std::fs::write(format!("{dir}/media.json"), &text).unwrap();

    // Criterion's own report of the headline figure.
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    c.bench_function("media_session_tick_pcma_20ms", |b| b.iter(|| call.tick()));
    c.final_summary();
}
