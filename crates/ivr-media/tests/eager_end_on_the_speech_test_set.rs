//! The tentative end (`EndpointingConfig::eager_silence`) and the end silence on
//! the speech test set (`tests/vectors/speech/g711`, 40 single utterances as a
//! phone call delivers them, some with digits read in groups) and the noisy
//! recordings of `tests/data`.
//!
//! What it proves: with eager ends at 240 ms the endpointer finds
//! exactly the utterances it finds without it (the eager end never cuts,
//! adds or alters one), and every tentative is answered. It also prints, per end silence and eager
//! silence, how many utterances were split and how many tentatives had to be
//! thrown away: the figures behind the defaults (run with `--nocapture`).

use std::path::PathBuf;
use std::time::Duration;

use ivr_media::endpointing::{Endpointer, EndpointingConfig, EndpointingEvent};
use ivr_media::resample::Upsampler2x;
use ivr_media::vad::{Vad, VadConfig, FRAME_8K};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every 8 kHz file of the test set and of `tests/data`.
fn files() -> Vec<(String, Vec<i16>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("tests/vectors/speech/g711"))
        .expect("speech test set")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    paths.sort();
    for n in [
        "two_utterances_in_white_noise_8k",
        "utterance_in_brown_noise_8k",
        "click_and_cough_then_speech_8k",
    ] {
        paths.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/{n}.wav")));
    }
    paths
        .into_iter()
        .map(|p| {
            let mut r = hound::WavReader::open(&p).expect("wav");
            assert_eq!(r.spec().sample_rate, 8000, "{}", p.display());
            let pcm = r.samples::<i16>().map(|s| s.expect("sample")).collect();
            let name = p.file_stem().expect("name").to_string_lossy().into_owned();
            (name, pcm)
        })
        .collect()
}

#[derive(Default, Debug)]
struct Run {
    utterances: Vec<Vec<i16>>,
    tentatives: usize,
    resumed: usize,
    confirmed: usize,
}

fn endpoint(pcm: &[i16], cfg: EndpointingConfig) -> Run {
    let mut vad = Vad::new(VadConfig::default());
    let mut ep = Endpointer::new(cfg);
    let mut up = Upsampler2x::new();
    let mut run = Run::default();
    let mut open = false;
    // Half a second of line silence before, a second after (the call goes on).
    let mut all = vec![0i16; 4000];
    all.extend_from_slice(pcm);
    all.extend(std::iter::repeat_n(0i16, 8000));
    for frame in all.chunks_exact(FRAME_8K) {
        let mut wide = [0i16; 320];
        up.process(frame, &mut wide);
        match ep.push(&wide, vad.process(frame), false) {
            Some(EndpointingEvent::Tentative(_)) => {
                assert!(!open, "a tentative left unanswered");
                open = true;
                run.tentatives += 1;
            }
            Some(EndpointingEvent::Resumed) => {
                assert!(open, "resumed without a tentative");
                open = false;
                run.resumed += 1;
            }
            Some(EndpointingEvent::Utterance(p)) => {
                if std::mem::take(&mut open) {
                    run.confirmed += 1;
                }
                run.utterances.push(p.samples);
            }
            _ => {}
        }
    }
    assert!(!open, "a tentative left unanswered at the end");
    run
}

fn cfg(end_ms: u64, eager_ms: u64) -> EndpointingConfig {
    EndpointingConfig {
        end_silence: Duration::from_millis(end_ms),
        eager_silence: Duration::from_millis(eager_ms),
        ..Default::default()
    }
}

/// The engine's `[media] end_silence_ms` default and the `eager_stt_ms`
/// measured with the latency harness.
const ENGINE_END_MS: u64 = 400;
const ENGINE_EAGER_MS: u64 = 240;

#[test]
fn with_eager_ends_the_utterances_are_the_ones_found_without_them() {
    let files = files();
    let (mut tentatives, mut resumed) = (0, 0);
    for (name, pcm) in &files {
        let plain = endpoint(pcm, cfg(ENGINE_END_MS, 0));
        let eager = endpoint(pcm, cfg(ENGINE_END_MS, ENGINE_EAGER_MS));
        assert_eq!(eager.utterances, plain.utterances, "{name}");
        assert_eq!(eager.tentatives, eager.resumed + eager.confirmed, "{name}");
        tentatives += eager.tentatives;
        resumed += eager.resumed;
    }
    eprintln!(
        "{} files: {tentatives} tentative ends at {ENGINE_EAGER_MS} ms, {resumed} thrown away",
        files.len()
    );
}

/// Diagnostic (slow in a debug build):
/// `cargo test -p ivr-media --test eager_end_on_the_speech_test_set -- --ignored --nocapture`.
#[test]
#[ignore = "figures for choosing the defaults; asserts nothing"]
fn figures_per_end_silence_and_eager_silence() {
    let files = files();
    let expected: usize = files
        .iter()
        .map(|(n, _)| {
            if n.starts_with("two_utterances") {
                2
            } else {
                1
            }
        })
        .sum();
    eprintln!("end silence: utterances found (of {expected}), files split, files without one");
    for end in [250, 300, 350, 400] {
        let (mut split, mut missed) = (Vec::new(), Vec::new());
        let mut found = 0;
        for (name, pcm) in &files {
            let r = endpoint(pcm, cfg(end, 0));
            let want = if name.starts_with("two_utterances") {
                2
            } else {
                1
            };
            found += r.utterances.len();
            if r.utterances.len() > want {
                split.push(name.as_str());
            }
            if r.utterances.len() < want {
                missed.push(name.as_str());
            }
        }
        eprintln!("  {end} ms: {found} found; split {split:?}; too short, none {missed:?}");
    }
    eprintln!("eager silence (end {ENGINE_END_MS} ms): tentatives / thrown away / confirmed");
    for eager in [160, 200, 240, 280, 320] {
        let (mut t, mut r, mut c) = (0, 0, 0);
        for (_, pcm) in &files {
            let run = endpoint(pcm, cfg(ENGINE_END_MS, eager));
            t += run.tentatives;
            r += run.resumed;
            c += run.confirmed;
        }
        eprintln!("  {eager} ms: {t} / {r} / {c}");
    }
}
