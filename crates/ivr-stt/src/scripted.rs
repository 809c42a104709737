//! A scripted engine for tests of other crates (flow, engine, e2e): it
//! answers with prepared transcripts in order, without a model.

use std::collections::VecDeque;
use std::sync::Mutex;

use ivr_core::{Lang, Pii};

use crate::whisper::stated_language;
use crate::{
    LanguageChoice, LanguageId, SpeechToText, SttError, SttFuture, SttRequest, SttTiming,
    Transcript,
};

/// One prepared answer.
#[derive(Debug, Clone)]
enum Answer {
    Text {
        text: String,
        confidence: f32,
        /// The language a detecting or identifying request "identifies".
        lang: Option<Lang>,
    },
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
            lang: None,
        });
        self
    }

    /// Queues an answer in `lang`: a request that detects or identifies the
    /// language (`DetectAmong`, `Identify`) comes back identified as `lang`
    /// (when allowed); a fixed-language request keeps its language.
    pub fn push_text_in(&self, text: impl Into<String>, confidence: f32, lang: Lang) -> &Self {
        self.lock_answers().push_back(Answer::Text {
            text: text.into(),
            confidence,
            lang: Some(lang),
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
        let stated = stated_language(&request.language);
        let allowed: Vec<Lang> = match &request.language {
            LanguageChoice::Fixed(_) => Vec::new(),
            LanguageChoice::DetectAmong(ls) => ls.clone(),
            LanguageChoice::Identify { among, .. } => among.clone(),
        };
        let detecting = !matches!(request.language, LanguageChoice::Fixed(_));
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
                Some(Answer::Text {
                    text,
                    confidence,
                    lang,
                }) => {
                    let language = lang
                        .filter(|l| detecting && (allowed.is_empty() || allowed.contains(l)))
                        .unwrap_or(stated);
                    let identified = detecting.then(|| LanguageId {
                        chosen: language,
                        scores: vec![(language, 1.0)],
                    });
                    Ok(Transcript {
                        text: Pii::new(text),
                        confidence,
                        no_speech: 0.0,
                        avg_logprob: 0.0,
                        dropped: None,
                        spotted: None,
                        language,
                        identified,
                        timing: SttTiming {
                            audio,
                            ..SttTiming::default()
                        },
                    })
                }
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

    #[tokio::test]
    async fn an_identifying_request_comes_back_in_the_scripted_language() {
        let stt = ScriptedStt::new();
        stt.push_text_in("English please", 0.9, Lang::En);
        stt.push_text_in("English please", 0.9, Lang::En);
        stt.push_text("ja", 0.9);
        let pcm = || Pcm::new(16_000, vec![0; 16_000]);
        let identify = || SttRequest {
            audio: pcm(),
            language: LanguageChoice::Identify {
                current: Lang::Da,
                among: vec![Lang::Da, Lang::En],
            },
            hints: vec![],
            candidates: vec![],
            cancel: Default::default(),
        };
        let t = stt.transcribe(identify()).await.unwrap();
        assert_eq!(t.language, Lang::En);
        assert_eq!(t.identified.map(|id| id.chosen), Some(Lang::En));
        // A fixed request is not identified: it stays in its language.
        let t = stt
            .transcribe(SttRequest::new(pcm(), Lang::Da))
            .await
            .unwrap();
        assert_eq!((t.language, t.identified), (Lang::Da, None));
        // No scripted language: the current one.
        let t = stt.transcribe(identify()).await.unwrap();
        assert_eq!(t.language, Lang::Da);
        assert_eq!(t.identified.map(|id| id.chosen), Some(Lang::Da));
    }

    #[test]
    fn a_transcript_never_shows_in_debug_output() {
        let t = Transcript {
            text: Pii::new("mit cpr-nummer er 010190-1234".into()),
            confidence: 1.0,
            no_speech: 0.0,
            avg_logprob: 0.0,
            dropped: None,
            spotted: None,
            language: Lang::Da,
            identified: None,
            timing: SttTiming::default(),
        };
        assert!(!format!("{t:?}").contains("010190"));
    }
}
