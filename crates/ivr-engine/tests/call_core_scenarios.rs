//! What a caller experiences, on simulated time: the call core with a fake
//! RTP caller, scripted speech in and out, small test flows. No sockets, no
//! models, no sleeping.

mod support;

use std::time::Duration;

use ivr_core::{Dtmf, Pcm};
use ivr_engine::call::core::{CallEvent, CallTimings, Input, SipCommand, SipEvent};
use ivr_engine::metrics::EagerOutcome;
use ivr_flow::{Answers, Request, Response};
use ivr_media::endpointing::EndpointingConfig;
use ivr_media::{
    Codec, MediaParams, MediaSession, Output as MediaOutput, PacketKind, SessionConfig,
};
use support::{cut, offer, utterance, Options, Sim};

const CALLED: &str = "+4570000001";

/// A deployment with one municipality, `testby`, whose entry flow is `main`.
fn flows(main: &str) -> tempfile::TempDir {
    flows_in(main, r#"["da"]"#)
}

/// As [`flows`], the municipality speaking `languages` (a TOML list).
fn flows_in(main: &str, languages: &str) -> tempfile::TempDir {
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
        format!(
            r#"name = "Testby Kommune"
languages = {languages}
fallback = "omstilling"

[department.omstilling]
name = {{ da = "omstillingen", en = "the switchboard" }}
target = "sip:omstilling@pbx.example"
mail = "kontakt@testby.example"
hours = {{ mon = "08:00-16:00", tue = "08:00-16:00", wed = "08:00-16:00", thu = "08:00-16:00", fri = "08:00-16:00" }}
"#
        ),
    )
    .expect("municipality");
    std::fs::write(muni.join("main.toml"), main).expect("flow");
    dir
}

/// Welcome, then a menu: 1 (or "pas") ends the call, 2 sends a mail.
const MENU: &str = r#"
start = "welcome"

[step.welcome]
do = "say"
text.da = "Velkommen til Testby Kommune. Dette er en lang velkomst, som tager flere sekunder at sige færdig."
next = "menu"

[step.menu]
do = "gather"
prompt.da = "Sig pas eller tryk et for pas. Tryk to for at sende en besked til omstillingen."
hints.da = ["pas"]
timeout = 5
retries = 1
no_input = "to_human"
no_match = "to_human"

[[step.menu.intent]]
name = "pas"
keywords.da = ["pas"]
dtmf = "1"
goto = "pas"

[[step.menu.intent]]
name = "besked"
keywords.da = ["besked"]
dtmf = "2"
goto = "mail"

[step.pas]
do = "hangup"
text.da = "Du valgte pas. Farvel."
outcome = "resolved"

[step.mail]
do = "mail"
to = ["omstilling"]
subject = "Besked"
body = "Opkald fra {caller}"
next = "sent"
on_error = "to_human"

[step.sent]
do = "hangup"
text.da = "Beskeden er sendt. Farvel."
outcome = "mail_sent"

[step.to_human]
do = "transfer"
department = "omstilling"
if_failed = "no_answer"

[step.no_answer]
do = "hangup"
text.da = "Omstillingen svarer ikke lige nu. Ring igen senere."
outcome = "failed"
"#;

fn menu_call(opts: Options) -> (tempfile::TempDir, Sim) {
    let dir = flows(MENU);
    let sim = Sim::answered(dir.path(), CALLED, opts);
    (dir, sim)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A call to the municipality of [`TWO_LANGUAGES`], speaking Danish and
/// English.
fn two_language_call() -> (tempfile::TempDir, Sim) {
    let dir = flows_in(TWO_LANGUAGES, r#"["da", "en"]"#);
    let sim = Sim::answered(dir.path(), CALLED, Options::default());
    (dir, sim)
}

/// The question has been asked and the call waits for the caller to speak.
fn waiting(s: &Sim) -> bool {
    matches!(
        s.core.listen_phase(),
        Some(ivr_engine::call::listen::Phase::Waiting { .. })
    )
}

/// The language choice of every recognition so far, as `Debug` text.
fn choices(sim: &Sim) -> Vec<String> {
    sim.log
        .choices
        .iter()
        .map(|(_, c)| format!("{c:?}"))
        .collect()
}

#[test]
fn a_key_pressed_during_a_prompt_answers_the_question_that_follows_it() {
    let (_dir, mut sim) = menu_call(Options::default());
    sim.expect_within(secs(2), "the welcome plays", |s| {
        s.audio_packets(s.t0, s.now + Duration::from_millis(1)) > 10
    });
    assert!(
        sim.has_said("Tryk to"),
        "the question's prompt is made (and queued) while the welcome plays"
    );
    let pressed = sim.now;
    sim.press(Dtmf::D1);
    sim.expect_within(secs(2), "the key answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    let answered = sim.said_at("Du valgte pas").expect("answered");
    assert!(
        answered - pressed < Duration::from_millis(200),
        "answered {} ms after the key",
        (answered - pressed).as_millis()
    );
    assert_eq!(
        sim.audio_packets(
            answered + Duration::from_millis(1),
            answered + sim.world.tts_delay
        ),
        0,
        "the welcome and the question's prompt stop at the key"
    );
    sim.run_for(secs(10));
    let tts = ivr_tts::ScriptedTts::new(8_000);
    let goodbye: usize = ivr_tts::split_sentences("Du valgte pas. Farvel.")
        .into_iter()
        .map(|s| tts.samples_for(s) / 160)
        .sum();
    let heard = sim.audio_packets(answered, answered + secs(10));
    assert!(
        heard.abs_diff(goodbye) <= 2,
        "after the key only the answer plays ({heard} packets, the answer is {goodbye})"
    );
    sim.run_for(secs(10));
    let rec = sim.record();
    assert_eq!(rec.intents, ["pas"]);
    assert_eq!(rec.outcome, "resolved");
    assert_eq!(rec.turns, 1);
    assert!(sim.hung_up());
}

#[test]
fn barge_in_stops_the_prompt_within_one_packet_and_the_speech_answers() {
    let (_dir, mut sim) = menu_call(Options::default());
    // Slow synthesis: the prompt's second sentence is still being made when
    // the caller speaks; its audio, when it comes, is stale and dropped.
    sim.world.tts_delay = Duration::from_millis(2500);
    sim.stt.push_text("pas", 0.9);
    // Into the question's prompt (after the welcome).
    sim.expect_within(secs(30), "the menu prompt plays", |s| {
        s.said_at("Tryk to")
            .is_some_and(|at| s.now > at + Duration::from_millis(3000))
    });
    let asked = sim.said_at("Tryk to").expect("asked");
    assert!(sim.audio_packets(sim.now - Duration::from_millis(200), sim.now) >= 9);
    sim.say(&utterance());
    sim.expect_within(secs(3), "speech barges in", |s| s.barge_in_at().is_some());
    let barge = sim.barge_in_at().expect("barge-in");
    assert!(
        barge < asked + secs(5),
        "the second sentence is still being made at the barge-in"
    );
    let last = sim.last_audio().expect("the prompt played");
    assert!(
        last <= barge + Duration::from_millis(20),
        "last audio {} ms after the barge-in",
        (last - barge).as_millis()
    );
    sim.expect_within(secs(8), "the utterance answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    let answered = sim.said_at("Du valgte pas").expect("answered");
    assert_eq!(
        sim.audio_packets(barge + Duration::from_millis(20), answered + secs(1)),
        0,
        "nothing of the prompt after the barge-in, also not its late second sentence"
    );
    assert_eq!(
        sim.log.recognitions.len(),
        1,
        "one recognition for one utterance"
    );
}

fn slow_mail(sim: &mut Sim, delay: Duration) {
    sim.world.invoke = Box::new(move |r| {
        assert!(matches!(r, Request::SendMail { .. }), "{r:?}");
        (delay, Response::Ok)
    });
}

#[test]
fn a_slow_integration_plays_the_filler_after_filler_after_ms_and_not_before() {
    let timings = CallTimings {
        filler_after: Duration::from_millis(1500),
        ..CallTimings::default()
    };
    let (_dir, mut sim) = menu_call(Options {
        timings,
        ..Options::default()
    });
    slow_mail(&mut sim, secs(4));
    sim.run_for(Duration::from_millis(500));
    sim.sip(SipEvent::Dtmf(Dtmf::D2));
    sim.expect_within(secs(1), "the mail is sent", |s| !s.log.invoked.is_empty());
    let invoked = sim.log.invoked[0].0;
    sim.expect_within(secs(10), "the call ends", |s| s.done());
    let filler = sim
        .said_at("Et øjeblik")
        .expect("a filler for a 4 s integration");
    assert_eq!(
        filler - invoked,
        Duration::from_millis(1500),
        "the filler starts exactly filler_after_ms into the wait"
    );
    assert!(
        sim.audio_packets(filler, invoked + secs(4)) > 10,
        "the caller hears it while waiting"
    );
    let sent = sim.said_at("Beskeden er sendt").expect("the answer");
    assert_eq!(
        sent - invoked,
        secs(4),
        "the answer follows the integration"
    );
    assert_eq!(sim.record().outcome, "mail_sent");

    // A quick integration: no filler.
    let (_dir, mut quick) = menu_call(Options {
        timings,
        ..Options::default()
    });
    slow_mail(&mut quick, Duration::from_millis(1400));
    quick.run_for(Duration::from_millis(500));
    quick.sip(SipEvent::Dtmf(Dtmf::D2));
    quick.expect_within(secs(10), "the call ends", |s| s.done());
    assert!(
        !quick.has_said("Et øjeblik"),
        "no filler before filler_after_ms: {:?}",
        quick.said()
    );
}

#[test]
fn a_silent_caller_hears_the_question_again_then_is_put_through_to_a_human() {
    let (_dir, mut sim) = menu_call(Options::default());
    sim.world.refer = Box::new(|| {
        Some((
            secs(1),
            SipEvent::TransferResult {
                success: true,
                status: Some(200),
            },
        ))
    });
    sim.expect_within(secs(60), "the caller is asked again", |s| {
        s.has_said("hørte ikke noget")
    });
    let asked_again = sim.said_at("hørte ikke noget").expect("said");
    let prompt_end = sim
        .log
        .rtp
        .iter()
        .rev()
        .find(|(at, audio)| *audio && *at < asked_again)
        .map(|(at, _)| *at)
        .expect("the prompt played");
    let silence = asked_again - prompt_end;
    assert!(
        (secs(5)..secs(5) + Duration::from_millis(40)).contains(&silence),
        "no input counted 5 s after the prompt ended, not from its start: {} ms",
        silence.as_millis()
    );
    sim.expect_within(secs(60), "put through", |s| {
        s.log
            .sip
            .iter()
            .any(|(_, c)| matches!(c, SipCommand::Refer { department, .. } if department == "omstilling"))
    });
    sim.expect_within(secs(5), "the call ends", |s| s.done());
    assert_eq!(sim.record().outcome, "transferred");
    assert_eq!(sim.record().turns, 0);
}

#[test]
fn the_longest_call_is_hung_up_when_max_call_is_reached() {
    let flow = MENU.replace("timeout = 5", "timeout = 60");
    let dir = flows(&flow);
    let mut sim = Sim::answered(
        dir.path(),
        CALLED,
        Options {
            timings: CallTimings {
                max_call: secs(20),
                ..CallTimings::default()
            },
            ..Options::default()
        },
    );
    sim.expect_within(secs(30), "the call ends", |s| s.done());
    let (bye_at, _) = sim
        .log
        .sip
        .iter()
        .find(|(_, c)| matches!(c, SipCommand::Hangup))
        .expect("BYE");
    assert_eq!(*bye_at - sim.t0, secs(20));
    assert_eq!(sim.record().outcome, "failed");
    assert_eq!(sim.record().talk_ms, 20_000);
}

#[test]
fn a_call_never_acknowledged_is_given_up_after_the_ack_wait() {
    let dir = flows(MENU);
    let mut sim = Sim::ringing(
        dir.path(),
        CALLED,
        Options {
            timings: CallTimings {
                ack_wait: secs(40),
                ..CallTimings::default()
            },
            ..Options::default()
        },
    );
    sim.expect_within(secs(41), "the call is given up", |s| s.done());
    assert_eq!(sim.now - sim.t0, secs(40));
    assert!(sim.said().is_empty(), "nothing was said");
    assert!(!sim.hung_up(), "no BYE for a dialog never confirmed");
    assert_eq!(sim.record().outcome, "abandoned");
}

fn reinvite_answer(sim: &Sim) -> String {
    match sim.log.sip.last() {
        Some((_, SipCommand::AnswerReInvite(body))) => String::from_utf8_lossy(body).into_owned(),
        other => panic!("expected a re-INVITE answer, got {other:?}"),
    }
}

#[test]
fn a_caller_who_puts_the_call_on_hold_and_back_finds_the_question_still_waiting() {
    let (_dir, mut sim) = menu_call(Options {
        media_timeout: secs(5),
        ..Options::default()
    });
    sim.expect_within(secs(20), "the menu waits for an answer", |s| {
        s.said_at("Tryk to").is_some_and(|at| {
            s.last_audio()
                .is_some_and(|l| l > at && s.now > l + secs(1))
        })
    });
    // Hold: sendonly, then inactive with no RTP at all for longer than the
    // media timeout and the question's timeout.
    sim.sip(SipEvent::ReInvite(Some(offer(2, "sendonly"))));
    assert!(reinvite_answer(&sim).contains("a=recvonly"));
    sim.run_for(secs(3));
    sim.sip(SipEvent::ReInvite(Some(offer(3, "inactive"))));
    assert!(reinvite_answer(&sim).contains("a=inactive"));
    sim.caller_muted = true;
    let held = sim.now;
    sim.run_for(secs(12));
    assert!(!sim.done(), "a held call is not a dead caller");
    assert!(
        !sim.has_said("hørte ikke noget"),
        "no no-input while on hold: {:?}",
        sim.said()
    );
    let sent_while_held = sim.log.rtp.iter().filter(|(at, _)| *at > held).count();
    assert_eq!(sent_while_held, 0, "nothing is sent while on hold");
    // Back: the question waits its whole timeout again, then asks again.
    sim.caller_muted = false;
    sim.sip(SipEvent::ReInvite(Some(offer(4, "sendrecv"))));
    assert!(reinvite_answer(&sim).contains("a=sendrecv"));
    let resumed = sim.now;
    sim.expect_within(secs(8), "asked again after the timeout", |s| {
        s.has_said("hørte ikke noget")
    });
    let again = sim.said_at("hørte ikke noget").expect("said");
    assert_eq!(again - resumed, secs(5), "the full timeout after resuming");
    sim.sip(SipEvent::Dtmf(Dtmf::D1));
    sim.expect_within(secs(10), "the call goes on", |s| {
        s.has_said("Du valgte pas")
    });
}

/// Issue 14, defect 1: a caller who keys by SIP INFO sends no RTP; a
/// stranger who finds the call's port (from the caller's host on another port,
/// or from anywhere) and sends RFC 4733 keys does not answer the caller's
/// menu. Its packets are counted as dropped; the caller's own key still works.
#[test]
fn a_strangers_rtp_keys_do_not_answer_the_menu_of_a_caller_who_keys_by_sip_info() {
    let (_dir, mut sim) = menu_call(Options::default());
    sim.caller_muted = true;
    sim.expect_within(secs(20), "the menu is asked", |s| s.has_said("Tryk to"));
    let strangers: [std::net::SocketAddr; 2] = [
        "127.0.0.1:30002".parse().expect("address"),
        "203.0.113.66:30000".parse().expect("address"),
    ];
    for from in strangers {
        let mut stranger = MediaSession::new(
            MediaParams {
                codec: Codec::Pcma,
                payload_type: 8,
                telephone_event_pt: Some(101),
                ptime: Duration::from_millis(20),
                remote_rtp: support::ENGINE_RTP,
                remote_rtcp: None,
            },
            SessionConfig {
                ssrc: 0x0bad,
                ..SessionConfig::default()
            },
            sim.now,
        )
        .expect("stranger media");
        stranger.send_dtmf(Dtmf::D1).expect("key");
        stranger.send_dtmf(Dtmf::D2).expect("key");
        for _ in 0..50 {
            let now = sim.now;
            while let MediaOutput::Transmit(t) = stranger.poll_output(now) {
                let bytes = t.bytes.to_vec();
                let input = match t.kind {
                    PacketKind::Rtp => Input::Rtp {
                        bytes: &bytes,
                        from,
                    },
                    PacketKind::Rtcp => Input::Rtcp {
                        bytes: &bytes,
                        from,
                    },
                };
                sim.core.handle_input(input, now);
            }
            sim.run_for(Duration::from_millis(20));
        }
    }
    assert!(!sim.has_said("Du valgte pas"), "{:?}", sim.said());
    assert!(sim.log.invoked.is_empty(), "no mail on a stranger's key 2");
    let dropped = sim
        .log
        .events
        .iter()
        .filter(|(_, e)| matches!(e, CallEvent::ForeignMediaDropped))
        .count();
    assert!(
        dropped >= 2 * 8,
        "each stranger's key packets are counted: {dropped}"
    );
    sim.sip(SipEvent::Dtmf(Dtmf::D1));
    sim.expect_within(secs(2), "the caller's own key answers", |s| {
        s.has_said("Du valgte pas")
    });
    sim.run_for(secs(10));
    assert_eq!(sim.record().intents, ["pas"]);
}

#[test]
fn an_eager_transcript_is_dropped_when_the_caller_speaks_on() {
    let endpointing = EndpointingConfig {
        end_silence: Duration::from_millis(700),
        min_end_silence: Duration::from_millis(700),
        eager_silence: Duration::from_millis(200),
        ..EndpointingConfig::default()
    };
    let (_dir, mut sim) = menu_call(Options {
        endpointing,
        ..Options::default()
    });
    // The speculation hears the first half; the confirmed utterance the whole.
    sim.stt.push_text("jeg skal have", 0.9);
    sim.stt.push_text("jeg skal have et nyt pas", 0.9);
    sim.expect_within(secs(15), "the menu prompt plays", |s| s.has_said("Tryk to"));
    let u = utterance();
    let mut samples = cut(&u, 0.7, 1.9);
    samples.extend(std::iter::repeat_n(0, 3_200)); // 400 ms pause
    samples.extend(cut(&u, 1.9, 3.2));
    samples.extend(std::iter::repeat_n(0, 8_000));
    sim.say(&Pcm::new(8_000, samples));
    sim.expect_within(secs(10), "the utterance answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    let eager: Vec<bool> = sim.log.recognitions.iter().map(|(_, e)| *e).collect();
    assert_eq!(
        eager,
        [true, true],
        "a speculation at the pause, another at the end of the utterance"
    );
    let count = |o: EagerOutcome| {
        sim.log
            .events
            .iter()
            .filter(|(_, e)| matches!(e, CallEvent::Eager(x) if *x == o))
            .count()
    };
    assert_eq!(
        count(EagerOutcome::Discarded),
        1,
        "the pause's, when speech resumed"
    );
    assert_eq!(count(EagerOutcome::Used), 1, "the end's answers the turn");
    assert_eq!(sim.core.flow_record().intents, ["pas"]);
    // The recogniser was told to stop the pause's speculation (it would
    // otherwise keep its worker to the end of a text nobody reads), and
    // only that one.
    let withdrawn: Vec<bool> = sim
        .log
        .speculations
        .iter()
        .map(|(_, c)| c.is_cancelled())
        .collect();
    assert_eq!(withdrawn, [true, false]);
}

#[test]
fn speech_outside_a_question_is_not_recognised() {
    let flow = r#"
start = "info"

[step.info]
do = "say"
text.da = "Borgerservice har åbent fra otte til fire. Tak for opkaldet."
next = "bye"

[step.bye]
do = "hangup"
outcome = "resolved"
"#;
    let dir = flows(flow);
    let mut sim = Sim::answered(dir.path(), CALLED, Options::default());
    sim.run_for(Duration::from_millis(300));
    sim.say(&utterance());
    sim.expect_within(secs(20), "the call ends", |s| s.done());
    assert!(
        sim.log.recognitions.is_empty(),
        "nobody asked the caller anything"
    );
    assert_eq!(sim.record().outcome, "resolved");
}

/// A name by speech only, then a choice by keys.
const NAME_THEN_KEYS: &str = r#"
start = "ask_name"

[step.ask_name]
do = "gather"
input = ["speech"]
expect = "text"
save_as = "name"
prompt.da = "Hvad er dit fulde navn?"
next = "choose"

[step.choose]
do = "gather"
prompt.da = "Tak. Tryk et for at bekræfte, eller tryk to for at aflyse din tid i jobcentret."
timeout = 5
retries = 1
no_input = "bye"
no_match = "bye"

[[step.choose.intent]]
name = "confirm"
keywords.da = ["bekræfte"]
dtmf = "1"
goto = "confirmed"

[[step.choose.intent]]
name = "cancel"
keywords.da = ["aflyse"]
dtmf = "2"
goto = "cancelled"

[step.confirmed]
do = "hangup"
text.da = "Du valgte at bekræfte. Farvel."
outcome = "resolved"

[step.cancelled]
do = "hangup"
text.da = "Du valgte at aflyse. Farvel."
outcome = "resolved"

[step.bye]
do = "hangup"
text.da = "Farvel."
outcome = "failed"
"#;

#[test]
fn keys_typed_while_a_spoken_answer_is_recognised_answer_the_next_question_that_takes_keys() {
    let dir = flows(NAME_THEN_KEYS);
    let mut sim = Sim::answered(dir.path(), CALLED, Options::default());
    // A slow recogniser: the caller types on before the name is heard.
    sim.world.stt_delay = secs(2);
    sim.stt.push_text("Karen Hansen", 0.9);
    sim.expect_within(secs(5), "the name is asked", waiting);
    sim.say(&utterance());
    sim.expect_within(secs(5), "the name is being recognised", |s| {
        s.log.recognitions.iter().any(|(_, eager)| !eager)
    });
    let typed = sim.now;
    sim.press(Dtmf::D2);
    sim.expect_within(secs(8), "the typed key answers the choice", |s| {
        s.has_said("Du valgte at aflyse")
    });
    let answered = sim.said_at("Du valgte at aflyse").expect("answered");
    let asked = sim.said_at("Tryk et").expect("the choice was made");
    assert!(
        answered < asked + secs(1),
        "answered at once, not after the prompt and a timeout: asked {} ms, answered {} ms after the key",
        (asked - typed).as_millis(),
        (answered - typed).as_millis()
    );
    sim.expect_within(secs(10), "the call ends", |s| s.done());
    assert_eq!(sim.record().outcome, "resolved");
    assert!(
        !sim.has_said("Du valgte at bekræfte"),
        "one answer: {:?}",
        sim.said()
    );
}

#[test]
fn a_key_typed_ahead_long_before_the_question_is_not_taken_as_its_answer() {
    let dir = flows(NAME_THEN_KEYS);
    let mut sim = Sim::answered(dir.path(), CALLED, Options::default());
    // The name takes 20 s to recognise: a key pressed at its start is stale.
    sim.world.stt_delay = secs(20);
    sim.stt.push_text("Karen Hansen", 0.9);
    sim.expect_within(secs(5), "the name is asked", waiting);
    sim.say(&utterance());
    sim.expect_within(secs(5), "the name is being recognised", |s| {
        s.log.recognitions.iter().any(|(_, eager)| !eager)
    });
    sim.press(Dtmf::D2);
    sim.expect_within(secs(60), "the call ends", |s| s.done());
    assert!(
        !sim.has_said("Du valgte at aflyse"),
        "a key pressed 20 s before the question is no answer: {:?}",
        sim.said()
    );
    assert_eq!(sim.record().outcome, "failed", "no answer to the choice");
}

fn refer_at(sim: &Sim) -> Option<std::time::Instant> {
    sim.log
        .sip
        .iter()
        .find(|(_, c)| matches!(c, SipCommand::Refer { .. }))
        .map(|(at, _)| *at)
}

#[test]
fn a_refused_transfer_comes_back_to_the_flow_which_tells_the_caller() {
    let (_dir, mut sim) = menu_call(Options::default());
    sim.world.refer = Box::new(|| {
        Some((
            secs(2),
            SipEvent::TransferResult {
                success: false,
                status: Some(486),
            },
        ))
    });
    sim.run_for(Duration::from_millis(500));
    sim.sip(SipEvent::Dtmf(Dtmf::D9)); // not a choice: twice, then a human
    sim.expect_within(secs(20), "asked again", |s| s.has_said("forstod jeg ikke"));
    sim.sip(SipEvent::Dtmf(Dtmf::D9));
    sim.expect_within(secs(30), "put through", |s| refer_at(s).is_some());
    let refer = refer_at(&sim).expect("REFER");
    sim.expect_within(secs(30), "the call ends", |s| s.done());
    let told = sim
        .said_at("svarer ikke")
        .expect("the flow's if_failed step");
    assert_eq!(told - refer, secs(2), "right when the refusal came");
    assert_eq!(
        sim.log
            .sip
            .iter()
            .filter(|(_, c)| matches!(c, SipCommand::Hangup))
            .count(),
        1,
        "one BYE, after the apology"
    );
    assert!(
        sim.last_audio().is_some_and(|l| l > told),
        "the caller heard it"
    );
    assert_eq!(sim.record().outcome, "failed");
    assert_eq!(
        sim.record().steps.last().map(String::as_str),
        Some("main/no_answer")
    );
}

#[test]
fn a_transfer_without_an_outcome_times_out_back_to_the_flow() {
    let dir = flows(MENU);
    let mut sim = Sim::answered(
        dir.path(),
        CALLED,
        Options {
            timings: CallTimings {
                transfer_timeout: secs(10),
                ..CallTimings::default()
            },
            ..Options::default()
        },
    );
    sim.world.refer = Box::new(|| None);
    sim.expect_within(secs(60), "put through after silence", |s| {
        refer_at(s).is_some()
    });
    let refer = refer_at(&sim).expect("REFER");
    sim.expect_within(secs(30), "the call ends", |s| s.done());
    let told = sim
        .said_at("svarer ikke")
        .expect("the flow's if_failed step");
    assert_eq!(told - refer, secs(10), "after transfer_timeout");
    assert_eq!(sim.record().outcome, "failed");
}

const TWO_LANGUAGES: &str = r#"
start = "menu"

[step.menu]
do = "gather"
prompt.da = "Sig pas eller kørekort."
prompt.en = "Say passport or driving licence."
timeout = 5
no_match = "to_human"
no_input = "to_human"

[[step.menu.intent]]
name = "pas"
keywords.da = ["pas"]
keywords.en = ["passport"]
goto = "sure"

[step.sure]
do = "gather"
expect = "yesno"
prompt.da = "Vil du bestille en tid til pas?"
prompt.en = "Do you want to book a passport appointment?"
no_match = "to_human"
no_input = "to_human"

[[step.sure.intent]]
name = "yes"
goto = "bye"

[[step.sure.intent]]
name = "no"
goto = "to_human"

[step.bye]
do = "hangup"
text.da = "Godt. Farvel."
text.en = "Good. Goodbye."
outcome = "resolved"

[step.to_human]
do = "transfer"
department = "omstilling"
"#;

#[test]
fn a_caller_not_understood_is_heard_again_with_the_language_identified() {
    let (_dir, mut sim) = two_language_call();
    // First spoken turn: identified among the municipality's languages.
    sim.expect_within(secs(20), "the menu waits", waiting);
    sim.stt.push_text("pas", 0.9);
    sim.say(&utterance());
    sim.expect_within(secs(10), "the next question", |s| {
        s.has_said("Vil du bestille")
    });
    // Second turn, in Danish, not understood: the same audio again, identified.
    sim.expect_within(secs(20), "the question waits", waiting);
    sim.stt.push_text("hmm øh", 0.9);
    sim.stt.push_text("ja", 0.9);
    sim.say(&utterance());
    sim.expect_within(secs(10), "understood the second time", |s| {
        s.has_said("Godt. Farvel.")
    });
    assert_eq!(
        choices(&sim),
        [
            "Identify { current: Da, among: [Da, En] }",
            "Fixed(Da)",
            "Identify { current: Da, among: [Da, En] }"
        ],
        "identify on the first turn; fixed, then again identifying, on the second"
    );
    let utterances = sim
        .log
        .recognitions
        .iter()
        .filter(|(_, eager)| !eager)
        .count();
    assert_eq!(utterances, 3, "three recognitions of two utterances");
    assert!(
        !sim.has_said("forstod jeg ikke"),
        "no failure counted before the second hearing: {:?}",
        sim.said()
    );
    sim.expect_within(secs(10), "the call ends", |s| s.done());
    assert_eq!(sim.record().outcome, "resolved");
}

#[test]
fn a_caller_who_hangs_up_mid_question_is_recorded_as_abandoned_without_a_bye() {
    let (_dir, mut sim) = menu_call(Options::default());
    sim.expect_within(secs(20), "the menu is asked", |s| {
        s.core.listening().is_some()
    });
    sim.run_for(secs(2));
    sim.sip(SipEvent::Ended(ivr_sip::EndReason::RemoteBye));
    sim.run_for(Duration::from_millis(100));
    assert!(sim.done());
    assert!(!sim.hung_up(), "the caller's BYE ended the dialog");
    assert_eq!(sim.record().outcome, "abandoned");
}

#[test]
fn a_caller_whose_audio_stops_is_hung_up_after_the_media_timeout() {
    let (_dir, mut sim) = menu_call(Options {
        media_timeout: secs(8),
        ..Options::default()
    });
    sim.run_for(secs(1));
    sim.caller_muted = true;
    let gone = sim.now;
    sim.expect_within(secs(30), "the call ends", |s| s.done());
    let (bye, _) = sim
        .log
        .sip
        .iter()
        .find(|(_, c)| matches!(c, SipCommand::Hangup))
        .expect("BYE");
    let after = *bye - gone;
    assert!(
        (secs(8)..secs(9)).contains(&after),
        "BYE {} ms after the last RTP",
        after.as_millis()
    );
    assert_eq!(sim.record().outcome, "abandoned");
}

#[test]
fn a_caller_who_answers_the_first_question_in_english_is_answered_in_english() {
    let (_dir, mut sim) = two_language_call();
    sim.expect_within(secs(20), "the menu waits", waiting);
    sim.stt
        .push_text_in("passport please", 0.9, ivr_core::Lang::En);
    sim.say(&utterance());
    sim.expect_within(secs(10), "the next question, in English", |s| {
        s.has_said("Do you want to book")
    });
    sim.expect_within(secs(20), "the question waits", waiting);
    sim.stt.push_text("yes", 0.9);
    sim.say(&utterance());
    sim.expect_within(secs(10), "understood", |s| s.has_said("Goodbye"));
    assert_eq!(
        choices(&sim),
        ["Identify { current: Da, among: [Da, En] }", "Fixed(En)"],
        "identified on the first turn, then recognised in English"
    );
    sim.expect_within(secs(10), "the call ends", |s| s.done());
    assert_eq!(sim.record().lang, "en");
}

#[test]
fn a_question_without_barge_in_plays_its_prompt_to_the_end_and_then_listens() {
    let flow = MENU.replace(
        "timeout = 5\nretries = 1",
        "timeout = 5\nretries = 1\nbarge_in = false",
    );
    let dir = flows(&flow);
    let mut sim = Sim::answered(dir.path(), CALLED, Options::default());
    // The welcome (5.7 s of scripted audio) plays, then the menu prompt (4.7 s).
    sim.expect_within(secs(15), "the menu prompt plays", |s| {
        s.said_at("Tryk to")
            .is_some_and(|at| s.now > at + Duration::from_millis(6500))
    });
    sim.say(&utterance());
    sim.run_for(secs(4));
    assert!(sim.barge_in_at().is_none(), "the prompt is not cut");
    assert!(
        sim.log.recognitions.is_empty(),
        "speech during the prompt does not answer"
    );
    sim.expect_within(secs(10), "the prompt has played", |s| {
        s.last_audio()
            .is_some_and(|l| s.now > l + Duration::from_millis(300))
    });
    sim.stt.push_text("pas", 0.9);
    sim.say(&utterance());
    sim.expect_within(secs(10), "speech after the prompt answers", |s| {
        s.has_said("Du valgte pas")
    });
}

#[test]
fn a_danish_first_answer_misidentified_as_english_is_heard_again_in_danish() {
    let (_dir, mut sim) = two_language_call();
    sim.expect_within(secs(20), "the menu waits", waiting);
    // Identified as English, but nothing an English caller would say here.
    sim.stt.push_text_in("bass", 0.9, ivr_core::Lang::En);
    sim.stt.push_text("pas", 0.9);
    sim.say(&utterance());
    sim.expect_within(secs(10), "the next question, in Danish", |s| {
        s.has_said("Vil du bestille")
    });
    assert_eq!(
        choices(&sim),
        ["Identify { current: Da, among: [Da, En] }", "Fixed(Da)"],
        "the same audio again, in the call's language"
    );
    assert!(!sim.has_said("Do you want"), "no switch to English");
}

/// Speaks the menu answer and returns when recognition was asked, counted
/// from the end of the speech, and the turn's timing record.
fn answer_with_turn_model(verdict: Option<f32>) -> (Duration, Sim) {
    let endpointing = EndpointingConfig {
        turn_silence: Duration::from_millis(200),
        end_silence: Duration::from_millis(800),
        max_end_silence: Duration::from_millis(800),
        ..EndpointingConfig::default()
    };
    let (dir, mut sim) = menu_call(Options {
        endpointing,
        smart_turn: Some(0.5),
        ..Options::default()
    });
    sim.world.turn_verdict = Box::new(move |_| (Duration::from_millis(40), verdict));
    sim.stt.push_text("jeg skal have et nyt pas", 0.9);
    sim.expect_within(secs(15), "the menu prompt plays", |s| s.has_said("Tryk to"));
    sim.run_until(sim.now + secs(10), waiting);
    let u = utterance();
    // Speech from 0.8 s to 3.05 s of the file: it ends 2.25 s after this cut starts.
    let mut samples = cut(&u, 0.8, 3.05);
    samples.extend(std::iter::repeat_n(0, 16_000));
    let speech_end = sim.now + Duration::from_millis(2250);
    sim.say(&Pcm::new(8_000, samples));
    sim.expect_within(secs(10), "the utterance answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    // The turn's timing is published with the reply's first packet.
    sim.run_for(secs(2));
    drop(dir);
    let asked = sim.log.recognitions.first().expect("recognised").0;
    (asked.saturating_duration_since(speech_end), sim)
}

#[test]
fn the_end_of_turn_model_ends_a_finished_sentence_at_the_short_silence() {
    let (finished, sim) = answer_with_turn_model(Some(0.9));
    assert_eq!(
        sim.log.turn_checks.len(),
        1,
        "asked once, at the tentative end"
    );
    // 200 ms of silence, the VAD's tail, 40 ms of model: well before the 800 ms fallback.
    assert!(
        finished < Duration::from_millis(500),
        "recognition {finished:?} after the speech"
    );
    let timing = sim.log.events.iter().find_map(|(_, e)| match e {
        CallEvent::Turn(t) => Some(t.turn_model),
        _ => None,
    });
    assert_eq!(timing, Some(Some(Duration::from_millis(40))));
    assert_eq!(sim.core.flow_record().intents, ["pas"]);
}

#[test]
fn a_sentence_the_model_calls_unfinished_ends_only_after_the_fallback_silence() {
    for verdict in [Some(0.2), None] {
        let (waited, sim) = answer_with_turn_model(verdict);
        assert!(
            waited >= Duration::from_millis(800),
            "{verdict:?}: recognition {waited:?} after the speech"
        );
        let timing = sim.log.events.iter().find_map(|(_, e)| match e {
            CallEvent::Turn(t) => Some(t.turn_model),
            _ => None,
        });
        assert_eq!(timing, Some(None), "the silence ended it, not the model");
        assert_eq!(sim.core.flow_record().intents, ["pas"]);
    }
}

/// A yes/no question (a closed answer: `[turn] end_on_answer` may end the
/// turn early) and a menu (an open one: it never does).
const YES_NO: &str = r#"
start = "confirm"

[step.confirm]
do = "gather"
expect = "yesno"
prompt.da = "Vil du bestille en ny tid? Sig ja eller nej."
timeout = 7
no_match = "menu"
no_input = "menu"

[[step.confirm.intent]]
name = "yes"
goto = "yes"

[[step.confirm.intent]]
name = "no"
goto = "menu"

[step.yes]
do = "hangup"
text.da = "Du sagde ja. Farvel."
outcome = "resolved"

[step.menu]
do = "gather"
prompt.da = "Sig pas eller tryk et for pas."
hints.da = ["pas"]
timeout = 5
no_input = "to_human"
no_match = "to_human"

[[step.menu.intent]]
name = "pas"
keywords.da = ["pas"]
dtmf = "1"
goto = "pas"

[step.pas]
do = "hangup"
text.da = "Du valgte pas. Farvel."
outcome = "resolved"

[step.to_human]
do = "transfer"
department = "omstilling"
if_failed = "bye"

[step.bye]
do = "hangup"
text.da = "Farvel."
outcome = "failed"
"#;

/// Speaks an answer (speech ending 2.25 s after it starts) with the eager
/// end of turn on (speculation after 200 ms of silence, end silence 800 ms)
/// and `[turn] end_on_answer`, the recogniser hearing `heard` in the
/// speculative audio, at the yes/no question or (`at_menu`) at the menu
/// after it; returns when the utterance was endpointed, counted from the
/// end of the speech, and the turn's timing record.
fn answer_with_end_on_answer(
    heard: &str,
    at_menu: bool,
    answers: ivr_flow::Answers,
) -> (Duration, ivr_engine::turns::TurnTiming, Sim) {
    let endpointing = EndpointingConfig {
        eager_silence: Duration::from_millis(200),
        end_silence: Duration::from_millis(800),
        min_end_silence: Duration::from_millis(800),
        max_end_silence: Duration::from_millis(800),
        ..EndpointingConfig::default()
    };
    let dir = flows(YES_NO);
    let mut sim = Sim::answered(
        dir.path(),
        CALLED,
        Options {
            endpointing,
            end_on_answer: Some(answers),
            ..Options::default()
        },
    );
    sim.expect_within(secs(15), "the question plays", |s| {
        s.has_said("ja eller nej")
    });
    if at_menu {
        sim.stt.push_text("nej", 0.9);
        sim.run_until(sim.now + secs(10), waiting);
        sim.say(&Pcm::new(8_000, {
            let mut v = cut(&utterance(), 0.8, 1.6);
            v.extend(std::iter::repeat_n(0, 16_000));
            v
        }));
        sim.expect_within(secs(15), "the menu plays", |s| s.has_said("Sig pas"));
    }
    sim.stt.push_text(heard, 0.9);
    sim.run_until(sim.now + secs(10), waiting);
    let u = utterance();
    // Speech from 0.8 s to 3.05 s of the file: it ends 2.25 s after this cut starts.
    let mut samples = cut(&u, 0.8, 3.05);
    samples.extend(std::iter::repeat_n(0, 16_000));
    let speech_end = sim.now + Duration::from_millis(2250);
    sim.say(&Pcm::new(8_000, samples));
    let turns = |s: &Sim| {
        s.log
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                CallEvent::Turn(t) => Some(t.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let n = usize::from(at_menu) + 1;
    // The turn's timing is published with the reply's first packet.
    sim.expect_within(secs(10), "the flow replies", |s| turns(s).len() >= n);
    drop(dir);
    let timing = turns(&sim).pop().expect("the turn's timing");
    (
        timing.input_at.saturating_duration_since(speech_end),
        *timing,
        sim,
    )
}

#[test]
fn a_speculative_yes_ends_the_turn_at_the_short_silence() {
    let (ended, timing, mut sim) = answer_with_end_on_answer("ja", false, Answers::Closed);
    // 200 ms of silence, the VAD's tail and the recogniser's 300 ms (the
    // simulation's): before the 800 ms end silence would have ended it.
    assert!(
        ended < Duration::from_millis(700),
        "endpointed {ended:?} after the speech"
    );
    assert!(timing.ended_by_answer && timing.eager);
    sim.expect_within(secs(5), "the yes is taken", |s| s.has_said("Du sagde ja"));
    assert_eq!(
        sim.log.recognitions.len(),
        1,
        "the speculation is the turn's only recognition"
    );
}

/// The turn was not ended by its answer: the 800 ms end silence ended it.
fn waited_for_the_end_silence(ended: Duration, timing: &ivr_engine::turns::TurnTiming) {
    assert!(
        ended >= Duration::from_millis(800),
        "endpointed {ended:?} after the speech"
    );
    assert!(!timing.ended_by_answer);
}

#[test]
fn a_speculative_transcript_that_does_not_answer_waits_for_the_end_silence() {
    // "øh": no yes or no in it; the caller may be on the way to one.
    let (ended, timing, sim) = answer_with_end_on_answer("øh", false, Answers::ClosedAndOpen);
    waited_for_the_end_silence(ended, &timing);
    // The held speculation was the same audio: it is the turn's transcript.
    assert!(timing.eager);
    assert_eq!(sim.core.flow_record().misunderstood, 1);
}

#[test]
fn a_menu_answer_waits_for_the_end_silence_with_closed_answers_only() {
    let (ended, timing, sim) =
        answer_with_end_on_answer("jeg skal have et nyt pas", true, Answers::Closed);
    waited_for_the_end_silence(ended, &timing);
    assert_eq!(sim.core.flow_record().intents, ["no", "pas"]);
}

#[test]
fn a_finished_menu_answer_ends_the_turn_at_the_short_silence() {
    let (ended, timing, sim) =
        answer_with_end_on_answer("Jeg skal have et nyt pas.", true, Answers::ClosedAndOpen);
    assert!(
        ended < Duration::from_millis(700),
        "endpointed {ended:?} after the speech"
    );
    assert!(timing.ended_by_answer && timing.eager);
    assert_eq!(sim.core.flow_record().intents, ["no", "pas"]);
}

#[test]
fn a_menu_answer_that_stops_on_a_preposition_waits_for_the_end_silence() {
    // "... angående" already names an errand, but the caller is on the way
    // to the next word.
    let (ended, timing, _sim) =
        answer_with_end_on_answer("jeg ringer om pas angående", true, Answers::ClosedAndOpen);
    waited_for_the_end_silence(ended, &timing);
}

/// A toy sentence encoder that knows the menu's two errands: a text's
/// meaning is whether it speaks of a passport, of a message, or of neither
/// (so a whole sentence about a passport is as close to "pas" as the word).
/// It counts what it embeds.
#[derive(Debug, Default)]
struct CountingEncoder(std::sync::atomic::AtomicUsize);

impl CountingEncoder {
    fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl ivr_flow::semantic::SentenceEncoder for CountingEncoder {
    fn embed(
        &self,
        text: &str,
        _: ivr_flow::semantic::Role,
    ) -> Result<Vec<f32>, ivr_flow::semantic::EncodeError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let t = text.to_lowercase();
        let v = [
            f32::from(u8::from(t.contains("pas"))),
            f32::from(u8::from(t.contains("besked"))),
            0.1,
        ];
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        Ok(v.into_iter().map(|x| x / n).collect())
    }
    fn dim(&self) -> usize {
        3
    }
    fn name(&self) -> &str {
        "counting toy (call core scenarios)"
    }
}

/// A call to [`MENU`] whose municipality scores intents with a counting
/// encoder as well as by words; returns the encoder and how many texts it
/// had embedded when the call began (the intents' examples).
fn menu_call_with_encoder(
    opts: Options,
) -> (
    tempfile::TempDir,
    Sim,
    std::sync::Arc<CountingEncoder>,
    usize,
) {
    let enc = std::sync::Arc::new(CountingEncoder::default());
    let dir = flows(MENU);
    let sim = Sim::answered(
        dir.path(),
        CALLED,
        Options {
            encoder: Some(enc.clone()),
            ..opts
        },
    );
    let at_start = enc.count();
    (dir, sim, enc, at_start)
}

#[test]
fn a_menu_answers_meaning_is_made_by_a_job_and_the_flow_routes_when_it_comes() {
    let (_dir, mut sim, enc, at_start) = menu_call_with_encoder(Options::default());
    sim.world.embed_delay = Duration::from_millis(60);
    sim.stt.push_text("jeg skal have et nyt pas", 0.9);
    sim.expect_within(secs(15), "the menu prompt plays", |s| s.has_said("Tryk to"));
    sim.say(&utterance());
    sim.expect_within(secs(10), "the utterance answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    assert_eq!(sim.log.embeds.len(), 1, "one job for the turn's words");
    let asked = sim.log.embeds[0];
    let recognised = sim.log.recognitions[0].0 + sim.world.stt_delay;
    assert_eq!(asked, recognised, "asked as the transcript came");
    let answered = sim.said_at("Du valgte pas").expect("answered");
    assert!(
        answered >= asked + Duration::from_millis(60),
        "the flow waited for the meaning ({} ms after asking)",
        (answered - asked).as_millis()
    );
    assert_eq!(
        enc.count() - at_start,
        1,
        "the turn was embedded once, by the job: the flow did not embed it again"
    );
    assert_eq!(sim.core.flow_record().intents, ["pas"]);
}

#[test]
fn a_speculative_transcripts_meaning_serves_the_turn_it_becomes() {
    // Eager end of turn: the speculation after 200 ms of silence hears the
    // whole answer; its meaning is made while the end silence runs out.
    let endpointing = EndpointingConfig {
        eager_silence: Duration::from_millis(200),
        end_silence: Duration::from_millis(800),
        min_end_silence: Duration::from_millis(800),
        max_end_silence: Duration::from_millis(800),
        ..EndpointingConfig::default()
    };
    let (_dir, mut sim, enc, at_start) = menu_call_with_encoder(Options {
        endpointing,
        end_on_answer: Some(Answers::ClosedAndOpen),
        ..Options::default()
    });
    sim.stt.push_text("jeg skal have et nyt pas", 0.9);
    sim.expect_within(secs(15), "the menu prompt plays", |s| s.has_said("Tryk to"));
    let mut samples = cut(&utterance(), 0.8, 3.05);
    samples.extend(std::iter::repeat_n(0, 16_000));
    sim.say(&Pcm::new(8_000, samples));
    sim.expect_within(secs(10), "the utterance answers the menu", |s| {
        s.has_said("Du valgte pas")
    });
    let eager: Vec<bool> = sim.log.recognitions.iter().map(|(_, e)| *e).collect();
    assert_eq!(eager, [true], "the speculation is the turn's transcript");
    assert_eq!(sim.log.embeds.len(), 1, "its meaning, asked for once");
    assert_eq!(
        sim.log.embeds[0],
        sim.log.recognitions[0].0 + sim.world.stt_delay,
        "asked for as the speculative transcript came"
    );
    assert_eq!(enc.count() - at_start, 1, "embedded once in all");
    assert_eq!(sim.core.flow_record().intents, ["pas"]);
}

#[test]
fn a_transcript_waiting_for_its_meaning_is_dropped_when_the_caller_hangs_up() {
    let (_dir, mut sim, _enc, _) = menu_call_with_encoder(Options::default());
    sim.world.embed_delay = secs(2);
    sim.stt.push_text("jeg skal have et nyt pas", 0.9);
    sim.expect_within(secs(15), "the menu prompt plays", |s| s.has_said("Tryk to"));
    sim.say(&utterance());
    sim.expect_within(secs(10), "the meaning is asked for", |s| {
        !s.log.embeds.is_empty()
    });
    sim.run_for(Duration::from_millis(500));
    sim.sip(SipEvent::Ended(ivr_sip::EndReason::RemoteBye));
    sim.run_for(secs(3));
    assert!(sim.done());
    assert!(
        !sim.has_said("Du valgte pas"),
        "the late meaning moved nothing"
    );
    assert_eq!(sim.record().outcome, "abandoned");
    assert!(sim.record().intents.is_empty());
}

#[test]
fn keys_pressed_while_the_meaning_is_made_answer_and_the_late_transcript_is_dropped() {
    let (_dir, mut sim, _enc, _) = menu_call_with_encoder(Options::default());
    sim.world.embed_delay = secs(2);
    // "besked" would send a mail; the key 1 (pas) comes first.
    sim.stt.push_text("jeg vil gerne lægge en besked", 0.9);
    sim.expect_within(secs(15), "the menu prompt plays", |s| s.has_said("Tryk to"));
    sim.say(&utterance());
    sim.expect_within(secs(10), "the meaning is asked for", |s| {
        !s.log.embeds.is_empty()
    });
    sim.sip(SipEvent::Dtmf(Dtmf::D1));
    sim.expect_within(secs(2), "the key answers", |s| s.has_said("Du valgte pas"));
    sim.run_for(secs(5));
    assert_eq!(sim.record().intents, ["pas"]);
    assert!(
        sim.log.invoked.is_empty(),
        "no mail from the late transcript"
    );
}
