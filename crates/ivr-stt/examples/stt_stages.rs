//! Where whisper's time goes, stage by stage, straight on whisper-rs (one
//! thread): the mel spectrogram, the encoder at several `audio_ctx`, the
//! decoder's prefill (start-of-transcript, task tokens, a hints prompt) and
//! one decoder step, the logits read, per model file. Each figure is the
//! median of RUNS of the worker thread's own CPU time (from
//! `/proc/thread-self/schedstat`, so a loaded machine does not inflate it)
//! and of wall time.
//!
//! `cargo run -p ivr-stt --example stt_stages -- FILE.wav RUNS MODEL.bin [MODEL.bin...]`
#![allow(clippy::unwrap_used, clippy::expect_used)] // reason: a measuring tool

use std::path::Path;
use std::time::{Duration, Instant};

use ivr_core::ENGINE_RATE;
use ivr_stt::audio;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

/// This thread's CPU time so far.
fn cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns: u64 = s
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// Median CPU and wall time of `runs` calls of `f`.
fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut c = Vec::new();
    let mut w = Vec::new();
    for _ in 0..runs {
        let (c0, w0) = (cpu(), Instant::now());
        f();
        c.push((cpu() - c0).as_secs_f64() * 1000.0);
        w.push(w0.elapsed().as_secs_f64() * 1000.0);
    }
    c.sort_by(f64::total_cmp);
    w.sort_by(f64::total_cmp);
    (c[runs / 2], w[runs / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: stt_stages FILE.wav RUNS MODEL.bin [MODEL.bin...]");
        std::process::exit(2);
    }
    let runs: usize = args[2].parse().unwrap_or(5).max(1);
    let pcm = audio::read_wav(Path::new(&args[1])).expect("wav");
    let pcm = audio::resample(&pcm, ENGINE_RATE).expect("resample");
    let samples = pcm.to_f32();
    let secs = pcm.duration().as_secs_f64();
    println!(
        "{} ({secs:.2} s), {runs} runs, 1 thread: CPU ms / wall ms",
        args[1]
    );
    for model in &args[3..] {
        let mut cp = WhisperContextParameters::default();
        cp.use_gpu(false);
        // IVR_STT_FLASH_ATTN=1: whisper.cpp's flash attention.
        let flash = std::env::var("IVR_STT_FLASH_ATTN").is_ok_and(|v| v == "1");
        cp.flash_attn(flash);
        let ctx = WhisperContext::new_with_params(model, cp).expect("model");
        let mut st = ctx.create_state().expect("state");
        let params = |audio_ctx: i32, dur: i32| {
            let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
            p.set_n_threads(1);
            p.set_language(Some("da"));
            p.set_no_timestamps(true);
            p.set_single_segment(true);
            p.set_print_progress(false);
            p.set_print_realtime(false);
            p.set_print_special(false);
            p.set_print_timestamps(false);
            p.set_audio_ctx(audio_ctx);
            p.set_duration_ms(dur);
            p.set_max_tokens(1);
            p
        };
        let name = format!(
            "{}{}",
            Path::new(model).file_name().unwrap().to_string_lossy(),
            if flash { " flash" } else { "" }
        );
        let ctxs: Vec<i32> = std::env::var("IVR_STT_CTXS")
            .unwrap_or_else(|_| "96,128,160,192,256".into())
            .split(',')
            .filter_map(|c| c.parse().ok())
            .collect();
        let (c, w) = time(runs, || st.pcm_to_mel(&samples, 1).unwrap());
        println!("{name}: mel (whisper_pcm_to_mel) {c:.1} / {w:.1}");
        let (c, w) = time(runs, || st.full(params(160, 100), &samples).unwrap());
        println!("{name}: prime (whisper_full, 100 ms: mel + set-up) {c:.1} / {w:.1}");
        for &actx in &ctxs {
            st.full(params(actx, 100), &samples).unwrap();
            let (c, w) = time(runs, || st.encode(0, 1).unwrap());
            println!("{name}: encoder at audio_ctx {actx} {c:.1} / {w:.1}");
        }
        st.full(params(160, 100), &samples).unwrap();
        st.encode(0, 1).unwrap();
        let sot = ctx.token_sot();
        let task = [
            ctx.token_lang(whisper_rs::get_lang_id("da").unwrap()),
            ctx.token_transcribe(),
            ctx.token_not(),
        ];
        let (c, w) = time(runs, || st.decode(&[sot], 0, 1).unwrap());
        println!("{name}: decoder 1 token (sot, first call after encode) {c:.1} / {w:.1}");
        let (c, w) = time(runs, || st.decode(&task[..2], 1, 1).unwrap());
        println!("{name}: decoder batch of 2 {c:.1} / {w:.1}");
        let (c, w) = time(runs, || {
            for i in 0..20 {
                st.decode(&task[2..], 3 + i, 1).unwrap();
            }
        });
        println!(
            "{name}: decoder step (mean of 20 single tokens) {:.2} / {:.2}",
            c / 20.0,
            w / 20.0
        );
        let prompt = ctx
            .tokenize(" pas, nyt pas, kørekort, mitid, mit id, aflyse, aflysning, jobcenter, dagpenge, sagsbehandler, boligstøtte, pension, affald, storskrald, hjemmehjælp, ring mig op, medarbejder", 256)
            .unwrap();
        let (c, w) = time(runs, || st.decode(&prompt, 0, 1).unwrap());
        println!(
            "{name}: decoder prefill of the menu prompt ({} tokens) {c:.1} / {w:.1}",
            prompt.len()
        );
        let (c, w) = time(runs, || {
            let l = st.get_logits().unwrap().to_vec();
            std::hint::black_box(l);
        });
        println!("{name}: logits copy {c:.2} / {w:.2}");
        let (c, w) = time(runs, || {
            st.full(params(160, 100), &samples).unwrap();
            st.lang_detect(0, 1).unwrap();
        });
        println!("{name}: prime + language detection (encoder + 1 step) {c:.1} / {w:.1}");
    }
}
