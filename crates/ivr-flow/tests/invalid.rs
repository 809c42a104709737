//! One broken file per validation error in `tests/invalid/`, named for the
//! error. Its first line says what `ivr check` must report:
//! `# expect: LINE:COL: message | hint` (message and hint are substrings).
//! Files named `municipality-*.toml` / `tenants-*.toml` replace that file of
//! the base deployment in `tests/invalid/_base/`; others replace its flow.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

fn invalid_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/invalid")
}

/// A fresh copy of the base deployment in a temp folder.
fn base_copy(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("ivr-flow-invalid-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("testby")).unwrap();
    let base = invalid_dir().join("_base");
    std::fs::copy(base.join("tenants.toml"), root.join("tenants.toml")).unwrap();
    std::fs::copy(
        base.join("municipality.toml"),
        root.join("testby/municipality.toml"),
    )
    .unwrap();
    std::fs::copy(base.join("main.toml"), root.join("testby/main.toml")).unwrap();
    root
}

fn target_for(root: &Path, name: &str) -> PathBuf {
    if name.starts_with("municipality-") {
        root.join("testby/municipality.toml")
    } else if name.starts_with("tenants-") {
        root.join("tenants.toml")
    } else {
        root.join("testby/main.toml")
    }
}

#[test]
fn the_base_deployment_is_valid() {
    let root = base_copy("base");
    let loaded = ivr_flow::load(&root);
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    assert!(loaded.deployment.is_some());
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn every_broken_file_reports_its_error_at_line_and_column() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(invalid_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "found only {} invalid cases",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| {
                panic!("{name}: first line must be `# expect: L:C: message | hint`")
            });
        let (pos, rest) = expect.split_once(": ").unwrap();
        let (line, col) = pos.split_once(':').unwrap();
        let (line, col): (usize, usize) = (line.parse().unwrap(), col.parse().unwrap());
        let (msg, hint) = rest
            .split_once(" | ")
            .map_or((rest, ""), |(m, h)| (m, h.trim()));
        let root = base_copy(&name);
        let target = target_for(&root, &name);
        std::fs::write(&target, &text).unwrap();
        let loaded = ivr_flow::load(&root);
        let found = loaded.diagnostics.iter().any(|d| {
            d.file == target
                && d.line == line
                && d.col == col
                && d.message.contains(msg)
                && (hint.is_empty() || d.hint.as_deref().is_some_and(|h| h.contains(hint)))
        });
        let is_warning_case = name == "unreachable_step";
        if !found {
            failures.push(format!(
                "{name}: expected {line}:{col}: {msg} | {hint}\n got:\n{}",
                loaded
                    .diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        } else if is_warning_case == loaded.deployment.is_none() {
            failures.push(format!("{name}: a warning must not refuse the load and an error must (deployment loaded: {})", loaded.deployment.is_some()));
        }
        let _ = std::fs::remove_dir_all(root);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
