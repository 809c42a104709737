//! How the shipped main menus route first turns by text
//! (`tests/vectors/caller_turns/`, written as callers talk, never tuned to),
//! with the sentence model and words together, and with words alone (stemming
//! and keywords: what the engine does when the model is missing). Each turn
//! goes through the real interpreter: a call in the turn's language reaches
//! the menu and hears the words; what it chose (or whether it asked back, or
//! did not understand) is compared with the label.
//!
//! Prints a table per use case and language for both; asserts floors with
//! margin below what was measured, and that the model adds accuracy over
//! words alone. Run with `--nocapture` to see the tables.
#![allow(clippy::unwrap_used)] // reason: tests

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use chrono::{DateTime, Utc};
use ivr_core::{Lang, Pii};
use ivr_flow::{semantic::SentenceEncoder, Action, CallContext, Event, FlowStore, Interpreter};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One labelled turn.
struct Turn {
    municipality: String,
    lang: Lang,
    expected: String,
    use_case: String,
    text: String,
}

fn turns() -> Vec<Turn> {
    let mut out = Vec::new();
    for m in ["nordby", "sydhavn"] {
        let p = root().join(format!("tests/vectors/caller_turns/{m}.tsv"));
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines().skip(1) {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let c: Vec<&str> = line.splitn(5, '\t').collect();
            assert_eq!(c.len(), 5, "{line}");
            out.push(Turn {
                municipality: c[0].into(),
                lang: if c[1] == "en" { Lang::En } else { Lang::Da },
                expected: c[2].into(),
                use_case: c[3].into(),
                text: c[4].into(),
            });
        }
    }
    out
}

/// What the menu did with a turn.
#[derive(Debug, PartialEq)]
enum Outcome {
    Chose(String),
    AskedBack,
    NotUnderstood,
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:30:00+01:00")
        .unwrap()
        .with_timezone(&Utc)
}

fn route(store: &FlowStore, t: &Turn) -> Outcome {
    let mut it = Interpreter::new(
        store.municipality(&t.municipality).unwrap(),
        CallContext {
            caller: Pii::new("+4522334455".into()),
            lang: Some(t.lang),
        },
    );
    it.start(now());
    let before = it.record().intents.len();
    let actions = it.handle(
        Event::Speech {
            text: Pii::new(t.text.clone()),
            confidence: 0.9,
            lang: Some(t.lang),
            identified: false,
        },
        now(),
    );
    if it.record().intents.len() > before {
        // The menu's choice: later gathers may answer themselves at once from
        // the same words (carry-over), adding their own intents after it.
        return Outcome::Chose(it.record().intents[before].clone());
    }
    let asked = actions.iter().any(|a| match a {
        Action::Say { speech, .. } => {
            let s = speech.expose();
            s.starts_with("Vil du ") || s.starts_with("Would you like to ")
        }
        _ => false,
    });
    if asked {
        Outcome::AskedBack
    } else {
        Outcome::NotUnderstood
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    n: u32,
    right: u32,
    asked: u32,
}

impl Tally {
    fn pct(&self) -> f64 {
        100.0 * f64::from(self.right) / f64::from(self.n.max(1))
    }
}

/// Accuracy by (use case, language) and overall; prints the misses.
fn measure(store: &FlowStore, what: &str) -> (BTreeMap<(String, String), Tally>, Tally) {
    let mut by: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut all = Tally::default();
    let mut misses = Vec::new();
    for t in turns() {
        let got = route(store, &t);
        let right = match &got {
            Outcome::Chose(n) => *n == t.expected,
            Outcome::NotUnderstood => t.expected == "none",
            Outcome::AskedBack => false,
        };
        let lang = t.lang.to_string();
        for key in [
            (t.use_case.clone(), lang.clone()),
            (t.use_case.clone(), "all".to_string()),
            ("all".to_string(), lang.clone()),
        ] {
            let e = by.entry(key).or_default();
            e.n += 1;
            e.right += u32::from(right);
            e.asked += u32::from(got == Outcome::AskedBack);
        }
        all.n += 1;
        all.right += u32::from(right);
        all.asked += u32::from(got == Outcome::AskedBack);
        if !right {
            misses.push(format!(
                "  {:<8} {} {:<16} -> {:<24} {}",
                t.municipality,
                lang,
                t.expected,
                format!("{got:?}"),
                t.text
            ));
        }
    }
    println!(
        "\n== {what}: {}/{} right ({:.1} %), {} asked back",
        all.right,
        all.n,
        all.pct(),
        all.asked
    );
    println!(
        "  {:<18} {:>4} {:>7} {:>6}",
        "use case / lang", "n", "right", "asked"
    );
    for ((uc, l), t) in &by {
        println!(
            "  {:<18} {:>4} {:>6.1}% {:>6}",
            format!("{uc} {l}"),
            t.n,
            t.pct(),
            t.asked
        );
    }
    println!("  misses:");
    for m in misses {
        println!("{m}");
    }
    (by, all)
}

fn with_model() -> FlowStore {
    let enc: Arc<dyn SentenceEncoder> = Arc::new(
        ivr_embed::E5Encoder::load(&root().join(ivr_embed::DEFAULT_MODEL))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    FlowStore::load_with(root().join("flows"), Some(enc))
        .unwrap()
        .0
}

fn words_only() -> FlowStore {
    FlowStore::load(root().join("flows")).unwrap().0
}

#[test]
fn the_model_routes_first_turns_better_than_words_alone_on_the_caller_turn_set() {
    let (_, words) = measure(&words_only(), "words alone (stemming + keywords)");
    let (by, model) = measure(&with_model(), "model + words");
    // Measured 2026-12-05: model + words 89.5 %, words alone 80.8 %; per use
    // case 77.8 % (out of scope) to 100 %. Floors a few points below.
    assert!(model.pct() >= 86.0, "model + words: {:.1} %", model.pct());
    assert!(
        model.pct() >= words.pct() + 5.0,
        "the model should add accuracy: {:.1} % against {:.1} %",
        model.pct(),
        words.pct()
    );
    for ((uc, l), t) in &by {
        if l == "all" {
            assert!(t.pct() >= 70.0, "{uc}: {:.1} %", t.pct());
        }
    }
}
