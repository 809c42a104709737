//! The question the flow is asking, as the call core listens for its answer.
//!
//! There is one notion of "listening": the interpreter asks a question by
//! emitting `Action::Gather` (always the last action of its batch) and waits
//! in that gather until it answers with a new batch. The core mirrors exactly
//! that: a [`Listen`] is made from the `Gather` the moment the interpreter
//! emits it and lives until the interpreter's next non-empty batch (which
//! either asks again, with its own `Gather`, or moves on). Nothing else
//! starts or ends listening; this module only tracks where the answer stands:
//!
//! ```text
//!   Asking --(prompts played, not on hold)--> Waiting{until} --until--> NoInput to the flow
//!     |  ^                                       |   ^
//!     |  +----(transcript without an answer)-----+---+------------------+
//!     |                                          |                      |
//!     +--(speech started)--> Hearing{since} --(utterance)--> Recognising
//!                               |  (no utterance for hearing_cap: back to Asking)
//!   a key (any phase): Waiting{min(timeout, inter_digit)}
//! ```
//!
//! Keys during the question's prompt answer the question (the prompt stops);
//! speech during it does when the question allows barge-in, otherwise only
//! once the prompt has played (the interpreter's contract for `Gather`).

use std::time::{Duration, Instant};

use ivr_core::Lang;

/// What the question takes, from the flow's `Action::Gather`.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Speech answers it.
    pub speech: bool,
    /// Keys answer it.
    pub dtmf: bool,
    /// Recogniser hints.
    pub hints: Vec<String>,
    /// The answers the question expects (scored against the audio).
    pub candidates: Vec<ivr_stt::Candidate>,
    /// The language to recognise in.
    pub lang: Lang,
    /// Silence before `NoInput`.
    pub timeout: Duration,
    /// Speech during the question's prompt stops it and answers.
    pub barge_in: bool,
    /// Non-empty: identify the caller's language among these on this turn.
    pub identify: Vec<Lang>,
}

/// Where the answer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The question's prompts are still being made or played (or the call is
    /// on hold): no no-input timer yet.
    Asking,
    /// Waiting for the caller; `NoInput` at `until`.
    Waiting {
        /// When silence becomes `NoInput`.
        until: Instant,
    },
    /// The caller is speaking; the timer waits (for at most the hearing cap).
    Hearing {
        /// Since when.
        since: Instant,
    },
    /// An utterance is being recognised.
    Recognising,
}

/// The question in progress.
#[derive(Debug, Clone)]
pub struct Listen {
    /// What it takes.
    pub question: Question,
    phase: Phase,
}

impl Question {
    /// What the recogniser listens for on this question.
    pub fn stt_hints(&self) -> crate::speech::Hints {
        crate::speech::Hints {
            words: self.hints.clone(),
            candidates: self.candidates.clone(),
        }
    }
}

impl Listen {
    /// A question just asked (its prompts are still to play).
    pub fn new(question: Question) -> Self {
        Listen {
            question,
            phase: Phase::Asking,
        }
    }

    /// Where the answer stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When `NoInput` is due, if the timer runs.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            _ => None,
        }
    }

    /// Moves time on: `quiet` means no prompt is pending or playing and the
    /// call is not on hold. Starts the timer once the prompts have played,
    /// gives up on speech that never became an utterance after `hearing_cap`,
    /// and pauses the timer while not quiet (e.g. on hold). Returns true when
    /// `NoInput` is due now (the timer is then stopped).
    pub fn tick(&mut self, now: Instant, quiet: bool, hearing_cap: Duration) -> bool {
        match self.phase {
            Phase::Hearing { since } if now.saturating_duration_since(since) > hearing_cap => {
                self.phase = Phase::Asking;
            }
            Phase::Waiting { .. } if !quiet => self.phase = Phase::Asking,
            _ => {}
        }
        match self.phase {
            Phase::Asking if quiet => {
                self.phase = Phase::Waiting {
                    until: now + self.question.timeout,
                };
                false
            }
            Phase::Waiting { until } if now >= until => {
                self.phase = Phase::Asking;
                true
            }
            _ => false,
        }
    }

    /// The caller started speaking.
    pub fn speech_started(&mut self, now: Instant) {
        if self.question.speech && matches!(self.phase, Phase::Asking | Phase::Waiting { .. }) {
            self.phase = Phase::Hearing { since: now };
        }
    }

    /// Whether an utterance ending now answers the question; `quiet`: its
    /// prompts have played. Speech during the prompt counts only with barge-in.
    pub fn takes_speech(&self, quiet: bool) -> bool {
        self.question.speech
            && self.phase != Phase::Recognising
            && (quiet || self.question.barge_in)
    }

    /// An utterance ended (taken or not): the caller is no longer speaking.
    pub fn speech_ended(&mut self) {
        if matches!(self.phase, Phase::Hearing { .. }) {
            self.phase = Phase::Asking;
        }
    }

    /// The utterance is being recognised.
    pub fn recognising(&mut self) {
        self.phase = Phase::Recognising;
    }

    /// The transcript came back (the flow may still wait for a better answer).
    pub fn recognised(&mut self) {
        if self.phase == Phase::Recognising {
            self.phase = Phase::Asking;
        }
    }

    /// A key arrived: the next one is waited for at most `inter_digit`.
    pub fn key(&mut self, now: Instant, inter_digit: Duration) {
        self.phase = Phase::Waiting {
            until: now + self.question.timeout.min(inter_digit),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(barge_in: bool) -> Question {
        Question {
            speech: true,
            dtmf: true,
            hints: Vec::new(),
            candidates: Vec::new(),
            lang: Lang::Da,
            timeout: Duration::from_secs(6),
            barge_in,
            identify: Vec::new(),
        }
    }

    const CAP: Duration = Duration::from_secs(15);

    #[test]
    fn the_timer_starts_only_after_the_prompt_and_fires_once() {
        let t0 = Instant::now();
        let mut l = Listen::new(q(true));
        assert!(!l.tick(t0, false, CAP));
        assert_eq!(l.deadline(), None, "prompt still playing");
        assert!(!l.tick(t0 + Duration::from_secs(2), true, CAP));
        assert_eq!(l.deadline(), Some(t0 + Duration::from_secs(8)));
        assert!(!l.tick(t0 + Duration::from_secs(7), true, CAP));
        assert!(l.tick(t0 + Duration::from_secs(8), true, CAP));
        assert_eq!(l.phase(), Phase::Asking);
    }

    #[test]
    fn speech_pauses_the_timer_until_the_hearing_cap() {
        let t0 = Instant::now();
        let mut l = Listen::new(q(true));
        l.tick(t0, true, CAP);
        l.speech_started(t0 + Duration::from_secs(1));
        assert_eq!(l.deadline(), None);
        assert!(!l.tick(t0 + Duration::from_secs(10), true, CAP));
        assert_eq!(l.deadline(), None, "still hearing");
        l.tick(t0 + Duration::from_secs(17), true, CAP);
        assert_eq!(
            l.deadline(),
            Some(t0 + Duration::from_secs(23)),
            "speech that never ended restarts the timer after the cap"
        );
    }

    #[test]
    fn speech_during_the_prompt_counts_only_with_barge_in() {
        let l = Listen::new(q(false));
        assert!(!l.takes_speech(false));
        assert!(l.takes_speech(true));
        let mut l = Listen::new(q(true));
        assert!(l.takes_speech(false));
        l.recognising();
        assert!(!l.takes_speech(true), "one utterance at a time");
    }

    #[test]
    fn a_key_shortens_the_wait_for_the_next_one() {
        let t0 = Instant::now();
        let mut l = Listen::new(q(true));
        l.key(t0, Duration::from_secs(5));
        assert_eq!(l.deadline(), Some(t0 + Duration::from_secs(5)));
        let mut short = Listen::new(Question {
            timeout: Duration::from_secs(3),
            ..q(true)
        });
        short.key(t0, Duration::from_secs(5));
        assert_eq!(short.deadline(), Some(t0 + Duration::from_secs(3)));
    }
}
