//! What the caller already said counts (`tests/vectors/caller_turns/
//! conversations/`): a booking, a cancellation and a callback said in one
//! sentence go straight to the step that still needs an answer, in Danish
//! and English, in both municipalities. Each script runs through `ivr
//! simulate --script`, so the flows are understood as the engine understands
//! them.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::{path::PathBuf, process::Command};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn one_sentence_errands_go_straight_to_the_step_that_still_needs_an_answer() {
    let dir = repo().join("tests/vectors/caller_turns/conversations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "found {} scripts", files.len());
    // One process: the flows (and the sentence model) load once.
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .current_dir(repo())
        .args(["simulate", "--script"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        files.len(),
        "{stdout}"
    );
}

#[test]
fn a_failing_script_exits_1_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("wrong.txt");
    std::fs::write(
        &f,
        "@ municipality nordby\n@ at 2026-11-24T11:00:00+01:00\n> pas\n< Velkommen til Sydhavn\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ivr"))
        .current_dir(repo())
        .args(["simulate", "--script"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong.txt: line 4: expected an action containing `Velkommen til Sydhavn`"),
        "{err}"
    );
}
