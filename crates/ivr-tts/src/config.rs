//! The `[tts]` section of the engine's configuration.
//!
//! ```toml
//! [tts]
//! voices_dir = "voices"
//! onnxruntime = "models/onnxruntime/libonnxruntime.so"
//! # espeak_data = "/usr/lib/x86_64-linux-gnu/espeak-ng-data"
//! output_rate = 16000
//! piper_threads = 1
//! piper_sessions = 1
//!
//! [tts.voice]
//! da = "espeak-da"
//! en = "piper-en-joe"
//!
//! [tts.cache]
//! dir = "var/tts-cache"
//! memory_entries = 512
//! disk_max_mb = 256
//! ```

use std::path::PathBuf;

use ivr_core::Lang;
use serde::Deserialize;

/// Text-to-speech settings. Every key has a default; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder of voice manifests (`*.toml`) and their files.
    pub voices_dir: PathBuf,
    /// The onnxruntime shared library piper voices run on (fetched by `make setup`).
    pub onnxruntime: PathBuf,
    /// espeak-ng's data folder (the one holding `phontab`); unset: found
    /// automatically (`PIPER_ESPEAKNG_DATA_DIRECTORY`, then the usual install places).
    pub espeak_data: Option<PathBuf>,
    /// The voice each language speaks with.
    pub voice: LangVoices,
    /// Rate of the PCM handed to the engine: 16000 (wideband, the engine's rate) or
    /// 8000 (G.711 narrowband).
    pub output_rate: u32,
    /// onnxruntime threads per piper synthesis. 1 keeps calls from starving each
    /// other on small machines; raise it for lower latency on idle big ones.
    pub piper_threads: usize,
    /// onnxruntime sessions per piper voice: how many calls can synthesise with
    /// the same voice at once; more wait for a free one. Each costs the model's
    /// memory again (about 100 MB for a medium voice).
    pub piper_sessions: usize,
    /// The prompt cache.
    pub cache: CacheConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            voices_dir: PathBuf::from("voices"),
            onnxruntime: PathBuf::from("models/onnxruntime/libonnxruntime.so"),
            espeak_data: None,
            voice: LangVoices::default(),
            output_rate: ivr_core::ENGINE_RATE,
            piper_threads: 1,
            piper_sessions: 1,
            cache: CacheConfig::default(),
        }
    }
}

/// Voice id per language (ids from `voices/*.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LangVoices {
    /// Danish; default `espeak-da` (no Danish piper voice ships; an operator can
    /// drop in `da_DK-talesyntese-medium` and select it here).
    pub da: String,
    /// English; default `piper-en-joe`.
    pub en: String,
}

impl Default for LangVoices {
    fn default() -> Self {
        LangVoices {
            da: "espeak-da".into(),
            en: "piper-en-joe".into(),
        }
    }
}

impl LangVoices {
    /// The voice id configured for a language.
    pub fn get(&self, lang: Lang) -> Option<&str> {
        match lang {
            Lang::Da => Some(&self.da),
            Lang::En => Some(&self.en),
            #[allow(unreachable_patterns)]
            // reason: Lang is non_exhaustive; a new language has no default voice
            _ => None,
        }
    }
}

/// The prompt cache: synthesised audio keyed by text, voice and rate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Folder for the disk cache; unset: memory only (a restart re-synthesises).
    pub dir: Option<PathBuf>,
    /// Prompts kept in memory; least recently used go first. 0 disables the memory cache.
    pub memory_entries: usize,
    /// Disk budget in MiB; oldest-used files are deleted beyond it.
    pub disk_max_mb: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            dir: Some(PathBuf::from("var/tts-cache")),
            memory_entries: 512,
            disk_max_mb: 256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_the_defaults() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.voice.get(Lang::Da), Some("espeak-da"));
        assert_eq!(c.voice.get(Lang::En), Some("piper-en-joe"));
        assert_eq!(c.output_rate, 16_000);
    }

    #[test]
    fn danish_piper_voice_can_be_selected() {
        let c: Config = toml::from_str("[voice]\nda = \"piper-da-talesyntese\"\n").unwrap();
        assert_eq!(c.voice.get(Lang::Da), Some("piper-da-talesyntese"));
        assert_eq!(c.voice.get(Lang::En), Some("piper-en-joe"));
    }

    #[test]
    fn shipped_default_toml_tts_section_is_valid_and_is_the_default() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        let all: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let tts = all
            .get("tts")
            .expect("[tts] in config/default.toml")
            .clone();
        let c: Config = tts.try_into().unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = toml::from_str::<Config>("[voice]\nde = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("de"), "{e}");
        assert!(toml::from_str::<Config>("voice_dir = \"v\"\n").is_err());
    }
}
