//! Text to speech: the [`TextToSpeech`] interface, piper and espeak-ng voices,
//! audio-file prompts, resampling and the prompt cache.
//!
//! ```text
//! text --(voice for the language, from config)--> VoiceRegistry (voices/*.toml)
//!      --> piper (espeak-ng phonemes -> ONNX model) | espeak-ng (Danish, in process)
//!      --> native PCM (22,050 Hz) --> rubato --> output rate (16 or 8 kHz)
//!      --> PromptCache (memory LRU + disk WAVs keyed by text, voice, rate)
//! ```
//!
//! The engine holds one [`Tts`] for the process (as `Arc<dyn TextToSpeech>`)
//! and calls it from a blocking worker (synthesis is CPU work):
//! `speak` on a `dyn TextToSpeech` /
//! [`SpeechStream::speech`] for a flow's [`Speech`], sentence by sentence so
//! the first plays while the rest is made, [`TextToSpeech::prompt_file`] for
//! recorded prompts.
//!
//! Personal data never reaches the cache: [`Speech::Personal`] goes only
//! through [`TextToSpeech::synthesize_personal`]; [`Speech::Static`] through
//! the cached [`TextToSpeech::synthesize`]. Static prompts are pre-rendered
//! sentence by sentence ([`TextToSpeech::prerender_lang`]), the same pieces
//! [`SpeechStream`] asks for, so the first caller waits for nothing.

mod audio;
mod cache;
mod config;
pub mod doctor;
mod error;
mod espeak;
mod normalise;
mod piper;
mod registry;
mod scripted;
mod sentences;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ivr_core::{Lang, Pcm, Pii, Speech};

pub use audio::{decode_file, load_prompt, write_wav};
pub use cache::{CacheKey, CacheStats, PromptCache};
pub use config::{CacheConfig, Config, LangVoices};
pub use error::TtsError;
pub use espeak::{find_data_dir as find_espeak_data, ESPEAK_RATE};
/// Whole-clip sample-rate conversion (the workspace's one clip resampler).
pub use ivr_core::resample::resample;
pub use normalise::normalise_danish;
pub use piper::ensure_onnxruntime;
pub use registry::{
    EngineKind, EngineSpec, FileEntry, Source, VoiceManifest, VoiceRegistry, VoiceSpec,
    DEFAULT_ESPEAK_WPM,
};
pub use scripted::{ScriptedTts, SynthesisCounts};
pub use sentences::split_sentences;

/// Speech out: what the engine calls to turn a flow's `Say` into audio.
pub trait TextToSpeech: Send + Sync {
    /// The rate of every [`Pcm`] this returns.
    fn output_rate(&self) -> u32;

    /// The voice id configured for a language.
    fn voice_for(&self, lang: Lang) -> Result<String, TtsError>;

    /// Synthesises `text` with voice `voice` at [`Self::output_rate`]. Cached:
    /// the same text and voice cost nothing the second time.
    fn synthesize(&self, text: &str, voice: &str) -> Result<Arc<Pcm>, TtsError>;

    /// Synthesises text holding personal data (a name, a CPR number, an address
    /// read back to the caller): never cached, in memory or on disk, so it does not
    /// outlive the call in `var/tts-cache/`.
    fn synthesize_personal(&self, text: &Pii<String>, voice: &str) -> Result<Arc<Pcm>, TtsError>;

    /// A recorded prompt (WAV, MP3, FLAC, Ogg Vorbis), mono at
    /// [`Self::output_rate`].
    fn prompt_file(&self, path: &Path) -> Result<Arc<Pcm>, TtsError>;

    /// [`Self::synthesize`] with the language's configured voice.
    fn synthesize_lang(&self, text: &str, lang: Lang) -> Result<Arc<Pcm>, TtsError> {
        let voice = self.voice_for(lang)?;
        self.synthesize(text, &voice)
    }

    /// Puts a static prompt into the cache the way [`SpeechStream`] will ask
    /// for it (sentence by sentence, with the language's voice).
    fn prerender_lang(&self, text: &str, lang: Lang) -> Result<(), TtsError> {
        let voice = self.voice_for(lang)?;
        for s in split_sentences(text) {
            self.synthesize(s, &voice)?;
        }
        Ok(())
    }
}

impl<'t> dyn TextToSpeech + 't {
    /// Speaks a flow's [`Speech`] with the language's voice, sentence by
    /// sentence: [`Speech::Static`] through the cache, [`Speech::Personal`]
    /// only through [`TextToSpeech::synthesize_personal`].
    pub fn speak(&self, speech: &Speech, lang: Lang) -> Result<SpeechStream<'_>, TtsError> {
        SpeechStream::speech(self, speech, lang)
    }
}

/// A long text spoken sentence by sentence: each `next()` synthesises one more
/// sentence, so the caller can play the first while the rest is made, and stop
/// (drop the stream) on barge-in without synthesising the remainder.
pub struct SpeechStream<'a> {
    tts: &'a dyn TextToSpeech,
    voice: String,
    sentences: std::vec::IntoIter<String>,
    personal: bool,
}

impl<'a> SpeechStream<'a> {
    /// Splits `text` into sentences ([`split_sentences`]) to be spoken by `voice`.
    pub fn new(tts: &'a dyn TextToSpeech, text: &str, voice: &str) -> Self {
        let sentences: Vec<String> = split_sentences(text)
            .into_iter()
            .map(str::to_string)
            .collect();
        SpeechStream {
            tts,
            voice: voice.to_string(),
            sentences: sentences.into_iter(),
            personal: false,
        }
    }

    /// As [`SpeechStream::new`] for text holding personal data: every sentence goes
    /// through [`TextToSpeech::synthesize_personal`] (never cached).
    ///
    /// Such a reply cannot be pre-rendered, so the caller waits for the
    /// synthesis of its first piece: the first sentence is spoken in two
    /// pieces, its first clause and the rest ([`first_clause`]), so the
    /// first audio comes after a clause's synthesis, not a sentence's
    /// ("I heard zero one, zero two, ...": piper took ~430 ms for the whole
    /// sentence on the latency harness's loaded machine).
    pub fn personal(tts: &'a dyn TextToSpeech, text: &Pii<String>, voice: &str) -> Self {
        let mut s = Self::new(tts, text.expose(), voice);
        s.personal = true;
        let mut pieces: Vec<String> = s.sentences.collect();
        if let Some((a, b)) = pieces.first().and_then(|f| first_clause(f)) {
            pieces.splice(0..1, [a, b]);
        }
        s.sentences = pieces.into_iter();
        s
    }

    /// A flow's [`Speech`] in the language's voice: [`Speech::Static`] as
    /// [`SpeechStream::new`] (cached), [`Speech::Personal`] as
    /// [`SpeechStream::personal`] (never cached).
    pub fn speech(
        tts: &'a dyn TextToSpeech,
        speech: &Speech,
        lang: Lang,
    ) -> Result<Self, TtsError> {
        let voice = tts.voice_for(lang)?;
        Ok(match speech {
            Speech::Static(text) => Self::new(tts, text, &voice),
            Speech::Personal(text) => Self::personal(tts, text, &voice),
        })
    }

    /// True when the sentences go through the non-caching path.
    pub fn is_personal(&self) -> bool {
        self.personal
    }

    /// Sentences not yet synthesised.
    pub fn remaining(&self) -> usize {
        self.sentences.len()
    }
}

/// Words each side of a clause cut, at least: a shorter piece is not worth
/// a synthesis of its own (and sounds clipped).
const MIN_CLAUSE_WORDS: usize = 2;

/// `sentence` cut after its first comma that is followed by a space (not a
/// decimal comma: "2,5"), when both pieces have at least
/// [`MIN_CLAUSE_WORDS`] words: the first keeps its comma, so the voice
/// gives it a continuing intonation.
fn first_clause(sentence: &str) -> Option<(String, String)> {
    let mut from = 0;
    while let Some(i) = sentence[from..].find(", ").map(|i| from + i) {
        let (a, b) = (sentence[..=i].trim(), sentence[i + 1..].trim());
        if a.split_whitespace().count() >= MIN_CLAUSE_WORDS {
            return (b.split_whitespace().count() >= MIN_CLAUSE_WORDS)
                .then(|| (a.to_string(), b.to_string()));
        }
        from = i + 2;
    }
    None
}

impl Iterator for SpeechStream<'_> {
    type Item = Result<Arc<Pcm>, TtsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.sentences.next()?;
        if self.personal {
            Some(self.tts.synthesize_personal(&Pii::from(s), &self.voice))
        } else {
            Some(self.tts.synthesize(&s, &self.voice))
        }
    }
}

/// A voice ready to speak.
enum Loaded {
    Piper(Box<piper::PiperVoice>),
    Espeak { voice: String, rate_wpm: u32 },
}

/// The text-to-speech engine: registry, loaded voices, cache.
pub struct Tts {
    config: Config,
    registry: VoiceRegistry,
    espeak_data: Option<PathBuf>,
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
    cache: PromptCache,
    /// Recorded prompts decoded once (a crisis announcement plays on every
    /// call): by path, with the file's modification time and length, so a
    /// replaced file is read again.
    files: Mutex<HashMap<PathBuf, DecodedFile>>,
}

/// A decoded audio file and what it was decoded from.
type DecodedFile = (Option<std::time::SystemTime>, u64, Arc<Pcm>);

/// Recorded prompts kept decoded at most (beyond, half of them are dropped).
const MAX_FILES: usize = 256;

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts")
            .field(
                "voices",
                &self
                    .registry
                    .iter()
                    .map(|v| v.id.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("output_rate", &self.config.output_rate)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Tts {
    /// Reads the voice registry from `config.voices_dir` and opens the cache.
    /// Fails when a configured voice is not in the registry. Voices load on first
    /// use ([`Tts::load_voice`] loads one ahead).
    pub fn new(config: Config) -> Result<Self, TtsError> {
        let registry = VoiceRegistry::load_dir(&config.voices_dir)?;
        Self::with_registry(config, registry)
    }

    /// As [`Tts::new`] with a registry made elsewhere.
    pub fn with_registry(config: Config, registry: VoiceRegistry) -> Result<Self, TtsError> {
        for lang in Lang::ALL {
            if let Some(id) = config.voice.get(lang) {
                if registry.get(id).is_none() {
                    return Err(TtsError::UnknownVoice(id.to_string()));
                }
            }
        }
        if !matches!(
            config.output_rate,
            8_000 | 16_000 | 22_050 | 24_000 | 32_000 | 44_100 | 48_000
        ) {
            return Err(TtsError::UnsupportedOutputRate(config.output_rate));
        }
        let disk_budget = config.cache.disk_max_mb.saturating_mul(1024 * 1024);
        let cache = PromptCache::new(
            config.cache.memory_entries,
            config.cache.dir.as_deref().map(|d| (d, disk_budget)),
        )?;
        let espeak_data = espeak::find_data_dir(config.espeak_data.as_deref());
        Ok(Tts {
            config,
            registry,
            espeak_data,
            loaded: Mutex::new(HashMap::new()),
            cache,
            files: Mutex::new(HashMap::new()),
        })
    }

    /// The voices found.
    pub fn registry(&self) -> &VoiceRegistry {
        &self.registry
    }

    /// The prompt cache (for its statistics).
    pub fn cache(&self) -> &PromptCache {
        &self.cache
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The espeak-ng data folder in use, if one was found.
    pub fn espeak_data(&self) -> Option<&Path> {
        self.espeak_data.as_deref()
    }

    /// Loads a voice now (piper: the ONNX model) instead of on its first sentence.
    pub fn load_voice(&self, id: &str) -> Result<(), TtsError> {
        self.loaded(id).map(|_| ())
    }

    fn loaded(&self, id: &str) -> Result<(Arc<Loaded>, &VoiceSpec), TtsError> {
        let spec = self
            .registry
            .get(id)
            .ok_or_else(|| TtsError::UnknownVoice(id.to_string()))?;
        if let Some(l) = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok((l.clone(), spec));
        }
        let espeak_data = self.espeak_data.clone().ok_or_else(|| TtsError::VoiceUnavailable {
            voice: id.to_string(),
            reason: "espeak-ng data not found: apt-get install espeak-ng-data, or set tts.espeak_data".into(),
        })?;
        // Loading a piper model takes a while: not under the lock. Two calls racing
        // load it twice and one copy is kept.
        let l = Arc::new(match &spec.engine {
            EngineSpec::Piper {
                model,
                config,
                speaker,
            } => Loaded::Piper(Box::new(piper::PiperVoice::load(
                id,
                model,
                config,
                *speaker,
                &self.config,
                &espeak_data,
            )?)),
            EngineSpec::Espeak { voice, rate_wpm } => {
                // Initialise espeak-ng and check the voice exists now rather than mid-call.
                espeak::with_espeak(&espeak_data, |e| e.synthesize(voice, *rate_wpm, "")).map_err(
                    |e| TtsError::VoiceUnavailable {
                        voice: id.to_string(),
                        reason: format!("{e} (espeak-ng data {})", espeak_data.display()),
                    },
                )?;
                Loaded::Espeak {
                    voice: voice.clone(),
                    rate_wpm: *rate_wpm,
                }
            }
        });
        let mut map = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let l = map.entry(id.to_string()).or_insert(l).clone();
        Ok((l, spec))
    }

    /// Synthesises at the voice's own rate, without the cache (benches, `ivr say --native`).
    pub fn synthesize_native(&self, text: &str, voice: &str) -> Result<Pcm, TtsError> {
        let (l, spec) = self.loaded(voice)?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Pcm::new(spec.sample_rate, Vec::new()));
        }
        let normalised;
        let text = if spec.language == Lang::Da {
            normalised = normalise_danish(text);
            normalised.as_str()
        } else {
            text
        };
        let mut pcm = self.synthesize_loaded(&l, text)?;
        if spec.gain != 1.0 {
            for s in &mut pcm.samples {
                *s = (f32::from(*s) * spec.gain).round().clamp(-32768.0, 32767.0) as i16;
            }
        }
        Ok(pcm)
    }

    fn synthesize_loaded(&self, l: &Loaded, text: &str) -> Result<Pcm, TtsError> {
        match l {
            Loaded::Piper(p) => {
                let pcm = p.synthesize(text)?;
                debug_assert_eq!(pcm.sample_rate, p.sample_rate());
                Ok(pcm)
            }
            Loaded::Espeak { voice, rate_wpm } => {
                let data = self.espeak_data.as_deref().unwrap_or(Path::new("/"));
                let samples = espeak::with_espeak(data, |e| e.synthesize(voice, *rate_wpm, text))?;
                Ok(Pcm::new(ESPEAK_RATE, samples))
            }
        }
    }

    /// Synthesises prompts ahead (static prompts of the flows at start-up), so
    /// their first caller waits for nothing; with a disk cache a restart costs
    /// nothing either. Each prompt is cached sentence by sentence, as
    /// [`SpeechStream`] asks for it. Returns how many sentences were
    /// synthesised now (not already cached).
    pub fn prerender<'a>(
        &self,
        prompts: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<usize, TtsError> {
        let before = self.cache.stats().misses;
        for (text, voice) in prompts {
            for s in split_sentences(text) {
                self.synthesize(s, voice)?;
            }
        }
        Ok((self.cache.stats().misses - before) as usize)
    }

    /// onnxruntime sessions of a loaded piper voice (0 for espeak-ng voices and
    /// voices not loaded yet).
    pub fn piper_sessions(&self, id: &str) -> usize {
        match self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|l| &**l)
        {
            Some(Loaded::Piper(p)) => p.sessions(),
            _ => 0,
        }
    }
}

impl TextToSpeech for Tts {
    fn output_rate(&self) -> u32 {
        self.config.output_rate
    }

    fn voice_for(&self, lang: Lang) -> Result<String, TtsError> {
        self.config
            .voice
            .get(lang)
            .map(str::to_string)
            .ok_or(TtsError::NoVoiceForLanguage(lang))
    }

    fn synthesize(&self, text: &str, voice: &str) -> Result<Arc<Pcm>, TtsError> {
        let spec = self
            .registry
            .get(voice)
            .ok_or_else(|| TtsError::UnknownVoice(voice.to_string()))?;
        let text = text.trim();
        let rate = self.config.output_rate;
        let key = CacheKey::new(&spec.id, &spec.fingerprint, rate, text);
        if let Some(pcm) = self.cache.get(&key) {
            return Ok(pcm);
        }
        let pcm = Arc::new(resample(&self.synthesize_native(text, voice)?, rate)?);
        if let Err(e) = self.cache.put(&key, pcm.clone()) {
            // The audio is good; only the disk copy failed. The text may be personal: not logged.
            tracing::warn!(voice, error = %e, "prompt cache write failed");
        }
        Ok(pcm)
    }

    fn synthesize_personal(&self, text: &Pii<String>, voice: &str) -> Result<Arc<Pcm>, TtsError> {
        let native = self.synthesize_native(text.expose(), voice)?;
        Ok(Arc::new(resample(&native, self.config.output_rate)?))
    }

    /// Decoded once per file (and again when the file changes); every call
    /// playing it shares the same samples.
    fn prompt_file(&self, path: &Path) -> Result<Arc<Pcm>, TtsError> {
        let meta = std::fs::metadata(path).ok();
        let stamp = (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map_or(0, std::fs::Metadata::len),
        );
        let hit = self
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            .filter(|(t, n, _)| (*t, *n) == stamp)
            .map(|(_, _, pcm)| pcm.clone());
        if let Some(pcm) = hit {
            return Ok(pcm);
        }
        let pcm = Arc::new(load_prompt(path, self.config.output_rate)?);
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if files.len() >= MAX_FILES {
            let mut keys: Vec<PathBuf> = files.keys().cloned().collect();
            keys.sort();
            for k in keys.iter().take(MAX_FILES / 2) {
                files.remove(k);
            }
        }
        files.insert(path.to_path_buf(), (stamp.0, stamp.1, pcm.clone()));
        Ok(pcm)
    }
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    #[test]
    fn a_personal_reply_is_spoken_first_clause_first() {
        let tts = ScriptedTts::new(8_000);
        let text = Pii::new(
            "I heard zero one, zero two, zero three, one two, three four. Thank you for calling."
                .to_string(),
        );
        let n = SpeechStream::personal(&tts, &text, "scripted-en")
            .map(|r| r.map(|_| ()))
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_default()
            .len();
        let said: Vec<String> = tts.said().into_iter().map(|(_, t)| t).collect();
        assert_eq!(n, 3);
        assert_eq!(
            said,
            [
                "I heard zero one,",
                "zero two, zero three, one two, three four.",
                "Thank you for calling."
            ]
        );
    }

    #[test]
    fn static_replies_and_short_clauses_are_not_cut() {
        // Static prompts are pre-rendered sentence by sentence: unchanged.
        let tts = ScriptedTts::new(8_000);
        let s = SpeechStream::new(&tts, "Hej, og velkommen til Nordby Kommune.", "scripted-da");
        assert_eq!(s.remaining(), 1);
        // A one-word clause ("Ja,") or a decimal comma is no cut.
        assert_eq!(first_clause("Ja, det er rigtigt."), None);
        assert_eq!(first_clause("Det koster 2,5 procent i alt."), None);
        assert_eq!(
            first_clause("Nej tak, det er fint, farvel."),
            Some(("Nej tak,".to_string(), "det er fint, farvel.".to_string()))
        );
        assert_eq!(first_clause("Tiden er tirsdag den 3. december."), None);
    }
}
