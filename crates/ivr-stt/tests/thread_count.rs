//! `[stt] idle_threads`: an utterance recognised alone on idle cores takes
//! more whisper threads than `[stt] threads`. That must change only how soon
//! the transcript comes, never what it says: ggml splits each matrix
//! product by rows over its threads, so every row is summed the same way
//! whatever the count. Here the same Danish and English recordings (through
//! G.711, with a menu's hints and expected answers, and with language
//! identification) are recognised on one thread and on two, and the
//! transcripts, languages and confidences must be the same.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use ivr_core::Lang;
use ivr_stt::{Candidate, LanguageChoice, SpeechToText, SttConfig, SttRequest, WhisperStt};
use support::{engine_pcm, load, stt_config, vectors_dir};

/// A recogniser that always runs `threads` whisper threads.
fn fixed(threads: usize) -> WhisperStt {
    load(&SttConfig {
        idle_threads: threads,
        ..stt_config(threads)
    })
}

fn requests() -> Vec<(String, SttRequest)> {
    let dir = vectors_dir().join("g711");
    let menu_da = || {
        SttRequest::new(engine_pcm(&dir.join("da-boligstoette-01.wav")), Lang::Da).with_hints([
            "pas",
            "kørekort",
            "boligstøtte",
        ])
    };
    let mut with_answers = menu_da();
    with_answers.candidates = vec![
        Candidate {
            label: "ydelser".into(),
            phrases: vec!["boligstøtte".into(), "pension".into()],
        },
        Candidate {
            label: "pas".into(),
            phrases: vec!["pas".into()],
        },
    ];
    let mut identify =
        SttRequest::new(engine_pcm(&dir.join("en-housing-benefit-01.wav")), Lang::Da);
    identify.language = LanguageChoice::Identify {
        current: Lang::Da,
        among: vec![Lang::Da, Lang::En],
    };
    vec![
        ("da menu, hints".into(), menu_da()),
        ("da menu, hints and answers".into(), with_answers),
        (
            "da date".into(),
            SttRequest::new(engine_pcm(&dir.join("da-dato-01.wav")), Lang::Da),
        ),
        (
            "en passport".into(),
            SttRequest::new(engine_pcm(&dir.join("en-passport-01.wav")), Lang::En),
        ),
        ("en, identified among da and en".into(), identify),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_whisper_thread_count_does_not_change_what_is_heard() {
    let (one, two) = (fixed(1), fixed(2));
    for ((what, a), (_, b)) in requests().into_iter().zip(requests()) {
        let x = one.transcribe(a).await.unwrap();
        let y = two.transcribe(b).await.unwrap();
        assert_eq!(x.text.expose(), y.text.expose(), "{what}: the text");
        assert_eq!(x.language, y.language, "{what}: the language");
        assert!(
            (x.confidence - y.confidence).abs() < 1e-3,
            "{what}: confidence {} against {}",
            x.confidence,
            y.confidence
        );
    }
}
