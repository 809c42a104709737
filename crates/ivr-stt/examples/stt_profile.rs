//! Where the time of one transcription goes: the engine's recogniser on one
//! file, both decoder paths (`[stt] decode`: `steps` and `full`) and any
//! model files given, median of RUNS runs at one thread (`IVR_STT_THREADS`),
//! with the stages the transcript reports (encoder, decoder, answer check,
//! decoder calls). A quick look without the release build `make bench`
//! needs (whisper.cpp and this crate are optimised in dev builds too).
//!
//! `cargo run -p ivr-stt --example stt_profile -- FILE.wav RUNS MODEL.bin [MODEL.bin...]`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ivr_core::{Lang, ENGINE_RATE};
use ivr_stt::{audio, Decode, SpeechToText, SttConfig, SttRequest, WhisperStt};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: stt_profile FILE.wav RUNS MODEL.bin [MODEL.bin...]");
        std::process::exit(2);
    }
    let runs: usize = args[2].parse().unwrap_or(5).max(1);
    let threads: usize = std::env::var("IVR_STT_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let pcm = audio::read_wav(Path::new(&args[1])).expect("wav");
    let pcm = audio::resample(&pcm, ENGINE_RATE).expect("resample");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for model in &args[3..] {
        for decode in [Decode::Steps, Decode::Full] {
            let config = SttConfig {
                model: PathBuf::from(model),
                workers: 1,
                threads,
                decode,
                ..SttConfig::default()
            };
            let stt = WhisperStt::load(&config).expect("model");
            let hear = || {
                rt.block_on(stt.transcribe(SttRequest::new(pcm.clone(), Lang::Da)))
                    .expect("transcribe")
            };
            hear();
            let mut all: Vec<(Duration, ivr_stt::Transcript)> = (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    let r = hear();
                    (t.elapsed(), r)
                })
                .collect();
            all.sort_by_key(|r| r.0);
            let (took, t) = &all[runs / 2];
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!(
                "{model} {decode:?} {threads}t {:.2} s audio (ctx {}): median {:.0} ms (min {:.0}); encoder {:.0} ms, decoder {:.0} ms in {} calls, check {:.0} ms",
                pcm.duration().as_secs_f64(),
                t.timing.audio_ctx,
                ms(*took),
                ms(all[0].0),
                ms(t.timing.encoding),
                ms(t.timing.decoding),
                t.timing.decoder_steps,
                ms(t.timing.spotting),
            );
        }
    }
}
