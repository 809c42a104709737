//! STT latency: Whisper (as `make setup` prepares it, or `IVR_STT_MODEL`)
//! on 1, 3 and 5 s utterances in Danish and English, median of several runs
//! from submit to transcript (the stage "end of speech -> text" of the
//! latency budget). Audio comes from the speech test set
//! (`tests/vectors/speech`, or `IVR_SPEECH_VECTORS`): for each length the
//! utterance closest to it, trimmed or padded with silence to exactly that
//! length. Measures with 1 whisper thread and with min(cores, 4) threads
//! (`IVR_STT_BENCH_THREADS=1,2` to choose), 3 s also with language detection
//! between da and en. Writes `target/bench/stt.json` and prints a table.
//!
//! `cargo bench -p ivr-benches --bench stt` (part of `make bench`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm, ENGINE_RATE};
use ivr_stt::{audio, LanguageChoice, SpeechToText, SttConfig, SttRequest, WhisperStt};

const RUNS: usize = 7;

#[derive(serde::Deserialize)]
struct TestSet {
    utterance: Vec<Utterance>,
}

#[derive(serde::Deserialize)]
struct Utterance {
    id: String,
    lang: Lang,
    #[serde(default)]
    keywords: Vec<String>,
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let vectors = std::env::var_os("IVR_SPEECH_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/vectors/speech"));
    let model = std::env::var_os("IVR_STT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/whisper-base/ggml-base-q8_0.bin"));
    let set: TestSet = toml::from_str(
        &std::fs::read_to_string(vectors.join("utterances.toml"))
            .unwrap_or_else(|e| panic!("speech test set missing in {} ({e})", vectors.display())),
    )
    .expect("utterances.toml parses");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // IVR_STT_BENCH_THREADS=1,2 lists the whisper thread counts to measure.
    let mut thread_counts: Vec<usize> = std::env::var("IVR_STT_BENCH_THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, cores.clamp(1, 4)]);
    thread_counts.dedup();
    let mut rows = Vec::new();
    let mut loads = Vec::new();
    for threads in thread_counts {
        let config = SttConfig {
            model: model.clone(),
            workers: 1,
            threads,
            queue: 2,
            ..SttConfig::default()
        };
        let load = Instant::now();
        let stt = WhisperStt::load(&config).unwrap_or_else(|e| panic!("{e}"));
        let load = load.elapsed();
        loads.push(
            serde_json::json!({"threads": threads, "model_load_ms": load.as_secs_f64() * 1000.0}),
        );
        println!(
            "stt: model {} loaded in {:.2} s, {threads} threads",
            model.display(),
            load.as_secs_f64()
        );
        measure(&rt, &stt, threads, &set, &vectors, &model, &mut rows);
    }
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let json = serde_json::json!({
        "bench": "stt",
        "cores": cores,
        "model_load": loads,
        "results": rows,
    });
    let path = out.join("stt.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json"))
        .expect("write stt.json");
    println!("stt: wrote {}", path.display());
}

fn measure(
    rt: &tokio::runtime::Runtime,
    stt: &WhisperStt,
    threads: usize,
    set: &TestSet,
    vectors: &Path,
    model: &Path,
    rows: &mut Vec<serde_json::Value>,
) {
    for lang in [Lang::Da, Lang::En] {
        let candidates: Vec<(&Utterance, Pcm)> = set
            .utterance
            .iter()
            .filter(|u| u.lang == lang)
            .map(|u| {
                let p = audio::read_wav(&vectors.join("wav").join(format!("{}.wav", u.id)))
                    .expect("wav readable");
                (u, audio::resample(&p, ENGINE_RATE).expect("resample"))
            })
            .collect();
        assert!(
            !candidates.is_empty(),
            "no {lang} utterances in the test set"
        );
        for secs in [1u64, 3, 5] {
            let target = Duration::from_secs(secs);
            let (u, pcm) = candidates
                .iter()
                .min_by_key(|(_, p)| p.duration().abs_diff(target))
                .expect("candidates not empty");
            let mut samples = pcm.samples.clone();
            samples.resize(ENGINE_RATE as usize * secs as usize, 0);
            let clip = Pcm::new(ENGINE_RATE, samples);
            for (mode, language) in [
                ("fixed", LanguageChoice::Fixed(lang)),
                ("detect", LanguageChoice::DetectAmong(Lang::ALL.to_vec())),
            ] {
                if mode == "detect" && secs != 3 {
                    continue;
                }
                let request = || SttRequest {
                    audio: clip.clone(),
                    language: language.clone(),
                    hints: u.keywords.clone(),
                };
                rt.block_on(stt.transcribe(request())).expect("warm-up");
                let mut times: Vec<Duration> = (0..RUNS)
                    .map(|_| {
                        let t = Instant::now();
                        rt.block_on(stt.transcribe(request())).expect("transcribe");
                        t.elapsed()
                    })
                    .collect();
                times.sort();
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                let median = ms(times[RUNS / 2]);
                println!(
                    "stt {threads}t {lang} {secs} s ({mode} language, from {} of {:.1} s): median {median:.0} ms (min {:.0}, max {:.0})",
                    u.id,
                    pcm.duration().as_secs_f64(),
                    ms(times[0]),
                    ms(times[RUNS - 1])
                );
                rows.push(serde_json::json!({
                    "engine": "whisper",
                    "threads": threads,
                    "model": model.file_name().map(|f| f.to_string_lossy().into_owned()),
                    "language": lang.code(),
                    "language_mode": mode,
                    "utterance_seconds": secs,
                    "source_utterance": u.id,
                    "runs": RUNS,
                    "median_ms": median,
                    "min_ms": ms(times[0]),
                    "max_ms": ms(times[RUNS - 1]),
                }));
            }
        }
    }
}
