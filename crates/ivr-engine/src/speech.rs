//! The shared speech-to-text worker pool calls use.
//!
//! Recognition is CPU work: it runs on blocking threads, at most `workers`
//! at once. Utterances waiting for a worker are counted (the STT queue
//! depth of `/metrics`).
//!
//! Queue full (more than `queue` utterances waiting): the utterance is refused
//! at once with [`SpeechError::Overloaded`]; the call feeds the flow an empty,
//! zero-confidence transcript, so the caller hears "sorry, I did not
//! understand" and can repeat or use the keypad. Waiting longer would only
//! make every caller wait, and the flow's retry/DTMF fallback is the
//! graceful path under overload.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm, Pii};
use tokio::sync::Semaphore;

/// What a recogniser heard.
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
    /// The queue was full (see the module docs for what the call does).
    #[error("speech-to-text queue full")]
    Overloaded,
    /// No recogniser is configured (the model is missing).
    #[error("speech-to-text is not available: {0}")]
    Unavailable(String),
    /// The recogniser failed on this utterance.
    #[error("speech-to-text failed: {0}")]
    Failed(String),
}

/// A speech recogniser (the whisper pool of `ivr-stt`, or a scripted one in tests).
pub trait Recognizer: Send + Sync + 'static {
    /// Recognises one utterance (16 kHz mono) in `lang`, with the words the
    /// question expects as hints. Blocking.
    ///
    /// # Errors
    /// [`SpeechError::Failed`] when recognition fails.
    fn recognize(
        &self,
        pcm: &Pcm,
        lang: Lang,
        hints: &[String],
    ) -> Result<Recognition, SpeechError>;
}

/// The pool: a recogniser, a worker limit and a bounded queue.
#[derive(Clone)]
pub struct SpeechPool {
    inner: Option<Arc<dyn Recognizer>>,
    workers: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
    why_unavailable: Arc<String>,
}

/// A recognition and how long it waited and ran.
#[derive(Debug)]
pub struct Timed {
    /// The result.
    pub result: Result<Recognition, SpeechError>,
    /// Time spent waiting for a worker.
    pub queued: Duration,
    /// Time spent recognising.
    pub ran: Duration,
}

impl SpeechPool {
    /// A pool over `recognizer` with `workers` threads and `queue` places.
    pub fn new(recognizer: Arc<dyn Recognizer>, workers: usize, queue: usize) -> Self {
        SpeechPool {
            inner: Some(recognizer),
            workers: Arc::new(Semaphore::new(workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            why_unavailable: Arc::new(String::new()),
        }
    }

    /// A pool without a recogniser: every utterance fails with
    /// [`SpeechError::Unavailable`] (calls then rely on DTMF).
    pub fn unavailable(why: impl Into<String>) -> Self {
        SpeechPool {
            inner: None,
            workers: Arc::new(Semaphore::new(1)),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue: 0,
            why_unavailable: Arc::new(why.into()),
        }
    }

    /// Whether a recogniser is configured.
    pub fn is_available(&self) -> bool {
        self.inner.is_some()
    }

    /// Utterances waiting for a worker.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Recognises `pcm`; see the module docs for the full-queue decision.
    pub async fn recognize(&self, pcm: Pcm, lang: Lang, hints: Vec<String>) -> Timed {
        let start = Instant::now();
        let Some(rec) = self.inner.clone() else {
            return Timed {
                result: Err(SpeechError::Unavailable(self.why_unavailable.to_string())),
                queued: Duration::ZERO,
                ran: Duration::ZERO,
            };
        };
        let prev = self.waiting.fetch_add(1, Ordering::Relaxed);
        if prev >= self.queue.max(1) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Timed {
                result: Err(SpeechError::Overloaded),
                queued: Duration::ZERO,
                ran: Duration::ZERO,
            };
        }
        let permit = self.workers.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let queued = start.elapsed();
        let Ok(permit) = permit else {
            return Timed {
                result: Err(SpeechError::Unavailable("pool closed".into())),
                queued,
                ran: Duration::ZERO,
            };
        };
        let t0 = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            rec.recognize(&pcm, lang, &hints)
        })
        .await
        .unwrap_or_else(|e| Err(SpeechError::Failed(format!("worker panicked: {e}"))));
        Timed {
            result,
            queued,
            ran: t0.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Recognizer for Echo {
        fn recognize(
            &self,
            pcm: &Pcm,
            _lang: Lang,
            hints: &[String],
        ) -> Result<Recognition, SpeechError> {
            Ok(Recognition {
                text: Pii::new(format!("{} {}", pcm.samples.len(), hints.join(","))),
                confidence: 1.0,
                lang: None,
            })
        }
    }

    #[tokio::test]
    async fn the_pool_passes_audio_language_and_hints_to_the_recogniser() {
        let pool = SpeechPool::new(Arc::new(Echo), 1, 4);
        let t = pool
            .recognize(Pcm::new(16_000, vec![0; 160]), Lang::Da, vec!["pas".into()])
            .await;
        assert_eq!(t.result.unwrap().text.expose(), "160 pas");
        assert_eq!(pool.queue_depth(), 0);
    }

    #[tokio::test]
    async fn without_a_model_every_utterance_says_why() {
        let pool = SpeechPool::unavailable("model missing");
        let t = pool
            .recognize(Pcm::new(16_000, vec![]), Lang::En, vec![])
            .await;
        assert!(matches!(t.result, Err(SpeechError::Unavailable(w)) if w == "model missing"));
    }
}
