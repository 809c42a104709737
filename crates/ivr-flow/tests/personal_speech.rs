//! Which prompts of the shipped flows are personal speech (never cached) and
//! which are static (cacheable): read-backs of CPR numbers, phone numbers,
//! names and the caller's own appointment are personal; prompts, opening
//! hours, department names and the free slots Frontdesk offers are not.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use chrono::{DateTime, Utc};
use ivr_core::{Lang, Pii, Speech};
use ivr_flow::{Action, Event, Interpreter, Response};
use support::{at, call, call_from, keys, says, shipped, speech, with_flow};

/// Feeds an event the way the engine does: `RecognizeAgain` is answered with
/// the same words, identified as Danish.
fn feed(call: &mut Interpreter, ev: Event, now: DateTime<Utc>) -> Vec<Action> {
    let again = ev.clone();
    let mut out = call.handle(ev, now);
    if out
        .iter()
        .any(|a| matches!(a, Action::RecognizeAgain { .. }))
    {
        let Event::Speech {
            text, confidence, ..
        } = again
        else {
            unreachable!("only speech is recognised again")
        };
        out.extend(call.handle(
            Event::Speech {
                text,
                confidence,
                lang: Some(Lang::Da),
                identified: true,
            },
            now,
        ));
    }
    out
}

/// Every say of a conversation, and a check that no static one holds any of
/// the caller's personal data.
fn assert_no_static_say_holds(all: &[Speech], secrets: &[&str]) {
    for s in all {
        if let Speech::Static(t) = s {
            for secret in secrets {
                assert!(
                    !t.contains(secret),
                    "static (cacheable) speech holds `{secret}`: {t}"
                );
            }
        }
    }
}

#[test]
fn the_job_centre_cancellation_reads_back_cpr_date_and_name_as_personal_speech() {
    let store = shipped();
    let now = at("2026-11-23T10:00:00+01:00");
    let mut c = call_from(&store, "+4570202030", "+4522334455");
    let mut all = says(&c.start(now));
    assert_eq!(
        all[0],
        Speech::Static("Du har ringet til Jobcenter Sydhavn.".into())
    );
    all.extend(says(&keys(&mut c, "1", now)));
    all.extend(says(&feed(&mut c, speech("Jens Hansen"), now)));
    let confirm_cpr = says(&keys(&mut c, "0312901234", now));
    // The flow's lead-in plays from the cache; the number read back is personal.
    assert_eq!(
        confirm_cpr,
        [
            Speech::Static("Jeg hørte,".into()),
            Speech::Personal(Pii::new(
                "nul tre, tolv, halvfems, tolv, fireogtredive. Er det rigtigt?".into()
            ))
        ]
    );
    all.extend(confirm_cpr);
    all.extend(says(&feed(&mut c, speech("ja"), now)));
    all.extend(says(&feed(&mut c, speech("den 26. november"), now)));
    let confirm = says(&feed(&mut c, speech("kvart over ti"), now));
    assert!(
        confirm.last().is_some_and(Speech::is_personal),
        "the appointment read back: {confirm:?}"
    );
    assert!(
        confirm
            .iter()
            .all(|s| s.is_personal() || !s.expose().contains("november")),
        "the appointment read back: {confirm:?}"
    );
    all.extend(confirm);
    let mail = feed(&mut c, speech("ja"), now);
    assert!(mail.iter().any(|a| matches!(a, Action::Invoke(_))));
    let sent = says(&c.handle(Event::Result(Response::Ok), now));
    let thanks = sent
        .iter()
        .find(|s| s.expose().starts_with("Tak, Jens Hansen"))
        .expect("the confirmation names the caller");
    assert!(thanks.is_personal());
    assert!(
        sent.iter()
            .any(|s| *s == Speech::Static("Tak for opkaldet. Farvel.".into())),
        "the goodbye stays cacheable: {sent:?}"
    );
    all.extend(sent);
    assert_no_static_say_holds(
        &all,
        &[
            "Jens",
            "Hansen",
            "0312901234",
            "nul tre, tolv",
            "26. november",
        ],
    );
    // The flow's own prompts stay cacheable.
    assert!(all.contains(&Speech::Static(
        "Sig eller tast dit CPR-nummer, ti cifre.".into()
    )));
}

#[test]
fn a_callback_reads_back_the_callers_number_as_personal_and_the_window_as_static() {
    let store = shipped();
    // Monday evening: the job centre is closed, a callback is offered.
    let now = at("2026-11-23T19:00:00+01:00");
    let mut c = call_from(&store, "+4570101010", "+4522334455");
    let mut all = says(&c.start(now));
    let closed = says(&feed(&mut c, speech("jobcenter"), now));
    assert!(
        closed.iter().all(|s| !s.is_personal()),
        "department name and opening hours are public: {closed:?}"
    );
    assert!(closed[0]
        .expose()
        .starts_with("Jobcentret har lukket nu. Vi åbner igen i morgen"));
    all.extend(closed);
    let number = says(&keys(&mut c, "1", now));
    assert_eq!(number[0], Speech::Static("Skal vi ringe dig op på,".into()));
    assert!(number[1].is_personal(), "{number:?}");
    assert!(number[1].expose().contains("toogtyve, treogtredive"));
    all.extend(number);
    // Another number, read back: personal too.
    all.extend(says(&feed(&mut c, speech("nej"), now)));
    let new_number = says(&keys(&mut c, "87654321", now));
    assert!(new_number[1].is_personal(), "{new_number:?}");
    assert!(
        new_number[1].expose().contains("syvogfirs"),
        "{new_number:?}"
    );
    all.extend(new_number);
    let window = says(&feed(&mut c, speech("ja"), now));
    assert!(
        window[0]
            .expose()
            .starts_with("Vi ringer dig op i morgen mellem"),
        "{window:?}"
    );
    assert!(!window[0].is_personal(), "the callback window is public");
    all.extend(window);
    assert_no_static_say_holds(
        &all,
        &[
            "toogtyve, treogtredive",
            "22334455",
            "syvogfirs",
            "87654321",
        ],
    );
}

#[test]
fn offered_slots_are_static_while_the_cpr_and_the_booking_read_back_are_personal() {
    let store = shipped();
    let now = at("2026-11-23T10:00:00+01:00");
    let mut c = call_from(&store, "+4570101010", "+4522334455");
    c.start(now);
    feed(&mut c, speech("pas"), now);
    let find = keys(&mut c, "1", now);
    let Some(Action::Invoke(ivr_flow::Request::FrontdeskSlots { from, .. })) = find.first() else {
        panic!("no slot request: {find:?}")
    };
    let slot = |h: u32, m: u32| ivr_flow::Slot {
        id: format!("pas-{h}{m}"),
        start: *from
            + chrono::Duration::hours(24 + i64::from(h) - 10)
            + chrono::Duration::minutes(i64::from(m)),
    };
    let offer = says(&c.handle(
        Event::Result(Response::Slots(vec![
            slot(10, 0),
            slot(10, 15),
            slot(10, 45),
        ])),
        now,
    ));
    assert!(
        offer[0]
            .expose()
            .starts_with("Den første ledige tid er tirsdag"),
        "{offer:?}"
    );
    assert!(!offer[0].is_personal(), "free slots are offered to anyone");
    let confirm = says(&feed(&mut c, speech("den anden"), now));
    assert_eq!(confirm.len(), 1);
    let confirm = says(&keys(&mut c, "0312901234", now));
    assert!(!confirm[0].is_personal(), "the lead-in: {confirm:?}");
    assert!(confirm[1].is_personal(), "{confirm:?}");
    assert!(confirm[1].expose().contains("nul tre, tolv"), "{confirm:?}");
    let book = feed(&mut c, speech("ja"), now);
    assert!(book.iter().any(|a| matches!(a, Action::Invoke(_))));
    let booked = says(&c.handle(
        Event::Result(Response::Booked {
            reference: "FD-77".into(),
            start: slot(10, 15).start,
        }),
        now,
    ));
    let booking = booked
        .iter()
        .find(|s| s.expose().contains("FD-77"))
        .expect("the booking number is read back");
    assert!(
        booking.is_personal(),
        "the caller's own booking: {booked:?}"
    );
    assert!(
        booked
            .iter()
            .all(|s| s.is_personal() || !s.expose().contains("november")),
        "{booked:?}"
    );
}

#[test]
fn a_prompt_marked_personal_is_personal_speech_and_is_not_pre_rendered() {
    let (store, number, root) = with_flow(
        "personal",
        r#"start = "secret"
[step.secret]
do = "say"
personal = true
text = { da = "Din kode er rød.", en = "Your code is red." }
next = "bye"
[step.bye]
do = "hangup"
text = { da = "Farvel.", en = "Goodbye." }
"#,
    );
    let prompts = store.static_prompts();
    assert!(prompts.iter().any(|(_, t)| t == "Farvel."));
    assert!(
        !prompts.iter().any(|(_, t)| t.contains("kode")),
        "a personal prompt would be pre-rendered into the cache"
    );
    let mut c = call(&store, &number);
    let out = says(&c.start(at("2026-11-23T10:00:00+01:00")));
    assert_eq!(
        out,
        [
            Speech::Personal(Pii::new("Din kode er rød.".into())),
            Speech::Static("Farvel.".into())
        ]
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_lead_ins_of_read_backs_are_pre_rendered_and_hold_no_personal_data() {
    let store = shipped();
    let prompts = store.static_prompts();
    for (lang, lead) in [
        (Lang::Da, "Jeg hørte,"),
        (Lang::En, "I heard,"),
        (Lang::Da, "Skal vi ringe dig op på,"),
        (Lang::Da, "Du vil aflyse din aftale,"),
    ] {
        assert!(
            prompts.iter().any(|(l, t)| *l == lang && t == lead),
            "`{lead}` is not pre-rendered"
        );
    }
    // Lead-ins are the flows' literal words only: never a value.
    assert!(prompts.iter().all(|(_, t)| !t.contains('{')));
}
