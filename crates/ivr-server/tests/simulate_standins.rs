//! `ivr simulate` with its default integrations: the engine's own
//! integration code against the local stand-ins (an in-process Frontdesk
//! server, the SQLite callback store and mail outbox). Each test books,
//! orders or mails as a caller would and checks the stand-in answered and
//! holds the result, without personal data in the summary.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ivr() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ivr"));
    c.current_dir(repo());
    c
}

/// Runs `ivr simulate` with the default integrations (the local stand-ins)
/// on a script; returns stdout, after checking it succeeded.
fn simulate_with_standins(target: [&str; 2], at: &str, script: &str) -> String {
    let mut child = ivr()
        .arg("simulate")
        .args(target)
        .args(["--at", at, "--caller", "+4522334455"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("integrations against local stand-ins"),
        "{stderr}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lines after the call record: what the stand-ins hold.
fn summary(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("record: "))
        .skip(1)
        .collect()
}

#[test]
fn simulate_books_a_slot_at_the_frontdesk_standin() {
    // Monday evening: the stand-in offers slots from Tuesday 10:00 on.
    let stdout = simulate_with_standins(
        ["--municipality", "nordby"],
        "2026-11-23T19:00:00+01:00",
        "pas\nbestille\ndtmf:1\ndtmf:0101901234#\nja\n",
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("invoke: frontdesk.slots queue=pas")),
        "{stdout}"
    );
    assert!(
        lines.contains(
            &"result[stand-in]: slots 2026-11-24 10:00, 2026-11-24 10:15, 2026-11-24 10:30"
        ),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("result[stand-in]: booked FD-")
                && l.ends_with(" at 2026-11-24 10:00")),
        "{stdout}"
    );
    // The confirmation's lead-in from the cache, then the booking read back.
    assert!(
        lines.windows(2).any(|w| w[0] == "say[da]: Du har fået tid,"
            && w[1].starts_with("say[da]: tirsdag den 24. november klokken ti.")),
        "{stdout}"
    );
    assert!(!stdout.contains("result[simulated]"), "{stdout}");
    let summary = summary(&stdout);
    assert_eq!(
        summary.first(),
        Some(&"stand-ins: callbacks stored=0 mails queued=0 frontdesk bookings=1"),
        "{stdout}"
    );
    assert!(
        summary
            .iter()
            .all(|l| !l.contains("0101901234") && !l.contains("22334455")),
        "{stdout}"
    );
}

#[test]
fn simulate_stores_a_callback_in_the_standin_callback_store() {
    let stdout = simulate_with_standins(
        ["--municipality", "nordby"],
        "2026-11-23T19:00:00+01:00",
        "jobcenter\ndtmf:1\nja\nja\n",
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("invoke: callback department=borgerservice")),
        "{stdout}"
    );
    assert!(lines.contains(&"result[stand-in]: ok"), "{stdout}");
    assert!(lines.contains(&"hangup: callback_ordered"), "{stdout}");
    let summary = summary(&stdout);
    assert_eq!(
        summary.first(),
        Some(&"stand-ins: callbacks stored=1 mails queued=0 frontdesk bookings=0"),
        "{stdout}"
    );
    assert!(
        summary.contains(
            &"stand-in callback: municipality=nordby department=borgerservice state=requested"
        ),
        "{stdout}"
    );
    assert!(summary.iter().all(|l| !l.contains("22334455")), "{stdout}");
}

#[test]
fn simulate_queues_a_jobcentre_mail_in_the_standin_outbox_without_sending_it() {
    let stdout = simulate_with_standins(
        ["--number", "+4570202030"],
        "2026-11-23T19:00:00+01:00",
        "aflyse\nJens Hansen\ndtmf:0101901234#\nja\ni morgen\nkvart over ti\nja\n",
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("invoke: mail to=jobcenter@sydhavn.example")),
        "{stdout}"
    );
    assert!(lines.contains(&"result[stand-in]: ok"), "{stdout}");
    assert!(lines.contains(&"hangup: mail_sent"), "{stdout}");
    let summary = summary(&stdout);
    assert_eq!(
        summary.first(),
        Some(&"stand-ins: callbacks stored=0 mails queued=1 frontdesk bookings=0"),
        "{stdout}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("stand-in mail: kind=jobcentre_cancellation state=pending")),
        "{stdout}"
    );
    assert!(
        summary
            .iter()
            .all(|l| !l.contains("0101901234") && !l.contains("22334455") && !l.contains("Jens")),
        "{stdout}"
    );
}
