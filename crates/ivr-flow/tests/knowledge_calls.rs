//! Questions in a call (docs/knowledge.md), on the shipped Nordby flows and
//! knowledge: answered and confirmed, answered mid-booking with the booking
//! question asked again, told apart when two entries are close, declined and
//! put through when not held, and never taken from a caller's free-text
//! message.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use ivr_core::Lang;
use ivr_flow::{Action, QuestionRecord, Request};
use support::{at, heard, identified, keys, nordby, now, said, shipped, transferred_to};

fn says_one_starting(actions: &[Action], start: &str) -> bool {
    said(actions).iter().any(|s| s.starts_with(start))
}

#[test]
fn a_question_at_the_menu_is_answered_and_a_caller_who_confirms_is_asked_for_anything_else() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    let out = c.handle(identified("Hvad koster et pas?", Lang::Da), now());
    assert!(says_one_starting(&out, "Et pas til en voksen"), "{out:?}");
    assert!(
        says_one_starting(&out, "Fik du svar på dit spørgsmål?"),
        "{out:?}"
    );
    let out = c.handle(heard("ja tak"), now());
    assert_eq!(said(&out), ["Godt.", "Er der andet, jeg kan hjælpe med?"]);
    assert_eq!(
        c.record().questions,
        [QuestionRecord {
            entry: Some("pas-pris".into()),
            confirmed: Some(true)
        }]
    );
}

#[test]
fn an_answer_that_did_not_help_puts_the_caller_through_to_the_entrys_department() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    c.handle(identified("hvad koster et pas", Lang::Da), now());
    let out = c.handle(heard("nej"), now());
    assert_eq!(transferred_to(&out), Some("borgerservice"), "{out:?}");
    assert_eq!(c.record().questions[0].confirmed, Some(false));
}

#[test]
fn a_question_in_the_middle_of_booking_is_answered_and_the_booking_question_asked_again() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    let first = keys(&mut c, "1", now()); // passport: "book or cancel?"
    let booking_question = said(&first).last().cloned().unwrap();
    let out = c.handle(heard("hvad koster et pas til et barn?"), now());
    assert!(says_one_starting(&out, "Et pas til et barn"), "{out:?}");
    let out = keys(&mut c, "1", now());
    assert_eq!(said(&out), ["Godt.".to_string(), booking_question]);
}

#[test]
fn two_close_entries_make_the_bot_ask_which_and_a_key_picks_one() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    let out = c.handle(
        identified("hvordan får jeg fornyet kørekortet", Lang::Da),
        now(),
    );
    assert!(
        says_one_starting(
            &out,
            "Mener du fornyelse af kørekort, eller prisen på et kørekort?"
        ),
        "{out:?}"
    );
    let out = keys(&mut c, "1", now());
    assert!(
        says_one_starting(&out, "De fleste kan forny kørekortet"),
        "{out:?}"
    );
}

#[test]
fn a_question_the_knowledge_base_does_not_hold_is_declined_and_put_through_to_the_switchboard() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    let out = c.handle(
        identified("hvordan registrerer jeg min hund?", Lang::Da),
        now(),
    );
    assert!(
        said(&out).contains(&"Det spørgsmål kan jeg desværre ikke svare på.".to_string()),
        "{out:?}"
    );
    assert_eq!(transferred_to(&out), Some("omstilling"));
    assert_eq!(
        c.record().questions,
        [QuestionRecord {
            entry: None,
            confirmed: None
        }]
    );
}

#[test]
fn opening_hours_asked_for_a_holiday_are_computed_from_the_calendar() {
    let store = shipped();
    let mut c = nordby(&store);
    let t = at("2026-12-01T10:00:00+01:00");
    c.start(t);
    let out = c.handle(
        identified("har borgerservice åbent juleaftensdag?", Lang::Da),
        t,
    );
    assert!(
        says_one_starting(
            &out,
            "Borgerservice har lukket torsdag den 24. december, fordi det er juleaftensdag."
        ),
        "{out:?}"
    );
}

#[test]
fn a_message_phrased_as_a_question_is_kept_as_the_message() {
    let store = shipped();
    let mut c = nordby(&store);
    // Monday evening: Sundhed og Omsorg is closed, a message is offered.
    let t = at("2026-11-23T20:00:00+01:00");
    c.start(t);
    c.handle(identified("hjemmehjælp", Lang::Da), t);
    keys(&mut c, "2", t);
    let out = c.handle(heard("hvornår kommer hjemmehjælpen i morgen?"), t);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Invoke(Request::SendMail { .. }))),
        "{out:?}"
    );
    assert!(c.record().questions.is_empty());
}
