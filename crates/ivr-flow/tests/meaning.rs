//! A turn's meaning made outside the interpreter (the engine embeds the
//! caller's words off the call's thread): the interpreter names the words
//! it would embed without embedding them, takes the vector handed back,
//! embeds nothing more for those words, and answers exactly as if it had
//! embedded them itself; a vector for other words is never used.
#![allow(clippy::unwrap_used)] // reason: tests

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ivr_core::{Dtmf, Lang, Pii};
use ivr_flow::{semantic::SentenceEncoder, Action, CallContext, Event, FlowStore, Interpreter};
use support::ToyEncoder;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:30:00+01:00")
        .unwrap()
        .with_timezone(&Utc)
}

/// The shipped flows with a fresh toy encoder (its own name: nothing of it
/// in the process's example cache), and Nordby's route.
fn nordby(name: &str) -> (Arc<ToyEncoder>, ivr_flow::Route) {
    let toy = Arc::new(ToyEncoder::new(format!("meaning-test-{name}")));
    let flows = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let (store, _) =
        FlowStore::load_with(flows, Some(toy.clone() as Arc<dyn SentenceEncoder>)).unwrap();
    (toy, store.municipality("nordby").unwrap())
}

/// A Danish call, started (at the main menu).
fn call(route: &ivr_flow::Route) -> Interpreter {
    let mut it = Interpreter::new(
        route.clone(),
        CallContext {
            caller: Pii::new("+4522334455".into()),
            lang: Some(Lang::Da),
        },
    );
    it.start(now());
    it
}

fn said(text: &str) -> Event {
    Event::Speech {
        text: Pii::new(text.into()),
        confidence: 0.9,
        lang: Some(Lang::Da),
        identified: false,
    }
}

/// The turn handled with its meaning made outside; returns the actions and
/// how many texts the interpreter embedded itself while handling it.
fn handled_with_meaning_made_outside(
    it: &mut Interpreter,
    toy: &ToyEncoder,
    ev: Event,
) -> (Vec<Action>, usize) {
    let wanted = it
        .meaning_wanted(&ev, now())
        .expect("the turn's words are wanted");
    it.know_meaning(wanted.make().unwrap());
    let before = toy.embedded();
    let actions = it.handle(ev, now());
    (actions, toy.embedded() - before)
}

#[test]
fn the_words_a_turn_would_embed_are_named_without_embedding_them() {
    let (toy, route) = nordby("named");
    let it = call(&route);
    let before = toy.embedded();
    let wanted = it.meaning_wanted(&said("jeg skal have fornyet mit pas"), now());
    assert!(wanted.is_some());
    assert_eq!(toy.embedded(), before, "nothing embedded");
}

#[test]
fn a_menu_turn_with_its_meaning_made_outside_routes_as_if_embedded_inline_and_embeds_nothing() {
    let (toy, route) = nordby("menu");
    for heard in [
        "jeg skal have fornyet mit pas",
        "jeg ringer om min affaldsspand der ikke er blevet tømt",
        "nej jeg mener kørekort",
    ] {
        let mut inline = call(&route);
        let before = toy.embedded();
        let expected = inline.handle(said(heard), now());
        assert_eq!(toy.embedded() - before, 1, "{heard}: embedded inline");

        let mut outside = call(&route);
        let (actions, embedded) =
            handled_with_meaning_made_outside(&mut outside, &toy, said(heard));
        assert_eq!(embedded, 0, "{heard}: the interpreter embedded it again");
        assert_eq!(actions, expected, "{heard}");
        assert_eq!(outside.record().intents, inline.record().intents, "{heard}");
    }
}

#[test]
fn a_question_for_the_knowledge_base_with_its_meaning_made_outside_embeds_nothing() {
    let (toy, route) = nordby("question");
    let heard = "hvornår har borgerservice åbent på lørdag?";
    let mut inline = call(&route);
    let before = toy.embedded();
    let expected = inline.handle(said(heard), now());
    assert_eq!(toy.embedded() - before, 1, "embedded inline");
    assert!(
        expected.iter().any(
            |a| matches!(a, Action::Say { speech, .. } if speech.expose().contains("Borgerservice"))
        ),
        "answered from the knowledge base: {expected:?}"
    );
    let mut outside = call(&route);
    let (actions, embedded) = handled_with_meaning_made_outside(&mut outside, &toy, said(heard));
    assert_eq!(embedded, 0);
    assert_eq!(actions, expected);
}

#[test]
fn a_meaning_made_for_other_words_is_not_used() {
    let (toy, route) = nordby("other");
    let guess = said("jeg skal have");
    let heard = "jeg skal have et nyt kørekort";
    let mut inline = call(&route);
    let expected = inline.handle(said(heard), now());

    let mut it = call(&route);
    // The meaning of a speculative transcript the caller then spoke on from.
    let wanted = it.meaning_wanted(&guess, now()).unwrap();
    it.know_meaning(wanted.make().unwrap());
    assert!(
        it.meaning_wanted(&said(heard), now()).is_some(),
        "the new words are wanted"
    );
    let before = toy.embedded();
    let actions = it.handle(said(heard), now());
    assert_eq!(toy.embedded() - before, 1, "embedded by the interpreter");
    assert_eq!(actions, expected);
}

#[test]
fn nothing_is_wanted_for_keys_for_silence_or_for_words_already_known() {
    let (_toy, route) = nordby("nothing");
    let mut it = call(&route);
    assert!(it.meaning_wanted(&Event::Dtmf(Dtmf::D1), now()).is_none());
    assert!(it.meaning_wanted(&Event::NoInput, now()).is_none());
    assert!(it.meaning_wanted(&said("  "), now()).is_none());
    let ev = said("jeg skal have fornyet mit pas");
    let wanted = it.meaning_wanted(&ev, now()).unwrap();
    it.know_meaning(wanted.make().unwrap());
    assert!(it.meaning_wanted(&ev, now()).is_none());
}

#[test]
fn without_an_encoder_nothing_is_wanted() {
    let flows = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let (store, _) = FlowStore::load(flows).unwrap();
    let it = call(&store.municipality("nordby").unwrap());
    assert!(it
        .meaning_wanted(&said("jeg skal have fornyet mit pas"), now())
        .is_none());
}
