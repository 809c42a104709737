//! A text-to-speech double for tests of other crates (engine, media): no model,
//! deterministic audio whose length follows the text, and a log of what was said.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ivr_core::{Lang, Pcm, Pii};

use crate::{load_prompt, TextToSpeech, TtsError};

/// Speaks every text as a 440 Hz tone of 60 ms per character (at least 100 ms),
/// at a fixed rate. Voices are `scripted-da` and `scripted-en`; any other voice is
/// [`TtsError::UnknownVoice`]. Records each `(voice, text)` it was asked for and
/// counts syntheses through the cached and the personal (non-caching) path.
/// Recorded prompts are decoded from the file, as [`crate::Tts`] does.
#[derive(Debug)]
pub struct ScriptedTts {
    rate: u32,
    said: Mutex<Vec<(String, String)>>,
    cached: AtomicUsize,
    personal: AtomicUsize,
}

/// How many sentences a [`ScriptedTts`] synthesised through each path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SynthesisCounts {
    /// Through [`TextToSpeech::synthesize`] (the cached path).
    pub cached: usize,
    /// Through [`TextToSpeech::synthesize_personal`] (never cached).
    pub personal: usize,
}

impl ScriptedTts {
    /// Produces audio at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        ScriptedTts {
            rate,
            said: Mutex::new(Vec::new()),
            cached: AtomicUsize::new(0),
            personal: AtomicUsize::new(0),
        }
    }

    /// Every `(voice, text)` synthesised so far, in order, by either path.
    pub fn said(&self) -> Vec<(String, String)> {
        self.said.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Syntheses so far through the cached and the personal path.
    pub fn counts(&self) -> SynthesisCounts {
        SynthesisCounts {
            cached: self.cached.load(Ordering::Relaxed),
            personal: self.personal.load(Ordering::Relaxed),
        }
    }

    /// The audio length for a text, as this double makes it.
    pub fn samples_for(&self, text: &str) -> usize {
        let ms = (text.trim().chars().count() as u64 * 60).max(100);
        (ms * u64::from(self.rate) / 1000) as usize
    }

    fn tone(&self, text: &str, voice: &str) -> Result<Arc<Pcm>, TtsError> {
        if !matches!(voice, "scripted-da" | "scripted-en") {
            return Err(TtsError::UnknownVoice(voice.to_string()));
        }
        self.said
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((voice.to_string(), text.to_string()));
        if text.trim().is_empty() {
            return Ok(Arc::new(Pcm::new(self.rate, Vec::new())));
        }
        let n = self.samples_for(text);
        let w = 440.0 * std::f64::consts::TAU / f64::from(self.rate);
        Ok(Arc::new(Pcm::new(
            self.rate,
            (0..n)
                .map(|i| ((i as f64 * w).sin() * 8000.0) as i16)
                .collect(),
        )))
    }
}

impl TextToSpeech for ScriptedTts {
    fn output_rate(&self) -> u32 {
        self.rate
    }

    fn voice_for(&self, lang: Lang) -> Result<String, TtsError> {
        Ok(format!("scripted-{}", lang.code()))
    }

    fn synthesize(&self, text: &str, voice: &str) -> Result<Arc<Pcm>, TtsError> {
        let pcm = self.tone(text, voice)?;
        self.cached.fetch_add(1, Ordering::Relaxed);
        Ok(pcm)
    }

    fn synthesize_personal(&self, text: &Pii<String>, voice: &str) -> Result<Arc<Pcm>, TtsError> {
        let pcm = self.tone(text.expose(), voice)?;
        self.personal.fetch_add(1, Ordering::Relaxed);
        Ok(pcm)
    }

    fn prompt_file(&self, path: &Path) -> Result<Arc<Pcm>, TtsError> {
        load_prompt(path, self.rate).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpeechStream;
    use ivr_core::Speech;

    #[test]
    fn length_follows_text_and_calls_are_recorded() {
        let t = ScriptedTts::new(8_000);
        let p = t.synthesize_lang("Hej.", Lang::Da).unwrap();
        assert_eq!(p.samples.len(), 8_000 * 240 / 1000);
        let sentences: Vec<_> = SpeechStream::new(&t, "Et. To!", "scripted-en")
            .map(Result::unwrap)
            .collect();
        assert_eq!(sentences.len(), 2);
        assert_eq!(
            t.said(),
            [
                ("scripted-da".into(), "Hej.".into()),
                ("scripted-en".into(), "Et.".into()),
                ("scripted-en".into(), "To!".into())
            ]
        );
        assert!(matches!(
            t.synthesize("x", "piper-en-joe"),
            Err(TtsError::UnknownVoice(_))
        ));
    }

    #[test]
    fn static_speech_takes_the_cached_path_and_personal_speech_the_other() {
        let t = ScriptedTts::new(8_000);
        let tts: &dyn TextToSpeech = &t;
        let n = tts
            .speak(
                &Speech::Static("Velkommen. Hvad drejer det sig om?".into()),
                Lang::Da,
            )
            .unwrap()
            .map(Result::unwrap)
            .count();
        assert_eq!(n, 2);
        assert_eq!(
            t.counts(),
            SynthesisCounts {
                cached: 2,
                personal: 0
            }
        );
        let stream = tts
            .speak(
                &Speech::Personal(Pii::new("Jeg hørte nul et. Er det rigtigt?".into())),
                Lang::Da,
            )
            .unwrap();
        assert!(stream.is_personal());
        assert_eq!(stream.map(Result::unwrap).count(), 2);
        assert_eq!(
            t.counts(),
            SynthesisCounts {
                cached: 2,
                personal: 2
            }
        );
    }

    #[test]
    fn a_missing_prompt_file_is_an_error_not_a_tone() {
        let t = ScriptedTts::new(8_000);
        assert!(t.prompt_file(Path::new("/nonexistent/prompt.wav")).is_err());
    }
}
