//! Accuracy on the speech test set (`tests/vectors/speech/`, made by the
//! committed `generate.py` from piper Joe (English) and espeak-ng (Danish)):
//! English word error rate and Danish keyword hit rate, on the 16 kHz
//! recordings and on their G.711 (8 kHz A-law) versions, with Whisper base
//! q8_0 as `make setup` prepares it.
//!
//! The floors below are what was measured when the test set and the model
//! were introduced, with a small margin: a change that makes recognition
//! worse fails here. Run with `--nocapture` to see the figures and every
//! transcript. `IVR_SPEECH_VECTORS=/path` points at another copy of the
//! test set; `IVR_STT_MODEL=/path` at another model.

mod support;

use ivr_core::Lang;
use ivr_stt::score::{contains_keyword, word_errors};
use ivr_stt::{LanguageChoice, SpeechToText, SttRequest};
use support::{engine_pcm, load, stt_config, test_set};

// Measured 2026-11-23 (Whisper base q8_0, 1 thread, 40 utterances):
// English WER clean 0.129 (16/124 words), G.711 0.121 -- most errors are
// numbers written as digits ("15th", "3", "2030405050") and "license";
// Danish keyword hits with hints clean 0.267 (8/30), G.711 0.300 (9/30) --
// espeak-ng's robotic Danish is hard for Whisper base (see MODELS.md);
// detection between da and en: English 20/20, Danish 1/20 (robotic Danish
// sounds English to it: flows should set the language).
// 2026-12-05, with 5 language-switch phrases added (45 utterances) and the
// resampling in ivr-core: English WER clean 0.123 (16/130), G.711 0.115;
// Danish keyword hits clean 9/33 (0.273), G.711 8/33 (0.242): none of the
// three new Danish keywords ("engelsk", "dansk" twice) is heard, so the G.711
// floor moved from 0.23 to 0.18 to keep its margin of two keywords;
// detection English 22/22, Danish 1/23 (now at the utterance's own encoder
// context). How a call identifies the language (with its current
// language as the prior) is measured in language_id.rs.
// 2026-12-05, the decoder driven step by step (`[stt] decode = "steps"`):
// English WER clean 0.115 (15/130), G.711 0.123; Danish keyword hits clean
// 16/33, G.711 14/33 (hints as prompt, no answer check here: keyword hits
// count words the prompt makes whisper write too, see call_routing.rs for
// routing); detection English 22/22, Danish 1/23.
// The limits leave a margin of about two utterances.
/// English WER (16 kHz) must stay at or below this.
const MAX_EN_WER_CLEAN: f64 = 0.16;
/// English WER (G.711) must stay at or below this.
const MAX_EN_WER_G711: f64 = 0.16;
/// Danish keyword hit rate (16 kHz, hints passed) must stay at or above this.
const MIN_DA_KEYWORDS_CLEAN: f64 = 0.20;
/// Danish keyword hit rate (G.711, hints passed) must stay at or above this.
const MIN_DA_KEYWORDS_G711: f64 = 0.18;
/// Share of English utterances (16 kHz) that detection between da and en calls English.
const MIN_EN_DETECTED: f64 = 0.85;

#[derive(Default)]
struct Tally {
    word_errors: usize,
    words: usize,
    keyword_hits: usize,
    keywords: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn speech_test_set_accuracy_does_not_fall() {
    let (dir, set) = test_set();
    // One thread: ggml spins while it waits for its threads, which costs
    // dearly when the test shares the machine with the rest of `make test`.
    let stt = load(&stt_config(1));

    let mut detected = [(0usize, 0usize); 2]; // (right, total) for en, da
    let mut clean = (Tally::default(), Tally::default()); // (en, da)
    let mut g711 = (Tally::default(), Tally::default());
    for u in &set.utterance {
        // Detection only among the languages a flow allows (da, en).
        let req = SttRequest {
            audio: engine_pcm(&dir.join("wav").join(format!("{}.wav", u.id))),
            language: LanguageChoice::DetectAmong(vec![Lang::Da, Lang::En]),
            hints: Vec::new(),
            candidates: Vec::new(),
            cancel: Default::default(),
        };
        let got = stt.transcribe(req).await.unwrap().language;
        let d = &mut detected[usize::from(u.lang == Lang::Da)];
        d.0 += usize::from(got == u.lang);
        d.1 += 1;
        println!("det  {:28} detected {got}", u.id);
        for (version, tally) in [("wav", &mut clean), ("g711", &mut g711)] {
            let path = dir.join(version).join(format!("{}.wav", u.id));
            let pcm = engine_pcm(&path);
            // As a flow would: the language of the call, the question's words as hints.
            let hints = if u.lang == Lang::Da {
                u.keywords.clone()
            } else {
                Vec::new()
            };
            let t = stt
                .transcribe(SttRequest::new(pcm, u.lang).with_hints(hints))
                .await
                .unwrap();
            let text = t.text.expose();
            let (errors, words) = word_errors(&u.text, text);
            let hits = u
                .keywords
                .iter()
                .filter(|k| contains_keyword(text, k))
                .count();
            let tally = if u.lang == Lang::En {
                &mut tally.0
            } else {
                &mut tally.1
            };
            tally.word_errors += errors;
            tally.words += words;
            tally.keyword_hits += hits;
            tally.keywords += u.keywords.len();
            println!(
                "{version:4} {:28} conf {:.2} wer {errors}/{words} kw {hits}/{} | {text}",
                u.id,
                t.confidence,
                u.keywords.len()
            );
        }
    }
    let wer = |t: &Tally| t.word_errors as f64 / t.words.max(1) as f64;
    let kw = |t: &Tally| t.keyword_hits as f64 / t.keywords.max(1) as f64;
    println!(
        "English WER: clean {:.3} ({}/{} words), G.711 {:.3}; English keyword hits: clean {:.3}, G.711 {:.3}",
        wer(&clean.0),
        clean.0.word_errors,
        clean.0.words,
        wer(&g711.0),
        kw(&clean.0),
        kw(&g711.0)
    );
    println!(
        "Danish keyword hit rate (hints passed): clean {:.3} ({}/{}), G.711 {:.3} ({}/{}); Danish WER: clean {:.3}, G.711 {:.3}",
        kw(&clean.1),
        clean.1.keyword_hits,
        clean.1.keywords,
        kw(&g711.1),
        g711.1.keyword_hits,
        g711.1.keywords,
        wer(&clean.1),
        wer(&g711.1)
    );
    let share = |(right, total): (usize, usize)| right as f64 / total.max(1) as f64;
    println!(
        "Language detection among da/en (16 kHz): English {}/{}, Danish {}/{}",
        detected[0].0, detected[0].1, detected[1].0, detected[1].1
    );
    assert!(
        share(detected[0]) >= MIN_EN_DETECTED,
        "English detected {:.3} < {MIN_EN_DETECTED}",
        share(detected[0])
    );
    assert!(
        clean.0.words > 0 && clean.1.keywords > 0,
        "the test set needs English and Danish utterances"
    );
    assert!(
        wer(&clean.0) <= MAX_EN_WER_CLEAN,
        "English WER (clean) {:.3} > {MAX_EN_WER_CLEAN}",
        wer(&clean.0)
    );
    assert!(
        wer(&g711.0) <= MAX_EN_WER_G711,
        "English WER (G.711) {:.3} > {MAX_EN_WER_G711}",
        wer(&g711.0)
    );
    assert!(
        kw(&clean.1) >= MIN_DA_KEYWORDS_CLEAN,
        "Danish keyword hits (clean) {:.3} < {MIN_DA_KEYWORDS_CLEAN}",
        kw(&clean.1)
    );
    assert!(
        kw(&g711.1) >= MIN_DA_KEYWORDS_G711,
        "Danish keyword hits (G.711) {:.3} < {MIN_DA_KEYWORDS_G711}",
        kw(&g711.1)
    );
}
