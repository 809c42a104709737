//! A flow's speech through the real espeak-ng voices: static speech is cached
//! in memory and on disk, personal speech (a CPR number read back) never is.

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
    assert_eq!(audio.len(), 2, "spoken sentence by sentence");
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
