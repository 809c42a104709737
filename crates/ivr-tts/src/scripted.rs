//! A text-to-speech double for tests of other crates (engine, media): no model,
//! deterministic audio whose length follows the text, and a log of what was said.

use std::sync::{Arc, Mutex};

use ivr_core::{Lang, Pcm, Pii};

use crate::{TextToSpeech, TtsError};

/// Speaks every text as a 440 Hz tone of 60 ms per character (at least 100 ms),
/// at a fixed rate. Voices are `scripted-da` and `scripted-en`; any other voice is
/// [`TtsError::UnknownVoice`]. Records each `(voice, text)` it was asked for.
#[derive(Debug)]
pub struct ScriptedTts {
    rate: u32,
    said: Mutex<Vec<(String, String)>>,
}

impl ScriptedTts {
    /// Produces audio at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        ScriptedTts {
            rate,
            said: Mutex::new(Vec::new()),
        }
    }

    /// Every `(voice, text)` synthesised so far, in order.
    pub fn said(&self) -> Vec<(String, String)> {
        self.said.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The audio length for a text, as this double makes it.
    pub fn samples_for(&self, text: &str) -> usize {
        let ms = (text.trim().chars().count() as u64 * 60).max(100);
        (ms * u64::from(self.rate) / 1000) as usize
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

    fn synthesize_personal(&self, text: &Pii<String>, voice: &str) -> Result<Arc<Pcm>, TtsError> {
        self.synthesize(text.expose(), voice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SpeechStream;

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
}
