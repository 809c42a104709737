//! Where the time of one transcription goes, stage by stage, with
//! whisper-rs primitives: mel spectrogram, encoder at the utterance's
//! context, one decoder step, and `whisper_full` as a whole (what the engine
//! used before it decoded itself). One thread unless `IVR_STT_THREADS`.
//!
//! `cargo run --release -p ivr-stt --example stt_profile -- MODEL.bin FILE.wav [RUNS]`

use std::path::Path;
use std::time::{Duration, Instant};

use ivr_stt::{audio, audio_ctx_for};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(model), Some(wav)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stt_profile MODEL.bin FILE.wav [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(5);
    let threads: usize = std::env::var("IVR_STT_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let pcm = audio::read_wav(Path::new(wav)).expect("wav");
    let pcm = audio::resample(&pcm, 16_000).expect("resample");
    let mut samples = pcm.to_f32();
    if samples.len() < 17_600 {
        samples.resize(17_600, 0.0);
    }
    let ctx_len = audio_ctx_for(pcm.duration(), 128);
    let mut cp = WhisperContextParameters::default();
    cp.use_gpu(false);
    let t = Instant::now();
    let ctx = WhisperContext::new_with_params(model, cp).expect("model");
    println!("load {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);
    let t = Instant::now();
    let mut state = ctx.create_state().expect("state");
    println!("create_state {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);
    let params = |ctx_len: u32, duration_ms: i32, max_tokens: i32| {
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_n_threads(threads as i32);
        p.set_language(Some("da"));
        p.set_no_context(true);
        p.set_no_timestamps(true);
        p.set_single_segment(true);
        p.set_print_special(false);
        p.set_print_progress(false);
        p.set_print_realtime(false);
        p.set_print_timestamps(false);
        p.set_suppress_blank(true);
        p.set_suppress_nst(true);
        p.set_temperature(0.0);
        p.set_temperature_inc(0.0);
        p.set_audio_ctx(ctx_len as i32);
        p.set_duration_ms(duration_ms);
        p.set_max_tokens(max_tokens);
        p
    };
    let sot = ctx.token_sot();
    let prefix = [
        sot,
        ctx.token_lang(whisper_rs::get_lang_id("da").unwrap_or(0)),
        ctx.token_transcribe(),
        ctx.token_not(),
    ];
    for ctx_len in [ctx_len, 1500.min(ctx_len * 2)] {
        let (mut mel, mut enc, mut dec, mut full) = (vec![], vec![], vec![], vec![]);
        let mut tokens = 0;
        for _ in 0..runs {
            let t = Instant::now();
            state
                .full(params(ctx_len, 100, 1), &samples)
                .expect("prime");
            mel.push(t.elapsed());
            let t = Instant::now();
            state.encode(0, threads).expect("encode");
            enc.push(t.elapsed());
            let t = Instant::now();
            state.decode(&prefix, 0, threads).expect("decode");
            let mut n_past = prefix.len();
            for _ in 0..10 {
                let l = state.get_logits().expect("logits");
                let best = (0..ctx.token_eot())
                    .max_by(|a, b| l[*a as usize].total_cmp(&l[*b as usize]))
                    .unwrap_or(0);
                state.decode(&[best], n_past, threads).expect("step");
                n_past += 1;
            }
            dec.push(t.elapsed() / 11);
            let t = Instant::now();
            state.full(params(ctx_len, 0, 40), &samples).expect("full");
            full.push(t.elapsed());
            tokens = state.as_iter().map(|s| s.n_tokens()).sum::<i32>();
        }
        let text: String = state
            .as_iter()
            .map(|s| s.to_str_lossy().map(|c| c.into_owned()).unwrap_or_default())
            .collect();
        println!(
            "audio {:.2} s, audio_ctx {ctx_len}, {threads} thread(s): mel {:.1} ms, encode {:.1} ms, decoder step {:.1} ms, whisper_full {:.1} ms ({tokens} tokens): {text}",
            pcm.duration().as_secs_f64(),
            median(mel),
            median(enc),
            median(dec),
            median(full),
        );
    }
}
