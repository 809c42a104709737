//! A scripted engine for tests of other crates (flow, engine, e2e): it
//! answers with prepared transcripts in order, without a model.

use std::collections::VecDeque;
use std::sync::Mutex;

use ivr_core::{Lang, Pii};

use crate::{LanguageChoice, SpeechToText, SttError, SttFuture, SttRequest, SttTiming, Transcript};

/// One prepared answer.
#[derive(Debug, Clone)]
enum Answer {
    Text { text: String, confidence: f32 },
    Fail(fn() -> SttError),
}

/// Answers requests with scripted transcripts, in order, and records the
/// requests it saw (language and hints) so a test can assert on them.
#[derive(Debug, Default)]
pub struct ScriptedStt {
    answers: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<(LanguageChoice, Vec<String>)>>,
}

impl ScriptedStt {
    /// An engine with no answers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine answering these texts in order, each with confidence 0.9.
    pub fn with_texts<I, S>(texts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let s = Self::new();
        for t in texts {
            s.push_text(t, 0.9);
        }
        s
    }

    /// Queues an answer.
    pub fn push_text(&self, text: impl Into<String>, confidence: f32) -> &Self {
        self.lock_answers().push_back(Answer::Text {
            text: text.into(),
            confidence,
        });
        self
    }

    /// Queues an `Overloaded` failure (to test a flow's fallback).
    pub fn push_overloaded(&self) -> &Self {
        self.lock_answers()
            .push_back(Answer::Fail(|| SttError::Overloaded { queue: 0 }));
        self
    }

    /// Language choice and hints of every request so far.
    pub fn requests(&self) -> Vec<(LanguageChoice, Vec<String>)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lock_answers(&self) -> std::sync::MutexGuard<'_, VecDeque<Answer>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SpeechToText for ScriptedStt {
    fn transcribe(&self, request: SttRequest) -> SttFuture<'_> {
        let language = match &request.language {
            LanguageChoice::Fixed(l) => *l,
            LanguageChoice::DetectAmong(ls) => ls.first().copied().unwrap_or(Lang::Da),
        };
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((request.language.clone(), request.hints.clone()));
        let answer = self.lock_answers().pop_front();
        let audio = request.audio.duration();
        Box::pin(async move {
            match answer {
                None => Err(SttError::ScriptExhausted),
                Some(Answer::Fail(f)) => Err(f()),
                Some(Answer::Text { text, confidence }) => Ok(Transcript {
                    text: Pii::new(text),
                    confidence,
                    no_speech: 0.0,
                    language,
                    timing: SttTiming {
                        audio,
                        ..SttTiming::default()
                    },
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_core::Pcm;

    #[tokio::test]
    async fn answers_in_order_then_says_it_is_exhausted() {
        let stt = ScriptedStt::with_texts(["jeg har mistet mit pas", "ja"]);
        stt.push_overloaded();
        let req =
            || SttRequest::new(Pcm::new(16_000, vec![0; 16_000]), Lang::Da).with_hints(["pas"]);
        let t = stt.transcribe(req()).await.unwrap();
        assert_eq!(t.text.expose(), "jeg har mistet mit pas");
        assert_eq!(t.language, Lang::Da);
        assert_eq!(stt.transcribe(req()).await.unwrap().text.expose(), "ja");
        assert!(matches!(
            stt.transcribe(req()).await,
            Err(SttError::Overloaded { .. })
        ));
        assert!(matches!(
            stt.transcribe(req()).await,
            Err(SttError::ScriptExhausted)
        ));
        assert_eq!(stt.requests().len(), 4);
        assert_eq!(stt.requests()[0].1, vec!["pas".to_string()]);
    }

    #[test]
    fn a_transcript_never_shows_in_debug_output() {
        let t = Transcript {
            text: Pii::new("mit cpr-nummer er 010190-1234".into()),
            confidence: 1.0,
            no_speech: 0.0,
            language: Lang::Da,
            timing: SttTiming::default(),
        };
        assert!(!format!("{t:?}").contains("010190"));
    }
}
