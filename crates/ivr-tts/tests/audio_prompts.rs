//! Recorded prompts in the formats municipalities ship (WAV, MP3, FLAC, Ogg
//! Vorbis) decode to mono PCM at the engine's rate, keeping length and pitch.
//! The files (tests/data/, made by tests/data/generate.sh) are each a 1.0 s
//! 440 Hz tone.

use std::path::{Path, PathBuf};

use ivr_core::Pcm;
use ivr_tts::{decode_file, load_prompt, TtsError};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Goertzel power at `hz`.
fn power(x: &[i16], rate: u32, hz: f64) -> f64 {
    let w = hz * std::f64::consts::TAU / f64::from(rate);
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for v in x {
        let s0 = f64::from(*v) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
}

fn assert_is_the_tone(p: &Pcm, rate: u32, name: &str) {
    assert_eq!(p.sample_rate, rate, "{name}");
    let secs = p.duration().as_secs_f64();
    // MP3 adds encoder delay and padding (about 50 ms).
    assert!((0.97..1.08).contains(&secs), "{name}: {secs} s");
    let p440 = power(&p.samples, rate, 440.0);
    for other in [220.0, 660.0, 880.0] {
        assert!(
            p440 > 50.0 * power(&p.samples, rate, other),
            "{name}: 440 Hz is not dominant over {other} Hz"
        );
    }
    let peak = p
        .samples
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    // Half scale in, about half scale out (no clipping, no silent channel averaging).
    assert!((12_000..20_000).contains(&peak), "{name}: peak {peak}");
}

#[test]
fn every_prompt_format_plays_at_16k() {
    for name in [
        "prompt-stereo-44k1-s16.wav",
        "prompt-8k-alaw.wav",
        "prompt-48k.flac",
        "prompt-44k1.mp3",
        "prompt-stereo-22k05.ogg",
    ] {
        let p = load_prompt(&data(name), 16_000).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_is_the_tone(&p, 16_000, name);
    }
}

#[test]
fn prompts_convert_to_8k_for_narrowband_calls() {
    let p = load_prompt(&data("prompt-48k.flac"), 8_000).unwrap();
    assert_is_the_tone(&p, 8_000, "prompt-48k.flac");
}

#[test]
fn stereo_is_mixed_down_to_mono_at_its_own_rate() {
    let p = decode_file(&data("prompt-stereo-44k1-s16.wav")).unwrap();
    assert_eq!((p.sample_rate, p.samples.len()), (44_100, 44_100));
}

#[test]
fn a_file_that_is_not_audio_is_a_decode_error_naming_it() {
    let e = load_prompt(&data("not-audio.mp3"), 16_000).unwrap_err();
    assert!(matches!(e, TtsError::AudioDecode { .. }), "{e:?}");
    assert!(e.to_string().contains("not-audio.mp3"), "{e}");
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let e = load_prompt(&data("no-such-greeting.wav"), 16_000).unwrap_err();
    assert!(matches!(e, TtsError::AudioIo { .. }), "{e:?}");
    assert!(e.to_string().contains("no-such-greeting.wav"), "{e}");
}

/// A crisis announcement plays on every call of a peak: its file is decoded
/// once and every call shares the samples, until the file is replaced.
#[test]
fn a_recorded_prompt_is_decoded_once_and_again_when_the_file_is_replaced() {
    use ivr_tts::{Config, TextToSpeech, Tts};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("announcement.wav");
    std::fs::copy(data("prompt-8k-alaw.wav"), &file).unwrap();
    let tts = Tts::new(Config {
        voices_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../voices"),
        ..Config::default()
    })
    .unwrap();
    let first = tts.prompt_file(&file).unwrap();
    let again = tts.prompt_file(&file).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "decoded once, shared");
    assert_is_the_tone(&first, 16_000, "announcement.wav");
    // A new recording at the same path (another length) is read again.
    std::fs::copy(data("prompt-stereo-44k1-s16.wav"), &file).unwrap();
    let replaced = tts.prompt_file(&file).unwrap();
    assert!(!Arc::ptr_eq(&first, &replaced));
    assert_is_the_tone(&replaced, 16_000, "replaced announcement.wav");
}
