//! Runs every conversation script in `tests/conversations/` against the
//! shipped flows (`flows/` at the repository root) on simulated time with
//! simulated integrations. Script format: see `ivr_flow::sim::run_script`.

use std::path::PathBuf;

use ivr_flow::{sim::run_script, FlowStore};

fn flows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows")
}

#[test]
fn every_conversation_script_passes() {
    let (store, _) = FlowStore::load(flows_dir()).expect("shipped flows load");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conversations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the conversation scripts, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let script = std::fs::read_to_string(f).unwrap();
        if let Err(e) = run_script(&store, &script) {
            failures.push(format!("{}: {e}", f.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scripts failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
