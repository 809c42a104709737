//! How the shipped main menus route first turns by text
//! (`tests/vectors/caller_turns/`, written as callers talk, never tuned to),
//! with the sentence model and words together, and with words alone (stemming
//! and keywords: what the engine does when the model is missing). Each turn
//! goes through the real interpreter exactly as `ivr eval` runs it
//! (`ivr_flow::eval`): a call reaches the menu and hears the words; what it
//! chose, answered from the knowledge base, asked back or did not understand
//! is compared with the label.
//!
//! Prints a table per use case and language for both; asserts floors with
//! margin below what was measured, and that the model adds accuracy over
//! words alone. Run with `--nocapture` to see the tables.
#![allow(clippy::unwrap_used)] // reason: tests

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use chrono::{DateTime, Utc};
use ivr_flow::{
    eval::{self, Score},
    semantic::SentenceEncoder,
    FlowStore,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:30:00+01:00")
        .unwrap()
        .with_timezone(&Utc)
}

/// Accuracy by use case (both municipalities together) and overall; prints
/// the tables and the misses.
fn measure(store: &FlowStore, what: &str) -> (BTreeMap<String, Score>, Score) {
    let mut by: BTreeMap<String, Score> = BTreeMap::new();
    let mut all = Score::default();
    let mut misses = Vec::new();
    for m in ["nordby", "sydhavn"] {
        let route = store.municipality(m).unwrap();
        let src =
            std::fs::read_to_string(root().join(format!("tests/vectors/caller_turns/{m}.tsv")))
                .unwrap();
        let cases = eval::parse_cases(&src, &route.municipality).unwrap();
        let report = eval::evaluate(&route, &cases, now());
        for (k, s) in report
            .by(|c| format!("{} {}", c.use_case, c.lang.code()))
            .into_iter()
            .chain(report.by(|c| format!("{} all", c.use_case)))
            .chain(report.by(|c| format!("all {}", c.lang.code())))
        {
            by.entry(k).or_default().merge(&s);
        }
        all.merge(&report.overall());
        misses.extend(report.misses().map(|o| {
            format!(
                "  {m:<8} {} {:<16} -> {:<24} {}",
                o.case.lang.code(),
                o.case.expected,
                o.got.to_string(),
                o.case.text
            )
        }));
    }
    println!("\n== {what}: {all}");
    for (k, s) in &by {
        println!("  {k:<24} {s}");
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
    // Measured 2026-12-05 (second session): model + words 97.6 %, words
    // alone 85.6 %; per use case 96.3 % (out of scope) to 100 %. Floors a
    // few points below, so a CPU whose arithmetic tips a borderline turn
    // does not fail the build.
    let pct = |s: &Score| 100.0 * s.accuracy();
    assert!(pct(&model) >= 94.0, "model + words: {model}");
    assert!(
        pct(&model) >= pct(&words) + 5.0,
        "the model should add accuracy: {model} against {words}"
    );
    for (k, s) in &by {
        if k.ends_with(" all") {
            assert!(pct(s) >= 90.0, "{k}: {s}");
        }
    }
}
