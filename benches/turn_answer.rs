//! End of turn by answer (issue 13): how often ending the caller's turn at
//! the eager end of turn's short silence, when the speculative transcript
//! already answers the question (`[turn] end_on_answer`,
//! `Interpreter::would_answer`), cuts a caller off inside a mid-sentence
//! pause, and how much sooner the turn is taken than by the end silence.
//!
//! - Data: the end-of-turn benchmark's turns (`tests/vectors/turn/`, rendered
//!   into `target/turn-vectors/` by its generate.py when missing; 72 files,
//!   52 with pauses of 350-1,250 ms inside the sentence). Each turn's
//!   `question` says what it answers; it is asked by the latency harness's
//!   flow of that kind and language (`benches/latency-flows/`: menu, yes/no,
//!   date, CPR). `free` turns (a phone number, a time) have no such flow:
//!   they are run with the end silence only and counted apart.
//! - The engine's endpointer and energy VAD with the engine's defaults
//!   (`[media] end_silence_ms` 400 adaptive, `eager_stt_ms` 200) on
//!   simulated time, 20 ms frames. At each tentative end the real recogniser
//!   (whisper, as `[stt]` defaults, the question's hints and expected
//!   answers, language identification when the flow asks it) hears the audio
//!   so far and the flow is asked whether that transcript answers it. Its
//!   verdict takes effect `--stt-ms` (default 150) of simulated time later,
//!   unless the caller spoke again meanwhile (the engine then drops it). A
//!   fixed delay, not the measured one: on a loaded machine the measured
//!   recognition is slow, and a slow verdict hides cut-offs (the caller has
//!   resumed by then); a short one counts every cut-off a fast recogniser
//!   would make. The measured recognition times are reported apart.
//! - A false cut-off: the turn was taken before the true end (inside a
//!   pause). The wait: turn taken minus true end, over the others.
//!
//! Usage: `cargo run --release -p ivr-benches --bin turn_answer [-- --stt-ms
//! 150] [--eager-stt-ms N]` (`--eager-stt-ms`: the speculation's silence
//! instead of `[media] eager_stt_ms`) (part of `make bench`; needs `make setup`). Writes
//! `target/bench/turn_answer.json` and prints a table.
#![allow(clippy::unwrap_used)] // reason: a bench: a failed unwrap aborts the measurement

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ivr_core::{Lang, Pii};
use ivr_flow::{Action, CallContext, Event, FlowStore, Interpreter};
use ivr_media::endpointing::{Endpointer, EndpointingEvent};
use ivr_media::vad::{Vad, VadConfig};
use ivr_stt::{Candidate, LanguageChoice, SpeechToText, SttConfig, SttRequest, WhisperStt};

const FRAME_MS: u32 = 20;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

use ivr_benches::turn_set::{load as load_turns, TurnFile};

fn load_files() -> Vec<TurnFile> {
    load_turns("turn_answer")
}

/// The latency harness's number for a question kind and language.
fn number(question: &str, lang: Lang) -> Option<&'static str> {
    Some(match (question, lang) {
        ("menu", Lang::Da) => "+4579000001",
        ("yesno", Lang::Da) => "+4579000002",
        ("date", Lang::Da) => "+4579000003",
        ("cpr", Lang::Da) => "+4579000004",
        ("menu", Lang::En) => "+4579000011",
        ("yesno", Lang::En) => "+4579000012",
        ("date", Lang::En) => "+4579000013",
        ("cpr", Lang::En) => "+4579000014",
        _ => return None,
    })
}

/// What a question gives the recogniser (as the engine's call core builds it).
struct Asked {
    hints: Vec<String>,
    candidates: Vec<Candidate>,
    choice: LanguageChoice,
}

fn asked(actions: &[Action]) -> Option<Asked> {
    actions.iter().find_map(|a| match a {
        Action::Gather {
            hints,
            candidates,
            lang,
            identify,
            ..
        } => Some(Asked {
            hints: hints.clone(),
            candidates: candidates
                .iter()
                .map(|(label, phrases)| Candidate {
                    label: label.clone(),
                    phrases: phrases.clone(),
                })
                .collect(),
            choice: match identify.as_slice() {
                [] => LanguageChoice::Fixed(*lang),
                [only] => LanguageChoice::Fixed(*only),
                among => {
                    let mut among = among.to_vec();
                    if !among.contains(lang) {
                        among.insert(0, *lang);
                    }
                    LanguageChoice::Identify {
                        current: *lang,
                        among,
                    }
                }
            },
        }),
        _ => None,
    })
}

/// A fixed instant (the harness's: 19:00 in Copenhagen, a Tuesday).
fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T18:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// One file's outcome.
struct Outcome {
    /// When the turn was taken (ms from the start), None: never.
    taken: Option<u32>,
    by_answer: bool,
    /// Tentative ends whose transcript answered / did not.
    answered: usize,
    not_answered: usize,
}

fn main() {
    let mut stt_ms: u32 = 150;
    let mut eager_ms: Option<u64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--stt-ms" => stt_ms = args.next().unwrap_or_default().parse().expect("--stt-ms N"),
            "--eager-stt-ms" => {
                eager_ms = Some(
                    args.next()
                        .unwrap_or_default()
                        .parse()
                        .expect("--eager-stt-ms N"),
                );
            }
            "--bench" => {}
            other => {
                panic!("unknown argument {other}; see the doc comment of benches/turn_answer.rs")
            }
        }
    }
    let mut engine = ivr_engine::config::EngineConfig::parse("").unwrap();
    if let Some(ms) = eager_ms {
        engine.media.eager_stt_ms = ms;
        if let Err(e) = engine.validate() {
            eprintln!("turn_answer: {e}");
            std::process::exit(2);
        }
    }
    let ep_cfg = engine.media.endpointing();
    // The default configuration's whisper model, from the workspace root.
    let model = root().join(&engine.stt.model);
    if !model.is_file() {
        eprintln!("turn_answer: {} missing: run `make setup`", model.display());
        std::process::exit(2);
    }
    let stt = WhisperStt::load(&SttConfig {
        model,
        workers: 1,
        queue: 4,
        ..engine.stt.clone()
    })
    .unwrap();
    let e5 = root().join("models/e5-small/e5-small-q4.bin");
    let encoder: Option<Arc<dyn ivr_flow::semantic::SentenceEncoder>> =
        match ivr_embed::E5Encoder::load(&e5) {
            Ok(e) => Some(Arc::new(e)),
            Err(e) => {
                println!("turn_answer: intents by their words alone ({e})");
                None
            }
        };
    let (store, _) = FlowStore::load_with(root().join("benches/latency-flows"), encoder).unwrap();
    let files = load_files();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut stt_runs: Vec<f64> = Vec::new();
    let mut rows = Vec::new();
    for f in &files {
        let route = number(&f.question, f.lang).and_then(|n| store.route(n));
        let mut interp = route.map(|r| {
            Interpreter::new(
                r,
                CallContext {
                    caller: Pii::new("+4522334455".into()),
                    lang: None,
                },
            )
        });
        let q = interp
            .as_mut()
            .map(|i| asked(&i.start(now())).expect("the flow asks"));
        let mut vad = Vad::new(VadConfig::default());
        let mut e = Endpointer::new(ep_cfg);
        let mut o = Outcome {
            taken: None,
            by_answer: false,
            answered: 0,
            not_answered: 0,
        };
        // A verdict in flight: (due at frame, answers).
        let mut pending: Option<(usize, bool)> = None;
        for (i, (pcm, f8)) in f
            .audio16
            .chunks_exact(320)
            .zip(f.audio8.chunks_exact(160))
            .enumerate()
        {
            if let Some((due, yes)) = pending {
                if i >= due {
                    pending = None;
                    if yes {
                        if let Some(EndpointingEvent::Utterance(_)) = e.end_now() {
                            o.taken = Some(i as u32 * FRAME_MS);
                            o.by_answer = true;
                            break;
                        }
                    }
                }
            }
            let v = vad.process(f8);
            match e.push(pcm, v, false) {
                Some(EndpointingEvent::Utterance(_)) => {
                    o.taken = Some((i as u32 + 1) * FRAME_MS);
                    break;
                }
                Some(EndpointingEvent::Tentative(audio)) => {
                    let (Some(interp), Some(q)) = (interp.as_ref(), q.as_ref()) else {
                        continue;
                    };
                    let identified = !matches!(q.choice, LanguageChoice::Fixed(_));
                    let t0 = Instant::now();
                    let t = rt
                        .block_on(stt.transcribe(SttRequest {
                            audio: audio.clone(),
                            language: q.choice.clone(),
                            hints: q.hints.clone(),
                            candidates: q.candidates.clone(),
                        }))
                        .unwrap();
                    stt_runs.push(t0.elapsed().as_secs_f64() * 1000.0);
                    let yes = !t.text.expose().trim().is_empty()
                        && interp.would_answer(
                            Event::Speech {
                                text: t.text.clone(),
                                confidence: t.confidence,
                                lang: Some(t.language),
                                identified,
                            },
                            now(),
                        );
                    if yes {
                        o.answered += 1;
                    } else {
                        o.not_answered += 1;
                    }
                    let due = i + 1 + (stt_ms as usize).div_ceil(FRAME_MS as usize);
                    pending = Some((due, yes));
                }
                Some(EndpointingEvent::Resumed) => pending = None,
                _ => {}
            }
        }
        let cut = o.taken.is_some_and(|t| t < f.speech_end_ms);
        println!(
            "{:32} {:5} pauses {} | {} | taken {:>5} ms, true end {:>5} ms{}",
            f.id,
            f.question,
            f.pauses,
            if o.by_answer { "answer " } else { "silence" },
            o.taken.map_or("never".into(), |t| t.to_string()),
            f.speech_end_ms,
            if cut { "  CUT OFF" } else { "" }
        );
        rows.push((f, o, cut));
    }
    // Summaries: all turns, by language, by question; the pause-heavy ones.
    let summarise = |keep: &dyn Fn(&TurnFile) -> bool| {
        let sel: Vec<_> = rows.iter().filter(|(f, ..)| keep(f)).collect();
        let cut = sel.iter().filter(|(_, _, c)| *c).count();
        let by_answer = sel.iter().filter(|(_, o, _)| o.by_answer).count();
        let mut waits: Vec<f64> = sel
            .iter()
            .filter(|(f, o, c)| !c && o.taken.is_some_and(|t| t >= f.speech_end_ms))
            .map(|(f, o, _)| f64::from(o.taken.unwrap() - f.speech_end_ms))
            .collect();
        waits.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if waits.is_empty() {
                f64::NAN
            } else {
                waits[((p / 100.0 * waits.len() as f64).ceil() as usize).clamp(1, waits.len()) - 1]
            }
        };
        serde_json::json!({
            "turns": sel.len(),
            "false_cutoffs": cut,
            "false_cutoff_rate": cut as f64 / sel.len().max(1) as f64,
            "ended_by_answer": by_answer,
            "wait_median_ms": pct(50.0),
            "wait_p95_ms": pct(95.0),
        })
    };
    let mut groups: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    groups.insert("all".into(), summarise(&|_| true));
    groups.insert("with_pauses".into(), summarise(&|f| f.pauses > 0));
    groups.insert("one_breath".into(), summarise(&|f| f.pauses == 0));
    groups.insert(
        "asked_by_a_flow".into(),
        summarise(&|f| f.question != "free"),
    );
    for l in [Lang::Da, Lang::En] {
        groups.insert(format!("lang_{}", l.code()), summarise(&|f| f.lang == l));
    }
    for q in ["menu", "yesno", "date", "cpr", "free"] {
        groups.insert(format!("question_{q}"), summarise(&|f| f.question == q));
    }
    stt_runs.sort_by(f64::total_cmp);
    let med = stt_runs
        .get(stt_runs.len() / 2)
        .copied()
        .unwrap_or(f64::NAN);
    println!("\nturn_answer: end silence {} ms (adaptive), speculation after {} ms, verdict {stt_ms} ms later; recognition measured median {med:.0} ms over {} runs",
        ep_cfg.end_silence.as_millis(), ep_cfg.eager_silence.as_millis(), stt_runs.len());
    for (k, v) in &groups {
        println!(
            "{k:18} turns {:>2} | cut off {:>2} ({:>4.1} %) | ended by answer {:>2} | wait median {:>5.0} p95 {:>5.0} ms",
            v["turns"],
            v["false_cutoffs"],
            100.0 * v["false_cutoff_rate"].as_f64().unwrap_or(0.0),
            v["ended_by_answer"],
            v["wait_median_ms"].as_f64().unwrap_or(f64::NAN),
            v["wait_p95_ms"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let json = serde_json::json!({
        "bench": "turn_answer",
        "end_silence_ms": ep_cfg.end_silence.as_millis() as u64,
        "eager_stt_ms": ep_cfg.eager_silence.as_millis() as u64,
        "verdict_delay_ms": stt_ms,
        "stt_measured_median_ms": med,
        "stt_runs": stt_runs.len(),
        "groups": groups,
        "files": rows.iter().map(|(f, o, c)| serde_json::json!({
            "id": f.id, "question": f.question, "pauses": f.pauses,
            "taken_ms": o.taken, "speech_end_ms": f.speech_end_ms, "by_answer": o.by_answer,
            "cut_off": c, "tentatives_answered": o.answered, "tentatives_not_answered": o.not_answered,
        })).collect::<Vec<_>>(),
    });
    let out = root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("turn_answer.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("turn_answer: wrote target/bench/turn_answer.json");
}
