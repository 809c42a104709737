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
//!   (`[media] end_silence_ms` 400 adaptive, `eager_stt_ms` 150) on
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
use ivr_core::{Lang, Pcm, Pii};
use ivr_flow::{Action, Answers, CallContext, Event, FlowStore, Interpreter};
use ivr_media::endpointing::{Endpointer, EndpointingEvent};
use ivr_media::vad::{Vad, VadConfig};
use ivr_stt::{Candidate, LanguageChoice, SpeechToText, SttConfig, SttRequest, WhisperStt};

const FRAME_MS: u32 = 20;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

use ivr_benches::turn_set::{load_set, TurnFile, TurnSet};

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
    /// The speculative transcript that ended the turn (by answer).
    taken_text: Option<String>,
    /// Cut off by answer: whether the part taken leads to the step the
    /// whole turn leads to.
    same_route: Option<bool>,
}

fn main() {
    let mut stt_ms: u32 = 150;
    let mut eager_ms: Option<u64> = None;
    let mut set = TurnSet::Own;
    let mut answers: Option<Answers> = None;
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
            "--set" => {
                set = TurnSet::parse(&args.next().unwrap_or_default()).expect("--set own|heldout")
            }
            "--answers" => {
                answers = Some(match args.next().as_deref() {
                    Some("closed") => Answers::Closed,
                    Some("open") => Answers::ClosedAndOpen,
                    _ => panic!("--answers closed|open"),
                })
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
    // As the engine's defaults (`[turn] end_on_open_answer`) unless asked.
    let answers = answers.unwrap_or(if engine.turn.end_on_open_answer {
        Answers::ClosedAndOpen
    } else {
        Answers::Closed
    });
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
    let files = load_set("turn_answer", set);
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
        // The call as it waits for the answer: where the whole turn and a
        // cut-off part of it lead are compared from here.
        let asked_state = interp.clone();
        let mut vad = Vad::new(VadConfig::default());
        let mut e = Endpointer::new(ep_cfg);
        let mut o = Outcome {
            taken: None,
            by_answer: false,
            answered: 0,
            not_answered: 0,
            taken_text: None,
            same_route: None,
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
                    let (Some(interp), Some(q)) = (interp.as_mut(), q.as_ref()) else {
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
                            cancel: Default::default(),
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
                            answers,
                        );
                    // Synthetic turns: their transcripts are no caller's.
                    println!(
                        "    tentative end at {:>5} ms: {:?} -> {}",
                        (i as u32 + 1) * FRAME_MS,
                        t.text.expose(),
                        if yes { "answers" } else { "does not answer" }
                    );
                    if yes {
                        o.taken_text = Some(t.text.expose().to_string());
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
        // A turn cut off by its answer: does the part taken lead where the
        // whole turn leads (the same step after it)?
        if let (true, true, Some(state), Some(q), Some(part)) = (
            cut,
            o.by_answer,
            asked_state.as_ref(),
            q.as_ref(),
            o.taken_text.as_ref(),
        ) {
            let whole = rt
                .block_on(stt.transcribe(SttRequest {
                    audio: Pcm::new(16_000, f.audio16.clone()),
                    language: q.choice.clone(),
                    hints: q.hints.clone(),
                    candidates: q.candidates.clone(),
                    cancel: Default::default(),
                }))
                .unwrap();
            // The step the flow goes to and what it says there (a date
            // read back, a queue named): the same step with another value
            // is misrouted too.
            let leads_to = |text: &str| {
                let mut c = state.clone();
                let actions = c.handle(
                    Event::Speech {
                        text: Pii::new(text.to_string()),
                        confidence: whole.confidence,
                        lang: Some(whole.language),
                        identified: false,
                    },
                    now(),
                );
                let said: Vec<String> = actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Say { speech, .. } => Some(speech.expose().to_string()),
                        _ => None,
                    })
                    .collect();
                format!(
                    "{} {}",
                    c.record().steps.last().cloned().unwrap_or_default(),
                    said.join(" ")
                )
            };
            let (p, w) = (leads_to(part), leads_to(whole.text.expose()));
            o.same_route = Some(p == w);
            println!(
                "    cut at {part:?} -> {p}; whole {:?} -> {w}",
                whole.text.expose()
            );
        }
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
        let cut_by_answer = sel.iter().filter(|(_, o, c)| *c && o.by_answer).count();
        let misrouted = sel
            .iter()
            .filter(|(_, o, _)| o.same_route == Some(false))
            .count();
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
            "cutoffs_by_answer": cut_by_answer,
            "cutoffs_by_answer_misrouted": misrouted,
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
            "{k:18} turns {:>2} | cut off {:>2} ({:>4.1} %; by answer {:>2}, misrouted {:>2}) | ended by answer {:>2} | wait median {:>5.0} p95 {:>5.0} ms",
            v["turns"],
            v["false_cutoffs"],
            100.0 * v["false_cutoff_rate"].as_f64().unwrap_or(0.0),
            v["cutoffs_by_answer"],
            v["cutoffs_by_answer_misrouted"],
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
        "set": format!("{set:?}"),
        "answers": format!("{answers:?}"),
        "stt_measured_median_ms": med,
        "stt_runs": stt_runs.len(),
        "groups": groups,
        "files": rows.iter().map(|(f, o, c)| serde_json::json!({
            "id": f.id, "question": f.question, "pauses": f.pauses,
            "taken_ms": o.taken, "speech_end_ms": f.speech_end_ms, "by_answer": o.by_answer,
            "cut_off": c, "same_route_when_cut_by_answer": o.same_route, "tentatives_answered": o.answered, "tentatives_not_answered": o.not_answered,
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
