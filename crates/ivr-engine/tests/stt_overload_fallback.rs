//! A crisis peak on simulated time: the recogniser's queue is full when the
//! caller answers the menu. The caller hears at once which keys to press
//! (never silence), the call listens for keys only from then on (no more
//! utterances are sent to the recogniser), the keys answer the menu, and
//! the call record and the turn counters say which turns came by speech
//! and which by keys.

mod support;

use std::time::Duration;

use ivr_core::Dtmf;
use ivr_engine::call::core::CallEvent;
use support::{utterance, Options, Sim};

const CALLED: &str = "+4570000001";

const MENU: &str = r#"
start = "menu"

[step.menu]
do = "gather"
prompt.da = "Hvad ringer du om?"
hints.da = ["pas"]
timeout = 5
retries = 1
no_input = "bye"
no_match = "bye"

[[step.menu.intent]]
name = "pas"
keywords.da = ["pas"]
clarify.da = "bestille et pas"
dtmf = "1"
goto = "pas"

[[step.menu.intent]]
name = "affald"
keywords.da = ["affald", "skrald"]
dtmf = "2"
goto = "bye"

[step.pas]
do = "hangup"
text.da = "Du valgte pas. Farvel."
outcome = "resolved"

[step.bye]
do = "hangup"
text.da = "Farvel."
outcome = "failed"
"#;

fn flows() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::write(
        root.join("tenants.toml"),
        format!("[[tenant]]\nnumber = \"{CALLED}\"\nmunicipality = \"testby\"\nentry = \"main\"\n"),
    )
    .expect("tenants");
    let muni = root.join("testby");
    std::fs::create_dir(&muni).expect("folder");
    std::fs::write(
        muni.join("municipality.toml"),
        r#"name = "Testby Kommune"
languages = ["da"]
fallback = "omstilling"

[department.omstilling]
name = { da = "omstillingen" }
target = "sip:omstilling@pbx.example"
hours = { mon = "08:00-16:00", tue = "08:00-16:00", wed = "08:00-16:00", thu = "08:00-16:00", fri = "08:00-16:00" }
"#,
    )
    .expect("municipality");
    std::fs::write(muni.join("main.toml"), MENU).expect("flow");
    dir
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn caller_turns(sim: &Sim) -> Vec<&'static str> {
    sim.log
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CallEvent::CallerTurn(input) => Some(*input),
            _ => None,
        })
        .collect()
}

#[test]
fn a_full_recogniser_queue_moves_the_call_to_keys_with_a_notice_and_the_keys_answer() {
    let dir = flows();
    let mut sim = Sim::answered(dir.path(), CALLED, Options::default());
    sim.stt.push_overloaded();
    sim.expect_within(secs(10), "the menu is asked", |s| {
        s.has_said("Hvad ringer du om") && s.core.listening().is_some()
    });
    sim.run_for(secs(3));
    sim.say(&utterance());
    sim.expect_within(secs(5), "the keys are named", |s| {
        s.has_said("Tryk 1 for at bestille et pas, eller 2 for affald.")
    });
    let refused = sim.log.recognitions.len();
    assert_eq!(refused, 1, "one utterance was offered to the recogniser");
    assert!(sim.has_said("Talegenkendelsen har travlt lige nu"));
    let named = sim
        .said_at("Tryk 1 for at bestille")
        .expect("the notice was made");
    sim.expect_within(secs(2), "the notice is heard", |s| {
        s.audio_packets(named, s.now) > 10
    });
    let q = sim.core.listening().expect("still listening");
    assert!(!q.speech && q.dtmf, "keys only: {q:?}");
    // Speaking again sends nothing to the recogniser.
    sim.run_for(secs(8));
    sim.say(&utterance());
    sim.run_for(secs(2));
    assert_eq!(sim.log.recognitions.len(), refused);
    sim.press(Dtmf::D1);
    sim.expect_within(secs(2), "the key answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    sim.expect_within(secs(20), "the call ends", |s| s.done());
    let rec = sim.record();
    assert_eq!(rec.outcome, "resolved");
    assert_eq!(rec.intents, ["pas"]);
    let inputs: Vec<&str> = rec.turn_log.iter().map(|t| t.input).collect();
    assert_eq!(inputs, ["start", "stt_busy", "dtmf"]);
    assert!(
        !rec.turn_log[1].misunderstood,
        "a busy recogniser is not the caller's failure"
    );
    assert_eq!(caller_turns(&sim), ["stt_busy", "dtmf"]);
}

#[test]
fn a_caller_the_recogniser_serves_stays_on_speech() {
    let dir = flows();
    let mut sim = Sim::answered(dir.path(), CALLED, Options::default());
    sim.stt.push_text("pas", 0.9);
    sim.expect_within(secs(10), "the menu is asked", |s| {
        s.has_said("Hvad ringer du om")
    });
    sim.run_for(secs(3));
    sim.say(&utterance());
    sim.expect_within(secs(5), "speech answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    sim.expect_within(secs(20), "the call ends", |s| s.done());
    assert!(!sim.has_said("Tryk 1"));
    let inputs: Vec<&str> = sim.record().turn_log.iter().map(|t| t.input).collect();
    assert_eq!(inputs, ["start", "speech"]);
    assert_eq!(caller_turns(&sim), ["speech"]);
    // The greeting is reported once: answer to its first packet of audio
    // (what `ivr_greeting_delay_seconds` and the crisis bench count).
    let greetings: Vec<Duration> = sim
        .log
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            CallEvent::Greeting(d) => Some(*d),
            _ => None,
        })
        .collect();
    let first_audio = sim
        .log
        .rtp
        .iter()
        .find(|(_, audio)| *audio)
        .map(|(at, _)| *at);
    let first_audio = first_audio.expect("the greeting was heard") - sim.t0;
    assert_eq!(greetings.len(), 1, "{greetings:?}");
    assert!(
        greetings[0].abs_diff(first_audio) <= Duration::from_millis(20),
        "greeting reported at {:?}, first audio packet at {first_audio:?}",
        greetings[0]
    );
}

#[test]
fn a_recogniser_already_full_when_the_menu_is_asked_gets_the_menu_asked_with_its_keys() {
    let dir = flows();
    let opts = Options {
        speech_full: Some(std::sync::Arc::new(|| true)),
        ..Options::default()
    };
    let mut sim = Sim::answered(dir.path(), CALLED, opts);
    // The keys are named with the question itself: the caller is not first
    // invited to speak, only to be refused.
    sim.expect_within(secs(10), "the menu is asked with its keys", |s| {
        s.has_said("Hvad ringer du om")
            && s.has_said("Tryk 1 for at bestille et pas, eller 2 for affald.")
    });
    let q = sim.core.listening().expect("listening");
    assert!(!q.speech && q.dtmf, "keys only from the start: {q:?}");
    // Speaking anyway sends nothing to the full recogniser; the key answers.
    sim.say(&utterance());
    sim.press(Dtmf::D1);
    sim.expect_within(secs(2), "the key answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    sim.expect_within(secs(20), "the call ends", |s| s.done());
    assert!(
        sim.log.recognitions.is_empty(),
        "nothing sent to the full recogniser"
    );
    let inputs: Vec<&str> = sim.record().turn_log.iter().map(|t| t.input).collect();
    assert_eq!(inputs, ["start", "dtmf"]);
    assert_eq!(caller_turns(&sim), ["dtmf"]);
}
