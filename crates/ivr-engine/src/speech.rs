//! The shared speech-to-text worker pool calls use: `ivr-stt`'s engine
//! (whisper: model loaded once, a fixed pool of workers fed by a bounded
//! queue) behind an `Arc<dyn SpeechToText>`, plus the count of utterances
//! in flight for `/metrics`.
//!
//! Queue full: `ivr-stt` refuses at once with `Overloaded`; the call then
//! tells the flow `Event::SpeechUnavailable`, and a question that takes keys
//! says which keys ("Tryk 1 for ...", from the question's own options) and
//! listens for keys only, for the rest of the call (`ivr_flow::keys`).
//! Waiting longer would only make every caller wait; each call that moves
//! to keys leaves the recogniser to the others.
//!
//! Speculative recognitions (eager end of turn, [`SpeechPool::recognize_if_idle`])
//! are admitted only while fewer utterances are in flight than there are
//! workers, so one never waits in the queue and never takes a place there
//! from a finished utterance; when no worker is idle it is not started.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_core::{Lang, Pcm, Pii};
use ivr_stt::{Cancel, Candidate, LanguageChoice, SpeechToText, SttError, SttRequest};

/// What a question tells the recogniser to listen for: hint words (the
/// initial prompt) and the answers it expects (scored against the audio).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    /// Words passed to whisper as the initial prompt.
    pub words: Vec<String>,
    /// The answers a closed question expects; empty for free answers.
    pub candidates: Vec<Candidate>,
}

impl From<Vec<String>> for Hints {
    fn from(words: Vec<String>) -> Self {
        Hints {
            words,
            candidates: Vec::new(),
        }
    }
}

/// What the recogniser heard.
#[derive(Debug, Clone)]
pub struct Recognition {
    /// The words (personal data).
    pub text: Pii<String>,
    /// 0..1.
    pub confidence: f32,
    /// The language transcribed in.
    pub lang: Option<Lang>,
    /// The language was identified among the allowed ones (the request was
    /// [`LanguageChoice::Identify`] or [`LanguageChoice::DetectAmong`]),
    /// not fixed by the call.
    pub identified: bool,
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

impl SpeechError {
    /// The recogniser could not take the utterance at all (its queue was
    /// full, or no model is loaded), as opposed to failing on it: the call
    /// falls back to keys (`ivr_flow::Event::SpeechUnavailable`).
    pub fn is_capacity(&self) -> bool {
        matches!(
            self,
            SpeechError::Unavailable(_) | SpeechError::Stt(SttError::Overloaded { .. })
        )
    }
}

/// The pool.
#[derive(Clone)]
pub struct SpeechPool {
    inner: Option<Arc<dyn SpeechToText>>,
    in_flight: Arc<AtomicUsize>,
    workers: usize,
    /// Places for utterances waiting for a worker (`[stt] queue`); beyond
    /// them the recogniser refuses (None: not known, never full).
    queue: Option<usize>,
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
    /// The worker decoded an encoding it still held of the same audio (the
    /// utterance recognised again in another language).
    pub encoder_reused: bool,
}

impl SpeechPool {
    /// A pool over `stt`, which runs `workers` utterances at once.
    pub fn new(stt: Arc<dyn SpeechToText>, workers: usize) -> Self {
        SpeechPool {
            inner: Some(stt),
            in_flight: Arc::new(AtomicUsize::new(0)),
            workers: workers.max(1),
            queue: None,
            why_unavailable: Arc::new(String::new()),
        }
    }

    /// Tells the pool how many utterances the recogniser queues beyond its
    /// workers (`[stt] queue`), for [`Self::is_full`].
    pub fn with_queue(mut self, queue: usize) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The recogniser would refuse an utterance now: every worker busy and
    /// every queue place taken (or no recogniser at all). A call then asks
    /// its next question with keys from the start.
    pub fn is_full(&self) -> bool {
        match (&self.inner, self.queue) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(q)) => self.in_flight.load(Ordering::Relaxed) >= self.workers + q,
        }
    }

    /// A pool without a recogniser: every utterance fails with
    /// [`SpeechError::Unavailable`] (calls then rely on DTMF).
    pub fn unavailable(why: impl Into<String>) -> Self {
        SpeechPool {
            inner: None,
            in_flight: Arc::new(AtomicUsize::new(0)),
            workers: 1,
            queue: None,
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

    /// Recognises `pcm` (16 kHz) in the language `choice` gives (fixed, or
    /// identified among the allowed ones) with `hints`.
    pub async fn recognize(
        &self,
        pcm: Pcm,
        choice: LanguageChoice,
        hints: impl Into<Hints>,
    ) -> Timed {
        let hints = hints.into();
        let Some(stt) = self.inner.clone() else {
            return self.unavailable_now();
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let slot = InFlight(self.in_flight.clone());
        Self::run(stt, slot, pcm, choice, hints, Cancel::default()).await
    }

    /// A speculative recognition: starts only if a worker is idle (fewer
    /// utterances in flight than workers), taking its place at once, so it
    /// neither waits in the queue nor delays a confirmed utterance queued
    /// after it. `None`: no idle worker (or no recogniser); nothing started.
    /// `cancel` withdraws it when the call no longer needs it (the caller
    /// spoke on): its worker stops at the next decoder step and the result
    /// is [`SttError::Cancelled`]; it counts as in flight until then.
    pub fn recognize_if_idle(
        &self,
        pcm: Pcm,
        choice: LanguageChoice,
        hints: impl Into<Hints>,
        cancel: Cancel,
    ) -> Option<impl std::future::Future<Output = Timed> + Send + 'static> {
        let hints = hints.into();
        let stt = self.inner.clone()?;
        let workers = self.workers;
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < workers).then_some(n + 1)
            })
            .ok()?;
        let slot = InFlight(self.in_flight.clone());
        Some(Self::run(stt, slot, pcm, choice, hints, cancel))
    }

    fn unavailable_now(&self) -> Timed {
        Timed {
            result: Err(SpeechError::Unavailable(self.why_unavailable.to_string())),
            took: Duration::ZERO,
            queued: Duration::ZERO,
            processing: Duration::ZERO,
            encoder_reused: false,
        }
    }

    async fn run(
        stt: Arc<dyn SpeechToText>,
        slot: InFlight,
        pcm: Pcm,
        choice: LanguageChoice,
        hints: Hints,
        cancel: Cancel,
    ) -> Timed {
        let start = Instant::now();
        let identified = !matches!(choice, LanguageChoice::Fixed(_));
        let req = SttRequest {
            audio: pcm,
            language: choice,
            hints: hints.words,
            candidates: hints.candidates,
            cancel,
        };
        let r = stt.transcribe(req).await;
        drop(slot);
        let queued = r.as_ref().map(|t| t.timing.queued).unwrap_or_default();
        let processing = r.as_ref().map(|t| t.timing.processing).unwrap_or_default();
        let encoder_reused = r.as_ref().is_ok_and(|t| t.timing.encoder_reused);
        Timed {
            result: r
                .map(|t| Recognition {
                    text: t.text,
                    confidence: t.confidence,
                    lang: Some(t.language),
                    identified,
                })
                .map_err(SpeechError::from),
            took: start.elapsed(),
            queued,
            processing,
            encoder_reused,
        }
    }
}

/// One utterance counted in flight until dropped (also when the future is).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
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
            .recognize(
                Pcm::new(16_000, vec![]),
                LanguageChoice::Fixed(Lang::En),
                vec![],
            )
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
                LanguageChoice::Fixed(Lang::Da),
                vec!["pas".into()],
            )
            .await;
        let r = t.result.unwrap();
        assert_eq!(r.text.expose(), "jeg skal have et pas");
        assert_eq!((r.lang, r.identified), (Some(Lang::Da), false));
        assert_eq!(pool.queue_depth(), 0);
    }

    fn da() -> LanguageChoice {
        LanguageChoice::Fixed(Lang::Da)
    }

    #[tokio::test]
    async fn an_identifying_request_says_the_language_was_identified() {
        let stt = ScriptedStt::new();
        stt.push_text_in("English please", 0.9, Lang::En);
        let pool = SpeechPool::new(Arc::new(stt), 1);
        let t = pool
            .recognize(
                Pcm::new(16_000, vec![0; 1600]),
                LanguageChoice::Identify {
                    current: Lang::Da,
                    among: vec![Lang::Da, Lang::En],
                },
                vec![],
            )
            .await;
        let r = t.result.unwrap();
        assert_eq!((r.lang, r.identified), (Some(Lang::En), true));
    }

    /// A recogniser held on a gate: what is in flight stays in flight.
    struct Gated {
        gate: tokio::sync::Semaphore,
    }

    impl SpeechToText for Gated {
        fn transcribe(&self, _r: SttRequest) -> ivr_stt::SttFuture<'_> {
            Box::pin(async move {
                let _p = self.gate.acquire().await.map_err(|_| SttError::Stopped)?;
                Err(SttError::Stopped)
            })
        }
    }

    #[tokio::test]
    async fn speculation_starts_only_on_an_idle_worker_and_frees_it_when_done() {
        let stt = Arc::new(Gated {
            gate: tokio::sync::Semaphore::new(0),
        });
        let pool = SpeechPool::new(stt.clone(), 2);
        let pcm = || Pcm::new(16_000, vec![0; 1600]);
        let confirmed = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.recognize(pcm(), da(), vec![]).await })
        };
        while pool.in_flight.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let first = pool
            .recognize_if_idle(pcm(), da(), vec![], Cancel::default())
            .expect("one of two workers is idle");
        assert!(
            pool.recognize_if_idle(pcm(), da(), vec![], Cancel::default())
                .is_none(),
            "both workers busy: no speculation"
        );
        assert_eq!(pool.queue_depth(), 0, "a speculation never queues");
        // A confirmed utterance still gets in (it queues, as before).
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.recognize(pcm(), da(), vec![]).await })
        };
        while pool.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        stt.gate.add_permits(3);
        let _ = first.await;
        let _ = confirmed.await;
        let _ = queued.await;
        assert_eq!(pool.in_flight.load(Ordering::Relaxed), 0);
        // Dropped before it ran: its place is given back too.
        drop(
            pool.recognize_if_idle(pcm(), da(), vec![], Cancel::default())
                .expect("idle"),
        );
        assert_eq!(pool.in_flight.load(Ordering::Relaxed), 0);
        assert!(SpeechPool::unavailable("no model")
            .recognize_if_idle(pcm(), da(), vec![], Cancel::default())
            .is_none());
    }
}
