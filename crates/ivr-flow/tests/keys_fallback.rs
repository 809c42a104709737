//! The recogniser could not take the caller's words (its queue was full in a
//! crisis peak): a question that takes keys says which keys and listens for
//! keys only, from then on for the whole call, without counting a failed
//! turn; a question keys cannot answer treats it as not understood. The
//! notices are static speech, pre-rendered with the flow's prompts.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use ivr_core::{Lang, Speech};
use ivr_flow::{Action, Event};
use support::{keys, nordby, now, said, says, shipped, speech};

/// The listening part of a batch: (speech, dtmf).
fn listens(out: &[Action]) -> Option<(bool, bool)> {
    out.iter().rev().find_map(|a| match a {
        Action::Gather { speech, dtmf, .. } => Some((*speech, *dtmf)),
        _ => None,
    })
}

const MENU_DA: &str = "Tryk 1 for at bestille eller aflyse en tid til pas, 2 for at bestille eller aflyse en tid til kørekort, 3 for at bestille eller aflyse en tid til MitID, 4 for at aflyse en aftale i jobcentret, 5 for at tale med jobcentret, 6 for at tale om boligstøtte, pension eller andre ydelser, 7 for at tale om affald, veje eller byggeri, 8 for at tale om hjemmepleje eller hjælpemidler, 9 for at blive ringet op, eller 0 for at tale med en medarbejder.";

#[test]
fn a_busy_recogniser_at_the_menu_names_the_keys_and_listens_for_keys_only() {
    let store = shipped();
    let mut c = nordby(&store);
    let first = c.start(now());
    assert_eq!(listens(&first), Some((true, true)));
    let out = c.handle(Event::SpeechUnavailable, now());
    assert_eq!(
        said(&out),
        [
            "Talegenkendelsen har travlt lige nu, så brug venligst tastaturet.",
            MENU_DA
        ]
    );
    assert!(
        says(&out).iter().all(|s| matches!(s, Speech::Static(_))),
        "notices are static speech: played from the prompt cache"
    );
    assert_eq!(listens(&out), Some((false, true)), "keys only");
    assert_eq!(c.record().misunderstood, 0, "not the caller's failure");
    assert!(c.keys_only());
}

#[test]
fn after_the_fallback_later_questions_of_the_call_name_their_keys_too() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    c.handle(Event::SpeechUnavailable, now());
    // 9: be called back; its first question is a yes/no about the number.
    let out = keys(&mut c, "9", now());
    assert_eq!(c.record().intents, ["callback"]);
    let s = said(&out);
    assert_eq!(
        s.last().map(String::as_str),
        Some("Tryk 1 for ja eller 2 for nej."),
        "{s:?}"
    );
    assert_eq!(listens(&out), Some((false, true)), "still keys only");
    // 1 = yes: the flow goes on as with a spoken yes.
    let out = keys(&mut c, "1", now());
    assert!(!out.is_empty());
    assert_eq!(c.record().misunderstood, 0);
}

#[test]
fn a_question_keys_cannot_answer_counts_the_busy_recogniser_as_not_understood() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    // "aflyse min aftale i jobcentret": the cancellation flow asks for a name
    // (free text, speech only).
    let out = c.handle(speech("jeg vil aflyse min aftale i jobcentret"), now());
    assert_eq!(listens(&out), Some((true, false)), "{:?}", said(&out));
    let out = c.handle(Event::SpeechUnavailable, now());
    assert_eq!(c.record().misunderstood, 1);
    assert_eq!(
        said(&out).first().map(String::as_str),
        Some("Undskyld, det forstod jeg ikke.")
    );
    assert_eq!(listens(&out), Some((true, false)), "asked again, by speech");
    assert!(!c.keys_only());
}

#[test]
fn every_keys_notice_is_pre_rendered_with_the_static_prompts_in_each_language() {
    let store = shipped();
    let prompts = store.static_prompts();
    assert!(prompts.contains(&(Lang::Da, MENU_DA.to_string())));
    for l in [Lang::Da, Lang::En] {
        for text in [
            ivr_flow::keys::busy_notice(l),
            ivr_flow::keys::yes_no_notice(l),
        ] {
            assert!(prompts.contains(&(l, text.to_string())), "{l:?} {text}");
        }
    }
    let en = prompts
        .iter()
        .find(|(l, t)| *l == Lang::En && t.starts_with("Press 1 to book"))
        .map(|(_, t)| t.as_str());
    assert!(
        en.is_some_and(|t| t.ends_with(", or 0 to talk to a member of staff.")),
        "{en:?}"
    );
}

#[test]
fn the_simulator_types_a_busy_recogniser_as_stt_busy() {
    assert_eq!(
        ivr_flow::sim::parse_turn("(stt busy)", Lang::Da),
        [Event::SpeechUnavailable]
    );
}
