//! STT latency: Whisper base on 1, 3 and 5 s utterances in Danish and
//! English, from submit to transcript (the stage "end of speech -> text" of
//! the latency budget), on ONE whisper thread by default, for each of these
//! settings:
//!
//! - `old`: what the engine shipped before issue 13: q8_0 and `[stt] decode
//!   = "full"` (`whisper_full`, which encodes again after identification);
//! - `steps-q8_0`: the step-wise decoder on the q8_0 file;
//! - `steps-f16`: the step-wise decoder on the f16 file (not run unless
//!   asked for);
//! - `fast`: the default configuration (`SttConfig::default()`: the
//!   step-wise decoder on the q4_0 file `make setup` prepares).
//!
//! Audio comes from the speech test set (`tests/vectors/speech`, or
//! `IVR_SPEECH_VECTORS`): for each length the utterance closest to it,
//! trimmed or padded with silence to exactly that length. 3 s is also
//! measured with language identification between da and en (`detect`),
//! with the Nordby menu's hints and expected answers (`menu`, Danish; and
//! `answer`, in both languages, on an answer that names its errand, padded
//! to 3 s: the expected answer is found and checked against the audio), and (Danish)
//! recognised again in Danish right after identification among da and en
//! (`again`: the flow's `RecognizeAgain`, on the encoding the worker still
//! holds; only the second pass is timed). Every run's audio differs from
//! the others in its first sample (by the run's number, an inaudible
//! change), so that no run but `again`'s second pass finds its audio
//! encoded already (the worker keeps the last encoding for that).
//!
//! Per row: median and p95 of the wall time over `IVR_STT_BENCH_RUNS` runs
//! (default 20, after one warm-up), the same for the worker thread's own CPU
//! time (from `/proc/<pid>/task/<tid>/schedstat`: what the figure would be
//! on an idle machine, as far as one thread's CPU time tells; the other
//! helpers' builds share the 2 cores when this runs), the stage breakdown
//! (encoder, decoder, answer check, decoder calls), and the ratio of the
//! median to the `old` setting's. The machine's load average is recorded
//! with the results. Writes `target/bench/stt.json` and prints a table.
//!
//! `cargo bench -p ivr-benches --bench stt` (part of `make bench`).
//! `IVR_STT_BENCH_SETTINGS=fast,old` chooses settings;
//! `IVR_STT_BENCH_THREADS=1,2` whisper thread counts (default 1).
#![allow(clippy::unwrap_used, clippy::expect_used)] // reason: a bench harness

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm, ENGINE_RATE};
use ivr_stt::{
    audio, Candidate, Decode, LanguageChoice, SpeechToText, SttConfig, SttRequest, Transcript,
    WhisperStt,
};

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

/// One setting measured: its name, model file and decoder path.
struct Setting {
    name: &'static str,
    model: PathBuf,
    decode: Decode,
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let vectors = std::env::var_os("IVR_SPEECH_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tests/vectors/speech"));
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
    let list = |var: &str, default: &str| -> Vec<String> {
        std::env::var(var)
            .unwrap_or_else(|_| default.to_string())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let thread_counts: Vec<usize> = list("IVR_STT_BENCH_THREADS", "1")
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    let runs: usize = std::env::var("IVR_STT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20)
        .max(1);
    let default = SttConfig::default();
    let models = root.join("models/whisper-base");
    let q8 = models.join("ggml-base-q8_0.bin");
    let settings: Vec<Setting> = list("IVR_STT_BENCH_SETTINGS", "old,steps-q8_0,fast")
        .iter()
        .filter_map(|s| match s.as_str() {
            "old" => Some(Setting {
                name: "old",
                model: q8.clone(),
                decode: Decode::Full,
            }),
            "steps-q8_0" => Some(Setting {
                name: "steps-q8_0",
                model: q8.clone(),
                decode: Decode::Steps,
            }),
            "steps-f16" => Some(Setting {
                name: "steps-f16",
                model: models.join("ggml-base.bin"),
                decode: Decode::Steps,
            }),
            "fast" => Some(Setting {
                name: "fast",
                model: root.join(&default.model),
                decode: default.decode,
            }),
            _ => None,
        })
        .collect();
    let load_before = loadavg();
    let mut rows = Vec::new();
    let mut loads = Vec::new();
    for setting in &settings {
        if !setting.model.is_file() {
            println!(
                "stt: {} skipped: {} missing (make setup)",
                setting.name,
                setting.model.display()
            );
            continue;
        }
        for &threads in &thread_counts {
            let config = SttConfig {
                model: setting.model.clone(),
                workers: 1,
                threads,
                queue: 2,
                decode: setting.decode,
                ..SttConfig::default()
            };
            let load = Instant::now();
            let stt = WhisperStt::load(&config).unwrap_or_else(|e| panic!("{e}"));
            let load = load.elapsed();
            loads.push(serde_json::json!({
                "setting": setting.name,
                "threads": threads,
                "model_load_ms": load.as_secs_f64() * 1000.0,
            }));
            println!(
                "stt: {} ({}, decode {:?}) loaded in {:.2} s, {threads} thread(s)",
                setting.name,
                setting.model.display(),
                setting.decode,
                load.as_secs_f64()
            );
            measure(&rt, &stt, setting, threads, runs, &set, &vectors, &mut rows);
        }
    }
    // The ratio of each row's median to the `old` setting's same row.
    let key = |r: &serde_json::Value| {
        (
            r["threads"].as_u64(),
            r["language"].as_str().map(str::to_string),
            r["language_mode"].as_str().map(str::to_string),
            r["utterance_seconds"].as_u64(),
        )
    };
    let olds: Vec<serde_json::Value> = rows
        .iter()
        .filter(|r| r["setting"] == "old")
        .cloned()
        .collect();
    println!("\n| setting | threads | lang | mode | audio | median ms | p95 ms | CPU median ms | CPU p95 ms | vs old |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows.iter_mut() {
        let old = olds.iter().find(|o| key(o) == key(r));
        let ratio = old.and_then(|o| {
            Some(r["median_ms"].as_f64()? / o["median_ms"].as_f64()?.max(f64::MIN_POSITIVE))
        });
        let cpu_ratio = old.and_then(|o| {
            Some(r["cpu_median_ms"].as_f64()? / o["cpu_median_ms"].as_f64()?.max(0.001))
        });
        r["median_vs_old"] = serde_json::json!(ratio);
        r["cpu_median_vs_old"] = serde_json::json!(cpu_ratio);
        println!(
            "| {} | {} | {} | {} | {} s | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            r["setting"].as_str().unwrap_or("?"),
            r["threads"],
            r["language"].as_str().unwrap_or("?"),
            r["language_mode"].as_str().unwrap_or("?"),
            r["utterance_seconds"],
            r["median_ms"].as_f64().unwrap_or(0.0),
            r["p95_ms"].as_f64().unwrap_or(0.0),
            r["cpu_median_ms"].as_f64().unwrap_or(0.0),
            r["cpu_p95_ms"].as_f64().unwrap_or(0.0),
            ratio.map_or("-".into(), |x| format!(
                "{x:.2} (CPU {:.2})",
                cpu_ratio.unwrap_or(0.0)
            )),
        );
    }
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).expect("target/bench");
    let json = serde_json::json!({
        "bench": "stt",
        "cores": cores,
        "runs": runs,
        "load_average_before": load_before,
        "load_average_after": loadavg(),
        "model_load": loads,
        "results": rows,
    });
    let path = out.join("stt.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json"))
        .expect("write stt.json");
    println!("stt: wrote {}", path.display());
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// CPU time used so far by this process's threads named `stt-worker-*`
/// (the pool's workers; whisper runs on them with one thread).
fn worker_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ns = 0u64;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("stt-worker") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

/// The Nordby menu's expected answers (flows/nordby/main.toml, step `menu`,
/// a few keywords each, in `lang`): what a menu question passes with its
/// request.
fn menu_candidates(lang: Lang) -> Vec<Candidate> {
    let da: [(&str, &[&str]); 10] = [
        ("pas", &["pas", "nyt pas"]),
        ("koerekort", &["kørekort"]),
        ("mitid", &["mitid", "mit id"]),
        ("jobcenter_aflys", &["aflyse", "aflysning"]),
        ("jobcenter", &["jobcenter", "dagpenge", "sagsbehandler"]),
        ("ydelser", &["boligstøtte", "pension"]),
        ("teknik", &["affald", "storskrald", "skrald"]),
        ("omsorg", &["hjemmehjælp", "plejehjem"]),
        ("callback", &["ring mig op", "ringe tilbage"]),
        ("medarbejder", &["medarbejder", "menneske"]),
    ];
    let en: [(&str, &[&str]); 10] = [
        ("pas", &["passport"]),
        ("koerekort", &["driving licence", "driver's license"]),
        ("mitid", &["mitid", "my id"]),
        ("jobcenter_aflys", &["cancel", "call off"]),
        ("jobcenter", &["job centre", "unemployment", "caseworker"]),
        ("ydelser", &["housing benefit", "pension"]),
        ("teknik", &["rubbish", "bulky waste", "bin"]),
        ("omsorg", &["home care", "nursing home"]),
        ("callback", &["call me back", "call back"]),
        ("medarbejder", &["real person", "someone"]),
    ];
    let list = if lang == Lang::Da { da } else { en };
    list.iter()
        .map(|(label, phrases)| Candidate {
            label: label.to_string(),
            phrases: phrases.iter().map(|p| p.to_string()).collect(),
        })
        .collect()
}

/// The Nordby menu's hints in `lang`, as the shipped flow gives them to the
/// recogniser (flows/nordby/main.toml, step `menu`).
fn menu_hints(lang: Lang) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/nordby/main.toml");
    let flow = ivr_flow::load::parse_flow_file(&path)
        .unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
    match flow.step_named("menu").map(|s| &s.kind) {
        Some(ivr_flow::model::StepKind::Gather(g)) => {
            g.hints.get(&lang).cloned().unwrap_or_default()
        }
        _ => panic!("{}: no gather step `menu`", path.display()),
    }
}

/// An answer to the menu that names its errand (the latency harness's menu
/// turn), for the `answer` rows: the recogniser finds an expected answer in
/// it and checks it against the audio.
fn menu_answer_id(lang: Lang) -> &'static str {
    if lang == Lang::Da {
        "da-boligstoette-01"
    } else {
        "en-housing-benefit-01"
    }
}

/// The median and the 95th percentile (nearest rank) of sorted values.
fn median_p95(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len();
    let p95 = ((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1;
    (sorted[n / 2], sorted[p95])
}

#[allow(clippy::too_many_arguments)] // reason: one setting's rows of the table
fn measure(
    rt: &tokio::runtime::Runtime,
    stt: &WhisperStt,
    setting: &Setting,
    threads: usize,
    runs: usize,
    set: &TestSet,
    vectors: &Path,
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
            for (mode, language) in [
                ("fixed", LanguageChoice::Fixed(lang)),
                (
                    "detect",
                    LanguageChoice::DetectAmong(vec![Lang::Da, Lang::En]),
                ),
                ("menu", LanguageChoice::Fixed(lang)),
                ("answer", LanguageChoice::Fixed(lang)),
                (
                    "again",
                    LanguageChoice::Identify {
                        current: lang,
                        among: vec![lang],
                    },
                ),
            ] {
                if mode != "fixed" && secs != 3
                    || (mode == "menu" || mode == "again") && lang != Lang::Da
                {
                    continue;
                }
                let (u, pcm) = if mode == "answer" {
                    match candidates
                        .iter()
                        .find(|(u, _)| u.id == menu_answer_id(lang))
                    {
                        Some((u, p)) => (u, p),
                        None => continue,
                    }
                } else {
                    (u, pcm)
                };
                let mut samples = pcm.samples.clone();
                samples.resize(ENGINE_RATE as usize * secs as usize, 0);
                let clip = Pcm::new(ENGINE_RATE, samples);
                // Run k's audio: the clip with its first sample changed by k.
                let audio = |k: usize| {
                    let mut a = clip.clone();
                    if let Some(first) = a.samples.first_mut() {
                        *first = first.wrapping_add(i16::try_from(k % 1000).unwrap_or(0));
                    }
                    a
                };
                // What the question gives the recogniser (read before any
                // run is timed).
                let (hints, expected) = if mode == "menu" || mode == "answer" {
                    (menu_hints(lang), menu_candidates(lang))
                } else {
                    (u.keywords.clone(), Vec::new())
                };
                let request = |k: usize| SttRequest {
                    audio: audio(k),
                    language: language.clone(),
                    hints: hints.clone(),
                    candidates: expected.clone(),
                    cancel: Default::default(),
                };
                // `again`: the pass before, identifying among da and en.
                let first_pass = |k: usize| {
                    if mode == "again" {
                        let mut r = request(k);
                        r.language = LanguageChoice::Identify {
                            current: lang,
                            among: vec![Lang::Da, Lang::En],
                        };
                        rt.block_on(stt.transcribe(r)).expect("first pass");
                        std::thread::sleep(Duration::from_millis(2));
                    }
                };
                first_pass(0);
                rt.block_on(stt.transcribe(request(0))).expect("warm-up");
                let mut all: Vec<(f64, f64, Transcript)> = (1..=runs)
                    .map(|k| {
                        first_pass(k);
                        let cpu = worker_cpu();
                        let t = Instant::now();
                        let r = rt.block_on(stt.transcribe(request(k))).expect("transcribe");
                        let wall = t.elapsed();
                        // Let the worker go back to waiting, so that its CPU
                        // time is brought up to date.
                        std::thread::sleep(Duration::from_millis(2));
                        let cpu = worker_cpu().saturating_sub(cpu);
                        (wall.as_secs_f64() * 1000.0, cpu.as_secs_f64() * 1000.0, r)
                    })
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0));
                let walls: Vec<f64> = all.iter().map(|r| r.0).collect();
                let mut cpus: Vec<f64> = all.iter().map(|r| r.1).collect();
                cpus.sort_by(f64::total_cmp);
                let (median, p95) = median_p95(&walls);
                let (cpu_median, cpu_p95) = median_p95(&cpus);
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                let stage = |f: fn(&Transcript) -> Duration| {
                    let mut v: Vec<f64> = all.iter().map(|r| ms(f(&r.2))).collect();
                    v.sort_by(f64::total_cmp);
                    v[v.len() / 2]
                };
                let (encoding, decoding, spotting) = (
                    stage(|t| t.timing.encoding),
                    stage(|t| t.timing.decoding),
                    stage(|t| t.timing.spotting),
                );
                let mid = &all[runs / 2].2;
                println!(
                    "stt {} {threads}t {lang} {secs} s ({mode}, from {} of {:.1} s, ctx {}): median {median:.0} ms, p95 {p95:.0}; CPU median {cpu_median:.0} ms, p95 {cpu_p95:.0}; encoder {encoding:.0} ms, decoder {decoding:.0} ms ({} calls), check {spotting:.0} ms",
                    setting.name,
                    u.id,
                    pcm.duration().as_secs_f64(),
                    mid.timing.audio_ctx,
                    mid.timing.decoder_steps,
                );
                rows.push(serde_json::json!({
                    "engine": "whisper",
                    "setting": setting.name,
                    "model": setting.model.file_name().map(|f| f.to_string_lossy().into_owned()),
                    "decode": format!("{:?}", setting.decode).to_lowercase(),
                    "threads": threads,
                    "language": lang.code(),
                    "language_mode": mode,
                    "utterance_seconds": secs,
                    "source_utterance": u.id,
                    "audio_ctx": mid.timing.audio_ctx,
                    "runs": runs,
                    "median_ms": median,
                    "p95_ms": p95,
                    "min_ms": walls[0],
                    "max_ms": walls[runs - 1],
                    "cpu_median_ms": cpu_median,
                    "cpu_p95_ms": cpu_p95,
                    "encoder_ms": encoding,
                    "decoder_ms": decoding,
                    "check_ms": spotting,
                    "decoder_calls": mid.timing.decoder_steps,
                }));
            }
        }
    }
}
