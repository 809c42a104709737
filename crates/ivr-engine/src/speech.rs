//! The shared speech-to-text worker pool calls use: `ivr-stt`'s engine
//! (whisper: model loaded once, a fixed pool of workers fed by a bounded
//! queue) behind an `Arc<dyn SpeechToText>`, plus the count of utterances
//! in flight for `/metrics`.
//!
//! Queue full: `ivr-stt` refuses at once with `Overloaded`; the call then
//! feeds the flow an empty, zero-confidence transcript, so the caller hears
//! "sorry, I did not understand" and can repeat or use the keypad. Waiting
//! longer would only make every caller wait, and the flow's retry/DTMF
//! fallback is the graceful path under overload.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm, Pii};
use ivr_stt::{LanguageChoice, SpeechToText, SttError, SttRequest};

/// What the recogniser heard.
#[derive(Debug, Clone)]
pub struct Recognition {
    /// The words (personal data).
    pub text: Pii<String>,
    /// 0..1.
    pub confidence: f32,
    /// The language, if the recogniser detected it.
    pub lang: Option<Lang>,
}

/// Why an utterance was not recognised.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// No recogniser is configured (the model is missing).
    #[error("speech-to-text is not available: {0}")]
    Unavailable(String),
    /// The recogniser refused or failed (overloaded, engine error).
    #[error(transparent)]
    Stt(#[from] SttError),
}

/// The pool.
#[derive(Clone)]
pub struct SpeechPool {
    inner: Option<Arc<dyn SpeechToText>>,
    in_flight: Arc<AtomicUsize>,
    workers: usize,
    why_unavailable: Arc<String>,
}

/// A recognition and how long it took.
#[derive(Debug)]
pub struct Timed {
    /// The result.
    pub result: Result<Recognition, SpeechError>,
    /// Wall time from request to result (queue + recognition).
    pub took: Duration,
    /// Time waiting for a worker, as the engine reported it.
    pub queued: Duration,
    /// Time a worker spent recognising, as the engine reported it.
    pub processing: Duration,
}

impl SpeechPool {
    /// A pool over `stt`, which runs `workers` utterances at once.
    pub fn new(stt: Arc<dyn SpeechToText>, workers: usize) -> Self {
        SpeechPool {
            inner: Some(stt),
            in_flight: Arc::new(AtomicUsize::new(0)),
            workers: workers.max(1),
            why_unavailable: Arc::new(String::new()),
        }
    }

    /// A pool without a recogniser: every utterance fails with
    /// [`SpeechError::Unavailable`] (calls then rely on DTMF).
    pub fn unavailable(why: impl Into<String>) -> Self {
        SpeechPool {
            inner: None,
            in_flight: Arc::new(AtomicUsize::new(0)),
            workers: 1,
            why_unavailable: Arc::new(why.into()),
        }
    }

    /// Whether a recogniser is configured.
    pub fn is_available(&self) -> bool {
        self.inner.is_some()
    }

    /// Utterances waiting for a worker (in flight beyond the worker count).
    pub fn queue_depth(&self) -> usize {
        self.in_flight
            .load(Ordering::Relaxed)
            .saturating_sub(self.workers)
    }

    /// Recognises `pcm` (16 kHz) in `lang` with `hints`.
    pub async fn recognize(&self, pcm: Pcm, lang: Lang, hints: Vec<String>) -> Timed {
        let start = Instant::now();
        let Some(stt) = self.inner.clone() else {
            return Timed {
                result: Err(SpeechError::Unavailable(self.why_unavailable.to_string())),
                took: Duration::ZERO,
                queued: Duration::ZERO,
                processing: Duration::ZERO,
            };
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let req = SttRequest {
            audio: pcm,
            language: LanguageChoice::Fixed(lang),
            hints,
        };
        let r = stt.transcribe(req).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let queued = r.as_ref().map(|t| t.timing.queued).unwrap_or_default();
        let processing = r.as_ref().map(|t| t.timing.processing).unwrap_or_default();
        Timed {
            result: r
                .map(|t| Recognition {
                    text: t.text,
                    confidence: t.confidence,
                    lang: Some(t.language),
                })
                .map_err(SpeechError::from),
            took: start.elapsed(),
            queued,
            processing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_stt::ScriptedStt;

    #[tokio::test]
    async fn without_a_model_every_utterance_says_why() {
        let pool = SpeechPool::unavailable("model missing");
        let t = pool
            .recognize(Pcm::new(16_000, vec![]), Lang::En, vec![])
            .await;
        assert!(matches!(t.result, Err(SpeechError::Unavailable(w)) if w == "model missing"));
    }

    #[tokio::test]
    async fn the_pool_returns_what_the_recogniser_heard() {
        let stt = ScriptedStt::with_texts(["jeg skal have et pas"]);
        let pool = SpeechPool::new(Arc::new(stt), 1);
        let t = pool
            .recognize(
                Pcm::new(16_000, vec![0; 1600]),
                Lang::Da,
                vec!["pas".into()],
            )
            .await;
        assert_eq!(t.result.unwrap().text.expose(), "jeg skal have et pas");
        assert_eq!(pool.queue_depth(), 0);
    }
}
