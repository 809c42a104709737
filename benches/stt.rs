//! STT latency: Whisper (as `make setup` prepares it, or `IVR_STT_MODEL`)
//! on 1, 3 and 5 s utterances in Danish and English, median of several runs
//! from submit to transcript (the stage "end of speech -> text" of the
//! latency budget). Audio comes from the speech test set
//! (`tests/vectors/speech`, or `IVR_SPEECH_VECTORS`): for each length the
//! utterance closest to it, trimmed or padded with silence to exactly that
//! length. Measures with 1 whisper thread and with min(cores, 4) threads
//! (`IVR_STT_BENCH_THREADS=1,2` to choose), 3 s also with language detection
//! between da and en and with the Nordby menu's expected answers (checked
//! against the audio). Each for both decoder paths (`[stt] decode`: `steps`,
//! the default, and `full`, the earlier `whisper_full` path;
//! `IVR_STT_BENCH_DECODE=steps` to choose) and both model files (q8_0 and
//! f16 beside it; `IVR_STT_BENCH_MODELS=q8_0`), with the stage breakdown
//! (encoder, decoder, candidate check, decoder calls). Writes
//! `target/bench/stt.json` and prints a table.
//!
//! `cargo bench -p ivr-benches --bench stt` (part of `make bench`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm, ENGINE_RATE};
use ivr_stt::{
    audio, Candidate, Decode, LanguageChoice, SpeechToText, SttConfig, SttRequest, Transcript,
    WhisperStt,
};

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
    let list = |var: &str, default: &str| -> Vec<String> {
        std::env::var(var)
            .unwrap_or_else(|_| default.to_string())
            .split(',')
            .map(|s| s.trim().to_string())
            .collect()
    };
    // q8_0 and the f16 file beside it (when IVR_STT_MODEL is not set).
    let models: Vec<PathBuf> = if std::env::var_os("IVR_STT_MODEL").is_some() {
        vec![model.clone()]
    } else {
        list("IVR_STT_BENCH_MODELS", "q8_0,f16")
            .iter()
            .map(|m| match m.as_str() {
                "f16" => model.with_file_name("ggml-base.bin"),
                _ => model.clone(),
            })
            .filter(|p| p.is_file())
            .collect()
    };
    let decodes: Vec<Decode> = list("IVR_STT_BENCH_DECODE", "steps,full")
        .iter()
        .map(|d| {
            if d == "full" {
                Decode::Full
            } else {
                Decode::Steps
            }
        })
        .collect();
    let mut rows = Vec::new();
    let mut loads = Vec::new();
    for model in &models {
        for &decode in &decodes {
            for &threads in &thread_counts {
                let config = SttConfig {
                    model: model.clone(),
                    workers: 1,
                    threads,
                    queue: 2,
                    decode,
                    ..SttConfig::default()
                };
                let load = Instant::now();
                let stt = WhisperStt::load(&config).unwrap_or_else(|e| panic!("{e}"));
                let load = load.elapsed();
                loads.push(
            serde_json::json!({"threads": threads, "model_load_ms": load.as_secs_f64() * 1000.0}),
        );
                println!(
                    "stt: model {} loaded in {:.2} s, {threads} threads, decode {decode:?}",
                    model.display(),
                    load.as_secs_f64()
                );
                measure(&rt, &stt, threads, decode, &set, &vectors, model, &mut rows);
            }
        }
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

/// The Nordby menu's expected answers (flows/nordby/main.toml, step `menu`,
/// a few keywords each): what a menu question passes with its request.
fn menu_candidates() -> Vec<Candidate> {
    [
        ("pas", &["pas", "nyt pas"][..]),
        ("koerekort", &["kørekort"]),
        ("mitid", &["mitid", "mit id"]),
        ("jobcenter_aflys", &["aflyse", "aflysning"]),
        ("jobcenter", &["jobcenter", "dagpenge", "sagsbehandler"]),
        ("ydelser", &["boligstøtte", "pension"]),
        ("teknik", &["affald", "storskrald", "skrald"]),
        ("omsorg", &["hjemmehjælp", "plejehjem"]),
        ("callback", &["ring mig op", "ringe tilbage"]),
        ("medarbejder", &["medarbejder", "menneske"]),
    ]
    .iter()
    .map(|(label, phrases)| Candidate {
        label: label.to_string(),
        phrases: phrases.iter().map(|p| p.to_string()).collect(),
    })
    .collect()
}

#[allow(clippy::too_many_arguments)] // reason: one row of the bench's table
fn measure(
    rt: &tokio::runtime::Runtime,
    stt: &WhisperStt,
    threads: usize,
    decode: Decode,
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
                ("menu", LanguageChoice::Fixed(lang)),
            ] {
                if mode != "fixed" && secs != 3 || mode == "menu" && lang != Lang::Da {
                    continue;
                }
                let request = || SttRequest {
                    audio: clip.clone(),
                    language: language.clone(),
                    hints: u.keywords.clone(),
                    candidates: if mode == "menu" {
                        menu_candidates()
                    } else {
                        Vec::new()
                    },
                };
                rt.block_on(stt.transcribe(request())).expect("warm-up");
                let mut runs: Vec<(Duration, Transcript)> = (0..RUNS)
                    .map(|_| {
                        let t = Instant::now();
                        let r = rt.block_on(stt.transcribe(request())).expect("transcribe");
                        (t.elapsed(), r)
                    })
                    .collect();
                runs.sort_by_key(|r| r.0);
                let times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                let median = ms(times[RUNS / 2]);
                let stage = |f: fn(&Transcript) -> Duration| {
                    let mut v: Vec<Duration> = runs.iter().map(|r| f(&r.1)).collect();
                    v.sort();
                    ms(v[RUNS / 2])
                };
                let (encoding, decoding, spotting) = (
                    stage(|t| t.timing.encoding),
                    stage(|t| t.timing.decoding),
                    stage(|t| t.timing.spotting),
                );
                let steps = runs[RUNS / 2].1.timing.decoder_steps;
                let file = model.file_name().map(|f| f.to_string_lossy().into_owned());
                println!(
                    "stt {:?} {decode:?} {threads}t {lang} {secs} s ({mode}, from {} of {:.1} s): median {median:.0} ms (min {:.0}, max {:.0}); encoder {encoding:.0} ms, decoder {decoding:.0} ms ({steps} calls), check {spotting:.0} ms",
                    file.as_deref().unwrap_or("?"),
                    u.id,
                    pcm.duration().as_secs_f64(),
                    ms(times[0]),
                    ms(times[RUNS - 1])
                );
                rows.push(serde_json::json!({
                    "engine": "whisper",
                    "decode": format!("{decode:?}").to_lowercase(),
                    "encoder_ms": encoding,
                    "decoder_ms": decoding,
                    "check_ms": spotting,
                    "decoder_calls": steps,
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
