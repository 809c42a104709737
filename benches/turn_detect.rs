//! End-of-turn benchmark (issue 13): how long the engine waits after the
//! caller's true end of speech before it takes the turn, at no more than 5 %
//! false cut-offs (turns ended inside a mid-sentence pause), for each voice
//! activity detector with and without Smart Turn. The measure turn-detection
//! benchmarks use: the wait at a fixed false cut-off rate.
//!
//! - Data: `tests/vectors/turn/` (turns.toml, rendered by its generate.py
//!   into `target/turn-vectors/`, run here when missing): Danish (espeak-ng)
//!   and English (piper) turns with real pauses inside sentences ("jeg skal
//!   øh ... have fornyet mit pas", CPR numbers in pairs) and one-breath
//!   answers, two speakers each, over line hiss, through 8 kHz G.711.
//! - VADs on the same files: the energy VAD (`ivr_media::vad`), webrtc-vad
//!   (modes 1-3) and Silero VAD v6 (`ivr_turn::silero`).
//! - The engine's own endpointer (`ivr_media::endpointing`, adaptive end
//!   silence) on simulated time, 20 ms frames:
//!   - silence only: end silence swept 200-2000 ms;
//!   - with Smart Turn: a tentative end after `turn_silence` (150-300 ms),
//!     Smart Turn on its audio (the real model; its measured median run time
//!     is added before its verdict takes effect), the turn ends if the
//!     probability is at least the threshold (0.3-0.85), else after the
//!     fallback silence (400-2000 ms).
//! - Per configuration: false cut-off rate (the turn ended before its true
//!   end), and over the other turns the wait (decision - true end): median
//!   and p95. Per method, the configuration with the lowest median wait at
//!   <= 5 % cut-offs; the old 400 ms end silence; Smart Turn with the
//!   `[turn]` settings it has when turned on.
//!
//! Usage: `cargo run --release -p ivr-benches --bin turn_detect [-- --vads
//! energy,silero --quick]` (`--vads`: only these detectors; `--quick`: Smart
//! Turn asked after 200 ms only, thresholds 0.5 and 0.85) (part of
//! `make bench`; needs `make setup` for the models and python3 + piper-tts +
//! espeak-ng + sox to render the turns once). Writes
//! `target/bench/turn_detect.json` and prints a table.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm};
use ivr_media::endpointing::{Endpointer, EndpointingConfig, EndpointingEvent};
use ivr_media::vad::{FrameVad, Vad, VadConfig, VadFrame};
use ivr_turn::{SileroConfig, SileroModel, SmartTurn};

const FRAME_MS: u32 = 20;
const CUT_LIMIT: f64 = 0.05;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

use ivr_benches::turn_set::{load as load_turns, TurnFile};

fn load_files() -> Vec<TurnFile> {
    load_turns("turn_detect")
}

/// One file's detector: a frame of 8 kHz audio in, its verdict out.
type Detector = Box<dyn FnMut(&[i16]) -> VadFrame>;

/// A VAD's verdict on every 20 ms frame of every file (a fresh detector per file).
fn verdicts(files: &[TurnFile], mut make: impl FnMut() -> Detector) -> Vec<Vec<VadFrame>> {
    files
        .iter()
        .map(|f| {
            let mut v = make();
            f.audio8.chunks_exact(160).map(&mut v).collect()
        })
        .collect()
}

fn frame_vad(mut v: impl FrameVad + 'static) -> Detector {
    Box::new(move |f| v.process(f))
}

#[derive(Debug, Clone, Copy)]
struct Setting {
    end_silence_ms: u32,
    /// Smart Turn: (turn silence ms, threshold).
    smart: Option<(u32, f32)>,
}

/// The endpointer of one file under one setting: when the turn was taken
/// (ms from the start), or None.
#[allow(clippy::too_many_arguments)] // reason: a bench's inner loop; the state is the caller's
fn run_one(
    file_idx: usize,
    file: &TurnFile,
    vads: &[VadFrame],
    s: Setting,
    model_ms: u32,
    cache: &mut HashMap<(usize, usize, usize), f32>,
    vad_idx: usize,
    model: &SmartTurn,
    model_runs: &mut Vec<Duration>,
) -> Option<u32> {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    let cfg = EndpointingConfig {
        end_silence: ms(s.end_silence_ms),
        min_end_silence: ms(s.end_silence_ms.min(300)),
        max_end_silence: ms(s.end_silence_ms.max(800)),
        turn_silence: s.smart.map_or(Duration::ZERO, |(t, _)| ms(t)),
        ..EndpointingConfig::default()
    };
    let mut e = Endpointer::new(cfg);
    // A verdict in flight: (due at frame, probability).
    let mut pending: Option<(usize, f32)> = None;
    for (i, (pcm, v)) in file.audio16.chunks_exact(320).zip(vads).enumerate() {
        if let Some((due, p)) = pending {
            if i >= due {
                pending = None;
                if s.smart.is_some_and(|(_, th)| p >= th) {
                    if let Some(EndpointingEvent::Utterance(_)) = e.end_now() {
                        return Some(i as u32 * FRAME_MS);
                    }
                }
            }
        }
        match e.push(pcm, *v, false) {
            Some(EndpointingEvent::Utterance(_)) => return Some((i as u32 + 1) * FRAME_MS),
            Some(EndpointingEvent::Tentative(audio)) if s.smart.is_some() => {
                let key = (file_idx, vad_idx, audio.samples.len());
                let p = *cache.entry(key).or_insert_with(|| {
                    let t = Instant::now();
                    let p = model.predict(&audio).unwrap();
                    model_runs.push(t.elapsed());
                    p
                });
                let due = i + 1 + (model_ms as usize).div_ceil(FRAME_MS as usize);
                pending = Some((due, p));
            }
            Some(EndpointingEvent::Resumed) => pending = None,
            _ => {}
        }
    }
    None
}

#[derive(Debug, Clone)]
struct Score {
    setting: Setting,
    cut: usize,
    missed: usize,
    n: usize,
    median: f64,
    p95: f64,
    by_lang: Vec<(String, usize, f64)>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[allow(clippy::too_many_arguments)] // reason: as run_one
fn score(
    files: &[TurnFile],
    vads: &[Vec<VadFrame>],
    s: Setting,
    model_ms: u32,
    cache: &mut HashMap<(usize, usize, usize), f32>,
    vad_idx: usize,
    model: &SmartTurn,
    runs: &mut Vec<Duration>,
) -> Score {
    let (mut cut, mut missed) = (0, 0);
    let mut waits = Vec::new();
    let mut lang_cut: HashMap<String, usize> = HashMap::new();
    let mut lang_waits: HashMap<String, Vec<f64>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        match run_one(i, f, &vads[i], s, model_ms, cache, vad_idx, model, runs) {
            None => missed += 1,
            Some(t) if t < f.speech_end_ms => {
                cut += 1;
                *lang_cut.entry(f.lang.code().to_string()).or_default() += 1;
            }
            Some(t) => {
                let w = f64::from(t - f.speech_end_ms);
                waits.push(w);
                lang_waits
                    .entry(f.lang.code().to_string())
                    .or_default()
                    .push(w);
            }
        }
    }
    waits.sort_by(f64::total_cmp);
    let by_lang: Vec<(String, usize, f64)> = ["da", "en"]
        .iter()
        .map(|l| {
            let mut w = lang_waits.get(*l).cloned().unwrap_or_default();
            w.sort_by(f64::total_cmp);
            (
                (*l).to_string(),
                lang_cut.get(*l).copied().unwrap_or(0),
                percentile(&w, 50.0),
            )
        })
        .collect();
    Score {
        setting: s,
        cut,
        missed,
        n: files.len(),
        median: percentile(&waits, 50.0),
        p95: percentile(&waits, 95.0),
        by_lang,
    }
}

fn score_json(s: &Score) -> serde_json::Value {
    serde_json::json!({
        "end_silence_ms": s.setting.end_silence_ms,
        "smart_turn_silence_ms": s.setting.smart.map(|x| x.0),
        "smart_turn_threshold": s.setting.smart.map(|x| x.1),
        "false_cutoffs": s.cut,
        "missed": s.missed,
        "turns": s.n,
        "false_cutoff_rate": s.cut as f64 / s.n as f64,
        "wait_median_ms": s.median,
        "wait_p95_ms": s.p95,
        "by_lang": s.by_lang.iter().map(|(l, c, m)| serde_json::json!({"lang": l, "false_cutoffs": c, "wait_median_ms": m})).collect::<Vec<_>>(),
    })
}

fn describe(s: &Score) -> String {
    let smart = s
        .setting
        .smart
        .map_or("-".to_string(), |(t, th)| format!("{t} ms, p>={th}"));
    format!(
        "{:>5} ms {:>16} | cut {:>2}/{} ({:>4.1} %) | wait median {:>5.0} p95 {:>5.0} ms | da cut {} med {:.0} | en cut {} med {:.0}",
        s.setting.end_silence_ms,
        smart,
        s.cut + s.missed,
        s.n,
        100.0 * (s.cut + s.missed) as f64 / s.n as f64,
        s.median,
        s.p95,
        s.by_lang[0].1,
        s.by_lang[0].2,
        s.by_lang[1].1,
        s.by_lang[1].2,
    )
}

fn main() {
    let mut only: Option<Vec<String>> = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--vads" => {
                only = Some(
                    args.next()
                        .unwrap_or_default()
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                );
            }
            "--quick" => quick = true,
            "--bench" => {}
            other => {
                panic!("unknown argument {other}; see the doc comment of benches/turn_detect.rs")
            }
        }
    }
    let wanted = |name: &str| only.as_ref().is_none_or(|v| v.iter().any(|x| x == name));
    let files = load_files();
    let n = files.len();
    let with_pauses = files.iter().filter(|f| f.pauses > 0).count();
    println!(
        "turn_detect: {n} turns ({with_pauses} with pauses inside; {} Danish, {} English)",
        files.iter().filter(|f| f.lang == Lang::Da).count(),
        files.iter().filter(|f| f.lang == Lang::En).count()
    );
    let ort = root().join("models/onnxruntime/libonnxruntime.so");
    let silero = Arc::new(
        SileroModel::load(&root().join("models/turn/silero_vad.onnx"), &ort, 1).unwrap_or_else(
            |e| {
                eprintln!("turn_detect: {e}");
                std::process::exit(2)
            },
        ),
    );
    let model = SmartTurn::load(
        &root().join("models/turn/smart-turn-v3.2-cpu.onnx"),
        &ort,
        1,
    )
    .unwrap_or_else(|e| {
        eprintln!("turn_detect: {e}");
        std::process::exit(2)
    });

    // VAD verdicts (and Silero's cost per 20 ms frame, inline on the RTP path).
    let mut vad_sets: Vec<(&str, Vec<Vec<VadFrame>>)> = Vec::new();
    vad_sets.push((
        "energy",
        verdicts(&files, || frame_vad(Vad::new(VadConfig::default()))),
    ));
    for (mode, name) in [
        (1, "webrtc_mode1"),
        (2, "webrtc_mode2"),
        (3, "webrtc_mode3"),
    ] {
        vad_sets.push((
            name,
            verdicts(&files, || {
                let mode = match mode {
                    1 => webrtc_vad::VadMode::LowBitrate,
                    2 => webrtc_vad::VadMode::Aggressive,
                    _ => webrtc_vad::VadMode::VeryAggressive,
                };
                let mut v =
                    webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate8kHz, mode);
                Box::new(move |f: &[i16]| {
                    let speech = v.is_voice_segment(f).unwrap_or(false);
                    VadFrame {
                        speech,
                        voiced: speech,
                        ..Default::default()
                    }
                })
            }),
        ));
    }
    let t = Instant::now();
    let sil = verdicts(&files, || frame_vad(silero.vad(SileroConfig::default())));
    let frames: usize = files.iter().map(|f| f.audio8.len() / 160).sum();
    let silero_us_per_frame = t.elapsed().as_secs_f64() * 1e6 / frames as f64;
    vad_sets.push(("silero", sil));
    println!("turn_detect: Silero VAD costs {silero_us_per_frame:.0} us per 20 ms frame (one thread, noisy machine)");

    // Smart Turn's run time, measured on real tentative audio first.
    let mut runs: Vec<Duration> = Vec::new();
    for f in files.iter().take(12) {
        let cut = &f.audio16[..(f.speech_end_ms as usize + 200) * 16];
        let t = Instant::now();
        model.predict(&Pcm::new(16_000, cut.to_vec())).unwrap();
        runs.push(t.elapsed());
    }
    let mut r: Vec<f64> = runs.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    r.sort_by(f64::total_cmp);
    let model_ms = percentile(&r, 50.0).ceil() as u32;
    println!(
        "turn_detect: Smart Turn run median {model_ms} ms, p95 {:.0} ms (one thread, noisy machine); added before each verdict",
        percentile(&r, 95.0)
    );

    let mut cache = HashMap::new();
    let mut results = serde_json::Map::new();
    let mut summary = Vec::new();
    // The [turn] defaults for when Smart Turn is on.
    let default_setting = Setting {
        end_silence_ms: 700,
        smart: Some((200, 0.5)),
    };
    let (silences, thresholds): (&[u32], &[f32]) = if quick {
        (&[200], &[0.5, 0.85])
    } else {
        (&[150, 200, 250, 300], &[0.3, 0.5, 0.7, 0.85])
    };
    for (vi, (name, vads)) in vad_sets.iter().enumerate() {
        if !wanted(name) {
            continue;
        }
        // Silence only.
        let plain: Vec<Score> = (200..=2000)
            .step_by(50)
            .map(|x| {
                let s = Setting {
                    end_silence_ms: x,
                    smart: None,
                };
                score(&files, vads, s, model_ms, &mut cache, vi, &model, &mut runs)
            })
            .collect();
        // With Smart Turn.
        let mut smart = Vec::new();
        for &t in silences {
            for &th in thresholds {
                for x in (400..=2000).step_by(100) {
                    let s = Setting {
                        end_silence_ms: x,
                        smart: Some((t, th)),
                    };
                    smart.push(score(
                        &files, vads, s, model_ms, &mut cache, vi, &model, &mut runs,
                    ));
                }
            }
        }
        let best = |v: &[Score]| {
            v.iter()
                .filter(|s| (s.cut + s.missed) as f64 <= CUT_LIMIT * s.n as f64)
                .min_by(|a, b| a.median.total_cmp(&b.median).then(a.p95.total_cmp(&b.p95)))
                .cloned()
        };
        let engine_400 = plain
            .iter()
            .find(|s| s.setting.end_silence_ms == 400)
            .cloned();
        let at_default = score(
            &files,
            vads,
            default_setting,
            model_ms,
            &mut cache,
            vi,
            &model,
            &mut runs,
        );
        let (bp, bs) = (best(&plain), best(&smart));
        println!("\n{name}:");
        if let Some(s) = &engine_400 {
            println!("  silence 400 (old default)  {}", describe(s));
        }
        match &bp {
            Some(s) => println!("  best silence only         {}", describe(s)),
            None => println!("  silence only: no setting reaches <= 5 % cut-offs"),
        }
        match &bs {
            Some(s) => println!("  best with Smart Turn      {}", describe(s)),
            None => println!("  with Smart Turn: no setting reaches <= 5 % cut-offs"),
        }
        println!("  ST 200 ms, p>=0.5, fb 700  {}", describe(&at_default));
        summary.push((name.to_string(), bp.clone(), bs.clone()));
        results.insert(
            name.to_string(),
            serde_json::json!({
                "silence_400": engine_400.as_ref().map(score_json),
                "best_silence_only": bp.as_ref().map(score_json),
                "best_with_smart_turn": bs.as_ref().map(score_json),
                "smart_turn_200_threshold_05_fallback_700": score_json(&at_default),
                "sweep_silence_only": plain.iter().map(score_json).collect::<Vec<_>>(),
            }),
        );
    }
    let json = serde_json::json!({
        "bench": "turn_detect",
        "turns": n,
        "turns_with_pauses": with_pauses,
        "cutoff_limit": CUT_LIMIT,
        "data": "tests/vectors/turn/turns.toml rendered by generate.py (espeak-ng da, piper en Joe; 2 speakers; line hiss; G.711 A-law at 8 kHz)",
        "measure": "wait = turn taken - true end of speech, over turns not cut off; a cut-off = turn taken before the true end (inside a pause); best = lowest median wait with cut-offs + missed <= 5 %",
        "silero_us_per_frame": silero_us_per_frame,
        "smart_turn_run_ms_median": model_ms,
        "smart_turn_runs": runs.len(),
        "engine_default": "energy VAD, 400 ms end silence, Smart Turn off (the silence_400 row of energy)",
        "vads": results,
    });
    let out = root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("turn_detect.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("\nturn_detect: wrote target/bench/turn_detect.json");
}
