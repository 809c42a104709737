//! Codec cost per browser call (`cargo bench -p ivr-benches --bench opus`),
//! against a G.711 phone call, per 20 ms frame, at the settings the engine
//! uses (`ivr_media::codec`, the calls the media session makes):
//!
//! - **Opus decode**: what the browser sends, decoded to 16 kHz
//!   (`AudioDecoder::decode_native`, as the session's receive tick does).
//!   The packets are made as Chromium makes them (libopus at 48 kHz,
//!   VoIP, mono, 32 kbit/s VBR, in-band FEC, complexity 9: WebRTC's
//!   desktop defaults), from the speech set's `da-koerekort-01`; decoding
//!   our own 16 kHz packets instead would flatter the decoder.
//! - **Opus encode**: a reply frame, 16 kHz mono, VoIP, 24 kbit/s, libopus's
//!   default complexity (10) (`AudioEncoder::encode_native`, as the pacer's
//!   packets are made), on speech (the prompt playing) and on digital
//!   silence (the bot quiet); for comparison only, the same at complexity 5
//!   and 1.
//! - **G.711 (PCMA)**: decode 8 kHz + the 2x upsampling to 16 kHz for the
//!   recogniser, and encode 8 kHz (prompts are at the codec's rate).
//! - **Rate conversion the session adds**: an Opus call halves 16 kHz to
//!   8 kHz for the VAD; a G.711 call doubles 8 kHz to 16 kHz (included
//!   in its decode above); both given so the comparison is like for like.
//!
//! Each operation is timed frame by frame (after a 1 s warm-up), cycling
//! through the utterance: median, p95 and mean wall time per frame, and
//! the mean CPU time per frame (the thread's own, from
//! `/proc/thread-self/schedstat`, so time spent waiting for a core on a
//! busy machine is not counted). A call does 50 decodes and 50 encodes a
//! second, so its CPU share of one core is `50 x (decode + encode)` CPU
//! time per second, and the calls one core carries for the codec alone is
//! its inverse.
//! The load average is recorded beside the figures (timings on a shared
//! machine are noisy). Writes `target/bench/opus.json` and prints a table.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ivr_core::Pcm;
use ivr_media::codec::{AudioDecoder, AudioEncoder, Codec, MAX_PAYLOAD};
use ivr_media::resample::Downsampler2x;

/// Frames per second of a 20 ms call (each way).
const FRAMES_PER_S: f64 = 50.0;
/// Frames timed per operation (cycling through the utterance).
const TIMED_FRAMES: usize = 20_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Speech at 16 kHz: the speech set's `da-koerekort-01` (espeak-ng).
fn speech() -> Vec<i16> {
    let p = root().join("tests/vectors/speech/wav/da-koerekort-01.wav");
    let mut r = hound::WavReader::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(r.spec().sample_rate, 16_000, "{}", p.display());
    r.samples::<i16>().map(Result::unwrap).collect()
}

/// Packets as a Chromium sender makes them (see the module comment).
fn browser_packets(pcm16: &[i16]) -> Vec<Vec<u8>> {
    let pcm48 = ivr_core::resample::resample(&Pcm::new(16_000, pcm16.to_vec()), 48_000)
        .unwrap()
        .samples;
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    enc.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
    enc.set_vbr(true).unwrap();
    enc.set_inband_fec(true).unwrap();
    enc.set_packet_loss_perc(1).unwrap();
    enc.set_complexity(9).unwrap();
    pcm48
        .chunks_exact(960)
        .map(|f| {
            let mut p = [0u8; 1500];
            let n = enc.encode(f, &mut p).unwrap();
            p[..n].to_vec()
        })
        .collect()
}

/// This thread's time on a CPU so far, in ns (`/proc/thread-self/schedstat`):
/// unlike the wall clock, time the thread waited for a core (other work on
/// the machine) is not in it.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Per-frame wall times of `op` (called with the frame index), after a
/// warm-up, sorted; and the mean CPU time per frame over them (µs).
fn time_frames(mut op: impl FnMut(usize)) -> (Vec<f64>, Option<f64>) {
    let warm = Instant::now();
    let mut i = 0usize;
    while warm.elapsed() < Duration::from_secs(1) {
        op(i);
        i += 1;
    }
    let mut v = Vec::with_capacity(TIMED_FRAMES);
    let cpu0 = thread_cpu_ns();
    for k in 0..TIMED_FRAMES {
        let t = Instant::now();
        op(i + k);
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e3 / TIMED_FRAMES as f64),
        _ => None,
    };
    v.sort_by(f64::total_cmp);
    (v, cpu)
}

/// Median, p95 and mean wall time, and mean CPU time, in µs.
struct Stat {
    median: f64,
    p95: f64,
    mean: f64,
    /// CPU time per frame (the mean wall time where the kernel does not say).
    cpu: f64,
}

fn stat((sorted, cpu): &(Vec<f64>, Option<f64>)) -> Stat {
    let at =
        |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    Stat {
        median: at(0.5),
        p95: at(0.95),
        mean,
        cpu: cpu.unwrap_or(mean),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let load_before = loadavg();
    let pcm = speech();
    let frames16: Vec<&[i16]> = pcm.chunks_exact(320).collect();
    let pcm8 = ivr_core::resample::resample(&Pcm::new(16_000, pcm.clone()), 8000)
        .unwrap()
        .samples;
    let frames8: Vec<&[i16]> = pcm8.chunks_exact(160).collect();
    let from_browser = browser_packets(&pcm);
    let alaw: Vec<Vec<u8>> = frames8
        .iter()
        .map(|f| {
            let mut p = vec![0u8; 160];
            ivr_media::g711::encode_alaw(f, &mut p);
            p
        })
        .collect();
    let silence = [0i16; 320];
    let mut out = [0u8; MAX_PAYLOAD];
    let mut pcm_out = [0i16; 960];
    let mut nb = [0i16; 160];

    let mut results: Vec<(&str, Stat)> = Vec::new();
    let mut dec = AudioDecoder::new(Codec::Opus);
    assert!(dec.is_ready(), "libopus decoder");
    let t = time_frames(|i| {
        let p = &from_browser[i % from_browser.len()];
        black_box(dec.decode_native(black_box(p), &mut pcm_out[..320]));
    });
    results.push(("opus_decode_browser_to_16k", stat(&t)));
    let mut enc = AudioEncoder::new(Codec::Opus);
    assert!(enc.is_ready(), "libopus encoder");
    let t = time_frames(|i| {
        black_box(enc.encode_native(black_box(frames16[i % frames16.len()]), &mut out));
    });
    results.push(("opus_encode_16k_speech", stat(&t)));
    let mut enc = AudioEncoder::new(Codec::Opus);
    let t = time_frames(|_| {
        black_box(enc.encode_native(black_box(&silence), &mut out));
    });
    results.push(("opus_encode_16k_silence", stat(&t)));
    // For comparison only (the engine uses libopus's default, 10): the same
    // encoder at lower complexities.
    for (name, complexity) in [
        ("opus_encode_16k_speech_complexity_5", 5),
        ("opus_encode_16k_speech_complexity_1", 1),
    ] {
        let mut e =
            opus::Encoder::new(16_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        e.set_bitrate(opus::Bitrate::Bits(24_000)).unwrap();
        e.set_complexity(complexity).unwrap();
        let t = time_frames(|i| {
            black_box(
                e.encode(black_box(frames16[i % frames16.len()]), &mut out)
                    .unwrap(),
            );
        });
        results.push((name, stat(&t)));
    }
    let mut down = Downsampler2x::new();
    let t = time_frames(|i| {
        black_box(down.process(black_box(frames16[i % frames16.len()]), &mut nb));
    });
    results.push(("opus_call_16k_to_8k_for_vad", stat(&t)));
    let mut dec = AudioDecoder::new(Codec::Pcma);
    let t = time_frames(|i| {
        // decode() = decode_native + the 2x upsampler the session runs.
        black_box(dec.decode(black_box(&alaw[i % alaw.len()]), &mut pcm_out[..320]));
    });
    results.push(("pcma_decode_with_upsampling_to_16k", stat(&t)));
    let mut enc = AudioEncoder::new(Codec::Pcma);
    let t = time_frames(|i| {
        black_box(enc.encode_native(black_box(frames8[i % frames8.len()]), &mut out));
    });
    results.push(("pcma_encode_8k", stat(&t)));
    let load_after = loadavg();

    let get = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
            .unwrap()
    };
    println!("opus: per 20 ms frame, µs (load average before {load_before}, after {load_after})");
    println!(
        "{:<38} {:>8} {:>8} {:>8} {:>8}",
        "", "median", "p95", "mean", "cpu"
    );
    for (n, s) in &results {
        println!(
            "{n:<38} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            s.median, s.p95, s.mean, s.cpu
        );
    }
    // Per call: 50 frames each way a second.
    let per_call = |dec: &Stat, enc: &Stat, extra: Option<&Stat>| {
        let us = |f: fn(&Stat) -> f64| {
            FRAMES_PER_S * (f(dec) + f(enc) + extra.map_or(0.0, f)) / 1e6 * 100.0
        };
        let pct_cpu = us(|s| s.cpu);
        serde_json::json!({
            "cpu_percent_of_one_core": pct_cpu,
            "cpu_percent_at_mean_wall_time": us(|s| s.mean),
            "cpu_percent_at_median_frames": us(|s| s.median),
            "cpu_percent_at_p95_frames": us(|s| s.p95),
            "calls_per_core": 100.0 / pct_cpu,
        })
    };
    let opus_speech = per_call(
        get("opus_decode_browser_to_16k"),
        get("opus_encode_16k_speech"),
        None,
    );
    let opus_quiet = per_call(
        get("opus_decode_browser_to_16k"),
        get("opus_encode_16k_silence"),
        None,
    );
    let opus_session = per_call(
        get("opus_decode_browser_to_16k"),
        get("opus_encode_16k_speech"),
        Some(get("opus_call_16k_to_8k_for_vad")),
    );
    let g711 = per_call(
        get("pcma_decode_with_upsampling_to_16k"),
        get("pcma_encode_8k"),
        None,
    );
    let pct = |v: &serde_json::Value| v["cpu_percent_of_one_core"].as_f64().unwrap();
    let cpc = |v: &serde_json::Value| v["calls_per_core"].as_f64().unwrap();
    println!("per call (50 frames each way a second, CPU time per frame):");
    for (n, v) in [
        ("opus, bot speaking (upper bound)", &opus_speech),
        ("opus, bot quiet", &opus_quiet),
        ("opus + 16->8 kHz for the VAD", &opus_session),
        ("g711 (PCMA) incl. 8->16 kHz", &g711),
    ] {
        println!(
            "  {n:<36} {:>7.3} % of one core  {:>8.0} calls per core (codec alone)",
            pct(v),
            cpc(v)
        );
    }
    println!(
        "  opus costs {:.0}x G.711 per call",
        pct(&opus_session) / pct(&g711)
    );
    let json = serde_json::json!({
        "bench": "opus",
        "unit": "µs per 20 ms frame",
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "frames_timed_per_operation": TIMED_FRAMES,
        "settings": {
            "engine_opus": "libopus via ivr_media::codec: 16 kHz mono, VoIP, 24 kbit/s encode; decode to 16 kHz",
            "browser_packets": "libopus 48 kHz mono VoIP, 32 kbit/s VBR, in-band FEC, complexity 9 (WebRTC desktop defaults)",
            "speech": "tests/vectors/speech/wav/da-koerekort-01.wav",
        },
        "frames": results.iter().map(|(n, s)| (n.to_string(), serde_json::json!({
            "median_us": s.median, "p95_us": s.p95, "mean_us": s.mean, "cpu_us": s.cpu,
        }))).collect::<serde_json::Map<_, _>>(),
        "per_call": {
            "opus_bot_speaking": opus_speech,
            "opus_bot_quiet": opus_quiet,
            "opus_with_vad_downsampling": opus_session,
            "g711_pcma_with_upsampling": g711,
        },
    });
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("opus.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("opus: wrote target/bench/opus.json");
}
