//! `ivr eval` on the caller-turn text set (`tests/vectors/caller_turns/`):
//! the shipped main menus route first turns, per use case, at least as well
//! as measured when the floors were set (with a margin), and a bad file is
//! refused with FILE:LINE.

#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::{collections::BTreeMap, path::PathBuf, process::Command};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ivr() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ivr"));
    c.current_dir(repo());
    c
}

/// Accuracy per use case as `ivr eval` prints it (`use_case NAME R/T P %`).
fn eval(municipality: &str) -> (BTreeMap<String, f64>, String) {
    let file = format!("tests/vectors/caller_turns/{municipality}.tsv");
    let out = ivr()
        .args([
            "eval",
            "--municipality",
            municipality,
            &file,
            "--at",
            "2026-11-24T10:00:00+01:00",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for l in stdout.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let ["use_case", name, frac, ..] = f.as_slice() {
            let (r, t) = frac.split_once('/').unwrap();
            let (r, t): (f64, f64) = (r.parse().unwrap(), t.parse().unwrap());
            m.insert(name.to_string(), r / t);
        }
    }
    (m, stdout)
}

/// Floors per use case, measured on 2026-12-05 with lexical intent
/// matching (keywords, no sentence model) minus a margin of about 0.07.
/// Out-of-scope turns are held lower (0.70): a trial with the sentence model
/// (intents branch) routed more of them somewhere (nordby 0.79, sydhavn
/// 0.77) while every other use case rose; raise the floors once the model
/// is on main.
const FLOORS: &[(&str, &[(&str, f64)])] = &[
    (
        "nordby",
        &[
            ("booking", 0.85),
            ("callback", 0.40),
            ("general", 0.55),
            ("human", 0.70),
            ("jobcentre_cancel", 0.30),
            ("out_of_scope", 0.70),
            ("switchboard", 0.50),
        ],
    ),
    (
        "sydhavn",
        &[
            ("booking", 0.80),
            ("callback", 0.45),
            ("general", 0.25),
            ("human", 0.55),
            ("jobcentre_cancel", 0.45),
            ("out_of_scope", 0.70),
            ("switchboard", 0.45),
        ],
    ),
];

#[test]
fn shipped_menus_route_the_caller_turn_set_above_the_floors_per_use_case() {
    let mut below = Vec::new();
    for (m, floors) in FLOORS {
        let (got, report) = eval(m);
        for (uc, floor) in *floors {
            let acc = *got
                .get(*uc)
                .unwrap_or_else(|| panic!("{m}: no use case {uc} in\n{report}"));
            if acc < *floor {
                below.push(format!("{m} {uc}: {acc:.3} < floor {floor}"));
            }
        }
        assert_eq!(
            got.len(),
            floors.len(),
            "{m}: use cases in the set and floors differ\n{report}"
        );
    }
    assert!(below.is_empty(), "{}", below.join("\n"));
}

#[test]
fn a_bad_turns_file_is_refused_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("turns.tsv");
    std::fs::write(
        &f,
        "lang\texpected\ttext\nda\tpas\tjeg skal have nyt pas\nda\tpasport\tmit pas er væk\n",
    )
    .unwrap();
    let out = ivr()
        .args(["eval", "--municipality", "nordby"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("turns.tsv:3: unknown expected `pasport`"),
        "{err}"
    );
}
