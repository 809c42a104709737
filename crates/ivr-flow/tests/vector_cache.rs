//! The disk cache of intent example vectors: a second start of the shipped
//! flows embeds no example again, and what a caller says is embedded for
//! the call but never written to the cache.
#![allow(clippy::unwrap_used)] // reason: tests

mod support;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use ivr_core::{Lang, Pii};
use ivr_flow::{
    semantic::SentenceEncoder, CallContext, Event, FlowStore, Interpreter, StoreOptions,
};
use support::ToyEncoder;

fn flows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows")
}

fn cache_dir() -> PathBuf {
    std::env::temp_dir()
        .join(format!(
            "ivr-flow-vector-cache-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ))
        .join("intents")
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:30:00+01:00")
        .unwrap()
        .with_timezone(&Utc)
}

/// A Danish call to `muni`, started.
fn call(muni: ivr_flow::Route, now: DateTime<Utc>) -> Interpreter {
    let mut it = Interpreter::new(
        muni,
        CallContext {
            caller: Pii::new("+4522334455".into()),
            lang: Some(Lang::Da),
        },
    );
    it.start(now);
    it
}

fn load(dir: &Path, name: &str) -> (FlowStore, Arc<ToyEncoder>, Arc<dyn SentenceEncoder>) {
    let toy = Arc::new(ToyEncoder::new(name).with_fingerprint("toy-1"));
    let enc: Arc<dyn SentenceEncoder> = toy.clone();
    let (store, _) = FlowStore::load_with_options(
        flows(),
        Some(enc.clone()),
        StoreOptions {
            vector_cache: Some(dir.to_path_buf()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(store.vector_cache_error(), None);
    (store, toy, enc)
}

#[test]
fn a_second_start_embeds_no_example_and_caller_turns_never_reach_the_cache() {
    let dir = cache_dir();
    let file = dir.join(ivr_flow::vector_cache::FILE_NAME);
    let (_, first, _) = load(&dir, "toy-a");
    let written = std::fs::read(&file).unwrap();
    assert!(first.embedded() > 50, "the first start embeds the examples");

    // Another encoder name: nothing in the process's memory cache, the same
    // model: everything on disk.
    let (store, second, enc) = load(&dir, "toy-b");
    assert_eq!(second.embedded(), 0, "nothing embedded again");
    // Calls embed with the encoder itself, never through the cache.
    let muni = store.municipality("nordby").unwrap();
    let attached = muni.municipality.encoder.clone().unwrap();
    assert!(std::ptr::addr_eq(Arc::as_ptr(&attached), Arc::as_ptr(&enc)));

    let now = now();
    let mut it = call(muni, now);
    it.handle(
        Event::Speech {
            text: Pii::new("min nabo Jens Hansen har fået nyt pas".into()),
            confidence: 0.9,
            lang: Some(Lang::Da),
            identified: false,
        },
        now,
    );
    assert!(second.embedded() >= 1, "the turn was embedded");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        written,
        "the cache is unchanged"
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).ok();
}

#[test]
fn a_question_turn_is_embedded_once_for_intents_knowledge_and_both_languages() {
    let dir = cache_dir();
    let (store, toy, _) = load(&dir, "toy-once");
    let muni = store.municipality("nordby").unwrap();
    let now = now();
    let mut it = call(muni, now);
    let before = toy.embedded();
    // A question at the menu: knowledge is looked up in Danish and English,
    // the errand-or-question rule and the intents score it too.
    it.handle(
        Event::Speech {
            text: Pii::new("hvad koster et pas til et barn?".into()),
            confidence: 0.9,
            lang: Some(Lang::Da),
            identified: true,
        },
        now,
    );
    assert_eq!(toy.embedded() - before, 1, "one embedding a turn");
    std::fs::remove_dir_all(dir.parent().unwrap()).ok();
}
