//! What the caller already said counts, as a mechanism of the interpreter
//! (not of the shipped flows): any gather offers the call's earlier turns to
//! its own understanding before it asks, and confirms what it took.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use ivr_core::{Lang, Speech};
use ivr_flow::{Action, Event, Value};
use support::{at, call, heard, keys, said, says, with_flow};

/// A menu, then a date and a time question with the defaults (the date is
/// confirmed, the time too), then a goodbye that reads both back.
const FLOW: &str = r#"
start = "menu"

[step.menu]
do = "gather"
prompt = { da = "Hvad drejer det sig om?", en = "What is it about?" }
[[step.menu.intent]]
name = "aflys"
keywords = { da = ["aflyse"], en = ["cancel"] }
goto = "ask_date"
[[step.menu.intent]]
name = "andet"
keywords = { da = ["andet"], en = ["other"] }
goto = "ask_date"

[step.ask_date]
do = "gather"
expect = "date"
save_as = "date"
prompt = { da = "Hvilken dag?", en = "What day?" }
next = "ask_time"

[step.ask_time]
do = "gather"
expect = "time"
save_as = "time"
prompt = { da = "Hvad er klokken?", en = "What time?" }
next = "bye"

[step.bye]
do = "hangup"
text = { da = "Farvel {date|date} {time|time}", en = "Bye {date|date} {time|time}" }
"#;

/// Saturday 5 December 2026, 10:00.
fn saturday() -> chrono::DateTime<chrono::Utc> {
    at("2026-12-05T10:00:00+01:00")
}

fn gathers(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Gather { .. }))
        .count()
}

#[test]
fn a_date_said_at_the_menu_is_confirmed_by_the_date_question_instead_of_asked() {
    let (store, number, root) = with_flow("carry-confirm", FLOW);
    let mut c = call(&store, &number);
    c.start(saturday());
    let out = c.handle(heard("jeg skal aflyse noget på mandag"), saturday());
    assert_eq!(
        said(&out),
        vec!["Jeg hørte,", "mandag den 7. december. Er det rigtigt?"]
    );
    // The lead-in is the flow's own words (played from the prompt cache);
    // the rest quotes what the caller said: never cached.
    assert!(matches!(says(&out)[0], Speech::Static(_)));
    assert!(matches!(says(&out)[1], Speech::Personal(_)));
    assert_eq!(gathers(&out), 1);
    // Key 1 is yes; the time was not said: asked.
    let out = keys(&mut c, "1", saturday());
    assert_eq!(said(&out), vec!["Hvad er klokken?"]);
    assert_eq!(
        c.var("date"),
        Some(&Value::Date(
            chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
        ))
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_no_forgets_the_earlier_answer_and_asks_the_question() {
    let (store, number, root) = with_flow("carry-no", FLOW);
    let mut c = call(&store, &number);
    c.start(saturday());
    c.handle(heard("aflyse på mandag klokken ti"), saturday());
    let out = c.handle(heard("nej"), saturday());
    assert_eq!(said(&out), vec!["Hvilken dag?"]);
    assert_eq!(c.var("date"), None, "the rejected date is undone");
    // The time heard in the same first turn still counts.
    let out = c.handle(heard("onsdag"), saturday());
    assert_eq!(
        said(&out),
        vec!["Jeg hørte,", "klokken ti. Er det rigtigt?"],
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn keys_and_the_answer_to_the_question_itself_are_never_offered_again() {
    let (store, number, root) = with_flow("carry-keys", FLOW);
    let mut c = call(&store, &number);
    c.start(saturday());
    // Menu by speech without a date; the date by keys (0712).
    c.handle(heard("det er noget andet"), saturday());
    let out = keys(&mut c, "0712#", saturday());
    assert_eq!(said(&out), vec!["Hvad er klokken?"], "{out:?}");
    assert_eq!(c.heard().all().len(), 1, "keys are not kept as words");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn explanations_show_scores_values_and_answers_from_earlier_turns_only_when_asked() {
    let (store, number, root) = with_flow("carry-explain", FLOW);
    let mut quiet = call(&store, &number);
    quiet.start(saturday());
    quiet.handle(heard("jeg skal aflyse på mandag"), saturday());
    assert!(quiet.take_explanations().is_empty());

    let mut c = call(&store, &number);
    c.set_explain(true);
    c.start(saturday());
    c.handle(
        Event::Speech {
            text: ivr_core::Pii::new("I need to cancel on Monday".into()),
            confidence: 0.9,
            lang: Some(Lang::En),
            identified: true,
        },
        saturday(),
    );
    let lines: Vec<String> = c
        .take_explanations()
        .into_iter()
        .map(|l| l.expose().clone())
        .collect();
    let all = lines.join("\n");
    assert!(
        all.contains(
            "turn 1 at main/menu [en]: \"I need to cancel on Monday\" heard date=2026-12-07"
        ),
        "{all}"
    );
    assert!(
        all.contains("main/menu: intent scores [en]: aflys 0.95"),
        "{all}"
    );
    assert!(
        all.contains("main/ask_date: answered from turn 1: 07-12-2026 (asking to confirm)"),
        "{all}"
    );
    let _ = std::fs::remove_dir_all(root);
}
