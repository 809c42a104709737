//! What the interpreter's integration tests share: the shipped flows and
//! small test deployments, calls to them, times, the events a caller makes
//! and what the flow says back.

#![allow(dead_code, unreachable_pub)] // a test helper module: each test file uses part of it
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use ivr_core::{Dtmf, Lang, Pii, Speech};
use ivr_flow::{Action, CallContext, Event, FlowStore, Interpreter};

/// The caller of every test call unless a test says otherwise.
pub const CALLER: &str = "+4522334455";
/// Nordby Kommune's number in the shipped flows.
pub const NORDBY: &str = "+4570101010";

/// A time given in RFC 3339.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Monday morning, 23 November 2026: every department is open.
pub fn now() -> DateTime<Utc> {
    at("2026-11-23T10:30:00+01:00")
}

/// The flow store loaded from `dir`, relative to this crate.
pub fn store(dir: &str) -> FlowStore {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    FlowStore::load(p).unwrap().0
}

/// The shipped flows (`flows/`).
pub fn shipped() -> FlowStore {
    store("../../flows")
}

/// The test caller's context, language not yet known.
pub fn ctx() -> CallContext {
    call_context(CALLER)
}

/// `caller`'s context, language not yet known.
pub fn call_context(caller: &str) -> CallContext {
    CallContext {
        caller: Pii::new(caller.into()),
        lang: None,
    }
}

/// A call from the test caller to `number`.
pub fn call(store: &FlowStore, number: &str) -> Interpreter {
    call_from(store, number, CALLER)
}

/// A call from `caller` to `number`.
pub fn call_from(store: &FlowStore, number: &str, caller: &str) -> Interpreter {
    Interpreter::new(store.route(number).unwrap(), call_context(caller))
}

/// A call from the test caller to Nordby Kommune.
pub fn nordby(store: &FlowStore) -> Interpreter {
    call(store, NORDBY)
}

/// The test deployment's `municipality.toml` (`tests/invalid/_base`).
pub fn base_municipality() -> String {
    std::fs::read_to_string(base_dir().join("municipality.toml")).unwrap()
}

fn base_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/invalid/_base")
}

/// A deployment of the test municipality in a fresh temporary folder
/// (named by `tag`), with `municipality` as its `municipality.toml` and
/// `flow` as its main flow; it must load without diagnostics. Returns the
/// store, the municipality's number and the folder (for the test to
/// remove).
pub fn deployment(tag: &str, municipality: &str, flow: &str) -> (FlowStore, String, PathBuf) {
    let root = std::env::temp_dir().join(format!("ivr-flow-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("testby")).unwrap();
    std::fs::copy(base_dir().join("tenants.toml"), root.join("tenants.toml")).unwrap();
    std::fs::write(root.join("testby/municipality.toml"), municipality).unwrap();
    std::fs::write(root.join("testby/main.toml"), flow).unwrap();
    let (store, diags) = FlowStore::load(root.clone()).unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    let number = store.snapshot().tenants[0].number.clone();
    (store, number, root)
}

/// [`deployment`] with the test municipality as it is.
pub fn with_flow(tag: &str, flow: &str) -> (FlowStore, String, PathBuf) {
    deployment(tag, &base_municipality(), flow)
}

/// Speech with a confidence of 0.9 in `lang`, `identified` if the
/// recogniser chose the language.
pub fn speech_in(s: &str, lang: Option<Lang>, identified: bool) -> Event {
    Event::Speech {
        text: Pii::new(s.to_string()),
        confidence: 0.9,
        lang,
        identified,
    }
}

/// Speech, language not said.
pub fn speech(s: &str) -> Event {
    speech_in(s, None, false)
}

/// Speech transcribed in Danish, the call's language.
pub fn heard(s: &str) -> Event {
    speech_in(s, Some(Lang::Da), false)
}

/// Speech whose language the recogniser identified as `lang`.
pub fn identified(s: &str, lang: Lang) -> Event {
    speech_in(s, Some(lang), true)
}

/// The keys `k` pressed one after another.
pub fn keys(call: &mut Interpreter, k: &str, now: DateTime<Utc>) -> Vec<Action> {
    let mut out = Vec::new();
    for c in k.chars() {
        out.extend(call.handle(Event::Dtmf(Dtmf::from_char(c).unwrap()), now));
    }
    out
}

/// What the actions say.
pub fn says(actions: &[Action]) -> Vec<Speech> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Say { speech, .. } => Some(speech.clone()),
            _ => None,
        })
        .collect()
}

/// What the actions say, as text.
pub fn said(actions: &[Action]) -> Vec<String> {
    says(actions)
        .iter()
        .map(|s| s.expose().to_string())
        .collect()
}

/// The department the actions transfer to.
pub fn transferred_to(actions: &[Action]) -> Option<&str> {
    actions.iter().find_map(|a| match a {
        Action::Transfer { department, .. } => Some(department.as_str()),
        _ => None,
    })
}

/// A deterministic toy sentence encoder (letters hashed into 32 dimensions)
/// that counts what it embeds. Its name keys the process's memory cache of
/// example vectors, so a new name finds nothing there; with a fingerprint
/// (its "model") it may use the disk cache, without one it never does.
#[derive(Debug)]
pub struct ToyEncoder {
    embedded: std::sync::atomic::AtomicUsize,
    name: String,
    fingerprint: Option<String>,
}

impl ToyEncoder {
    /// A toy encoder named `name`, with no fingerprint.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            embedded: std::sync::atomic::AtomicUsize::new(0),
            name: name.into(),
            fingerprint: None,
        }
    }

    /// The same encoder with a fingerprint (the disk cache's model key).
    pub fn with_fingerprint(mut self, fingerprint: &str) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    /// Texts embedded so far.
    pub fn embedded(&self) -> usize {
        self.embedded.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl ivr_flow::semantic::SentenceEncoder for ToyEncoder {
    fn embed(
        &self,
        text: &str,
        _: ivr_flow::semantic::Role,
    ) -> Result<Vec<f32>, ivr_flow::semantic::EncodeError> {
        self.embedded
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut v = vec![0.01f32; 32];
        for (i, c) in text.chars().enumerate() {
            v[(c as usize + i) % 32] += 1.0;
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        Ok(v.into_iter().map(|x| x / n).collect())
    }
    fn dim(&self) -> usize {
        32
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn fingerprint(&self) -> Option<String> {
        self.fingerprint.clone()
    }
}
