//! The shipped flows pass the validator, and the store reloads safely:
//! new calls get the new version, calls in progress keep theirs, a broken
//! file is refused with file:line:column while the old version keeps
//! serving, and an announcement is put in front of every flow on reload.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use std::path::{Path, PathBuf};

use ivr_core::{Lang, Pii};
use ivr_flow::{Action, Event, FlowStore, StoreError};
use support::{at, call, nordby, said};

fn flows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn temp_flows(tag: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("ivr-flow-store-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(&flows_dir(), &root);
    root
}

#[test]
fn shipped_flows_pass_check_without_errors_or_warnings() {
    let loaded = ivr_flow::load(&flows_dir());
    let text: Vec<String> = loaded.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(loaded.diagnostics.is_empty(), "{}", text.join("\n"));
    let d = loaded.deployment.unwrap();
    assert!(d.municipalities.len() >= 2);
    for m in d.municipalities.values() {
        assert_eq!(m.languages, vec![Lang::Da, Lang::En], "{}", m.id);
        for f in ["main", "callback", "booking", "jobcenter_cancel"] {
            assert!(m.flow_named(f).is_some(), "{} lacks flow {f}", m.id);
        }
        for q in ["pas", "koerekort", "mitid"] {
            assert!(
                m.queues.contains_key(q),
                "{} lacks Frontdesk queue {q}",
                m.id
            );
        }
    }
}

#[test]
fn static_prompts_cover_both_languages_for_pre_rendering() {
    let (store, _) = FlowStore::load(flows_dir()).unwrap();
    let prompts = store.static_prompts();
    assert!(prompts
        .iter()
        .any(|(l, t)| *l == Lang::Da && t.starts_with("Velkommen til Nordby Kommune")));
    assert!(prompts
        .iter()
        .any(|(l, t)| *l == Lang::En && t == "Welcome to Nordby Municipality."));
    assert!(
        prompts
            .iter()
            .any(|(_, t)| t == "Undskyld, det forstod jeg ikke."),
        "built-in prompts are included"
    );
    // Prompts with variables are not static.
    assert!(!prompts.iter().any(|(_, t)| t.contains('{')));
}

#[test]
fn called_numbers_route_to_municipality_and_entry_flow() {
    let (store, _) = FlowStore::load(flows_dir()).unwrap();
    let r = store.route("+45 70 10 10 10").unwrap();
    assert_eq!(
        (r.municipality.id.as_str(), r.entry.as_str()),
        ("nordby", "main")
    );
    let r = store.route("70202030").unwrap();
    assert_eq!(
        (r.municipality.id.as_str(), r.entry.as_str()),
        ("sydhavn", "jobcenter")
    );
    assert!(store.route("+4511111111").is_none());
}

#[test]
fn reload_serves_new_calls_while_old_calls_keep_their_version() {
    let root = temp_flows("reload");
    let (store, _) = FlowStore::load(&root).unwrap();
    let now = at("2026-11-23T10:00:00+01:00");
    let mut old_call = nordby(&store);
    assert!(said(&old_call.start(now))[0].starts_with("Velkommen til Nordby Kommune"));

    let main = root.join("nordby/main.toml");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        text.replace(
            "Velkommen til Nordby Kommune.",
            "Goddag og velkommen til Nordby Kommune.",
        ),
    )
    .unwrap();
    store.reload().expect("valid change reloads");

    let mut new_call = nordby(&store);
    assert!(said(&new_call.start(now))[0].starts_with("Goddag og velkommen"));
    // The call in progress finishes on its version.
    let a = old_call.handle(
        Event::Speech {
            text: Pii::new("hjemmehjælp".into()),
            confidence: 0.9,
            lang: None,
            identified: false,
        },
        now,
    );
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Transfer { department, .. } if department == "omsorg")));

    // A broken file is refused with its position; the last good version keeps serving.
    std::fs::write(&main, text.replace("next = \"menu\"", "next = \"menuu\"")).unwrap();
    let err = store.reload().unwrap_err();
    let StoreError::Invalid(diags) = err else {
        panic!("expected Invalid")
    };
    let d = diags
        .iter()
        .find(|d| d.message.contains("unknown step `menuu`"))
        .expect("dangling goto reported");
    assert!(d.file.ends_with("nordby/main.toml") && d.line > 0 && d.col > 0);
    assert_eq!(d.hint.as_deref(), Some("did you mean `menu`?"));
    let mut after = nordby(&store);
    assert!(said(&after.start(now))[0].starts_with("Goddag og velkommen"));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn an_announcement_goes_in_front_of_every_flow_after_reload() {
    let root = temp_flows("announce");
    let (store, _) = FlowStore::load(&root).unwrap();
    let now = at("2026-11-23T10:00:00+01:00");
    std::fs::write(
        root.join("sydhavn/announcement.toml"),
        "text.da = \"Vi har mange opkald om skattebrevet. Svaret står på sydhavn.dk.\"\n\
         text.en = \"We have many calls about the tax letter. The answer is on sydhavn.dk.\"\n\
         until = \"2026-11-30T00:00:00+01:00\"\n",
    )
    .unwrap();
    store.reload().unwrap();
    for number in ["+4570202020", "+4570202030"] {
        let mut call = call(&store, number);
        let s = said(&call.start(now));
        assert!(
            s[0].starts_with("Vi har mange opkald om skattebrevet"),
            "{number}: {s:?}"
        );
    }
    // Nordby is not affected, and the announcement expires by itself.
    let mut n = nordby(&store);
    assert!(said(&n.start(now))[0].starts_with("Velkommen til Nordby"));
    let mut later = call(&store, "+4570202020");
    assert!(
        said(&later.start(at("2026-12-01T10:00:00+01:00")))[0].starts_with("Velkommen til Sydhavn")
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_call_record_shows_where_a_caller_gave_up() {
    let (store, _) = FlowStore::load(flows_dir()).unwrap();
    let now = at("2026-11-23T10:00:00+01:00");
    let mut call = nordby(&store);
    call.start(now);
    call.handle(Event::Dtmf(ivr_core::Dtmf::D4), now);
    assert!(call.handle(Event::Hangup, now).is_empty());
    let rec = call.record();
    assert_eq!(rec.outcome, Some(ivr_flow::Outcome::Abandoned));
    assert_eq!(
        rec.steps.last().map(String::as_str),
        Some("jobcenter_cancel/ask_name")
    );
    assert_eq!(rec.intents, vec!["jobcenter_aflys".to_string()]);
}
