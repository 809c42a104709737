//! Eager end of turn in a call: what to do with a speculative recognition
//! (`[media] eager_stt_ms`). Sans-IO: the call task reports the media
//! session's events and the recogniser's results, this decides; it never
//! spawns, reads a clock or talks to the pool.
//!
//! ```text
//! TentativeEnd --(idle worker: start, gen g)--> Running(g) --result g--> Ready(g)
//!      |  (no idle worker: Skipped)                 |                     |
//!      |                              SpeechResumed: Discarded (the result of g is dropped when it comes)
//!      |                              Utterance: Awaiting(g)       Utterance: use Ready at once
//!      v                                            |
//!  Utterance: normal recognition          result g: deliver as the turn's transcript
//! ```
//!
//! Generations make late results harmless: a result is used only when its
//! generation is the one in progress; anything else (discarded, or from a
//! question that is over) is dropped. At most one speculation per call is
//! in progress; one that was discarded is withdrawn (the call sets its
//! `ivr_stt::Cancel`), so its worker stops at its next decoder step (an
//! encoder call already under way is not interrupted), and the pool's
//! admission rule counts it until then.

/// Where the eager recognition of the current utterance stands.
#[derive(Debug)]
enum State<T> {
    /// None in progress.
    Idle,
    /// Recognising the tentative audio.
    Running(u64),
    /// Its result, held until the end is confirmed or speech resumes.
    Ready(T),
    /// The end was confirmed while it was still running: its result is the transcript.
    Awaiting(u64),
}

/// What to do at a tentative end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTentative {
    /// Try to start a speculative recognition tagged `gen`; report
    /// [`EagerTurn::started`] or [`EagerTurn::skipped`].
    Start(u64),
    /// Nothing (a speculation is already in progress or the question does not listen).
    Ignore,
}

/// What to do with a confirmed utterance.
#[derive(Debug, PartialEq, Eq)]
pub enum OnConfirmed<T> {
    /// The speculative transcript, ready: answer with it now.
    Use(T),
    /// The speculation is still running: its result will be the transcript
    /// (no new recognition).
    Await,
    /// No speculation: recognise the utterance as usual.
    Recognise,
}

/// What to do with a speculative result that came back.
#[derive(Debug, PartialEq, Eq)]
pub enum OnResult<T> {
    /// Held until the end is confirmed.
    Held,
    /// The end was already confirmed: this is the turn's transcript.
    Deliver(T),
    /// Stale (discarded or from an earlier question): drop it.
    Drop,
}

/// Counts for `/metrics` of what one call's tentative ends came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EagerCounts {
    /// Used as the turn's transcript.
    pub used: u64,
    /// Thrown away (the caller spoke on, or the question ended first).
    pub discarded: u64,
    /// Not started (no idle worker).
    pub skipped: u64,
}

/// One call's eager recognition.
#[derive(Debug)]
pub struct EagerTurn<T> {
    state: State<T>,
    gen: u64,
    counts: EagerCounts,
}

impl<T> Default for EagerTurn<T> {
    fn default() -> Self {
        EagerTurn {
            state: State::Idle,
            gen: 0,
            counts: EagerCounts::default(),
        }
    }
}

impl<T> EagerTurn<T> {
    /// The media session announced a tentative end; `listening`: a question
    /// takes speech now and no transcript is awaited.
    pub fn tentative(&mut self, listening: bool) -> OnTentative {
        if !listening || !matches!(self.state, State::Idle) {
            return OnTentative::Ignore;
        }
        self.gen += 1;
        OnTentative::Start(self.gen)
    }

    /// The speculation `gen` was started.
    pub fn started(&mut self, gen: u64) {
        if gen == self.gen {
            self.state = State::Running(gen);
        }
    }

    /// The speculation `gen` was not started (no idle worker).
    pub fn skipped(&mut self, gen: u64) {
        if gen == self.gen {
            self.counts.skipped += 1;
        }
    }

    /// The speculation `gen`, reported started, could not run after all (no
    /// idle worker when the job was placed). Returns true when the end was
    /// already confirmed, so the utterance must now be recognised as usual.
    pub fn declined(&mut self, gen: u64) -> bool {
        match self.state {
            State::Running(g) | State::Awaiting(g) if g == gen => {
                let awaiting = matches!(self.state, State::Awaiting(_));
                self.state = State::Idle;
                self.counts.skipped += 1;
                awaiting
            }
            _ => false,
        }
    }

    /// The caller spoke again after the tentative end.
    pub fn resumed(&mut self) {
        self.discard();
    }

    /// The question is over (answered, or by a key): a speculation is moot.
    pub fn reset(&mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        if matches!(
            self.state,
            State::Running(_) | State::Ready(_) | State::Awaiting(_)
        ) {
            self.counts.discarded += 1;
        }
        self.state = State::Idle;
        // Whatever is still running is stale from now on.
        self.gen += 1;
    }

    /// The endpointer confirmed the end of the utterance.
    pub fn confirmed(&mut self) -> OnConfirmed<T> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Ready(t) => {
                self.counts.used += 1;
                OnConfirmed::Use(t)
            }
            State::Running(g) => {
                self.state = State::Awaiting(g);
                OnConfirmed::Await
            }
            State::Awaiting(g) => {
                // A second confirmation without a tentative in between cannot
                // come from the endpointer; stay on the one awaited.
                self.state = State::Awaiting(g);
                OnConfirmed::Await
            }
            State::Idle => OnConfirmed::Recognise,
        }
    }

    /// The speculation `gen` came back with `result`.
    pub fn result(&mut self, gen: u64, result: T) -> OnResult<T> {
        match self.state {
            State::Running(g) if g == gen => {
                self.state = State::Ready(result);
                OnResult::Held
            }
            State::Awaiting(g) if g == gen => {
                self.state = State::Idle;
                self.counts.used += 1;
                OnResult::Deliver(result)
            }
            _ => OnResult::Drop,
        }
    }

    /// The speculative result held for the utterance in progress (its end
    /// not confirmed yet, the caller silent since the tentative end).
    pub fn held(&self) -> Option<&T> {
        match &self.state {
            State::Ready(t) => Some(t),
            _ => None,
        }
    }

    /// Whether a confirmed utterance's transcript is awaited from a speculation.
    pub fn awaiting(&self) -> bool {
        matches!(self.state, State::Awaiting(_))
    }

    /// The counts so far, reset to zero (for `/metrics`).
    pub fn take_counts(&mut self) -> EagerCounts {
        std::mem::take(&mut self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(e: &mut EagerTurn<&'static str>) -> u64 {
        let OnTentative::Start(g) = e.tentative(true) else {
            panic!("expected a start")
        };
        e.started(g);
        g
    }

    #[test]
    fn result_before_confirmation_is_used_at_once() {
        let mut e = EagerTurn::default();
        let g = start(&mut e);
        assert_eq!(e.result(g, "pas"), OnResult::Held);
        assert_eq!(e.held(), Some(&"pas"));
        assert_eq!(e.confirmed(), OnConfirmed::Use("pas"));
        assert_eq!(e.held(), None);
        assert_eq!(e.take_counts().used, 1);
        // The next utterance without a tentative is recognised as usual.
        assert_eq!(e.confirmed(), OnConfirmed::Recognise);
    }

    #[test]
    fn confirmation_before_the_result_awaits_it_without_a_second_recognition() {
        let mut e = EagerTurn::default();
        let g = start(&mut e);
        assert_eq!(e.confirmed(), OnConfirmed::Await);
        assert!(e.awaiting());
        assert_eq!(e.tentative(true), OnTentative::Ignore, "one at a time");
        assert_eq!(e.result(g, "pas"), OnResult::Deliver("pas"));
        assert!(!e.awaiting());
        assert_eq!(
            e.take_counts(),
            EagerCounts {
                used: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn resumed_speech_discards_it_and_its_late_result_is_dropped() {
        let mut e = EagerTurn::default();
        let g = start(&mut e);
        e.resumed();
        assert_eq!(e.result(g, "jeg skal"), OnResult::Drop);
        // The utterance goes on; its end is recognised as usual.
        assert_eq!(e.confirmed(), OnConfirmed::Recognise);
        // A held result is discarded too.
        let g2 = start(&mut e);
        assert_ne!(g, g2);
        assert_eq!(e.result(g2, "jeg skal tale"), OnResult::Held);
        e.resumed();
        let g3 = start(&mut e);
        assert_eq!(e.result(g2, "stale"), OnResult::Drop);
        assert_eq!(e.result(g3, "jeg skal tale med nogen"), OnResult::Held);
        assert_eq!(e.confirmed(), OnConfirmed::Use("jeg skal tale med nogen"));
        assert_eq!(
            e.take_counts(),
            EagerCounts {
                used: 1,
                discarded: 2,
                skipped: 0
            }
        );
    }

    #[test]
    fn no_idle_worker_means_the_normal_path() {
        let mut e = EagerTurn::<&str>::default();
        let OnTentative::Start(g) = e.tentative(true) else {
            panic!()
        };
        e.skipped(g);
        assert_eq!(e.confirmed(), OnConfirmed::Recognise);
        assert_eq!(e.take_counts().skipped, 1);
        assert_eq!(e.tentative(false), OnTentative::Ignore, "not listening");
    }

    #[test]
    fn a_speculation_declined_by_the_pool_falls_back_to_the_normal_path() {
        let mut e = EagerTurn::<&str>::default();
        let g = start(&mut e);
        assert!(!e.declined(g), "not confirmed yet: nothing to recognise");
        assert_eq!(e.confirmed(), OnConfirmed::Recognise);
        let g = start(&mut e);
        assert_eq!(e.confirmed(), OnConfirmed::Await);
        assert!(e.declined(g), "confirmed meanwhile: recognise it now");
        assert!(!e.awaiting());
        assert!(!e.declined(g), "once");
        assert_eq!(e.take_counts().skipped, 2);
    }

    #[test]
    fn a_question_that_ends_first_drops_the_speculation() {
        let mut e = EagerTurn::default();
        let g = start(&mut e);
        assert_eq!(e.confirmed(), OnConfirmed::Await);
        e.reset(); // e.g. a key answered the question
        assert!(!e.awaiting());
        assert_eq!(e.result(g, "late"), OnResult::Drop);
        assert_eq!(e.take_counts().discarded, 1);
        e.reset();
        assert_eq!(
            e.take_counts(),
            EagerCounts::default(),
            "nothing to discard"
        );
    }
}
