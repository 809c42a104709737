//! `ivr graph --format svg` draws every shipped flow as well-formed SVG that
//! names each of its steps.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::{ffi::OsStr, path::PathBuf, process::Command};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every flow file shipped under `flows/` (not the municipality files).
fn shipped_flows() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(repo().join("flows")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "toml")
                && f.file_name().is_some_and(|n| n != "municipality.toml")
            {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

/// Runs `ivr graph ARGS` from the repository's root; its standard output.
fn graph<I: AsRef<OsStr>>(args: impl IntoIterator<Item = I>) -> Vec<u8> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ivr"));
    cmd.current_dir(repo()).arg("graph").args(args);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {stderr}");
    out.stdout
}

/// The `[step.NAME]` names of a flow file.
fn step_names(file: &PathBuf) -> Vec<String> {
    let src = std::fs::read_to_string(file).unwrap();
    let doc: toml::Table = src.parse().unwrap();
    doc.get("step")
        .and_then(|s| s.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_shipped_flow_draws_as_well_formed_svg_naming_each_step() {
    let flows = shipped_flows();
    assert!(flows.len() >= 5, "{flows:?}");
    for file in flows {
        let svg = String::from_utf8(graph([
            file.as_os_str(),
            "--format".as_ref(),
            "svg".as_ref(),
        ]))
        .unwrap();
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{}: not well-formed XML: {e}", file.display()));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg", "{}", file.display());
        let texts: Vec<String> = root
            .descendants()
            .filter(|n| n.has_tag_name("text") || n.has_tag_name("tspan"))
            .filter_map(|n| n.text())
            .map(str::to_string)
            .collect();
        for step in step_names(&file) {
            assert!(
                texts.iter().any(|t| t.trim() == step),
                "{}: step `{step}` is not drawn",
                file.display()
            );
        }
    }
}

#[test]
fn svg_flag_writes_the_picture_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("booking.svg");
    let stdout = graph([
        "flows/shared/booking.toml".as_ref(),
        "--svg".as_ref(),
        path.as_os_str(),
    ]);
    assert!(stdout.is_empty(), "nothing on stdout when writing a file");
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(roxmltree::Document::parse(&svg).is_ok());
}
