//! The two end-of-turn models on real speech (needs `make setup`:
//! models/turn/ and libonnxruntime): Silero finds the speech of an utterance
//! of the speech test set and not the silence around it; Smart Turn gives
//! what pipecat's Python gives on the same audio, and scores whole English
//! sentences above the same sentences cut off mid-way.
#![allow(clippy::unwrap_used)] // reason: test code

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ivr_core::Pcm;
use ivr_media::vad::FrameVad;
use ivr_turn::{SileroConfig, SileroModel, SmartTurn};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ort_lib() -> PathBuf {
    let p = root().join("models/onnxruntime/libonnxruntime.so");
    assert!(p.is_file(), "{} missing: run `make setup`", p.display());
    p
}

fn model(name: &str) -> PathBuf {
    let p = root().join("models/turn").join(name);
    assert!(
        p.is_file(),
        "{} missing: run `make setup` (scripts/setup/50-turn-models.sh)",
        p.display()
    );
    p
}

fn wav(set: &str, id: &str) -> Pcm {
    let p = root()
        .join("tests/vectors/speech")
        .join(set)
        .join(format!("{id}.wav"));
    let mut r = hound::WavReader::open(&p).unwrap();
    let rate = r.spec().sample_rate;
    Pcm::new(rate, r.samples::<i16>().map(Result::unwrap).collect())
}

#[test]
fn silero_hears_the_utterance_and_not_the_silence_around_it() {
    let m = Arc::new(SileroModel::load(&model("silero_vad.onnx"), &ort_lib(), 1).unwrap());
    let mut vad = m.vad(SileroConfig::default());
    let speech = wav("g711", "da-boligstoette-01");
    // One second of line hiss, the utterance, one second of hiss.
    let mut seed = 7u32;
    let mut hiss = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 61) as i16 - 30
    };
    let mut audio: Vec<i16> = (0..8000).map(|_| hiss()).collect();
    let start = audio.len();
    audio.extend(speech.samples.iter().map(|s| s.saturating_add(hiss())));
    let end = audio.len();
    audio.extend((0..8000).map(|_| hiss()));
    let verdicts: Vec<bool> = audio.chunks(160).map(|f| vad.process(f).speech).collect();
    let frames = |a: usize, b: usize| &verdicts[a / 160..b / 160];
    let before = frames(0, start).iter().filter(|s| **s).count();
    let inside = frames(start + 1600, end - 1600)
        .iter()
        .filter(|s| **s)
        .count();
    let inside_n = frames(start + 1600, end - 1600).len();
    // Half a second after the speech (the model's tail), nothing.
    let after = frames(end + 4000, audio.len())
        .iter()
        .filter(|s| **s)
        .count();
    assert_eq!(before, 0, "speech heard in the hiss before");
    assert_eq!(after, 0, "speech heard in the hiss after");
    assert!(
        inside * 10 >= inside_n * 7,
        "{inside} of {inside_n} frames of speech"
    );
}

/// pipecat-ai 1.14 (`LocalSmartTurnAnalyzerV3._predict_endpoint`, numpy
/// features, onnxruntime 1.32) on the 16 kHz files: whole, and the first 55 %.
/// Taken on an Intel CPU with VNNI (AVX-512). The model is int8, and on x86
/// without VNNI onnxruntime's u8 x s8 kernels (AVX2's vpmaddubsw) saturate:
/// on an AMD CPU with AVX2 only, en-passport-01 whole scored 0.634 against
/// 0.88 and en-date-01 cut 0.839 against 0.44. So the scores are held to the
/// reference only on a CPU with VNNI, where a wrong feature pipeline is what
/// would move them; elsewhere, a cut sentence must still score below its
/// whole one. Smart Turn is off by default (`[turn] smart_turn_model`), and
/// this is one more reason: docs/turn-detection.md.
const TOLERANCE: f32 = 0.03;

/// Whether onnxruntime's int8 kernels here are the reference's (VNNI).
fn int8_as_the_reference() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
const PYTHON: &[(&str, f32, f32)] = &[
    ("da-boligstoette-01", 0.95, 0.70),
    ("en-date-01", 0.96, 0.44),
    ("en-passport-01", 0.88, 0.03),
    ("en-repeat-01", 0.97, 0.05),
];

fn first(p: &Pcm, frac: f64) -> Pcm {
    let n = (p.samples.len() as f64 * frac) as usize;
    Pcm::new(p.sample_rate, p.samples[..n].to_vec())
}

#[test]
fn smart_turn_gives_what_the_python_reference_gives() {
    let st = SmartTurn::load(&model("smart-turn-v3.2-cpu.onnx"), &ort_lib(), 1).unwrap();
    for (id, whole, cut) in PYTHON {
        let a = wav("wav", id);
        let got_whole = st.predict(&a).unwrap();
        let got_cut = st.predict(&first(&a, 0.55)).unwrap();
        eprintln!("{id}: whole {got_whole:.3} (python {whole}), cut {got_cut:.3} (python {cut})");
        if int8_as_the_reference() {
            assert!(
                (got_whole - whole).abs() < TOLERANCE,
                "{id} whole: {got_whole} vs {whole}"
            );
            assert!(
                (got_cut - cut).abs() < TOLERANCE,
                "{id} cut: {got_cut} vs {cut}"
            );
        }
        assert!(
            got_cut < got_whole,
            "{id}: cut {got_cut} (python {cut}) not below whole {got_whole}"
        );
    }
}

#[test]
fn smart_turn_scores_whole_english_sentences_above_cut_ones() {
    let st = SmartTurn::load(&model("smart-turn-v3.2-cpu.onnx"), &ort_lib(), 1).unwrap();
    let ids = [
        "en-driving-licence-01",
        "en-moving-01",
        "en-passport-01",
        "en-pension-01",
        "en-sick-pay-01",
        "en-speak-to-someone-01",
        "en-phone-number-01",
        "en-repeat-01",
    ];
    let (mut whole, mut cut) = (0.0, 0.0);
    for id in ids {
        // The G.711 file, at 8 kHz, as a call delivers it (resampled inside).
        let a = wav("g711", id);
        whole += st.predict(&a).unwrap();
        cut += st.predict(&first(&a, 0.55)).unwrap();
    }
    let n = ids.len() as f32;
    assert!(
        whole / n > 0.7 && cut / n < 0.5,
        "mean whole {:.2}, mean cut {:.2}",
        whole / n,
        cut / n
    );
}
