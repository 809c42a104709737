//! The speech test set (tests/vectors/speech/, made by its generate.py) is what
//! the STT tests and thresholds rely on: every utterance in the manifest has its
//! 16 kHz file and its G.711 (8 kHz) file, in the formats the STT side reads.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use ivr_core::Lang;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    utterance: Vec<Utterance>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Utterance {
    id: String,
    lang: Lang,
    text: String,
    keywords: Vec<String>,
    voice: String,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/speech")
}

fn wav(path: &Path) -> (hound::WavSpec, u32) {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (r.spec(), r.duration())
}

#[test]
fn every_utterance_has_wideband_and_g711_audio() {
    let m: Manifest =
        toml::from_str(&std::fs::read_to_string(dir().join("utterances.toml")).unwrap()).unwrap();
    let mut ids = HashSet::new();
    for u in &m.utterance {
        assert!(ids.insert(u.id.clone()), "duplicate id {}", u.id);
        assert!(
            u.id.starts_with(u.lang.code()),
            "{}: id should start with its language",
            u.id
        );
        assert!(
            !u.text.trim().is_empty() && !u.keywords.is_empty(),
            "{}",
            u.id
        );
        for k in &u.keywords {
            assert!(
                u.text.to_lowercase().contains(k.as_str()),
                "{}: keyword `{k}` is not in the text",
                u.id
            );
        }
        assert!(
            matches!(u.voice.as_str(), "piper-en-joe" | "espeak-da" | "espeak-en"),
            "{}: voice {}",
            u.id,
            u.voice
        );
        let (w, n16) = wav(&dir().join("wav").join(format!("{}.wav", u.id)));
        assert_eq!(
            (w.channels, w.sample_rate, w.bits_per_sample),
            (1, 16_000, 16),
            "{}",
            u.id
        );
        let (g, n8) = wav(&dir().join("g711").join(format!("{}.wav", u.id)));
        assert_eq!(
            (g.channels, g.sample_rate, g.bits_per_sample),
            (1, 8_000, 16),
            "{}",
            u.id
        );
        // Same utterance: half the samples at half the rate.
        assert!(n16.abs_diff(2 * n8) <= 2, "{}: {n16} vs {n8}", u.id);
        let secs = f64::from(n16) / 16_000.0;
        assert!((0.4..8.0).contains(&secs), "{}: {secs} s", u.id);
    }
    for lang in Lang::ALL {
        let n = m.utterance.iter().filter(|u| u.lang == lang).count();
        assert!(n >= 15, "only {n} {lang} utterances");
    }
}
