//! Personal speech never reaches the prompt cache: the Danish job-centre
//! cancellation (name, CPR number, date and time read back to the caller)
//! driven through the call core with the real TTS (espeak-ng Danish) and a
//! disk cache in a temporary folder.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ivr_core::{Dtmf, Lang};
use ivr_engine::call::core::SipEvent;
use ivr_engine::call::listen::Phase;
use ivr_flow::{FlowStore, Request, Response};
use ivr_tts::{CacheConfig, CacheKey, Config, LangVoices, TextToSpeech, Tts};
use support::{shipped_flows, utterance, Options, Sim};

/// The job centre's own number (straight to its menu).
const JOBCENTRE: &str = "+4570202030";

fn waiting(s: &Sim) -> bool {
    matches!(s.core.listen_phase(), Some(Phase::Waiting { .. }))
}

/// Waits for the next question, then answers it with speech the recogniser hears as `heard`.
fn answer_by_speech(sim: &mut Sim, heard: &str) {
    sim.expect_within(Duration::from_secs(60), "a question", waiting);
    sim.stt.push_text(heard, 0.9);
    sim.say(&utterance());
    sim.expect_within(Duration::from_secs(10), "the answer is heard", |s| {
        !waiting(s) && !matches!(s.core.listen_phase(), Some(Phase::Hearing { .. }))
    });
}

/// Waits for the next question, then keys `digits` in (SIP INFO, 300 ms apart).
fn answer_by_keys(sim: &mut Sim, digits: &str) {
    sim.expect_within(Duration::from_secs(60), "a question", waiting);
    for c in digits.chars() {
        let k = Dtmf::from_char(c).expect("a key");
        sim.sip(SipEvent::Dtmf(k));
        sim.run_for(Duration::from_millis(300));
    }
}

fn disk_entries(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("cache folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wav"))
        .collect()
}

#[test]
fn personal_speech_never_reaches_the_prompt_cache() {
    let cache = tempfile::tempdir().expect("temp dir");
    let voices = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../voices");
    let tts = Arc::new(
        Tts::new(Config {
            voices_dir: voices,
            voice: LangVoices::default(),
            output_rate: 16_000,
            cache: CacheConfig {
                dir: Some(cache.path().to_path_buf()),
                ..CacheConfig::default()
            },
            ..Config::default()
        })
        .expect("espeak-ng Danish voice")
        // The engine caches prompts at each codec's rate too (G.711: 8 kHz).
        .with_play_rates([8_000]),
    );
    // The engine pre-renders every static prompt at start; so does this test.
    let (store, _) = FlowStore::load(shipped_flows()).expect("flows");
    let danish: Vec<String> = store
        .static_prompts()
        .into_iter()
        .filter(|(l, _)| *l == Lang::Da)
        .map(|(_, t)| t)
        .chain(
            ivr_engine::call::filler_prompts()
                .into_iter()
                .filter(|(l, _)| *l == Lang::Da)
                .map(|(_, t)| t),
        )
        .collect();
    for t in &danish {
        tts.prerender_lang(t, Lang::Da).expect("static prompt");
    }
    let before = disk_entries(cache.path());
    let stats_before = tts.cache().stats();

    let mut sim = Sim::answered(
        &shipped_flows(),
        JOBCENTRE,
        Options {
            tts: tts.clone(),
            ..Options::default()
        },
    );
    sim.world.invoke = Box::new(|r| {
        assert!(matches!(r, Request::SendMail { .. }), "{r:?}");
        (Duration::from_millis(200), Response::Ok)
    });
    answer_by_keys(&mut sim, "1"); // cancel an appointment
    answer_by_speech(&mut sim, "Jens Hansen"); // name
    answer_by_keys(&mut sim, "0101901234"); // CPR number
    answer_by_speech(&mut sim, "ja"); // "Jeg hørte ... Er det rigtigt?"
    answer_by_keys(&mut sim, "03122026"); // date
    answer_by_keys(&mut sim, "1030"); // time
    answer_by_speech(&mut sim, "ja"); // confirm
    sim.expect_within(Duration::from_secs(60), "the call ends", |s| s.done());
    assert_eq!(
        sim.record().outcome,
        "mail_sent",
        "steps {:?}",
        sim.record().steps
    );

    let personal: Vec<&String> = sim
        .log
        .said
        .iter()
        .filter(|(_, _, personal)| *personal)
        .map(|(_, t, _)| t)
        .collect();
    let static_said: Vec<&String> = sim
        .log
        .said
        .iter()
        .filter(|(_, _, personal)| !personal)
        .map(|(_, t, _)| t)
        .collect();
    assert!(
        personal.iter().any(|t| t.starts_with("nul et, nul et"))
            && personal.iter().any(|t| t.contains("Jens Hansen")),
        "the CPR read-back and the name were said as personal speech: {personal:?}"
    );
    // The read-back's lead-in is the flow's own words, from the cache.
    assert!(
        static_said.iter().any(|t| *t == "Jeg hørte,"),
        "{static_said:?}"
    );
    assert!(
        static_said.len() >= 5,
        "static prompts too: {static_said:?}"
    );

    // Nothing new on disk: every entry is a pre-rendered static prompt.
    let after = disk_entries(cache.path());
    let added = after.difference(&before).count();
    assert_eq!(added, 0, "the call added {added} files to the prompt cache");
    let voice = tts.voice_for(Lang::Da).expect("voice");
    let spec = tts.registry().get(&voice).expect("spec");
    for text in &personal {
        for s in ivr_tts::split_sentences(text)
            .into_iter()
            .chain([text.as_str()])
        {
            for rate in [8_000, 16_000] {
                let key = CacheKey::new(&spec.id, &spec.fingerprint, rate, s.trim());
                assert!(
                    !after.contains(&format!("{}.wav", key.as_str())),
                    "a personal prompt is on disk"
                );
            }
        }
    }
    // Static prompts are served from the cache.
    let stats = tts.cache().stats();
    assert_eq!(
        stats.misses, stats_before.misses,
        "no static prompt had to be made"
    );
    let static_sentences: usize = static_said
        .iter()
        .map(|t| ivr_tts::split_sentences(t).len())
        .sum();
    assert_eq!(
        (stats.memory_hits + stats.disk_hits) - (stats_before.memory_hits + stats_before.disk_hits),
        static_sentences as u64,
        "every sentence of every static prompt of the call was a cache hit"
    );
}
