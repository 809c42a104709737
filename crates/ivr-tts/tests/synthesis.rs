//! Speech from each engine: Danish through espeak-ng in process, English through
//! the piper voice Joe (needs `make setup`: the voice and libonnxruntime), at the
//! engine's rates, sentence by sentence, and cached across restarts.

use std::path::{Path, PathBuf};

use ivr_core::{Lang, Pcm, Pii};
use ivr_tts::{
    CacheConfig, Config, SpeechStream, TextToSpeech, Tts, TtsError, VoiceRegistry, VoiceSpec,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(rate: u32, cache_dir: Option<&Path>) -> Config {
    let onnx = root().join("models/onnxruntime/libonnxruntime.so");
    let joe = root().join("voices/en_US-joe-medium/en_US-joe-medium.onnx");
    assert!(
        onnx.is_file() && joe.is_file(),
        "piper voice or onnxruntime missing ({} / {}): run `make setup` (scripts/setup/20-voices.sh)",
        joe.display(),
        onnx.display()
    );
    Config {
        voices_dir: root().join("voices"),
        onnxruntime: onnx,
        output_rate: rate,
        cache: CacheConfig {
            dir: cache_dir.map(Path::to_path_buf),
            memory_entries: 64,
            disk_max_mb: 16,
        },
        ..Config::default()
    }
}

/// Speech: long enough for the words, not silent, not clipped flat.
fn assert_speech(p: &Pcm, rate: u32, min_s: f64, max_s: f64, what: &str) {
    assert_eq!(p.sample_rate, rate, "{what}");
    let secs = p.duration().as_secs_f64();
    assert!((min_s..max_s).contains(&secs), "{what}: {secs:.2} s");
    let rms = (p.samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>()
        / p.samples.len() as f64)
        .sqrt();
    assert!(rms > 500.0, "{what}: nearly silent (rms {rms:.0})");
    let clipped = p
        .samples
        .iter()
        .filter(|s| s.unsigned_abs() >= 32_767)
        .count();
    assert!(
        clipped < p.samples.len() / 100,
        "{what}: {clipped} clipped samples"
    );
}

#[test]
fn danish_espeak_speaks_at_16k_and_8k() {
    for rate in [16_000, 8_000] {
        let tts = Tts::new(config(rate, None)).unwrap();
        let p = tts
            .synthesize_lang(
                "Goddag, du har ringet til kommunen. Hvad drejer det sig om?",
                Lang::Da,
            )
            .unwrap();
        assert_speech(&p, rate, 2.0, 8.0, "espeak-da");
    }
}

#[test]
fn english_piper_joe_speaks_at_16k_and_8k() {
    for rate in [16_000, 8_000] {
        let tts = Tts::new(config(rate, None)).unwrap();
        assert_eq!(tts.voice_for(Lang::En).unwrap(), "piper-en-joe");
        let p = tts
            .synthesize_lang(
                "Welcome to the municipality. How can I help you today?",
                Lang::En,
            )
            .unwrap();
        assert_speech(&p, rate, 2.0, 7.0, "piper-en-joe");
    }
}

#[test]
fn danish_clock_times_are_spoken_not_spelled() {
    let tts = Tts::new(config(16_000, None)).unwrap();
    // Read as "klokken ti tredive", not spelled "k l ti punktum tredive"
    // (espeak-ng varies a few samples between runs).
    let said = tts.synthesize("Vi åbner kl. 10.30.", "espeak-da").unwrap();
    let words = tts
        .synthesize("Vi åbner klokken 10 30.", "espeak-da")
        .unwrap();
    let spelled = tts
        .synthesize("Vi åbner k l 10 punktum 30.", "espeak-da")
        .unwrap();
    let (a, b, c) = (
        said.samples.len() as f64,
        words.samples.len() as f64,
        spelled.samples.len() as f64,
    );
    assert!((a / b - 1.0).abs() < 0.02, "{a} vs {b}");
    assert!((a / c - 1.0).abs() > 0.1, "{a} vs spelled {c}");
}

#[test]
fn longer_text_gives_longer_audio() {
    let tts = Tts::new(config(16_000, None)).unwrap();
    for voice in ["espeak-da", "piper-en-joe"] {
        let short = tts.synthesize("Ja.", voice).unwrap();
        let long = tts
            .synthesize(
                "Ja. Jeg vil gerne tale med en medarbejder om min boligstøtte.",
                voice,
            )
            .unwrap();
        assert!(
            long.samples.len() > 3 * short.samples.len(),
            "{voice}: {} vs {}",
            long.samples.len(),
            short.samples.len()
        );
    }
}

#[test]
fn a_reply_streams_one_sentence_at_a_time() {
    let tts = Tts::new(config(16_000, None)).unwrap();
    let text = "Tak. Du er nu i kø til Borgerservice. Der er tre personer foran dig.";
    let mut stream = SpeechStream::new(&tts, text, "espeak-da");
    assert_eq!(stream.remaining(), 3);
    let first = stream.next().unwrap().unwrap();
    // The first chunk is only the first sentence, ready before the others are made.
    assert_eq!(stream.remaining(), 2);
    assert!(
        first.duration().as_secs_f64() < 1.5,
        "{:?}",
        first.duration()
    );
    let rest: Vec<_> = stream.map(Result::unwrap).collect();
    assert_eq!(rest.len(), 2);
    let whole = tts.synthesize(text, "espeak-da").unwrap();
    let streamed: usize = first.samples.len() + rest.iter().map(|p| p.samples.len()).sum::<usize>();
    let ratio = streamed as f64 / whole.samples.len() as f64;
    assert!(
        (0.8..1.3).contains(&ratio),
        "streamed {streamed} vs whole {}",
        whole.samples.len()
    );
}

#[test]
fn prompts_are_synthesised_once_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let text = "Velkommen til Aarhus Kommune.";
    let first = {
        let tts = Tts::new(config(8_000, Some(dir.path()))).unwrap();
        let p = tts.synthesize(text, "piper-en-joe").unwrap();
        // Same process: from memory.
        assert_eq!(tts.synthesize(text, "piper-en-joe").unwrap(), p);
        assert_eq!(tts.cache().stats().misses, 1);
        assert_eq!(tts.cache().stats().memory_hits, 1);
        p
    };
    // "Restart": a new engine on the same cache folder does not synthesise again
    // (piper samples noise, so a second synthesis would not be sample-identical).
    let tts = Tts::new(config(8_000, Some(dir.path()))).unwrap();
    let again = tts.synthesize(text, "piper-en-joe").unwrap();
    assert_eq!(*again, *first);
    assert_eq!(tts.cache().stats().disk_hits, 1);
    assert_eq!(tts.cache().stats().misses, 0);
    // Another rate is another prompt.
    let tts16 = Tts::new(config(16_000, Some(dir.path()))).unwrap();
    assert_eq!(
        tts16.synthesize(text, "piper-en-joe").unwrap().sample_rate,
        16_000
    );
    assert_eq!(tts16.cache().stats().misses, 1);
}

#[test]
fn prerendered_prompts_cost_nothing_for_the_first_caller() {
    let tts = Tts::new(config(8_000, None)).unwrap();
    let prompts = [
        ("Velkommen til kommunen.", "espeak-da"),
        ("Welcome.", "piper-en-joe"),
        ("Velkommen til kommunen.", "espeak-da"),
    ];
    assert_eq!(tts.prerender(prompts).unwrap(), 2);
    let misses = tts.cache().stats().misses;
    tts.synthesize_lang("Velkommen til kommunen.", Lang::Da)
        .unwrap();
    assert_eq!(
        tts.cache().stats().misses,
        misses,
        "the caller's prompt was synthesised again"
    );
}

#[test]
fn personal_text_never_reaches_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let tts = Tts::new(config(8_000, Some(dir.path()))).unwrap();
    let cpr = Pii::from("Dit CPR-nummer er 010203-1234. Er det korrekt?".to_string());
    let p = tts.synthesize_personal(&cpr, "espeak-da").unwrap();
    assert_speech(&p, 8_000, 2.0, 9.0, "personal");
    let streamed: Vec<_> = SpeechStream::personal(&tts, &cpr, "espeak-da")
        .map(Result::unwrap)
        .collect();
    assert_eq!(streamed.len(), 2);
    assert_eq!(tts.cache().memory_len(), 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "audio of personal data written to the disk cache"
    );
}

#[test]
fn an_unknown_voice_in_config_is_refused_at_start() {
    let mut c = config(16_000, None);
    c.voice.da = "piper-da-talesyntese".into();
    let e = Tts::new(c).unwrap_err();
    assert!(
        matches!(&e, TtsError::UnknownVoice(v) if v == "piper-da-talesyntese"),
        "{e:?}"
    );
}

#[test]
fn a_dropped_in_piper_voice_without_its_files_says_what_is_missing() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/da-talesyntese.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut reg = VoiceRegistry::load_dir(&root().join("voices")).unwrap();
    reg.insert(VoiceSpec::from_toml(&dir.path().join("da-talesyntese.toml"), &text).unwrap())
        .unwrap();
    let mut c = config(16_000, None);
    c.voice.da = "piper-da-talesyntese".into();
    let tts = Tts::with_registry(c, reg).unwrap();
    let e = tts.synthesize_lang("Hej", Lang::Da).unwrap_err();
    assert!(matches!(e, TtsError::VoiceUnavailable { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("da_DK-talesyntese-medium.onnx not found"),
        "{e}"
    );
}

#[test]
fn a_missing_onnxruntime_is_an_error_not_a_hang() {
    let mut c = config(16_000, None);
    c.onnxruntime = PathBuf::from("/nonexistent/libonnxruntime.so");
    let tts = Tts::new(c).unwrap();
    let e = tts.load_voice("piper-en-joe").unwrap_err();
    assert!(
        e.to_string()
            .contains("onnxruntime library /nonexistent/libonnxruntime.so not found"),
        "{e}"
    );
    assert!(e.to_string().contains("make setup"), "{e}");
    // espeak voices do not need it.
    tts.load_voice("espeak-da").unwrap();
}

#[test]
fn every_shipped_voice_loads_and_speaks() {
    let tts = Tts::new(config(16_000, None)).unwrap();
    let ids: Vec<String> = tts.registry().iter().map(|v| v.id.clone()).collect();
    assert!(ids.len() >= 3, "{ids:?}");
    for id in ids {
        let p = tts
            .synthesize("Borgerservice.", &id)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_speech(&p, 16_000, 0.4, 3.0, &id);
    }
}

#[test]
fn shipped_voices_pass_the_doctor_checks_after_setup() {
    let checks = ivr_tts::doctor::checks(&config(16_000, None));
    let bad: Vec<_> = checks.iter().filter(|c| c.fix.is_some()).collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(
        checks
            .iter()
            .any(|c| c.what == "voice piper-en-joe" && c.found.contains("files verified")),
        "{checks:#?}"
    );
    assert!(
        checks.iter().any(|c| c.what == "onnxruntime"),
        "{checks:#?}"
    );
}

#[test]
fn a_wrong_espeak_data_folder_is_an_error_with_the_fix() {
    let mut c = config(16_000, None);
    c.espeak_data = Some(PathBuf::from("/nonexistent/espeak-ng-data"));
    let tts = Tts::new(c).unwrap();
    let e = tts.synthesize_lang("Hej", Lang::Da).unwrap_err();
    assert!(matches!(e, TtsError::VoiceUnavailable { .. }), "{e:?}");
    assert!(
        e.to_string().contains("apt-get install espeak-ng-data"),
        "{e}"
    );
}

#[test]
fn two_calls_speak_with_the_same_piper_voice_at_once() {
    let mut c = config(8_000, None);
    c.piper_sessions = 2;
    let tts = Tts::new(c).unwrap();
    tts.load_voice("piper-en-joe").unwrap();
    assert_eq!(tts.piper_sessions("piper-en-joe"), 2);
    let texts = ["Your appointment is on Tuesday.", "Please hold the line."];
    let out: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = texts
            .iter()
            .map(|t| s.spawn(|| tts.synthesize(t, "piper-en-joe")))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    for (p, t) in out.iter().zip(texts) {
        assert_speech(p, 8_000, 0.8, 4.0, t);
    }
}

#[test]
fn an_output_rate_the_media_path_does_not_use_is_refused() {
    let e = Tts::new(config(11_025, None)).unwrap_err();
    assert!(
        matches!(e, TtsError::UnsupportedOutputRate(11_025)),
        "{e:?}"
    );
}

#[test]
fn empty_text_is_silence_not_an_error() {
    let tts = Tts::new(config(16_000, None)).unwrap();
    assert!(tts
        .synthesize("   ", "espeak-da")
        .unwrap()
        .samples
        .is_empty());
}

#[test]
fn a_prompt_is_cached_at_each_codec_rate_and_synthesised_once() {
    let tts = Tts::new(config(16_000, None))
        .unwrap()
        .with_play_rates([8_000, 16_000]);
    assert_eq!(tts.play_rates(), vec![8_000, 16_000]);
    let voice = tts.voice_for(Lang::Da).unwrap();
    let text = "Tryk et for boligstøtte.";
    tts.prerender_lang(text, Lang::Da).unwrap();
    let made = tts.cache().stats().misses;
    assert_eq!(made, 1, "one synthesis serves both rates");
    // A G.711 call gets the 8 kHz audio as it is, shared with every other call.
    let narrow = tts.synthesize_at(text, &voice, 8_000).unwrap();
    assert_speech(&narrow, 8_000, 0.8, 5.0, "espeak-da at 8 kHz");
    let again = tts.synthesize_at(text, &voice, 8_000).unwrap();
    assert!(std::sync::Arc::ptr_eq(&narrow, &again));
    let wide = tts.synthesize(text, &voice).unwrap();
    assert_eq!(wide.sample_rate, 16_000);
    // Both were made from the same synthesis: the same length of speech.
    let (n, w) = (narrow.duration(), wide.duration());
    assert!(
        n.abs_diff(w) < std::time::Duration::from_millis(2),
        "{n:?} vs {w:?}"
    );
    assert_eq!(
        tts.cache().stats().misses,
        made,
        "no synthesis after the prerender"
    );
    // Personal speech is converted straight to the call's rate and never cached.
    let personal = tts
        .synthesize_personal_at(&Pii::from("Anders And".to_string()), &voice, 8_000)
        .unwrap();
    assert_eq!(personal.sample_rate, 8_000);
    assert_eq!(tts.cache().memory_len(), 2);
}
