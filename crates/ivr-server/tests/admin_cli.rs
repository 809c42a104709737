//! `ivr admin add-user` makes the first console account in the configured
//! database: the password from the environment or standard input, a bad
//! scope or a short password refused with a message, a second account of
//! the same name refused.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::io::Write as _;
use std::process::{Command, Stdio};

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("ivr.toml");
    std::fs::write(
        &p,
        format!(
            "[integrations]\ndatabase_url = \"sqlite:{}\"\n",
            dir.join("ivr.db").display()
        ),
    )
    .unwrap();
    p
}

fn ivr(
    cfg: &std::path::Path,
    args: &[&str],
    password: Option<&str>,
    stdin: &str,
) -> (bool, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ivr"));
    c.arg("admin").arg("--config").arg(cfg).args(args);
    c.env_remove("IVR_ADMIN_PASSWORD");
    if let Some(p) = password {
        c.env("IVR_ADMIN_PASSWORD", p);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn add_user_creates_accounts_that_list_users_shows_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (ok, out) = ivr(
        &cfg,
        &[
            "add-user",
            "root",
            "--scope",
            "central",
            "--role",
            "supervisor",
        ],
        Some("en lang nok adgangskode"),
        "",
    );
    assert!(ok, "{out}");
    let (ok, out) = ivr(
        &cfg,
        &["add-user", "nordby-anna", "--scope", "nordby"],
        None,
        "korrekt hest batteri\n",
    );
    assert!(ok, "{out}");
    let (ok, out) = ivr(&cfg, &["list-users"], None, "");
    assert!(ok, "{out}");
    assert!(
        out.contains("nordby-anna\tmunicipality:nordby\toperator"),
        "{out}"
    );
    assert!(out.contains("root\tcentral\tsupervisor"), "{out}");
    let (ok, out) = ivr(
        &cfg,
        &["add-user", "root", "--scope", "central"],
        Some("en lang nok adgangskode"),
        "",
    );
    assert!(!ok && out.contains("exists"), "{out}");
    let (ok, out) = ivr(
        &cfg,
        &["add-user", "kort", "--scope", "nordby"],
        Some("kort"),
        "",
    );
    assert!(!ok && out.contains("at least 10"), "{out}");
    let (ok, out) = ivr(
        &cfg,
        &["add-user", "x", "--scope", "Nordby Kommune"],
        Some("en lang nok adgangskode"),
        "",
    );
    assert!(!ok && out.contains("--scope"), "{out}");
}
