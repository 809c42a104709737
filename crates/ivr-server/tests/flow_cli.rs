//! The operator commands as an operator runs them: `ivr check`, `ivr
//! simulate` with a script on stdin, `ivr graph`.

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

#[test]
fn check_accepts_the_shipped_flows_and_refuses_a_broken_one() {
    let ok = ivr().args(["check", "flows"]).output().unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let broken = repo().join("crates/ivr-flow/tests/invalid/dangling_goto.toml");
    let out = ivr().arg("check").arg(&broken).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: goes to unknown step `byee`"), "{err}");
    assert!(err.contains("dangling_goto.toml:6:8"), "{err}");
    assert!(err.contains("= hint: did you mean `bye`?"), "{err}");
}

#[test]
fn simulate_reads_caller_turns_from_stdin_and_prints_each_action() {
    let mut child = ivr()
        .args([
            "simulate",
            "--municipality",
            "nordby",
            "--at",
            "2026-11-23T19:00:00+01:00",
            "--caller",
            "+4522334455",
            "--integrations",
            "simulated",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"jobcenter\ndtmf:1\nja\nja\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("say[da]: Velkommen til Nordby Kommune"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("listen[da]: speech+dtmf")),
        "{stdout}"
    );
    assert!(
        lines.iter().any(
            |l| l.contains("Jobcentret har lukket nu. Vi åbner igen i morgen klokken halv ni.")
        ),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("invoke: callback department=borgerservice number=22334455")),
        "{stdout}"
    );
    assert!(lines.contains(&"result[simulated]: ok"), "{stdout}");
    assert!(lines.contains(&"hangup: callback_ordered"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("simulated integrations"));
}

#[test]
fn graph_prints_a_mermaid_flowchart() {
    let out = ivr()
        .args(["graph", "flows/shared/booking.toml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("flowchart TD\n"), "{s}");
    assert!(s.contains("book -- \"taken\" --> taken"), "{s}");
    assert!(s.contains("start((start)) --> book_or_cancel"), "{s}");
}

#[test]
fn serve_refuses_a_config_with_an_unknown_key_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[sip]\nudp = [\"127.0.0.1:0\"]\nmax_cals = 10\n").unwrap();
    let out = ivr()
        .arg("serve")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "serve must not start on a broken config"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:1"), "{err}");
    assert!(err.contains("max_cals"), "{err}");
}
