//! Speech to text: the [`SpeechToText`] interface, the whisper engine
//! ([`WhisperStt`]) with its worker pool, and a scripted engine
//! ([`ScriptedStt`]) for tests of other crates.
//!
//! A request is one utterance (16 kHz mono PCM, cut by the media layer's
//! endpointing), the language or the languages a flow allows, and hints: the
//! words the question expects, passed to whisper as its initial prompt. The
//! result carries the text (as [`Pii`], a transcript is personal data), a
//! confidence from the token probabilities, the language and timing.
//!
//! # Back-pressure
//! The whisper engine has a fixed pool of workers (one whisper state each)
//! fed by a bounded queue. When the queue is full, [`SpeechToText::transcribe`]
//! fails at once with [`SttError::Overloaded`]: a caller waiting seconds for a
//! transcript is worse than the flow's fallback ("please press 1 for ...")
//! played straight away, and the queue never grows without bound.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ivr_core::{Lang, Pcm, Pii};

pub mod audio;
mod config;
mod decode;
pub mod guard;
mod identify;
mod pool;
pub mod score;
mod scripted;
mod threads;
mod whisper;

pub use config::{Decode, SpotConfig, SttConfig};
pub use guard::{Dropped, GuardConfig};
pub use identify::{IdentifyConfig, LanguageId, DEFAULT_DA_BIAS, DEFAULT_MARGIN};
pub use scripted::ScriptedStt;
pub use whisper::{audio_ctx_for, collapse_repetition, WhisperStt};

/// Which language an utterance is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanguageChoice {
    /// The flow knows the language (the usual case: set per call).
    Fixed(Lang),
    /// Detect, but only among these languages (whisper's own detection over
    /// its 99 languages picks e.g. Thai for robotic Danish). An empty list
    /// means every language the engine knows. The plain arg-max of whisper's
    /// scores among them: no prior, no bias (see [`LanguageChoice::Identify`]).
    DetectAmong(Vec<Lang>),
    /// The turn may be a language switch: identify the caller's language
    /// among `among` (the languages the flow allows) with the decision rule
    /// of [`IdentifyConfig`] (the call's `current` language as the prior),
    /// then transcribe in the chosen one. The hints are words of `current`:
    /// they are passed only when `current` is chosen.
    Identify {
        /// The call's language so far.
        current: Lang,
        /// The languages the flow allows (`current` among them).
        among: Vec<Lang>,
    },
}

/// One utterance to transcribe.
#[derive(Debug, Clone)]
pub struct SttRequest {
    /// Mono PCM at 16 kHz ([`ivr_core::ENGINE_RATE`]).
    pub audio: Pcm,
    /// The language, or the languages to choose from.
    pub language: LanguageChoice,
    /// Words the question expects (e.g. `["pas", "kørekort", "affald"]`),
    /// given to whisper as the initial prompt to bias decoding.
    pub hints: Vec<String>,
    /// The answers a closed question expects (a menu's intents with their
    /// phrases, yes/no): those whisper writes are checked against the audio
    /// (`[stt.spot]`). Empty for free answers (names, messages). Like the
    /// hints, they are words of the call's current language.
    pub candidates: Vec<Candidate>,
    /// Withdraws the request: a worker that has not started it skips it,
    /// and one that has stops at its next decoder step, answering
    /// [`SttError::Cancelled`] (whisper's encoder call itself is not
    /// interrupted). A speculative recognition the call no longer needs
    /// thus gives its worker back sooner.
    pub cancel: Cancel,
}

/// A handle on a request's withdrawal ([`SttRequest::cancel`]); clones
/// share it. The default is never withdrawn unless [`Cancel::cancel`] is
/// called on it or a clone.
#[derive(Debug, Clone, Default)]
pub struct Cancel(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Withdraws the request.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// True once withdrawn.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One answer a question expects: its label (an intent's name) and the
/// phrases that say it (in the request's language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What the answer is (returned in [`Spotted::label`]).
    pub label: String,
    /// Words or short phrases a caller says for it (e.g. "pas", "nyt pas").
    pub phrases: Vec<String>,
}

/// An expected answer heard: whisper wrote it and it passed the check
/// against the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Spotted {
    /// The candidate's label.
    pub label: String,
    /// The phrase heard (in [`Transcript::text`]).
    pub phrase: String,
    /// Its check against the audio: the log-probability its tokens lose
    /// against the unbiased decoder's first choice (0: none lost).
    pub logprob: f32,
    /// By how much (nats) it beat the next answer that also passed
    /// (infinite when none did).
    pub margin: f32,
}
impl SttRequest {
    /// A request in a known language without hints.
    pub fn new(audio: Pcm, lang: Lang) -> Self {
        Self {
            audio,
            language: LanguageChoice::Fixed(lang),
            hints: Vec::new(),
            candidates: Vec::new(),
            cancel: Cancel::default(),
        }
    }

    /// Adds the answers the question expects.
    pub fn with_candidates(mut self, candidates: Vec<Candidate>) -> Self {
        self.candidates.extend(candidates);
        self
    }

    /// Adds hint words.
    pub fn with_hints<I, S>(mut self, hints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.hints.extend(hints.into_iter().map(Into::into));
        self
    }
}

/// Where the time of one transcription went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SttTiming {
    /// Length of the audio.
    pub audio: Duration,
    /// Time spent waiting for a worker.
    pub queued: Duration,
    /// Time a worker spent on it (detection, encoding and decoding).
    pub processing: Duration,
    /// The encoder context used (whisper frames, 50 per second of audio).
    pub audio_ctx: u32,
    /// Part of `processing` spent identifying the language (zero for a
    /// fixed language): one decoder step on the encoder output.
    pub identification: Duration,
    /// Part of `processing` spent computing the mel spectrogram and
    /// encoding (next to nothing when [`Self::encoder_reused`]).
    pub encoding: Duration,
    /// Part of `processing` spent decoding the free transcript.
    pub decoding: Duration,
    /// Part of `processing` spent scoring candidates.
    pub spotting: Duration,
    /// Decoder calls made (free transcript and candidates).
    pub decoder_steps: u32,
    /// The worker's state held this audio encoded already (the same
    /// utterance recognised again, in another language), so the encoder
    /// did not run.
    pub encoder_reused: bool,
}

/// What was said.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The text, trimmed. Personal data: never log it.
    pub text: Pii<String>,
    /// Mean probability of the text tokens, 0..=1 (0 when no text).
    pub confidence: f32,
    /// whisper's probability that the audio holds no speech, 0..=1.
    pub no_speech: f32,
    /// Mean token log-probability of what whisper decoded (0 when nothing).
    pub avg_logprob: f32,
    /// Why whisper's text was dropped (then `text` is empty): no speech,
    /// a loop, a known invention.
    pub dropped: Option<Dropped>,
    /// An expected answer the request gave, heard and checked against the audio.
    pub spotted: Option<Spotted>,
    /// The language transcribed in.
    pub language: Lang,
    /// How the language was identified: `Some` when the request was
    /// [`LanguageChoice::Identify`] or [`LanguageChoice::DetectAmong`].
    pub identified: Option<LanguageId>,
    /// Timing.
    pub timing: SttTiming,
}

/// Why a transcription failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SttError {
    /// Every worker is busy and the queue is full: play the fallback now.
    #[error("speech-to-text is overloaded (queue of {queue} full)")]
    Overloaded {
        /// The queue length configured.
        queue: usize,
    },
    /// The audio is not at 16 kHz (resample in the media layer first).
    #[error("audio is {0} Hz; speech-to-text takes 16000 Hz")]
    WrongSampleRate(u32),
    /// The utterance is longer than whisper's 30 s window.
    #[error("utterance of {0:?} is longer than 30 s")]
    TooLong(Duration),
    /// The model file does not exist.
    #[error("whisper model {path} not found: run `make setup`, or set [stt] model to a ggml file")]
    ModelMissing {
        /// Configured path.
        path: String,
    },
    /// whisper.cpp refused the model file.
    #[error("whisper could not load {path}: {reason}")]
    ModelLoad {
        /// Configured path.
        path: String,
        /// whisper-rs error.
        reason: String,
    },
    /// whisper.cpp failed while transcribing.
    #[error("whisper failed: {0}")]
    Engine(String),
    /// The engine is shutting down (its workers are gone).
    #[error("speech-to-text engine stopped")]
    Stopped,
    /// The request was withdrawn ([`SttRequest::cancel`]).
    #[error("speech-to-text request withdrawn")]
    Cancelled,
    /// A scripted engine ran out of scripted answers (tests only).
    #[error("scripted speech-to-text has no answer left")]
    ScriptExhausted,
}

/// The future a [`SpeechToText`] returns.
pub type SttFuture<'a> = Pin<Box<dyn Future<Output = Result<Transcript, SttError>> + Send + 'a>>;

/// Turns one utterance into text. Object safe: the engine holds an
/// `Arc<dyn SpeechToText>`.
pub trait SpeechToText: Send + Sync {
    /// Transcribes one utterance. Fails fast with [`SttError::Overloaded`]
    /// rather than queueing without bound.
    fn transcribe(&self, request: SttRequest) -> SttFuture<'_>;
}
