//! Text-to-speech speed (`cargo bench -p ivr-benches --bench tts`).
//!
//! Per voice (engine x language), with the prompt cache off so every run
//! synthesises, at the telephone rate (8 kHz):
//! - `load_ms`: voice load (piper: ONNX model into onnxruntime; espeak-ng: voice
//!   selection), a fresh engine each run;
//! - `first_audio_ms`: time to the first sentence's audio of a three-sentence
//!   reply (what the caller waits for when a reply is streamed);
//!   (`first_sentence_audio_s` is how long that first piece plays);
//! - `rtf`: synthesis time of the whole reply / its audio duration;
//! - `cached_first_audio_us`: the same prompt from the memory cache.
//!
//! Medians of `RUNS` runs; written to `target/bench/tts.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ivr_tts::{CacheConfig, Config, SpeechStream, TextToSpeech, Tts};
use serde_json::json;

const RUNS: usize = 9;
const RATE: u32 = 8_000;

const VOICES: [(&str, &str, &str); 3] = [
    (
        "espeak-da",
        "da",
        "Tak for dit opkald. Du er nu i kø til Borgerservice. Der er tre personer foran dig, og ventetiden er cirka fem minutter.",
    ),
    (
        "piper-en-joe",
        "en",
        "Thank you for calling. You are now in the queue for citizen services. There are three people ahead of you, and the waiting time is about five minutes.",
    ),
    (
        "espeak-en",
        "en",
        "Thank you for calling. You are now in the queue for citizen services. There are three people ahead of you, and the waiting time is about five minutes.",
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config(memory_entries: usize) -> Config {
    Config {
        voices_dir: root().join("voices"),
        onnxruntime: root().join("models/onnxruntime/libonnxruntime.so"),
        output_rate: RATE,
        cache: CacheConfig {
            dir: None,
            memory_entries,
            disk_max_mb: 0,
        },
        ..Config::default()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let mut results = Vec::new();
    for (voice, lang, text) in VOICES {
        let mut load = Vec::new();
        let mut first = Vec::new();
        let mut rtf = Vec::new();
        let mut audio_s = 0.0;
        let mut first_chunk_s = 0.0;
        let mut engine = String::new();
        for run in 0..=RUNS {
            let tts = Tts::new(config(0)).expect("tts config");
            engine = tts
                .registry()
                .get(voice)
                .expect("voice")
                .engine
                .name()
                .to_string();
            let t = Instant::now();
            if let Err(e) = tts.load_voice(voice) {
                panic!("{voice}: {e} (run `make setup`)");
            }
            let l = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut stream = SpeechStream::new(&tts, text, voice);
            let first_chunk = stream.next().expect("a sentence").expect("synthesis");
            let f = t.elapsed().as_secs_f64();
            first_chunk_s = first_chunk.duration().as_secs_f64();
            let t = Instant::now();
            let whole = tts.synthesize(text, voice).expect("synthesis");
            let s = t.elapsed().as_secs_f64();
            audio_s = whole.duration().as_secs_f64();
            if run == 0 {
                continue; // warm-up: page cache, onnxruntime environment
            }
            load.push(l * 1e3);
            first.push(f * 1e3);
            rtf.push(s / audio_s);
        }
        // Cached: the second request of the same prompt.
        let tts = Tts::new(config(64)).expect("tts config");
        tts.synthesize(text, voice).expect("synthesis");
        let cached: Vec<f64> = (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let _ = tts.synthesize(text, voice).expect("cached");
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let r = json!({
            "voice": voice,
            "engine": engine,
            "lang": lang,
            "output_rate": RATE,
            "reply_audio_s": (audio_s * 100.0).round() / 100.0,
            "first_sentence_audio_s": (first_chunk_s * 100.0).round() / 100.0,
            "load_ms": (median(load) * 10.0).round() / 10.0,
            "first_audio_ms": (median(first) * 10.0).round() / 10.0,
            "rtf": (median(rtf) * 1000.0).round() / 1000.0,
            "cached_first_audio_us": median(cached).round(),
        });
        println!("tts {r}");
        results.push(r);
    }
    let out = json!({
        "bench": "tts",
        "runs": RUNS,
        "statistic": "median",
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "piper_threads": Config::default().piper_threads,
        "voices": results,
    });
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let path = dir.join("tts.json");
    std::fs::write(&path, serde_json::to_string_pretty(&out).expect("json"))
        .expect("write tts.json");
    println!("wrote {}", path.display());
}
