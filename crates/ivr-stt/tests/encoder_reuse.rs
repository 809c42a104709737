//! The same utterance recognised again (the flow's `RecognizeAgain`: not
//! understood in the language whisper identified, heard again in the call's
//! own) reuses the encoder output its worker's state still holds, and that
//! changes only how soon the transcript comes, never what it says:
//!
//! - with two workers, the second request for the same audio goes to the
//!   worker that encoded it and reports `encoder_reused`;
//! - its transcript is the one a recogniser that never heard the audio
//!   gives for the same request;
//! - identification on the reused encoding gives the same scores as the
//!   first pass, and those are whisper.cpp's own language probabilities
//!   (`whisper_lang_auto_detect`, renormalised among the allowed languages).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use ivr_core::{Lang, Pcm};
use ivr_stt::{
    Candidate, LanguageChoice, SpeechToText, SttConfig, SttRequest, Transcript, WhisperStt,
};
use support::{engine_pcm, load, model_path, stt_config, vectors_dir};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

fn request(pcm: &Pcm, current: Lang, among: &[Lang]) -> SttRequest {
    let mut r =
        SttRequest::new(pcm.clone(), current).with_hints(["pas", "kørekort", "boligstøtte"]);
    r.candidates = vec![
        Candidate {
            label: "ydelser".into(),
            phrases: vec!["boligstøtte".into(), "housing benefit".into()],
        },
        Candidate {
            label: "pas".into(),
            phrases: vec!["pas".into(), "passport".into()],
        },
    ];
    r.language = LanguageChoice::Identify {
        current,
        among: among.to_vec(),
    };
    r
}

async fn run(stt: &WhisperStt, r: SttRequest) -> Transcript {
    stt.transcribe(r).await.unwrap()
}

/// Everything a transcript says, timing aside.
fn said(t: &Transcript) -> String {
    format!(
        "{:?} conf {} no_speech {} logprob {} dropped {:?} spotted {:?} lang {:?} identified {:?}",
        t.text.expose(),
        t.confidence,
        t.no_speech,
        t.avg_logprob,
        t.dropped,
        t.spotted,
        t.language,
        t.identified
    )
}

/// whisper.cpp's own language probabilities for `pcm` at `audio_ctx`
/// (encoder and one decoder step inside `whisper_lang_auto_detect`), for
/// Danish and English renormalised between them.
fn lang_auto_detect(pcm: &Pcm, audio_ctx: u32) -> (f32, f32) {
    let mut params = WhisperContextParameters::default();
    params.use_gpu(false);
    let ctx = WhisperContext::new_with_params(model_path(), params).unwrap();
    let mut state = ctx.create_state().unwrap();
    let mut samples = pcm.to_f32();
    ivr_stt::audio::settle_tail(&mut samples);
    // whisper.cpp ignores input under 1 s: the engine pads to 1.1 s.
    samples.resize(samples.len().max(17_600), 0.0);
    // The mel spectrogram and the encoder context, without decoding.
    let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    p.set_n_threads(1);
    p.set_audio_ctx(audio_ctx as i32);
    p.set_duration_ms(100);
    p.set_print_progress(false);
    p.set_print_realtime(false);
    state.full(p, &samples).unwrap();
    let (_, probs) = state.lang_detect(0, 1).unwrap();
    let p = |l: &str| probs[whisper_rs::get_lang_id(l).unwrap() as usize];
    let (da, en) = (p("da"), p("en"));
    (da / (da + en), en / (da + en))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_same_audio_again_is_decoded_on_its_encoding_and_heard_the_same() {
    let reusing = load(&SttConfig {
        workers: 2,
        ..stt_config(1)
    });
    // One worker, and each clip only once: it never holds a clip's encoding.
    let fresh = load(&stt_config(1));
    let dir = vectors_dir().join("g711");
    for clip in ["da-boligstoette-01", "en-housing-benefit-01", "da-dato-01"] {
        let pcm = engine_pcm(&dir.join(format!("{clip}.wav")));
        let first = run(&reusing, request(&pcm, Lang::Da, &[Lang::Da, Lang::En])).await;
        assert!(!first.timing.encoder_reused, "{clip}: first pass");
        // Not understood in the identified language: again in the call's.
        let again = run(&reusing, request(&pcm, Lang::Da, &[Lang::Da])).await;
        assert!(again.timing.encoder_reused, "{clip}: again in Danish");
        assert!(
            again.timing.encoding < first.timing.encoding / 4,
            "{clip}: encoding {:?} again vs {:?} first",
            again.timing.encoding,
            first.timing.encoding
        );
        let heard_fresh = run(&fresh, request(&pcm, Lang::Da, &[Lang::Da])).await;
        assert!(!heard_fresh.timing.encoder_reused);
        assert_eq!(said(&again), said(&heard_fresh), "{clip}: reused vs fresh");
        // Identification again on the reused encoding: the same scores.
        let identified_again = run(&reusing, request(&pcm, Lang::Da, &[Lang::Da, Lang::En])).await;
        assert!(identified_again.timing.encoder_reused);
        assert_eq!(
            said(&identified_again),
            said(&first),
            "{clip}: identified again"
        );
        // And they are whisper.cpp's own language probabilities.
        let scores = first.identified.as_ref().unwrap().scores.clone();
        let (da, en) = lang_auto_detect(&pcm, first.timing.audio_ctx);
        let score = |l: Lang| scores.iter().find(|(s, _)| *s == l).unwrap().1;
        assert!(
            (score(Lang::Da) - da).abs() < 1e-3 && (score(Lang::En) - en).abs() < 1e-3,
            "{clip}: engine {scores:?} vs whisper_lang_auto_detect da {da} en {en}"
        );
        println!(
            "{clip}: first pass {:?} (encoding {:?}), again {:?} (encoding {:?})",
            first.timing.processing,
            first.timing.encoding,
            again.timing.processing,
            again.timing.encoding
        );
    }
}
