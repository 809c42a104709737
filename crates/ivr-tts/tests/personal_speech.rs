//! A flow's speech through the real espeak-ng voices: static speech is cached
//! in memory and on disk, personal speech (a CPR number read back) never is.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ivr_core::{Lang, Pii, Speech};
use ivr_tts::{CacheConfig, Config, LangVoices, TextToSpeech, Tts};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// espeak-ng voices only (no piper model needed), with a disk cache in `dir`.
fn espeak_tts(dir: &Path) -> Tts {
    Tts::new(Config {
        voices_dir: root().join("voices"),
        voice: LangVoices {
            da: "espeak-da".into(),
            en: "espeak-en".into(),
        },
        output_rate: 8_000,
        cache: CacheConfig {
            dir: Some(dir.to_path_buf()),
            memory_entries: 64,
            disk_max_mb: 16,
        },
        ..Config::default()
    })
    .unwrap()
}

fn wavs(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wav"))
        .count()
}

#[test]
fn personal_speech_leaves_no_file_in_the_disk_cache_and_no_memory_entry() {
    let dir = tempfile::tempdir().unwrap();
    // The concrete handle for the cache statistics, the trait object (as the
    // engine holds it) for speaking.
    let tts_impl = espeak_tts(dir.path());
    let tts: &dyn TextToSpeech = &tts_impl;

    let cpr = Speech::Personal(Pii::new(
        "Jeg hørte nul tre, tolv, halvfems, tolv, fireogtredive. Er det rigtigt?".into(),
    ));
    let audio: Vec<_> = tts
        .speak(&cpr, Lang::Da)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        audio.len(),
        3,
        "spoken sentence by sentence, the first one's first clause apart"
    );
    assert!(audio.iter().all(|p| p.samples.len() > 4_000), "real speech");
    assert_eq!(
        tts_impl.cache().memory_len(),
        0,
        "personal audio in memory cache"
    );
    assert_eq!(
        wavs(dir.path()),
        0,
        "personal audio written to the disk cache"
    );

    let prompt = Speech::Static("Sig eller tast dit CPR-nummer, ti cifre.".into());
    let first: Vec<_> = tts
        .speak(&prompt, Lang::Da)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tts_impl.cache().memory_len(), 1);
    assert_eq!(wavs(dir.path()), 1, "static prompt cached on disk");
    // Said again: from the cache, the same audio.
    let misses = tts_impl.cache().stats().misses;
    let again: Vec<_> = tts
        .speak(&prompt, Lang::Da)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tts_impl.cache().stats().misses, misses);
    assert_eq!(first, again);
}

#[test]
fn a_prerendered_static_prompt_is_a_cache_hit_when_spoken_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Velkommen til Nordby Kommune. You can also speak English.";
    {
        let tts: Arc<dyn TextToSpeech> = Arc::new(espeak_tts(dir.path()));
        tts.prerender_lang(text, Lang::Da).unwrap();
    }
    assert_eq!(wavs(dir.path()), 2, "one file per sentence");
    // A new process: the disk cache answers every sentence.
    let tts_impl = espeak_tts(dir.path());
    let tts: &dyn TextToSpeech = &tts_impl;
    let n = tts
        .speak(&Speech::Static(text.into()), Lang::Da)
        .unwrap()
        .map(Result::unwrap)
        .count();
    assert_eq!(n, 2);
    let stats = tts_impl.cache().stats();
    assert_eq!((stats.disk_hits, stats.misses), (2, 0), "{stats:?}");
}

/// Everything the Danish job-centre cancellation says, in order, as the
/// interpreter gives it (keys and words of a caller named Jens Hansen).
fn jobcentre_call_speech() -> Vec<Speech> {
    use ivr_core::Dtmf;
    use ivr_flow::{Action, CallContext, Event, FlowStore, Interpreter, Response};
    let (store, _) = FlowStore::load(root().join("flows")).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00+01:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut call = Interpreter::new(
        store.route("+4570202030").unwrap(),
        CallContext {
            caller: Pii::new("+4522334455".into()),
            lang: None,
        },
    );
    let speech = |t: &str| Event::Speech {
        text: Pii::new(t.into()),
        confidence: 0.9,
        lang: Some(Lang::Da),
        identified: true,
    };
    let keys = |k: &str| -> Vec<Event> {
        k.chars()
            .map(|c| Event::Dtmf(Dtmf::from_char(c).unwrap()))
            .collect()
    };
    let mut actions = call.start(now);
    let mut turns: Vec<Event> = keys("1");
    turns.push(speech("Jens Hansen"));
    turns.extend(keys("0312901234"));
    turns.push(speech("ja"));
    turns.push(speech("den 26. november"));
    turns.push(speech("kvart over ti"));
    turns.push(speech("ja"));
    turns.push(Event::Result(Response::Ok));
    for ev in turns {
        actions.extend(call.handle(ev, now));
    }
    assert!(call.is_done(), "the call ran to its end");
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Say { speech, .. } => Some(speech),
            _ => None,
        })
        .collect()
}

#[test]
fn personal_speech_never_reaches_the_prompt_cache() {
    let said = jobcentre_call_speech();
    let personal: Vec<&Speech> = said.iter().filter(|s| s.is_personal()).collect();
    let statics: Vec<&Speech> = said.iter().filter(|s| !s.is_personal()).collect();
    assert!(
        personal.len() >= 3,
        "CPR, appointment and name read back: {said:?}"
    );
    assert!(statics.len() >= 5, "{said:?}");

    let dir = tempfile::tempdir().unwrap();
    let tts_impl = espeak_tts(dir.path());
    let tts: &dyn TextToSpeech = &tts_impl;
    for s in &said {
        for pcm in tts.speak(s, Lang::Da).unwrap() {
            assert!(!pcm.unwrap().samples.is_empty());
        }
    }
    // The cache holds exactly the static sentences: one file each.
    let static_sentences: std::collections::BTreeSet<&str> = statics
        .iter()
        .flat_map(|s| ivr_tts::split_sentences(s.expose()))
        .collect();
    assert_eq!(wavs(dir.path()), static_sentences.len());
    assert_eq!(tts_impl.cache().memory_len(), static_sentences.len());
    // No file for any sentence of personal speech (the file names are the
    // cache keys: every static sentence has its file under its key).
    let voice = tts_impl.registry().get("espeak-da").unwrap();
    let file = |sentence: &str| {
        let key = ivr_tts::CacheKey::new(&voice.id, &voice.fingerprint, 8_000, sentence.trim());
        dir.path().join(format!("{}.wav", key.as_str()))
    };
    assert!(static_sentences.iter().all(|s| file(s).exists()));
    for p in &personal {
        for sentence in ivr_tts::split_sentences(p.expose()) {
            assert!(!file(sentence).exists(), "personal speech cached on disk");
        }
    }
    // A second caller: every static prompt is a cache hit.
    let misses = tts_impl.cache().stats().misses;
    for s in &statics {
        tts.speak(s, Lang::Da).unwrap().for_each(|r| {
            r.unwrap();
        });
    }
    assert_eq!(tts_impl.cache().stats().misses, misses);
}
