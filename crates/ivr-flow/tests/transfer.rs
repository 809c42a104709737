//! After a transfer the flow waits: a transfer that went through ends the
//! call as transferred; one that failed comes back to the flow (`if_failed`)
//! or, without it, the caller hears an apology and is helped otherwise.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use ivr_core::Dtmf;
use ivr_flow::{Action, Event, Outcome};
use support::{call, nordby, now, said, shipped, speech, transferred_to, with_flow};

#[test]
fn the_interpreter_waits_after_a_transfer_and_a_hangup_means_transferred() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    let out = c.handle(speech("jobcenter"), now());
    assert_eq!(transferred_to(&out), Some("jobcenter"));
    assert!(c.is_transferring() && !c.is_done());
    // Keys or speech while the transfer is under way change nothing.
    assert!(c.handle(Event::Dtmf(Dtmf::D1), now()).is_empty());
    c.handle(Event::Hangup, now());
    assert!(c.is_done());
    assert_eq!(c.record().outcome, Some(Outcome::Transferred));
    assert_eq!(c.record().transferred_to.as_deref(), Some("jobcenter"));
}

#[test]
fn a_failed_transfer_without_if_failed_apologises_and_tries_the_switchboard_once() {
    let store = shipped();
    let mut c = nordby(&store);
    c.start(now());
    c.handle(speech("jobcenter"), now());
    let out = c.handle(Event::TransferFailed { status: Some(486) }, now());
    assert_eq!(
        said(&out),
        [
            "Beklager, ingen kunne tage dit opkald lige nu.",
            "Jeg stiller dig videre til en medarbejder."
        ]
    );
    assert_eq!(transferred_to(&out), Some("omstilling"));
    assert!(c.is_transferring());
    // The switchboard does not answer either (timeout): no third try.
    let out = c.handle(Event::TransferFailed { status: None }, now());
    assert_eq!(
        said(&out),
        [
            "Beklager, ingen kunne tage dit opkald lige nu.",
            "Prøv at ringe igen senere. Farvel."
        ]
    );
    assert!(matches!(
        out.last(),
        Some(Action::Hangup {
            outcome: Outcome::Failed
        })
    ));
    assert!(c.is_done());
    assert_eq!(c.record().outcome, Some(Outcome::Failed));
    assert_eq!(c.record().transferred_to, None);
}

#[test]
fn a_failed_transfer_goes_to_the_steps_if_failed() {
    let (store, number, root) = with_flow(
        "if-failed",
        r#"start = "to_staff"
[step.to_staff]
do = "transfer"
department = "omstilling"
if_failed = "busy"
[step.busy]
do = "hangup"
text = { da = "Alle er optaget. Ring igen senere.", en = "Everybody is busy. Please call again later." }
outcome = "failed"
"#,
    );
    let mut c = call(&store, &number);
    assert_eq!(transferred_to(&c.start(now())), Some("omstilling"));
    let out = c.handle(Event::TransferFailed { status: Some(603) }, now());
    assert_eq!(said(&out), ["Alle er optaget. Ring igen senere."]);
    assert_eq!(
        c.record().steps.last().map(String::as_str),
        Some("main/busy")
    );
    assert_eq!(c.record().outcome, Some(Outcome::Failed));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_flow_retrying_a_failing_transfer_is_stopped_after_three_failures() {
    let (store, number, root) = with_flow(
        "retry",
        r#"start = "to_staff"
[step.to_staff]
do = "transfer"
department = "omstilling"
if_failed = "again"
[step.again]
do = "say"
text = { da = "Vi prøver igen.", en = "We try again." }
next = "to_staff"
"#,
    );
    let mut c = call(&store, &number);
    c.start(now());
    let mut transfers = 1;
    for _ in 0..10 {
        let out = c.handle(Event::TransferFailed { status: Some(486) }, now());
        if transferred_to(&out).is_some() {
            transfers += 1;
        }
        if c.is_done() {
            break;
        }
    }
    assert!(c.is_done());
    assert_eq!(transfers, ivr_flow::interp::MAX_TRANSFER_FAILURES);
    assert_eq!(c.record().outcome, Some(Outcome::Failed));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_key_entry_ends_at_max_digits_without_waiting_for_hash_or_silence() {
    let store = shipped();
    let mut c = call(&store, "+4570202030");
    c.start(now());
    c.handle(Event::Dtmf(Dtmf::D1), now());
    c.handle(speech("Jens Hansen"), now());
    let mut out = Vec::new();
    for (i, k) in "0312901234".chars().enumerate() {
        out = c.handle(Event::Dtmf(Dtmf::from_char(k).unwrap()), now());
        if i < 9 {
            assert!(out.is_empty(), "entry ended after {} keys", i + 1);
        }
    }
    assert!(
        said(&out)
            .first()
            .is_some_and(|s| s.starts_with("Jeg hørte")),
        "{out:?}"
    );
}
