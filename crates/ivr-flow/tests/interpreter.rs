//! Interpreter guarantees that do not depend on how a flow is written.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use ivr_core::{Dtmf, Lang, Pii};
use ivr_flow::{Action, Answers, Event, Outcome};
use support::{at, call, call_from, heard, identified, speech, store};

#[test]
fn a_caller_bounced_between_menus_reaches_a_human_after_four_failed_turns() {
    let s = store("tests/fixtures/loop_guard");
    let now = at("2026-11-23T10:00:00+01:00");
    let mut call = call(&s, "+4570000000");
    call.start(now);
    let mut last = Vec::new();
    for turn in 0..10 {
        last = call.handle(Event::NoInput, now);
        if call.is_transferring() {
            assert_eq!(turn, 3, "the guard ends the 4th failed turn");
            break;
        }
    }
    assert!(
        call.is_transferring(),
        "the interpreter must not loop forever"
    );
    assert!(
        last.iter().any(
            |a| matches!(a, Action::Transfer { department, .. } if department == "omstilling")
        ),
        "{last:?}"
    );
    assert_eq!(call.record().outcome, Some(Outcome::Transferred));
    assert_eq!(call.record().misunderstood, 4);
}

#[test]
fn when_the_fallback_is_closed_the_caller_hears_when_it_opens() {
    let s = store("tests/fixtures/loop_guard");
    // Saturday evening: the fallback department is closed.
    let now = at("2026-11-21T20:00:00+01:00");
    let mut call = call(&s, "+4570000000");
    call.start(now);
    let mut all = Vec::new();
    // Mumbling at the speech menu, silence at the keys-only menu.
    for _ in 0..10 {
        if call.is_done() {
            break;
        }
        all.extend(call.handle(speech("øhm"), now));
        all.extend(call.handle(Event::NoInput, now));
    }
    assert!(call.is_done());
    let texts: Vec<String> = all
        .iter()
        .filter_map(|a| {
            if let Action::Say { speech, .. } = a {
                Some(speech.expose().to_string())
            } else {
                None
            }
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "Vi åbner igen mandag den 23. november klokken otte."),
        "{texts:?}"
    );
    assert_eq!(call.record().outcome, Some(Outcome::Failed));
}

#[test]
fn keys_and_spoken_menu_numbers_both_choose() {
    let s = store("tests/fixtures/loop_guard");
    let now = at("2026-11-23T10:00:00+01:00");
    let mut a = call(&s, "+4570000000");
    a.start(now);
    let out = a.handle(Event::Dtmf(Dtmf::D1), now);
    assert!(matches!(out.last(), Some(Action::Hangup { .. })), "{out:?}");
    let mut b = call(&s, "+4570000000");
    b.start(now);
    let out = b.handle(speech("et"), now);
    assert!(matches!(out.last(), Some(Action::Hangup { .. })), "{out:?}");
}

#[test]
fn personal_data_never_shows_in_debug_output() {
    let s = store("../../flows");
    let now = at("2026-11-23T10:00:00+01:00");
    let mut call = call_from(&s, "+4570101010", "+4529876543");
    call.start(now);
    call.handle(Event::Dtmf(Dtmf::D4), now);
    call.handle(speech("Jens Hansen"), now);
    let out = call.handle(speech("0312901234"), now);
    let dump = format!("{call:?} {out:?}");
    for secret in ["0312901234", "29876543", "Jens Hansen"] {
        assert!(!dump.contains(secret), "{secret} leaked into Debug output");
    }
}

#[test]
fn events_after_the_end_or_out_of_turn_are_ignored() {
    let s = store("tests/fixtures/loop_guard");
    let now = at("2026-11-23T10:00:00+01:00");
    let mut call = call(&s, "+4570000000");
    call.start(now);
    assert!(call
        .handle(Event::TransferFailed { status: Some(503) }, now)
        .is_empty());
    assert!(call
        .handle(Event::Result(ivr_flow::Response::Ok), now)
        .is_empty());
    call.handle(Event::Hangup, now);
    assert!(call.handle(Event::Dtmf(Dtmf::D1), now).is_empty());
    assert_eq!(call.record().outcome, Some(Outcome::Abandoned));
}

#[test]
fn the_cancellation_mail_carries_kind_and_structured_fields_for_the_integration() {
    let s = store("../../flows");
    let now = at("2026-11-23T10:00:00+01:00");
    let mut call = call(&s, "+4570101010");
    call.start(now);
    for turn in [
        "dtmf:4",
        "Jens Hansen",
        "0312901234",
        "ja",
        "på torsdag",
        "kvart over ti",
    ] {
        let ev = match turn.strip_prefix("dtmf:") {
            Some(k) => Event::Dtmf(Dtmf::from_char(k.chars().next().unwrap()).unwrap()),
            None => speech(turn),
        };
        call.handle(ev, now);
    }
    let out = call.handle(speech("ja"), now);
    let Some(Action::Invoke(ivr_flow::Request::SendMail {
        municipality,
        kind,
        to,
        fields,
        ..
    })) = out.iter().find(|a| matches!(a, Action::Invoke(_)))
    else {
        panic!("no mail: {out:?}")
    };
    assert_eq!(municipality, "nordby");
    assert_eq!(kind.as_deref(), Some("jobcentre_cancellation"));
    assert_eq!(to, &vec!["jobcenter@nordby.example".to_string()]);
    let f = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.expose().clone())
    };
    assert_eq!(f("name").as_deref(), Some("Jens Hansen"));
    assert_eq!(f("cpr").as_deref(), Some("0312901234"));
    assert_eq!(f("date").as_deref(), Some("26-11-2026"));
    assert_eq!(f("time").as_deref(), Some("10:15"));
    assert_eq!(f("caller").as_deref(), Some("22334455"));
}

#[test]
fn an_unsure_transcript_of_a_name_is_kept_but_an_unsure_menu_answer_is_not() {
    // Whisper is rarely sure of a name (confidence 0.22 on "Mit navn er
    // Karen Hansen" spoken by espeak-ng): a free-text answer is kept as heard,
    // while a question the flow must understand still asks again.
    let s = store("../../flows");
    let now = at("2026-11-23T10:00:00+01:00");
    let unsure = |t: &str| Event::Speech {
        text: Pii::new(t.to_string()),
        confidence: 0.2,
        lang: None,
        identified: false,
    };
    let mut call = call(&s, "+4570101010");
    call.start(now);
    call.handle(Event::Dtmf(Dtmf::D4), now);
    let out = call.handle(unsure("med Talle Kanhenson"), now);
    assert_eq!(
        call.var("name").map(|v| v.plain()).as_deref(),
        Some("med Talle Kanhenson")
    );
    assert_eq!(
        call.record().steps.last().map(String::as_str),
        Some("jobcenter_cancel/ask_cpr"),
        "{out:?}"
    );
    assert_eq!(call.record().misunderstood, 0);
    // The same unsure transcript at the CPR question counts as not understood,
    // once it is confirmed by language identification (the engine recognises
    // the same audio again and finds Danish).
    let out = call.handle(unsure("nul et nul to nul tre et to tre fire"), now);
    assert_eq!(
        out,
        [Action::RecognizeAgain {
            among: vec![Lang::Da, Lang::En]
        }]
    );
    assert_eq!(call.record().misunderstood, 0);
    call.handle(
        Event::Speech {
            text: Pii::new("nul et nul to nul tre et to tre fire".into()),
            confidence: 0.2,
            lang: Some(Lang::Da),
            identified: true,
        },
        now,
    );
    assert_eq!(call.record().misunderstood, 1);
    assert!(call.var("cpr").is_none());
}

#[test]
fn would_answer_takes_closed_answers_only_and_leaves_the_call_as_it_was() {
    // The latency harness's deployment: one question per number.
    let s = store("../../benches/latency-flows");
    let now = at("2026-12-01T18:00:00Z");
    let closed = Answers::Closed;
    let mut yesno = call(&s, "+4579000002");
    yesno.start(now);
    assert!(yesno.would_answer(heard("ja"), now, closed));
    assert!(yesno.would_answer(heard("nej tak"), now, closed));
    assert!(!yesno.would_answer(heard("øh"), now, closed));
    let mut cpr = call(&s, "+4579000004");
    cpr.start(now);
    assert!(cpr.would_answer(heard("nul et nul to nul tre et to tre fire"), now, closed));
    // Six digits of ten: the caller is pausing between groups.
    assert!(!cpr.would_answer(heard("nul et nul to nul tre"), now, closed));
    // With closed answers only, a menu answer is never taken early.
    let mut menu = call(&s, "+4579000001");
    menu.start(now);
    assert!(!menu.would_answer(heard("jeg skal have fornyet mit pas"), now, closed));
    assert!(!menu.would_answer(identified("English please", Lang::En), now, closed));
    // Nothing of it happened to the calls themselves.
    for c in [&yesno, &cpr, &menu] {
        assert_eq!(c.record().misunderstood, 0);
        assert!(c.record().intents.is_empty());
    }
    assert!(!yesno.handle(heard("ja"), now).is_empty());
    assert_eq!(yesno.record().misunderstood, 0);
}

#[test]
fn would_answer_takes_open_answers_only_when_they_sound_finished() {
    let s = store("../../benches/latency-flows");
    let now = at("2026-12-01T18:00:00Z");
    let open = Answers::ClosedAndOpen;
    let mut menu = call(&s, "+4579000001");
    menu.start(now);
    assert!(menu.would_answer(heard("Jeg skal have fornyet mit pas."), now, open));
    // An errand named, but the sentence goes on.
    assert!(!menu.would_answer(heard("Det handler om mit pas og"), now, open));
    assert!(!menu.would_answer(heard("Jeg ringer om pas,"), now, open));
    // Finished, but no errand the menu knows: the end silence decides.
    assert!(!menu.would_answer(heard("Jeg har et spørgsmål."), now, open));
    let mut date = call(&s, "+4579000003");
    date.start(now);
    assert!(date.would_answer(heard("Den femtende december."), now, open));
    // The day alone: the month usually follows.
    assert!(!date.would_answer(heard("den femtende"), now, open));
    assert!(!date.would_answer(heard("på fredag den"), now, open));
    for c in [&menu, &date] {
        assert_eq!(c.record().misunderstood, 0);
        assert!(c.record().intents.is_empty());
    }
}
