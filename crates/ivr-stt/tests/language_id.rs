//! Language identification (`LanguageChoice::Identify`) on the speech test
//! set (`tests/vectors/speech/`, every English and Danish utterance, at 16 kHz
//! and through G.711): the share identified right when the call is Danish and
//! when it is English, and whether the phrases a caller uses to switch
//! language come out as a language request the interpreter recognises
//! (`ivr_flow::understand::language_request`).
//!
//! Run with `--nocapture` for the figures and every decision;
//! `IVR_STT_THREADS=2` measures at two whisper threads (default 1).
//! `IVR_SPEECH_VECTORS` / `IVR_STT_MODEL` as in `speech_vectors.rs`.
//!
//! The floors are what was measured with a margin of about two utterances;
//! no single transcript is asserted, so a CPU that hears one borderline
//! phrase differently does not fail the test.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use std::path::Path;
use std::time::Duration;

use ivr_core::Lang;
use ivr_flow::understand::language_request;
use ivr_stt::{LanguageChoice, SpeechToText, SttRequest, Transcript, WhisperStt};
use support::{engine_pcm, load, menu_hints, stt_config, test_set, threads_from_env};

// Measured 2026-12-05, Whisper base q8_0, default rule (margin 1, bias da 5),
// 45 utterances (22 English by piper Joe, 23 Danish by espeak-ng), each at
// 16 kHz and through G.711, so 44 English and 46 Danish decisions:
//   call in Danish:  English identified 44/44, Danish 25/46 (26 before the
//                    resampling moved to ivr-core)
//   call in English: English identified 44/44, Danish 10/46
//   switch phrases said in English understood 8/8, said in Danish 0/8;
//   no other utterance heard as a language request.
// Identical at 1 and 2 threads (the log-odds agree to 0.01, every transcript
// the same). Robotic Danish is not Danish to whisper base (it calls it
// Latin, Thai or Chinese), so from an English call most of it stays English:
// that is the test voice, not a human caller. Identification added about
// 145 ms to an utterance at 1 thread (about 420 ms in all), on a 2-core
// machine shared with builds.
/// English utterances identified English when the call is in Danish.
const MIN_EN_FROM_DA: usize = 42;
/// Danish utterances identified Danish when the call is in Danish.
const MIN_DA_FROM_DA: usize = 23;
/// English utterances identified English when the call is in English.
const MIN_EN_FROM_EN: usize = 42;
/// Danish utterances identified Danish when the call is in English.
const MIN_DA_FROM_EN: usize = 8;
/// Switch phrases said in English (4 phrases, both versions) that come out
/// as the request they make. The Danish ones (espeak-ng) are reported, not
/// asserted: whisper base makes out none of them in either language.
const MIN_EN_SWITCHES: usize = 6;
/// Other utterances (both versions) that come out as a language request
/// from a Danish call: a false switch.
const MAX_FALSE_SWITCHES: usize = 2;

/// The phrases a caller uses to switch language, with the call's language
/// they are said in and the request they make.
const SWITCHES: [(&str, Lang, Lang); 8] = [
    ("en-english-please-01", Lang::Da, Lang::En),
    ("en-speak-english-01", Lang::Da, Lang::En),
    ("da-engelsk-02", Lang::Da, Lang::En),
    ("da-engelsk-01", Lang::Da, Lang::En),
    ("da-dansk-tak-01", Lang::En, Lang::Da),
    ("da-paa-dansk-01", Lang::En, Lang::Da),
    ("en-danish-please-01", Lang::En, Lang::Da),
    ("en-danish-01", Lang::En, Lang::Da),
];

async fn identify(stt: &WhisperStt, path: &Path, current: Lang) -> Transcript {
    let req = SttRequest {
        audio: engine_pcm(path),
        language: LanguageChoice::Identify {
            current,
            among: vec![Lang::Da, Lang::En],
        },
        // The menu's: the first turn of a call, where identification runs.
        hints: menu_hints(current),
        candidates: Vec::new(),
        cancel: Default::default(),
    };
    stt.transcribe(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn language_identification_on_the_speech_test_set() {
    let (dir, set) = test_set();
    let config = stt_config(threads_from_env());
    let rule = config.identify.clone();
    let stt = load(&config);

    // right[current][lang] = (right, total); index 0 = da, 1 = en.
    let idx = |l: Lang| usize::from(l == Lang::En);
    let mut right = [[(0usize, 0usize); 2]; 2];
    let (mut identifying, mut processing, mut n) = (Duration::ZERO, Duration::ZERO, 0u32);
    // Switch phrases understood as the request they make: (right, total)
    // for those said by the English voice and by the Danish one.
    let mut switches = [(0usize, 0usize); 2];
    // Utterances that are not a switch but come out as a language request.
    let mut false_switches = Vec::new();
    for u in &set.utterance {
        for version in ["wav", "g711"] {
            let path = dir.join(version).join(format!("{}.wav", u.id));
            // The real request from a Danish call.
            let t = identify(&stt, &path, Lang::Da).await;
            let id = t
                .identified
                .clone()
                .expect("an Identify request is identified");
            assert_eq!(id.chosen, t.language, "transcribed in the language chosen");
            identifying += t.timing.identification;
            processing += t.timing.processing;
            n += 1;
            // From an English call the decision differs only by the prior,
            // which the rule applies to the same scores (checked against
            // the real request on the switch phrases below).
            let from_en = rule.choose(Some(Lang::En), &id.scores).chosen;
            for (current, chosen) in [(Lang::Da, id.chosen), (Lang::En, from_en)] {
                let r = &mut right[idx(current)][idx(u.lang)];
                r.0 += usize::from(chosen == u.lang);
                r.1 += 1;
            }
            let share = |lang: Lang| {
                id.scores
                    .iter()
                    .find(|(l, _)| *l == lang)
                    .map_or(0.0f32, |(_, p)| *p)
            };
            let (p_en, p_da) = (share(Lang::En), share(Lang::Da));
            println!(
                "{:26} {version:4} {}  log-odds en:da {:6.2}  from da -> {}  from en -> {}  {:4} ms | {}",
                u.id,
                u.lang,
                (p_en.max(1e-30) / p_da.max(1e-30)).ln(),
                id.chosen,
                from_en,
                t.timing.identification.as_millis(),
                t.text.expose()
            );

            let switch = SWITCHES.iter().find(|(s, _, _)| *s == u.id);
            if switch.is_none() && language_request(t.text.expose()).is_some() {
                false_switches.push(format!("{} {version}", u.id));
            }
            if let Some(&(_, call, wants)) = switch {
                let real_from_en = identify(&stt, &path, Lang::En).await;
                assert_eq!(
                    real_from_en.identified.as_ref().map(|id| id.chosen),
                    Some(from_en),
                    "{}: the rule on the scores decides as the request does",
                    u.id
                );
                let t = if call == Lang::Da { t } else { real_from_en };
                let chosen = t.identified.as_ref().map(|id| id.chosen);
                let heard = language_request(t.text.expose());
                let s = &mut switches[idx(u.lang)];
                s.0 += usize::from(heard == Some(wants));
                s.1 += 1;
                println!(
                    "  switch from {call}: identified {chosen:?}, heard {:?} -> request {heard:?} (wants {wants})",
                    t.text.expose()
                );
            }
        }
    }
    let show =
        |r: (usize, usize)| format!("{}/{} ({:.3})", r.0, r.1, r.0 as f64 / r.1.max(1) as f64);
    println!(
        "Identification among da/en, {} thread(s): call in Danish: English {}, Danish {}; call in English: English {}, Danish {}",
        config.threads,
        show(right[0][1]),
        show(right[0][0]),
        show(right[1][1]),
        show(right[1][0]),
    );
    println!(
        "Switch phrases understood as the request they make: said in English {}, said in Danish {}",
        show(switches[1]),
        show(switches[0]),
    );
    println!("Other utterances heard as a language request (Danish call): {false_switches:?}");
    println!(
        "Identification took {:.0} ms per utterance on average ({:.0} ms all processing)",
        identifying.as_secs_f64() * 1000.0 / f64::from(n.max(1)),
        processing.as_secs_f64() * 1000.0 / f64::from(n.max(1)),
    );
    assert!(
        right[0][1].1 > 0 && right[0][0].1 > 0,
        "the test set needs both languages"
    );
    assert!(
        right[0][1].0 >= MIN_EN_FROM_DA,
        "English from a Danish call: {}",
        show(right[0][1])
    );
    assert!(
        right[0][0].0 >= MIN_DA_FROM_DA,
        "Danish from a Danish call: {}",
        show(right[0][0])
    );
    assert!(
        right[1][1].0 >= MIN_EN_FROM_EN,
        "English from an English call: {}",
        show(right[1][1])
    );
    assert!(
        right[1][0].0 >= MIN_DA_FROM_EN,
        "Danish from an English call: {}",
        show(right[1][0])
    );
    assert!(
        switches[1].0 >= MIN_EN_SWITCHES,
        "switch phrases said in English: {}",
        show(switches[1])
    );
    assert!(
        false_switches.len() <= MAX_FALSE_SWITCHES,
        "heard as a language request: {false_switches:?}"
    );
}
