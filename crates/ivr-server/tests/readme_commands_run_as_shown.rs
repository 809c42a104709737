//! Every `ivr` command in the shell code blocks of the README and of
//! `docs/flows.md` runs as shown, against the shipped flows, with the built
//! binary: a reader who copies one gets what the document promises, not
//! `error: unknown queue pas`.
//!
//! Left out: `ivr serve` (it runs until stopped; its configuration is tested
//! in `flow_cli.rs`) and commands that need models or a running engine
//! (listed in [`NEEDS_MORE`]).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Commands that do more than read the flows: they are tested elsewhere.
const NEEDS_MORE: &[&str] = &["ivr serve"];

/// Documents whose commands are checked, relative to the repository.
const DOCUMENTS: &[&str] = &["README.md", "docs/flows.md"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The lines of the shell code blocks (```sh, ```bash, ```shell) of
/// `markdown` that run `ivr` (as the command or at the end of a pipe).
fn ivr_commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_shell = false;
    let mut in_block = false;
    for line in markdown.lines() {
        let t = line.trim_start();
        if let Some(info) = t.strip_prefix("```") {
            if in_block {
                in_block = false;
                in_shell = false;
            } else {
                in_block = true;
                in_shell = matches!(info.trim(), "sh" | "bash" | "shell");
            }
            continue;
        }
        if !in_shell {
            continue;
        }
        let runs_ivr = t.starts_with("ivr ") || t.contains("| ivr ");
        if runs_ivr && !NEEDS_MORE.iter().any(|n| t.starts_with(n)) {
            out.push(t.to_string());
        }
    }
    out
}

/// A working directory like the repository's root for the commands: the
/// shipped `flows/`, `config/`, `tests/` and the `models/` setup fetched
/// (intents by meaning, as a user's checkout has them), and nothing the
/// commands write lands in the repository. `bin` holds `ivr`, first on the `PATH`.
fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["flows", "config", "tests", "models"] {
        std::os::unix::fs::symlink(repo().join(d).canonicalize().unwrap(), dir.path().join(d))
            .unwrap();
    }
    std::fs::create_dir(dir.path().join("bin")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ivr"), dir.path().join("bin/ivr")).unwrap();
    dir
}

fn run(dir: &Path, command: &str) -> std::process::Output {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_ivr_command_in_the_readme_and_the_flow_docs_runs_as_shown() {
    let mut ran = 0;
    for doc in DOCUMENTS {
        let text = std::fs::read_to_string(repo().join(doc)).unwrap();
        let commands = ivr_commands(&text);
        assert!(!commands.is_empty(), "{doc} shows no ivr command");
        for command in commands {
            let dir = sandbox();
            let out = run(dir.path(), &command);
            assert!(
                out.status.success(),
                "{doc}: `{command}` failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            // A command that writes a file (`> main.mmd`, `-o main.svg`)
            // wrote something.
            for word in command.split_whitespace() {
                let p = dir.path().join(word);
                if word.contains('.') && !word.starts_with('-') && p.is_file() {
                    assert!(
                        std::fs::metadata(&p).unwrap().len() > 0,
                        "{doc}: `{command}` left {word} empty"
                    );
                }
            }
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} commands found");
}

#[test]
fn the_command_extraction_takes_shell_blocks_only_and_skips_serve() {
    let md = "```sh\nmake run\nivr check flows   # note\nivr serve --config x\n\
              printf 'a' | ivr simulate --municipality nordby\n```\n\
              ```toml\nivr = 1\n```\n```text\nivr check nothing\n```\n";
    assert_eq!(
        ivr_commands(md),
        [
            "ivr check flows   # note",
            "printf 'a' | ivr simulate --municipality nordby"
        ]
    );
}
